#!/bin/bash
# The nightly-size version of daemon-kill9.sh: 1000 kill -9 cycles of `mailguard serve`
# (about 8 minutes on 2 cores). Not run by build/test.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CYCLES=${CYCLES:-1000} exec bash "$here/daemon-kill9.sh"
