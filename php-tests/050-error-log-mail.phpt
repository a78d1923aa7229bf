--TEST--
error_log($m, 1, $to) goes through the guard; other message types are untouched
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.max_message_size=500
sendmail_path="{PWD}/tools/record.sh {PWD}/050.out"
log_errors=0
--FILE--
<?php
@unlink(__DIR__ . '/050.out');
$file = __DIR__ . '/050.log';
@unlink($file);
var_dump(error_log("small alert", 1, "ops@example.com", "From: php@example.com"));
var_dump(error_log(str_repeat("x", 600), 1, "ops@example.com"));
var_dump(error_log(str_repeat("x", 600), "1", "ops@example.com"));
var_dump(error_log(str_repeat("y", 600), 3, $file));
echo "type 3 wrote: ", strlen(file_get_contents($file)), " bytes\n";
$sent = file_get_contents(__DIR__ . '/050.out');
echo "messages that reached sendmail: ", substr_count($sent, "STDIN\n"), "\n";
echo "subject: ", preg_match('/^Subject: PHP error_log message\r$/m', $sent), "\n";
try {
    error_log("x", []);
} catch (TypeError $e) {
    echo $e->getMessage(), "\n";
}
?>
--CLEAN--
<?php @unlink(__DIR__ . '/050.out'); @unlink(__DIR__ . '/050.log'); ?>
--EXPECTF--
bool(true)

Warning: mailguard: message refused: it is 657 bytes, over the 500 (500 bytes) limit for headers and body; %s
bool(false)

Warning: mailguard: message refused: it is 657 bytes, over the 500 (500 bytes) limit for headers and body; %s
bool(false)
bool(true)
type 3 wrote: 600 bytes
messages that reached sendmail: 1
subject: 1
error_log(): Argument #2 ($message_type) must be of type int, array given
