<?php
// A compromised customer script (served by its own php-fpm pool, as its own uid) trying
// everything issue 10 lists against hardened mode. ?a=ACTION&n=POOL; prints one JSON
// object. For the "attack" results each value starts with "blocked:" or "SUCCEEDED:";
// attacks.sh fails on any "SUCCEEDED:".
$cfg = json_decode(file_get_contents(__DIR__ . '/cfg.json'), true);
$state = $cfg['state'];
$sock = $cfg['sock'];
$n = (int)($_GET['n'] ?? 0);
$home = $cfg['home'][$n] ?? '/nonexistent';
$tok = $_GET['tok'] ?? 'x';
$r = [];

// t(NAME, FN): FN returns the attack's result; false/null/[]/'' (or an exception) = blocked.
function t(string $name, callable $f): void
{
    global $r;
    error_clear_last();
    try {
        $v = @$f();
    } catch (Throwable $e) {
        $r[$name] = 'blocked: ' . get_class($e) . ': ' . $e->getMessage();
        return;
    }
    if ($v === false || $v === null || $v === [] || $v === '' || $v === 0) {
        $why = error_get_last()['message'] ?? json_encode($v);
        $r[$name] = 'blocked: ' . $why;
    } else {
        $r[$name] = 'SUCCEEDED: ' . substr(is_string($v) ? $v : json_encode($v), 0, 200);
    }
}

// One hand-made frame on the socket: u32 BE JSON length, u64 BE body length, JSON, body.
function raw(string $sock, array $hdr, string $body = ''): array
{
    $s = @stream_socket_client('unix://' . $sock, $errno, $errstr, 5);
    if (!$s) {
        return ['reply' => 'connect-failed', 'reason' => $errstr];
    }
    stream_set_timeout($s, 30);
    $json = json_encode($hdr);
    fwrite($s, pack('N', strlen($json)) . pack('J', strlen($body)) . $json . $body);
    $head = stream_get_contents($s, 12);
    if (strlen($head) < 12) {
        return ['reply' => 'short-answer'];
    }
    $len = unpack('N', substr($head, 0, 4))[1];
    $ans = json_decode(stream_get_contents($s, $len), true);
    fclose($s);
    return is_array($ans) ? $ans : ['reply' => 'unreadable'];
}

// What a forged submission claims on top of the real fields (all must be ignored).
function forged(array $extra = []): array
{
    return $extra + [
        'op' => 'submit', 'entry' => 'mail', 'from_headers' => true,
        'origin' => ['file' => '/fake.php', 'line' => 1, 'uid' => 0, 'pid' => 1, 'claimed' => false,
                     'sapi' => 'cli', 'vhost' => 'other-customer.example'],
        'account' => 'blog', 'uid' => 0, 'gid' => 0, 'user' => 'root',
        'checksum' => str_repeat('0', 64), 'sha256' => str_repeat('0', 64),
        'spam' => ['score' => 0.0, 'rules' => [], 'verdict' => 'ham'], 'verdict' => 'ham',
        'spam_check' => false, 'allow_control' => true, 'status' => 'active',
        'limits' => ['quota' => null, 'burst' => null], 'mode' => 'observe',
    ];
}

$spam = "To: victim@example.com\r\nSubject: FREE GIFT CARD WAITING FOR YOU TODAY\r\n"
    . "From: Rewards Center <rewards@promo-center.example>\r\nMIME-Version: 1.0\r\n"
    . "Content-Type: text/html; charset=UTF-8\r\n\r\n"
    . "<p>Congratulations! You have been selected to receive a \$500 gift card.</p>"
    . "<p><a href=\"http://91.134.22.7/claim?id=88213\">Claim your reward now</a></p>\r\n";

switch ($_GET['a'] ?? '') {
    case 'fs':
        $files = ['mailguard.db', 'mailguard.db-wal', 'mailguard.db-shm', 'mailguard.lock', 'runner.lock'];
        t('glob(state/*)', fn() => glob("$state/*"));
        t('glob(state/.*)', fn() => array_diff(glob("$state/.*") ?: [], ["$state/.", "$state/.."]));
        t('scandir(state)', fn() => scandir($state));
        t('opendir(state)', fn() => opendir($state));
        t('touch(state/new)', fn() => touch("$state/new"));
        t('mkdir(state/x)', fn() => mkdir("$state/x"));
        t('rename(state)', fn() => rename($state, "$home/stolen-state"));
        t('rmdir(state)', fn() => rmdir($state));
        t('chmod(state, 0777)', fn() => chmod($state, 0777));
        foreach ($files as $f) {
            $p = "$state/$f";
            t("file_exists($f)", fn() => file_exists($p) ? 'exists' : false);
            t("file_get_contents($f)", fn() => file_get_contents($p));
            t("fopen($f, r)", fn() => fopen($p, 'r'));
            t("fopen($f, r+)", fn() => fopen($p, 'r+'));
            t("fopen($f, c)", fn() => fopen($p, 'c'));
            t("file_put_contents($f, truncate)", fn() => file_put_contents($p, ''));
            t("unlink($f)", fn() => unlink($p));
            t("rename($f)", fn() => rename($p, "$home/$f"));
            t("copy($f)", fn() => copy($p, "$home/$f.copy"));
            t("link($f)", fn() => link($p, "$home/$f.hard"));
        }
        // A symlink the script owns, pointing into the state: the kernel still checks.
        @unlink("$home/db.link");
        symlink("$state/mailguard.db", "$home/db.link");
        t('file_get_contents(symlink to db)', fn() => file_get_contents("$home/db.link"));
        // The socket's directory: the socket cannot be removed or replaced.
        t('unlink(socket)', fn() => unlink($sock));
        t('rename(socket)', fn() => rename($sock, "$home/sock"));
        t('touch(socket dir/x)', fn() => touch(dirname($sock) . '/x'));
        // Through the daemon's process: /proc needs ptrace rights over another uid.
        $pid = $cfg['daemon_pid'];
        t("scandir(/proc/$pid/fd)", fn() => scandir("/proc/$pid/fd"));
        $got = [];
        for ($fd = 0; $fd < 40; $fd++) {
            $c = @file_get_contents("/proc/$pid/fd/$fd", false, null, 0, 64);
            if ($c !== false) {
                $got[] = $fd;
            }
        }
        t("file_get_contents(/proc/$pid/fd/0..39)", fn() => $got);
        t("file_get_contents(/proc/$pid/root/state/mailguard.db)",
            fn() => file_get_contents("/proc/$pid/root$state/mailguard.db"));
        t("file_get_contents(/proc/$pid/environ)", fn() => file_get_contents("/proc/$pid/environ"));
        t("scandir(/proc/$pid/cwd)", fn() => scandir("/proc/$pid/cwd"));
        // Signals: another uid's daemon.
        t("exec(kill -9 $pid)", function () use ($pid) {
            exec("kill -9 $pid 2>&1", $o, $rc);
            return $rc === 0 ? 'killed' : false;
        });
        t("exec(kill -STOP $pid)", function () use ($pid) {
            exec("kill -STOP $pid 2>&1", $o, $rc);
            return $rc === 0 ? 'stopped' : false;
        });
        break;

    case 'sqlite':
        $db = "$state/mailguard.db";
        $attack = "UPDATE accounts SET status='active'; DELETE FROM rate_log;";
        t('SQLite3(db)', function () use ($db, $attack) {
            $h = new SQLite3($db);
            return $h->exec($attack) ? 'updated' : false;
        });
        t('SQLite3(db, READONLY)', function () use ($db) {
            $h = new SQLite3($db, SQLITE3_OPEN_READONLY);
            return $h->querySingle('SELECT count(*) FROM messages');
        });
        t('SQLite3(file: URI ?mode=ro)', function () use ($db) {
            $h = new SQLite3("file:$db?mode=ro&immutable=1", SQLITE3_OPEN_READONLY);
            return $h->querySingle('SELECT count(*) FROM messages');
        });
        t('SQLite3(symlink to db)', function () use ($home, $db, $attack) {
            @unlink("$home/db2.link");
            symlink($db, "$home/db2.link");
            $h = new SQLite3("$home/db2.link");
            return $h->exec($attack) ? 'updated' : false;
        });
        t('PDO(sqlite:db)', function () use ($db, $attack) {
            $h = new PDO("sqlite:$db", null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
            return $h->exec($attack) !== false ? 'updated' : false;
        });
        t('PDO(sqlite:db) read', function () use ($db) {
            $h = new PDO("sqlite:$db", null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
            return $h->query('SELECT count(*) FROM messages')->fetchColumn();
        });
        t('SQLite3 ATTACH db', function () use ($home, $db) {
            $h = new SQLite3("$home/mine.db");
            $h->exec("ATTACH DATABASE '$db' AS mg");
            return $h->querySingle('SELECT count(*) FROM mg.messages');
        });
        $r['extensions'] = (class_exists('SQLite3') ? 'sqlite3 ' : '') . (in_array('sqlite', PDO::getAvailableDrivers()) ? 'pdo_sqlite' : '');
        break;

    case 'dashboard':
        $auth = $cfg['auth'];
        t('file_get_contents(dashboard-auth)', fn() => file_get_contents($auth));
        t('fopen(dashboard-auth, a)', fn() => fopen($auth, 'a'));
        t('file_put_contents(dashboard-auth, APPEND)',
            fn() => file_put_contents($auth, "evil:\$2y\$10\$abcdefghijklmnopqrstuv:*\n", FILE_APPEND));
        t('file_put_contents(dashboard-auth, malformed)', fn() => file_put_contents($auth, "garbage\n"));
        t('unlink(dashboard-auth)', fn() => unlink($auth));
        t('rename(dashboard-auth)', fn() => rename($auth, "$home/auth"));
        t('chmod(dashboard-auth)', fn() => chmod($auth, 0666));
        t('touch(etc/dashboard-auth.new)', fn() => touch(dirname($auth) . '/dashboard-auth.new'));
        t('file_put_contents(operator file)', fn() => file_put_contents($cfg['conf'], "[accounts]\nmap = \"uid\"\n", FILE_APPEND));
        break;

    case 'raw-forge':
        // Claims another account, a verdict, a checksum, an origin; a normal message.
        $body = "To: victim@example.com\r\nSubject: raw-forge-$tok\r\n\r\nhello from a raw client\r\nEND-$tok\r\n";
        $r['ham'] = raw($sock, forged(), $body);
        // The same claims on a spammy message.
        $r['spam'] = raw($sock, forged(), $spam);
        // Spam through mail() itself (the extension checks, the daemon checks again).
        $r['spam_mail'] = mail('victim@example.com', 'FREE GIFT CARD WAITING FOR YOU TODAY',
            substr($spam, strpos($spam, "\r\n\r\n") + 4),
            "From: Rewards Center <rewards@promo-center.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=UTF-8");
        // Options through the protocol's own fields: refused by the daemon's checks.
        $r['sender_option'] = raw($sock, forged(['sender' => "x@y.example -X/tmp/pwned-raw-$tok"]), $body);
        $r['params_option'] = raw($sock, forged(['params' => "-fx@y.example -X/tmp/pwned-raw-$tok"]), $body);
        $r['recipient_option'] = raw($sock, forged(['recipients' => ["-oQ/tmp/pwned-raw-$tok"], 'from_headers' => false]), $body);
        // Operator actions on the raw socket (allow_control = false) and an unknown op.
        foreach (['unblock', 'purge', 'block'] as $op) {
            $r["op_$op"] = raw($sock, ['op' => $op, 'account' => 'blog']);
        }
        $r['op_errors'] = raw($sock, ['op' => 'errors', 'limit' => 10, 'offset' => 0, 'account' => 'blog']);
        $r['op_unknown'] = raw($sock, ['op' => 'set_status', 'account' => 'shop', 'status' => 'active']);
        $r['op_status'] = raw($sock, ['op' => 'status', 'account' => 'blog']);
        break;

    case 'inject':
        putenv("USER=u -C/tmp/pwned-env-$tok");
        putenv("LOGNAME=u -C/tmp/pwned-env-$tok");
        $r['ini_set'] = ini_set('sendmail_from', "x@y.example -X/tmp/pwned-ini-$tok") !== false;
        $r['mail_with_bad_sendmail_from'] = mail('victim@example.com', "inject-a-$tok", "body\r\nEND-$tok");
        $r['warning_a'] = error_get_last()['message'] ?? null;
        ini_set('sendmail_from', "x@y.example\n-X/tmp/pwned-ini2-$tok");
        $r['mail_with_newline_sendmail_from'] = mail('victim@example.com', "inject-b-$tok", "body\r\nEND-$tok");
        ini_set('sendmail_from', ''); // (ini_restore() does not reset sendmail_from in stock PHP 8.2)
        error_clear_last();
        $r['mail_5th_option'] = mail('victim@example.com', "inject-c-$tok", "body\r\nEND-$tok", '',
            "-fx@y.example -X/tmp/pwned-5th-$tok");
        $r['warning_c'] = error_get_last()['message'] ?? null;
        $r['mail_5th_quoted'] = mail('victim@example.com', "inject-d-$tok", "body\r\nEND-$tok", '',
            "-f'x@y.example -X/tmp/pwned-5thq-$tok'");
        // With the poisoned environment only (USER, LOGNAME): the sender comes from the uid.
        $r['mail_env_only'] = mail('victim@example.com', "inject-e-$tok", "body\r\nEND-$tok");
        // A plain -f: allowed, passed as its own argv word.
        $r['mail_plain_f'] = mail('victim@example.com', "inject-f-$tok", "body\r\nEND-$tok", '',
            '-fbounce@shop.example');
        // The sendmail entry with options.
        $bin = $cfg['bin'];
        foreach (['bad_f' => "-f 'x@y.example -X/tmp/pwned-sm-$tok'", 'X' => "-X/tmp/pwned-smX-$tok",
                  'C' => "-C/tmp/pwned-smC-$tok", 'O' => "-O QueueDirectory=/tmp/pwned-smO-$tok"] as $k => $opt) {
            $p = popen("$bin sendmail -t -i $opt 2>/dev/null", 'w');
            fwrite($p, "To: victim@example.com\nSubject: inject-sm-$k-$tok\n\nbody\nEND-$tok\n");
            $r["sendmail_$k"] = pclose($p);
        }
        break;

    case 'popen':
        $bin = $cfg['bin'];
        $p = popen("$bin sendmail -t -i", 'w');
        fwrite($p, "To: victim@example.com\nSubject: popen-$tok\n\nbody\nEND-$tok\n");
        $r['exit'] = pclose($p);
        break;

    case 'send':
        // ?count=N plain mail() calls; the results.
        $ok = [];
        for ($i = 0; $i < (int)($_GET['count'] ?? 1); $i++) {
            $ok[] = mail('victim@example.com', "send-$tok-$i", "body\r\nEND-$tok-$i");
        }
        $r['ok'] = $ok;
        break;

    case 'status':
        $r = MailGuard\status();
        break;

    case 'burst':
        // Until the account is inactive (the burst limit tripped).
        $sent = 0;
        for ($i = 0; $i < 100 && MailGuard\status()['status'] !== 'inactive'; $i++) {
            $r['results'][] = mail('victim@example.com', "burst-$tok-$i", "body\r\nEND-$tok-$i");
        }
        $r['status'] = MailGuard\status()['status'];
        break;

    case 'bypass':
        // The account is inactive; every way out.
        $body = "To: victim@example.com\r\nSubject: bypass-raw-$tok\r\n\r\nbody\r\nEND-$tok\r\n";
        $r['raw_submit'] = raw($sock, forged(), $body);
        $r['raw_submit_sendmail_entry'] = raw($sock, forged(['entry' => 'sendmail', 'from_headers' => false,
            'recipients' => ['victim@example.com']]), $body);
        $r['raw_unblock'] = raw($sock, ['op' => 'unblock']);
        try {
            MailGuard\unblock();
            $r['MailGuard\\unblock()'] = 'returned';
        } catch (Throwable $e) {
            $r['MailGuard\\unblock()'] = 'exception: ' . $e->getMessage();
        }
        $r['mail'] = mail('victim@example.com', "bypass-mail-$tok", "body\r\nEND-$tok");
        $r['mb_send_mail'] = function_exists('mb_send_mail')
            ? mb_send_mail('victim@example.com', "bypass-mb-$tok", "body END-$tok") : 'mbstring missing';
        $r['error_log'] = error_log("bypass-errorlog-$tok END-$tok", 1, 'victim@example.com', "Subject: bypass-el-$tok");
        $p = popen($cfg['bin'] . ' sendmail -t -i', 'w');
        fwrite($p, "To: victim@example.com\nSubject: bypass-popen-$tok\n\nbody\nEND-$tok\n");
        $r['popen_sendmail'] = pclose($p);
        $p = popen($cfg['bin'] . ' sendmail -i victim@example.com', 'w');
        fwrite($p, "Subject: bypass-popen2-$tok\n\nbody\nEND-$tok\n");
        $r['popen_sendmail_rcpt'] = pclose($p);
        $r['status'] = MailGuard\status()['status'];
        break;

    case 'hog':
        // Take every connection slot of the daemon (idle connections), and trickle one
        // request a byte a second; report how many connections were answered at once
        // ("busy") and when the trickling one was cut off.
        $secs = (float)($_GET['secs'] ?? 15);
        $t0 = microtime(true);
        $t = stream_socket_client('unix://' . $sock, $e, $es, 2);
        $idle = [];
        for ($i = 0; $i < 600; $i++) {
            $c = @stream_socket_client('unix://' . $sock, $e, $es, 2);
            if (!$c) {
                break;
            }
            $idle[] = $c;
        }
        $r['opened'] = count($idle);
        $frame = pack('N', 100) . pack('J', 0) . str_repeat(' ', 100);
        $r['trickle_cut_after'] = null;
        for ($i = 0; $i < strlen($frame) && microtime(true) - $t0 < $secs; $i++) {
            @fwrite($t, $frame[$i]);
            $rd = [$t]; $wr = $ex = [];
            if (stream_select($rd, $wr, $ex, 1) > 0) {
                $head = fread($t, 12);
                $len = strlen($head) == 12 ? unpack('N', substr($head, 0, 4))[1] : 0;
                $r['trickle_answer'] = $len ? json_decode(fread($t, $len), true) : 'closed';
                $r['trickle_cut_after'] = round(microtime(true) - $t0, 1);
                break;
            }
        }
        // How many idle connections the daemon answered at once (over the per-uid cap).
        $busy = 0;
        foreach ($idle as $c) {
            $rd = [$c]; $wr = $ex = [];
            if (stream_select($rd, $wr, $ex, 0) > 0) {
                $busy++;
            }
        }
        $r['answered_at_once'] = $busy;
        // Keep the rest of the connections for the whole time.
        usleep((int)max(0, ($secs - (microtime(true) - $t0)) * 1e6));
        break;

    default:
        $r['error'] = 'unknown action';
}
echo json_encode($r, JSON_UNESCAPED_SLASHES | JSON_PRETTY_PRINT), "\n";
