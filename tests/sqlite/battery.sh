#!/bin/bash
# The syscall battery (tests/battery) on a sqlite mount with a fresh database,
# then the database must pass integrity_check once unmounted.
set -euo pipefail
. "$(dirname "$0")/common.sh"
sq_init battery
: "${CVFS_BATTERY:?CVFS_BATTERY must point at the battery binary}"
chmod 0755 "$T"  # the battery's permission checks run as uid 65534
rc=0
"$CVFS_SRCDIR/tests/battery/run-mount.sh" -b sqlite --db-path "$T/fs.db" "$@" || rc=$?
[ "$rc" = 0 ] || fail "the battery failed on the sqlite store (status $rc)"
[ "$(sqlite3 "$T/fs.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after the battery"
[ ! -s "$T/fs.db-wal" ] || fail "a WAL with content is left after unmount"
echo "battery-sqlite: ok"
