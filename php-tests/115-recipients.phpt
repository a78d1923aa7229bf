--TEST--
Limits count envelope recipients (To, Cc, Bcc, also injected through error_log()'s $to); over the per-message cap: refused
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/115.state
mailguard.rate_quota=100/1h
mailguard.rate_burst=
sendmail_path="{PWD}/tools/sink.sh {PWD}/115.out"
log_errors=0
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
$list = fn($n, $p) => implode(', ', array_map(fn($i) => "$p$i@example.com", range(1, $n)));
// 30 in To, 20 in Cc (one of them again in Bcc, counted once): 50.
var_dump(mail($list(30, 'a'), "fifty", "m", "Cc: " . $list(20, 'c') . "\r\nBcc: A1@example.com"));
var_dump(mail($list(40, 'b'), "forty", "m"));
// error_log()'s $to is not sanitised by PHP: the Bcc line it injects reaches sendmail -t,
// so its 9 addresses are recipients too: 1 + 9 = 10, the quota is now used up.
var_dump(error_log("alert", 1, "ops@example.com\r\nBcc: " . $list(9, 'e')));
// Two more recipients: over 100/1h, queued (true, not piped).
var_dump(error_log("alert", 1, "ops@example.com\r\nBcc: x@example.com"));
// 101 recipients: over the cap of 100 per message.
var_dump(mail($list(101, 'd'), "too many", "m"));
mg_show(MailGuard\status(), ['status', 'sent_total', 'queued', 'refused_total']);
$l = MailGuard\status()['limits'];
echo "count=", $l['count'], " max_recipients=", $l['max_recipients'], "\n";
echo "piped: ", mg_piped(__DIR__ . '/115.out'), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/115.state'); mg_rm(__DIR__ . '/115.out'); ?>
--EXPECTF--
bool(true)
bool(true)
bool(true)
bool(true)

Warning: mailguard: message refused: it has 101 recipients (To, Cc and Bcc), over the limit of 100 per message; send it in smaller groups or through a mailing-list service, or ask the operator to raise max_recipients in %s on line %d
bool(false)
status='active'
sent_total=3
queued=1
refused_total=0
count=recipients max_recipients=100
piped: 3
