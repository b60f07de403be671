#!/bin/bash
# S3 going away, in both modes.
#  write-back (default): close returns once the bytes are staged; fsync
#    reports EIO/ETIMEDOUT when the upload fails (no hang); the queued upload
#    is retried and reaches S3 once it is back; unmount drains the queue, and
#    with S3 gone for good gives up after wb_drain seconds, saying what.
#  sync=close: close (and fsync) report EIO/ETIMEDOUT, no partial object.
# The daemon survives, and work succeeds again once S3 is back.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test faults
S3_DATA=$T/s3data
mkdir -p "$S3_DATA"
s3_start
M=$T/m
head -c 32M /dev/urandom >"$T/data"

# $1: close or fsync, $2: err (EIO/ETIMEDOUT expected) or ok.  Writes 32 MiB,
# kills s3rver (by its PID) as the upload starts (or before close), then
# checks what close or fsync answered.
writer() {
	timeout 120 python3 - "$1" "$2" "$M/victim-$1" "$S3_PID" "$T/data" <<'PY'
import errno, os, signal, sys, threading, time
how, want, path, pid, src = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
data = open(src, "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
if want == "ok" or os.environ.get("KILL_FIRST"):
    # write-back: the bytes are staged; S3 dies before close/fsync sends them
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
else:
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
    sys.exit(0 if want == "err" and e.errno in (errno.EIO, errno.ETIMEDOUT) else 2)
print(f"{how}: no error after {time.time() - t0:.1f}s")
sys.exit(0 if want == "ok" else 1)
PY
}

restart() {
	wait "$S3_PID" 2>/dev/null || true
	S3_PID=""
	s3_start "$S3_PORT" # same port and data
}

# the object is in S3, complete and byte-exact
in_s3() {
	local key=$1
	s3_aws s3api head-object --bucket "$S3_BUCKET" --key "$key" >"$T/head" 2>/dev/null ||
		fail "$key is not in S3"
	grep -q '"ContentLength": 33554432' "$T/head" || fail "$key: a partial object is visible"
	s3_aws s3 cp --quiet "s3://$S3_BUCKET/$key" "$T/back"
	cmp "$T/data" "$T/back" || fail "$key: other bytes in S3"
}

# syncfs until it succeeds: the queued upload is retried in the background
# (backoff up to 10 s) and syncfs reports EIO while an attempt fails
sync_retried() {
	local i
	for ((i = 0; i < 30; i++)); do
		s3_syncfs "$M" 2>/dev/null && return 0
		sleep 1
	done
	fail "syncfs still failing 30 s after S3 came back"
}

after_restart() {
	[ "$(cat "$M/before")" = before ] || fail "old data after the restart"
	echo "after $1" >"$M/after-$1"
	[ "$(cat "$M/after-$1")" = "after $1" ] || fail "new work after the restart"
	s3_syncfs "$M"
	[ "$(s3_aws s3 cp "s3://$S3_BUCKET/after-$1" -)" = "after $1" ] || fail "new object not in S3"
}

# ---- write-back ----
s3_mount "$M"
echo before >"$M/before"
s3_syncfs "$M"
rc=0
KILL_FIRST=1 writer fsync err || rc=$?
[ "$rc" = 0 ] || fail "write-back: fsync after s3rver died: rc $rc"
cvfs_alive "$M" || fail "the daemon died"
ls "$M" >/dev/null || fail "listing while S3 is down"
restart
sync_retried
in_s3 victim-fsync
echo "ok: write-back: EIO at fsync, the upload retried reached S3 after the restart"
after_restart wb
# close with S3 down returns 0; unmount (S3 back) sends the upload
rc=0
writer close ok || rc=$?
[ "$rc" = 0 ] || fail "write-back: close with s3rver down: rc $rc"
restart
cvfs_umount "$M" || fail "unmount"
in_s3 victim-close
echo "ok: write-back: close staged with S3 down; unmount drained the queue"

# S3 gone for good: unmount gives up after wb_drain seconds and says what
s3_mount "$M" -o store.wb_drain=3,store.retries=1,store.connect_timeout=1
echo lost >"$M/lost"
s3_stop
t0=$(date +%s)
cvfs_umount "$M" || true
t1=$(date +%s)
[ $((t1 - t0)) -le 30 ] || fail "unmount with S3 gone took $((t1 - t0)) s"
grep -q "gave up" "$M.log" || fail "no 'gave up' in the log: $(cat "$M.log")"
grep -qF "upload /lost (not sent)" "$M.log" || fail "the lost upload is not named: $(cat "$M.log")"
echo "ok: unmount with S3 gone gave up after $((t1 - t0)) s, naming the upload"
s3_start "$S3_PORT"

# ---- sync=close: the upload runs at close, its error reaches close/fsync ----
s3_mount "$M" -o store.sync=close
for how in close fsync; do
	rc=0
	writer $how err || rc=$?
	[ "$rc" = 0 ] || fail "sync=close: $how after s3rver died: rc $rc"
	cvfs_alive "$M" || fail "the daemon died"
	restart
	after_restart "close-$how"
	# no partial object: the victim is absent, or complete (a later retry)
	if s3_aws s3api head-object --bucket "$S3_BUCKET" --key "victim-$how" >"$T/head" 2>/dev/null; then
		grep -q '"ContentLength": 33554432' "$T/head" || fail "a partial object is visible"
	fi
done
cvfs_umount "$M" || fail "unmount"
echo PASS
