--TEST--
Size limit: exactly the limit passes, one byte over is refused with one warning
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.max_message_size=1000
sendmail_path="{PWD}/tools/record.sh {PWD}/020.out"
--FILE--
<?php
@unlink(__DIR__ . '/020.out');
// "To: a@b\r\nSubject: s\r\n" (21) + "\r\n" (2) + body + "\r\n" (2)
var_dump(mail("a@b", "s", str_repeat("x", 975)));
var_dump(mail("a@b", "s", str_repeat("x", 976)));
// Headers count too: "X-A: 1" + "\r\n" is 8 more bytes.
var_dump(mail("a@b", "s", str_repeat("x", 967), "X-A: 1"));
var_dump(mail("a@b", "s", str_repeat("x", 968), ["X-A" => "1"]));
$sent = file_get_contents(__DIR__ . '/020.out');
echo "messages that reached sendmail: ", substr_count($sent, "STDIN\n"), "\n";
?>
--CLEAN--
<?php @unlink(__DIR__ . '/020.out'); ?>
--EXPECTF--
bool(true)

Warning: mailguard: message refused: it is 1001 bytes, over the 1000 (1000 bytes) limit for headers and body; keep attachments under about 750 bytes because base64 encoding grows them by a third, or send a link instead in %s on line %d
bool(false)
bool(true)

Warning: mailguard: message refused: it is 1001 bytes, over the 1000 (1000 bytes) limit for headers and body; keep attachments under about 750 bytes because base64 encoding grows them by a third, or send a link instead in %s on line %d
bool(false)
messages that reached sendmail: 2
