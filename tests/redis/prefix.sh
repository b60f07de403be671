#!/bin/bash
# Prefixes: two prefixes on one server are two filesystems; a prefix holding
# someone else's keys is refused; a read-only mount creates nothing.
set -euo pipefail
source "$(dirname "$0")/common.sh"

redis_start "$WORK/r"
cvfs_mount "$WORK/p1" -b redis --redis-url "$REDIS_URL" --redis-prefix one:
cvfs_mount "$WORK/p2" -b redis --redis-url "$REDIS_URL" --redis-prefix two:
echo 1 >"$WORK/p1/only-one"
mkdir "$WORK/p1/d1"
echo 2 >"$WORK/p2/only-two"
[ ! -e "$WORK/p2/only-one" ] && [ ! -e "$WORK/p2/d1" ] || fail "prefix two sees prefix one's files"
[ ! -e "$WORK/p1/only-two" ] || fail "prefix one sees prefix two's files"
[ "$(ls "$WORK/p1")" = "$(printf 'd1\nonly-one')" ] || fail "listing of one: $(ls "$WORK/p1")"
[ "$(ls "$WORK/p2")" = only-two ] || fail "listing of two: $(ls "$WORK/p2")"
other=$(redis_cli "$WORK/r" --scan | grep -v -e '^one:' -e '^two:' || true)
[ -z "$other" ] || fail "keys outside the prefixes: $other"
ok "two prefixes, two filesystems; every key under its prefix"

# a third mount on prefix one sees one
cvfs_mount "$WORK/p1b" -b redis --redis-url "$REDIS_URL" --redis-prefix one: -o cache_timeout=0
[ "$(cat "$WORK/p1b/only-one")" = 1 ] || fail "second mount of prefix one"
cvfs_umount "$WORK/p1b"

# a prefix used by something else is refused
redis_cli "$WORK/r" set other:some-key 1 >/dev/null
if "$CVFS_MOUNT_BIN" -f -m "$WORK/x" -b redis --redis-url "$REDIS_URL" --redis-prefix other: \
	>"$WORK/x.out" 2>&1; then
	fail "mounted a prefix holding foreign keys"
fi
grep -q "not a chuk-vfs filesystem" "$WORK/x.out" || fail "message: $(cat "$WORK/x.out")"
redis_cli "$WORK/r" set bad:format "something else" >/dev/null
if "$CVFS_MOUNT_BIN" -f -m "$WORK/x" -b redis --redis-url "$REDIS_URL" --redis-prefix bad: \
	>"$WORK/x.out" 2>&1; then
	fail "mounted a prefix with a foreign format key"
fi
grep -q "not a chuk-vfs filesystem" "$WORK/x.out" || fail "message: $(cat "$WORK/x.out")"
ok "prefixes holding foreign keys refused: $(sed 's/.*: //' "$WORK/x.out" | head -1)"

# read-only: an existing filesystem mounts, a new prefix is not created
cvfs_mount "$WORK/ro" -b redis --redis-url "$REDIS_URL" --redis-prefix one: -r
[ "$(cat "$WORK/ro/only-one")" = 1 ] || fail "read-only mount reads"
! touch "$WORK/ro/new" 2>/dev/null || fail "read-only mount wrote"
cvfs_umount "$WORK/ro"
if "$CVFS_MOUNT_BIN" -f -r -m "$WORK/x" -b redis --redis-url "$REDIS_URL" --redis-prefix fresh: \
	>"$WORK/x.out" 2>&1; then
	fail "read-only mount of an empty prefix succeeded"
fi
[ -z "$(redis_cli "$WORK/r" --scan --pattern 'fresh:*')" ] || fail "read-only mount created keys"
ok "read-only: reads, refuses writes, creates nothing"

# a database number
cvfs_mount "$WORK/db3" -b redis --redis-url "$REDIS_URL?db=3" --redis-prefix one:
[ ! -e "$WORK/db3/only-one" ] || fail "db 3 sees db 0"
echo 3 >"$WORK/db3/in-db3"
[ "$(redis_cli "$WORK/r" -n 3 exists one:format)" = 1 ] || fail "db 3 not used"
cvfs_umount "$WORK/db3"
ok "?db=3 selects database 3"

cvfs_umount "$WORK/p1"
cvfs_umount "$WORK/p2"
echo PASS
