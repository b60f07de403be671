#!/usr/bin/env bash
# The project's own quick benchmark (not part of the tests): builds, then runs
# bench/fsbench (create, stat, 4 KiB files, rename, unlink, sequential write
# and cold read) on tmpfs and on chuk-vfs mounts of each store asked for, in
# interleaved rounds, and prints the medians and each store's ratio to tmpfs.
# Needs root (mounts, drop_caches).  Servers (redis-server, s3rver) are started
# on private sockets/ports in a temp dir and stopped at the end.
#
#   scripts/bench.sh [--stores memory,sqlite,redis,s3] [--rounds R] [--n N] [--seq-mb MB]
#                    [-- extra chuk-vfs-mount args]
#
# The machine must be otherwise quiet: only ratios from one run mean anything.
# For the full comparison with other file systems (fio, git, npm, tsc) use the
# harness in ../shared/bench (see HACKING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
stores=memory rounds=3 n=2000 seq_mb=256 extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--stores) stores=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--n) n=$2; shift 2 ;;
	--seq-mb) seq_mb=$2; shift 2 ;;
	--) shift; extra=("$@"); break ;;
	*) echo "usage: $0 [--stores memory,sqlite,redis,s3] [--rounds R] [--n N] [--seq-mb MB] [-- mount args]" >&2
		exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (mounts, drop_caches)" >&2; exit 2; }
scripts/deps.sh >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
export CVFS_MOUNT_BIN=$PWD/build/chuk-vfs-mount
FSBENCH=$PWD/build/fsbench
source tests/lib/mount.sh
source tests/lib/redis.sh
W=$(mktemp -d /tmp/cvfs-bench.XXXXXX)
cleanup() {
	set +e
	cvfs_cleanup
	redis_stop_all
	declare -F s3_cleanup >/dev/null && s3_cleanup
	umount "$W/tmpfs" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/tmpfs"
mount -t tmpfs -o size=8g tmpfs "$W/tmpfs"
mounted=(tmpfs)
IFS=, read -ra want <<<"$stores"
for s in "${want[@]}"; do
	case $s in
	memory) cvfs_mount "$W/memory" "${extra[@]}" ;;
	sqlite) cvfs_mount "$W/sqlite" -b sqlite --db-path "$W/bench.db" "${extra[@]}" ;;
	redis)
		redis_available || { echo "bench.sh: redis-server is not installed" >&2; exit 1; }
		redis_start "$W/redis-srv" >/dev/null
		cvfs_mount "$W/redis" -b redis --redis-url "$REDIS_URL" "${extra[@]}" ;;
	s3)
		source tests/lib/s3.sh
		s3_require
		s3_start >/dev/null
		s3_mount "$W/s3" "${extra[@]}" ;;
	*) echo "bench.sh: unknown store '$s'" >&2; exit 2 ;;
	esac
	mounted+=("$s")
done

echo "fsbench: N=$n files, ${seq_mb} MiB sequential, $rounds rounds, interleaved: ${mounted[*]}"
for ((r = 1; r <= rounds; r++)); do
	for s in "${mounted[@]}"; do
		d=$W/$s/bench-$r
		mkdir "$d"
		if ! "$FSBENCH" "$d" "$n" "$seq_mb" >"$W/out-$s-$r" 2>"$W/err-$s-$r"; then
			echo "bench.sh: fsbench failed on $s (round $r):" >&2
			cat "$W/err-$s-$r" >&2
			exit 1
		fi
		rm -rf "$d"
		echo "  round $r $s: $(awk '{printf "%s %s  ", $1, $2}' "$W/out-$s-$r")"
	done
done

python3 - "$W" "$rounds" "${mounted[@]}" <<'PY'
import statistics, sys
w, rounds, labels = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
vals, units, phases = {}, {}, []
for s in labels:
    for r in range(1, rounds + 1):
        for line in open(f"{w}/out-{s}-{r}"):
            ph, v, u = line.split()
            if ph not in phases:
                phases.append(ph)
            vals.setdefault((s, ph), []).append(float(v))
            units[ph] = u
print()
head = ["phase", "unit"] + labels + [f"{s}/tmpfs" for s in labels[1:]]
print("  ".join(f"{h:>12}" for h in head))
for ph in phases:
    med = [statistics.median(vals[(s, ph)]) for s in labels]
    row = [ph, units[ph]] + [f"{m:.1f}" for m in med] + [f"{m / med[0]:.3f}" for m in med[1:]]
    print("  ".join(f"{c:>12}" for c in row))
PY
