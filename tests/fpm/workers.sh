#!/bin/bash
# A real php-fpm pool with 4 workers serves a script calling mail(): every worker
# is hooked, every message reaches sendmail through the guard, and an oversized
# one is refused in every worker.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
: "${MAILGUARD_SO:?set MAILGUARD_SO to the built mailguard.so}"
dir=$(mktemp -d /tmp/mg-fpm-XXXXXX)
trap 'fpm_stop "$dir"; rm -rf "$dir"' EXIT
cp "$here/../../php-tests/tools/record.sh" "$dir/record.sh"
# record.sh serialises its records with a lock file next to the output: both writable
# by the pool user.
touch "$dir/sent.out" "$dir/sent.out.lock"; chmod 666 "$dir/sent.out" "$dir/sent.out.lock"
cat > "$dir/send.php" <<'PHP'
<?php
usleep(150000); // keep the worker busy so concurrent requests spread over the pool
$ok = mail("to@example.com", "fpm " . getmypid(), "hello from " . getmypid());
$big = @mail("to@example.com", "big", str_repeat("x", 3000));
echo json_encode(['pid' => getmypid(), 'uid' => posix_getuid(), 'hooked' => MailGuard\status()['hooked'],
                  'sent' => $ok, 'big' => $big, 'warning' => error_get_last()['message'] ?? '']), "\n";
PHP
workers=4
fpm_start "$dir" $workers \
  "php_admin_value[sendmail_path] = $dir/record.sh $dir/sent.out" \
  "php_admin_value[mailguard.max_message_size] = 2K" \
  "php_admin_value[mailguard.state_dir] = $dir/state" \
  "php_admin_value[extension] = posix"
requests=24
clients=()
for i in $(seq 1 $requests); do
  fpm_get "$dir" "$dir/send.php" > "$dir/resp.$i" &
  clients+=($!)
done
wait "${clients[@]}"
cat "$dir"/resp.* > "$dir/all.json"
php -n -r '
$lines = file($argv[1], FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES);
$pids = []; $bad = 0;
foreach ($lines as $l) {
    $r = json_decode($l, true);
    if (!$r) { echo "not JSON: $l\n"; $bad++; continue; }
    $pids[$r["pid"]] = true;
    if ($r["hooked"] !== ["mail", "error_log"] || $r["sent"] !== true || $r["big"] !== false
        || !str_starts_with($r["warning"], "mailguard: message refused: it is") || $r["uid"] === 0) {
        echo "unexpected: $l\n"; $bad++;
    }
}
$sent = substr_count(file_get_contents($argv[2]), "STDIN\n");
$big = substr_count(file_get_contents($argv[2]), "Subject: big");
printf("responses=%d workers_seen=%d messages_piped=%d oversized_piped=%d\n", count($lines), count($pids), $sent, $big);
exit($bad === 0 && count($lines) == $argv[3] && count($pids) == $argv[4] && $sent == $argv[3] && $big === 0 ? 0 : 1);
' "$dir/all.json" "$dir/sent.out" $requests $workers
echo "fpm workers: ok"
