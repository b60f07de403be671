#!/bin/bash
# A bad bucket, bad credentials or an unreachable endpoint: the mount fails at
# once with a clear message and a non-zero exit, within a bounded time even
# with retries (mount_timeout=, 10 s): also for an endpoint that accepts
# connections and never answers, and an address nothing answers at.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test errors
s3_start
mkdir -p "$T/m"

# expect_fail PATTERN ARGS...: the mount must exit non-zero, saying PATTERN
expect_fail() {
	local pat=$1 rc=0
	shift
	local t0=$SECONDS
	timeout 60 "$CVFS_MOUNT_BIN" -f -m "$T/m" -b s3 "$@" >"$T/out" 2>&1 || rc=$?
	if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
		cvfs_umount "$T/m" 2>/dev/null || fusermount3 -u "$T/m" 2>/dev/null || true
		fail "mount $* exited $rc"
	fi
	grep -qi "$pat" "$T/out" || fail "no '$pat' in: $(cat "$T/out")"
	# 10 s of mount_timeout, generous room for a loaded machine (it was
	# 150 s for a server that never answers: 5 tries of the 30 s timeout)
	[ $((SECONDS - t0)) -le 25 ] || fail "mount $* took $((SECONDS - t0)) s to fail"
	echo "ok (exit $rc, $((SECONDS - t0)) s): $(cat "$T/out")"
}
expect_fail "does not exist" --bucket no-such-bucket --endpoint-url "$S3_URL"
AWS_ACCESS_KEY_ID=WRONG expect_fail "denied" --bucket "$S3_BUCKET" --endpoint-url "$S3_URL"
expect_fail "cannot reach" --bucket "$S3_BUCKET" --endpoint-url "http://127.0.0.1:1"
# a server that accepts connections and never answers
HPORT=$(s3_free_port)
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
conns = []
while True:
    conns.append(s.accept()[0])  # kept open, never read, never answered
' "$HPORT" &
HPID=$!
# stopped on any exit: it holds the test's output open
trap 'rc=$?; set +e; kill "$HPID" 2>/dev/null; cvfs_cleanup; s3_cleanup; rm -rf "$T"; exit $rc' EXIT
for ((i = 0; i < 100; i++)); do
	(exec 3<>"/dev/tcp/127.0.0.1/$HPORT") 2>/dev/null && break
	sleep 0.05
done
expect_fail "cannot reach.*timed out" --bucket "$S3_BUCKET" --endpoint-url "http://127.0.0.1:$HPORT"
expect_fail "cannot reach.*timed out" --bucket "$S3_BUCKET" --endpoint-url "http://127.0.0.1:$HPORT" \
	-o store.mount_timeout=3
kill "$HPID"
wait "$HPID" 2>/dev/null || true
# an address nothing answers at (TEST-NET-1: dropped, or no route at all)
expect_fail "cannot reach" --bucket "$S3_BUCKET" --endpoint-url "http://192.0.2.1:9"
expect_fail "no bucket" --endpoint-url "$S3_URL"
expect_fail "bad endpoint" --bucket "$S3_BUCKET" --endpoint-url "ftp://x"
grep -qs " $T/m fuse" /proc/self/mounts && fail "something stayed mounted"
echo PASS
