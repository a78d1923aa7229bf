--TEST--
An invalid mailguard.max_message_size refuses mail with a warning naming the setting (never a silent bypass)
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.max_message_size=10MB
sendmail_path="cat >/dev/null"
--FILE--
<?php
var_dump(mail("a@b", "s", "m"));
$s = MailGuard\status();
echo $s['status'], ": ", $s['error'], "\n";
?>
--EXPECTF--
Warning: mailguard: message refused: setting mailguard.max_message_size is invalid: "10MB" is not a size: use a whole number of bytes, optionally followed by K, M or G (e.g. 10M); ask the server operator to fix php.ini in %s on line %d
bool(false)
unknown: message refused: setting mailguard.max_message_size is invalid: "10MB" is not a size: use a whole number of bytes, optionally followed by K, M or G (e.g. 10M); ask the server operator to fix php.ini
