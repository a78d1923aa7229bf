--TEST--
Operator functions throw unless mailguard.allow_control=1 (and a script can't turn it on)
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/150.state
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
var_dump(ini_set('mailguard.allow_control', '1'));
foreach (['block', 'unblock', 'purge', 'errors', 'history'] as $f) {
    try {
        ("MailGuard\\$f")();
        echo "$f: allowed?!\n";
    } catch (Exception $e) {
        echo "$f: ", $e->getMessage(), "\n";
    }
}
var_dump(MailGuard\status()['status']);
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/150.state'); ?>
--EXPECT--
bool(false)
block: mailguard: operator functions are disabled for scripts; the server operator can enable them with mailguard.allow_control=1 for this account, or use the mailguard command
unblock: mailguard: operator functions are disabled for scripts; the server operator can enable them with mailguard.allow_control=1 for this account, or use the mailguard command
purge: mailguard: operator functions are disabled for scripts; the server operator can enable them with mailguard.allow_control=1 for this account, or use the mailguard command
errors: mailguard: operator functions are disabled for scripts; the server operator can enable them with mailguard.allow_control=1 for this account, or use the mailguard command
history: mailguard: operator functions are disabled for scripts; the server operator can enable them with mailguard.allow_control=1 for this account, or use the mailguard command
string(6) "active"
