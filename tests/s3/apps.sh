#!/bin/bash
# Real tools on an S3 mount (write-back, the default), the use the store is
# for: cp -a, tar both ways, rsync (again after changes, with --delete), git
# (commit, fsck, clone back out), cargo (a build whose sources and target
# directory live on the mount). Every tree is compared with its source: bytes,
# names, types, modes, owners, sizes, mtimes (to the second: what the
# metadata keeps), symlink targets. Then a new mount with an empty cache must
# show the same trees from S3 alone, and one object is read back with awscli.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test apps aws
for t in rsync git tar; do command -v $t >/dev/null || fail "$t is not installed"; done
s3_start
M=$T/m
SRC=$T/src

listing() { # DIR: one sorted line per entry
	(cd "$1" && find . -mindepth 1 \( -type d -printf '%p d %m %U:%G - %TY%Tm%Td%TH%TM%TS\n' \) -o \
		\( -printf '%p %y %m %U:%G %s %TY%Tm%Td%TH%TM%TS %l\n' \)) |
		sed -E 's/([0-9]{14})\.[0-9]+/\1/' | LC_ALL=C sort
}
same_tree() { # A B WHAT
	diff -r --no-dereference "$1" "$2" >"$T/diff.out" 2>&1 ||
		fail "$3: contents differ: $(head -10 "$T/diff.out")"
	listing "$1" >"$T/l.a"
	listing "$2" >"$T/l.b"
	[ -s "$T/l.a" ] || fail "$3: empty listing of $1"
	diff -u "$T/l.a" "$T/l.b" >"$T/l.diff" ||
		fail "$3: names, modes, owners, sizes or mtimes differ: $(head -20 "$T/l.diff")"
	echo "    $3: $(wc -l <"$T/l.a") entries identical"
}

# the source: a header tree plus odd files
mkdir -p "$SRC"
cp -a /usr/include/linux "$SRC/linux"
e=$SRC/extra
mkdir -p "$e/sub/deeper" "$e/empty-dir"
chmod 750 "$e/sub"
echo hello >"$e/hello"
ln -s hello "$e/hello.symlink"
ln -s /nonexistent/target "$e/dangling"
ln -s ../../hello "$e/sub/deeper/up"
: >"$e/empty"
head -c 3000000 /dev/urandom >"$e/random.bin"
head -c 9000000 /dev/urandom >"$e/big.bin"
printf '#!/bin/sh\necho run\n' >"$e/script.sh"
chmod 755 "$e/script.sh"
chmod 600 "$e/hello"
echo "spaces and ünïcödé" >"$e/name with spaces ünï.txt"
touch -d '2001-02-03 04:05:06' "$e/empty"

s3_mount "$M"

echo "== cp -a"
cp -a "$SRC" "$M/cp"
same_tree "$SRC" "$M/cp" "cp -a onto the mount"

echo "== tar"
mkdir "$M/tar" "$T/untar"
tar -C "$SRC" -cf - . | tar -C "$M/tar" -xpf -
same_tree "$SRC" "$M/tar" "tar x onto the mount"
tar -C "$M/tar" -cf - . | tar -C "$T/untar" -xpf -
same_tree "$SRC" "$T/untar" "tar c from the mount"

echo "== rsync"
rsync -a "$SRC/" "$M/rs/"
same_tree "$SRC" "$M/rs" "rsync -a"
echo changed >>"$SRC/extra/hello"
rm "$SRC/extra/random.bin"
head -c 100000 /dev/urandom >"$SRC/extra/sub/new.bin"
rsync -a --delete "$SRC/" "$M/rs/"
same_tree "$SRC" "$M/rs" "rsync -a --delete after changes"

echo "== git"
git config --global user.email t@example.com
git config --global user.name t
git config --global init.defaultBranch main
git config --global --add safe.directory '*'
mkdir "$M/repo"
cp -a "$SRC/." "$M/repo/"
(cd "$M/repo" && git init -q && git add -A && git commit -qm first)
(cd "$M/repo" && echo more >>extra/hello && git commit -qam second)
(cd "$M/repo" && git fsck --strict) >/dev/null 2>&1 || fail "git fsck on the mount"
[ -z "$(cd "$M/repo" && git status --porcelain)" ] || fail "git status not clean"
[ "$(cd "$M/repo" && git rev-list --count HEAD)" = 2 ] || fail "git history"
git clone -q "$M/repo" "$T/clone"
[ "$(cd "$T/clone" && git ls-files | wc -l)" = "$(cd "$M/repo" && git ls-files | wc -l)" ] || fail "clone"
diff -r --no-dereference -x .git -x empty-dir "$M/repo" "$T/clone" >"$T/diff.out" 2>&1 || fail "the clone differs from the work tree on the mount: $(head -5 "$T/diff.out")"
echo "    git: 2 commits, fsck clean, clone identical"

if command -v cargo >/dev/null; then
	echo "== cargo"
	(cd "$M" && cargo new -q --vcs none hello)
	cat >"$M/hello/src/main.rs" <<'RS'
mod util;
fn main() {
    println!("{} {}", util::greet("s3"), util::sum(&[1, 2, 3, 4]));
}
RS
	cat >"$M/hello/src/util.rs" <<'RS'
pub fn greet(who: &str) -> String { format!("hello {}", who) }
pub fn sum(v: &[i64]) -> i64 { v.iter().sum() }
RS
	(cd "$M/hello" && cargo build -q --offline) || fail "cargo build on the mount"
	out=$("$M/hello/target/debug/hello")
	[ "$out" = "hello s3 10" ] || fail "the built program printed '$out'"
	(cd "$M/hello" && touch src/util.rs && cargo build -q --offline) || fail "cargo rebuild"
	echo "    cargo: built, ran, rebuilt"
else
	echo "SKIP part: cargo is not installed"
fi

echo "== a new mount, empty cache: everything from S3"
s3_syncfs "$M"
cvfs_umount "$M"
s3_mount "$M"
same_tree "$T/untar" "$M/tar" "tar tree after remount"
same_tree "$SRC" "$M/rs" "rsync tree after remount"
(cd "$M/repo" && git fsck --strict) >/dev/null 2>&1 || fail "git fsck after remount"
[ -z "$(cd "$M/repo" && git status --porcelain)" ] || fail "git status after remount: $(cd "$M/repo" && git status --porcelain | head)"
if [ -x "$M/hello/target/debug/hello" ]; then
	[ "$("$M/hello/target/debug/hello")" = "hello s3 10" ] || fail "the program after remount"
fi
s3_aws s3 cp --quiet "s3://$S3_BUCKET/cp/extra/big.bin" "$T/big.back"
cmp "$T/big.back" "$SRC/extra/big.bin" || fail "big.bin through awscli"
cvfs_umount "$M"
echo "PASS"
