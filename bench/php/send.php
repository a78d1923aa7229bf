<?php
/* CLI driver: php [settings] send.php FIRST N OUT.json [floor-dir|-] [size] [extra-header] [max-fails]
 * One process sends N messages with mail() (or writes the floor files), timing each call;
 * with max-fails > 0 it stops after that many mail() calls returned false. */
require __DIR__ . '/msg.inc';
[, $first, $n, $out] = $argv;
$floor = ($argv[4] ?? '-') === '-' ? null : $argv[4];
$size = (int)($argv[5] ?? 5120);
$extra = $argv[6] ?? '';
$max_fails = (int)($argv[7] ?? 0);
$r = bench_send((int)$first, (int)$n, $floor, $size, $extra, $max_fails);
file_put_contents($out, json_encode($r));
if ($r['fails'] > 0) fwrite(STDERR, "send.php: {$r['fails']} of " . count($r['lat']) . " calls returned false\n");
