#!/bin/bash
# The request loop's leader and followers (src/mount/fuse_linux.c): one
# worker reads the kernel's requests, and hands that role on when the request
# it serves waits on the network.  A read held 8 s by a proxy must not hold
# up the other requests: stat, create, write, read and listing of other
# files all finish while that read is still waiting, with 2 workers (one
# follower) and with the default 8.  The daemon's status counts the handoffs.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$HERE/../lib/s3_proxy.sh"
s3_test handoff aws
sp_require
s3_start
B=s3://$S3_BUCKET
M=$T/m
head -c 3000000 /dev/urandom >"$T/slow"
echo small >"$T/ok"
s3_aws s3 cp --quiet "$T/slow" "$B/slow.bin"
s3_aws s3 cp --quiet "$T/ok" "$B/ok.txt"

# every GET of slow.bin is held 8 s (tests/lib/s3_proxy.py, "delay")
sp_start
sp_config '{"rules": [{"method": "GET", "path": "slow\\.bin", "action": "delay", "seconds": 8}]}'
held() { sp_stat "s['held']"; }

for opts in ${HANDOFF_OPTS:-threads=2 ""}; do
	cvfs_mount "$M" -b s3 --bucket "$S3_BUCKET" --endpoint-url "$SP_URL" ${opts:+-o $opts}
	cmp "$T/ok" "$M/ok.txt" || fail "ok.txt ($opts)"
	stat "$M/slow.bin" >/dev/null
	cat "$M/slow.bin" >"$T/got" &
	cpid=$!
	for i in $(seq 100); do [ "$(held)" -ge 1 ] && break; sleep 0.1; done
	[ "$(held)" -ge 1 ] || fail "the read of slow.bin never reached the proxy ($opts)"
	# everything else goes on meanwhile
	timeout 6 stat "$M/ok.txt" >/dev/null || fail "stat waited for the held read ($opts)"
	timeout 6 sh -c "echo new >'$M/new-$i.txt'" || fail "create waited ($opts)"
	[ "$(timeout 6 cat "$M/new-$i.txt")" = new ] || fail "read back waited ($opts)"
	timeout 6 ls "$M" >/dev/null || fail "listing waited ($opts)"
	timeout 6 cat "$M/ok.txt" >/dev/null || fail "read of ok.txt waited ($opts)"
	kill -0 "$cpid" 2>/dev/null || fail "the held read was over before the others were done ($opts)"
	[ "$(held)" -ge 1 ] || fail "the proxy let the read go early ($opts)"
	wait "$cpid" || fail "the held read failed ($opts)"
	cmp "$T/slow" "$T/got" || fail "slow.bin read wrong ($opts)"
	h=$(cvfs_status_get "$M" handoffs)
	[ "$h" -ge 1 ] || fail "no handoff counted ($opts)"
	cvfs_umount "$M"
	echo "ok: other requests served while a read waited 8 s ($opts; $h handoffs)"
done
echo "PASS"
