#!/bin/sh
# Fetches PHP's own mail tests (ext/standard/tests/mail) from Debian's php8.2
# source package into target/php-src-mail/, once. Prints the directory.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/target/php-src-mail"
if [ -f "$dest/mail/mail_basic.phpt" ]; then echo "$dest"; exit 0; fi
src=/etc/apt/sources.list.d/mailguard-deb-src.sources
if ! apt-get source --print-uris php8.2 >/dev/null 2>&1; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$src"
  apt-get update -qq >&2
fi
work=$(mktemp -d)
cd "$work"
# The security pocket's source is not always on the mirror; fall back to main's.
for v in "" $(apt-cache showsrc php8.2 | awk '/^Version:/ {print "=" $2}'); do
  if apt-get source -qq --download-only "php8.2$v" >&2 2>/dev/null; then break; fi
done
orig=$(ls php8.2_*.orig.tar.* | head -n 1)
mkdir -p "$dest"
tar -xf "$orig" --wildcards --strip-components=4 -C "$dest" '*/ext/standard/tests/mail/*' 2>/dev/null \
  || tar -xf "$orig" --wildcards --strip-components=3 -C "$dest" '*/ext/standard/tests/mail/*'
cd / && rm -rf "$work"
[ -f "$dest/mail/mail_basic.phpt" ] || { echo "PHP's mail tests not found in $orig" >&2; exit 1; }
echo "$dest"
