#!/bin/bash
# The redis store through a mount: the usual operations, a real tree, and
# everything still there (same inode numbers) after unmounting and mounting
# again.
set -euo pipefail
source "$(dirname "$0")/common.sh"

redis_start "$WORK/r"
M=$WORK/m
cvfs_mount "$M" -b redis --redis-url "$REDIS_URL" --redis-prefix basic:

cd "$M"
echo hello >f
[ "$(cat f)" = hello ] || fail "write/read"
mv f g
[ ! -e f ] && [ "$(cat g)" = hello ] || fail "rename"
mkdir -p d/e/f
ln -s ../g d/sl
[ "$(readlink d/sl)" = ../g ] && [ "$(cat d/sl)" = hello ] || fail "symlink"
ln g d/hl
[ "$(stat -c %h g)" = 2 ] && [ "$(stat -c %i g)" = "$(stat -c %i d/hl)" ] || fail "hard link"
setfattr -n user.colour -v blue g
setfattr -n user.empty g
[ "$(getfattr --only-values -n user.colour g)" = blue ] || fail "xattr get"
getfattr -d g | grep -q user.empty || fail "xattr list"
setfattr -x user.empty g
! getfattr -n user.empty g 2>/dev/null || fail "xattr remove"
chmod 640 g
[ "$(stat -c %a g)" = 640 ] || fail "chmod"
touch -d '2001-02-03 04:05:06.123456789' g
[ "$(stat -c %y g)" = "2001-02-03 04:05:06.123456789 +0000" ] ||
	[ "$(TZ=UTC stat -c %Y g)" = "$(TZ=UTC date -d '2001-02-03 04:05:06' +%s)" ] ||
	[ "$(stat -c %Y g)" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || fail "touch -d: $(stat -c %y g)"
echo tmp >x && rm x
[ ! -e x ] || fail "unlink"
rmdir d/e/f
ok "create, write, read, rename, unlink, mkdir, rmdir, symlink, hard link, xattr, chmod, touch -d"

# data: a file over several chunks, appends, overwrite in the middle, truncation, holes
head -c 3000000 /dev/urandom >"$WORK/big"
cp "$WORK/big" big
cmp big "$WORK/big" || fail "3 MB file"
printf 'XYZ' | dd of=big bs=1 seek=70000 conv=notrunc status=none
printf 'XYZ' | dd of="$WORK/big" bs=1 seek=70000 conv=notrunc status=none
cmp big "$WORK/big" || fail "overwrite across chunks"
truncate -s 100000 big
truncate -s 100000 "$WORK/big"
truncate -s 200000 big
truncate -s 200000 "$WORK/big"
cmp big "$WORK/big" || fail "truncate down then up reads zeros"
echo tail >>big
echo tail >>"$WORK/big"
cmp big "$WORK/big" || fail "append"
truncate -s 1T sparse
printf 'end' | dd of=sparse bs=1 seek=$((1024 * 1024 * 1024 * 1024 - 3)) conv=notrunc status=none
[ "$(tail -c 3 sparse)" = end ] || fail "sparse end"
[ "$(dd if=sparse bs=4096 skip=1000000 count=1 status=none | tr -d '\0' | wc -c)" = 0 ] ||
	fail "hole reads zeros"
used=$(redis_cli "$WORK/r" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
[ "$used" -lt $((200 * 1024 * 1024)) ] || fail "a 1 TiB sparse file used $used bytes of redis"
rm sparse
ok "data: chunks, overwrite, truncate, append, 1 TiB sparse file"

cp -a /usr/include/linux tree
diff -r /usr/include/linux tree || fail "cp -a /usr/include/linux differs"
[ "$(find tree | wc -l)" = "$(find /usr/include/linux | wc -l)" ] || fail "tree count"
ok "cp -a /usr/include/linux ($(find tree -type f | wc -l) files), diff -r clean"
df -h . | tail -1
df -i . | tail -1

snap() {
	(cd "$1" && find . -printf '%i %n %m %s %T@ %y %p %l\n' | sort -k7)
}
snap "$M" >"$WORK/before"
sums_before=$(cd "$M" && find . -type f -print0 | sort -z | xargs -0 md5sum | md5sum)
x_before=$(cd "$M" && getfattr -n user.colour --only-values g)
cd /
cvfs_umount "$M" || fail "unmount"

cvfs_mount "$M" -b redis --redis-url "$REDIS_URL" --redis-prefix basic:
snap "$M" >"$WORK/after"
diff "$WORK/before" "$WORK/after" || fail "the tree changed across a remount (inode, links, mode, size, mtime, type or target)"
sums_after=$(cd "$M" && find . -type f -print0 | sort -z | xargs -0 md5sum | md5sum)
[ "$sums_before" = "$sums_after" ] || fail "contents changed across a remount"
[ "$(cd "$M" && getfattr -n user.colour --only-values g)" = "$x_before" ] || fail "xattr lost"
diff -r /usr/include/linux "$M/tree" || fail "tree differs after remount"
ok "after a remount: same names, inode numbers, link counts, modes, sizes, mtimes, contents, xattrs"

rm -rf "$M/tree" "$M/big" "$M/g" "$M/d"
[ -z "$(ls -A "$M")" ] || fail "not empty after rm -rf: $(ls -A "$M")"
cvfs_umount "$M" || fail "final unmount"
# (after the unmount: orphans the kernel still held are gone by then)
left=$(redis_cli "$WORK/r" --scan --pattern 'basic:[icxkdl]:*' |
	grep -v -x -e 'basic:i:1' -e 'basic:d:1' -e 'basic:l:1' | head -5 || true)
[ -z "$left" ] || fail "keys left behind after removing everything: $left"
[ "$(redis_cli "$WORK/r" get basic:nfiles)" = 1 ] || fail "nfiles is $(redis_cli "$WORK/r" get basic:nfiles), not 1"
ok "rm -rf leaves no keys behind"
echo "PASS"
