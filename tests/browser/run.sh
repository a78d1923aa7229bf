#!/bin/sh
# The dashboard in a real browser: prepares a state directory, then runs dashboard.mjs
# (playwright-core driving Debian's /usr/bin/chromium).
#
# Data: with MAILGUARD_SO set (the built extension), today's mail comes from real PHP
# mail() calls through the extension (two scripts: one delivering through a sendmail
# stand-in, one whose "sendmail" rejects the recipient); the 29 days before are filled
# through the store API (tests/dashboard_seed.rs). Without MAILGUARD_SO, everything is
# filled through the store API.
#
# Environment: MAILGUARD_BIN (default: built with cargo), MAILGUARD_SO, REPO_ROOT,
# CARGO_TARGET_DIR, SCREENSHOT (default docs/dashboard.png).
# Needs: apt-get install -y chromium; (cd tests/browser && npm ci).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=${REPO_ROOT:-$(cd "$HERE/../.." && pwd)}
ACCOUNT=site1
PASSWORD=browser-test-password
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STATE="$WORK/state"
mkdir -m 700 "$STATE"

if [ -z "${MAILGUARD_BIN:-}" ]; then
    (cd "$REPO_ROOT" && cargo build -q -p mailguard-cli)
    MAILGUARD_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/mailguard"
fi
[ -x "$MAILGUARD_BIN" ] || { echo "run.sh: $MAILGUARD_BIN is not executable" >&2; exit 1; }

seed() {
    (cd "$REPO_ROOT" && MAILGUARD_SEED_DIR="$STATE" MAILGUARD_SEED_ACCOUNT="$ACCOUNT" \
        MAILGUARD_SEED_PART=$1 \
        cargo test -q ${CARGO_TEST_ARGS:-} -p mailguard-cli --test dashboard_seed -- --ignored >/dev/null)
}

# The 29 days before today first, in time order.
seed past

today_from_php=0
if [ -n "${MAILGUARD_SO:-}" ]; then
    [ -f "$MAILGUARD_SO" ] || { echo "run.sh: MAILGUARD_SO=$MAILGUARD_SO does not exist" >&2; exit 1; }
    mkdir "$WORK/www"
    # A sendmail that accepts, and one that refuses the recipient (EX_NOUSER).
    printf '#!/bin/sh\ncat >/dev/null\nexit 0\n' > "$WORK/sendmail-ok"
    printf '#!/bin/sh\ncat >/dev/null\necho "550 5.1.1 User unknown" >&2\nexit 67\n' > "$WORK/sendmail-nouser"
    chmod 755 "$WORK/sendmail-ok" "$WORK/sendmail-nouser"
    cat > "$WORK/www/contact.php" <<'PHP'
<?php
for ($i = 1; $i <= 5; $i++) {
    if (!mail("customer$i@example.org", "Your message #$i", "Thank you, we will answer soon.", "From: Website <site@example.org>")) {
        fwrite(STDERR, "mail() #$i returned false\n");
        exit(1);
    }
}
PHP
    cat > "$WORK/www/newsletter.php" <<'PHP'
<?php
foreach (["gone@example.net", "moved@example.net"] as $to) {
    mail($to, "Newsletter", "News of the month.", "From: News <news@example.org>");
}
PHP
    php_run() {
        php -n -d "extension=$MAILGUARD_SO" -d "mailguard.state_dir=$STATE" \
            -d "mailguard.account=$ACCOUNT" -d "sendmail_path=$1" "$2"
    }
    before=$("$MAILGUARD_BIN" status --account "$ACCOUNT" --json --state-dir "$STATE" | grep '"sent_total"')
    php_run "$WORK/sendmail-ok" "$WORK/www/contact.php"
    php_run "$WORK/sendmail-nouser" "$WORK/www/newsletter.php" 2>/dev/null || true
    after=$("$MAILGUARD_BIN" status --account "$ACCOUNT" --json --state-dir "$STATE" | grep '"sent_total"')
    if [ "$before" != "$after" ]; then
        today_from_php=1
        echo "run.sh: today's mail came from PHP mail() through $MAILGUARD_SO"
    else
        echo "run.sh: the extension did not record mail in $STATE; filling today through the store API" >&2
    fi
fi
[ "$today_from_php" = 1 ] || seed today
# Three messages refused as spam, for the quarantine page.
seed quarantine

# The credentials live outside the state directory (as /etc/mailguard/dashboard-auth would).
AUTH_FILE="$WORK/dashboard-auth"
printf '%s\n' "$PASSWORD" | "$MAILGUARD_BIN" dashboard passwd --account "$ACCOUNT" \
    --iterations 1000 --auth-file "$AUTH_FILE" 2>/dev/null

cd "$HERE"
[ -d node_modules/playwright-core ] || npm ci --silent
MAILGUARD_BIN="$MAILGUARD_BIN" STATE_DIR="$STATE" AUTH_FILE="$AUTH_FILE" ACCOUNT="$ACCOUNT" \
    PASSWORD="$PASSWORD" \
    SCREENSHOT="${SCREENSHOT:-$REPO_ROOT/docs/dashboard.png}" \
    node dashboard.mjs
