--TEST--
mb_send_mail() goes through the guard: size limit, 5th parameter, panic-free delivery
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
extension=mbstring
mailguard.max_message_size=2000
sendmail_path="{PWD}/tools/record.sh {PWD}/040.out"
--FILE--
<?php
@unlink(__DIR__ . '/040.out');
var_dump(in_array('mb_send_mail', MailGuard\status()['hooked']));
mb_language('uni');
var_dump(mb_send_mail("a@b", "Zażółć gęślą jaźń", "Treść wiadomości", "From: f@example.com"));
var_dump(mb_send_mail("a@b", "big", str_repeat("x", 3000)));
var_dump(mb_send_mail("a@b", "params", "m", [], "-X/var/www/html/log.php"));
var_dump(mb_send_mail("a@b", "params", "m", [], null));
var_dump(mb_send_mail("a@b", "params", "m", ["X-A" => "1"], "-fok@example.com"));
$sent = file_get_contents(__DIR__ . '/040.out');
echo "messages that reached sendmail: ", substr_count($sent, "STDIN\n"), "\n";
echo "subject encoded by mbstring: ", preg_match('/^Subject: =\?UTF-8\?B\?/m', $sent), "\n";
echo "big or refused params sent: ", substr_count($sent, "Subject: big") + substr_count($sent, "log.php"), "\n";
?>
--CLEAN--
<?php @unlink(__DIR__ . '/040.out'); ?>
--EXPECTF--
bool(true)
bool(true)

Warning: mailguard: message refused: it is %d bytes, over the 2000 (2000 bytes) limit for headers and body; %s
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-X/var/www/html/log.php"; %s
bool(false)
bool(true)
bool(true)
messages that reached sendmail: 3
subject encoded by mbstring: 1
big or refused params sent: 0
