#!/bin/bash
# Several windows per limit, exact across processes (issue 13): 16 php-fpm workers serve
# 60 concurrent requests, one message each, against mailguard.rate_quota = "30/1h, 20/1d":
# the tighter window decides, exactly 20 reach sendmail, 40 are queued, every request
# gets true, and status() shows both windows.
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
echo json_encode(['pid' => getmypid(), 'ok' => mail("to@example.com", "windows test", "m")]), "\n";
PHP
cat > "$dir/status.php" <<'PHP'
<?php
foreach (MailGuard\status()['windows'] as $w) echo "$w[kind] $w[limit] used=$w[used] remaining=$w[remaining]\n";
PHP
workers=16 requests=60
fpm_start "$dir" $workers \
  "php_admin_value[sendmail_path] = $dir/sink.sh $dir/sent.out" \
  "php_admin_value[mailguard.state_dir] = $dir/state" \
  "php_admin_value[mailguard.account] = pool-test" \
  "php_admin_value[mailguard.rate_quota] = \"30/1h, 20/1d\"" \
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
shown=$(fpm_get "$dir" "$dir/status.php")
echo "requests=$requests true=$ok workers_seen=$pids piped=$piped sent_total=$sent queued=$queued"
echo "$shown"
"$MAILGUARD_BIN" integrity --state-dir "$dir/state"
[ "$ok" -eq $requests ] && [ "$piped" -eq 20 ] && [ "$sent" -eq 20 ] \
  && [ "$queued" -eq 40 ] && [ "$pids" -ge 2 ] \
  && [ "$shown" = "$(printf 'quota 30/1h used=20 remaining=10\nquota 20/1d used=20 remaining=0')" ]
echo "fpm several windows exactness: ok"
