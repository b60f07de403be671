#!/usr/bin/env bash
# Real tools on a memory store mount, compared with a plain directory: cp -a,
# tar, rsync, git, SQLite (rollback journal and WAL), Python mmap and O_APPEND,
# a C compiler whose source and binary live on the mount.
set -euo pipefail
source "$(dirname "$0")/common.sh"

for t in rsync git sqlite3 python3 cc tar getfattr; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done

MNT=$WORK/mnt
SRC=$WORK/src # a plain directory: the reference
mnt "$MNT"

# listing DIR: one line per entry, sorted: path, type, mode, owner, size (not
# for directories), link count (not for directories), mtime in ns, link target.
# DIR_SECONDS=1: directory mtimes to the second only.
listing() {
	(cd "$1" && find . -mindepth 1 \( -type d -printf '%p d %m %U:%G - - %T@\n' \) -o \
		\( -printf '%p %y %m %U:%G %s %n %T@ %l\n' \)) |
		if [ -n "${DIR_SECONDS:-}" ]; then
			sed -E 's/( d [0-7]+ [0-9]+:[0-9]+ - - [0-9]+)\.[0-9]+$/\1/'
		else
			cat
		fi | LC_ALL=C sort
}

# xattrs DIR: path, name, value (hex) for every user.* xattr, sorted.
xattrs() {
	python3 - "$1" <<-'EOF'
		import os, sys
		root = sys.argv[1]
		out = []
		for d, dirs, files in os.walk(root):
		    for n in dirs + files:
		        p = os.path.join(d, n)
		        for a in os.listxattr(p, follow_symlinks=False):
		            if a.startswith("user."):
		                v = os.getxattr(p, a, follow_symlinks=False)
		                out.append("%s %s %s" % (os.path.relpath(p, root), a, v.hex()))
		print("\n".join(sorted(out)))
	EOF
}

# same_tree A B WHAT: contents, listing and xattrs of A and B are equal.
same_tree() {
	local a=$1 b=$2 what=$3
	diff -r --no-dereference -x fifo "$a" "$b" >"$WORK/diff.out" 2>&1 ||
		fail "$what: diff -r finds differences: $(head -20 "$WORK/diff.out")"
	listing "$a" >"$WORK/l.a"
	listing "$b" >"$WORK/l.b"
	[ -s "$WORK/l.a" ] || fail "$what: empty listing of $a"
	diff -u "$WORK/l.a" "$WORK/l.b" >"$WORK/l.diff" ||
		fail "$what: names, modes, sizes, links or mtimes differ ($(grep -c '^[-+][^-+]' "$WORK/l.diff") lines): $(head -30 "$WORK/l.diff")"
	xattrs "$a" >"$WORK/x.a"
	xattrs "$b" >"$WORK/x.b"
	diff -u "$WORK/x.a" "$WORK/x.b" >"$WORK/x.diff" || fail "$what: xattrs differ: $(head -20 "$WORK/x.diff")"
	echo "    $(wc -l <"$WORK/l.a") entries, $(wc -l <"$WORK/x.a") xattrs identical"
}

# The reference tree: /usr/include plus odd files of our own.
make_source() {
	mkdir -p "$SRC"
	cp -a /usr/include "$SRC/include"
	local e=$SRC/extra
	mkdir -p "$e/sub/deeper" "$e/sticky" "$e/setgid"
	chmod 1777 "$e/sticky"
	chmod 2755 "$e/setgid"
	echo hello >"$e/hello"
	ln "$e/hello" "$e/hello.hardlink"
	ln "$e/hello" "$e/sub/hello.hardlink2"
	ln -s hello "$e/hello.symlink"
	ln -s /nonexistent/target "$e/dangling"
	ln -s ../../hello "$e/sub/deeper/up"
	: >"$e/empty"
	head -c 3000000 /dev/urandom >"$e/random.bin"
	truncate -s 50M "$e/sparse"
	printf 'tail' | dd of="$e/sparse" bs=1 seek=$((30 << 20)) conv=notrunc status=none
	mkfifo "$e/fifo"
	echo x >"$e/name with spaces"
	echo x >"$e/ünïcödé-名前"
	echo x >"$e/$(printf 'l%.0s' {1..250})"
	echo s >"$e/setuid"
	chmod 4755 "$e/setuid"
	echo r >"$e/readonly"
	chmod 444 "$e/readonly"
	echo o >"$e/owned"
	chown 1234:5678 "$e/owned"
	setfattr -n user.comment -v "a comment" "$e/hello"
	setfattr -n user.bin -v 0x00ff00ff "$e/random.bin"
	setfattr -n user.dir -v dirval "$e/sub"
	touch -h -d '2001-02-03 04:05:06.123456789' "$e/hello.symlink"
	touch -d '1999-12-31 23:59:59.5' "$e/sub/deeper"
	touch -d '2020-01-01 00:00:00.000000001' "$e/empty"
}

t_cp() {
	check "cp -a of /usr/include and odd files onto the mount: diff -r, modes, owners, links, mtimes, xattrs"
	local t0=$SECONDS
	cp -a "$SRC" "$MNT/cp" || fail "cp -a onto the mount failed"
	echo "    cp -a took $((SECONDS - t0)) s"
	same_tree "$SRC" "$MNT/cp" "cp -a"
	[ "$(stat -c %i "$MNT/cp/extra/hello")" = "$(stat -c %i "$MNT/cp/extra/sub/hello.hardlink2")" ] ||
		fail "hard links are not the same inode on the mount"
	[ "$(cat "$MNT/cp/extra/hello.hardlink")" = hello ] || fail "hard link content"
	check "after dropping the caches (entries and data come from the store)"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	same_tree "$SRC" "$MNT/cp" "cp -a, uncached"
	check "cp -a back from the mount to a plain directory"
	cp -a "$MNT/cp" "$WORK/back"
	same_tree "$SRC" "$WORK/back" "cp -a back"
	rm -rf "$WORK/back"
	ok "cp -a"
}

t_tar() {
	check "tar c | tar x onto the mount, and back off it"
	mkdir "$MNT/tar" "$WORK/untar"
	tar -C "$SRC" --xattrs --xattrs-include='user.*' -cf - . |
		tar -C "$MNT/tar" --xattrs --xattrs-include='user.*' -xpf - || fail "tar x onto the mount failed"
	same_tree "$SRC" "$MNT/tar" "tar onto the mount"
	tar -C "$MNT/tar" --xattrs --xattrs-include='user.*' -cf "$MNT/archive.tar" . ||
		fail "tar c from the mount into a file on the mount failed"
	tar -C "$WORK/untar" --xattrs --xattrs-include='user.*' -xpf "$MNT/archive.tar" ||
		fail "tar x of the archive on the mount failed"
	same_tree "$SRC" "$WORK/untar" "tar back off the mount"
	tar -C "$SRC" -cf "$WORK/ref.tar" --sort=name --mtime=@0 --owner=0 --group=0 include
	tar -C "$MNT/tar" -cf "$WORK/mnt.tar" --sort=name --mtime=@0 --owner=0 --group=0 include
	cmp "$WORK/ref.tar" "$WORK/mnt.tar" || fail "reproducible tars of the two trees differ"
	rm -rf "$WORK/untar" "$WORK/ref.tar" "$WORK/mnt.tar" "$MNT/archive.tar"
	ok "tar round trips"
}

t_rsync() {
	check "rsync -aHX onto the mount, then a second rsync transfers nothing"
	local r=$WORK/rsrc # a copy of the reference, changed below
	cp -a "$SRC" "$r"
	rsync -aHX "$r/" "$MNT/rsync/" || fail "rsync -aHX failed"
	same_tree "$r" "$MNT/rsync" "rsync"
	local out
	out=$(rsync -aHXi "$r/" "$MNT/rsync/") || fail "the second rsync failed"
	[ -z "$out" ] || fail "the second rsync changed things: $(head -20 <<<"$out")"
	out=$(rsync -aHXic --dry-run "$r/" "$MNT/rsync/") || fail "rsync -c failed"
	[ -z "$out" ] || fail "rsync --checksum finds different contents: $(head -20 <<<"$out")"
	check "rsync --delete after changes on the source"
	echo changed >>"$r/extra/hello"
	rm "$r/extra/empty"
	mkdir "$r/extra/newdir"
	out=$(rsync -aHXi --delete "$r/" "$MNT/rsync/") || fail "rsync --delete failed"
	grep -qE 'deleting +extra/empty' <<<"$out" || fail "rsync did not delete extra/empty: $out"
	# rsync -H --delete leaves directory mtimes off by a few ms (on ext4 too),
	# and itself compares them to the second.
	DIR_SECONDS=1 same_tree "$r" "$MNT/rsync" "rsync --delete"
	out=$(rsync -aHXi --delete "$r/" "$MNT/rsync/")
	[ -z "$out" ] || fail "rsync after --delete still changes: $out"
	rm -rf "$r"
	ok "rsync"
}

t_git() {
	check "git: init, add, commit, status, fsck --strict, branch, checkout, gc, clone"
	local g=$MNT/git
	export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t
	export GIT_COMMITTER_EMAIL=t@example.com GIT_CONFIG_NOSYSTEM=1 HOME=$WORK
	git init -q -b main "$g"
	cp -a "$SRC/include/linux" "$g/"
	git -C "$g" add -A
	git -C "$g" commit -q -m first
	[ -z "$(git -C "$g" status --porcelain)" ] || fail "status not clean after commit: $(git -C "$g" status --porcelain | head)"
	git -C "$g" fsck --strict --no-progress || fail "git fsck --strict failed"
	git -C "$g" checkout -q -b topic
	echo "change" >>"$g/linux/types.h"
	git -C "$g" rm -q -r linux/netfilter
	git -C "$g" commit -q -am second
	git -C "$g" checkout -q main
	[ -d "$g/linux/netfilter" ] || fail "checkout main did not bring back linux/netfilter"
	cmp -s "$g/linux/types.h" "$SRC/include/linux/types.h" || fail "checkout main: types.h differs"
	git -C "$g" checkout -q topic
	[ ! -e "$g/linux/netfilter" ] || fail "checkout topic left linux/netfilter"
	tail -1 "$g/linux/types.h" | grep -q change || fail "checkout topic: types.h not changed"
	[ -z "$(git -C "$g" status --porcelain)" ] || fail "status not clean after checkouts"
	git -C "$g" gc -q --aggressive || fail "git gc failed"
	git -C "$g" fsck --strict --no-progress || fail "git fsck --strict after gc failed"
	git clone -q "$g" "$MNT/clone" || fail "git clone on the mount (hard links) failed"
	git -C "$MNT/clone" fsck --strict --no-progress || fail "fsck of the clone failed"
	[ "$(git -C "$MNT/clone" rev-parse HEAD)" = "$(git -C "$g" rev-parse HEAD)" ] || fail "clone HEAD differs"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	git -C "$g" fsck --strict --full --no-progress || fail "git fsck after dropping caches failed"
	[ -z "$(git -C "$g" status --porcelain)" ] || fail "status not clean after dropping caches"
	ok "git"
}

t_sqlite() {
	local db=$MNT/db.sqlite
	for mode in delete wal; do
		rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
		check "SQLite, journal_mode=$mode: 10k rows in transactions, integrity_check"
		local m
		m=$(sqlite3 "$db" "PRAGMA journal_mode=$mode;") || fail "sqlite3 cannot open $db"
		[ "$m" = "$mode" ] || fail "journal_mode is '$m', expected $mode"
		{
			echo "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER);"
			echo "CREATE INDEX t_n ON t(n);"
			for ((b = 0; b < 10; b++)); do
				echo "BEGIN;"
				echo "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000)"
				echo "INSERT INTO t(v, n) SELECT hex(randomblob(40)), $b * 1000 + x FROM c;"
				echo "COMMIT;"
			done
			echo "BEGIN; UPDATE t SET v = 'u' || v WHERE n % 7 = 0; DELETE FROM t WHERE n % 100 = 0; COMMIT;"
			echo "BEGIN; DELETE FROM t WHERE n < 5000; ROLLBACK;"
		} | sqlite3 "$db" || fail "sqlite3 inserts failed ($mode)"
		if [ "$mode" = wal ]; then
			# A second connection reads while the first writes (shared -shm mapping).
			sqlite3 "$db" "BEGIN; INSERT INTO t(v, n) VALUES('w', 1); SELECT count(*) FROM t;
				SELECT 1 FROM (SELECT 1) WHERE 0; COMMIT;" >/dev/null || fail "concurrent writer failed"
			python3 - "$db" <<-'EOF' || fail "two connections in WAL mode disagree"
				import sqlite3, sys
				a = sqlite3.connect(sys.argv[1], isolation_level=None)
				b = sqlite3.connect(sys.argv[1], isolation_level=None)
				n0 = b.execute("select count(*) from t").fetchone()[0]
				a.execute("begin")
				import os
				assert os.path.exists(sys.argv[1] + "-wal") and os.path.exists(sys.argv[1] + "-shm"), "no -wal/-shm files"
				a.execute("insert into t(v, n) values('x', 2)")
				assert b.execute("select count(*) from t").fetchone()[0] == n0  # not yet committed
				a.execute("commit")
				assert b.execute("select count(*) from t").fetchone()[0] == n0 + 1
				assert a.execute("pragma wal_checkpoint(truncate)").fetchone()[0] == 0
				assert b.execute("pragma integrity_check").fetchone()[0] == "ok"
			EOF
		fi
		local res
		res=$(sqlite3 "$db" "PRAGMA integrity_check;") || fail "integrity_check failed to run"
		[ "$res" = ok ] || fail "integrity_check ($mode): $res"
		local want=$((10000 - 100))
		[ "$mode" = wal ] && want=$((want + 2))
		res=$(sqlite3 "$db" "SELECT count(*) FROM t;")
		[ "$res" = "$want" ] || fail "$res rows, expected $want ($mode)"
		res=$(sqlite3 "$db" "SELECT count(*) FROM t WHERE v LIKE 'u%';")
		[ "$res" = $((10000 / 7 - 10000 / 700)) ] || fail "$res updated rows ($mode)"
		sync
		echo 3 >/proc/sys/vm/drop_caches
		res=$(sqlite3 "$db" "PRAGMA integrity_check; PRAGMA mmap_size=268435456; SELECT sum(n) FROM t;")
		[ "$(head -1 <<<"$res")" = ok ] || fail "integrity_check after dropping caches ($mode): $res"
		ok "SQLite $mode: $want rows, integrity ok"
	done
}

t_python() {
	check "python3: write through a shared mmap, read back with read() (also uncached)"
	python3 - "$MNT/py" <<-'EOF' || fail "python mmap test failed"
		import mmap, os, sys, hashlib
		d = sys.argv[1]
		os.makedirs(d, exist_ok=True)
		p = os.path.join(d, "mm.bin")
		size = 8 << 20
		with open(p, "wb") as f:
		    f.truncate(size)
		with open(p, "r+b") as f:
		    m = mmap.mmap(f.fileno(), size)
		    for i in range(0, size, 4096):
		        m[i:i + 16] = b"%016d" % i
		    m[size - 5:] = b"-end-"
		    m.flush()
		    m.close()
		def check():
		    with open(p, "rb") as f:
		        data = f.read()
		    assert len(data) == size, len(data)
		    for i in range(0, size, 4096):
		        assert data[i:i + 16] == b"%016d" % i, (i, data[i:i + 16])
		        assert data[i + 16:i + 4096 - (5 if i + 4096 == size else 0)].count(0) == \
		            4096 - 16 - (5 if i + 4096 == size else 0), i
		    assert data[-5:] == b"-end-"
		check()
		os.sync()
		with open("/proc/sys/vm/drop_caches", "w") as f:
		    f.write("3")
		check()
		# Growing a mapped file: extend with ftruncate, map the new part.
		with open(p, "r+b") as f:
		    f.truncate(size * 2)
		    m = mmap.mmap(f.fileno(), size * 2)
		    m[size:size + 6] = b"second"
		    m.close()
		with open(p, "rb") as f:
		    f.seek(size)
		    assert f.read(6) == b"second"
		print("    mmap ok")
	EOF
	check "python3: 4 processes appending with O_APPEND, no record lost or torn"
	python3 - "$MNT/py/append.log" <<-'EOF' || fail "O_APPEND test failed"
		import os, sys
		from multiprocessing import Process
		p = sys.argv[1]
		N, W, L = 2000, 4, 64
		def writer(w):
		    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
		    for i in range(N):
		        rec = ("%d:%06d:" % (w, i)).ljust(L - 1, "x") + "\n"
		        assert os.write(fd, rec.encode()) == L
		    os.close(fd)
		ps = [Process(target=writer, args=(w,)) for w in range(W)]
		for q in ps: q.start()
		for q in ps: q.join(); assert q.exitcode == 0
		data = open(p, "rb").read()
		assert len(data) == N * W * L, (len(data), N * W * L)
		seen = set()
		for k in range(0, len(data), L):
		    rec = data[k:k + L].decode()
		    assert rec.endswith("\n") and rec.count("\n") == 1, (k, rec)
		    w, i, _ = rec.split(":", 2)
		    seen.add((int(w), int(i)))
		assert len(seen) == N * W
		print("    %d records intact" % len(seen))
	EOF
	ok "python"
}

t_cc() {
	check "cc: source and binary on the mount, compile, link, run"
	local c=$MNT/cc
	mkdir -p "$c"
	cat >"$c/lib.c" <<-'EOF'
		int sq(int x) { return x * x; }
	EOF
	cat >"$c/main.c" <<-'EOF'
		#include <stdio.h>
		int sq(int);
		int main(int argc, char **argv)
		{
			long s = 0;
			for (int i = 1; i <= 100; i++)
				s += sq(i);
			FILE *f = fopen(argv[1], "w");
			if (!f)
				return 1;
			fprintf(f, "sum=%ld\n", s);
			printf("hello from the mount: %ld\n", s);
			return fclose(f) != 0;
		}
	EOF
	(cd "$c" && cc -O2 -Wall -c lib.c -o lib.o && ar rcs libsq.a lib.o &&
		cc -O2 -Wall -MD -o prog main.c -L. -lsq) || fail "compiling on the mount failed"
	[ -x "$c/prog" ] || fail "the binary is not executable"
	local out
	out=$("$c/prog" "$c/out.txt") || fail "running the binary from the mount failed"
	[ "$out" = "hello from the mount: 338350" ] || fail "the program printed '$out'"
	[ "$(cat "$c/out.txt")" = "sum=338350" ] || fail "the program wrote '$(cat "$c/out.txt")'"
	[ -s "$c/prog.d" ] || [ -s "$c/main.d" ] || fail "no dependency file from cc -MD"
	cc -O2 -Wall -o "$WORK/prog.ref" "$c/main.c" "$c/lib.c"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	out=$("$c/prog" "$c/out2.txt") || fail "running the binary after dropping caches failed"
	[ "$out" = "hello from the mount: 338350" ] || fail "after dropping caches the program printed '$out'"
	ok "cc"
}

check "building the reference tree in a plain directory"
make_source
ok "reference: $(find "$SRC" | wc -l) entries"

section t_cp
section t_tar
section t_rsync
section t_git
section t_sqlite
section t_python
section t_cc

check "the daemon is alive and the unmount is clean"
cvfs_alive "$MNT" || fail "the daemon died"
rc=0
cvfs_umount "$MNT" || rc=$?
[ "$rc" = 0 ] || fail "daemon exited with $rc at unmount"
if mp_mounted "$MNT"; then fail "$MNT still mounted"; fi
ok "unmounted, daemon exit 0"
finish
