#!/usr/bin/env bash
# chuk-vfs-mount's command line: bad input fails clearly (non-zero exit, a
# message naming the problem, no crash, no hang); daemonising, signals, stale
# mounts, read-only, uid/gid/umask, the mount(8) helper form, --allow-other.
set -euo pipefail
source "$(dirname "$0")/common.sh"

BIN=$CVFS_MOUNT_BIN
[ -x "$BIN" ] || fail "no chuk-vfs-mount at $BIN"

# expect_fail WHAT REGEX CMD...: CMD exits non-zero (not by a signal, not by
# timeout) and its stderr matches REGEX (extended, case-insensitive).
expect_fail() {
	local what=$1 re=$2
	shift 2
	check "$what: fails with /$re/"
	local rc=0
	timeout -k 2 10 "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || rc=$?
	sed 's/^/    stderr: /' "$WORK/err" | head -3
	[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "$what: hung (or mounted) until killed after 10 s"
	[ "$rc" -lt 128 ] || fail "$what: died by signal $((rc - 128))"
	[ "$rc" != 0 ] || fail "$what: exit status 0, expected a failure"
	grep -qEi -- "$re" "$WORK/err" || fail "$what: stderr does not match /$re/: $(cat "$WORK/err")"
	ok "$what (exit $rc)"
}

# daemon_pid DIR: the pid of the chuk-vfs-mount serving DIR (by its arguments).
daemon_pid() {
	local dir=$1 pid args
	while read -r pid args; do
		case " $args " in
		*chuk-vfs-mount*" $dir "*) echo "$pid" && return 0 ;;
		esac
	done < <(ps -eo pid=,args=)
	return 1
}

wait_gone() { # wait_gone PID: up to 10 s
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

wait_unmounted() { # wait_unmounted DIR: up to 10 s
	local i
	for ((i = 0; i < 100; i++)); do
		mp_mounted "$1" || return 0
		sleep 0.1
	done
	return 1
}

wait_mounted() {
	local i
	for ((i = 0; i < 200; i++)); do
		mp_mounted "$1" && return 0
		sleep 0.05
	done
	return 1
}

# bad input
t_bad_input() {
	D=$WORK/d
	mkdir -p "$D"
	expect_fail "unknown flag" "unknown option.*--bogus" "$BIN" --bogus -m "$D"
	expect_fail "unknown short flag" "unknown option" "$BIN" -Z -m "$D"
	expect_fail "no mount point" "no mount point|-m" "$BIN" -f
	expect_fail "-m without its value" "needs a value" "$BIN" -f -m
	expect_fail "-b without its value" "needs a value" "$BIN" -f -m "$D" -b
	expect_fail "too many arguments" "unexpected argument" "$BIN" -f memory "$D" extra
	touch "$WORK/regular"
	expect_fail "-m at a regular file" "not a directory" "$BIN" -f -m "$WORK/regular"
	expect_fail "-m below a missing directory" "no such file" "$BIN" -f -m "$WORK/missing/sub"
	expect_fail "unknown backend" "unknown store 'nosuch'" "$BIN" -f -m "$D" -b nosuch
	expect_fail "unknown backend (helper form)" "unknown store 'nosuch'" "$BIN" -f nosuch "$D"
	for b in sqlite redis s3; do
		flag=CVFS_HAVE_$(tr '[:lower:]' '[:upper:]' <<<"$b")
		if grep -q -- "-D$flag" "$CVFS_BUILDDIR/compile_commands.json" 2>/dev/null; then
			echo "(the $b store is built in: no 'not built' check for it)"
			continue
		fi
		expect_fail "backend $b not built" "$b store is not built" "$BIN" -f -m "$D" -b "$b"
	done
	expect_fail "-o cache_timeout=abc" "bad cache_timeout 'abc'" "$BIN" -f -m "$D" -o cache_timeout=abc
	expect_fail "-o cache_timeout=-1" "bad cache_timeout" "$BIN" -f -m "$D" -o cache_timeout=-1
	expect_fail "-o uid=-1" "bad uid '-1'" "$BIN" -f -m "$D" -o uid=-1
	expect_fail "-o uid=abc" "bad uid" "$BIN" -f -m "$D" -o uid=abc
	expect_fail "-o gid=99999999999" "bad gid" "$BIN" -f -m "$D" -o gid=99999999999
	expect_fail "-o umask=999" "bad umask '999'" "$BIN" -f -m "$D" -o umask=999
	expect_fail "-o umask=1777" "bad umask" "$BIN" -f -m "$D" -o umask=1777
	expect_fail "-o threads=0" "bad threads" "$BIN" -f -m "$D" -o threads=0
	expect_fail "-o spin=abc" "bad spin 'abc'" "$BIN" -f -m "$D" -o spin=abc
	expect_fail "-o spin=-5" "bad spin" "$BIN" -f -m "$D" -o spin=-5
	expect_fail "-o cpu_poll=abc" "bad cpu_poll 'abc'" "$BIN" -f -m "$D" -o cpu_poll=abc
	expect_fail "-o cpu_poll=70000" "bad cpu_poll" "$BIN" -f -m "$D" -o cpu_poll=70000
	if mp_mounted "$D"; then fail "a failed invocation left $D mounted"; fi

	# No /dev/fuse permission: user nobody on a directory of its own.
	if [ "$(stat -c %a /dev/fuse)" = 600 ]; then
		N=$WORK/nobody
		mkdir -p "$N" && chown 65534:65534 "$N"
		expect_fail "as user nobody (/dev/fuse is 0600)" "/dev/fuse.*permission|permission.*/dev/fuse" \
			setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" -f -m "$N/m"
		if mp_mounted "$N/m"; then fail "nobody managed to mount"; fi
	else
		echo "(/dev/fuse is $(stat -c %a /dev/fuse), not 600: skipping the nobody check)"
	fi
}

# --help, --version
t_help_version() {
	check "--help and --version exit 0"
	out=$(timeout 10 "$BIN" --help) || fail "--help exited with $?"
	grep -q "usage:" <<<"$out" || fail "--help prints no usage"
	grep -q -- "--mount" <<<"$out" || fail "--help does not mention --mount"
	out=$(timeout 10 "$BIN" -h) || fail "-h exited with $?"
	out=$(timeout 10 "$BIN" --version) || fail "--version exited with $?"
	grep -qE "^chuk-vfs-mount [0-9]+\.[0-9]+" <<<"$out" || fail "--version printed '$out'"
	out=$(timeout 10 "$BIN" -V) || fail "-V exited with $?"
	ok "help, version: $out"
}

# already mounted
t_already_mounted() {
	A=$WORK/a
	mnt "$A"
	echo first >"$A/file"
	expect_fail "a mount point already mounted" "already mounted" "$BIN" -f -m "$A"
	expect_fail "a mount point already mounted (daemon form)" "already mounted" "$BIN" -m "$A"
	check "the first mount still works after the refused second one"
	[ "$(cat "$A/file")" = first ] || fail "the first mount lost its file"
	echo more >>"$A/file"
	[ "$(cat "$A/file")" = $'first\nmore' ] || fail "the first mount does not take an append: $(cat "$A/file")"
	cvfs_alive "$A" || fail "the first daemon died"
	rc=0
	cvfs_umount "$A" || rc=$?
	[ "$rc" = 0 ] || fail "first daemon exited with $rc"
	ok "still works, unmounts cleanly"
}

# daemonising
t_daemonising() {
	B=$WORK/b
	check "without -f: returns 0 with the mount already live, daemon in the background"
	rc=0
	timeout 20 "$BIN" -m "$B" </dev/null >"$WORK/daemon.out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || fail "chuk-vfs-mount -m exited with $rc: $(cat "$WORK/daemon.out")"
	mp_mounted "$B" || fail "returned before the mount was live"
	ls "$B" >/dev/null || fail "ls on the fresh mount failed"
	echo hello >"$B/x" && [ "$(cat "$B/x")" = hello ] || fail "write/read on the fresh mount failed"
	[ "$(stat -f -c %T "$B")" = fuseblk ] || [ "$(stat -f -c %T "$B")" = fuse ] ||
		fail "statfs type is $(stat -f -c %T "$B")"
	pid=$(daemon_pid "$B") || fail "no chuk-vfs-mount process for $B"
	[ "$(ps -o sid= -p "$pid" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ] ||
		fail "the daemon $pid is still in our session (not detached)"
	ok "mounted at return, daemon pid $pid in its own session"

	check "SIGTERM to the background daemon unmounts"
	kill -TERM "$pid"
	wait_gone "$pid" || fail "daemon $pid still running 10 s after SIGTERM"
	wait_unmounted "$B" || fail "$B still mounted after the daemon exited"
	ok "daemon gone, unmounted"

	# Each signal to a foreground daemon: clean unmount, exit status 0.  Started
	# through `env --default-signal`: a background job of a script has SIGINT
	# ignored, and libfuse leaves ignored signals alone.
	for sig in TERM INT HUP; do
		S=$WORK/sig-$sig
		mkdir -p "$S"
		check "SIG$sig to a -f daemon: clean unmount, exit 0"
		env --default-signal=INT,TERM,HUP "$BIN" -f -m "$S" >"$S.log" 2>&1 &
		pid=$!
		wait_mounted "$S" || fail "$S not mounted: $(cat "$S.log")"
		echo data >"$S/f"
		kill -"$sig" "$pid"
		wait_gone "$pid" || {
			kill -9 "$pid"
			fail "daemon still running 10 s after SIG$sig"
		}
		rc=0
		wait "$pid" || rc=$?
		[ "$rc" = 0 ] || fail "daemon exited with $rc after SIG$sig; its log: $(tail -20 "$S.log")"
		wait_unmounted "$S" || fail "$S still mounted after SIG$sig"
		[ ! -e "$S/f" ] || fail "$S still shows the file system's contents"
		ok "SIG$sig: exit 0, unmounted"
	done
}

# stale mount
t_stale_mount() {
	T=$WORK/stale
	mkdir -p "$T"
	check "a daemon killed with -9 leaves a dead mount; a new mount on it works"
	"$BIN" -f -m "$T" >"$T.log" 2>&1 &
	pid=$!
	wait_mounted "$T" || fail "$T not mounted"
	echo x >"$T/f"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	if err=$(stat "$T" 2>&1); then fail "stat on the dead mount succeeded"; fi
	grep -q "Transport endpoint is not connected" <<<"$err" || fail "dead mount gives: $err"
	echo "    dead mount: $err"
	rc=0
	timeout 20 "$BIN" -m "$T" </dev/null >"$WORK/stale.out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || fail "remounting over the dead mount exited $rc: $(cat "$WORK/stale.out")"
	ls "$T" >/dev/null || fail "ls on the new mount failed"
	[ ! -e "$T/f" ] || fail "the new (memory) mount shows the old file"
	echo y >"$T/g" && [ "$(cat "$T/g")" = y ] || fail "the new mount does not work"
	[ "$(awk -v d="$T" '$2 == d' /proc/self/mounts | wc -l)" = 1 ] ||
		fail "$T is mounted $(awk -v d="$T" '$2 == d' /proc/self/mounts | wc -l) times"
	pid=$(daemon_pid "$T") || fail "no daemon for $T"
	umount "$T" || fail "umount $T failed"
	wait_gone "$pid" || fail "daemon $pid still running after umount"
	ok "dead mount cleared, new mount works, umount ends the daemon"
}

# read-only
t_read_only() {
	R=$WORK/ro
	check "-r: writes fail with EROFS, the kernel mount is ro"
	mnt "$R" -r
	opts=$(awk -v d="$R" '$2 == d { print $4 }' /proc/self/mounts)
	[[ ",$opts," == *,ro,* ]] || fail "mount options are '$opts', no ro"
	if err=$(touch "$R/x" 2>&1); then fail "touch on a -r mount succeeded"; fi
	grep -q "Read-only file system" <<<"$err" || fail "touch on -r: $err"
	if err=$(mkdir "$R/d" 2>&1); then fail "mkdir on a -r mount succeeded"; fi
	grep -q "Read-only file system" <<<"$err" || fail "mkdir on -r: $err"
	ls "$R" >/dev/null || fail "ls on -r failed"
	rc=0
	cvfs_umount "$R" || rc=$?
	[ "$rc" = 0 ] || fail "-r daemon exited with $rc"
	ok "EROFS, ro ($opts)"
}

# uid, gid, umask
t_uid_gid_umask() {
	U=$WORK/ids
	check "-o uid=1234,gid=5678,umask=077 shows in stat"
	mnt "$U" -o uid=1234,gid=5678,umask=077
	echo x >"$U/f"
	chmod 644 "$U/f"
	mkdir -m 755 "$U/d"
	for p in "$U" "$U/f" "$U/d"; do
		s=$(stat -c '%u %g' "$p")
		[ "$s" = "1234 5678" ] || fail "stat $p: owner '$s', expected '1234 5678'"
	done
	[ "$(stat -c %a "$U/f")" = 600 ] || fail "file mode $(stat -c %a "$U/f"), expected 600"
	[ "$(stat -c %a "$U/d")" = 700 ] || fail "dir mode $(stat -c %a "$U/d"), expected 700"
	[ "$(stat -c %a "$U")" = 700 ] || fail "root mode $(stat -c %a "$U"), expected 700"
	rc=0
	cvfs_umount "$U" || rc=$?
	[ "$rc" = 0 ] || fail "daemon exited with $rc"
	ok "uid 1234, gid 5678, modes 600/700"
}

# The request loop with and without polling, one worker and several: four
# writers at once, every file read back byte-exact.
t_workers() {
	for opts in spin=0,threads=1 spin=0,threads=4 spin=2000,threads=3 handoff=0,threads=4; do
		P=$WORK/workers
		check "-o $opts: parallel writers"
		mnt "$P" -o "$opts"
		head -c 3000000 /dev/urandom >"$WORK/src"
		pids=()
		for w in 1 2 3 4; do
			(for i in $(seq 20); do cp "$WORK/src" "$P/w$w-$i"; done) &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p" || fail "a writer failed ($opts)"; done
		for w in 1 2 3 4; do for i in $(seq 20); do
			cmp -s "$WORK/src" "$P/w$w-$i" || fail "$P/w$w-$i differs ($opts)"
		done; done
		[ "$(ls "$P" | wc -l)" = 80 ] || fail "$(ls "$P" | wc -l) files, expected 80 ($opts)"
		rc=0
		cvfs_umount "$P" || rc=$?
		[ "$rc" = 0 ] || fail "daemon exited with $rc ($opts)"
		ok "80 files byte-exact, clean unmount ($opts)"
	done
}

# -o cpu_poll: while requests come close together the daemon holds a CPU
# latency request of 0 us (/dev/cpu_dma_latency), so idle CPUs poll instead
# of entering a halting idle state; it lets go after the hold time.  Checked
# through the kernel's cpuidle counters: while requests flow every ~0.3 ms
# (the client sleeping between them), idle time goes to the polling state;
# once the mount is idle, to the halting ones again.
idle_us() { # POLL|HALT: microseconds all CPUs spent in idle states with exit latency 0 | > 0
	local t=0 d
	for d in /sys/devices/system/cpu/cpu[0-9]*/cpuidle/state*; do
		[ -r "$d/time" ] || continue
		if [ "$(cat "$d/latency")" -gt 0 ]; then [ "$1" = HALT ] && t=$((t + $(cat "$d/time")))
		else [ "$1" = POLL ] && t=$((t + $(cat "$d/time"))); fi
	done
	echo $t
}
t_cpu_poll() {
	[ -w /dev/cpu_dma_latency ] || { ok "SKIP: /dev/cpu_dma_latency not writable here"; return 0; }
	P=$WORK/qos
	check "-o cpu_poll=0: never asks"
	mnt "$P" -o cpu_poll=0,cache_timeout=0
	for i in $(seq 300); do : >"$P/f$i"; done
	st=$(cvfs_status "$P")
	grep -q '"cpu_poll":{"available":false,"on":false,"bursts":0}' <<<"$st" || fail "cpu_poll=0: $st"
	cvfs_umount "$P"
	ok "no request with cpu_poll=0"

	check "default: held while requests flow, released after"
	mnt "$P" -o cache_timeout=0
	: >"$P/x"
	p0=$(idle_us POLL) h0=$(idle_us HALT)
	python3 - "$P/x" <<'PY'
import os, sys, time
end = time.monotonic() + 1.0
while time.monotonic() < end:
    os.stat(sys.argv[1])     # cache_timeout=0: a GETATTR each time
    time.sleep(0.0003)
PY
	p1=$(idle_us POLL) h1=$(idle_us HALT)
	st=$(cvfs_status "$P")
	grep -q '"available":true' <<<"$st" || fail "not available as root: $st"
	grep -Eq '"bursts":[1-9]' <<<"$st" || fail "never turned on: $st"
	sleep 0.3
	p2=$(idle_us POLL) h2=$(idle_us HALT)
	sleep 1
	p3=$(idle_us POLL) h3=$(idle_us HALT)
	echo "    idle time (ms) polling/halting: $(((p1 - p0) / 1000))/$(((h1 - h0) / 1000)) during 1 s of requests," \
		"$(((p3 - p2) / 1000))/$(((h3 - h2) / 1000)) in 1 s after"
	if [ $((h3 - h2 + p3 - p2)) -gt 0 ]; then # this machine has cpuidle states
		[ $((p1 - p0)) -gt $((h1 - h0)) ] || fail "idle CPUs halted more than they polled during the burst"
		[ $((h3 - h2)) -gt $((p3 - p2)) ] || fail "idle CPUs still polling 0.3 s after the last request"
	fi
	cvfs_umount "$P"
	ok "held during the burst, released after"
}

# -o drop_negative (default on): the names unlinked lose their (negative)
# dentries shortly after, so a directory emptied by unlink is as cheap to
# remove as one that never held files.  Seen in the kernel's count of
# negative dentries (/proc/sys/fs/dentry-state, system-wide: the check
# compares the two settings with a wide margin, not an exact count) and in
# the daemon's count of names it dropped.
neg_dentries() { awk '{print $5}' /proc/sys/fs/dentry-state; }
t_drop_negative() {
	P=$WORK/neg
	local d1=0 d0=0
	for v in 1 0; do
		check "-o drop_negative=$v"
		mnt "$P" -o drop_negative=$v
		mkdir "$P/d"
		(cd "$P/d" && seq -f f%g 3000 | xargs touch)
		n0=$(neg_dentries)
		(cd "$P/d" && seq -f f%g 3000 | xargs rm -f)
		if [ $v = 1 ]; then
			for i in $(seq 100); do
				n=$(cvfs_status_get "$P" negative_dropped)
				[ "$n" -ge 3000 ] && break
				sleep 0.05
			done
			[ "$n" -ge 3000 ] || fail "only $n of 3000 unlinked names dropped"
		fi
		sleep 0.3
		n1=$(neg_dentries)
		[ $v = 1 ] && d1=$((n1 - n0)) || d0=$((n1 - n0))
		[ -z "$(ls "$P/d")" ] || fail "files left"
		rmdir "$P/d"
		cvfs_umount "$P"
		ok "drop_negative=$v: negative dentries $((n1 - n0)) more after 3000 unlinks"
	done
	[ $((d0 - d1)) -ge 1500 ] || fail "drop_negative=1 left $d1 negative dentries, =0 left $d0"
}

# mount(8) helper form
t_mount_8_helper_form() {
	H=$WORK/helper
	mkdir -p "$H"
	if [ -x /sbin/mount.fuse3 ]; then
		check "mount.fuse3 memory DIR -t chuk-vfs-mount -o cache_timeout=1 (build dir in PATH)"
		rc=0
		PATH="$(dirname "$BIN"):$PATH" timeout 20 /sbin/mount.fuse3 memory "$H" -t "$(basename "$BIN")" \
			-o cache_timeout=1 >"$WORK/h.out" 2>&1 || rc=$?
		[ "$rc" = 0 ] || fail "mount.fuse3 exited with $rc: $(cat "$WORK/h.out")"
		mp_mounted "$H" || fail "$H not mounted after mount.fuse3"
		echo hi >"$H/f" && [ "$(cat "$H/f")" = hi ] || fail "the helper mount does not work"
		awk -v d="$H" '$2 == d' /proc/self/mounts | grep -q "chuk-vfs:memory" ||
			fail "fsname is not chuk-vfs:memory: $(awk -v d="$H" '$2 == d' /proc/self/mounts)"
		pid=$(daemon_pid "$H") || fail "no daemon for $H"
		umount "$H" || fail "umount $H failed"
		wait_gone "$pid" || fail "daemon $pid still running after umount"
		if mp_mounted "$H"; then fail "$H still mounted"; fi
		ok "mount.fuse3 helper form, umount"

		# mount(8) drops PATH from the helper's environment, so the build
		# directory cannot be put in PATH for it: use the fstab form
		# "fuse" with PROGRAM#SOURCE, which runs the program by its path.
		check "mount -t fuse 'PATH/chuk-vfs-mount#memory' DIR -o cache_timeout=1, then umount DIR"
		rc=0
		timeout 20 mount -t fuse "$BIN#memory" "$H" -o cache_timeout=1 >"$WORK/h.out" 2>&1 || rc=$?
		[ "$rc" = 0 ] || fail "mount exited with $rc: $(cat "$WORK/h.out")"
		mp_mounted "$H" || fail "$H not mounted after mount(8)"
		echo hi >"$H/f" && [ "$(cat "$H/f")" = hi ] || fail "the mount(8) mount does not work"
		pid=$(daemon_pid "$H") || fail "no daemon for $H"
		umount "$H" || fail "umount $H failed"
		wait_gone "$pid" || fail "daemon $pid still running after umount"
		ok "mount(8) and umount(8)"

		if PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v chuk-vfs-mount >/dev/null; then
			check "mount -t fuse.chuk-vfs-mount memory DIR (installed chuk-vfs-mount)"
			timeout 20 mount -t fuse.chuk-vfs-mount memory "$H" -o cache_timeout=1 || fail "mount -t fuse.chuk-vfs-mount failed"
			mp_mounted "$H" || fail "$H not mounted"
			umount "$H" || fail "umount failed"
			ok "mount -t fuse.chuk-vfs-mount"
		else
			echo "(chuk-vfs-mount is not installed in the default PATH: mount -t fuse.chuk-vfs-mount not tried)"
		fi
	else
		echo "(no /sbin/mount.fuse3: install the fuse3 package; helper form not tested)"
	fi
}

# --allow-other
t_allow_other() {
	O=$WORK/other
	check "without --allow-other, user nobody cannot even stat the mount"
	mnt "$O"
	echo secret >"$O/f"
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	if err=$(as_nobody stat "$O" 2>&1); then fail "nobody could stat a mount without allow_other"; fi
	grep -q "Permission denied" <<<"$err" || fail "nobody's stat: $err"
	cvfs_umount "$O" || fail "daemon exit non-zero"
	ok "EACCES for nobody"

	check "--allow-other: nobody reads a 0644 file, cannot write it (default_permissions)"
	mnt "$O" --allow-other
	awk -v d="$O" '$2 == d' /proc/self/mounts | grep -q allow_other || fail "no allow_other in /proc/mounts"
	awk -v d="$O" '$2 == d' /proc/self/mounts | grep -q default_permissions || fail "no default_permissions"
	echo shared >"$O/f"
	chmod 644 "$O/f"
	echo private >"$O/p"
	chmod 600 "$O/p"
	[ "$(as_nobody cat "$O/f")" = shared ] || fail "nobody cannot read a 0644 file"
	if err=$(as_nobody sh -c "echo x >> '$O/f'" 2>&1); then fail "nobody could write a 0644 root file"; fi
	grep -q "Permission denied" <<<"$err" || fail "nobody's write: $err"
	if err=$(as_nobody cat "$O/p" 2>&1); then fail "nobody could read a 0600 root file"; fi
	if err=$(as_nobody touch "$O/new" 2>&1); then fail "nobody could create in a 0755 root directory"; fi
	[ "$(cat "$O/f")" = shared ] || fail "the file changed"
	rc=0
	cvfs_umount "$O" || rc=$?
	[ "$rc" = 0 ] || fail "daemon exited with $rc"
	ok "read allowed, writes refused"
}

section t_bad_input
section t_help_version
section t_already_mounted
section t_daemonising
section t_stale_mount
section t_read_only
section t_uid_gid_umask
section t_workers
section t_cpu_poll
section t_drop_negative
section t_mount_8_helper_form
section t_allow_other
finish
