#!/bin/bash
# The store contract conformance suite (tests/unit/store_conformance) on the
# redis store, against a fresh server.
#   conformance.sh PATH/TO/store_conformance
set -euo pipefail
source "$(dirname "$0")/common.sh"
BIN=${1:-$CVFS_BUILDDIR/tests/unit/store_conformance}
[ -x "$BIN" ] || { echo "SKIP: no $BIN"; exit 77; }
redis_start "$WORK/r"
"$BIN" redis "url=$REDIS_URL" prefix=conf:
# and a second run on the same (now populated) prefix, as a restarted client
"$BIN" redis "url=$REDIS_URL" prefix=conf: | tail -1
