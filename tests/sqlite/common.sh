# Helpers for the sqlite store tests.  Source after setting `set -u`.
#   sq_init NAME      temp dir in $T, mount helpers loaded, cleanup trap, skip
#                     (exit 77) when the sqlite store is not built in
#   sq_mount DIR DB [args]   mount DIR on database DB (foreground daemon)
#   fail MSG          print and exit 1
#   expect_fail WHAT PATTERN CMD...   CMD must exit non-zero and print PATTERN

: "${CVFS_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CVFS_BUILDDIR:=$CVFS_SRCDIR/build}"
: "${CVFS_MOUNT_BIN:=$CVFS_BUILDDIR/chuk-vfs-mount}"
export CVFS_MOUNT_BIN
# shellcheck source=../lib/mount.sh
. "$CVFS_SRCDIR/tests/lib/mount.sh"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

sq_cleanup() {
	cvfs_cleanup
	if [ -n "${SQ_DAEMON_DB:-}" ]; then
		local d
		for d in $(awk -v t="$T/" 'index($2, t) == 1 {print $2}' /proc/self/mounts); do
			fusermount3 -u -z "$d" 2>/dev/null || true
		done
	fi
	local m
	for m in "${SQ_EXTRA_MOUNTS[@]}"; do
		umount -l "$m" 2>/dev/null || true
	done
	if [ -n "${T:-}" ]; then rm -rf "$T" || true; fi
	return 0
}

sq_init() {
	SQ_EXTRA_MOUNTS=()
	T=$(mktemp -d "/tmp/cvfs-sqlite-$1.XXXXXX")
	trap sq_cleanup EXIT
	local out
	out=$("$CVFS_MOUNT_BIN" -f -m "$T/probe-mnt" -b sqlite --db-path "$T/probe-dir/x.db" 2>&1) || true
	if grep -q "not built" <<<"$out"; then
		echo "SKIP: the sqlite store is not built in" >&2
		exit 77
	fi
	rm -rf "$T/probe-mnt"
	command -v sqlite3 >/dev/null || { echo "SKIP: no sqlite3 shell" >&2; exit 77; }
}

sq_mount() {
	local dir=$1 db=$2
	shift 2
	cvfs_mount "$dir" -b sqlite --db-path "$db" "$@" || fail "mount $dir on $db"
}

expect_fail() {
	local what=$1 pat=$2
	shift 2
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "$what: expected a non-zero exit, got 0 ($out)"
	grep -qiE "$pat" <<<"$out" || fail "$what: message does not match /$pat/: $out"
	echo "ok: $what (exit $rc): $out"
}

# A listing of everything under DIR that must survive a remount.
sq_dump() {
	(cd "$1" && find . -printf '%i %M %n %U %G %s %T@ %A@ %C@ %p -> %l\n' | LC_ALL=C sort -k10 &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r md5sum &&
		find . \( -type b -o -type c \) -exec stat -c '%n %t:%T' {} + | LC_ALL=C sort &&
		getfattr -R -h -d -m - . 2>/dev/null)
}

# Unmounts a daemonised mount and waits until its daemon let go of DB.
sq_daemon_umount() {
	local dir=$1 db=$2 i
	fusermount3 -u "$dir" || fail "fusermount3 -u $dir"
	for ((i = 0; i < 100; i++)); do
		flock -n "$db" true && return 0
		sleep 0.1
	done
	fail "the daemon for $dir did not exit"
}
