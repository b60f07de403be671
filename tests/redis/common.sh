# Shared by the redis tests: source after `set -euo pipefail`.
#
#   WORK           scratch directory, removed at exit (mounts and servers first)
#   fail MSG / ok MSG / note MSG
#   now_ms         monotonic-ish milliseconds
#   poll SECS CMD  runs CMD until it succeeds or SECS pass; returns its status
#
# Skips (exit 77) when redis-server is missing or the store is not built in.

: "${CVFS_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CVFS_BUILDDIR:=$CVFS_SRCDIR/build}"
: "${CVFS_MOUNT_BIN:=$CVFS_BUILDDIR/chuk-vfs-mount}"
export CVFS_SRCDIR CVFS_BUILDDIR CVFS_MOUNT_BIN

# shellcheck source=../lib/mount.sh
source "$CVFS_SRCDIR/tests/lib/mount.sh"
# shellcheck source=../lib/redis.sh
source "$CVFS_SRCDIR/tests/lib/redis.sh"

if ! redis_available; then
	echo "SKIP: redis-server / redis-cli not installed"
	exit 77
fi
if ! cvfs_has_redis; then
	echo "SKIP: chuk-vfs-mount has no redis store"
	exit 77
fi

WORK=$(mktemp -d "/tmp/cvfs-redis-$(basename "$0" .sh).XXXXXX")
chmod 755 "$WORK"
EXTRA_CLEANUP=()

_redis_test_cleanup() {
	local rc=$?
	set +e
	cd /
	local c
	for c in "${EXTRA_CLEANUP[@]}"; do
		eval "$c" >/dev/null 2>&1
	done
	# let a stopped server go on, so daemons can unmount cleanly
	local d
	for d in "${!REDIS_PIDS[@]}"; do
		kill -CONT "${REDIS_PIDS[$d]}" 2>/dev/null
	done
	cvfs_cleanup
	redis_stop_all
	if [ "$rc" = 0 ]; then
		rm -rf "$WORK"
	else
		echo "(kept $WORK for inspection)" >&2
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "--- $f" >&2
			tail -n 20 "$f" >&2
		done
	fi
	exit "$rc"
}
trap _redis_test_cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() { echo "ok: $*"; }
note() { echo "# $*"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

poll() {
	local secs=$1
	shift
	local end=$(($(now_ms) + secs * 1000))
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.05
	done
}
