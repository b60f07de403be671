#!/bin/bash
# S3 going away: the writer gets an error at close/fsync (not a hang), the
# daemon survives, and work succeeds again once S3 is back.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib/mount.sh"
source "$HERE/../lib/s3.sh"
s3_require
T=$(mktemp -d /tmp/cvfs-s3-faults.XXXXXX)
S3_DATA=$T/s3data
mkdir -p "$S3_DATA"
trap 'rc=$?; set +e; cvfs_cleanup; s3_cleanup; rm -rf "$T"; exit $rc' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
s3_start
M=$T/m
s3_mount "$M"
echo before >"$M/before"

# $1: close or fsync.  Writes 32 MiB, kills s3rver (by its PID) while or
# before the upload runs, then expects EIO/ETIMEDOUT from close or fsync.
writer() {
	timeout 120 python3 - "$1" "$M/victim-$1" "$S3_PID" <<'PY'
import errno, os, signal, sys, threading, time
how, path, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
block = os.urandom(1 << 20)
for _ in range(32):
    os.write(fd, block)
# kill S3 while the upload is starting
threading.Timer(0.05, lambda: os.kill(pid, signal.SIGKILL)).start()
t0 = time.time()
try:
    if how == "fsync":
        os.fsync(fd)
    os.close(fd)
    fd = -1
except OSError as e:
    print(f"{how}: {os.strerror(e.errno)} after {time.time() - t0:.1f}s")
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
    sys.exit(0 if e.errno in (errno.EIO, errno.ETIMEDOUT) else 2)
print(f"{how}: no error")
sys.exit(1)
PY
}
for how in close fsync; do
	rc=0
	writer $how || rc=$?
	[ "$rc" = 0 ] || fail "$how after s3rver died: rc $rc"
	cvfs_alive "$M" || fail "the daemon died"
	wait "$S3_PID" 2>/dev/null || true
	S3_PID=""
	# S3 again, same port and data
	s3_start "$S3_PORT"
	[ "$(cat "$M/before")" = before ] || fail "old data after the restart"
	echo "after $how" >"$M/after-$how"
	[ "$(cat "$M/after-$how")" = "after $how" ] || fail "new work after the restart"
	[ "$(s3_aws s3 cp "s3://$S3_BUCKET/after-$how" -)" = "after $how" ] ||
		fail "new object not in S3"
	# no partial object: the victim is absent, or complete (a later retry)
	if s3_aws s3api head-object --bucket "$S3_BUCKET" --key "victim-$how" >"$T/head" 2>/dev/null; then
		grep -q '"ContentLength": 33554432' "$T/head" || fail "a partial object is visible"
	fi
done
cvfs_umount "$M" || fail "unmount"
echo PASS
