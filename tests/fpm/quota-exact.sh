#!/bin/bash
# Rate exactness across processes: 8 php-fpm workers serve 60 concurrent requests
# that each send one message against a quota of 20/1h. Exactly 20 reach sendmail,
# 40 are queued, every request gets true, and the counters equal the ledger.
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
echo json_encode(['pid' => getmypid(), 'ok' => mail("to@example.com", "quota test", "m")]), "\n";
PHP
workers=8 requests=60 quota=20
fpm_start "$dir" $workers \
  "php_admin_value[sendmail_path] = $dir/sink.sh $dir/sent.out" \
  "php_admin_value[mailguard.state_dir] = $dir/state" \
  "php_admin_value[mailguard.account] = pool-test" \
  "php_admin_value[mailguard.rate_quota] = $quota/1h" \
  "php_admin_value[mailguard.rate_burst] = "
clients=()
for i in $(seq 1 $requests); do
  fpm_get "$dir" "$dir/send.php" > "$dir/resp.$i" &
  clients+=($!)
done
wait "${clients[@]}"
ok=$(cat "$dir"/resp.* | grep -c '"ok":true' || true)
pids=$(cat "$dir"/resp.* | sed 's/.*"pid":\([0-9]*\).*/\1/' | sort -u | wc -l)
piped=$(grep -c '^\.$' "$dir/sent.out" || true)
json=$("$MAILGUARD_BIN" status --json --account pool-test --state-dir "$dir/state")
sent=$(echo "$json" | php -r 'echo json_decode(stream_get_contents(STDIN))->sent_total;')
queued=$(echo "$json" | php -r 'echo json_decode(stream_get_contents(STDIN))->queued;')
echo "requests=$requests true=$ok workers_seen=$pids piped=$piped sent_total=$sent queued=$queued"
"$MAILGUARD_BIN" integrity --state-dir "$dir/state"
[ "$ok" -eq $requests ] && [ "$piped" -eq $quota ] && [ "$sent" -eq $quota ] \
  && [ "$queued" -eq $((requests - quota)) ] && [ "$pids" -ge 2 ]
echo "fpm quota exactness: ok"
