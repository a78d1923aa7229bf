--TEST--
mail(): the same bytes, argv, output and return values as stock PHP 8.2
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--FILE--
<?php
require __DIR__ . '/tools/compare.inc';

$plain = <<<'PHP'
<?php
function t(callable $f) {
    try {
        var_dump($f());
    } catch (Throwable $e) {
        echo get_class($e), ': ', $e->getMessage(), "\n";
    }
}
t(fn() => mail("user@example.com", "Test Subject", "Line1\nLine2\r\nLine3", "From: a@b.c\r\nX-A: 1"));
t(fn() => mail("a@b", "s", "m"));
t(fn() => mail("", "", ""));
t(fn() => mail("a@b", "s", "m", ""));
t(fn() => mail("a@b", "s", "m", "", ""));
t(fn() => mail("a@b,\n c@d", "Sub\tj\x01e\nct\r\n folded\r\n\t\ttab\x7f  \n\t ", "m"));
t(fn() => mail("a@b", "s", "m", "X-Trail: 1\r\n\n\n\x0b \x0c"));
t(fn() => mail("a@b", "s", "m", " X-Lead: 1"));
t(fn() => mail("a@b", "s", "m", "X-A: 1\r\n\r\nX-B: 2"));
t(fn() => mail("a@b", "s", "m", "HEAD1: a\rHEAD2: b\r"));
t(fn() => mail("a@b", "s", "m", ['From' => 'f@x', 'X-Multi' => ['1', '2'], 'Reply-To' => 'r@x', 'X-E' => '', 'X-Fold' => "a\r\n b"]));
t(fn() => mail("a@b", "s", "m", []));
t(fn() => mail("a@b", "s", "m", ['X-Empty' => []]));
t(fn() => mail("a@b", "s", "m", ['' => 'v']));
t(fn() => mail("a@b", "s", "m", 123));
t(fn() => mail("a@b", "s", "m", false));
t(fn() => mail(to: "a@b", subject: "named", message: "m", additional_params: "-fnamed@example.com"));
t(fn() => mail("a@b", "s", "m", "", "-f sender@example.com"));
t(fn() => mail("a@b", "s", "m", "", "-f'quoted@example.com'"));
t(fn() => mail(new class { function __toString(): string { return "obj@example.com"; } }, "s", "m"));
$ref = 'by-ref';
$h = ['X-Ref' => &$ref];
t(fn() => mail("a@b", "s", "m", $h));
t(fn() => mail(12345, 1.5, true));
t(fn() => mail("a@b", "s", "m", null));
t(fn() => mail("a@b", null, "m"));
t(fn() => mail("a\0b", "s", "m"));
t(fn() => mail("a@b", "s", "m", "X: \0"));
t(fn() => mail("a@b", "s", "m", "", "-f\0x"));
t(fn() => mail("a@b", "s"));
t(fn() => mail("a@b", "s", "m", "", "", 6));
t(fn() => mail([], "s", "m"));
t(fn() => mail("a@b", "s", "m", new stdClass));
t(fn() => mail("a@b", "s", "m", [0 => 'x']));
t(fn() => mail("a@b", "s", "m", ['To' => 'x']));
t(fn() => mail("a@b", "s", "m", ['subject' => 'x']));
t(fn() => mail("a@b", "s", "m", ['FROM' => ['x']]));
t(fn() => mail("a@b", "s", "m", ['From' => 1]));
t(fn() => mail("a@b", "s", "m", ['X-A' => ['k' => 'v']]));
t(fn() => mail("a@b", "s", "m", ['X-A' => [1]]));
t(fn() => mail("a@b", "s", "m", ['X-A' => null]));
t(fn() => mail("a@b", "s", "m", ["X B" => 'v']));
t(fn() => mail("a@b", "s", "m", ["foo7\0" => 'v']));
t(fn() => mail("a@b", "s", "m", ['Reply-To' => "a\nb"]));
t(fn() => mail("a@b", "s", "m", ['Reply-To' => "a\rb"]));
t(fn() => mail("a@b", "s", "m", ['Reply-To' => "a\r\nb"]));
t(fn() => mail("a@b", "s", "m", ['Reply-To' => "a\0b"]));
t(fn() => mail(new class { function __toString(): string { throw new Exception("toString threw"); } }, "s", "m"));
t(fn() => mail("a@b", "s", "m", "", new class { function __toString(): string { return "-fobj@example.com"; } }));
PHP;

$strict = <<<'PHP'
<?php
declare(strict_types=1);
function t(callable $f) {
    try {
        var_dump($f());
    } catch (Throwable $e) {
        echo get_class($e), ': ', $e->getMessage(), "\n";
    }
}
t(fn() => mail(1, "s", "m"));
t(fn() => mail("a@b", "s", "m", 123));
t(fn() => mail("a@b", "s", "m", "", null));
t(fn() => mail("a@b", "s", "m", "X-A: 1", "-fok@example.com"));
t(fn() => mail(new class { function __toString(): string { return "obj@example.com"; } }, "s", "m"));
PHP;

compare_with_stock('plain', $plain);
compare_with_stock('strict', $strict);
compare_with_stock('x_header', $plain, ['mail.add_x_header' => '1']);
compare_with_stock('mixed_lf', $plain, ['mail.mixed_lf_and_crlf' => '1', 'mail.add_x_header' => '1']);
compare_with_stock('forced', $plain, ['mail.force_extra_parameters' => '-fforced@example.com -oi;ls']);
compare_with_stock('forced_empty', $plain, ['mail.force_extra_parameters' => '']);

$log = <<<'PHP'
<?php
$log = ini_get('mail.log');
var_dump(mail("to@example.com", "Subj\r\n x", "m", "From: a@b\r\nX-A: 1"));
var_dump(mail("to2@example.com", "S2", "m"));
var_dump(mail("to3@example.com", "S3", "m", ['X-Arr' => 'v', 'X-M' => ['1', '2']]));
echo preg_replace('/^\[[^\]]+\]/m', '[DATE]', file_get_contents($log));
unlink($log);
PHP;
compare_with_stock('mail_log', $log, ['mail.log' => sys_get_temp_dir() . '/mg-maillog-' . getmypid()]);

$status = <<<'PHP'
<?php
var_dump(mail("a@b", "s", "m"));
PHP;
compare_with_stock('exit75', $status, ['sendmail_path' => 'cat >/dev/null; exit 75']);
compare_with_stock('exit1', $status, ['sendmail_path' => 'exit 1']);
compare_with_stock('missing', $status, ['sendmail_path' => 'rubbish 2>/dev/null']);
?>
--EXPECT--
plain: identical (3798 bytes)
strict: identical (434 bytes)
x_header: identical (4671 bytes)
mixed_lf: identical (4549 bytes)
forced: identical (4496 bytes)
forced_empty: identical (3734 bytes)
mail_log: identical (576 bytes)
exit75: identical (35 bytes)
exit1: identical (36 bytes)
missing: identical (36 bytes)
