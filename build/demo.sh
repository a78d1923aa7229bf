#!/bin/bash
# The demo: build mailguard, load it into the real PHP 8.2 CLI, and run what a host
# sees every day: a contact form, scripts mailguard must stop, a script sending too
# fast, and the operator's unblock with the runner delivering the held mail.
# Nothing to set up: the "sendmail" is a local mailbox file and the state lives in
# target/demo/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cargo build --release --locked -q -p mailguard -p mailguard-cli
bin="${CARGO_TARGET_DIR:-$top/target}/release"
demo="$top/target/demo"
rm -rf "$demo"; mkdir -p "$demo"
cat > "$demo/sendmail" <<'SH'
#!/bin/sh
{ echo "From mailguard-demo $(date -u)"; cat; echo; } >> "$(dirname "$0")/mailbox"
SH
chmod +x "$demo/sendmail"
touch "$demo/mailbox"
cat > "$demo/mailguard.toml" <<TOML
transport = "sendmail"
sendmail_path = "$demo/sendmail -t -i"
TOML
php=(php -n -d "extension=$bin/libmailguard.so" -d "sendmail_path=$demo/sendmail -t -i"
     -d "mailguard.state_dir=$demo/state" -d mailguard.account=demo-site
     -d mailguard.max_message_size=1M -d mailguard.rate_burst=5/1m)
mg=("$bin/mailguard")
count() { grep -c '^From mailguard-demo' "$demo/mailbox" || true; }
say() { printf '\n== %s\n' "$*"; }

say "php --ri mailguard"
"${php[@]}" --ri mailguard | sed -n '1,12p'

say "a contact form (examples/contact-form.php): delivered"
"${php[@]}" examples/contact-form.php

say "a 2 MB attachment, over the 1M limit set for this demo: refused"
"${php[@]}" -r 'var_dump(mail("owner@example.com", "Photos", str_repeat("A", 2 << 20)));' 2>&1

say "the CVE-2016-10033 trick through the 5th parameter: refused"
"${php[@]}" -r 'var_dump(mail("owner@example.com", "x", "x", "", "-oQ/tmp -X/var/www/html/shell.php"));' 2>&1

say "an invoice with an .exe attachment: refused as spam, kept for review"
"${php[@]}" -r '
$b = "b1";
$h = "From: billing@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"$b\"";
$m = "--$b\r\nContent-Type: text/plain\r\n\r\nSee the invoice.\r\n--$b\r\nContent-Type: application/octet-stream; name=\"invoice.exe\"\r\n"
   . "Content-Disposition: attachment; filename=\"invoice.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
   . chunk_split(base64_encode("MZ" . str_repeat("\0", 64))) . "--$b--\r\n";
var_dump(mail("victim@example.net", "Your invoice", $m, $h));' 2>&1

say "a script sending 8 messages at once, against a burst limit of 5/1m"
"${php[@]}" -r 'for ($i = 1; $i <= 8; $i++) { echo "mail() #$i: ", var_export(mail("list$i@example.org", "Newsletter", "Hello $i"), true), "\n"; }'
echo "messages in the mailbox so far: $(count)"

say "mailguard status: the burst (counting every message accepted this minute) turned the account inactive; the rest is held"
"${mg[@]}" status --account demo-site --state-dir "$demo/state"

say "the operator unblocks, and the runner delivers the held mail"
"${mg[@]}" unblock --account demo-site --state-dir "$demo/state"
"${mg[@]}" run --once --state-dir "$demo/state" --config "$demo/mailguard.toml"
echo "messages in the mailbox now: $(count)"

say "MailGuard\\status() as the script sees it"
"${php[@]}" -r 'echo json_encode(MailGuard\status(), JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";'

say "the transition log"
"${mg[@]}" transitions --account demo-site --state-dir "$demo/state"
echo
echo "mailbox: $demo/mailbox"
