#!/bin/bash
# A full disk: the writer gets ENOSPC, the database stays valid, what was
# written before is intact, space can be freed again, and it mounts again.
set -euo pipefail
. "$(dirname "$0")/common.sh"
sq_init full
M=$T/mnt
mkdir "$T/small"
mount -t tmpfs -o size=8m tmpfs "$T/small"
SQ_EXTRA_MOUNTS+=("$T/small")
DB=$T/small/fs.db

sq_mount "$M" "$DB"
head -c 500000 /dev/urandom > "$T/keep"
cp "$T/keep" "$M/keep"
sync "$M/keep"
df -h "$M" | tail -1
[ "$(stat -f -c %b "$M")" -gt 0 ] || fail "statfs reports no blocks"

# One big writer: must fail with ENOSPC, not hang and not lie.
rc=0
out=$(dd if=/dev/urandom of="$M/big" bs=1M count=20 conv=fsync 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "20 MiB fit on an 8 MiB disk?"
grep -q "No space left on device" <<<"$out" || fail "dd failed, but not with ENOSPC: $out"
echo "ok: big write refused: $(tail -1 <<<"$out")"
# Many small writers
i=0 rc=0
while [ $i -lt 5000 ]; do
	i=$((i + 1))
	out=$( (head -c 8192 /dev/urandom > "$M/small-$i") 2>&1) || { rc=$?; break; }
done
echo "small files: stopped at $i: $out"
cmp "$T/keep" "$M/keep" || fail "earlier file damaged by the full disk"

# Freeing space works again.
rm -f "$M/big" "$M"/small-* || fail "cannot delete on a full disk"
cvfs_umount "$M" || fail "unmount"
ls -l "$T/small"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after a full disk"
sq_mount "$M" "$DB"
cmp "$T/keep" "$M/keep" || fail "keep differs after remount"
df "$T/small" "$M" | cat
head -c 100000 /dev/urandom > "$M/again" || { cat "$M.log"; fail "cannot write after freeing space"; }
cvfs_umount "$M" || fail "unmount 2"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check at the end"
echo "fulldisk: ok"
