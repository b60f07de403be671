#!/bin/bash
# A bad bucket, bad credentials or an unreachable endpoint: the mount fails at
# once with a clear message and a non-zero exit.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test errors
s3_start
mkdir -p "$T/m"

# expect_fail PATTERN ARGS...: the mount must exit non-zero, saying PATTERN
expect_fail() {
	local pat=$1 rc=0
	shift
	timeout 60 "$CVFS_MOUNT_BIN" -f -m "$T/m" -b s3 "$@" >"$T/out" 2>&1 || rc=$?
	if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
		cvfs_umount "$T/m" 2>/dev/null || fusermount3 -u "$T/m" 2>/dev/null || true
		fail "mount $* exited $rc"
	fi
	grep -qi "$pat" "$T/out" || fail "no '$pat' in: $(cat "$T/out")"
	echo "ok (exit $rc): $(cat "$T/out")"
}
expect_fail "does not exist" --bucket no-such-bucket --endpoint-url "$S3_URL"
AWS_ACCESS_KEY_ID=WRONG expect_fail "denied" --bucket "$S3_BUCKET" --endpoint-url "$S3_URL"
expect_fail "cannot reach" --bucket "$S3_BUCKET" --endpoint-url "http://127.0.0.1:1"
expect_fail "no bucket" --endpoint-url "$S3_URL"
expect_fail "bad endpoint" --bucket "$S3_BUCKET" --endpoint-url "ftp://x"
grep -qs " $T/m fuse" /proc/self/mounts && fail "something stayed mounted"
echo PASS
