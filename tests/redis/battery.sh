#!/bin/bash
# The whole syscall battery (tests/battery) on a Redis mount, at the default
# cache timeout and at cache_timeout=0: the same results as a plain directory.
set -euo pipefail
. "$(dirname "$0")/common.sh"
: "${CVFS_BATTERY:?CVFS_BATTERY must point at the battery binary}"
redis_start "$WORK/r"
for opts in "" "-o cache_timeout=0"; do
	rc=0
	# shellcheck disable=SC2086
	"$CVFS_SRCDIR/tests/battery/run-mount.sh" -b redis --redis-url "$REDIS_URL" \
		--redis-prefix "battery${opts:+0}:" $opts || rc=$?
	[ "$rc" = 0 ] || fail "the battery failed on the redis store ($opts, status $rc)"
	ok "battery on a redis mount ${opts:-(defaults)}"
done
