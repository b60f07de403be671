#!/bin/bash
# Two mounts of one filesystem race on the same few names (create, write,
# rename over, link, unlink, mkdir, rmdir, in and across directories), with
# their caches on: the commit script must turn every stale read into a rerun.
# Afterwards the filesystem is whole (tests/redis/fsck.lua, on the server):
# every entry names an existing inode, link counts match the names, no
# inode is lost, listings match entries; and a fresh mount walks it.
set -euo pipefail
source "$(dirname "$0")/common.sh"

command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
N=${RACE_N:-1500}

redis_start "$WORK/r"
A=$WORK/a
B=$WORK/b
fsck() {
	local out
	out=$(redis_cli "$WORK/r" --raw EVAL "$(cat "$CVFS_SRCDIR/tests/redis/fsck.lua")" 0 rc:) ||
		fail "fsck.lua did not run: $out"
	[ -z "$out" ] || fail "$1: the filesystem is not whole:
$out"
}

cvfs_mount "$A" -b redis --redis-url "$REDIS_URL" --redis-prefix rc:
cvfs_mount "$B" -b redis --redis-url "$REDIS_URL" --redis-prefix rc:
mkdir "$A/a" "$A/b"
poll 5 test -d "$B/b" || fail "B does not see A's directories"
fsck "before the race"

for round in 1 2; do
	pids=()
	for m in "$A" "$B"; do
		for k in 1 2; do
			python3 "$CVFS_SRCDIR/tests/redis/race.py" "$m" "$round$k${#pids[@]}" "$N" \
				>"$WORK/race-$round-${#pids[@]}.log" 2>&1 &
			pids+=($!)
		done
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || fail "racer $i of round $round: $(cat "$WORK/race-$round-$i.log")"
	done
	note "round $round: $(cat "$WORK/race-$round-0.log")"
	cvfs_alive "$A" && cvfs_alive "$B" || fail "a daemon died in round $round"
	# the kernels' references go at unmount: orphans are deleted then
	cvfs_umount "$A" || fail "A's daemon failed"
	cvfs_umount "$B" || fail "B's daemon failed"
	fsck "after round $round"
	ok "round $round: two mounts, 4 racers x $N operations: filesystem whole"
	cvfs_mount "$A" -b redis --redis-url "$REDIS_URL" --redis-prefix rc:
	cvfs_mount "$B" -b redis --redis-url "$REDIS_URL" --redis-prefix rc:
done

# a fresh mount sees what the server holds: every listed name stats, and
# files' link counts are their names
python3 - "$A" <<'PY' || fail "walk of a fresh mount"
import os, sys, collections
root = sys.argv[1]
names = collections.Counter()
links = {}
for dp, dns, fns in os.walk(root):
    for n in dns + fns:
        st = os.lstat(os.path.join(dp, n))
        if not os.path.isdir(os.path.join(dp, n)):
            names[st.st_ino] += 1
            links[st.st_ino] = st.st_nlink
for ino, c in names.items():
    if links[ino] != c:
        sys.exit("inode %d: nlink %d, %d names" % (ino, links[ino], c))
print("walked %d files" % len(names))
PY
ok "a fresh mount walks the raced tree: every name stats, link counts right"
