#!/bin/bash
# Recipients count, exactly, in hardened mode (issue 13): 2 customers (mgcust1 -> shop,
# mgcust2 -> blog), each with a php-fpm pool of 16 workers; quota 40/1h per account
# counted in recipients (the operator file's default). 48 concurrent requests per
# customer: 42 send one message to 4 recipients (2 in To, 2 in Cc), 6 send to 101.
# Exactly 10 messages (40 recipients) per account are delivered by the daemon, 32 stay
# queued, every one of those mail() calls returns true; the 101-recipient ones are
# refused by the daemon's cap (false, the warning names it). Counters equal the ledger.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
start=$SECONDS
workers=16 requests=48 quota=40
hg_init
trap hg_cleanup EXIT
HG_QUOTA="quota = \"$quota/1h\"" HG_BURST='burst = ""' hg_config
hg_daemon_start
cat > "$T/www/send.php" <<'PHP'
<?php
$n = (int)($_GET['n'] ?? 4);
$to = "a1@example.com, a2@example.com";
$cc = "Cc: " . implode(', ', array_map(fn($i) => "c$i@example.com", range(3, $n)));
$warning = '';
set_error_handler(function ($no, $text) use (&$warning) { $warning = $text; return true; });
echo json_encode(['pid' => getmypid(), 'ok' => mail($to, "rcpt " . ($_GET['i'] ?? ''), "m", $cc), 'warning' => $warning]), "\n";
PHP
chmod 644 "$T/www/send.php"
hg_fpm_start "$workers"
clients=()
for i in $(seq 1 "$requests"); do
  if [ $((i % 8)) -eq 0 ]; then n=101; else n=4; fi
  for c in 1 2; do
    hg_get $c "$T/www/send.php" "i=$c-$i&n=$n" > "$T/resp.$c.$i" &
    clients+=($!)
  done
done
wait "${clients[@]}"
settled() { [ "$(hg_delivered)" -ge 20 ]; }
hg_wait 30 settled || true
sleep 2   # a runner that sent more than the quota would do so now
hg_fpm_stop
fail=0
for c in 1 2; do
  acct=$([ $c = 1 ] && echo shop || echo blog)
  ok=$(cat "$T"/resp.$c.* | grep -c '"ok":true' || true)
  refused=$(cat "$T"/resp.$c.* | grep '"ok":false' | grep -c 'has 101 recipients' || true)
  piped=$(hg_delivered_from mgcust$c)
  sent=$(hg_status_field $acct sent_total)
  queued=$(hg_status_field $acct queued)
  echo "$acct (mgcust$c): true=$ok refused=$refused delivered=$piped sent_total=$sent queued=$queued"
  [ "$ok" -eq 42 ] && [ "$refused" -eq 6 ] && [ "$piped" -eq 10 ] && [ "$sent" -eq 10 ] \
    && [ "$queued" -eq 32 ] || fail=1
done
hg_mg integrity || fail=1
[ $fail = 0 ] || hg_fail "recipients not counted exactly (see above)"
hg_daemon_stop || hg_fail "daemon did not stop cleanly"
echo "hardened recipients exactness (2 customers x $workers workers): ok ($((SECONDS - start)) s)"
