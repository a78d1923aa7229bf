--TEST--
MailGuard\status(), the mailguard.* settings (PHP_INI_SYSTEM) and the phpinfo section
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.max_message_size=2M
--FILE--
<?php
$s = MailGuard\status();
var_dump($s['enabled'], $s['hooked'], $s['disabled'], $s['max_message_size']);
var_dump(function_exists('mailguard\\STATUS'));

// A script can never change the guard's settings.
var_dump(ini_set('mailguard.enabled', '0'));
var_dump(ini_set('mailguard.max_message_size', '1G'));
var_dump(ini_set('mailguard.socket', '/tmp/fake.sock'));
var_dump(ini_get('mailguard.enabled'), ini_get('mailguard.max_message_size'));
var_dump(MailGuard\status()['max_message_size']);

ob_start();
phpinfo(INFO_MODULES);
$info = ob_get_clean();
$start = strpos($info, "\nmailguard\n");
$section = substr($info, $start, strpos($info, "\n\n", strpos($info, 'Directive', $start)) - $start);
echo $section, "\n";
?>
--EXPECTF--
bool(true)
array(2) {
  [0]=>
  string(4) "mail"
  [1]=>
  string(9) "error_log"
}
array(0) {
}
int(2097152)
bool(true)
bool(false)
bool(false)
bool(false)
string(1) "1"
string(2) "2M"
int(2097152)

mailguard

mailguard support => enabled
version => %d.%d.%d
hooked functions => mail, error_log
effective max_message_size => 2M (2097152 bytes)

Directive => Local Value => Master Value
mailguard.account => default => default
mailguard.allow_control => 0 => 0
mailguard.enabled => 1 => 1
mailguard.fault_injection => no value => no value
mailguard.hold => 72h => 72h
mailguard.max_message_size => 2M => 2M
mailguard.max_recipients => 100 => 100
mailguard.mode => enforce => enforce
mailguard.queue_max_bytes => 1G => 1G
mailguard.queue_max_messages => 10000 => 10000
mailguard.rate_burst => %s
mailguard.rate_count => recipients => recipients
mailguard.rate_quota => %s
mailguard.smtp_ca_file => no value => no value
mailguard.smtp_relay => no value => no value
mailguard.smtp_security => ssl => ssl
mailguard.socket => no value => no value
mailguard.spam_check => 1 => 1
mailguard.state_dir => %s => %s
mailguard.transport => sendmail => sendmail
