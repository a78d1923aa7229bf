--TEST--
transport=smtp: the worker's immediate attempt over implicit TLS and STARTTLS to a real server; 4xx queues, 5xx fails, a bad certificate is never accepted
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--FILE--
<?php
require __DIR__ . '/tools/smtp.inc';
$base = __DIR__ . '/300.work';
mg_rm($base);
mkdir($base);
$certs = mg_certs("$base/certs");
$send = 'var_dump(mail("rcpt@example.com", "Order 1001 confirmed", "Thank you for your order.\r\n", "From: shop@example.com"));
$s = MailGuard\status(); echo "sent=", $s["sent_total"], " queued=", $s["queued"], " errors=", $s["errors_total"], "\n";';

$case = function (string $name, array $server, string $security, string $ca) use ($base, $send) {
    $rec = "$base/$name.rec";
    $srv = mg_smtpd($server, $rec);
    $out = mg_child($send, [
        'mailguard.state_dir' => "$base/$name.state", 'mailguard.transport' => 'smtp',
        'mailguard.smtp_relay' => "localhost:{$srv[1]}", 'mailguard.smtp_security' => $security,
        'mailguard.smtp_ca_file' => $ca, 'mailguard.rate_burst' => '',
    ]);
    mg_stop($srv);
    $got = mg_recorded($rec);
    echo "== $name\n", $out, "server recorded: ", count($got), "\n";
    if ($got) {
        $msg = file_get_contents($got[0]);
        echo "bytes: ", str_starts_with($msg, "To: rcpt@example.com\r\nSubject: Order 1001 confirmed\r\nFrom: shop@example.com\r\n\r\nThank you") ? "as mail() built them" : "DIFFERENT: $msg", "\n";
        $env = json_decode(file_get_contents(str_replace('.eml', '.json', $got[0])), true);
        echo "envelope: ", implode(',', $env['rcpt_tos']), " tls=", var_export($env['tls'], true), "\n";
    }
};
$good = ['--cert', "$certs/good.pem", '--key', "$certs/good.key"];
$case('implicit-tls', array_merge(['--tls', 'implicit'], $good), 'ssl', "$certs/ca.pem");
$case('starttls', array_merge(['--tls', 'starttls'], $good), 'starttls', "$certs/ca.pem");
$case('temporary-451', array_merge(['--tls', 'implicit', '--mode', '451'], $good), 'ssl', "$certs/ca.pem");
$case('permanent-550', array_merge(['--tls', 'implicit', '--mode', '550'], $good), 'ssl', "$certs/ca.pem");
$case('self-signed', ['--tls', 'implicit', '--cert', "$certs/selfsigned.pem", '--key', "$certs/selfsigned.key"], 'ssl', "$certs/ca.pem");
$case('wrong-host', ['--tls', 'implicit', '--cert', "$certs/wronghost.pem", '--key', "$certs/wronghost.key"], 'ssl', "$certs/ca.pem");
$case('expired', ['--tls', 'implicit', '--cert', "$certs/expired.pem", '--key', "$certs/expired.key"], 'ssl', "$certs/ca.pem");
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/300.work'); ?>
--EXPECT--
== implicit-tls
bool(true)
sent=1 queued=0 errors=0
server recorded: 1
bytes: as mail() built them
envelope: rcpt@example.com tls=true
== starttls
bool(true)
sent=1 queued=0 errors=0
server recorded: 1
bytes: as mail() built them
envelope: rcpt@example.com tls=true
== temporary-451
bool(true)
sent=0 queued=1 errors=0
server recorded: 0
== permanent-550
bool(false)
sent=0 queued=0 errors=1
server recorded: 0
== self-signed
bool(true)
sent=0 queued=1 errors=0
server recorded: 0
== wrong-host
bool(true)
sent=0 queued=1 errors=0
server recorded: 0
== expired
bool(true)
sent=0 queued=1 errors=0
server recorded: 0
