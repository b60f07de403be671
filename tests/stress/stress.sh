#!/usr/bin/env bash
# stress-ng file-system stressors, with --verify, in a directory on a memory
# store mount.  Checks: stress-ng's exit status, no "fail"/"error" lines, every
# stressor did some work, the daemon is alive, everything was cleaned up (no
# files left, space and inodes given back), and the unmount is clean.
set -euo pipefail
source "$(dirname "$0")/common.sh"

command -v stress-ng >/dev/null || fail "stress-ng is not installed (apt-get install stress-ng)"

MNT=$WORK/mnt
mnt "$MNT"
mkdir "$MNT/stress"
read -r used0 iused0 < <(df -B1 --output=used,iused "$MNT" | tail -1)

SECS=${CVFS_STRESS_SECS:-8}

# run_batch NAME STRESSOR-ARGS...: one stress-ng run; each "--NAME N" in the
# arguments must report bogo ops > 0 in the metrics.  A stressor that did no
# work at all gets the batch run once more (said loudly): once in a CI run the
# dirdeep stressor stopped after 0.03 s with 0 ops and no error while the
# same batch passed in every other run here (open question, issue 3 note).
run_batch() {
	IDLE=
	run_batch_once "$@"
	if [ -n "$IDLE" ]; then
		echo "KNOWN FLAKE: stressor(s)$IDLE did no work in batch '$1'; running the batch once more" >&2
		IDLE=
		run_batch_once "$@"
		[ -z "$IDLE" ] || fail "stressor(s)$IDLE did no work (0 bogo ops), twice"
	fi
}

run_batch_once() {
	local name=$1
	shift
	local log=$WORK/stress-$name.log
	local yaml=$WORK/stress-$name.yaml
	check "stress-ng batch '$name': $*"
	local rc=0
	timeout -k 5 $((SECS * 4 + 30)) stress-ng "$@" --verify --timeout "${SECS}s" \
		--temp-path "$MNT/stress" --metrics-brief --yaml "$yaml" >"$log" 2>&1 || rc=$?
	sed 's/^/    /' "$log"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail "stress-ng batch '$name' hung (killed by timeout)"
	fi
	[ "$rc" = 0 ] || fail "stress-ng batch '$name' exited with $rc"
	if grep -E 'stress-ng: (fail|error):|verif.*(fail|error)|unsuccessful' "$log"; then
		fail "stress-ng batch '$name' reported failures (above)"
	fi
	grep -q 'successful run completed' "$log" ||
		fail "stress-ng batch '$name' did not report a successful run"
	# Each stressor asked for must have run (and not been skipped).
	local a s ops
	for a in "$@"; do
		case $a in
		--hdd-* | --mmap-* | --readahead-* | --dirdeep-* | --dirmany-* | --seek-* | --fallocate-* | --*-ops) continue ;;
		--*) s=${a#--} ;;
		*) continue ;;
		esac
		ops=$(awk -v s="$s" '$1 == "-" && $2 == "stressor:" { cur = $3 }
			cur == s && $1 == "bogo-ops:" { print $2; exit }' "$yaml")
		[ -n "$ops" ] || fail "stressor $s has no metrics (skipped?)"
		[ "$ops" -gt 0 ] || IDLE="$IDLE $s"
		if grep -qE "\b$s: .*skipping" "$log"; then
			fail "stressor $s was skipped"
		fi
	done
	cvfs_alive "$MNT" || fail "the daemon died during batch '$name'"
	[ -n "$IDLE" ] || ok "batch '$name'"
}

# Data: sequential and random writes with read-back verification, seeks,
# fallocate, file-backed shared mmap with msync, sync_file_range, ...
run_batch data-seq --hdd 2 --hdd-opts wr-seq,rd-rnd --hdd-bytes 64M \
	--seek 1 --seek-size 16M --fallocate 1 --fallocate-bytes 16M \
	--mmap 1 --mmap-file --mmap-bytes 32M --sync-file 1
run_batch data-rnd --hdd 2 --hdd-opts wr-rnd,rd-seq,fsync --hdd-bytes 32M \
	--io 1 --iomix 1 --msync 1 --fpunch 1 --copy-file 1
# Readahead, sendfile and splice from files on the mount.
run_batch read --readahead 1 --readahead-bytes 16M --sendfile 1 --splice 1
# Names: directories, dentries, renames, links, symlinks, attributes, xattrs.
run_batch names --dir 1 --dentry 1 --filename 1 --rename 1 --link 1 --symlink 1 \
	--chmod 1 --utime 1 --dirdeep 1 --dirdeep-ops 2000 --dirmany 1 \
	--open 1 --mknod 1 --chown 1 --getdent 1 --fstat 1 --access 1
# Locks.
run_batch locks --lockf 2 --flock 2 --fcntl 2 --locka 2 --lease 1
# Extended attributes: up to 4096 per file and bogo op, so few bogo ops; alone,
# or the other stressors starve it.
run_batch xattr --xattr 2

check "stress-ng cleaned up after itself: $MNT/stress is empty"
left=$(find "$MNT/stress" -mindepth 1 | head -20)
[ -z "$left" ] || fail "files left behind: $left"
ok "empty"

check "space and inodes go back to where they were (the store frees unlinked files)"
echo 2 >/proc/sys/vm/drop_caches 2>/dev/null || true
for ((i = 0; i < 100; i++)); do
	read -r used iused < <(df -B1 --output=used,iused "$MNT" | tail -1)
	[ "$used" = "$used0" ] && [ "$iused" = "$iused0" ] && break
	sleep 0.1
done
[ "$used" = "$used0" ] || fail "used bytes $used after the run, $used0 before"
[ "$iused" = "$iused0" ] || fail "used inodes $iused after the run, $iused0 before"
ok "used $used bytes, $iused inodes"

check "the daemon is alive and the unmount is clean"
cvfs_alive "$MNT" || fail "the daemon died"
rc=0
cvfs_umount "$MNT" || rc=$?
[ "$rc" = 0 ] || fail "daemon exited with $rc at unmount"
if mp_mounted "$MNT"; then fail "$MNT still mounted"; fi
ok "unmounted, daemon exit 0"
finish
