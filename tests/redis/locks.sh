#!/bin/bash
# flock and fcntl locks hold across two mounts of one Redis filesystem: two
# processes on two mounts never both hold a conflicting lock; locks go when
# their process dies (the kernel closes its files) and when their mount's
# daemon dies (the lease expires); SQLite on both mounts keeps its database
# whole.  Uses tests/redis/lk.py (python3) for byte ranges.
set -euo pipefail
source "$(dirname "$0")/common.sh"

command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
LK=(python3 "$CVFS_SRCDIR/tests/redis/lk.py")

redis_start "$WORK/r"
A=$WORK/a
B=$WORK/b
cvfs_mount "$A" -b redis --redis-url "$REDIS_URL" --redis-prefix lk: --allow-other
cvfs_mount "$B" -b redis --redis-url "$REDIS_URL" --redis-prefix lk: --allow-other

HOLDERS=()
EXTRA_CLEANUP+=('for p in "${HOLDERS[@]}"; do kill -9 "$p"; done')

# hold SECS OP...: a process on A applies OPs to A/f and keeps them SECS
hold() {
	local secs=$1
	shift
	rm -f "$WORK/ready"
	"${LK[@]}" hold "$A/f" "$WORK/ready" "$secs" "$@" &
	HOLDER=$!
	HOLDERS+=("$HOLDER")
	poll 10 test -e "$WORK/ready" || fail "holder on A did not get $*"
}
can() { "${LK[@]}" try "$B/f" "$1"; }
cannot() { ! "${LK[@]}" try "$B/f" "$1"; }
done_holder() { kill "$HOLDER" 2>/dev/null || true; wait "$HOLDER" 2>/dev/null || true; }

head -c 4096 /dev/zero >"$A/f"
poll 5 test -e "$B/f" || fail "file made on A not seen on B"

# ---- flock(1) ----
rm -f "$WORK/ready"
flock -x -n "$A/f" -c "touch '$WORK/ready'; sleep 2" &
fpid=$!
poll 10 test -e "$WORK/ready" || fail "flock -x -n on A"
flock -x -n "$B/f" true && fail "flock -x -n on B while A holds it"
flock -s -n "$B/f" true && fail "flock -s -n on B while A holds it exclusively"
wait "$fpid"
flock -x -n "$B/f" true || fail "flock -x -n on B after A released"
ok "flock -x held on A: B refused (exclusive and shared), granted once A released"

rm -f "$WORK/ready"
flock -x -n "$A/f" -c "touch '$WORK/ready'; sleep 1.5" &
fpid=$!
poll 10 test -e "$WORK/ready" || fail "flock -x -n on A (2)"
t0=$(now_ms)
timeout 20 flock -x "$B/f" true || fail "blocking flock -x on B never granted"
waited=$(($(now_ms) - t0))
wait "$fpid"
[ "$waited" -ge 800 ] || fail "blocking flock on B returned after $waited ms, while A held it"
ok "blocking flock -x on B waited ${waited} ms, until A released"

rm -f "$WORK/ready"
flock -s -n "$A/f" -c "touch '$WORK/ready'; sleep 1" &
fpid=$!
poll 10 test -e "$WORK/ready" || fail "flock -s -n on A"
flock -s -n "$B/f" true || fail "shared flock on B while A holds a shared one"
flock -x -n "$B/f" true && fail "exclusive flock on B while A holds a shared one"
wait "$fpid"
ok "shared flocks on both mounts; exclusive refused meanwhile"

# flock and fcntl locks are independent (as in Linux)
hold 30 FX
can W:0:0 || fail "an fcntl lock on B conflicted with a flock on A"
done_holder
ok "flock and fcntl locks do not conflict with each other"

# ---- fcntl byte ranges ----
hold 30 W:0:100
cannot W:50:10 || fail "overlapping write locks on A and B"
cannot R:0:1 || fail "a read lock on B inside A's write lock"
can W:100:50 || fail "a write lock on B next to A's (non-overlapping)"
out=$("${LK[@]}" getlk "$B/f" W:10:5)
[ "$out" = "W 0 100 $HOLDER" ] || fail "F_GETLK on B: '$out', wanted 'W 0 100 $HOLDER'"
out=$("${LK[@]}" getlk "$B/f" W:150:10)
[ "$out" = UNLCK ] || fail "F_GETLK on B past A's range: '$out'"
done_holder
can W:0:0 || fail "the whole file on B after A's holder ended"
ok "fcntl: ranges conflict only where they overlap; F_GETLK on B reports A's lock and pid"

hold 30 R:0:100
can R:0:100 || fail "read locks on A and B"
cannot W:0:1 || fail "a write lock on B over A's read lock"
done_holder
ok "fcntl: read locks shared across mounts, write refused over them"

hold 30 W:0:100 U:40:20
can W:45:10 || fail "B in the hole A unlocked (range split)"
cannot W:30:5 || fail "B below the hole"
cannot W:70:5 || fail "B above the hole"
done_holder
hold 30 R:0:10 W:0:10
cannot R:5:1 || fail "A upgraded read to write: B's read lock should conflict"
done_holder
hold 30 W:0:10 R:0:10
can R:5:1 || fail "A downgraded write to read: B's read lock should be granted"
cannot W:5:1 || fail "A downgraded to read: B's write lock should conflict"
done_holder
hold 30 W:0:0
cannot W:1000000000:1 || fail "a lock to the end of file covers far offsets"
done_holder
ok "fcntl: unlock splits ranges, upgrade and downgrade, to-the-end ranges"

# blocking F_SETLKW on B: granted when A's holder ends
hold 1.5 W:0:0
t0=$(now_ms)
timeout 20 "${LK[@]}" wait "$B/f" W:0:10 || fail "F_SETLKW on B never granted"
waited=$(($(now_ms) - t0))
[ "$waited" -ge 700 ] || fail "F_SETLKW on B returned after $waited ms, while A held it"
wait "$HOLDER" || true
ok "F_SETLKW on B waited ${waited} ms, until A's lock went"

# a blocked F_SETLKW is interrupted by a signal (and the daemon stays fine)
hold 30 W:0:0
"${LK[@]}" wait "$B/f" W:0:10 &
wpid=$!
sleep 0.5
kill -TERM "$wpid"
rc=0
t0=$(now_ms)
while kill -0 "$wpid" 2>/dev/null && [ $(($(now_ms) - t0)) -lt 5000 ]; do sleep 0.05; done
kill -0 "$wpid" 2>/dev/null && fail "a blocked F_SETLKW did not end on SIGTERM"
wait "$wpid" || rc=$?
[ "$rc" = 2 ] || fail "interrupted F_SETLKW: exit $rc, wanted 2 (EINTR)"
done_holder
cvfs_alive "$B" || fail "daemon B died"
ok "a blocked F_SETLKW on B ends with EINTR on a signal"

# kill -9 of the holding process: the kernel closes its files, the locks go
for op in W:0:0 FX; do
	hold 60 "$op"
	cannot "$([ "$op" = FX ] && echo FX || echo W:0:1)" || fail "$op not held"
	kill -9 "$HOLDER"
	wait "$HOLDER" 2>/dev/null || true
	poll 3 can "$([ "$op" = FX ] && echo FX || echo W:0:1)" || fail "$op of a killed process still held"
done
ok "kill -9 of the process holding a lock on A: B gets it at once (fcntl, flock)"

# another process on the same mount is refused as well (one owner per process)
hold 30 W:0:10
"${LK[@]}" try "$A/f" W:0:1 && fail "a second process on A got the lock A's holder has"
done_holder
ok "a second process on the same mount is refused too"

# ---- a counter under flock, 3 processes on each mount (blocking waits) ----
echo 0 >"$B/counter"
: >"$B/lockfile"
poll 5 test -e "$A/counter" || fail "counter made on B not seen on A"
t0=$(now_ms)
cpids=()
for m in "$A" "$B" "$A" "$B" "$A" "$B"; do
	(for i in $(seq 1 40); do
		flock -x "$m/lockfile" sh -c "n=\$(cat '$m/counter'); echo \$((n + 1)) >'$m/counter'" || exit 1
	done) &
	cpids+=($!)
done
HOLDERS+=("${cpids[@]}")
for p in "${cpids[@]}"; do
	wait "$p" || fail "a counter process failed"
done
[ "$(cat "$A/counter")" = 240 ] || fail "counter under flock from two mounts: $(cat "$A/counter"), wanted 240"
ok "6 processes on two mounts, 40 increments each under flock -x: 240 ($(($(now_ms) - t0)) ms)"

# ---- kill -9 of the daemon of A while a process there holds a lock ----
hold 300 FX
apid=${CVFS_PIDS[$A]}
cannot FX || fail "flock not held before killing A's daemon"
kill -9 "$apid"
wait "$apid" 2>/dev/null || true
unset "CVFS_PIDS[$A]"
t0=$(now_ms)
poll 15 can FX || fail "flock of a dead daemon's client still held after 15 s"
took=$(($(now_ms) - t0))
[ "$took" -le 12000 ] || fail "a dead client's flock was released only after $took ms (lease 10 s)"
kill -9 "$HOLDER" 2>/dev/null || true
wait "$HOLDER" 2>/dev/null || true
fusermount3 -u -z "$A" 2>/dev/null || true
ok "kill -9 of A's daemon: B took the lock after $took ms (the lease)"

# ---- the battery's lock cases on a store-locked mount ----
if [ -n "${CVFS_BATTERY:-}" ] && [ -x "$CVFS_BATTERY" ]; then
	for c in flock fcntl_locks; do
		"$CVFS_BATTERY" "$B" --only "$c" >"$WORK/battery-$c.log" 2>&1 ||
			{ cat "$WORK/battery-$c.log" >&2; fail "battery $c on the redis mount"; }
	done
	ok "battery flock and fcntl_locks cases on the redis mount"

	# close() returns before the kernel's RELEASE (which drops a flock lock)
	# is served; a lock request right after must still see the lock gone.
	# The daemon delays every RELEASE by 30 ms to make the race certain.
	R=$WORK/rel
	mkdir -p "$R"
	CVFS_TEST_RELEASE_DELAY_MS=30 cvfs_mount "$R" -b redis --redis-url "$REDIS_URL" \
		--redis-prefix rel: --allow-other
	for i in 1 2 3; do
		"$CVFS_BATTERY" "$R" --only flock >"$WORK/battery-rel.log" 2>&1 ||
			{ cat "$WORK/battery-rel.log" >&2; fail "flock after close with a slow RELEASE (run $i)"; }
	done
	cvfs_umount "$R"
	ok "flock right after close(), RELEASE delayed 30 ms: 3/3"
fi

# ---- SQLite, rollback journal, two mounts writing at once ----
cvfs_mount "$A" -b redis --redis-url "$REDIS_URL" --redis-prefix lk: --allow-other
python3 - "$A/db.sqlite" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=DELETE")
c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT, n INTEGER, pad TEXT)")
c.commit()
c.close()
EOF
cat >"$WORK/ins.py" <<'EOF'
import sqlite3, sys
path, who = sys.argv[1], sys.argv[2]
c = sqlite3.connect(path, timeout=120, isolation_level=None)
assert c.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
for i in range(200):
    c.execute("BEGIN IMMEDIATE")
    (m,) = c.execute("SELECT count(*) FROM t").fetchone()
    c.execute("INSERT INTO t (who, n, pad) VALUES (?, ?, ?)", (who, m, "x" * (i % 700)))
    c.execute("COMMIT")
c.close()
EOF
poll 5 test -e "$B/db.sqlite" || fail "database made on A not seen on B"
t0=$(now_ms)
python3 "$WORK/ins.py" "$A/db.sqlite" a &
p1=$!
python3 "$WORK/ins.py" "$B/db.sqlite" b &
p2=$!
HOLDERS+=("$p1" "$p2")
wait "$p1" || fail "SQLite writer on A failed"
wait "$p2" || fail "SQLite writer on B failed"
note "SQLite: 2 x 200 transactions in $(($(now_ms) - t0)) ms"
for m in "$A" "$B"; do
	out=$(python3 - "$m/db.sqlite" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
ic = c.execute("PRAGMA integrity_check").fetchone()[0]
rows = c.execute("SELECT count(*) FROM t").fetchone()[0]
# each insert saw every earlier one: the n column is 0..399 with no repeats
ns = sorted(r[0] for r in c.execute("SELECT n FROM t"))
print(ic, rows, "serial" if ns == list(range(400)) else "not-serial")
EOF
)
	[ "$out" = "ok 400 serial" ] || fail "SQLite on two mounts, checked via $m: $out"
done
ok "SQLite (rollback journal) on two mounts, 200 inserts each: integrity ok, 400 rows, serial"

cvfs_umount "$A" || fail "unmount A"
# a clean unmount drops the client's locks at once and its lease
hold_b() { "${LK[@]}" hold "$B/f" "$WORK/ready" 300 FX & }
rm -f "$WORK/ready"
hold_b
HOLDER=$!
HOLDERS+=("$HOLDER")
poll 10 test -e "$WORK/ready" || fail "holder on B"
kill -9 "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
cvfs_umount "$B" || fail "unmount B"
left=$(redis_cli "$WORK/r" --scan --pattern 'lk:lk:*' | wc -l)
[ "$left" = 0 ] || fail "lock keys left after clean unmounts: $(redis_cli "$WORK/r" --scan --pattern 'lk:lk:*')"
left=$(redis_cli "$WORK/r" --scan --pattern 'lk:alive:*' | wc -l)
note "lease keys after clean unmounts: $left (a killed daemon's expires)"
ok "no lock left in Redis after clean unmounts"
echo PASS
