--TEST--
disable_functions=mail: mail() stays disabled and status() says so
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
disable_functions=mail
--FILE--
<?php
$s = MailGuard\status();
var_dump($s['hooked'], $s['disabled']);
var_dump(function_exists('mail'));
try {
    mail("a@b", "s", "m");
} catch (Error $e) {
    echo get_class($e), ": ", $e->getMessage(), "\n";
}
?>
--EXPECT--
array(1) {
  [0]=>
  string(9) "error_log"
}
array(1) {
  [0]=>
  string(4) "mail"
}
bool(false)
Error: Call to undefined function mail()
