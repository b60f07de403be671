#!/bin/bash
# Bad --db-path input: each refused with a readable message and a non-zero
# exit, and the file is left exactly as it was.  Also: two mounts of one file,
# read-only files and filesystems, and the schema migration path.
set -euo pipefail
. "$(dirname "$0")/common.sh"
sq_init bad
M=$T/mnt
mnt() { "$CVFS_MOUNT_BIN" -f -m "$M" -b sqlite "$@"; }
same() { cmp -s "$1" "$2" || fail "$1 was modified"; }

# 1. not a SQLite file
printf 'just some text, not a database\n%.0s' {1..100} > "$T/text.db"
cp "$T/text.db" "$T/text.ref"
expect_fail "text file" "not a SQLite database" mnt --db-path "$T/text.db"
same "$T/text.db" "$T/text.ref"
head -c 4096 /dev/urandom > "$T/rand.db"
cp "$T/rand.db" "$T/rand.ref"
expect_fail "random bytes" "not a SQLite database" mnt --db-path "$T/rand.db"
same "$T/rand.db" "$T/rand.ref"

# 2. another program's database
sqlite3 "$T/other.db" "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
	INSERT INTO users(name) VALUES ('alice');"
cp "$T/other.db" "$T/other.ref"
expect_fail "another program's database" "another program.*users" mnt --db-path "$T/other.db"
same "$T/other.db" "$T/other.ref"
sqlite3 "$T/app.db" "PRAGMA application_id = 12345; CREATE TABLE t(x);"
cp "$T/app.db" "$T/app.ref"
expect_fail "foreign application_id" "another program" mnt --db-path "$T/app.db"
same "$T/app.db" "$T/app.ref"

# 3. a directory
mkdir "$T/dir.db"
expect_fail "a directory" "is a directory" mnt --db-path "$T/dir.db"
expect_fail "missing directory" "No such file or directory" mnt --db-path "$T/nodir/x.db"
[ ! -e "$T/nodir" ] || fail "created a directory"

# a good database to play with
DB=$T/fs.db
sq_mount "$M" "$DB"
echo "precious" > "$M/file"
mkdir "$M/dir"

# 4. two mounts of the same file
expect_fail "second mount" "in use by another chuk-vfs mount" \
	"$CVFS_MOUNT_BIN" -f -m "$T/mnt2" -b sqlite --db-path "$DB"
expect_fail "second mount, read-only" "in use by another chuk-vfs mount" \
	"$CVFS_MOUNT_BIN" -f -m "$T/mnt2" -b sqlite -r --db-path "$DB"
[ "$(cat "$M/file")" = precious ] || fail "first mount disturbed"
cvfs_umount "$M" || fail "unmount"
cp "$DB" "$T/fs.ref"

# 5. newer schema version
cp "$DB" "$T/newer.db"
sqlite3 "$T/newer.db" "PRAGMA user_version = 99"
cp "$T/newer.db" "$T/newer.ref"
expect_fail "newer schema" "schema version 99, newer" mnt --db-path "$T/newer.db"
same "$T/newer.db" "$T/newer.ref"

# 6. a read-only file: refused without -r, served read-only with it
chmod 444 "$DB"
expect_fail "read-only file without -r" "read-only.*-r" mnt --db-path "$DB"
same "$DB" "$T/fs.ref"
sq_mount "$M" "$DB" -r
[ "$(cat "$M/file")" = precious ] || fail "read-only mount content"
if (echo x > "$M/new") 2>/dev/null; then fail "wrote to a read-only mount"; fi
chmod 644 "$DB"
expect_fail "read-write mount while mounted read-only" "in use" \
	"$CVFS_MOUNT_BIN" -f -m "$T/mnt2" -b sqlite --db-path "$DB"
# two read-only mounts may share the file
sq_mount "$T/mnt3" "$DB" -r
[ "$(cat "$T/mnt3/file")" = precious ] || fail "second read-only mount"
cvfs_umount "$T/mnt3" || fail "unmount ro 2"
cvfs_umount "$M" || fail "unmount ro"
rm -f "$DB-wal" "$DB-shm"

# 7. a read-only filesystem
mkdir "$T/rofs"
mount -t tmpfs -o size=4m tmpfs "$T/rofs"
SQ_EXTRA_MOUNTS+=("$T/rofs")
cp "$DB" "$T/rofs/fs.db"
mount -o remount,ro "$T/rofs"
expect_fail "read-only filesystem without -r" "read-only filesystem" mnt --db-path "$T/rofs/fs.db"
sq_mount "$M" "$T/rofs/fs.db" -r
[ "$(cat "$M/file")" = precious ] || fail "mount on read-only media"
cvfs_umount "$M" || fail "unmount rofs"
expect_fail "read-only and missing" "does not exist" mnt -r --db-path "$T/rofs/none.db"

# 8. migration: make a version-1 database by hand (version 2 added the orphan
# index), mount it, and find it upgraded with everything in place.
cp "$DB" "$T/v1.db"
sqlite3 "$T/v1.db" "DROP INDEX inodes_orphans; PRAGMA user_version = 1;"
expect_fail "old schema, read-only" "needs an upgrade" mnt -r --db-path "$T/v1.db"
sq_mount "$M" "$T/v1.db"
[ "$(cat "$M/file")" = precious ] || fail "content after migration"
cvfs_umount "$M" || fail "unmount v1"
[ "$(sqlite3 "$T/v1.db" 'PRAGMA user_version')" = 2 ] || fail "not upgraded"
sqlite3 "$T/v1.db" .indexes | grep -q inodes_orphans || fail "index missing after upgrade"
[ "$(sqlite3 "$T/v1.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity after upgrade"
echo "badinput: ok"
