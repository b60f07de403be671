#!/bin/bash
# Opening fails clearly, fast, with a non-zero exit: a bad URL, a wrong or
# missing password, nothing listening, an unroutable host.  Also: passwords
# and Redis 6 ACL users that are right do work.
set -euo pipefail
source "$(dirname "$0")/common.sh"

# expect_fail WHAT PATTERN MAX_MS ARGS...: chuk-vfs-mount fails, says PATTERN, in time
expect_fail() {
	local what=$1 pat=$2 max=$3
	shift 3
	local t0 rc=0
	t0=$(now_ms)
	timeout 20 "$CVFS_MOUNT_BIN" -f -m "$WORK/m" -b redis "$@" >"$WORK/out" 2>&1 || rc=$?
	local ms=$(($(now_ms) - t0))
	[ "$rc" != 0 ] || fail "$what: mounted"
	[ "$rc" != 124 ] || fail "$what: still trying after 20 s"
	grep -qiE "$pat" "$WORK/out" || fail "$what: message '$(cat "$WORK/out")' lacks /$pat/"
	[ "$ms" -le "$max" ] || fail "$what: took $ms ms (limit $max)"
	grep -q secret "$WORK/out" && fail "$what: the message shows the password"
	ok "$what: exit $rc in $ms ms: $(head -1 "$WORK/out")"
}

expect_fail "http URL" "bad redis URL" 2000 --redis-url http://localhost/
expect_fail "bad port" "bad port" 2000 --redis-url redis://localhost:99999/
expect_fail "bad db" "bad database" 2000 --redis-url redis://localhost:6379/abc
expect_fail "relative unix path" "bad redis URL" 2000 --redis-url unix://relative.sock
expect_fail "rediss" "TLS" 2000 --redis-url rediss://localhost/
expect_fail "missing socket" "cannot connect" 2500 --redis-url "unix://$WORK/none.sock"
expect_fail "nothing listening" "cannot connect.*refused" 2500 --redis-url redis://127.0.0.1:1/
# TEST-NET-1: never routed; either unreachable at once or the 2 s connect timeout
expect_fail "unroutable host" "cannot connect" 4000 --redis-url redis://192.0.2.1:6379/

redis_start "$WORK/r" --requirepass secret
S=$WORK/r/redis.sock
expect_fail "no password" "needs a password|NOAUTH" 2500 --redis-url "unix://$S"
expect_fail "wrong password" "authentication failed" 2500 --redis-url "unix://:wrong@$S"
expect_fail "wrong ACL user" "authentication failed" 2500 --redis-url "unix://nobody:secret@$S"
expect_fail "db out of range" "select|DB index" 2500 --redis-url "unix://:secret@$S?db=999"

cvfs_mount "$WORK/ok" -b redis --redis-url "unix://:secret@$S" --redis-prefix pw:
echo hi >"$WORK/ok/f"
[ "$(cat "$WORK/ok/f")" = hi ] || fail "with the right password"
cvfs_umount "$WORK/ok"
ok "the right password mounts"

redis_cli "$WORK/r" -a secret ACL SETUSER alice on '>wonder%land' '~acl:*' '&*' '+@all' >/dev/null
cvfs_mount "$WORK/acl" -b redis --redis-url "unix://alice:wonder%25land@$S" --redis-prefix acl:
echo hi >"$WORK/acl/f"
[ "$(cat "$WORK/acl/f")" = hi ] || fail "ACL user"
cvfs_umount "$WORK/acl"
ok "a Redis 6 ACL user (percent-encoded password) mounts, confined to its keys"
# the same user outside its key pattern: refused when the format key is read
expect_fail "ACL user outside its keys" "NOPERM|permission|no permissions" 2500 \
	--redis-url "unix://alice:wonder%25land@$S" --redis-prefix elsewhere:
echo PASS
