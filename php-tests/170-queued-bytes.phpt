--TEST--
Queued mail delivered later by the runner carries the bytes stock mail() would have piped (X-PHP-Originating-Script included)
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--FILE--
<?php
require __DIR__ . '/tools/compare.inc';
$dir = __DIR__ . '/170.work';
mg_rmdir($dir);
mkdir($dir);
$script = "$dir/send.php";
file_put_contents($script, '<?php
var_dump(mail("a@example.com, b@example.com", "Quarterly report", "Line 1\nLine 2\r\n", ["From" => "reports@example.com", "X-Multi" => ["1", "2"]]));
var_dump(mail("c@example.com", "Plain", "Body"));
');
$ini = ['mail.add_x_header' => '1'];
// Stock PHP pipes at once.
$stock = mg_run($script, $ini, false, "$dir/stock.out");
// mailguard with transport=runner only queues; the runner pipes later.
$ini += ['mailguard.transport' => 'runner', 'mailguard.state_dir' => "$dir/state"];
$args = [PHP_BINARY, '-n', '-d', 'extension=' . mg_so()];
foreach ($ini as $k => $v) { $args[] = '-d'; $args[] = "$k=$v"; }
$args[] = $script;
$p = proc_open($args, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
echo "with mailguard: ", trim(str_replace("\n", " ", stream_get_contents($pipes[1]))), "\n";
proc_close($p);
echo "piped before the runner: ", (int)file_exists("$dir/guarded.out"), "\n";
file_put_contents("$dir/mailguard.toml", "transport = \"sendmail\"\nsendmail_path = \"" . __DIR__ . "/tools/record.sh $dir/guarded.out\"\n");
exec(escapeshellarg(getenv('MAILGUARD_BIN')) . " run --once --state-dir " . escapeshellarg("$dir/state") . " --config " . escapeshellarg("$dir/mailguard.toml") . " 2>&1", $out, $rc);
echo "runner exit: $rc\n";
$bodies = fn(string $f) => preg_match_all('/^STDIN\n(.*?)\nEND$/ms', file_get_contents($f), $m) ? $m[1] : [];
$a = $bodies("$dir/stock.out");
$b = $bodies("$dir/guarded.out");
// The runner delivers in parallel: the order of arrival is not the order of sending.
sort($a);
sort($b);
echo "stock messages: ", count($a), ", runner messages: ", count($b), "\n";
echo $a === $b ? "bytes identical\n" : "DIFFERENT\n" . print_r([$a, $b], true);
echo "x header present: ", substr_count(implode('', $b), "X-PHP-Originating-Script: "), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/compare.inc'; mg_rmdir(__DIR__ . '/170.work'); ?>
--EXPECT--
with mailguard: bool(true) bool(true)
piped before the runner: 0
runner exit: 0
stock messages: 2, runner messages: 2
bytes identical
x header present: 2
