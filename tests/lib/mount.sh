# Mount helpers for shell tests.  Source this file.
#
#   cvfs_mount DIR [chuk-vfs-mount args...]   mounts in the foreground mode, in
#                                             the background of this shell; fails
#                                             at once if the daemon dies
#   cvfs_alive DIR                            is the daemon still running?
#   cvfs_umount DIR                           unmounts, waits, returns the daemon's
#                                             exit status (non-zero on leaks under
#                                             ASan, crashes, ...)
#   cvfs_cleanup                              unmounts everything still mounted
#                                             (install as an EXIT trap)
#   cvfs_status DIR                           the daemon's status (JSON, the
#                                             user.chuk-vfs.status xattr)
#   cvfs_status_get DIR KEY                   one top-level field of it
#
# CVFS_MOUNT_BIN points at chuk-vfs-mount (meson sets it).  Daemon logs go to
# DIR.log beside the mount point.

: "${CVFS_MOUNT_BIN:=$(dirname "${BASH_SOURCE[0]}")/../../build/chuk-vfs-mount}"
declare -gA CVFS_PIDS=()

cvfs_mount() {
	local dir=$1
	shift
	mkdir -p "$dir"
	"$CVFS_MOUNT_BIN" -f -m "$dir" "$@" >"$dir.log" 2>&1 &
	local pid=$!
	CVFS_PIDS[$dir]=$pid
	local i
	for ((i = 0; i < 200; i++)); do
		if grep -qs " $(realpath "$dir") fuse" /proc/self/mounts; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			local rc=0
			wait "$pid" || rc=$?
			echo "cvfs_mount: daemon for $dir exited with $rc before mounting:" >&2
			cat "$dir.log" >&2
			unset "CVFS_PIDS[$dir]"
			return 1
		fi
		sleep 0.05
	done
	echo "cvfs_mount: $dir not mounted after 10 s" >&2
	cat "$dir.log" >&2
	return 1
}

cvfs_alive() {
	local pid=${CVFS_PIDS[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

cvfs_umount() {
	local dir=$1
	local pid=${CVFS_PIDS[$dir]:-}
	local i
	for ((i = 0; i < 100; i++)); do
		fusermount3 -u "$dir" 2>/dev/null && break
		grep -qs " $(realpath "$dir") fuse" /proc/self/mounts || break
		sleep 0.1
	done
	if grep -qs " $(realpath "$dir") fuse" /proc/self/mounts; then
		echo "cvfs_umount: $dir busy; detaching lazily" >&2
		fusermount3 -u -z "$dir" 2>/dev/null
	fi
	[ -n "$pid" ] || return 0
	local rc=0
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "cvfs_umount: daemon $pid did not exit after unmount; killing" >&2
		kill -9 "$pid"
		rc=1
	fi
	wait "$pid" || rc=$?
	unset "CVFS_PIDS[$dir]"
	if [ "$rc" != 0 ]; then
		echo "cvfs_umount: daemon for $dir exited with $rc; its log:" >&2
		tail -n 50 "$dir.log" >&2
	fi
	return "$rc"
}

# cvfs_kill DIR: SIGKILL DIR's daemon (a crash), wait for it and forget it;
# the dead mount stays until the caller detaches it.
cvfs_kill() {
	local pid=${CVFS_PIDS[$1]}
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	unset "CVFS_PIDS[$1]"
}

cvfs_cleanup() {
	local d
	for d in "${!CVFS_PIDS[@]}"; do
		cvfs_umount "$d" || true
	done
}

cvfs_status() {
	python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.chuk-vfs.status").decode())' "$1"
}

cvfs_status_get() {
	cvfs_status "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
