#!/usr/bin/env bash
# The S3 store against s3fs and rclone mount (--vfs-cache-mode writes), each
# on its own local s3rver, in one sitting, through the shared benchmark
# harness (../shared/bench: run.sh, peers.sh, report.py). Rounds interleave
# the three, so ratios come from the same conditions. Not a test.
#
#   bench/s3_peers.sh [--rounds N] [--s3fs-rounds N] [--only md,small,tree,seq] [--opts -o,...]
#
# Needs root, s3fs, rclone, fio, node/npm (s3rver is installed as the tests
# do), and a built tree (build/chuk-vfs-mount). Prints report.py's table of
# medians (chuk's label: s3-chuk).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HARNESS=${BENCH_HARNESS:-$ROOT/../shared/bench}
rounds=3 s3fs_rounds=1 only=md,small,tree,seq opts=""
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--s3fs-rounds) s3fs_rounds=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--opts) opts=$2; shift 2 ;;
	*) echo "usage: $0 [--rounds N] [--s3fs-rounds N] [--only LIST] [--opts OPTS]" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "needs root (drop_caches, mounts)" >&2; exit 2; }
for t in s3fs rclone fio node; do command -v $t >/dev/null || { echo "$t is missing" >&2; exit 2; }; done
[ -x build/chuk-vfs-mount ] || { echo "build first: meson setup build && ninja -C build" >&2; exit 2; }
[ -x "$HARNESS/run.sh" ] || { echo "no benchmark harness at $HARNESS" >&2; exit 2; }

# the harness writes results next to itself: work on a copy
H=$(mktemp -d /tmp/chuk-s3-peers.XXXXXX)
cp -a "$HARNESS/." "$H/"
rm -rf "$H/results"
NPM=${CVFS_NPM_DIR:-/var/tmp/chuk-vfs-npm}
S3RVER=$NPM/node_modules/s3rver/bin/s3rver.js
if [ ! -f "$S3RVER" ]; then
	mkdir -p "$NPM" && (cd "$NPM" && npm install --no-audit --no-fund s3rver@3.7.1 >/dev/null 2>&1) ||
		{ echo "cannot install s3rver" >&2; exit 2; }
fi
export S3RVER NODE_OPTIONS=--openssl-legacy-provider
MNT=$H/chuk-mnt DATA=$H/chuk-s3 CACHE=$H/chuk-cache
SPID=""
cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
}
trap cleanup EXIT

chuk_round() {
	rm -rf "$DATA" "$CACHE"
	mkdir -p "$DATA" "$MNT" "$CACHE"
	local port=$((20000 + RANDOM % 30000))
	node "$S3RVER" -d "$DATA" -a 127.0.0.1 -p $port --silent --configure-bucket bench >/dev/null 2>&1 &
	SPID=$!
	for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
	AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER build/chuk-vfs-mount -m "$MNT" -b s3 \
		--bucket bench --endpoint-url http://127.0.0.1:$port -o store.cache_dir=$CACHE${opts:+,$opts} ||
		{ echo "chuk mount failed" >&2; return 1; }
	"$H/run.sh" "$MNT" s3-chuk --quick --only "$only"
	fusermount3 -u "$MNT"
	kill "$SPID"; wait "$SPID" 2>/dev/null; SPID=""
}

for r in $(seq "$rounds"); do
	echo "#### round $r/$rounds"
	peers="rclone-s3rver-writes"
	[ "$r" -le "$s3fs_rounds" ] && peers="s3fs-s3rver $peers"
	"$H/peers.sh" --quick --only "$only" $peers
	chuk_round
done
echo
echo "#### medians (report.py --mode quick --last $rounds; s3fs: --last $s3fs_rounds)"
"$H/report.py" --mode quick --base s3fs-s3rver --last "$rounds" s3fs-s3rver rclone-s3rver-writes s3-chuk
echo "(raw rows: $H/results)"
