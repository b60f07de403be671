#!/bin/bash
# kill -9 of the daemon while writes are in flight: the database stays valid
# (integrity_check), the dead mount is cleared by chuk-vfs-mount itself, every
# fsync'd file is byte-exact, and an unlinked-but-open file (an orphan) is
# deleted at the next open.
set -euo pipefail
. "$(dirname "$0")/common.sh"
sq_init crash
M=$T/mnt DB=$T/fs.db

sq_mount "$M" "$DB"
mkdir "$M/synced" "$M/inflight"
mkdir "$T/ref"
for i in $(seq 1 40); do
	n=$(( (RANDOM % 300 + 1) * 1000 + RANDOM ))
	head -c "$n" /dev/urandom > "$T/ref/f$i"
	dd if="$T/ref/f$i" of="$M/synced/f$i" bs=64k conv=fsync status=none
done
# overwrite part of a synced file in place, fsync again
dd if=/dev/urandom of="$T/ref/f1" bs=4096 seek=3 count=2 conv=notrunc status=none
dd if="$T/ref/f1" of="$M/synced/f1" bs=4096 skip=3 seek=3 count=2 conv=notrunc,fsync status=none
(cd "$T/ref" && md5sum f* > "$T/ref.md5")

# an orphan: open, unlinked, still held
exec 7>"$M/orphan"
echo "orphan data" >&7
rm "$M/orphan"

# writers in flight
pids=()
for w in 1 2 3; do
	( i=0; while :; do
		i=$((i + 1))
		head -c 200000 /dev/urandom > "$M/inflight/w$w-$i" 2>/dev/null || exit 0
		mkdir "$M/inflight/d$w-$i" 2>/dev/null || exit 0
		mv "$M/inflight/w$w-$i" "$M/inflight/d$w-$i/" 2>/dev/null || exit 0
	done ) &
	pids+=($!)
done
sleep 1.5
cvfs_kill "$M"
exec 7>&-
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
if ls "$M" >/dev/null 2>&1; then fail "the mount should be dead after kill -9"; fi

# The crashed files as they are, checked on a copy (checking may recover the WAL).
mkdir "$T/copy"
cp "$DB"* "$T/copy/"
[ "$(sqlite3 "$T/copy/fs.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after the crash"
echo "ok: integrity_check of the crashed database"

# Mount again on the same (dead) mount point: chuk-vfs-mount itself must clear
# it.  Run as a daemon: its exit status says whether it mounted.
out=$("$CVFS_MOUNT_BIN" -m "$M" -b sqlite --db-path "$DB" 2>&1) ||
	fail "chuk-vfs-mount on the dead mount point: $out"
SQ_DAEMON_DB=$DB
n=$(grep -c " $M fuse" /proc/self/mounts || true)
[ "$n" = 1 ] || fail "$n mounts on $M, want 1 (the dead one not cleared?)"
ls "$M" > /dev/null || fail "the new mount does not answer"
(cd "$M/synced" && md5sum -c --quiet "$T/ref.md5") || fail "fsync'd files differ after the crash"
echo "ok: $(wc -l < "$T/ref.md5") fsync'd files byte-exact"
ninflight=$(find "$M/inflight" | wc -l)
find "$M/inflight" -type f -exec cat {} + > /dev/null || fail "reading in-flight files"
sq_daemon_umount "$M" "$DB"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after remount"
[ "$(sqlite3 "$DB" 'SELECT count(*) FROM inodes WHERE nlink = 0')" = 0 ] || fail "orphan left behind"
# every entry points at an inode; every chunk belongs to one
[ "$(sqlite3 "$DB" 'SELECT count(*) FROM dentries WHERE ino NOT IN (SELECT ino FROM inodes)')" = 0 ] ||
	fail "dangling directory entries"
[ "$(sqlite3 "$DB" 'SELECT count(*) FROM chunks WHERE ino NOT IN (SELECT ino FROM inodes)')" = 0 ] ||
	fail "chunks without an inode"
echo "crash: ok ($ninflight in-flight names survived, database consistent)"
