--TEST--
Spam in observe mode: the verdict is recorded, the message is delivered
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/210.state
mailguard.mode=observe
sendmail_path="{PWD}/tools/sink.sh {PWD}/210.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
require __DIR__ . '/tools/spam.inc';
[$h, $b] = mg_exe_message();
var_dump(mail("a@example.com", "Your invoice", $b, $h));
mg_show(MailGuard\status(), ['mode', 'status', 'sent_total']);
echo "piped: ", mg_piped(__DIR__ . '/210.out'), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/210.state'); mg_rm(__DIR__ . '/210.out'); ?>
--EXPECT--
bool(true)
mode='observe'
status='active'
sent_total=1
piped: 1
