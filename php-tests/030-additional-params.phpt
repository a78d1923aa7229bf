--TEST--
5th parameter: -f/-r address and the harmless options (-i, -oi, -t, -n, -v, -od[biq], -N, -V, -B) pass; -X, -C, -O, -o..., -b..., -d are refused (CVE-2016-10033), objects included
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
sendmail_path="{PWD}/tools/record.sh {PWD}/030.out"
--FILE--
<?php
@unlink(__DIR__ . '/030.out');
foreach (["-fuser@example.com", "-f user@example.com", "-f'user@example.com'", '-f "user@example.com"', "",
          "-n", "-oi", "-i -t", "-r user@example.com -odb", "-N success,failure -V id42 -B 8BITMIME -v"] as $p) {
    var_dump(mail("a@b", "ok", "m", "", $p));
}
foreach (["-X/var/www/html/shell.php", "-OQueueDirectory=/tmp -X/var/www/html/x.php", "-C/etc/passwd",
          "-be", "-oQ/tmp", "-fa@b.c -X/tmp/log", "-f'a b'@c.d", "-fa@b.c;id", "-f"] as $p) {
    var_dump(mail("a@b", "refused", "m", "", $p));
}

// A Stringable object is converted once, before the check: it cannot slip past.
class Sneaky {
    public int $calls = 0;
    function __toString(): string { $this->calls++; return "-X/var/www/html/shell.php"; }
}
$o = new Sneaky;
var_dump(mail("a@b", "refused", "m", "", $o));
echo "__toString calls: {$o->calls}\n";

class Honest {
    public int $calls = 0;
    function __toString(): string { $this->calls++; return "-fhonest@example.com"; }
}
$o = new Honest;
var_dump(mail("a@b", "ok", "m", "", $o));
echo "__toString calls: {$o->calls}\n";

$sent = file_get_contents(__DIR__ . '/030.out');
echo "refused messages that reached sendmail: ", substr_count($sent, "Subject: refused"), "\n";
preg_match_all('/^ARG\[(.*)\]$/m', $sent, $m);
echo "sendmail argv seen: ", implode(' | ', $m[1]), "\n";
?>
--CLEAN--
<?php @unlink(__DIR__ . '/030.out'); ?>
--EXPECTF--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-X/var/www/html/shell.php"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-OQueueDirectory=/tmp -X/var/www/html/x.php"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-C/etc/passwd"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-be"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-oQ/tmp"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-fa@b.c -X/tmp/log"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-f'a b'@c.d"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-fa@b.c;id"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-f"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)

Warning: mailguard: message refused: the 5th parameter of mail() may only carry the envelope sender (-f or -r address) and the harmless sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME, got "-X/var/www/html/shell.php"; options that change files, configuration or mode (-X, -C, -O, -o..., -b..., -d...) are not allowed (CVE-2016-10033) in %s on line %d
bool(false)
__toString calls: 1
bool(true)
__toString calls: 1
refused messages that reached sendmail: 0
sendmail argv seen: -fuser@example.com | -f | user@example.com | -fuser@example.com | -f | user@example.com | -n | -oi | -i | -t | -r | user@example.com | -odb | -N | success,failure | -V | id42 | -B | 8BITMIME | -v | -fhonest@example.com
