#!/bin/bash
# journal=1: changes queued when the daemon is killed (SIGKILL) are sent by
# the next mount with the same cache_dir; without it they are lost (the
# documented crash window).
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test journal aws
s3_start
B=s3://$S3_BUCKET
M=$T/m
mkdir "$T/cache"

for k in over gone moved chm; do echo "old $k" | s3_aws s3 cp --quiet - "$B/$k"; done
# every op held 60 s: all of them are still queued when the daemon dies
s3_mount "$M" -o store.journal=1,store.cache_dir="$T/cache",store.wb_delay=60000,store.wb_delay_all=1
head -c 300000 /dev/urandom >"$T/new"
cp "$T/new" "$M/new"               # a new file
setfattr -n user.j -v jv "$M/new"   # with an extended attribute
echo "new over" >"$M/over"          # an object overwritten
rm "$M/gone"                        # deleted
mv "$M/moved" "$M/moved2"           # renamed
chmod 600 "$M/chm"                  # attributes
mkdir "$M/dir"                      # a marker
echo inside >"$M/dir/f"
ln -s new "$M/link"                 # a symlink
echo first >"$M/twice"              # written, closed, written again
echo second >"$M/twice"
cvfs_kill "$M"
fusermount3 -u -z "$M"
# nothing was sent
[ "$(s3_aws s3 cp "$B/over" -)" = "old over" ] || fail "something was sent before the kill"
s3_aws s3 ls "$B/new" >/dev/null && fail "new was sent before the kill"

# the next mount sends the journal, in order, before it serves
s3_mount "$M" -o store.journal=1,store.cache_dir="$T/cache"
grep -q "journal: sending" "$M.log" || fail "no replay in the log: $(cat "$M.log")"
s3_aws s3 cp --quiet "$B/new" "$T/new.back"
cmp "$T/new" "$T/new.back" || fail "new after the replay"
s3_aws s3api head-object --bucket "$S3_BUCKET" --key new --query Metadata.xattr --output text |
	grep -q "user.j" || fail "the xattr of new after the replay"
[ "$(s3_aws s3 cp "$B/over" -)" = "new over" ] || fail "over after the replay"
s3_aws s3 ls "$B/gone" >/dev/null && fail "gone is still there"
s3_aws s3 ls "$B/moved" | grep -q " moved$" && fail "moved is still there"
[ "$(s3_aws s3 cp "$B/moved2" -)" = "old moved" ] || fail "moved2 after the replay"
meta=$(s3_aws s3api head-object --bucket "$S3_BUCKET" --key chm --query Metadata --output text)
grep -qw 0100600 <<<"$meta" || fail "mode of chm after the replay: $meta"
s3_aws s3api head-object --bucket "$S3_BUCKET" --key dir/ >/dev/null || fail "dir/ marker"
[ "$(s3_aws s3 cp "$B/dir/f" -)" = inside ] || fail "dir/f"
[ "$(s3_aws s3 cp "$B/link" -)" = new ] || fail "symlink target"
got=$(s3_aws s3 cp "$B/twice" - 2>&1) || true
[ "$got" = second ] || fail "twice: the last bytes closed; got: $got; $(cat "$M.log")"
[ "$(cat "$M/twice")" = second ] && [ "$(readlink "$M/link")" = new ] || fail "the mount after the replay"
cvfs_umount "$M"
J=$(echo "$T/cache"/chuk-vfs-s3-journal-*)
[ -z "$(ls "$J" | grep -v '^lock$' | grep -v '^log$')" ] || fail "journal files left: $(ls "$J")"
[ ! -s "$J/log" ] || fail "the journal is not empty after a clean unmount: $(cat "$J/log")"
echo "ok: a killed daemon's queue is sent by the next mount (journal=1)"

# the journal is fsynced in batches (journal_sync=, ms): 40 closes well
# within one interval are one or two rounds of fsyncs, not 40
export CVFS_S3_STATS=1
s3_mount "$M" -o store.journal=1,store.cache_dir="$T/cache",store.wb_delay=60000,store.journal_sync=2000
mkdir "$M/many"
for i in $(seq 1 40); do echo "$i" >"$M/many/f$i"; done
sleep 2.5
n=$(s3_stat "$M" PUT >/dev/null; grep -o "journal syncs [0-9]*" "$M.log" | tail -1 | grep -o '[0-9]*$')
[ "$n" -ge 1 ] && [ "$n" -le 4 ] || fail "40 closes: $n journal syncs"
echo "ok: 40 closes, $n journal syncs"
cvfs_umount "$M"
unset CVFS_S3_STATS

# a data file the machine did not write whole before it went down (the
# power cut that fsync guards against, simulated by cutting the file): the
# next mount does not send it (S3 keeps what it had) and sends the rest
echo "old torn" | s3_aws s3 cp --quiet - "$B/torn"
echo "old rm" | s3_aws s3 cp --quiet - "$B/rm"
s3_mount "$M" -o store.journal=1,store.cache_dir="$T/cache",store.wb_delay=60000,store.wb_delay_all=1
echo "new torn, longer than before" >"$M/torn"
rm "$M/rm"
cvfs_kill "$M"
fusermount3 -u -z "$M"
J=$(echo "$T/cache"/chuk-vfs-s3-journal-*)
ls "$J"/s-* >/dev/null || fail "no data file in the journal: $(ls "$J")"
for f in "$J"/s-*; do truncate -s -3 "$f"; done
s3_mount "$M" -o store.journal=1,store.cache_dir="$T/cache"
grep -q "torn did not all reach the disk" "$M.log" || fail "no word of the torn file: $(cat "$M.log")"
[ "$(s3_aws s3 cp "$B/torn" -)" = "old torn" ] || fail "a torn data file was sent"
s3_aws s3 ls "$B/rm" >/dev/null && fail "the delete after the torn file was not sent"
cvfs_umount "$M"
echo "ok: a data file not whole is not sent"

# without the journal the queued changes are lost (the documented window)
s3_mount "$M" -o store.cache_dir="$T/cache",store.wb_delay=60000
echo lost >"$M/lost"
cvfs_kill "$M"
fusermount3 -u -z "$M"
s3_mount "$M" -o store.cache_dir="$T/cache"
[ ! -e "$M/lost" ] || fail "without journal=1 a killed daemon's upload survived?"
cvfs_umount "$M"
echo PASS
