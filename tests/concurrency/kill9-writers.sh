#!/bin/bash
# Crash safety: 16 php CLI processes send mail in a loop while random ones are
# killed with SIGKILL at random points, for a few seconds. Afterwards the store
# passes its integrity check (SQLite's own, and every counter equals its rows),
# and every message a script saw accepted (logged after mail() returned true) is
# in the store.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${MAILGUARD_SO:?}" "${MAILGUARD_BIN:?}"
dir=$(mktemp -d /tmp/mg-kill-XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
sink="$here/../../php-tests/tools/sink.sh"
writer() {
  php -n -d "extension=$MAILGUARD_SO" -d "mailguard.state_dir=$dir/state" -d mailguard.account=crash \
    -d mailguard.rate_quota=100/1h -d mailguard.rate_burst= -d "sendmail_path=$sink $dir/sent.$1" \
    -r 'while (true) { if (mail("to@example.com", "crash", str_repeat("x", 2000))) { file_put_contents($argv[1], "T", FILE_APPEND); } }' \
    "$dir/accepted.$1" >/dev/null 2>&1 &
  echo $!
}
declare -a pids
for p in $(seq 1 16); do pids[$p]=$(writer $p); done
kills=0
end=$((SECONDS + 6))
while [ $SECONDS -lt $end ]; do
  sleep 0.0$((RANDOM % 9 + 1))
  p=$((RANDOM % 16 + 1))
  kill -9 "${pids[$p]}" 2>/dev/null && kills=$((kills + 1))
  pids[$p]=$(writer $p)
done
for p in $(seq 1 16); do kill -9 "${pids[$p]}" 2>/dev/null || true; done
wait 2>/dev/null || true
accepted=$(cat "$dir"/accepted.* 2>/dev/null | wc -c)
stored=$(sqlite3 "$dir/state/mailguard.db" "select count(*) from messages where account='crash'")
echo "kills=$kills accepted_seen_by_scripts=$accepted messages_in_store=$stored"
"$MAILGUARD_BIN" integrity --state-dir "$dir/state"
[ "$kills" -gt 20 ] && [ "$accepted" -gt 0 ] && [ "$stored" -ge "$accepted" ]
echo "kill -9 of writers: ok"
