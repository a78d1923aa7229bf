--TEST--
Spam: a refused message returns false with the rules named, is kept, and enough refusals turn the account to spam
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/200.state
mailguard.allow_control=1
sendmail_path="{PWD}/tools/sink.sh {PWD}/200.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
require __DIR__ . '/tools/spam.inc';
[$h, $b] = mg_exe_message();
var_dump(mail("a@example.com", "Your invoice", $b, $h));
for ($i = 0; $i < 4; $i++) {
    @mail("a@example.com", "Your invoice", $b, $h);
}
mg_show(MailGuard\status(), ['status', 'colour', 'refused_total', 'sent_total']);
// In spam status new mail is refused, even honest mail.
var_dump(mail("a@example.com", "Password reset", "Your reset link: https://example.com/r/abc"));
try {
    MailGuard\unblock();
} catch (Exception $e) {
    echo get_class($e), ": ", $e->getMessage(), "\n";
}
print_r(MailGuard\purge());
var_dump(mail("a@example.com", "Password reset", "Your reset link: https://example.com/r/abc"));
echo "piped: ", mg_piped(__DIR__ . '/200.out'), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/200.state'); mg_rm(__DIR__ . '/200.out'); ?>
--EXPECTF--
Warning: mailguard: message refused: it looks like spam (spam score %f (refuse): %Sexecutable-attachment%S); it was kept for the operator to review. If this is legitimate mail, change what the rules name, or ask the operator in %s on line %d
bool(false)
status='spam'
colour='red'
refused_total=5
sent_total=0

Warning: mailguard: message refused: the account is blocked for spam; remove the cause, then ask the operator to purge its queue in %s on line %d
bool(false)
Exception: mailguard: account default: unblock: the account is in spam status; %s
Array
(
    [from] => spam
    [to] => active
    [messages] => %d
)
bool(true)
piped: 1
