#!/bin/bash
# Everything a filesystem holds survives unmount and mount of the sqlite store:
# names (binary too), types, modes, owners, link counts, sizes, nanosecond
# times, inode numbers, symlinks, hard links, device nodes, fifos, xattrs,
# sparse files.
set -euo pipefail
. "$(dirname "$0")/common.sh"
sq_init persist
M=$T/mnt DB=$T/fs.db

sq_mount "$M" "$DB"
cd "$M"
mkdir -p a/b/c "sp ace" empty
printf 'hello\n' > a/hello
head -c 300000 /dev/urandom > a/b/random.bin
printf 'x' > "$(printf 'bin\xff\x01name')"
printf 'nl' > "$(printf 'new\nline')"
ln a/hello a/b/c/hardlink
ln a/hello "sp ace/second link"
ln -s ../a/hello "sp ace/sym"
ln -s "$(printf 'x%.0s' {1..300})" longsym
# sparse: a hole, data at 5 GiB, then a trim inside a chunk
truncate -s 10G sparse
printf 'far away' | dd of=sparse bs=1 seek=$((5 << 30)) conv=notrunc status=none
truncate -s $(( (5 << 30) + 4 )) sparse
dd if=/dev/urandom of=partial bs=4096 count=40 status=none
truncate -s 100000 partial
printf 'tail' >> partial
# With the kernel's writeback cache the times of a file written just now are
# the kernel's until its data is flushed (see the report): flush, then set
# every time explicitly below.
sync
touch -d '2022-02-22 22:22:22.222222222' a/hello sparse partial "$(printf 'bin\xff\x01name')" "$(printf 'new\nline')"
mkfifo fifo
mknod chardev c 1 3
mknod blockdev b 7 0
chmod 4755 a/hello
chmod 1777 empty
chmod 2750 a/b
chown 1234:5678 a/b/random.bin
chown -h 42:43 "sp ace/sym"
touch -h -d '2001-02-03 04:05:06.123456789' "sp ace/sym"
touch -d '1999-12-31 23:59:59.987654321' a/b/random.bin
touch -a -d '2010-01-01 00:00:00.000000001' a/b/random.bin
touch -d '1970-01-01 00:00:01.5' empty
setfattr -n user.plain -v value a/hello
setfattr -n user.binary -v 0x00ff10 a/b/random.bin
setfattr -n user.empty a/b
head -c 60000 /dev/urandom > big.attr.val
setfattr -n user.big -v "0x$(xxd -p big.attr.val | tr -d '\n')" empty
rm big.attr.val
cd /
before=$(sq_dump "$M")
cvfs_umount "$M" || fail "unmount"

# What the sqlite3 shell sees.
tables=$(sqlite3 "$DB" .tables)
for t in chunks dentries inodes meta xattrs; do
	grep -qw "$t" <<<"$tables" || fail "table $t missing: $tables"
done
[ "$(sqlite3 "$DB" 'PRAGMA application_id')" = 1129727571 ] || fail "application_id"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
[ "$(sqlite3 "$DB" 'PRAGMA journal_mode')" = wal ] || fail "not WAL"
[ "$(sqlite3 "$DB" "SELECT hex(name) FROM dentries WHERE name = CAST(x'62696eff016e616d65' AS BLOB)")" = 62696EFF016E616D65 ] ||
	fail "binary name not stored as a BLOB"
nch=$(sqlite3 "$DB" "SELECT count(*) FROM chunks c JOIN dentries d ON d.ino = c.ino AND d.name = CAST('sparse' AS BLOB)")
[ "$nch" = 1 ] || fail "sparse file has $nch chunks, want 1"

sq_mount "$M" "$DB"
after=$(sq_dump "$M")
if [ "$before" != "$after" ]; then
	diff <(echo "$before") <(echo "$after") >&2 || true
	fail "the tree changed across a remount"
fi
[ "$(head -c 8 "$M/sparse" | od -An -tx1 | tr -d ' ')" = 0000000000000000 ] || fail "hole not zero"
[ "$(tail -c 4 "$M/sparse")" = "far " ] || fail "sparse data"
[ "$(stat -c %s "$M/partial")" = 100004 ] || fail "partial size"
[ "$(dd if="$M/partial" bs=1 skip=100000 count=4 status=none)" = tail ] || fail "partial tail"
cvfs_umount "$M" || fail "unmount 2"
echo "persistence: $(wc -l <<<"$before") lines identical across remount"
