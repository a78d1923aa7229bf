--TEST--
Hardened mode (mailguard.socket): mail() goes to a real `mailguard serve`, which stores it under the account of the caller's uid and re-checks it; status() is the daemon's; a daemon that cannot be reached is one warning naming the socket
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded');
if (!getenv('MAILGUARD_BIN')) die('skip MAILGUARD_BIN not set'); ?>
--FILE--
<?php
require __DIR__ . '/tools/smtp.inc';
require_once __DIR__ . '/tools/compare.inc';
$dir = __DIR__ . '/400.work';
mg_rmdir($dir);
mkdir($dir);
$sock = "$dir/submit.sock";
$user = trim(shell_exec('id -un'));
file_put_contents("$dir/mailguard.toml", "transport = \"sendmail\"\nsendmail_path = \"" . __DIR__ . "/tools/record.sh $dir/out\"\n"
    . "[accounts]\nquota = \"2/1h\"\nburst = \"\"\n[accounts.users]\n\"$user\" = \"site-one\"\n");
$daemon = proc_open([getenv('MAILGUARD_BIN'), 'serve', '--socket', $sock, '--state-dir', "$dir/state", '--config', "$dir/mailguard.toml"],
    [1 => ['file', "$dir/serve.log", 'a'], 2 => ['file', "$dir/serve.log", 'a']], $pipes);
for ($i = 0; $i < 100 && !file_exists($sock); $i++) usleep(50000);

$ini = ['mailguard.socket' => $sock, 'mailguard.state_dir' => "$dir/not-used", 'mailguard.account' => 'not-used'];
echo mg_child('
var_dump(mail("a@example.org", "Order 1", "Thanks.\n", "From: shop@example.org"));
var_dump(mail("b@example.org", "Order 2", "Thanks.\n"));
var_dump(mail("c@example.org", "Order 3", "Thanks.\n"));
var_dump(mail("d@example.org", "x", "y", "", "-X/tmp/log"));
var_dump(mail("e@example.org", "x", str_repeat("a", 11 << 20)));
$s = MailGuard\status();
echo $s["account"], " ", $s["status"], " hardened=", var_export($s["hardened"], true), " queued=", $s["queued"], " quota=", $s["limits"]["quota"], "\n";
try { MailGuard\block(); } catch (Exception $e) { echo substr($e->getMessage(), 0, 60), "\n"; }
', $ini);
echo "state dir of the INI used: ", file_exists("$dir/not-used") ? "yes" : "no", "\n";
// Everything the daemon released arrives (delivered by the daemon, not the worker).
for ($i = 0; $i < 100 && substr_count(@file_get_contents("$dir/out") ?: '', "\nEND\n") < 2; $i++) usleep(50000);
echo "delivered by the daemon: ", substr_count(file_get_contents("$dir/out"), "\nEND\n"), "\n";

proc_terminate($daemon);
proc_close($daemon);
echo mg_child('var_dump(mail("a@example.org", "x", "y")); var_dump(MailGuard\status()["status"]);', $ini);
?>
--CLEAN--
<?php require __DIR__ . '/tools/compare.inc'; mg_rmdir(__DIR__ . '/400.work'); ?>
--EXPECTF--
bool(true)
bool(true)
bool(true)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-X/tmp/log"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in Command line code on line 5
bool(false)

Warning: mailguard: message refused: it is %d bytes, over the 10M (10485760 bytes) limit for headers and body; %s in Command line code on line 6
bool(false)
site-one active hardened=true queued=1 quota=2/1h
mailguard: operator functions are disabled for account site-
state dir of the INI used: no
delivered by the daemon: 2

Warning: mailguard: message refused: the mail queue cannot take it: cannot reach the mailguard daemon at %s/400.work/submit.sock: No such file or directory (os error 2); nothing was sent, ask the server operator in Command line code on line 1
bool(false)
string(7) "unknown"
