# Shared by the hardened-mode tests: real Unix users, `mailguard serve` as the
# `mailguard` user, php-fpm with one pool per customer uid, a recording sendmail.
# Source this file. Needs: root, MAILGUARD_SO, MAILGUARD_BIN; php-fpm8.2, cgi-fcgi,
# setpriv (util-linux), useradd.
#
# Layout of a test directory $T (hg_init):
#   $T            root 0755 (customers may traverse it)
#   $T/etc        root 0755: mailguard.toml (root 0644), dashboard-auth (root:mailguard 0640)
#   $T/lib        mailguard 0755: the daemon creates $T/lib/state (0700) itself
#   $T/run        mailguard 0755: submit.sock
#   $T/out        mailguard 0755: one file per delivered message (msg.*), written by $T/sendmail.sh
#   $T/www        root 0755: the customers' scripts
#   $T/home/mgcustN  mgcustN 0700: what a customer's script may write

FPM_BIN=${FPM_BIN:-$(command -v php-fpm8.2 || command -v php-fpm || echo /usr/sbin/php-fpm8.2)}
: "${MAILGUARD_SO:?}" "${MAILGUARD_BIN:?}"

hg_fail() { echo "FAIL: $*" >&2; exit 1; }
hg_ok() { echo "  ok: $*"; }

# The three users; they persist between runs (useradd only if missing).
hg_users() {
  for u in mailguard mgcust1 mgcust2; do
    id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --user-group \
      --shell /usr/sbin/nologin "$u" >/dev/null
  done
}

# hg_as USER CMD...: run CMD as USER (a function: in the background, $! is a subshell;
# start background processes whose pid matters with setpriv directly).
hg_as() {
  u=$1; shift
  setpriv --reuid="$u" --regid="$u" --init-groups --reset-env -- \
    env PATH=/usr/local/bin:/usr/bin:/bin "$@"
}

# hg_init: the test directory in $T, the recording sendmail, users.
hg_init() {
  hg_users
  T=$(mktemp -d /tmp/mg-hard-XXXXXX)
  chmod 755 "$T"
  install -d -o root -g root -m 0755 "$T/etc" "$T/www"
  install -d -o mailguard -g mailguard -m 0755 "$T/lib" "$T/run" "$T/out"
  install -d -o root -g root -m 0755 "$T/home"
  install -d -o mgcust1 -g mgcust1 -m 0700 "$T/home/mgcust1"
  install -d -o mgcust2 -g mgcust2 -m 0700 "$T/home/mgcust2"
  STATE=$T/lib/state
  SOCK=$T/run/submit.sock
  CONF=$T/etc/mailguard.toml
  # The recording sendmail: the daemon runs it as `mailguard`; each message becomes
  # one file: "ARGV: [arg] [arg]..." then the message. Written to .tmp then renamed,
  # so a counted file is complete as far as the pipe gave it.
  cat > "$T/sendmail.sh" <<EOF
#!/bin/sh
f=\$(mktemp "$T/out/tmp.XXXXXXXX") || exit 75
{ printf 'ARGV:'; for a in "\$@"; do printf ' [%s]' "\$a"; done; printf '\n'; cat; } > "\$f" || exit 75
${HG_SINK_SLEEP:+sleep $HG_SINK_SLEEP}
mv "\$f" "$T/out/msg.\${f##*/tmp.}"
EOF
  chmod 755 "$T/sendmail.sh"
  DAEMON_PID=
}

# hg_config [EXTRA_TOML]: the operator file (root 0644). mgcust1 -> account shop,
# mgcust2 -> account blog; anyone else is refused.
hg_config() {
  {
    echo 'transport = "sendmail"'
    echo "sendmail_path = \"$T/sendmail.sh -t -i\""
    echo '[runner]'
    echo 'concurrency = 20'
    echo 'interval = "200ms"'
    echo '[accounts]'
    echo 'map = "deny"'
    echo "${HG_QUOTA:-quota = \"1000/1h\"}"
    echo "${HG_BURST:-burst = \"\"}"
    echo '[accounts.users]'
    echo 'mgcust1 = "shop"'
    echo 'mgcust2 = "blog"'
    printf '%s\n' "${1:-}"
  } > "$CONF"
  chown root:root "$CONF"; chmod 0644 "$CONF"
}

# hg_daemon_spawn: `mailguard serve` as the mailguard user, in the background; its
# output goes to $T/daemon.cur.log (the previous run's is appended to $T/daemon.log).
hg_daemon_spawn() {
  [ -f "$T/daemon.cur.log" ] && cat "$T/daemon.cur.log" >> "$T/daemon.log"
  : > "$T/daemon.cur.log"
  setpriv --reuid=mailguard --regid=mailguard --init-groups --reset-env -- \
    "$MAILGUARD_BIN" serve --socket "$SOCK" --state-dir "$STATE" --config "$CONF" \
    > "$T/daemon.cur.log" 2>&1 &
  DAEMON_PID=$!
}

# hg_daemon_start: spawn, then wait until it listens (at most 10 s).
hg_daemon_start() {
  hg_daemon_spawn
  for _ in $(seq 1 1000); do
    if grep -q "listening on $SOCK" "$T/daemon.cur.log" && [ -S "$SOCK" ]; then return 0; fi
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.01
  done
  cat "$T/daemon.log" "$T/daemon.cur.log" >&2
  hg_fail "mailguard serve did not start"
}

# hg_daemon_stop: SIGTERM and wait for a clean exit (status 0).
hg_daemon_stop() {
  [ -n "${DAEMON_PID:-}" ] || return 0
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  rc=0; wait "$DAEMON_PID" 2>/dev/null || rc=$?
  DAEMON_PID=
  return $rc
}

hg_daemon_kill9() {
  [ -n "${DAEMON_PID:-}" ] || return 0
  kill -9 "$DAEMON_PID" 2>/dev/null || true
  { wait "$DAEMON_PID"; } 2>/dev/null || true
  DAEMON_PID=
}

# hg_mg ARGS...: the admin command as the mailguard user against the daemon's state.
hg_mg() { hg_as mailguard "$MAILGUARD_BIN" "$@" --state-dir "$STATE"; }

# hg_status_field ACCOUNT FIELD: one field of `status --json`.
hg_status_field() {
  hg_mg status --account "$1" --json | php -n -r '$j = json_decode(stream_get_contents(STDIN), true); $v = $j[$argv[1]] ?? null; echo is_scalar($v) ? $v : json_encode($v);' "$2"
}

# Delivered messages (complete files in $T/out).
hg_delivered() { find "$T/out" -maxdepth 1 -name 'msg.*' | wc -l; }
# Delivered messages whose envelope sender (-f) is ADDR-PREFIX@...
hg_delivered_from() { (grep -l -m1 "^ARGV:.*\[-f\] \[$1@" "$T"/out/msg.* 2>/dev/null || true) | wc -l; }

# hg_fpm_start WORKERS [EXTRA_LINE...]: one php-fpm master (root), pools c1 (mgcust1)
# and c2 (mgcust2), each in hardened mode on $SOCK. Extra lines go into both pools.
hg_fpm_start() {
  workers=$1; shift
  {
    echo "[global]"
    echo "error_log = $T/fpm.log"
    echo "daemonize = no"
    for n in 1 2; do
      echo "[c$n]"
      echo "user = mgcust$n"
      echo "group = mgcust$n"
      echo "listen = $T/fpm-c$n.sock"
      echo "listen.owner = root"
      echo "listen.mode = 0600"
      echo "pm = static"
      echo "pm.max_children = $workers"
      echo "catch_workers_output = yes"
      echo "php_admin_value[mailguard.socket] = $SOCK"
      echo "php_admin_value[error_log] = $T/home/mgcust$n/php-error.log"
      echo "php_admin_value[log_errors] = 1"
      echo "php_admin_value[display_errors] = 0"
      echo "env[MAILGUARD_SOCKET] = $SOCK"
      echo "env[PATH] = /usr/bin:/bin"
      for line in "$@"; do echo "$line"; done
    done
  } > "$T/fpm.conf"
  "$FPM_BIN" -n -d "extension=$MAILGUARD_SO" ${HG_FPM_EXT:-} -y "$T/fpm.conf" -F \
    > "$T/fpm.stdout" 2>&1 &
  FPM_PID=$!
  for _ in $(seq 1 100); do
    [ -S "$T/fpm-c1.sock" ] && [ -S "$T/fpm-c2.sock" ] && return 0
    sleep 0.1
  done
  cat "$T/fpm.stdout" "$T/fpm.log" >&2 2>/dev/null
  hg_fail "php-fpm did not start"
}

hg_fpm_stop() {
  [ -n "${FPM_PID:-}" ] || return 0
  kill "$FPM_PID" 2>/dev/null || true
  wait "$FPM_PID" 2>/dev/null || true
  FPM_PID=
}

# hg_get N SCRIPT [QUERY]: one FastCGI request to pool cN; prints the body.
hg_get() {
  SCRIPT_FILENAME=$2 SCRIPT_NAME=/$(basename "$2") REQUEST_METHOD=GET QUERY_STRING=${3:-} \
    REMOTE_ADDR=127.0.0.1 SERVER_NAME=localhost REQUEST_URI=/$(basename "$2") \
    cgi-fcgi -bind -connect "$T/fpm-c$1.sock" | tr -d '\r' | sed '1,/^$/d'
}

# hg_cleanup: stop what this test started (by pid), remove the directory.
hg_cleanup() {
  hg_fpm_stop
  hg_daemon_kill9
  for p in ${HG_PIDS:-}; do kill -9 "$p" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  [ -n "${KEEP:-}" ] && { echo "kept $T"; return 0; }
  rm -rf "$T"
}

# hg_j JSON_FILE EXPR: evaluates the PHP expression EXPR with $j = the decoded file;
# prints the result (scalars as is, arrays as JSON).
hg_j() {
  php -n -r '$j = json_decode(file_get_contents($argv[1]), true); $v = eval("return " . $argv[2] . ";");
    echo is_bool($v) ? ($v ? "true" : "false") : (is_scalar($v) || $v === null ? (string)$v : json_encode($v, JSON_UNESCAPED_SLASHES)), "\n";' "$1" "$2"
}

# hg_all_blocked JSON_FILE LABEL: every "attack" entry says "blocked:"; prints them.
hg_all_blocked() {
  php -n -r '$j = json_decode(file_get_contents($argv[1]), true) ?? exit(2); $bad = 0; $n = 0;
    foreach ($j as $k => $v) { if (!is_string($v) || !preg_match("/^(blocked|SUCCEEDED): /", $v)) continue;
      $n++; printf("  %-9s %s: %s %s\n", $argv[2], $k, strtok($v, ":"), substr(strstr($v, ": "), 2, 110));
      if (str_starts_with($v, "SUCCEEDED")) $bad++; }
    if ($n == 0) { echo "  no attack results in ", $argv[1], "\n"; exit(1); } exit($bad ? 1 : 0);' "$1" "$2"
}

# hg_wait SECONDS CONDITION...: polls CONDITION (a command) every 0.1 s; 1 on timeout.
hg_wait() {
  limit=$1; shift
  end=$(( $(date +%s%N) + limit * 1000000000 ))
  while [ "$(date +%s%N)" -lt "$end" ]; do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
