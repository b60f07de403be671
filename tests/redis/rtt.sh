#!/bin/bash
# Round trips to Redis per file operation, counted by the daemon itself
# (CVFS_REDIS_STATS=1 prints them at unmount).  Each figure is the difference
# between two fresh daemons on a fresh filesystem: one that ran the setup and
# N operations, one that ran the setup alone; divided by N.  "stat" runs on a
# daemon that did not make the files (its caches and its kernel's are cold).
#
# The limits are the store's promise (docs/redis.md): one round trip per
# operation, plus the FORGET of a removed inode where the kernel still held it.
# RTT_REPORT_ONLY=1 prints the table without checking it.
set -euo pipefail
source "$(dirname "$0")/common.sh"

command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
OPS=(python3 "$CVFS_SRCDIR/tests/redis/ops.py")
N=${RTT_N:-200}
export CVFS_REDIS_STATS=1

redis_start "$WORK/r"
M=$WORK/m
PFX_N=0

# rt PREFIX KIND...: a daemon on PREFIX runs N of each KIND; RT = its round trips
RT=0
rt() {
	local pfx=$1 k
	shift
	cvfs_mount "$M" -b redis --redis-url "$REDIS_URL" --redis-prefix "$pfx" >&2
	for k in "$@"; do
		"${OPS[@]}" "$k" "$M" "$N" || fail "ops.py $k on $pfx"
	done
	cvfs_umount "$M" >&2 || fail "unmount after $*"
	local line
	line=$(grep -o '[0-9]* round trips' "$M.log" | tail -n 1) || fail "no stats line in $M.log"
	RT=${line%% *}
}

# PFX: a new, unused prefix
fresh() {
	PFX_N=$((PFX_N + 1))
	PFX="rtt$PFX_N:"
}

# per_op NAME SETUP MEASURED...: GOT[NAME] = round trips of MEASURED beyond
# SETUP, per operation, in hundredths
declare -A GOT
per_op() {
	local name=$1 setup=$2 a
	shift 2
	fresh
	# shellcheck disable=SC2086
	rt "$PFX" $setup
	a=$RT
	fresh
	# shellcheck disable=SC2086
	rt "$PFX" $setup "$@"
	GOT[$name]=$(((RT - a) * 100 / N))
}

fmt() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }

per_op create "" create
per_op write4k "create" append4k
per_op create+write4k "" write4k
per_op unlink "create" unlink
per_op rename "create" rename
per_op mkdir "" mkdir
per_op rmdir "mkdir" rmdir
per_op chmod "create" chmod
# stat on a daemon that did not make the files
fresh
rt "$PFX" create
rt "$PFX"
a=$RT
rt "$PFX" stat
GOT[stat]=$(((RT - a) * 100 / N))

# limits, in hundredths of a round trip per operation (N=200: 0.1 is 20
# round trips of slack for id batches, the root's first read, ...)
declare -A MAX=(
	[create]=110 [write4k]=110 [create+write4k]=210 [unlink]=110 [rename]=110
	[mkdir]=110 [rmdir]=110 [chmod]=110 [stat]=110
)
bad=0
for k in create stat write4k create+write4k unlink rename mkdir rmdir chmod; do
	note "$(printf '%-16s %s round trips per operation (limit %s)' "$k" "$(fmt "${GOT[$k]}")" "$(fmt "${MAX[$k]}")")"
	if [ "${GOT[$k]}" -gt "${MAX[$k]}" ]; then
		echo "too many round trips: $k" >&2
		bad=1
	fi
done
if [ "${RTT_REPORT_ONLY:-0}" = 1 ]; then
	exit 0
fi
[ "$bad" = 0 ] || fail "round trips per operation over the limits"
ok "round trips per operation within the limits"
