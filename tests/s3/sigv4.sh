#!/bin/bash
# Every request the mount sends carries a SigV4 signature S3 would accept:
# a proxy (tests/lib/s3_proxy.py --sigcheck) recomputes each signature with
# botocore's signer from what it received (only the headers named in
# SignedHeaders, each of which must have been sent; the path and query
# decoded and encoded again as SigV4 wants) and answers 403
# SignatureDoesNotMatch when it differs.  The mount does every kind of
# request through it (mkdir, PUT, multipart, ranged GETs, listings past one
# page, copies for chmod and rename, DELETE, xattrs; names with spaces, '+',
# '~', '%', '=', '&' and UTF-8), with sync=close and with write-back, with a
# session token (which the proxy requires) and without; then the proxy must
# have counted no signature failure and the bytes must be exact.  (No copy
# of a key with '+', '%', '=' or '&': s3rver 3.7.1 decodes x-amz-copy-source
# wrongly ('%2B' as a space...) and answers 404.)
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$HERE/../lib/s3_proxy.sh"
s3_test sigv4
sp_require
s3_start
# what the proxy refused, on any failure
trap 'rc=$?; set +e; [ $rc = 0 ] || [ -z "$SP_PID" ] || sp_stat "chr(10).join(s[\"failures\"][:8])" >&2;
	cvfs_cleanup; s3_cleanup; rm -rf "$T"; exit $rc' EXIT
M=$T/m
head -c 6500000 /dev/urandom >"$T/big" # two parts (5 MiB is the smallest)
head -c 300000 /dev/urandom >"$T/mid"

# workload NAME: every kind of request under the directory NAME
workload() {
	local d=$M/$1 n i
	mkdir "$d" "$d/sub dir" "$d/odd ~ % = & é"
	cp "$T/big" "$d/big"          # multipart: 2 parts
	cp "$T/mid" "$d/sub dir/mid"  # one PUT
	for n in "a b" "plus+sign" "tilde~x" "pct%41" "eq=amp&q?" "uni-é-日本" "semi;colon,comma"; do
		printf '%s\n' "$n" >"$d/odd ~ % = & é/$n"
	done
	# past one listing page (1000 keys): a continuation token in the query
	mkdir "$d/many"
	for ((i = 0; i < 1100; i++)); do : >"$d/many/f$i"; done
	setfattr -n user.colour -v "dark  blue" "$d/sub dir/mid" # two spaces
	chmod 600 "$d/sub dir/mid"                                # a copy onto itself
	mv "$d/sub dir/mid" "$d/sub dir/moved ~ é"                # copy + delete
	echo two >"$d/sub dir/a b"
	mv "$d/sub dir/a b" "$d/sub dir/a  b"
	rm "$d/odd ~ % = & é/plus+sign"
	ln -s "target with space" "$d/link"
	s3_syncfs "$M"
}

# check NAME: read it all back through a fresh mount (listings, HEADs,
# ranged GETs of the big file)
check() {
	local d=$M/$1 n
	[ "$(find "$d/many" -type f | wc -l)" = 1100 ] || fail "$1: 1100 files listed"
	cmp "$T/big" "$d/big" || fail "$1: big read back"
	cmp "$T/mid" "$d/sub dir/moved ~ é" || fail "$1: renamed file read back"
	[ "$(getfattr --absolute-names --only-values -n user.colour "$d/sub dir/moved ~ é")" = "dark  blue" ] ||
		fail "$1: xattr"
	[ "$(stat -c %a "$d/sub dir/moved ~ é")" = 600 ] || fail "$1: mode after chmod"
	# ranged reads from the middle
	python3 - "$d/big" "$T/big" <<'PY' || fail "$1: ranged reads"
import sys
a, b = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
for off in (3000000, 1234567, 17, 2 ** 20 - 5):
    a.seek(off); b.seek(off)
    if a.read(70000) != b.read(70000):
        sys.exit("differs at %d" % off)
PY
	[ "$(cat "$d/sub dir/a  b")" = two ] || fail "$1: 'a  b' read back"
	for n in "a b" "tilde~x" "pct%41" "eq=amp&q?" "uni-é-日本" "semi;colon,comma"; do
		[ "$(cat "$d/odd ~ % = & é/$n")" = "$n" ] || fail "$1: '$n' read back"
	done
	[ ! -e "$d/odd ~ % = & é/plus+sign" ] || fail "$1: unlinked file still there"
	[ "$(readlink "$d/link")" = "target with space" ] || fail "$1: symlink"
	ls -l "$d" "$d/sub dir" >/dev/null
}

sigfails() {
	local n
	n=$(sp_stat "s['sigfail']")
	if [ "$n" != 0 ]; then
		sp_stat "'\n'.join(s['failures'][:5])" >&2
		fail "$1: $n requests with a signature S3 would refuse"
	fi
	echo "$1: $(sp_stat "s['requests']") requests, no signature failure"
}

sp_start --sigcheck --keys S3RVER:S3RVER
MP="-o store.multipart_threshold=1048576 -o store.multipart_part=1048576"

# 1. sync=close
# shellcheck disable=SC2086
s3_mount "$M" --endpoint-url "$SP_URL" -o store.sync=close $MP
workload close
cvfs_umount "$M"
s3_mount "$M" --endpoint-url "$SP_URL"
check close
cvfs_umount "$M"
sigfails "sync=close"

# 2. write-back (the default)
# shellcheck disable=SC2086
s3_mount "$M" --endpoint-url "$SP_URL" $MP
workload wb
cvfs_umount "$M"
s3_mount "$M" --endpoint-url "$SP_URL"
check wb
rm -r "$M/wb/many" # DELETEs from write-back
s3_syncfs "$M"
cvfs_umount "$M"
sigfails "write-back"
[ "$(sp_count DELETE '/wb/many/f')" -ge 1100 ] || fail "the DELETEs did not go through the proxy"

# 3. a session token: the proxy wants it, signed
sp_config '{"keys": ["S3RVER:S3RVER:tok/en+=="], "reset": true}'
AWS_SESSION_TOKEN='tok/en+==' s3_mount "$M" --endpoint-url "$SP_URL" $MP
check close
cp "$T/big" "$M/big-tok"
echo hi >"$M/small-tok"
s3_syncfs "$M"
cvfs_umount "$M"
sigfails "session token"
n=$(sp_count PUT '/big-tok'); [ "$n" -ge 2 ] || fail "the multipart upload with a token: $n PUTs"
# and without the token, the proxy refuses (so it did check it)
expect_refused() {
	local rc=0
	timeout 60 "$CVFS_MOUNT_BIN" -f -m "$M" -b s3 --bucket "$S3_BUCKET" --endpoint-url "$SP_URL" \
		>"$T/out" 2>&1 || rc=$?
	[ "$rc" != 0 ] || { cvfs_umount "$M" || true; fail "mounted without the session token"; }
	grep -q InvalidToken "$T/out" || fail "no InvalidToken in: $(cat "$T/out")"
}
expect_refused
echo PASS
