#!/bin/bash
# Recipients count, exactly, across processes (issue 13): 16 php-fpm workers serve 64
# concurrent requests. 56 send one message to 5 recipients (3 in To, 2 in Cc) against a
# quota of 100/1h: exactly 20 messages (100 recipients) reach sendmail, 36 are queued,
# every one of those requests gets true. 8 send to 101 recipients: refused (false, the
# warning names the cap), nothing stored. The counters equal the ledger.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
: "${MAILGUARD_SO:?}" "${MAILGUARD_BIN:?}"
dir=$(mktemp -d /tmp/mg-fpm-XXXXXX)
trap 'fpm_stop "$dir"; rm -rf "$dir"' EXIT
cp "$here/../../php-tests/tools/sink.sh" "$dir/sink.sh"
touch "$dir/sent.out"; chmod 666 "$dir/sent.out"
cat > "$dir/send.php" <<'PHP'
<?php
$n = (int)($_GET['n'] ?? 5);
$to = implode(', ', array_map(fn($i) => "r$i@example.com", range(1, min($n, 3))));
$cc = $n > 3 ? "Cc: " . implode(', ', array_map(fn($i) => "c$i@example.com", range(4, $n))) : "";
$warning = '';
set_error_handler(function ($no, $text) use (&$warning) { $warning = $text; return true; });
echo json_encode(['pid' => getmypid(), 'ok' => mail($to, "recipients test", "m", $cc), 'warning' => $warning]), "\n";
PHP
workers=16 requests=64 quota=100
fpm_start "$dir" $workers \
  "php_admin_value[sendmail_path] = $dir/sink.sh $dir/sent.out" \
  "php_admin_value[mailguard.state_dir] = $dir/state" \
  "php_admin_value[mailguard.account] = pool-test" \
  "php_admin_value[mailguard.rate_quota] = $quota/1h" \
  "php_admin_value[mailguard.rate_burst] = "
clients=()
for i in $(seq 1 $requests); do
  if [ $((i % 8)) -eq 0 ]; then n=101; else n=5; fi
  fpm_get "$dir" "$dir/send.php" "n=$n" > "$dir/resp.$i" &
  clients+=($!)
done
wait "${clients[@]}"
ok=$(cat "$dir"/resp.* | grep -c '"ok":true' || true)
refused=$(cat "$dir"/resp.* | grep '"ok":false' | grep -c 'has 101 recipients' || true)
pids=$(cat "$dir"/resp.* | sed 's/.*"pid":\([0-9]*\).*/\1/' | sort -u | wc -l)
piped=$(grep -c '^\.$' "$dir/sent.out" || true)
json=$("$MAILGUARD_BIN" status --json --account pool-test --state-dir "$dir/state")
sent=$(echo "$json" | php -r 'echo json_decode(stream_get_contents(STDIN))->sent_total;')
queued=$(echo "$json" | php -r 'echo json_decode(stream_get_contents(STDIN))->queued;')
echo "requests=$requests true=$ok refused=$refused workers_seen=$pids piped=$piped sent_total=$sent queued=$queued"
"$MAILGUARD_BIN" integrity --state-dir "$dir/state"
[ "$ok" -eq 56 ] && [ "$refused" -eq 8 ] && [ "$piped" -eq 20 ] && [ "$sent" -eq 20 ] \
  && [ "$queued" -eq 36 ] && [ "$pids" -ge 2 ]
echo "fpm recipients exactness: ok"
