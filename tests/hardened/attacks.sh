#!/bin/bash
# Hardened mode from the attacker's side (issue 10). Two customers (mgcust1 -> account
# shop, mgcust2 -> account blog), each served by its own php-fpm pool as its own uid;
# `mailguard serve` as the mailguard user owns the state. From each customer's script:
# no read, write, list or unlink of the state directory or its files; SQLite3 and PDO
# cannot open the database; the dashboard credentials cannot be read or written; a raw
# client on the socket that claims another account, a verdict, a checksum, an origin gets
# its real account, its real uid in the origin, and a real spam verdict; sendmail_from,
# putenv(USER=...), the 5th parameter and sendmail options never reach a command line
# (the recording sendmail sees exactly -t -i -f ADDRESS); popen of `mailguard sendmail`
# is counted like mail(); burst -> inactive -> every bypass -> nothing leaves; the other
# customer's status never changes; one customer holding hundreds of connections (or
# trickling a request) does not lock the other out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
start=$SECONDS
hg_init
trap hg_cleanup EXIT
tok=$$-$RANDOM

# Dashboard credentials in an /etc-like directory, as the install puts them.
printf 'admin:$2y$10$abcdefghijklmnopqrstuuGQ3a2n9kM0yq1f6V0gQm3X8K3cW1xUe:*\n' > "$T/etc/dashboard-auth"
chown root:mailguard "$T/etc/dashboard-auth"; chmod 0640 "$T/etc/dashboard-auth"
auth_sum=$(sha256sum < "$T/etc/dashboard-auth")
HG_QUOTA='quota = "1000/1h"' HG_BURST='burst = ""' hg_config '
[account.shop]
burst = "15/1m"
allow_control = false
[account.blog]
quota = "3/1h"
allow_control = false'
conf_sum=$(sha256sum < "$CONF")
# A state directory other users can enter (left by embedded mode, made by hand): refused.
install -d -o mailguard -g mailguard -m 0777 "$T/lib/loose"
rc=0
hg_as mailguard "$MAILGUARD_BIN" serve --socket "$T/run/loose.sock" --state-dir "$T/lib/loose" \
  --config "$CONF" > "$T/loose.out" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q 'chmod 0700' "$T/loose.out" && [ ! -e "$T/run/loose.sock" ] \
  || hg_fail "serve on a 0777 state directory: exit $rc: $(cat "$T/loose.out")"
hg_ok "serve refuses a state directory of mode 0777: $(cat "$T/loose.out")"
hg_daemon_start
dpid=$DAEMON_PID
mg_uid1=$(id -u mgcust1); mg_uid2=$(id -u mgcust2)
host=$(hostname)

cp "$here/attack.php" "$T/www/attack.php"
php -n -r 'echo json_encode(["state" => $argv[1], "sock" => $argv[2], "auth" => $argv[3],
  "conf" => $argv[4], "bin" => $argv[5], "daemon_pid" => (int)$argv[6],
  "home" => [1 => $argv[7] . "/mgcust1", 2 => $argv[7] . "/mgcust2"]]);' \
  "$STATE" "$SOCK" "$T/etc/dashboard-auth" "$CONF" "$MAILGUARD_BIN" "$dpid" "$T/home" > "$T/www/cfg.json"
chmod 644 "$T/www/"*
HG_FPM_EXT="-d extension=sqlite3 -d extension=pdo -d extension=pdo_sqlite -d extension=mbstring" \
  hg_fpm_start 2
php -n -d extension=pdo -d extension=pdo_sqlite -d extension=sqlite3 -r 'exit(class_exists("SQLite3") && in_array("sqlite", PDO::getAvailableDrivers()) ? 0 : 1);' \
  || hg_fail "php8.2-sqlite3 (SQLite3 and pdo_sqlite) is needed: apt-get install php8.2-sqlite3"
verdict=$("$MAILGUARD_BIN" check - <<'EML' || true

To: victim@example.com
Subject: FREE GIFT CARD WAITING FOR YOU TODAY
From: Rewards Center <rewards@promo-center.example>
MIME-Version: 1.0
Content-Type: text/html; charset=UTF-8

<p>Congratulations! You have been selected to receive a $500 gift card.</p><p><a href="http://91.134.22.7/claim?id=88213">Claim your reward now</a></p>
EML
)
echo "$verdict" | grep -q '^verdict: refuse' || hg_fail "precondition: the spam sample is no longer refused by the scorer; pick a spammier one"

echo "== state: $STATE ($(stat -c '%U %a' "$STATE")), socket $SOCK ($(stat -c '%U %a' "$SOCK")), daemon pid $dpid"
[ "$(stat -c '%U %a' "$STATE")" = "mailguard 700" ] || hg_fail "state dir is not mailguard 0700"
for f in "$STATE"/*; do
  [ "$(stat -c '%U' "$f")" = mailguard ] || hg_fail "$f is not owned by mailguard"
  [ $(( $(stat -c '%#a' "$f") & 0077 )) -eq 0 ] || hg_fail "$f is open to group or others: $(stat -c %a "$f")"
done
hg_ok "state directory mailguard 0700, every file in it owned by mailguard with no group/other bits"

# -- customer B (blog) sends, attacks; then its status is the reference ----------------
hg_get 2 "$T/www/attack.php" "a=send&n=2&count=2&tok=b$tok" > "$T/b-send.json"
[ "$(hg_j "$T/b-send.json" '$j["ok"]')" = '[true,true]' ] || hg_fail "blog: mail() not true: $(cat "$T/b-send.json")"
for n in 2 1; do
  name=$([ $n = 1 ] && echo shop || echo blog)
  echo "== customer $n ($name, uid $(id -u mgcust$n)): file system, /proc, signals"
  hg_get $n "$T/www/attack.php" "a=fs&n=$n" > "$T/fs$n.json"
  hg_all_blocked "$T/fs$n.json" "$name" || hg_fail "customer $n reached the state (see above)"
  echo "== customer $n: SQLite3 and PDO"
  hg_get $n "$T/www/attack.php" "a=sqlite&n=$n" > "$T/sql$n.json"
  [ "$(hg_j "$T/sql$n.json" '$j["extensions"]')" = "sqlite3 pdo_sqlite" ] || hg_fail "pool $n lacks SQLite3/pdo_sqlite"
  hg_all_blocked "$T/sql$n.json" "$name" || hg_fail "customer $n opened the database"
  echo "== customer $n: dashboard credentials and operator file"
  hg_get $n "$T/www/attack.php" "a=dashboard&n=$n" > "$T/dash$n.json"
  hg_all_blocked "$T/dash$n.json" "$name" || hg_fail "customer $n reached the dashboard credentials"
done
kill -0 "$dpid" 2>/dev/null || hg_fail "the daemon died (killed by a customer?)"
[ "$(ps -o stat= -p "$dpid" | cut -c1)" != T ] || hg_fail "the daemon was stopped by a customer"
[ "$(sha256sum < "$T/etc/dashboard-auth")" = "$auth_sum" ] && [ "$(stat -c '%U:%G %a' "$T/etc/dashboard-auth")" = "root:mailguard 640" ] \
  || hg_fail "dashboard-auth changed"
[ "$(sha256sum < "$CONF")" = "$conf_sum" ] || hg_fail "the operator file changed"
for f in mailguard.db mailguard.db-wal mailguard.db-shm mailguard.lock; do
  [ -f "$STATE/$f" ] || hg_fail "$STATE/$f is gone"
done
[ -S "$SOCK" ] || hg_fail "the socket is gone"
[ -z "$(ls "$T/home/mgcust1" "$T/home/mgcust2" | grep -E '\.(copy|hard)$|stolen|^sock$|^auth$' || true)" ] || hg_fail "a customer copied something out"
hg_ok "daemon alive and running, state files, socket, dashboard-auth and operator file unchanged"

raw_check() { # N ACCOUNT OTHER UID
  n=$1 acct=$2 other=$3 uid=$4
  echo "== customer $n ($acct): raw socket client with forged account/verdict/checksum/origin"
  hg_get $n "$T/www/attack.php" "a=raw-forge&n=$n&tok=r$n$tok" > "$T/raw$n.json"
  [ "$(hg_j "$T/raw$n.json" '$j["ham"]["account"]')" = "$acct" ] || hg_fail "raw submit not booked to $acct: $(hg_j "$T/raw$n.json" '$j["ham"]')"
  out=$(hg_j "$T/raw$n.json" '$j["ham"]["outcome"]')
  case "$out" in accepted|queued) ;; *) hg_fail "raw ham: $out";; esac
  id=$(hg_j "$T/raw$n.json" '$j["ham"]["id"]')
  show=$(hg_mg queue show "$id")
  echo "$show" | grep -q "^account      $acct\$" || hg_fail "message $id: $show"
  echo "$show" | grep -q "\[uid $uid pid [0-9]*, script claimed\]" || hg_fail "message $id origin: $show"
  echo "$show" | grep -q "^from         mgcust$n@" || hg_fail "message $id sender: $show"
  hg_ok "claimed account $other, uid 0, spam=ham, checksum 000..., origin /fake.php -> reply account=$acct outcome=$out; queue show $id: account $acct, origin '$(echo "$show" | sed -n 's/^origin *//p')'"
  [ "$(hg_j "$T/raw$n.json" '$j["spam"]["outcome"]')" = refused ] || hg_fail "forged-ham spam not refused: $(hg_j "$T/raw$n.json" '$j["spam"]')"
  hg_ok "spammy body with forged verdict 'ham' and spam_check=false: refused ($(hg_j "$T/raw$n.json" 'substr($j["spam"]["reason"],0,90)'))"
  [ "$(hg_j "$T/raw$n.json" '$j["spam_mail"]')" = false ] || hg_fail "spam via mail() was accepted"
  hg_ok "the same spam through mail(): false"
  for k in sender_option params_option recipient_option; do
    [ "$(hg_j "$T/raw$n.json" "\$j['$k']['outcome'] ?? \$j['$k']['reply']")" = refused ] || hg_fail "$k: $(hg_j "$T/raw$n.json" "\$j['$k']")"
    hg_ok "raw $k: refused ($(hg_j "$T/raw$n.json" "substr(\$j['$k']['reason'],0,80)"))"
  done
  for k in op_unblock op_purge op_block op_errors; do
    [ "$(hg_j "$T/raw$n.json" "\$j['$k']['reply']")" = denied ] || hg_fail "$k: $(hg_j "$T/raw$n.json" "\$j['$k']")"
  done
  hg_ok "raw unblock/purge/block/errors naming account $other: denied (allow_control = false)"
  [ "$(hg_j "$T/raw$n.json" '$j["op_unknown"]["reply"]')" = error ] || hg_fail "unknown op: $(hg_j "$T/raw$n.json" '$j["op_unknown"]')"
  [ "$(hg_j "$T/raw$n.json" '$j["op_status"]["value"]["account"]')" = "$acct" ] || hg_fail "status claiming $other: $(hg_j "$T/raw$n.json" '$j["op_status"]')"
  hg_ok "unknown op 'set_status': error; status naming $other: answers for $acct"
}
raw_check 2 blog shop "$mg_uid2"
blog_delivered() { [ "$(hg_delivered_from mgcust2)" -ge 3 ]; }
hg_wait 10 blog_delivered || hg_fail "blog's mail was not delivered"
sleep 1
hg_mg status --account blog --json > "$T/blog-before.json"
echo "== blog reference: $(hg_j "$T/blog-before.json" '"status=".$j["status"]." sent_total=".$j["sent_total"]." queued=".$j["queued"]." held=".$j["held"]." refused_total=".$j["refused_total"]')"

# -- customer A (shop) ------------------------------------------------------------------
raw_check 1 shop blog "$mg_uid1"
raw_delivered() { grep -l "Subject: raw-forge-r1$tok" "$T"/out/msg.* 2>/dev/null | xargs -r grep -l "^ARGV: \[-t\] \[-i\] \[-f\] \[mgcust1@$host\]$" | grep -q .; }
hg_wait 10 raw_delivered || hg_fail "the raw message was not delivered with shop's own sender"
hg_ok "the raw message left with envelope sender mgcust1@$host (the uid's), not blog's"

echo "== customer 1 as root of its own user namespace (unshare -r), then mail()"
if hg_as mgcust1 unshare -r true 2>/dev/null; then
  out=$(hg_as mgcust1 unshare -r sh -c "id -u; php -n -d extension=$MAILGUARD_SO -d mailguard.socket=$SOCK \
    -r 'echo json_encode(mail(\"victim@example.com\", \"userns-$tok\", \"body\")), \" \", MailGuard\\status()[\"account\"];'")
  [ "$out" = "0
true shop" ] || hg_fail "user namespace: $out"
  ns_id= ns_show=
  for i in $(seq 1 300); do
    show=$(hg_mg queue show "$i" 2>/dev/null) || break
    case "$show" in *"subject      userns-$tok"*) ns_id=$i ns_show=$show; break;; esac
  done
  case "$ns_show" in *"account      shop"*"[uid $mg_uid1 pid"*) ;; *) hg_fail "user namespace: message ${ns_id:-?}: $ns_show";; esac
  hg_ok "uid 0 inside its namespace -> the kernel still reports uid $mg_uid1: account shop, message $ns_id origin uid $mg_uid1"
else
  echo "  (unprivileged user namespaces are disabled here: nothing to try)"
fi

echo "== customer 1: argument injection (sendmail_from, putenv USER/LOGNAME, 5th parameter, sendmail options)"
rm -f /tmp/pwned-*"$tok"*
hg_get 1 "$T/www/attack.php" "a=inject&n=1&tok=$tok" > "$T/inject.json"
for k in mail_with_bad_sendmail_from mail_with_newline_sendmail_from mail_5th_option mail_5th_quoted; do
  [ "$(hg_j "$T/inject.json" "\$j['$k']")" = false ] || hg_fail "$k returned true"
done
hg_j "$T/inject.json" '$j["warning_a"]' | grep -q 'mailguard: message refused: .*not one plain address' || hg_fail "warning: $(hg_j "$T/inject.json" '$j["warning_a"]')"
hg_ok "mail() with sendmail_from 'x@y.example -X/tmp/pwned', with a newline, with 5th '-f.. -X..' and quoted: false ($(hg_j "$T/inject.json" 'substr($j["warning_a"],0,100)'))"
[ "$(hg_j "$T/inject.json" '$j["mail_env_only"]')" = true ] && [ "$(hg_j "$T/inject.json" '$j["mail_plain_f"]')" = true ] || hg_fail "plain mail after putenv/-f: $(cat "$T/inject.json")"
for k in X C O; do
  [ "$(hg_j "$T/inject.json" "\$j['sendmail_$k']")" = 64 ] || hg_fail "sendmail -$k: exit $(hg_j "$T/inject.json" "\$j['sendmail_$k']")"
done
[ "$(hg_j "$T/inject.json" '$j["sendmail_bad_f"]')" = 69 ] || hg_fail "sendmail -f with options: exit $(hg_j "$T/inject.json" '$j["sendmail_bad_f"]')"
hg_ok "mailguard sendmail -X/-C/-O: exit 64; -f 'x@y -X..': exit 69"
inject_delivered() { [ "$( (grep -l "Subject: inject-[ef]-$tok" "$T"/out/msg.* 2>/dev/null || true) | wc -l)" -ge 2 ]; }
hg_wait 10 inject_delivered || hg_fail "the clean inject mails were not delivered"
sleep 1
grep -l "Subject: inject-[a-d]-$tok\|Subject: inject-sm-" "$T"/out/msg.* 2>/dev/null && hg_fail "a refused injection was delivered"
e_argv=$(grep -l "Subject: inject-e-$tok" "$T"/out/msg.* | xargs head -qn1)
f_argv=$(grep -l "Subject: inject-f-$tok" "$T"/out/msg.* | xargs head -qn1)
[ "$e_argv" = "ARGV: [-t] [-i] [-f] [mgcust1@$host]" ] || hg_fail "argv after putenv(USER=...): $e_argv"
[ "$f_argv" = "ARGV: [-t] [-i] [-f] [bounce@shop.example]" ] || hg_fail "argv with -fbounce@shop.example: $f_argv"
bad_argv=$(head -qn1 "$T"/out/msg.* | grep -Ev '^ARGV: \[-t\] \[-i\] \[-f\] \[[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+\]$' || true)
[ -z "$bad_argv" ] || hg_fail "a sendmail command line with something else: $bad_argv"
ls /tmp/pwned-* 2>/dev/null && hg_fail "/tmp/pwned-* appeared"
hg_ok "every recorded sendmail argv ($(hg_delivered) messages) is exactly -t -i -f ADDRESS; after putenv(USER='u -C..'): '$e_argv'; no /tmp/pwned-* file"

echo "== customer 1: popen('mailguard sendmail -t -i') is counted like mail()"
shop_idle() { [ "$(hg_status_field shop queued)" = 0 ]; }
hg_wait 10 shop_idle || true
s0=$(hg_status_field shop sent_total)
hg_get 1 "$T/www/attack.php" "a=popen&n=1&tok=p$tok" > "$T/popen.json"
[ "$(hg_j "$T/popen.json" '$j["exit"]')" = 0 ] || hg_fail "popen sendmail exit: $(cat "$T/popen.json")"
popen_counted() { [ "$(hg_status_field shop sent_total)" = $((s0 + 1)) ]; }
hg_wait 10 popen_counted || hg_fail "sent_total $s0 -> $(hg_status_field shop sent_total), expected +1"
pid=$(grep -l "Subject: popen-p$tok" "$T"/out/msg.* | head -1)
[ "$(head -n1 "$pid")" = "ARGV: [-t] [-i] [-f] [mgcust1@$host]" ] || hg_fail "popen message argv: $(head -n1 "$pid")"
hg_ok "pclose() = 0, shop sent_total $s0 -> $((s0 + 1)), delivered with -f mgcust1@$host"

echo "== customer 1: burst -> inactive -> every bypass -> nothing leaves"
hg_get 1 "$T/www/attack.php" "a=burst&n=1&tok=u$tok" > "$T/burst.json"
[ "$(hg_j "$T/burst.json" '$j["status"]')" = inactive ] || hg_fail "burst did not make shop inactive: $(cat "$T/burst.json")"
[ "$(hg_status_field shop status)" = inactive ] || hg_fail "mailguard status: shop not inactive"
hg_ok "shop inactive after $(hg_j "$T/burst.json" 'count($j["results"])') mail() calls in the burst (all true: $(hg_j "$T/burst.json" '!in_array(false, $j["results"], true)'))"
sleep 2
before=$(hg_delivered_from mgcust1)
held0=$(hg_status_field shop held)
hg_get 1 "$T/www/attack.php" "a=bypass&n=1&tok=y$tok" > "$T/bypass.json"
echo "  bypass results: $(hg_j "$T/bypass.json" '["raw_submit" => $j["raw_submit"]["outcome"] ?? $j["raw_submit"], "raw_sendmail_entry" => $j["raw_submit_sendmail_entry"]["outcome"] ?? null, "raw_unblock" => $j["raw_unblock"]["reply"], "MailGuard\\unblock" => substr($j["MailGuard\\unblock()"], 0, 40), "mail" => $j["mail"], "mb_send_mail" => $j["mb_send_mail"], "error_log" => $j["error_log"], "popen_t" => $j["popen_sendmail"], "popen_rcpt" => $j["popen_sendmail_rcpt"], "status" => $j["status"]]')"
[ "$(hg_j "$T/bypass.json" '[$j["raw_submit"]["outcome"], $j["raw_submit_sendmail_entry"]["outcome"], $j["mail"], $j["mb_send_mail"], $j["error_log"], $j["popen_sendmail"], $j["popen_sendmail_rcpt"]]')" = '["held","held",true,true,true,0,0]' ] \
  || hg_fail "a bypass was not stored as held: $(cat "$T/bypass.json")"
[ "$(hg_j "$T/bypass.json" '$j["raw_unblock"]["reply"]')" = denied ] || hg_fail "raw unblock not denied"
hg_j "$T/bypass.json" '$j["MailGuard\\unblock()"]' | grep -q '^exception' || hg_fail "MailGuard\\unblock() did not throw"
[ "$(hg_j "$T/bypass.json" '$j["status"]')" = inactive ] || hg_fail "shop is no longer inactive"
sleep 3
after=$(hg_delivered_from mgcust1)
leaked=$( (grep -l "bypass-.*y$tok\|END-y$tok" "$T"/out/msg.* 2>/dev/null || true) | wc -l)
held1=$(hg_status_field shop held)
[ "$after" -eq "$before" ] && [ "$leaked" -eq 0 ] || hg_fail "mail left an inactive account: $before -> $after delivered, $leaked bypass messages"
[ "$(hg_status_field shop status)" = inactive ] || hg_fail "shop not inactive at the end"
[ "$held1" -eq $((held0 + 7)) ] || hg_fail "held $held0 -> $held1, expected +7 (the 7 stored bypass messages)"
hg_ok "delivered for shop before/after the bypasses: $before/$after; bypass messages at the sink: 0; held $held0 -> $held1; still inactive"

echo "== customer 2 (blog) untouched by customer 1"
hg_mg status --account blog --json > "$T/blog-after.json"
diff "$T/blog-before.json" "$T/blog-after.json" || hg_fail "blog's status changed"
hg_ok "blog status --json identical before and after shop's attacks"

echo "== customer 1 holds the daemon's connections (600 idle, one trickling a byte a second)"
hg_get 1 "$T/www/attack.php" "a=hog&n=1&secs=14" > "$T/hog.json" &
hog=$!
sleep 3
hg_get 2 "$T/www/attack.php" "a=send&n=2&count=1&tok=h$tok" > "$T/hog-b.json"
wait $hog
echo "  $(hg_j "$T/hog.json" '"opened=".$j["opened"]." answered_at_once=".$j["answered_at_once"]." trickle_cut_after=".$j["trickle_cut_after"]."s answer=".json_encode($j["trickle_answer"] ?? null)')"
[ "$(hg_j "$T/hog-b.json" '$j["ok"]')" = '[true]' ] || hg_fail "blog's mail() failed while shop held the daemon's connections: $(cat "$T/hog-b.json"; tail -n 2 "$T/home/mgcust2/php-error.log")"
cut=$(hg_j "$T/hog.json" '$j["trickle_cut_after"] ?? 99')
[ "${cut%.*}" -le 12 ] || hg_fail "a request trickled a byte a second kept its connection for ${cut}s"
hg_ok "while shop held 600 connections, blog's mail() returned true; the trickled request was cut off after ${cut}s"

hg_mg integrity > "$T/integrity.out" || { cat "$T/integrity.out"; hg_fail "integrity"; }
hg_ok "integrity: $(tail -n1 "$T/integrity.out")"
[ "$DAEMON_PID" = "$dpid" ] && kill -0 "$dpid" || hg_fail "daemon not alive"
hg_fpm_stop
hg_daemon_stop || hg_fail "daemon did not stop cleanly on SIGTERM"
[ ! -e "$SOCK" ] || hg_fail "the socket was left behind"
hg_ok "daemon stopped on SIGTERM with status 0, socket removed"
echo "hardened attacks: ok ($((SECONDS - start)) s)"
