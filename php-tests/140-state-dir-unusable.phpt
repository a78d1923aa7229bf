--TEST--
An unusable state directory refuses mail with a warning naming the path (never a silent bypass)
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/140.not-a-dir/state
sendmail_path="{PWD}/tools/sink.sh {PWD}/140.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
file_put_contents(__DIR__ . '/140.not-a-dir', "a file where a directory should be\n");
var_dump(mail("a@example.com", "s", "m"));
$s = MailGuard\status();
echo $s['status'], "\n";
echo "piped: ", mg_piped(__DIR__ . '/140.out'), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/140.not-a-dir'); mg_rm(__DIR__ . '/140.out'); ?>
--EXPECTF--
Warning: mailguard: message refused: the mail queue cannot take it: state directory %s/140.not-a-dir/state: %s; nothing was sent, ask the server operator in %s on line %d
bool(false)
unknown
piped: 0
