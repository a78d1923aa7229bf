#!/bin/bash
# The daemon away. Customer 1 (php-fpm pool as mgcust1, account shop, quota 5/10s) sends
# 10 messages: all true, 5 delivered, 5 queued. The daemon is stopped (SIGTERM: exit 0,
# socket removed), later killed (kill -9: a stale socket file that refuses connections).
# Each time: mail(), mb_send_mail() and error_log(..., 1) return false with exactly one
# E_WARNING "mailguard: ..." naming the socket; MailGuard\status() says unknown and names
# it; `mailguard sendmail` exits 75 naming it; nothing falls back to sendmail_path or
# creates anything in the customer's directory. Started again: the 5 queued messages are
# still there and are delivered (when the quota window frees); after kill -9 (8 sent: 5
# within the quota, 3 queued) all 8 are delivered; nothing sent while it was away appears.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
start=$SECONDS
hg_init
trap hg_cleanup EXIT
tok=$$-$RANDOM
HG_QUOTA='quota = "1000/1h"' HG_BURST='burst = ""' hg_config '
[account.shop]
quota = "5/10s"'
install -d -m 1777 "$T/trap"
# sendmail_path of the pools: must never run in hardened mode.
printf '#!/bin/sh\ncat > "%s/trap/fallback.$$"\n' "$T" > "$T/trap.sh"
chmod 755 "$T/trap.sh"
cat > "$T/www/down.php" <<'PHP'
<?php
// ?a=send&count=N&tok=T or ?a=down&tok=T: what each mail entry returns and every warning.
$w = [];
set_error_handler(function ($no, $str) use (&$w) { $w[] = [$no, $str]; return true; });
$tok = $_GET['tok'] ?? 'x';
$r = [];
if (($_GET['a'] ?? '') === 'send') {
    for ($i = 0; $i < (int)$_GET['count']; $i++) {
        $r['ok'][] = mail('to@example.com', "down-$tok-$i", "body\r\nEND-$tok-$i");
    }
} else {
    foreach (['mail' => fn() => mail('to@example.com', "away-$tok", "body\r\nEND-away-$tok"),
              'mb_send_mail' => fn() => mb_send_mail('to@example.com', "away-mb-$tok", "body END-away-$tok"),
              'error_log' => fn() => error_log("away END-away-$tok", 1, 'to@example.com')] as $k => $f) {
        $w = [];
        $r[$k] = ['result' => $f(), 'warnings' => $w];
    }
    $s = MailGuard\status();
    $r['status'] = ['status' => $s['status'] ?? null, 'error' => $s['error'] ?? null];
}
$r['warnings'] = $w;
echo json_encode($r, JSON_UNESCAPED_SLASHES), "\n";
PHP
chmod 644 "$T/www/down.php"
HG_FPM_EXT="-d extension=mbstring" hg_fpm_start 2 "php_admin_value[sendmail_path] = $T/trap.sh"
hg_daemon_start

hg_get 1 "$T/www/down.php" "a=send&count=10&tok=$tok" > "$T/send.json"
[ "$(hg_j "$T/send.json" '$j["ok"]')" = '[true,true,true,true,true,true,true,true,true,true]' ] || hg_fail "mail(): $(cat "$T/send.json")"
five() { [ "$(hg_delivered)" -ge 5 ]; }
hg_wait 10 five || hg_fail "the first 5 were not delivered"
hg_daemon_stop || hg_fail "SIGTERM: the daemon did not exit with status 0"
[ ! -e "$SOCK" ] || hg_fail "the socket was left behind after SIGTERM"
hg_ok "10 x mail() true; 5 delivered; daemon stopped on SIGTERM (status 0, socket removed)"
hg_mg queue list > "$T/queue-down.out"
queued=$(grep -c "  shop .*down-$tok-" "$T/queue-down.out" || true)
[ "$queued" -eq 5 ] && [ "$(hg_delivered)" -eq 5 ] || { cat "$T/queue-down.out"; hg_fail "expected 5 delivered, 5 queued; got $(hg_delivered) and $queued"; }
hg_ok "while stopped: queue list shows the 5 queued messages of shop"

away_checks() { # LABEL
  hg_get 1 "$T/www/down.php" "a=down&tok=$1$tok" > "$T/away-$1.json"
  for k in mail mb_send_mail error_log; do
    res=$(hg_j "$T/away-$1.json" "\$j['$k']['result']")
    nw=$(hg_j "$T/away-$1.json" "count(\$j['$k']['warnings'])")
    w=$(hg_j "$T/away-$1.json" "\$j['$k']['warnings'][0][1] ?? ''")
    lvl=$(hg_j "$T/away-$1.json" "\$j['$k']['warnings'][0][0] ?? 0")
    [ "$res" = false ] && [ "$nw" = 1 ] && [ "$lvl" = 2 ] || hg_fail "$1: $k returned $res with $nw warning(s): $(hg_j "$T/away-$1.json" "\$j['$k']")"
    case "$w" in "mailguard: "*"$SOCK"*) ;; *) hg_fail "$1: $k warning does not name the socket: $w";; esac
    hg_ok "$1: $k() = false, one E_WARNING: $w"
  done
  [ "$(hg_j "$T/away-$1.json" '$j["status"]["status"]')" = unknown ] || hg_fail "$1: status(): $(hg_j "$T/away-$1.json" '$j["status"]')"
  hg_j "$T/away-$1.json" '$j["status"]["error"]' | grep -qF "$SOCK" || hg_fail "$1: status() error does not name the socket"
  hg_ok "$1: MailGuard\\status(): status unknown, error names the socket"
  rc=0
  printf 'To: to@example.com\nSubject: away-sm-%s\n\nbody\nEND-away-sm-%s\n' "$1$tok" "$1$tok" \
    | hg_as mgcust2 env MAILGUARD_SOCKET="$SOCK" "$MAILGUARD_BIN" sendmail -t -i 2> "$T/sm-$1.err" || rc=$?
  [ "$rc" = 75 ] && grep -qF "$SOCK" "$T/sm-$1.err" || hg_fail "$1: mailguard sendmail exit $rc: $(cat "$T/sm-$1.err")"
  hg_ok "$1: mailguard sendmail (as mgcust2) exit 75: $(cat "$T/sm-$1.err")"
}
away_checks stopped
if ls "$T/trap" | grep -q .; then hg_fail "mail() fell back to sendmail_path"; fi
if ls "$T/home/mgcust1" | grep -v '^php-error.log$' | grep -q .; then
  hg_fail "something was created in the customer's directory: $(ls "$T/home/mgcust1")"
fi

hg_daemon_start
all_ten() { [ "$( (grep -l "Subject: down-$tok-" "$T"/out/msg.* 2>/dev/null || true) | wc -l)" -ge 10 ]; }
hg_wait 20 all_ten || { hg_mg queue list; hg_fail "the queued messages were not delivered after the restart"; }
hg_ok "restarted: the 5 queued messages delivered once the quota window freed (10 of 10 at the sink)"

# Again with kill -9: a stale socket file that refuses connections.
sleep 10   # a fresh quota window
hg_get 1 "$T/www/down.php" "a=send&count=8&tok=k$tok" > "$T/send2.json"
[ "$(hg_j "$T/send2.json" '$j["ok"]')" = '[true,true,true,true,true,true,true,true]' ] || hg_fail "mail(): $(cat "$T/send2.json")"
hg_daemon_kill9
hg_ok "8 x mail() true (5 within the quota, 3 queued), then kill -9 ($( (grep -l "Subject: down-k$tok-" "$T"/out/msg.* 2>/dev/null || true) | wc -l) of them at the sink)"
[ -S "$SOCK" ] || hg_fail "expected a stale socket after kill -9"
away_checks killed
hg_daemon_start
all_eight() { [ "$( (grep -l "Subject: down-k$tok-" "$T"/out/msg.* 2>/dev/null || true) | wc -l)" -ge 8 ]; }
hg_wait 20 all_eight || { hg_mg queue list; hg_fail "messages accepted before the kill were not delivered"; }
hg_ok "kill -9 and restart: all 8 accepted before the kill delivered"
sleep 1
if grep -l "END-away-" "$T"/out/msg.* 2>/dev/null; then hg_fail "a message sent while the daemon was away was delivered"; fi
if ls "$T/trap" | grep -q .; then hg_fail "mail() fell back to sendmail_path"; fi
hg_ok "nothing sent while the daemon was away was delivered or piped to sendmail_path"
hg_fpm_stop
hg_daemon_stop || hg_fail "daemon did not stop cleanly"
hg_mg integrity || hg_fail "integrity"
echo "hardened daemon down: ok ($((SECONDS - start)) s)"
