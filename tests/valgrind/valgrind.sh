#!/bin/bash
# The daemon under valgrind (memcheck): a short real workload on the memory
# and SQLite stores; any invalid access, uninitialised use or definite leak
# fails.  Not in a sanitizer build (valgrind cannot run those binaries).
set -euo pipefail
[ "${CVFS_SANITIZED:-0}" = 1 ] && { echo "skip: sanitizer build"; exit 77; }
command -v valgrind >/dev/null || { echo "skip: valgrind not installed"; exit 77; }
. "$CVFS_SRCDIR/tests/lib/mount.sh"
T=$(mktemp -d /tmp/cvfs-valgrind.XXXXXX)
trap 'cvfs_cleanup; rm -rf "$T"' EXIT
REAL_BIN=$CVFS_MOUNT_BIN
# cvfs_mount runs $CVFS_MOUNT_BIN: a wrapper puts valgrind in front.
cat > "$T/vg" <<WRAP
#!/bin/sh
exec valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
	--trace-children=no --log-file="$T/vg-%p.log" "$REAL_BIN" "\$@"
WRAP
chmod +x "$T/vg"
CVFS_MOUNT_BIN=$T/vg

workload() { # DIR
	local d=$1
	mkdir -p "$d/a/b/c"
	cp -r /usr/include/linux/netfilter "$d/a/b/"
	echo hello > "$d/a/f"
	ln "$d/a/f" "$d/a/h"
	ln -s f "$d/a/s"
	setfattr -n user.k -v v "$d/a/f"
	getfattr -d "$d/a/f" >/dev/null
	mv "$d/a/b" "$d/a/b2"
	truncate -s 100000 "$d/a/f"
	dd if=/dev/urandom of="$d/big" bs=64k count=40 status=none
	exec 7<"$d/a/h"; rm "$d/a/h" "$d/a/f"; cat <&7 >/dev/null; exec 7<&-
	diff -r /usr/include/linux/netfilter "$d/a/b2/netfilter"
	ls -lR "$d" >/dev/null
	rm -rf "$d/a"
	getfattr -n user.chuk-vfs.status "$d" >/dev/null
}

rc=0
for store in memory sqlite; do
	M=$T/m-$store
	args=(-b "$store")
	[ "$store" = sqlite ] && args+=(--db-path "$T/fs.db")
	if ! cvfs_mount "$M" "${args[@]}"; then
		echo "FAIL: $store: no mount under valgrind"
		rc=1
		continue
	fi
	workload "$M" || { echo "FAIL: $store: workload"; rc=1; }
	if ! cvfs_umount "$M"; then
		echo "FAIL: $store: valgrind reported errors:"
		cat "$T"/vg-*.log
		rc=1
	else
		echo "ok: $store: valgrind clean"
	fi
	rm -f "$T"/vg-*.log
done
exit $rc
