#!/bin/sh
# A stand-in sendmail for the tests: appends its argv and stdin to the file $1.
# Usage in php.ini: sendmail_path="/path/record.sh /path/out" (extra params follow).
out="$1"; shift
# The runner delivers in parallel: one record at a time.
exec 9>>"$out.lock"
flock 9
{
  printf 'ARGC %s\n' "$#"
  for a in "$@"; do printf 'ARG[%s]\n' "$a"; done
  printf 'STDIN\n'
  cat
  printf '\nEND\n'
} >> "$out"
