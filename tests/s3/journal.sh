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
[ "$(s3_aws s3 cp "$B/over" -)" = "new over" ] || fail "over after the replay"
s3_aws s3 ls "$B/gone" >/dev/null && fail "gone is still there"
s3_aws s3 ls "$B/moved" | grep -q " moved$" && fail "moved is still there"
[ "$(s3_aws s3 cp "$B/moved2" -)" = "old moved" ] || fail "moved2 after the replay"
meta=$(s3_aws s3api head-object --bucket "$S3_BUCKET" --key chm --query Metadata --output text)
grep -q 33152 <<<"$meta" || fail "mode of chm after the replay: $meta"
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

# without the journal the queued changes are lost (the documented window)
s3_mount "$M" -o store.cache_dir="$T/cache",store.wb_delay=60000
echo lost >"$M/lost"
cvfs_kill "$M"
fusermount3 -u -z "$M"
s3_mount "$M" -o store.cache_dir="$T/cache"
[ ! -e "$M/lost" ] || fail "without journal=1 a killed daemon's upload survived?"
cvfs_umount "$M"
echo PASS
