#!/bin/bash
# Several windows per limit in hardened mode (issue 13): as quota-exact.sh, but the operator
# file gives each account the quota "60/1h, 40/1d": the tighter window decides, exactly.
# (From quota-exact.sh:) 2 customers (mgcust1 -> shop,
# mgcust2 -> blog), each with its own php-fpm pool of 16 workers, each account's quota
# (burst off). 100 concurrent requests per customer, one mail() each, all at once:
# every mail() returns true; exactly 40 per account reach sendmail (by the envelope
# sender the daemon derives from the uid), 60 per account stay queued; the counters of
# `mailguard status --json` say the same and equal the ledger (`mailguard integrity`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
start=$SECONDS
workers=${WORKERS:-16} requests=${REQUESTS:-100} quota=${QUOTA:-40}
hg_init
trap hg_cleanup EXIT
HG_QUOTA="quota = \"$((quota + 20))/1h, $quota/1d\"" HG_BURST='burst = ""' hg_config
hg_daemon_start
cat > "$T/www/send.php" <<'PHP'
<?php
$ok = mail("to@example.com", "quota " . ($_GET['i'] ?? ''), "m");
echo json_encode(['pid' => getmypid(), 'ok' => $ok]), "\n";
PHP
chmod 644 "$T/www/send.php"
hg_fpm_start "$workers"
t0=$(date +%s%N)
clients=()
for i in $(seq 1 "$requests"); do
  for n in 1 2; do
    hg_get $n "$T/www/send.php" "i=$n-$i" > "$T/resp.$n.$i" &
    clients+=($!)
  done
done
wait "${clients[@]}"
t1=$(date +%s%N)
echo "$((requests * 2)) requests in $(( (t1 - t0) / 1000000 )) ms"
settled() { [ "$(hg_delivered)" -ge $((2 * quota)) ]; }
hg_wait 30 settled || true
sleep 2   # a runner that sent more than the quota would do so now
hg_fpm_stop
fail=0
for n in 1 2; do
  acct=$([ $n = 1 ] && echo shop || echo blog)
  ok=$(cat "$T"/resp.$n.* | grep -c '"ok":true' || true)
  pids=$(cat "$T"/resp.$n.* | sed -n 's/.*"pid":\([0-9]*\).*/\1/p' | sort -u | wc -l)
  piped=$(hg_delivered_from mgcust$n)
  sent=$(hg_status_field $acct sent_total)
  queued=$(hg_status_field $acct queued)
  echo "$acct (mgcust$n): requests=$requests true=$ok workers_seen=$pids delivered=$piped sent_total=$sent queued=$queued"
  [ "$ok" -eq "$requests" ] && [ "$piped" -eq "$quota" ] && [ "$sent" -eq "$quota" ] \
    && [ "$queued" -eq $((requests - quota)) ] && [ "$pids" -ge 2 ] || fail=1
done
[ "$(hg_delivered)" -eq $((2 * quota)) ] || { echo "total delivered $(hg_delivered) != $((2 * quota))"; fail=1; }
hg_mg queue list > "$T/queue.out"
for acct in shop blog; do
  q=$(grep -c "^ *[0-9]*  $acct " "$T/queue.out" || true)
  echo "queue list: $acct $q queued"
  [ "$q" -eq $((requests - quota)) ] || fail=1
done
hg_mg integrity || fail=1
[ $fail = 0 ] || hg_fail "quota not exact (see above)"
hg_daemon_stop || hg_fail "daemon did not stop cleanly"
echo "hardened several windows exactness (2 customers x $workers workers): ok ($((SECONDS - start)) s)"
