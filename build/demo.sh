#!/bin/bash
# The demo: build mailguard, load it into the real PHP 8.2 CLI, and run a contact
# form and two scripts mailguard must stop. No server to set up: the "sendmail"
# is a local mailbox file under target/demo/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cargo build --release --locked -p mailguard -q
so="${CARGO_TARGET_DIR:-$top/target}/release/libmailguard.so"
demo="$top/target/demo"
rm -rf "$demo"; mkdir -p "$demo"
cat > "$demo/sendmail" <<'SH'
#!/bin/sh
{ echo "From mailguard-demo $(date -u)"; cat; echo; } >> "$(dirname "$0")/mailbox"
SH
chmod +x "$demo/sendmail"
php=(php -n -d "extension=$so" -d "sendmail_path=$demo/sendmail -t -i" -d mailguard.max_message_size=1M)

echo "== php --ri mailguard"
"${php[@]}" --ri mailguard
echo
echo "== a contact form (examples/contact-form.php)"
"${php[@]}" examples/contact-form.php
echo
echo "== a 2 MB attachment, over the 1M limit set for this demo"
"${php[@]}" -r 'var_dump(mail("owner@example.com", "Photos", str_repeat("A", 2 << 20)));' || true
echo
echo "== a script trying the CVE-2016-10033 trick through the 5th parameter"
"${php[@]}" -r 'var_dump(mail("owner@example.com", "x", "x", "", "-oQ/tmp -X/var/www/html/shell.php"));' || true
echo
echo "== MailGuard\\status()"
"${php[@]}" -r 'echo json_encode(MailGuard\status(), JSON_PRETTY_PRINT), "\n";'
echo
echo "== the mailbox ($demo/mailbox): only the contact form's message"
cat "$demo/mailbox"
