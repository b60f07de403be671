#!/bin/bash
# POSIX basics through an S3 mount (s3rver), and what survives a remount.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test basic
s3_start
M=$T/m
s3_mount "$M"

# write, read, append, overwrite, write into the middle, truncate
printf hello >"$M/a"
[ "$(cat "$M/a")" = hello ] || fail "read back"
printf ' world' >>"$M/a"
[ "$(cat "$M/a")" = "hello world" ] || fail "append"
printf bye >"$M/a"
[ "$(cat "$M/a")" = bye ] || fail "overwrite"
printf XY | dd of="$M/a" bs=1 seek=1 conv=notrunc status=none
[ "$(cat "$M/a")" = bXY ] || fail "write into an existing object"
truncate -s 1 "$M/a"
[ "$(cat "$M/a")" = b ] || fail "truncate"
truncate -s 5 "$M/a"
[ "$(stat -c %s "$M/a")" = 5 ] && [ "$(od -An -c "$M/a" | tr -d ' ')" = 'b\0\0\0\0' ] || fail "extend"
head -c 3000000 /dev/urandom >"$T/big"
cp "$T/big" "$M/big"
cmp "$T/big" "$M/big" || fail "3 MB file"
dd if="$M/big" bs=4096 skip=100 count=3 status=none | cmp - <(dd if="$T/big" bs=4096 skip=100 count=3 status=none) || fail "ranged read"

# directories
mkdir "$M/d"
mkdir "$M/d/e"
rmdir "$M/d/e"
rmdir "$M/d"
[ ! -e "$M/d" ] || fail "rmdir"
mkdir -p "$M/d/e"
echo 1 >"$M/d/e/f"
if rmdir "$M/d" 2>/dev/null; then fail "rmdir of a non-empty directory"; fi
rm "$M/d/e/f"
[ -d "$M/d/e" ] || fail "emptied directory vanished"

# rename: files, over a file, a directory tree
echo moved >"$M/r1"
mv "$M/r1" "$M/r2"
[ ! -e "$M/r1" ] && [ "$(cat "$M/r2")" = moved ] || fail "rename a file"
echo new >"$M/n1"
echo old >"$M/n2"
mv "$M/n1" "$M/n2"
[ "$(cat "$M/n2")" = new ] && [ ! -e "$M/n1" ] || fail "rename over a file"
mkdir -p "$M/t/x/y"
echo deep >"$M/t/x/y/z"
echo top >"$M/t/top"
mv "$M/t" "$M/t2"
[ ! -e "$M/t" ] && [ "$(cat "$M/t2/x/y/z")" = deep ] && [ "$(cat "$M/t2/top")" = top ] ||
	fail "rename a directory tree"
mv "$M/t2/x" "$M/d/x"
[ "$(cat "$M/d/x/y/z")" = deep ] && [ ! -e "$M/t2/x" ] || fail "move a directory across parents"

# symlinks
ln -s r2 "$M/l"
[ "$(readlink "$M/l")" = r2 ] && [ "$(cat "$M/l")" = moved ] || fail "symlink"

# hard links: EPERM
python3 - "$M/r2" "$M/hl" <<'PY' || fail "link() should fail with EPERM"
import errno, os, sys
try:
    os.link(sys.argv[1], sys.argv[2])
except OSError as e:
    sys.exit(0 if e.errno == errno.EPERM else 1)
sys.exit(1)
PY

# names a key cannot carry (not UTF-8, control characters): EILSEQ, at
# create, mkdir and rename; UTF-8 names go through
python3 - "$M" <<'PY' || fail "names that cannot be keys"
import errno, os, sys
d = sys.argv[1].encode() + b"/"
def refused(what, fn):
    try:
        fn()
    except OSError as e:
        if e.errno != errno.EILSEQ:
            sys.exit(f"{what}: {e}")
    else:
        sys.exit(f"{what} succeeded")
for bad in (b"caf\xe9", b"ctl\x01", b"\xff\xfe"):
    refused(bad, lambda: os.open(d + bad, os.O_CREAT | os.O_WRONLY, 0o644))
    refused(bad, lambda: os.mkdir(d + bad))
open(d + b"plain", "w").close()
refused("rename", lambda: os.rename(d + b"plain", d + b"caf\xe9"))
os.unlink(d + b"plain")
with open(d + "café, 日本語\ttab".encode(), "w") as f:
    f.write("utf")
PY

# attributes
chmod 640 "$M/r2"
touch -d '2001-02-03 04:05:06.123456789 UTC' "$M/r2"
chmod 700 "$M/d"
want_mtime=$(date -d '2001-02-03 04:05:06 UTC' +%s)

# a tree from outside, and a directory of more than 1000 entries
cp -a /usr/include/linux "$M/linux"
diff -r /usr/include/linux "$M/linux" || fail "cp -a tree differs"
mkdir "$M/many"
(cd "$M/many" && for i in $(seq 1 1050); do : >"f$i"; done)
[ "$(ls "$M/many" | wc -l)" = 1050 ] || fail "ls of 1050 entries"

# everything again from S3 after a remount
cvfs_umount "$M"
s3_mount "$M"
[ "$(ls "$M/many" | wc -l)" = 1050 ] || fail "ls of 1050 entries after remount (pagination)"
[ "$(stat -c %a "$M/r2")" = 640 ] || fail "mode after remount: $(stat -c %a "$M/r2")"
[ "$(stat -c %Y "$M/r2")" = "$want_mtime" ] || fail "mtime after remount: $(stat -c %Y "$M/r2")"
[ "$(stat -c %y "$M/r2" | cut -c20-29)" = .123456789 ] || fail "mtime nanoseconds: $(stat -c %y "$M/r2")"
[ "$(stat -c %a "$M/d")" = 700 ] || fail "directory mode after remount"
[ "$(readlink "$M/l")" = r2 ] || fail "symlink after remount"
[ "$(cat "$M/café, 日本語	tab")" = utf ] || fail "a UTF-8 name after remount"
[ "$(cat "$M/d/x/y/z")" = deep ] || fail "moved tree after remount"
[ -d "$M/d/e" ] || fail "empty directory after remount"
cmp "$T/big" "$M/big" || fail "big file after remount"
[ "$(stat -c %s "$M/a")" = 5 ] || fail "size after remount"
diff -r /usr/include/linux "$M/linux" || fail "tree differs after remount"
(cd /usr/include/linux && find . -printf '%P %m %T@\n' | sort) >"$T/want"
(cd "$M/linux" && find . -printf '%P %m %T@\n' | sort) >"$T/got"
diff "$T/want" "$T/got" || fail "modes/mtimes of the copied tree after remount"
rm -r "$M/many"
[ ! -e "$M/many" ] || fail "rm -r"
cvfs_umount "$M"
echo "PASS"
