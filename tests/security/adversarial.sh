#!/usr/bin/env bash
# The security policy through a real mount, the way an adversary would try
# it: `..`, symlinks, hard links and renames towards blocked paths, hidden
# names in listings, size limits by truncate/sparse writes/fallocate/append,
# parallel writers racing the quotas, extension and case tricks, read-only,
# statfs, the violation log; bad policy input at start.  Files that were
# allowed must be intact afterwards.
#
# Sections that need data placed in a path the policy then hides use the
# sqlite store (populate without a policy, remount with one); they are
# skipped when sqlite is not built in.
set -euo pipefail

: "${CVFS_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${CVFS_BUILDDIR:=$CVFS_SRCDIR/build}"
: "${CVFS_MOUNT_BIN:=$CVFS_BUILDDIR/chuk-vfs-mount}"
export CVFS_MOUNT_BIN
# shellcheck source=../lib/mount.sh
source "$CVFS_SRCDIR/tests/lib/mount.sh"

[ -x "$CVFS_MOUNT_BIN" ] || { echo "no chuk-vfs-mount at $CVFS_MOUNT_BIN"; exit 77; }
[ -e /dev/fuse ] || { echo "no /dev/fuse: skipped"; exit 77; }
command -v getfattr >/dev/null || { echo "getfattr missing (attr package): skipped"; exit 77; }

WORK=$(mktemp -d /tmp/cvfs-adversarial.XXXXXX)
chmod 755 "$WORK"

cleanup() {
	local rc=$?
	set +e
	cd /
	cvfs_cleanup
	local m
	while read -r m; do
		fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done < <(awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r)
	if [ "$rc" = 0 ] || [ -z "${CVFS_KEEP:-}" ]; then
		rm -rf "$WORK"
	else
		echo "(kept $WORK)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { echo "== $*"; }
ok() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

mounted() { awk -v d="$(realpath -m "$1")" '$2 == d { f = 1 } END { exit !f }' /proc/self/mounts; }
mnt() { cvfs_mount "$@" || fail "cannot mount $1 ($*)"; }

FAILED=()
SKIPPED=()
section() {
	local fn=$1 rc=0
	# CVFS_SECTIONS="blocked quota_bytes" runs only those
	if [ -n "${CVFS_SECTIONS:-}" ] && [[ " $CVFS_SECTIONS " != *" $fn "* ]]; then
		return 0
	fi
	echo
	echo "#### $fn"
	set +e
	(
		set -e
		CVFS_PIDS=()
		trap 'rc=$?; cvfs_cleanup; exit $rc' EXIT
		"$fn"
	)
	rc=$?
	set -e
	if [ "$rc" = 77 ]; then
		SKIPPED+=("$fn")
	elif [ "$rc" != 0 ]; then
		FAILED+=("$fn")
		echo "#### $fn FAILED" >&2
	fi
}

# errno names as coreutils prints them (strerror)
declare -A ERRTEXT=(
	[ENOENT]="No such file or directory" [EACCES]="Permission denied"
	[EROFS]="Read-only file system" [EFBIG]="File too large"
	[EDQUOT]="Disk quota exceeded" [ENAMETOOLONG]="File name too long"
	[EPERM]="Operation not permitted"
)

# expect ERRNO CMD...: CMD fails and says strerror(ERRNO).
expect() {
	local e=$1
	shift
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "'$*' succeeded; expected $e"
	case "$out" in
	*"${ERRTEXT[$e]}"*) ok "$* -> $e" ;;
	*) fail "'$*' failed (rc $rc), but not with $e: $out" ;;
	esac
}

# succeed CMD...: CMD succeeds.
succeed() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" = 0 ] || fail "'$*' failed (rc $rc): $out"
	ok "$*"
}

# A Python errno probe for what the shell tools hide (open flags, rename(2)).
# pyop OP ARGS... prints OK or the errno name.
pyop() {
	python3 - "$@" <<'EOF'
import errno, os, sys
op, args = sys.argv[1], sys.argv[2:]
try:
    if op == "open":
        os.close(os.open(args[0], os.O_RDONLY))
    elif op == "create":
        os.close(os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    elif op == "rename":
        os.rename(args[0], args[1])
    elif op == "link":
        os.link(args[0], args[1])
    elif op == "symlink":
        os.symlink(args[0], args[1])
    elif op == "mkdir":
        os.mkdir(args[0])
    elif op == "stat":
        os.stat(args[0])
    elif op == "lstat":
        os.lstat(args[0])
    elif op == "unlink":
        os.unlink(args[0])
    elif op == "truncate":
        os.truncate(args[0], int(args[1]))
    elif op == "pwrite":
        fd = os.open(args[0], os.O_WRONLY)
        try:
            os.pwrite(fd, b"x", int(args[1]))
        finally:
            os.close(fd)
    else:
        raise SystemExit("unknown op " + op)
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

# want ERRNO|OK OP ARGS...: pyop OP ARGS gives ERRNO.
want() {
	local w=$1
	shift
	local got
	got=$(pyop "$@")
	[ "$got" = "$w" ] || fail "$*: got $got, want $w"
	ok "$* -> $w"
}

status_json() { getfattr --only-values -n user.chuk-vfs.status "$1" 2>/dev/null; }
violations() { getfattr --only-values -n user.chuk-vfs.violations "$1" 2>/dev/null; }
# policy_num MOUNT KEY: a number from the policy part of the status
policy_num() { status_json "$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2; }

HAVE_SQLITE=
probe_sqlite() {
	local d=$WORK/probe
	if cvfs_mount "$d" -b sqlite --db-path "$WORK/probe.db" 2>/dev/null; then
		cvfs_umount "$d"
		HAVE_SQLITE=1
	fi
	rm -f "$WORK/probe.db"*
	return 0
}

# The tree the blocking sections start from, in the sqlite database $1.
populate() {
	local db=$1 m=$WORK/populate
	rm -f "$db"*
	mnt "$m" -b sqlite --db-path "$db"
	mkdir -p "$m/secrets/sub" "$m/pub/dir" "$m/secrets2" "$m/ro/deep"
	echo "top secret" >"$m/secrets/x"
	head -c 100000 /dev/urandom >"$m/secrets/sub/y"
	echo "public" >"$m/pub/a.txt"
	head -c 300000 /dev/urandom >"$m/pub/dir/big.bin"
	echo "not blocked" >"$m/secrets2/z"
	echo "read only" >"$m/ro/r.txt"
	echo "deep" >"$m/ro/deep/d.txt"
	(cd "$m" && find . -type f | sort | xargs sha256sum) >"$WORK/sums.orig"
	cvfs_umount "$m" || fail "unmount after populate"
}

verify_intact() { # verify_intact DB: every original file, same content
	local db=$1 m=$WORK/verify
	mnt "$m" -b sqlite --db-path "$db"
	(cd "$m" && sha256sum --quiet -c "$WORK/sums.orig") || fail "files changed: see above"
	cvfs_umount "$m" || fail "unmount after verify"
	ok "all $(wc -l <"$WORK/sums.orig") original files intact (sha256)"
}

# ---- bad policy input: exit non-zero, a clear message, no mount ----

bad_input() {
	local d=$WORK/bad
	mkdir -p "$d"
	printf '{"max_file_size": "10M",' >"$WORK/trunc.json"
	printf '{"block_path": ["/a"], "no_such_key": 1}' >"$WORK/unknown.json"
	printf '{"max_files": -5}' >"$WORK/neg.json"
	printf '{"profile": "strict"} garbage' >"$WORK/trail.json"
	local cases=(
		"unknown profile|paranoid|--profile paranoid"
		"negative size|max_file_size|--max-file-size -1"
		"junk size|10Q|--max-file-size 10Q"
		"overflowing size|max_total_bytes|--max-total-bytes 99999999999999999999T"
		"bad count|max_files|--max-files lots"
		"relative block path|block_path|--block-path secrets"
		"missing config|$WORK/missing.json|--config $WORK/missing.json"
		"directory as config|$WORK|--config $WORK"
		"truncated JSON|trunc.json|--config $WORK/trunc.json"
		"unknown key|no_such_key|--config $WORK/unknown.json"
		"negative in JSON|max_files|--config $WORK/neg.json"
		"trailing garbage|trail.json|--config $WORK/trail.json"
		"unopenable policy log|$WORK/nodir/p.log|--policy-log $WORK/nodir/p.log"
		"impossible extension|tar.gz|--deny-ext .tar.gz"
	)
	local c what re args rc
	for c in "${cases[@]}"; do
		IFS='|' read -r what re args <<<"$c"
		check "$what: $args"
		rc=0
		# shellcheck disable=SC2086
		timeout -k 2 10 "$CVFS_MOUNT_BIN" -f -m "$d" $args >"$WORK/out" 2>"$WORK/err" </dev/null || rc=$?
		sed 's/^/    stderr: /' "$WORK/err" | head -n 2
		[ "$rc" != 124 ] && [ "$rc" != 137 ] || fail "$what: mounted / hung until killed"
		[ "$rc" -lt 128 ] || fail "$what: died by signal $((rc - 128))"
		[ "$rc" != 0 ] || fail "$what: exit status 0"
		grep -qF -- "$re" "$WORK/err" || fail "$what: message does not mention '$re'"
		! mounted "$d" || fail "$what: left a mount behind"
		ok "$what: exit $rc"
	done
}

# ---- blocked paths ----

blocked() {
	[ -n "$HAVE_SQLITE" ] || { echo "sqlite not built: skipped"; exit 77; }
	local db=$WORK/blocked.db m=$WORK/b
	populate "$db"
	mnt "$m" -b sqlite --db-path "$db" --block-path /secrets --block-path /pub/dir/big.bin \
		--policy-log "$WORK/blocked.log"

	check "listings do not show blocked names"
	local ls_root ls_pub v0
	v0=$(policy_num "$m" violations)
	ls_root=$(ls -a "$m")
	ls_pub=$(ls -a "$m/pub/dir")
	[ "$(policy_num "$m" violations)" = "$v0" ] ||
		fail "listing directories with hidden names counted violations ($v0 -> $(policy_num "$m" violations))"
	echo "    ls: $(echo $ls_root)"
	! grep -qx secrets <<<"$ls_root" || fail "ls shows secrets"
	grep -qx secrets2 <<<"$ls_root" || fail "ls lost secrets2 (a prefix is not a parent)"
	grep -qx pub <<<"$ls_root" || fail "ls lost pub"
	! grep -qx big.bin <<<"$ls_pub" || fail "ls shows a blocked file"
	[ -z "$(find "$m" -name 'x' -o -name 'big.bin' -o -name sub)" ] || fail "find sees blocked names"
	ok "ls and find see no blocked names"

	check "direct access, .., symlinks"
	want ENOENT stat "$m/secrets"
	want ENOENT open "$m/secrets/x"
	want ENOENT stat "$m/secrets/sub/y"
	want ENOENT open "$m/pub/../secrets/x"
	want ENOENT open "$m/secrets2/../secrets/x"
	want ENOENT open "$m/pub/dir/big.bin"
	want ENOENT open "$m/pub/dir/../dir/./big.bin"
	expect ENOENT cat "$m/pub/../secrets/x"
	expect ENOENT cat "$m/secrets/x"
	succeed cat "$m/secrets2/z"
	succeed cat "$m/pub/a.txt"
	want OK symlink secrets/x "$m/link"
	want OK symlink "$m/secrets" "$m/link2"
	want OK symlink ../secrets/sub/y "$m/pub/link3"
	expect ENOENT cat "$m/link"
	expect ENOENT cat "$m/link2/x"
	expect ENOENT cat "$m/pub/link3"
	want ENOENT stat "$m/link"
	want OK lstat "$m/link"
	(cd "$m/pub" && expect ENOENT cat ../secrets/x)
	expect ENOENT ls "$m/secrets/"

	check "hard links and renames out of and into blocked paths"
	want ENOENT link "$m/secrets/x" "$m/pub/x"
	want ENOENT rename "$m/secrets/x" "$m/pub/x"
	want ENOENT rename "$m/secrets" "$m/open"
	want ENOENT link "$m/pub/dir/big.bin" "$m/pub/big-copy"
	want ENOENT rename "$m/pub/dir/big.bin" "$m/pub/big-copy"
	# and into them: an allowed file cannot be hidden or replace a secret
	local r
	r=$(pyop rename "$m/pub/a.txt" "$m/secrets/a.txt")
	[ "$r" = ENOENT ] || [ "$r" = EACCES ] || fail "rename into a blocked dir: $r"
	ok "rename into a blocked dir -> $r"
	r=$(pyop link "$m/pub/a.txt" "$m/secrets/h")
	[ "$r" = ENOENT ] || [ "$r" = EACCES ] || fail "link into a blocked dir: $r"
	ok "link into a blocked dir -> $r"
	r=$(pyop rename "$m/pub/a.txt" "$m/pub/dir/big.bin")
	[ "$r" = EACCES ] || [ "$r" = ENOENT ] || fail "rename over a blocked file: $r"
	ok "rename over a blocked file -> $r"
	r=$(pyop link "$m/pub/a.txt" "$m/pub/dir/big.bin")
	[ "$r" = EACCES ] || [ "$r" = ENOENT ] || fail "link as a blocked name: $r"
	ok "link as a blocked name -> $r"
	# moving a directory that holds a blocked file would un-hide it
	want EACCES rename "$m/pub/dir" "$m/pub/dir2"
	want EACCES rename "$m/pub" "$m/pub2"
	want ENOENT open "$m/pub/dir2/big.bin"
	want ENOENT open "$m/pub2/dir/big.bin"
	# link an allowed file, rename the link around, and back: all fine
	want OK link "$m/pub/a.txt" "$m/pub/a-link.txt"
	want OK rename "$m/pub/a-link.txt" "$m/secrets2/moved.txt"
	want OK rename "$m/secrets2/moved.txt" "$m/pub/a-link.txt"
	want OK unlink "$m/pub/a-link.txt"

	check "creating in or as a blocked path"
	r=$(pyop create "$m/secrets/new")
	[ "$r" = ENOENT ] || [ "$r" = EACCES ] || fail "create in a blocked dir: $r"
	ok "create in a blocked dir -> $r"
	r=$(pyop mkdir "$m/secrets")
	[ "$r" = EACCES ] || [ "$r" = ENOENT ] || fail "mkdir of a blocked (existing) dir: $r (EEXIST leaks)"
	ok "mkdir of a blocked existing dir -> $r (no EEXIST)"
	r=$(pyop create "$m/secrets")
	[ "$r" = EACCES ] || [ "$r" = ENOENT ] || fail "O_EXCL create of a blocked name: $r (EEXIST leaks)"
	ok "O_EXCL create of a blocked existing name -> $r (no EEXIST)"
	r=$(pyop mkdir "$m/secrets/sub2")
	[ "$r" = ENOENT ] || [ "$r" = EACCES ] || fail "mkdir in a blocked dir: $r"
	expect ENOENT touch "$m/secrets/x"
	r=$(pyop unlink "$m/secrets/x")
	[ "$r" = ENOENT ] || [ "$r" = EACCES ] || fail "unlink of a blocked file: $r"
	expect ENOENT rm -r "$m/secrets/sub/y"
	r=$(pyop unlink "$m/pub/dir/big.bin")
	[ "$r" = ENOENT ] || [ "$r" = EACCES ] || fail "unlink of a blocked file: $r"
	ok "unlink of blocked files refused"
	! setfattr -n user.x -v 1 "$m/secrets" 2>/dev/null || fail "setfattr on a blocked dir"
	! chmod 777 "$m/secrets" 2>/dev/null || fail "chmod of a blocked dir"
	ok "setfattr and chmod of a blocked dir refused"
	# rmdir of a parent that holds only blocked names must not remove them
	r=$(pyop unlink "$m/pub/dir")
	[ "$r" != OK ] || fail "unlink of a directory"
	! rmdir "$m/pub/dir" 2>/dev/null || fail "rmdir of a dir that holds a hidden file succeeded"
	ok "rmdir of a dir holding only a hidden file refused"

	check "the violation log"
	local v
	v=$(violations "$m")
	echo "$v" | tail -n 3 | sed 's/^/    /'
	grep -q '"rule":"block_path=/secrets"' <<<"$v" || fail "no block_path entry in the xattr"
	grep -q '"errno":"ENOENT"' <<<"$v" || fail "no ENOENT entry"
	grep -q '"path":"/secrets/x"\|"path":"/secrets"' <<<"$v" || fail "no /secrets path entry"
	[ "$(wc -l <<<"$v")" -le 1000 ] || fail "more than 1000 entries"
	grep -q '"rule":"block_path=/secrets"' "$WORK/blocked.log" || fail "policy log file lacks entries"
	python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' \
		"$WORK/blocked.log" || fail "policy log is not JSON lines"
	grep -q '^chuk-vfs: policy: ' "$m.log" || fail "no policy lines on the daemon's stderr"
	status_json "$m" | grep -q '"policy":{' || fail "status has no policy"
	status_json "$m" | grep -q '"block_path":\["/secrets","/pub/dir/big.bin"\]' ||
		fail "status policy does not list the blocked paths: $(status_json "$m")"
	ok "violations in the xattr, the log file and stderr; the policy in the status"

	rm -f "$m/link" "$m/link2" "$m/pub/link3"
	cvfs_umount "$m" || fail "unmount"
	verify_intact "$db"
}

# ---- read-only: whole, profile, subtree ----

readonly_all() {
	local m=$WORK/ro f
	for f in "-r" "--profile readonly"; do
		check "read-only with $f"
		# shellcheck disable=SC2086
		mnt "$m" $f
		expect EROFS touch "$m/a"
		expect EROFS mkdir "$m/d"
		expect EROFS ln -s x "$m/l"
		want EROFS create "$m/b"
		! setfattr -n user.x -v 1 "$m" 2>/dev/null || fail "setfattr on a read-only mount"
		succeed ls "$m"
		succeed stat -f "$m"
		cvfs_umount "$m" || fail "unmount"
	done
	[ -n "$HAVE_SQLITE" ] || { echo "sqlite not built: subtree part skipped"; return 0; }
	local db=$WORK/ro.db
	populate "$db"
	check "readonly_path /ro"
	mnt "$m" -b sqlite --db-path "$db" --readonly-path /ro --readonly-path /newro/inner
	succeed cat "$m/ro/r.txt" "$m/ro/deep/d.txt"
	expect EROFS bash -c "echo changed > '$m/ro/r.txt'"
	expect EROFS bash -c "echo more >> '$m/ro/deep/d.txt'"
	expect EROFS truncate -s 0 "$m/ro/r.txt"
	expect EROFS rm "$m/ro/r.txt"
	expect EROFS rmdir "$m/ro/deep"
	expect EROFS mv "$m/ro/r.txt" "$m/pub/r.txt"
	expect EROFS mv "$m/pub/a.txt" "$m/ro/a.txt"
	expect EROFS touch "$m/ro/new"
	expect EROFS chmod 600 "$m/ro/r.txt"
	expect EROFS touch -d 2001-01-01 "$m/ro/r.txt"
	! setfattr -n user.x -v 1 "$m/ro/r.txt" 2>/dev/null || fail "setfattr under /ro"
	expect EROFS ln "$m/ro/r.txt" "$m/ro/hard"
	# copying out and linking to a read-only file from elsewhere are reads
	# moving the read-only tree's parent away, or a tree into its place
	expect EROFS mv "$m/ro" "$m/rw"
	succeed mkdir -p "$m/pub/plant/deep"
	expect EROFS mv "$m/pub/plant" "$m/ro/deep2"
	succeed mkdir "$m/pub/plant/inner"
	expect EROFS mv "$m/pub/plant" "$m/newro" # would plant /newro/inner
	succeed rmdir "$m/pub/plant/inner"
	succeed rmdir "$m/pub/plant/deep" "$m/pub/plant"
	succeed cp "$m/ro/r.txt" "$m/pub/copy.txt"
	succeed ln -s ../ro/r.txt "$m/pub/ro-link"
	expect EROFS bash -c "echo via-link > '$m/pub/ro-link'"
	succeed sh -c "echo fine > '$m/pub/new.txt'"
	rm -f "$m/pub/copy.txt" "$m/pub/ro-link" "$m/pub/new.txt"
	cvfs_umount "$m" || fail "unmount"
	verify_intact "$db"
}

# ---- max file size ----

file_size() {
	local m=$WORK/fs
	mnt "$m" --max-file-size 1M
	check "writes up to the limit work"
	succeed dd if=/dev/zero of="$m/exact" bs=64K count=16 status=none
	[ "$(stat -c %s "$m/exact")" = 1048576 ] || fail "exact size"
	check "past the limit: write, append, truncate, sparse, fallocate"
	expect EFBIG dd if=/dev/zero of="$m/over" bs=64K count=17 status=none
	[ "$(stat -c %s "$m/over")" -le 1048576 ] || fail "over: $(stat -c %s "$m/over") bytes"
	expect EFBIG bash -c "echo x >> '$m/exact'"
	expect EFBIG truncate -s 1048577 "$m/exact"
	expect EFBIG truncate -s 2G "$m/exact"
	expect EFBIG truncate -s 1T "$m/sparse1"
	expect EFBIG dd if=/dev/zero of="$m/sparse2" bs=1 count=1 seek=2M status=none
	expect EFBIG dd if=/dev/zero of="$m/sparse3" bs=1 count=1 seek=1048576 status=none conv=notrunc
	want EFBIG pwrite "$m/exact" 1048576
	want EFBIG pwrite "$m/exact" 9223372036854775000
	want EFBIG truncate "$m/exact" 1048577
	local r
	r=$(fallocate -l 2M "$m/falloc" 2>&1) && fail "fallocate 2M succeeded"
	case "$r" in *"File too large"* | *"not supported"*) ok "fallocate 2M refused: $r" ;;
	*) fail "fallocate: $r" ;; esac
	succeed truncate -s 1M "$m/sparse4"
	succeed truncate -s 10 "$m/exact"
	succeed truncate -s 1M "$m/exact"
	local f s
	for f in "$m"/*; do
		s=$(stat -c %s "$f")
		[ "$s" -le 1048576 ] || fail "$f is $s bytes"
	done
	ok "no file passed 1 MiB"
	cvfs_umount "$m" || fail "unmount"
}

# ---- quotas under parallel writers ----

# racers MOUNT N SIZE: N writers, each writing SIZE-byte files from its own
# template until the first failure.
racers() {
	local m=$1 n=$2 size=$3 w
	for ((w = 0; w < n; w++)); do
		head -c "$size" /dev/urandom >"$WORK/tpl.$w"
		mkdir "$m/w$w" || return 1
	done
	local pids=()
	for ((w = 0; w < n; w++)); do
		(
			i=0
			while cp "$WORK/tpl.$w" "$m/w$w/f$i" 2>"$WORK/err.$w"; do
				i=$((i + 1))
				[ "$i" -lt 100000 ] || break
			done
			echo "$i" >"$WORK/count.$w"
		) &
		pids+=($!)
	done
	wait "${pids[@]}" # not a bare wait: the daemon is our child too
}

# quota_check MOUNT MAX_BYTES MAX_FILES N SIZE
quota_check() {
	local m=$1 maxb=$2 maxf=$3 n=$4 size=$5 w
	local bytes files used_b used_f
	bytes=$(find "$m" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	files=$(find "$m" -mindepth 1 | wc -l)
	used_b=$(policy_num "$m" used_bytes)
	used_f=$(policy_num "$m" used_files)
	echo "    found $files inodes, $bytes bytes; the policy counts $used_f, $used_b"
	[ "$bytes" -le "$maxb" ] || fail "$bytes bytes passed the quota $maxb"
	[ "$files" -le "$maxf" ] || fail "$files inodes passed the quota $maxf"
	[ "$used_b" = "$bytes" ] || fail "the policy counts $used_b bytes, the files hold $bytes"
	[ "$used_f" = "$files" ] || fail "the policy counts $used_f inodes, there are $files"
	local errs
	errs=$(cat "$WORK"/err.* | sort | uniq -c | sed 's/^/      /')
	echo "    writers stopped with:"
	echo "$errs"
	grep -q "Disk quota exceeded" "$WORK"/err.* || fail "no writer saw EDQUOT"
	! grep -v "Disk quota exceeded" "$WORK"/err.* | grep -q . || fail "writers failed otherwise"
	check "statfs shows the quota"
	local bs blocks bfree bavail fi ff
	read -r bs blocks bfree bavail fi ff < <(stat -f -c '%S %b %f %a %c %d' "$m")
	echo "    statfs: bsize $bs blocks $blocks bfree $bfree bavail $bavail files $fi ffree $ff"
	[ $((blocks * bs)) = $((maxb / bs * bs)) ] || fail "statfs size $((blocks * bs)) != quota $maxb"
	[ "$bfree" = $(((maxb - bytes) / bs)) ] || fail "statfs free $bfree blocks, want $(((maxb - bytes) / bs))"
	[ "$bavail" = "$bfree" ] || fail "bavail $bavail != bfree $bfree"
	[ "$fi" = "$maxf" ] || fail "statfs files $fi != $maxf"
	[ "$ff" = $((maxf - files)) ] || fail "statfs ffree $ff != $((maxf - files))"
	df -h "$m" | sed 's/^/    /'
	ok "statfs: the quota is the size, the rest is free"
	check "every complete file is intact"
	local good=0 f
	for ((w = 0; w < n; w++)); do
		for f in "$m/w$w"/f*; do
			[ -e "$f" ] || continue
			[ "$(stat -c %s "$f")" = "$size" ] || continue
			cmp -s "$f" "$WORK/tpl.$w" || fail "$f differs from what was written"
			good=$((good + 1))
		done
	done
	ok "$good complete files match their templates"
}

quota_bytes() {
	local m=$WORK/qb max=$((4 << 20))
	mnt "$m" --max-total-bytes 4M --max-files 100000
	check "20 writers race a 4 MiB byte quota (64 KiB files)"
	racers "$m" 20 65536 || fail "setup"
	quota_check "$m" "$max" 100000 20 65536
	check "freeing space gives it back"
	rm -rf "$m"/w*
	[ "$(policy_num "$m" used_bytes)" = 0 ] || fail "used_bytes after rm: $(policy_num "$m" used_bytes)"
	[ "$(policy_num "$m" used_files)" = 0 ] || fail "used_files after rm: $(policy_num "$m" used_files)"
	succeed dd if=/dev/zero of="$m/again" bs=1M count=4 status=none
	expect EDQUOT dd if=/dev/zero of="$m/more" bs=1 count=1 status=none
	expect EDQUOT truncate -s 5M "$m/again"
	violations "$m" | grep -q '"path":"/again".*max_total_bytes' ||
		fail "the quota refusal of truncate names no path: $(violations "$m" | tail -c 300)"
	expect EDQUOT dd if=/dev/zero of="$m/again" bs=1 count=1 seek=5M conv=notrunc status=none
	succeed truncate -s 1M "$m/again"
	succeed truncate -s 4M "$m/again"
	cvfs_umount "$m" || fail "unmount"
}

quota_files() {
	local m=$WORK/qf
	mnt "$m" --max-files 300 --max-total-bytes 1G
	check "20 writers race a 300-inode quota (small files)"
	racers "$m" 20 100 || fail "setup"
	quota_check "$m" $((1 << 30)) 300 20 100
	expect EDQUOT mkdir "$m/onemore"
	violations "$m" | grep -q '"path":"/onemore".*max_files' ||
		fail "the quota refusal of mkdir names no path: $(violations "$m" | tail -c 300)"
	expect EDQUOT ln -s x "$m/onemore"
	rm -f "$m/w0/f0"
	succeed mkdir "$m/onemore"
	cvfs_umount "$m" || fail "unmount"
}

# ---- extensions and names ----

extensions() {
	local m=$WORK/ext
	mnt "$m" --deny-ext .exe,.SO --deny-name '*.pem' --deny-name 'id_rsa*' \
		--policy-log "$WORK/ext-policy.log"
	echo "payload" >"$m/a.txt"
	sha256sum "$m/a.txt" >"$WORK/a.sum"
	check "extension by rename, link, copy"
	expect EACCES mv "$m/a.txt" "$m/a.exe"
	expect EACCES ln "$m/a.txt" "$m/a.exe"
	expect EACCES cp "$m/a.txt" "$m/b.exe"
	expect EACCES touch "$m/c.exe"
	mkdir "$m/sub"
	expect EACCES mv "$m/a.txt" "$m/sub/a.exe"
	check "case tricks"
	local n
	for n in A.EXE b.Exe c.eXe d.txt.EXE .hidden.exe lib.So; do
		expect EACCES touch "$m/$n"
	done
	want EACCES rename "$m/a.txt" "$m/A.EXE"
	check "names that are not extensions, and directories"
	succeed touch "$m/.exe" "$m/exe" "$m/a.exe.txt" "$m/a.exe." "$m/.gitignore"
	succeed mkdir "$m/tools.exe"
	succeed touch "$m/tools.exe/readme.txt"
	check "denied names"
	expect EACCES touch "$m/server.pem"
	expect EACCES touch "$m/SERVER.PEM"
	expect EACCES touch "$m/.x.pem"
	expect EACCES cp "$m/a.txt" "$m/sub/id_rsa"
	expect EACCES mv "$m/a.txt" "$m/id_rsa.pub"
	expect EACCES ln -s a.txt "$m/id_rsa"
	succeed touch "$m/my_id_rsa" "$m/pem"
	sha256sum -c --quiet "$WORK/a.sum" || fail "a.txt changed"
	ok "a.txt intact after the refused renames"
	grep -q '"rule":"deny_ext=.exe"' "$WORK/ext-policy.log" || fail "no deny_ext in the log: $(cat "$WORK/ext-policy.log")"
	grep -q '"rule":"deny_name=\*.pem"' "$WORK/ext-policy.log" || fail "no deny_name in the log"
	violations "$m" | grep -q '"op":"rename_to"' || fail "no rename_to violation"
	ok "refusals logged"
	cvfs_umount "$m" || fail "unmount"

	check "allow_ext: only .py and .txt (and no-extension when listed)"
	mnt "$m" --allow-ext .py,.txt
	succeed touch "$m/a.py" "$m/B.TXT"
	expect EACCES touch "$m/Makefile"
	expect EACCES touch "$m/a.c"
	expect EACCES mv "$m/a.py" "$m/a.pyc"
	succeed mkdir "$m/node_modules"
	cvfs_umount "$m" || fail "unmount"
	mnt "$m" --allow-ext .py,.txt,
	succeed touch "$m/Makefile" "$m/.gitignore"
	expect EACCES touch "$m/a.c"
	cvfs_umount "$m" || fail "unmount"
}

# ---- depth and allowed roots ----

depth_roots() {
	local m=$WORK/dr
	mnt "$m" --max-depth 4
	check "max depth 4"
	succeed mkdir -p "$m/a/b/c/d"
	succeed touch "$m/a/b/c/f"
	expect ENAMETOOLONG mkdir "$m/a/b/c/d/e"
	expect ENAMETOOLONG touch "$m/a/b/c/d/f"
	expect ENAMETOOLONG mv "$m/a/b/c/f" "$m/a/b/c/d/f"
	cvfs_umount "$m" || fail "unmount"

	check "allow_root /work/out"
	mnt "$m" --allow-root /work/out
	expect EACCES touch "$m/x"
	succeed mkdir -p "$m/work/out/deep"
	succeed sh -c "echo hi > '$m/work/out/deep/f.txt'"
	expect EACCES touch "$m/work/y"
	expect EACCES mkdir "$m/other"
	expect EACCES mv "$m/work/out/deep/f.txt" "$m/work/f.txt"
	expect EACCES rmdir "$m/work/out"
	expect EACCES mv "$m/work/out" "$m/work/out2"
	succeed ls "$m/work"
	succeed cat "$m/work/out/deep/f.txt"
	succeed rm "$m/work/out/deep/f.txt"
	cvfs_umount "$m" || fail "unmount"
}

# ---- profiles on a normal project ----

profiles() {
	local m=$WORK/pr p
	for p in default strict untrusted testing; do
		check "a normal project under --profile $p"
		mnt "$m" --profile "$p"
		mkdir -p "$m/proj/.git/objects/ab" "$m/proj/node_modules/left-pad" "$m/proj/src"
		echo "node_modules/" >"$m/proj/.gitignore"
		echo "x" >"$m/proj/.git/objects/ab/cdef0123"
		echo "module.exports = 1" >"$m/proj/node_modules/left-pad/index.js"
		echo "int main(void) { return 0; }" >"$m/proj/src/main.c"
		echo "all:" >"$m/proj/Makefile"
		echo "A=1" >"$m/proj/.env"
		echo "v" >"$m/proj/v1.2.3.tar.gz"
		mv "$m/proj/src/main.c" "$m/proj/src/main.c.bak"
		ok "profile $p: .git, node_modules, dotfiles, dotted names work"
		if [ "$p" != default ] && [ "$p" != testing ]; then
			expect EACCES touch "$m/proj/evil.exe"
			expect EACCES touch "$m/proj/libevil.so.1"
			expect ENOENT stat "$m/.ssh"
		fi
		[ "$p" != untrusted ] || expect EACCES touch "$m/proj/server.key"
		[ "$p" != testing ] || expect EFBIG dd if=/dev/zero of="$m/big" bs=1M count=2 status=none
		status_json "$m" | grep -q "\"profile\":\"$p\"" || fail "status does not name profile $p"
		cvfs_umount "$m" || fail "unmount"
	done
	check "--config file"
	cat >"$WORK/policy.json" <<-EOF
		{ "profile": "strict", "block_path": ["/hidden"], "deny_ext": [".sh"],
		  "max_file_size": "64K", "log": "$WORK/cfg.log" }
	EOF
	mnt "$m" --config "$WORK/policy.json" --deny-ext .bat
	expect EACCES touch "$m/a.sh"
	expect EACCES touch "$m/a.bat"
	expect EACCES touch "$m/a.exe"
	expect EFBIG dd if=/dev/zero of="$m/f" bs=1K count=65 status=none
	expect EACCES mkdir "$m/hidden"
	grep -q deny_ext "$WORK/cfg.log" || fail "the config's log file is not written"
	cvfs_umount "$m" || fail "unmount"
}

echo "chuk-vfs-mount: $CVFS_MOUNT_BIN"
probe_sqlite
[ -n "$HAVE_SQLITE" ] || echo "(sqlite store not built: the sections that need pre-populated data are skipped)"

section bad_input
section blocked
section readonly_all
section file_size
section quota_bytes
section quota_files
section extensions
section depth_roots
section profiles

echo
[ "${#SKIPPED[@]}" = 0 ] || echo "skipped: ${SKIPPED[*]}"
if [ "${#FAILED[@]}" -gt 0 ]; then
	echo "FAIL: adversarial: ${#FAILED[@]} section(s) failed: ${FAILED[*]}" >&2
	exit 1
fi
echo "PASS: adversarial"
