#!/usr/bin/env bash
# fio with crc32c verification on a memory store mount: large sequential
# writes, random 4k writes with verify_backlog, parallel jobs on separate
# files, the mmap engine, fsync every 32 writes, appends and O_DIRECT.
# Checks fio's exit status, err=0 for every job, no verification errors, and
# a clean unmount.
set -euo pipefail
source "$(dirname "$0")/common.sh"

command -v fio >/dev/null || fail "fio is not installed (apt-get install fio)"

MNT=$WORK/mnt
mnt "$MNT"
mkdir "$MNT/fio"

# run_fio NAME fio-args...
run_fio() {
	local name=$1
	shift
	local log=$WORK/fio-$name.log
	check "fio job '$name': $*"
	local rc=0
	timeout -k 5 90 fio --name="$name" --directory="$MNT/fio" --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --verify_state_save=0 "$@" >"$log" 2>&1 || rc=$?
	grep -E 'err=|WRITE:|READ:|verify|bad|crc|fail|error' "$log" | sed 's/^/    /' | head -40
	[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "fio job '$name' hung (killed by timeout)"
	[ "$rc" = 0 ] || {
		tail -30 "$log" >&2
		fail "fio job '$name' exited with $rc"
	}
	if grep -iE 'verify: bad|bad magic|bad header|crc32c.*(wanted|mismatch)|verify.*fail|fio: .*error|io_u error' "$log"; then
		fail "fio job '$name' reported verification or I/O errors (above)"
	fi
	local n_jobs n_ok
	n_jobs=$(grep -cE ': \(groupid=[0-9]+, jobs=[0-9]+\): err=' "$log" || true)
	n_ok=$(grep -cE ': \(groupid=[0-9]+, jobs=[0-9]+\): err= *0:' "$log" || true)
	[ "$n_jobs" -gt 0 ] || fail "fio job '$name': no job status lines in the output"
	[ "$n_jobs" = "$n_ok" ] || fail "fio job '$name': $((n_jobs - n_ok)) of $n_jobs jobs had err != 0"
	cvfs_alive "$MNT" || fail "the daemon died during fio job '$name'"
	ok "fio job '$name' ($n_jobs job(s), err=0)"

	# fio verified through the page cache; read it all back from the daemon.
	check "fio job '$name': verify again after dropping the page cache (data from the store)"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	# An append job wrote past the old end: verify from there (VERIFY_OFFSET).
	local a vargs=()
	for a in "$@"; do
		[ "$a" = --file_append=1 ] || vargs+=("$a")
	done
	[ -z "${VERIFY_OFFSET:-}" ] || vargs+=("--offset=$VERIFY_OFFSET")
	rc=0
	timeout -k 5 90 fio --name="$name" --directory="$MNT/fio" --verify=crc32c \
		--verify_fatal=1 --verify_only=1 --verify_state_save=0 "${vargs[@]}" >"$log.v" 2>&1 || rc=$?
	[ "$rc" = 0 ] || {
		tail -30 "$log.v" >&2
		fail "fio verify-only pass of '$name' exited with $rc"
	}
	if grep -iE 'verify: bad|bad magic|bad header|crc32c.*(wanted|mismatch)|verify.*fail|fio: .*error|io_u error' "$log.v"; then
		fail "fio verify-only pass of '$name' found bad data (above)"
	fi
	grep -qE 'err= *0:' "$log.v" || fail "fio verify-only pass of '$name': no err=0 status"
	grep -qE 'READ: bw=' "$log.v" || fail "fio verify-only pass of '$name' read nothing"
	ok "fio job '$name': data verified from the store"
}

run_fio seq-1m --rw=write --bs=1M --size=256M --ioengine=psync
run_fio rand-4k --rw=randwrite --bs=4k --size=64M --ioengine=psync \
	--verify_backlog=1024 --verify_backlog_batch=512
run_fio parallel --rw=randwrite --bs=16k --size=64M --numjobs=4 --ioengine=psync \
	--verify_backlog=256
run_fio mmap --rw=randwrite --bs=4k --size=64M --ioengine=mmap
run_fio fsync32 --rw=write --bs=4k --size=16M --ioengine=psync --fsync=32
run_fio randrw-fsync --rw=randwrite --bs=8k --size=16M --ioengine=sync --fsync=32 \
	--verify_backlog=128
# Appending: fio writes past the end of a 1 MiB file, which must stay as it was.
head -c $((1 << 20)) /dev/urandom >"$WORK/head.bin"
cp "$WORK/head.bin" "$MNT/fio/append.dat"
VERIFY_OFFSET=1M run_fio append --rw=write --bs=64k --size=16M --ioengine=psync \
	--file_append=1 --filename=append.dat
check "the append job left the first 1 MiB alone and the file is 17 MiB"
cmp -n $((1 << 20)) "$WORK/head.bin" "$MNT/fio/append.dat" || fail "the first 1 MiB changed"
sz=$(stat -c %s "$MNT/fio/append.dat")
[ "$sz" = $((17 << 20)) ] || fail "append.dat is $sz bytes, expected 17 MiB"
ok "head intact, size $sz"
run_fio direct --rw=randwrite --bs=64k --size=32M --ioengine=psync --direct=1

check "the files fio wrote are there with their sizes"
sz=$(stat -c %s "$MNT/fio/seq-1m.0.0")
[ "$sz" = $((256 << 20)) ] || fail "seq-1m.0.0 is $sz bytes, expected 256 MiB"
for j in 0 1 2 3; do
	[ -f "$MNT/fio/parallel.$j.0" ] || fail "parallel.$j.0 is missing"
done
ok "sizes and files"

clean_umount() {
	check "the daemon is alive and the unmount is clean"
	cvfs_alive "$MNT" || fail "the daemon died"
	rc=0
	cvfs_umount "$MNT" || rc=$?
	[ "$rc" = 0 ] || fail "daemon exited with $rc at unmount"
	if mp_mounted "$MNT"; then fail "$MNT still mounted"; fi
	ok "unmounted, daemon exit 0"
}
clean_umount

# Without the kernel's writeback cache every write goes to the daemon as it
# happens (and O_APPEND reaches the store).
MNT=$WORK/mnt-nwb
mnt "$MNT" -o no_writeback
mkdir "$MNT/fio"
run_fio nwb-rand-4k --rw=randwrite --bs=4k --size=32M --ioengine=psync --numjobs=2 \
	--verify_backlog=512
run_fio nwb-mmap --rw=randwrite --bs=4k --size=32M --ioengine=mmap
run_fio nwb-fsync --rw=write --bs=16k --size=16M --ioengine=psync --fsync=32
clean_umount
finish
