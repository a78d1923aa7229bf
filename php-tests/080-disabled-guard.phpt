--TEST--
mailguard.enabled=0: the stock handlers run untouched (no limit applies)
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.enabled=0
mailguard.max_message_size=100
sendmail_path="{PWD}/tools/record.sh /dev/null"
--FILE--
<?php
var_dump(MailGuard\status()['enabled']);
var_dump(mail("a@b", "s", str_repeat("x", 500), "", "-oi"));
?>
--EXPECT--
bool(false)
bool(true)
