#!/usr/bin/env bash
# The one command of the benchmarks (see bench/README.md):
#
#   bench/run.sh                 # as root on Debian 12: install, build, run every case, write bench/RESULTS.md
#   BENCH_QUICK=1 bench/run.sh   # smoke run: small N, one repetition (minutes)
#
# Installs what is missing (apt; rustup if there is no cargo), builds mailguard in release
# mode into $CARGO_TARGET_DIR (default <repo>/target-bench), then runs bench/bench.py.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/run.sh: run as root (it installs packages, starts a private Postfix and php-fpm)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n== %s\n' "$*"; }

if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
  step "packages"
  pkgs="postfix msmtp stunnel4 php8.2-cli php8.2-fpm php8.2-dev libfcgi-bin openssl
        python3 clang libclang-dev pkg-config build-essential curl ca-certificates
        procps util-linux git"
  missing=
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "installing:$missing"
    # Postfix without a system configuration: the bench writes its own private instance.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # Do not let the packages start their system services (no systemd needed either).
    policy_added=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
      policy_added=1
    fi
    apt-get update -qq
    rc=0
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
    [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || { echo "bench/run.sh: apt-get install failed ($rc)" >&2; exit 1; }
  else
    echo "all present"
  fi
  if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y -q --profile minimal
  fi
fi
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-bench}
export CARGO_TERM_COLOR=never
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  step "cargo build --release -p mailguard -p mailguard-cli (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$root" && cargo build --release --locked -p mailguard -p mailguard-cli)
fi
export MAILGUARD_SO="$CARGO_TARGET_DIR/release/libmailguard.so"
export MAILGUARD_BIN="$CARGO_TARGET_DIR/release/mailguard"

step "benchmarks"
# The system python3 (standard library only).
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" "$here/bench.py"
