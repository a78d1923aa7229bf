--TEST--
mailguard.rate_count=messages counts each message once; mailguard.max_recipients sets the cap (empty: none); observe mode records the cap's verdict
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/116.state
mailguard.rate_quota=3/1h
mailguard.rate_burst=
mailguard.rate_count=messages
mailguard.max_recipients=5
mailguard.mode=observe
sendmail_path="{PWD}/tools/sink.sh {PWD}/116.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
$list = fn($n) => implode(', ', array_map(fn($i) => "u$i@example.com", range(1, $n)));
var_dump(mail($list(5), "five", "m"));
var_dump(mail($list(4), "four", "m"));
// Over the cap of 5: observe mode delivers it and records what enforce would do.
var_dump(mail($list(6), "six", "m"));
mg_show(MailGuard\status(), ['sent_total', 'queued']);
echo "piped: ", mg_piped(__DIR__ . '/116.out'), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/116.state'); mg_rm(__DIR__ . '/116.out'); ?>
--EXPECT--
bool(true)
bool(true)
bool(true)
sent_total=3
queued=0
piped: 3
