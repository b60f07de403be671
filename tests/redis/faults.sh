#!/bin/bash
# A server that stops answering or goes away: every operation on the mount
# fails within 10 s, the daemon lives on, and work resumes by itself once the
# server is back (no remount).
set -euo pipefail
source "$(dirname "$0")/common.sh"

# The AOF makes the data survive a restart of the server.
redis_start "$WORK/r" --appendonly yes --appendfsync always
RARGS=(--appendonly yes --appendfsync always)
M=$WORK/m
cvfs_mount "$M" -b redis --redis-url "$REDIS_URL" --redis-prefix f: -o cache_timeout=0,no_writeback
mkdir "$M/busy"
echo keep >"$M/keep"

# a busy mount: a loop writing files
(
	i=0
	while :; do
		{ echo "$i" >"$M/busy/f$((i % 50))"; } 2>/dev/null || true
		i=$((i + 1))
	done
) &
LOOP=$!
EXTRA_CLEANUP+=("kill $LOOP")
sleep 1

# each_fails LABEL: a set of operations, each must fail within 10 s
each_fails() {
	local label=$1 op t0 ms rc
	local ops=(
		"stat $M/keep"
		"cat $M/keep"
		"ls $M/busy"
		"touch $M/new-$label"
		"mkdir $M/dir-$label"
		"mv $M/keep $M/kept"
		"rm $M/busy/f1"
	)
	for op in "${ops[@]}"; do
		t0=$(now_ms)
		rc=0
		timeout 15 $op >/dev/null 2>&1 || rc=$?
		ms=$(($(now_ms) - t0))
		[ "$rc" != 0 ] || fail "$label: '$op' succeeded"
		[ "$rc" != 124 ] || fail "$label: '$op' hung for 15 s"
		[ "$ms" -lt 10000 ] || fail "$label: '$op' took $ms ms"
		note "$label: '$op' failed (rc $rc) in $ms ms"
		cvfs_alive "$M" || fail "$label: the daemon died"
	done
}

works() {
	local label=$1
	poll 10 touch "$M/after-$label" || fail "$label: no recovery within 10 s"
	[ "$(cat "$M/keep")" = keep ] || fail "$label: data lost"
	echo x >"$M/busy/after" || fail "$label: write after recovery"
	ok "$label: work resumes, data there"
}

# 1. a server that stops answering (SIGSTOP)
RPID=$(redis_pid "$WORK/r")
kill -STOP "$RPID"
each_fails stopped
kill -CONT "$RPID"
works stopped

# 2. a server that goes away and comes back on the same socket
redis_stop "$WORK/r"
each_fails down
redis_start "$WORK/r" "${RARGS[@]}"
works restarted

# 3. a crash (SIGKILL) and a restart, with the busy loop still going
redis_kill "$WORK/r"
sleep 0.5
redis_start "$WORK/r" "${RARGS[@]}"
works crashed

kill "$LOOP" 2>/dev/null || true
wait "$LOOP" 2>/dev/null || true
cvfs_alive "$M" || fail "the daemon died"
ls "$M/busy" >/dev/null || fail "listing after all that"
cvfs_umount "$M" || fail "unmount"
echo PASS
