#!/bin/bash
# Rate exactness across 16 concurrent php CLI processes, each sending 10 messages
# against a quota of 50/1h: exactly 50 are released, 110 queued, no lost update.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${MAILGUARD_SO:?}" "${MAILGUARD_BIN:?}"
dir=$(mktemp -d /tmp/mg-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
sink="$here/../../php-tests/tools/sink.sh"
procs=16 each=10 quota=50
for p in $(seq 1 $procs); do
  php -n -d "extension=$MAILGUARD_SO" -d "mailguard.state_dir=$dir/state" -d mailguard.account=cli-test \
    -d "mailguard.rate_quota=$quota/1h" -d mailguard.rate_burst= -d "sendmail_path=$sink $dir/sent.$p" \
    -r 'for ($i = 0; $i < '$each'; $i++) { echo mail("to@example.com", "s", "m") ? "T" : "F"; }' > "$dir/out.$p" &
done
wait
trues=$(cat "$dir"/out.* | tr -cd T | wc -c)
piped=$(cat "$dir"/sent.* 2>/dev/null | grep -c '^\.$' || true)
json=$("$MAILGUARD_BIN" status --json --account cli-test --state-dir "$dir/state")
sent=$(echo "$json" | php -r 'echo json_decode(stream_get_contents(STDIN))->sent_total;')
queued=$(echo "$json" | php -r 'echo json_decode(stream_get_contents(STDIN))->queued;')
echo "processes=$procs sends=$((procs * each)) true=$trues piped=$piped sent_total=$sent queued=$queued"
"$MAILGUARD_BIN" integrity --state-dir "$dir/state"
[ "$trues" -eq $((procs * each)) ] && [ "$piped" -eq $quota ] && [ "$sent" -eq $quota ] \
  && [ "$queued" -eq $((procs * each - quota)) ]
echo "cli quota exactness: ok"
