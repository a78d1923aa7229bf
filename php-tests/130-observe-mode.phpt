--TEST--
Observe mode: every check runs and is recorded, nothing is blocked
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/130.state
mailguard.mode=observe
mailguard.rate_quota=2/1h
mailguard.rate_burst=3/1m
sendmail_path="{PWD}/tools/sink.sh {PWD}/130.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
for ($i = 1; $i <= 6; $i++) {
    var_dump(mail("a@example.com", "observe $i", "m"));
}
mg_show(MailGuard\status(), ['mode', 'status', 'sent_total', 'queued', 'held']);
echo "piped: ", mg_piped(__DIR__ . '/130.out'), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/130.state'); mg_rm(__DIR__ . '/130.out'); ?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
mode='observe'
status='active'
sent_total=6
queued=0
held=0
piped: 6
