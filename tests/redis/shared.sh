#!/bin/bash
# Two daemons on one Redis and prefix see one filesystem.  (no_writeback is
# spelled out where it matters: with the kernel's writeback cache the kernel
# keeps its own idea of a file's size, and a file grown on A reads short on B.)  With
# cache_timeout=0 a change on A shows on B at once; with the default cache
# (1 s for shared stores) it shows within the timeout, sooner once the
# change feed invalidates B's kernel caches (polled for at most 1 + 1.5 s).
set -euo pipefail
source "$(dirname "$0")/common.sh"

redis_start "$WORK/r"

# check_pair A B WAIT: changes on A, seen on B within WAIT seconds (0: at once)
check_pair() {
	local A=$1 B=$2 wait=$3 tag=$4
	local t0
	see() { # see SECS CMD...: at once when SECS is 0, else poll
		local s=$1
		shift
		if [ "$s" = 0 ]; then "$@" >/dev/null 2>&1; else poll "$s" "$@"; fi
	}
	content_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
	listed() { ls "$1" 2>/dev/null | grep -qx "$2"; }
	not_listed() { ! ls "$1" 2>/dev/null | grep -qx "$2"; }
	gone() { [ ! -e "$1" ]; }

	mkdir "$A/$tag"
	see "$wait" test -d "$B/$tag" || fail "$tag: mkdir on A not seen on B"
	# prime B's caches, so that a stale cache would show
	ls "$B/$tag" >/dev/null
	echo one >"$A/$tag/f"
	t0=$(now_ms)
	see "$wait" content_is "$B/$tag/f" one || fail "$tag: new file not seen on B"
	see "$wait" listed "$B/$tag" f || fail "$tag: new file not listed on B"
	note "$tag: create seen after $(($(now_ms) - t0)) ms"
	cat "$B/$tag/f" >/dev/null
	echo two-two >"$A/$tag/f"
	t0=$(now_ms)
	see "$wait" content_is "$B/$tag/f" two-two || fail "$tag: rewrite not seen on B (B has '$(cat "$B/$tag/f")')"
	note "$tag: rewrite seen after $(($(now_ms) - t0)) ms"
	echo more >>"$A/$tag/f"
	see "$wait" content_is "$B/$tag/f" "$(printf 'two-two\nmore')" || fail "$tag: append not seen on B"
	mv "$A/$tag/f" "$A/$tag/g"
	t0=$(now_ms)
	see "$wait" gone "$B/$tag/f" || fail "$tag: renamed-away name still on B"
	see "$wait" content_is "$B/$tag/g" "$(printf 'two-two\nmore')" || fail "$tag: renamed file not on B"
	see "$wait" not_listed "$B/$tag" f || fail "$tag: old name still listed on B"
	note "$tag: rename seen after $(($(now_ms) - t0)) ms"
	rm "$A/$tag/g"
	see "$wait" gone "$B/$tag/g" || fail "$tag: deleted file still on B"
	see "$wait" not_listed "$B/$tag" g || fail "$tag: deleted file still listed on B"
	# and the other way round
	echo back >"$B/$tag/h"
	see "$wait" content_is "$A/$tag/h" back || fail "$tag: file made on B not seen on A"
	ln -s h "$B/$tag/s"
	see "$wait" content_is "$A/$tag/s" back || fail "$tag: symlink made on B not seen on A"
	rm "$B/$tag/h" "$B/$tag/s"
	see "$wait" gone "$A/$tag/h" || fail "$tag: removal on B not seen on A"
	rmdir "$B/$tag"
	see "$wait" gone "$A/$tag" || fail "$tag: rmdir on B not seen on A"
	ok "$tag: create, rewrite, append, rename, unlink, symlink, rmdir seen on the other mount"
}

# 1. no kernel cache: at once
cvfs_mount "$WORK/a0" -b redis --redis-url "$REDIS_URL" --redis-prefix sh: -o cache_timeout=0,no_writeback
cvfs_mount "$WORK/b0" -b redis --redis-url "$REDIS_URL" --redis-prefix sh: -o cache_timeout=0,no_writeback
check_pair "$WORK/a0" "$WORK/b0" 0 nocache

# concurrent writers on both mounts in one directory: optimistic transactions retry
mkdir "$WORK/a0/both"
pids=()
for side in a0 b0; do
	(for i in $(seq 1 150); do echo "$side $i" >"$WORK/$side/both/$side-$i" || exit 1; done) &
	pids+=($!)
	EXTRA_CLEANUP+=("kill $!")
done
for p in "${pids[@]}"; do
	wait "$p" || fail "a writer failed"
done
[ "$(ls "$WORK/a0/both" | wc -l)" = 300 ] || fail "concurrent creates from two mounts: $(ls "$WORK/a0/both" | wc -l) of 300"
[ "$(ls "$WORK/b0/both" | wc -l)" = 300 ] || fail "concurrent creates seen from B: $(ls "$WORK/b0/both" | wc -l) of 300"
[ "$(cat "$WORK/b0/both/a0-77")" = "a0 77" ] || fail "content of a concurrent create"
[ "$(stat -c %h "$WORK/a0/both")" = 2 ] || fail "link count of the shared directory"
rm -rf "$WORK/a0/both"
ok "two mounts creating 300 files in one directory at once: all there, both sides"

# 2. the kernel's cache on (1 s for a shared store): within the timeout + 1.5 s
cvfs_mount "$WORK/a1" -b redis --redis-url "$REDIS_URL" --redis-prefix sh: -o no_writeback
cvfs_mount "$WORK/b1" -b redis --redis-url "$REDIS_URL" --redis-prefix sh: -o no_writeback
check_pair "$WORK/a1" "$WORK/b1" 3 cached

# 3. all defaults (the mount leaves the kernel's writeback cache off unless
# asked: with it the kernel keeps its own size for a file and never takes the
# one another client wrote).
cvfs_mount "$WORK/a2" -b redis --redis-url "$REDIS_URL" --redis-prefix sh:
cvfs_mount "$WORK/b2" -b redis --redis-url "$REDIS_URL" --redis-prefix sh:
check_pair "$WORK/a2" "$WORK/b2" 3 defaults

for d in a0 b0 a1 b1 a2 b2; do
	cvfs_umount "$WORK/$d" || fail "unmount $d"
done
echo PASS
