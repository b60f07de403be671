#!/usr/bin/env bash
# Mounts chuk-vfs on a fresh temporary directory and runs the battery there.
#
#   CVFS_BATTERY=path/to/battery run-mount.sh [chuk-vfs-mount args...] [-- battery args...]
#
# Arguments before "--" go to chuk-vfs-mount (e.g. -o no_writeback,
# -o cache_timeout=0, -b sqlite --db-path X); after it, to the battery (e.g.
# --only xattr).  The mount always gets --allow-other: the permission checks
# run as uid 65534, whom FUSE turns away otherwise.  Fails if the battery
# fails, if the daemon dies meanwhile, or if it exits non-zero at unmount
# (crash, sanitizer report).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${CVFS_BATTERY:?CVFS_BATTERY must point at the battery binary}"
# shellcheck source=../lib/mount.sh
source "$here/../lib/mount.sh"

mount_args=()
battery_args=()
while [ $# -gt 0 ]; do
	if [ "$1" = "--" ]; then
		shift
		battery_args=("$@")
		break
	fi
	mount_args+=("$1")
	shift
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cvfs-battery-mount.XXXXXX") || exit 1
chmod 0755 "$tmp"
mnt=$tmp/mnt

cleanup() {
	cvfs_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! cvfs_mount "$mnt" --allow-other "${mount_args[@]}"; then
	echo "run-mount: cannot mount chuk-vfs (${mount_args[*]})" >&2
	exit 1
fi
echo "# chuk-vfs mounted on $mnt with: --allow-other ${mount_args[*]}"

rc=0
"$CVFS_BATTERY" "$mnt" "${battery_args[@]}" || rc=$?

if ! cvfs_alive "$mnt"; then
	echo "run-mount: the chuk-vfs daemon died during the battery; its log:" >&2
	tail -n 100 "$mnt.log" >&2
	unset "CVFS_PIDS[$mnt]"
	fusermount3 -u -z "$mnt" 2>/dev/null
	exit 1
fi

if ! cvfs_umount "$mnt"; then
	echo "run-mount: the daemon exited with an error at unmount" >&2
	rc=1
fi
if [ -s "$mnt.log" ] && grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$mnt.log"; then
	echo "run-mount: sanitizer report in the daemon log:" >&2
	cat "$mnt.log" >&2
	rc=1
fi
exit "$rc"
