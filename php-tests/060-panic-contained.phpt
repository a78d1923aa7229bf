--TEST--
A Rust panic inside the guard becomes a refused message with one warning, never a crash
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
extension=mbstring
mailguard.fault_injection=panic
sendmail_path="{PWD}/tools/record.sh {PWD}/060.out"
--FILE--
<?php
@unlink(__DIR__ . '/060.out');
var_dump(mail("a@b", "s", "m"));
var_dump(mb_send_mail("a@b", "s", "m"));
var_dump(error_log("m", 1, "a@b"));
set_error_handler(function ($no, $str) { echo "handler saw: $str\n"; return true; });
var_dump(mail("a@b", "s", "m"));
echo "still running, sent: ", (int)file_exists(__DIR__ . '/060.out'), "\n";
?>
--CLEAN--
<?php @unlink(__DIR__ . '/060.out'); ?>
--EXPECTF--
%A
Warning: mailguard: message refused: internal error (the closure panicked: fault injection: mailguard.fault_injection=panic); nothing was sent, please report this to the server operator in %s on line %d
bool(false)
%A
Warning: mailguard: message refused: internal error (the closure panicked: fault injection: mailguard.fault_injection=panic); nothing was sent, please report this to the server operator in %s on line %d
bool(false)
%A
Warning: mailguard: message refused: internal error (the closure panicked: fault injection: mailguard.fault_injection=panic); nothing was sent, please report this to the server operator in %s on line %d
bool(false)
%Ahandler saw: mailguard: message refused: internal error (the closure panicked: fault injection: mailguard.fault_injection=panic); nothing was sent, please report this to the server operator
bool(false)
still running, sent: 0
