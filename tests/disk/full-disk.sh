#!/bin/bash
# A nearly full disk: the state directory on a 4 MB file system, below the queue's
# free-disk reserve. mail() returns false with a warning naming the path, nothing
# reaches sendmail, nothing is counted, and the store stays consistent.
# Needs root (it mounts a tmpfs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${MAILGUARD_SO:?}" "${MAILGUARD_BIN:?}"
dir=$(mktemp -d /tmp/mg-disk-XXXXXX)
mnt="$dir/small"
mkdir "$mnt"
mount -t tmpfs -o size=4m tmpfs "$mnt"
trap 'umount "$mnt" 2>/dev/null || true; rm -rf "$dir"' EXIT
sink="$here/../../php-tests/tools/sink.sh"
out=$(php -n -d "extension=$MAILGUARD_SO" -d "mailguard.state_dir=$mnt/state" -d mailguard.account=disk \
  -d "sendmail_path=$sink $dir/sent" \
  -r 'var_dump(mail("to@example.com", "s", "m")); echo json_encode(MailGuard\status()), "\n";' 2>&1)
echo "$out"
echo "$out" | grep -q "Warning: mailguard: message refused: the mail queue cannot take it: not enough free disk space for the mail queue in $mnt/state"
echo "$out" | grep -q '^bool(false)$'
echo "$out" | grep -q '"sent_total":0'
[ ! -e "$dir/sent" ]
"$MAILGUARD_BIN" integrity --state-dir "$mnt/state"
echo "full disk: ok"
