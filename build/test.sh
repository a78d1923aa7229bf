#!/bin/bash
# The whole test suite: Rust unit and integration tests, the phpt suite against the
# built mailguard.so (plain and with opcache+JIT), PHP's own mail tests with and
# without the extension, and the php-fpm tests. Exit status 0 only if all pass.
# Needs the packages .ci/run installs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export CARGO_TERM_COLOR=never

step() { printf '\n==== %s\n' "$*"; }

step "build (release)"
cargo build --release --workspace --locked
target_dir=${CARGO_TARGET_DIR:-$top/target}
export MAILGUARD_SO="$target_dir/release/libmailguard.so"
export MAILGUARD_BIN="$target_dir/release/mailguard"
php -n -d "extension=$MAILGUARD_SO" -r 'exit(extension_loaded("mailguard") ? 0 : 1);'

step "cargo tests"
cargo test --release --workspace --locked

run_tests=$(dpkg -L php8.2-dev | grep '/run-tests.php$' | head -n 1)
# Tests that do not set their own state directory share this one, without rate
# limits (the tests of limits set theirs in their --INI-- section).
state=$(mktemp -d /tmp/mailguard-phpt-XXXXXX)
phpt() {
  rm -rf "${state:?}"/*
  NO_INTERACTION=1 php "$run_tests" -q -n -p "$(command -v php)" -d "extension=$MAILGUARD_SO" \
    -d "mailguard.state_dir=$state" -d mailguard.rate_burst= -d mailguard.rate_quota= \
    --show-diff "$@" php-tests/
}

step "phpt suite"
phpt
step "phpt suite with opcache and the tracing JIT"
phpt -d zend_extension=opcache -d opcache.enable_cli=1 -d opcache.jit=tracing -d opcache.jit_buffer_size=64M

step "PHP's own ext/standard/tests/mail, without and with mailguard (as an unprivileged user)"
tests=$(build/php-mail-tests.sh)
work=$(mktemp -d)
trap 'rm -rf "$work" "$state"' EXIT
cp -r "$tests/mail" "$run_tests" "$MAILGUARD_SO" "$work/"
chown -R nobody "$work"
php_suite() {
  (cd "$work" && runuser -u nobody -- env NO_INTERACTION=1 HOME=/tmp php run-tests.php -q -n \
    -p "$(command -v php)" -d extension=posix "$@" mail 2>&1 || true) | tee "$work/last.log" \
    | sed 's/.*\r//; s/\x1b\[[0-9;]*m//g' | grep -E '^(PASS|FAIL|SKIP|BORK) ' \
    | awk '{print $1, $NF}' | sort
}
php_suite > "$work/stock.txt"
mkdir "$work/state" && chown nobody "$work/state"
# Observe mode: every check runs and is recorded, but the account's status, rate limits
# and spam verdicts block nothing. (In enforce mode the suite's own failing "sendmail"
# commands, e.g. "exit 1", raise the account's bounce ratio past 10 % and mailguard
# rightly holds the later tests' mail.) The size limit and the 5th-parameter guard
# apply in both modes.
php_suite -d "extension=$work/libmailguard.so" -d "mailguard.state_dir=$work/state" \
  -d mailguard.mode=observe > "$work/guarded.txt"
echo "stock:     $(grep -c '^PASS' "$work/stock.txt") passed, $(grep -c '^SKIP' "$work/stock.txt") skipped"
echo "mailguard: $(grep -c '^PASS' "$work/guarded.txt") passed, $(grep -c '^SKIP' "$work/guarded.txt") skipped"
# Exactly as stock, no exception: the harmless 5th-parameter options PHP's own tests pass
# (mail_basic2.phpt: -n) are allowed; only those that change files, configuration or
# mode are refused.
if ! diff "$work/stock.txt" "$work/guarded.txt"; then
  echo "PHP's mail tests differ from stock (diff above)"; exit 1
fi
grep -q '^FAIL' "$work/stock.txt" && { echo "stock PHP fails its own mail tests here"; exit 1; }

step "php-fpm, concurrency, and hardened mode as other Unix users"
for t in tests/fpm/*.sh tests/concurrency/*.sh tests/disk/*.sh tests/hardened/*.sh; do
  [ -e "$t" ] || continue
  case "$(basename "$t")" in lib.sh|soak-*.sh) continue ;; esac
  echo "-- $t"; "$t"
done

step "real spam engines (rspamd, spamd) on loopback: the client and the runner"
tests/engine/run.sh --release

step "the dashboard in headless Chromium"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
CARGO_TEST_ARGS=--release SCREENSHOT="$target_dir/dashboard.png" tests/browser/run.sh

step "all tests passed"
