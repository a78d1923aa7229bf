<?php
/* CLI driver: php [settings] send.php FIRST N OUT.json [floor-dir|-] [size] [extra-header]
 * One process sends N messages with mail() (or writes the floor files), timing each call. */
require __DIR__ . '/msg.inc';
[, $first, $n, $out] = $argv;
$floor = ($argv[4] ?? '-') === '-' ? null : $argv[4];
$size = (int)($argv[5] ?? 5120);
$extra = $argv[6] ?? '';
$r = bench_send((int)$first, (int)$n, $floor, $size, $extra);
file_put_contents($out, json_encode($r));
if ($r['fails'] > 0) fwrite(STDERR, "send.php: {$r['fails']} of $n calls returned false\n");
