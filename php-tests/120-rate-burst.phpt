--TEST--
Burst limit: tripping it turns the account inactive; further mail is held, not piped
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/120.state
mailguard.rate_quota=
mailguard.rate_burst=3/1m
mailguard.allow_control=1
sendmail_path="{PWD}/tools/sink.sh {PWD}/120.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
for ($i = 1; $i <= 6; $i++) {
    var_dump(mail("a@example.com", "burst $i", "m"));
}
mg_show(MailGuard\status(), ['status', 'colour', 'sent_total', 'held']);
echo "piped: ", mg_piped(__DIR__ . '/120.out'), "\n";
// The operator unblocks: held mail is re-dispatched (the runner delivers it).
print_r(MailGuard\unblock());
mg_show(MailGuard\status(), ['status', 'held', 'queued']);
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/120.state'); mg_rm(__DIR__ . '/120.out'); ?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
status='inactive'
colour='red'
sent_total=3
held=3
piped: 3
Array
(
    [from] => inactive
    [to] => active
    [messages] => 3
)
status='active'
held=0
queued=3
