#!/usr/bin/env bash
# Runs the spam-engine client (crates/mailguard-engine) against real rspamd and SpamAssassin
# spamd from Debian, each started here on loopback on its own port with a throwaway
# configuration and state directory (no systemd, no system config touched), then stops them.
#
# Debian 12 packages: rspamd spamassassin spamd
#   apt-get install -y --no-install-recommends rspamd spamassassin spamd
#
# The daemons get no network (DNS points at a closed local port), so RBL and URIBL lookups
# fail fast, as on a host without a resolver; Bayes is off. The tests read the addresses
# from MAILGUARD_RSPAMD_URL and MAILGUARD_SPAMD_ADDRESS.
#
# Usage: tests/engine/run.sh [extra args for cargo test]
set -euo pipefail
cd "$(dirname "$0")/../.."

RSPAMD_PORT=${RSPAMD_PORT:-11433}
SPAMD_PORT=${SPAMD_PORT:-17830}
for bin in rspamd spamd; do
    command -v "$bin" >/dev/null || { echo "tests/engine/run.sh: $bin is not installed (apt-get install -y rspamd spamassassin spamd)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/mailguard-engine.XXXXXX)
chmod 755 "$tmp"   # the daemons drop to _rspamd / nobody and must reach their dirs
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---- rspamd ---------------------------------------------------------------------------
mkdir -p "$tmp/rspamd/local.d" "$tmp/rspamd/override.d" "$tmp/rspamd/db" "$tmp/rspamd/run" "$tmp/rspamd/log"
cat > "$tmp/rspamd/override.d/worker-normal.inc" <<CONF
bind_socket = "127.0.0.1:$RSPAMD_PORT";
count = 1;
CONF
cat > "$tmp/rspamd/override.d/worker-controller.inc" <<CONF
bind_socket = "127.0.0.1:$((RSPAMD_PORT + 1))";
count = 1;
CONF
cat > "$tmp/rspamd/override.d/worker-proxy.inc" <<CONF
enabled = false;
CONF
cat > "$tmp/rspamd/override.d/worker-fuzzy.inc" <<CONF
enabled = false;
CONF
cat > "$tmp/rspamd/local.d/options.inc" <<CONF
dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 1; }
CONF
cat > "$tmp/rspamd/override.d/logging.inc" <<CONF
type = "file";
filename = "$tmp/rspamd/log/rspamd.log";
level = "warning";
CONF
chown -R _rspamd:_rspamd "$tmp/rspamd" 2>/dev/null || true
rspamd -f -u _rspamd -g _rspamd -c /etc/rspamd/rspamd.conf \
    --var=LOCAL_CONFDIR="$tmp/rspamd" --var=DBDIR="$tmp/rspamd/db" \
    --var=RUNDIR="$tmp/rspamd/run" --var=LOGDIR="$tmp/rspamd/log" \
    >"$tmp/rspamd.out" 2>&1 &
pids+=($!)

# ---- spamd ----------------------------------------------------------------------------
mkdir -p "$tmp/sa/site" "$tmp/sa/home"
cp /etc/spamassassin/*.pre "$tmp/sa/site/"
cat > "$tmp/sa/site/local.cf" <<CONF
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
dns_available no
use_razor2 0
use_pyzor 0
CONF
chown -R nobody "$tmp/sa" 2>/dev/null || true
spamd --listen="127.0.0.1:$SPAMD_PORT" --max-children=2 --min-children=1 \
    --siteconfigpath="$tmp/sa/site" --nouser-config --username=nobody \
    --helper-home-dir="$tmp/sa/home" --syslog=stderr --pidfile="$tmp/sa/spamd.pid" \
    >"$tmp/spamd.out" 2>&1 &
pids+=($!)

wait_port() {
    local port=$1 name=$2 log=$3
    for _ in $(seq 1 120); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.5
    done
    echo "tests/engine/run.sh: $name did not listen on $port; its output:" >&2
    cat "$log" >&2 || true
    exit 1
}
wait_port "$RSPAMD_PORT" rspamd "$tmp/rspamd.out"
wait_port "$SPAMD_PORT" spamd "$tmp/spamd.out"

export MAILGUARD_RSPAMD_URL="http://127.0.0.1:$RSPAMD_PORT"
export MAILGUARD_SPAMD_ADDRESS="127.0.0.1:$SPAMD_PORT"
cargo test -p mailguard-engine "$@" -- --ignored --nocapture --test-threads=1
# The runner with the engine in front of a real relay (aiosmtpd): a reject is kept for
# review and never relayed.
cargo test -p mailguard-cli --test runner_engine "$@" -- --ignored --nocapture
