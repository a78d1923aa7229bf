--TEST--
Origin: the mail() call site, the first caller outside mail libraries, CLI vs web
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/160.state
mailguard.allow_control=1
sendmail_path="{PWD}/tools/sink.sh {PWD}/160.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
$lib = __DIR__ . '/160.vendor/phpmailer/phpmailer/src';
@mkdir($lib, 0777, true);
file_put_contents("$lib/PHPMailer.php", '<?php
class FakeMailer {
    function send($to) {
        return mail($to, "fail via library", "m");
    }
}
');
require "$lib/PHPMailer.php";
function contact_form() {
    return (new FakeMailer)->send("x@example.com");
}
var_dump(contact_form());
$o = MailGuard\errors()['errors'][0]['origin'];
echo "file: ", substr($o['file'], strlen(__DIR__) + 1), ":", $o['line'], "\n";
echo "caller: ", substr($o['caller'], strlen(__DIR__) + 1), "\n";
echo "sapi: ", $o['sapi'], "\n";
var_dump($o['vhost'], $o['client_ip']);
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/160.state'); mg_rm(__DIR__ . '/160.out'); mg_rm(__DIR__ . '/160.vendor'); ?>
--EXPECT--
bool(false)
file: 160.vendor/phpmailer/phpmailer/src/PHPMailer.php:4
caller: 160-origin.php:14
sapi: cli
NULL
NULL
