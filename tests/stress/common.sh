# shellcheck shell=bash
# Shared helpers for the stress/cli/apps tests.  Source after `set -euo pipefail`.
#
#   WORK            a scratch directory, removed at exit (after unmounting)
#   check MSG       prints "== MSG" (what the next lines check)
#   fail MSG        prints "FAIL: MSG" on stderr and exits 1
#   ok MSG          prints "ok: MSG"
#   mp_mounted DIR  is DIR a mount point in /proc/self/mounts?
#   mnt DIR ARGS    cvfs_mount or fail (with the daemon's log)
#   section FN      runs FN in a subshell with its own cleanup; a failure is
#                   recorded and the next section still runs
#   finish          prints the summary; exits 1 if a section failed

: "${CVFS_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CVFS_BUILDDIR:=$CVFS_SRCDIR/build}"
: "${CVFS_MOUNT_BIN:=$CVFS_BUILDDIR/chuk-vfs-mount}"
export CVFS_MOUNT_BIN CVFS_SRCDIR CVFS_BUILDDIR

# shellcheck source=../lib/mount.sh
source "$CVFS_SRCDIR/tests/lib/mount.sh"

TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/cvfs-$TEST_NAME.XXXXXX")
chmod 755 "$WORK"
EXTRA_CLEANUP=()

check() { echo "== $*"; }
ok() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

mp_mounted() {
	local r
	r=$(realpath -m "$1")
	# /proc/self/mounts escapes spaces as \040; our paths have none.
	awk -v d="$r" '$2 == d { f = 1 } END { exit !f }' /proc/self/mounts
}

_common_cleanup() {
	local rc=$?
	set +e
	cd /
	local c
	for c in "${EXTRA_CLEANUP[@]}"; do
		eval "$c" >/dev/null 2>&1
	done
	cvfs_cleanup
	# Anything still mounted below WORK (e.g. daemons we lost track of).
	local m
	while read -r m; do
		umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
	done < <(awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r)
	if [ "$rc" = 0 ] || [ -z "${CVFS_KEEP:-}" ]; then
		rm -rf "$WORK"
	else
		echo "(kept $WORK)" >&2
	fi
	exit "$rc"
}
trap _common_cleanup EXIT
trap 'exit 130' INT TERM

mnt() {
	cvfs_mount "$@" || fail "cannot mount $1"
}

FAILED=()
section() {
	local fn=$1 rc=0
	echo
	echo "#### $fn"
	set +e
	(
		set -e
		CVFS_PIDS=() # the caller's mounts stay the caller's
		trap 'rc=$?; cvfs_cleanup; exit $rc' EXIT
		"$fn"
	)
	rc=$?
	set -e
	if [ "$rc" != 0 ]; then
		FAILED+=("$fn")
		echo "#### $fn FAILED" >&2
	fi
}

finish() {
	echo
	if [ "${#FAILED[@]}" -gt 0 ]; then
		echo "FAIL: $TEST_NAME: ${#FAILED[@]} section(s) failed: ${FAILED[*]}" >&2
		exit 1
	fi
	echo "PASS: $TEST_NAME"
}
