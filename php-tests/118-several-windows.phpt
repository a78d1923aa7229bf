--TEST--
Several windows per limit: mailguard.rate_quota = "2/1m, 3/1h" (each exact), each shown in status() with what is left and when the next slot frees
--SKIPIF--
<?php if (!extension_loaded('mailguard')) die('skip mailguard not loaded'); ?>
--INI--
mailguard.state_dir={PWD}/118.state
mailguard.rate_quota="3/1h, 2/1m"
mailguard.rate_burst="10/1m, 20/1d"
sendmail_path="{PWD}/tools/sink.sh {PWD}/118.out"
--FILE--
<?php
require __DIR__ . '/tools/state.inc';
for ($i = 1; $i <= 4; $i++) {
    var_dump(mail("a@example.com", "window $i", "m"));
}
$s = MailGuard\status();
mg_show($s, ['sent_total', 'queued']);
echo "quota=", $s['limits']['quota'], " burst=", $s['limits']['burst'], "\n";
foreach ($s['windows'] as $w) {
    printf("%s %s used=%d remaining=%d next_free=%s\n", $w['kind'], $w['limit'], $w['used'], $w['remaining'],
        $w['next_free'] === null ? 'none' : (preg_match('/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/', $w['next_free']) ? 'a time' : $w['next_free']));
}
echo "piped: ", mg_piped(__DIR__ . '/118.out'), "\n";
?>
--CLEAN--
<?php require __DIR__ . '/tools/state.inc'; mg_rm(__DIR__ . '/118.state'); mg_rm(__DIR__ . '/118.out'); ?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
sent_total=2
queued=2
quota=2/1m, 3/1h burst=10/1m, 20/1d
quota 2/1m used=2 remaining=0 next_free=a time
quota 3/1h used=2 remaining=1 next_free=a time
burst 10/1m used=4 remaining=6 next_free=a time
burst 20/1d used=4 remaining=16 next_free=a time
piped: 2
