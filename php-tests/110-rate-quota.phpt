--TEST--
Rate quota: mail over the quota is queued (mail() returns true) and not piped
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/110.state
mailguard.rate_quota=3/1h
mailguard.rate_burst=
sendmail_path="{PWD}/tools/sink.sh {PWD}/110.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
for ($i = 1; $i <= 5; $i++) {
    var_dump(mail("a@example.com", "quota $i", "m"));
}
mg_show(MailGuard\status(), ['status', 'sent_total', 'queued', 'held']);
echo "piped: ", mg_piped(__DIR__ . '/110.out'), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/110.state'); mg_rm(__DIR__ . '/110.out'); ?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
status='active'
sent_total=3
queued=2
held=0
piped: 3
