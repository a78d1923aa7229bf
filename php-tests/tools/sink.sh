#!/bin/sh
# A stand-in sendmail that appends each message to the file $1, and fails like a
# real one on request: "Subject: fail..." exits 1, "Subject: tempfail..." exits 75.
out="$1"
msg=$(cat)
printf '%s\n.\n' "$msg" >> "$out"
case "$msg" in
  *"Subject: tempfail"*) exit 75 ;;
  *"Subject: fail"*) exit 1 ;;
esac
exit 0
