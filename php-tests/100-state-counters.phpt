--TEST--
Account state: status() counters after sent, failed and refused mail; the error log
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/100.state
mailguard.account=shop-example-com
mailguard.allow_control=1
mailguard.max_message_size=1K
mailguard.rate_quota=200/1h
mailguard.rate_burst=50/1m
sendmail_path="{PWD}/tools/sink.sh {PWD}/100.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
var_dump(mail("a@example.com", "hello", "m"));
var_dump(mail("b@example.com", "hello again", "m"));
var_dump(mail("c@example.com", "fail please", "m"));
var_dump(@mail("d@example.com", "too big", str_repeat("x", 2000)));
$s = MailGuard\status();
mg_show($s, ['account', 'status', 'colour', 'sent_total', 'sent_today', 'errors_total', 'queued', 'held', 'mode', 'limits']);
echo "piped: ", mg_piped(__DIR__ . '/100.out'), "\n";
$e = MailGuard\errors()['errors'];
echo count($e), " error(s): ", $e[0]['recipient'], " | ", $e[0]['text'], " | ", basename($e[0]['origin']['file']), ":", $e[0]['origin']['line'], " | ", $e[0]['origin']['sapi'], "\n";
$today = end(MailGuard\history(1)['days']);
echo "today: sent={$today['sent']} errors={$today['errors']}\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/100.state'); mg_rm(__DIR__ . '/100.out'); ?>
--EXPECT--
bool(true)
bool(true)
bool(false)
bool(false)
account='shop-example-com'
status='active'
colour='green'
sent_total=2
sent_today=2
errors_total=1
queued=0
held=0
mode='enforce'
limits={"quota":"200\/1h","burst":"50\/1m","count":"recipients","max_recipients":100,"hold_seconds":259200,"max_message_size":1024}
piped: 3
1 error(s): c@example.com | the sendmail command failed (non-zero exit status) | 100-state-counters.php:5 | cli
today: sent=2 errors=1
