#!/bin/bash
# The request loop's leader and followers (src/mount/fuse_linux.c): one
# worker reads the kernel's requests, and hands that role on when the request
# it serves waits on the network.  A read held 8 s by a proxy must not hold
# up the other requests: stat, create, write, read and listing of other
# files all finish while that read is still waiting, with 2 workers (one
# follower) and with the default 8.  The daemon's status counts the handoffs.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test handoff aws
s3_start
B=s3://$S3_BUCKET
M=$T/m
HELD=$T/held
head -c 3000000 /dev/urandom >"$T/slow"
echo small >"$T/ok"
s3_aws s3 cp --quiet "$T/slow" "$B/slow.bin"
s3_aws s3 cp --quiet "$T/ok" "$B/ok.txt"

python3 "$HERE/../lib/s3_delay.py" "$T/port" "$S3_URL" GET 'slow\.bin' 8 "$HELD" &
DPID=$!
trap 'rc=$?; set +e; cvfs_cleanup; kill $DPID 2>/dev/null; wait $DPID 2>/dev/null; s3_cleanup; rm -rf "$T"; exit $rc' EXIT
for i in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "the delaying proxy did not start"
PURL=http://127.0.0.1:$(cat "$T/port")

status_of() { python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.chuk-vfs.status").decode())' "$1"; }

for opts in ${HANDOFF_OPTS:-threads=2 ""}; do
	cvfs_mount "$M" -b s3 --bucket "$S3_BUCKET" --endpoint-url "$PURL" ${opts:+-o $opts}
	cmp "$T/ok" "$M/ok.txt" || fail "ok.txt ($opts)"
	stat "$M/slow.bin" >/dev/null
	cat "$M/slow.bin" >"$T/got" &
	cpid=$!
	for i in $(seq 100); do [ -e "$HELD" ] && break; sleep 0.1; done
	[ -e "$HELD" ] || fail "the read of slow.bin never reached the proxy ($opts)"
	# everything else goes on meanwhile
	timeout 6 stat "$M/ok.txt" >/dev/null || fail "stat waited for the held read ($opts)"
	timeout 6 sh -c "echo new >'$M/new-$i.txt'" || fail "create waited ($opts)"
	[ "$(timeout 6 cat "$M/new-$i.txt")" = new ] || fail "read back waited ($opts)"
	timeout 6 ls "$M" >/dev/null || fail "listing waited ($opts)"
	timeout 6 cat "$M/ok.txt" >/dev/null || fail "read of ok.txt waited ($opts)"
	kill -0 "$cpid" 2>/dev/null || fail "the held read was over before the others were done ($opts)"
	[ -e "$HELD" ] || fail "the proxy let the read go early ($opts)"
	wait "$cpid" || fail "the held read failed ($opts)"
	cmp "$T/slow" "$T/got" || fail "slow.bin read wrong ($opts)"
	h=$(status_of "$M" | python3 -c 'import json,sys; print(json.load(sys.stdin)["handoffs"])')
	[ "$h" -ge 1 ] || fail "no handoff counted ($opts)"
	cvfs_umount "$M"
	echo "ok: other requests served while a read waited 8 s ($opts; $h handoffs)"
done
echo "PASS"
