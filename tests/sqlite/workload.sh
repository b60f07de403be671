#!/bin/bash
# A random workload applied to the mount and to a plain directory alike, then
# `diff -r`, before and after a remount; a kernel header tree copied with
# cp -a; git on top of it.
set -euo pipefail
. "$(dirname "$0")/common.sh"
sq_init work
M=$T/mnt DB=$T/fs.db REF=$T/ref
mkdir "$REF"
sq_mount "$M" "$DB"

SRC=/usr/include/linux
[ -d "$SRC" ] || SRC=/usr/include
cp -a "$SRC" "$M/tree"
cp -a "$SRC" "$REF/tree"

RANDOM=4242
# the same command in both trees; a failure must fail alike (diff -r tells)
both() {
	(cd "$M" && eval "$1") > /dev/null 2>&1 || true
	(cd "$REF" && eval "$1") > /dev/null 2>&1 || true
}
for i in $(seq 1 600); do
	f="w/d$((RANDOM % 7))/f$((RANDOM % 40))"
	g="w/d$((RANDOM % 7))/f$((RANDOM % 40))"
	off=$(( (RANDOM * 32768 + RANDOM) % 400000 ))
	n=$(( RANDOM % 70000 + 1 ))
	seed=$RANDOM
	case $((RANDOM % 9)) in
	0|1) both "mkdir -p \$(dirname $f) && head -c $n /dev/zero | tr '\\0' 'a$((seed % 26))' > $f" ;;
	2|3) head -c $n /dev/urandom > "$T/data"
	   both "mkdir -p \$(dirname $f) && dd if=$T/data of=$f bs=4096 seek=$off oflag=seek_bytes conv=notrunc status=none" ;;
	4) both "[ -f $f ] && truncate -s $off $f || true" ;;
	5) both "[ -f $f ] && mkdir -p \$(dirname $g) && mv -f $f $g || true" ;;
	6) both "rm -f $f" ;;
	7) both "[ -f $f ] && mkdir -p \$(dirname $g) && [ ! -e $g ] && ln $f $g || true" ;;
	8) both "[ -f $f ] && fallocate -p -o $off -l $n $f 2>/dev/null || true" ;;
	esac
done
diff -r "$REF" "$M" || fail "the mount differs from the plain directory"
echo "ok: $(find "$M" | wc -l) names identical to the plain directory"
if command -v git > /dev/null; then
	(cd "$M/tree" && git init -q && git add -A && git -c user.email=t@t -c user.name=t commit -qm tree &&
		git fsck --strict --no-progress 2>/dev/null && [ -z "$(git status --porcelain)" ]) || fail "git on the mount"
	(cd "$REF/tree" && git init -q && git add -A && git -c user.email=t@t -c user.name=t commit -qm tree)
	[ "$(cd "$M/tree" && git rev-parse HEAD^{tree})" = "$(cd "$REF/tree" && git rev-parse HEAD^{tree})" ] ||
		fail "git tree ids differ"
	echo "ok: git init/add/commit/fsck"
fi
cvfs_umount "$M" || fail "unmount"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
sq_mount "$M" "$DB"
diff -r --exclude=.git "$REF" "$M" || fail "the mount differs after a remount"
if [ -d "$M/tree/.git" ]; then
	(cd "$M/tree" && git fsck --strict --no-progress 2>/dev/null && [ -z "$(git status --porcelain)" ]) ||
		fail "git repository after a remount"
fi
cvfs_umount "$M" || fail "unmount 2"
echo "workload: ok ($(du -h "$DB" | cut -f1) database)"
