#!/usr/bin/env bash
# Listings are cached for the mount's cache timeout (-o cache_timeout, 1 s by
# default on S3) unless store.list_ttl says otherwise: an object another tool
# (aws s3 cp) adds shows within that time (plus slack), not the old fixed
# 5 s; our own changes show in the listing at once.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test listing aws
s3_start
M=$T/m
echo new >"$T/new"

# a PUT of d/$1 without awscli (s3rver takes unsigned requests), which
# starts in milliseconds: the timings below count from a listing fetched
# just before it
put_fast() {
	python3 - "$S3_URL/$S3_BUCKET/d/$1" <<'PY2'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"new\n", method="PUT"))
PY2
}
# seconds (with ms) until name $1 shows in ls of d, giving up after $2 s
shows_after() {
	local t0 now
	t0=$(date +%s%N)
	while :; do
		now=$(date +%s%N)
		if ls "$M/d" | grep -qx "$1"; then
			echo $(((now - t0) / 1000000))
			return 0
		fi
		((now - t0 < $2 * 1000000000)) || { echo never; return 0; }
		sleep 0.1
	done
}

# 1. default cache timeout (1 s): within 1 s + 2 s of slack, counted from
#    the listing the new mount fetched (a fixed 5 s TTL showed it after 5 s)
s3_mount "$M"
mkdir "$M/d"
echo a >"$M/d/a"
cvfs_umount "$M"
s3_mount "$M"
ls "$M/d" | grep -qx a || fail "a in d"
put_fast b
ms=$(shows_after b 10)
[ "$ms" != never ] && ((ms <= 3000)) || fail "an object another client added showed after $ms ms (cache timeout 1 s)"
echo "ok: another client's object showed after $ms ms"
s3_aws s3 cp --quiet "$T/new" "s3://$S3_BUCKET/d/b2"
ms=$(shows_after b2 10)
[ "$ms" != never ] && ((ms <= 3000)) || fail "an object aws s3 cp added showed after $ms ms"
s3_aws s3 cp --quiet "$T/new" "s3://$S3_BUCKET/d/b3" # and in a file's lookup
for ((i = 0; i < 30; i++)); do [ -e "$M/d/b3" ] && break; sleep 0.1; done
[ -e "$M/d/b3" ] || fail "lookup of an object aws added, 3 s later"
rm "$M/d/b3"

# 2. our own changes show at once (the listing changes with them)
echo c >"$M/d/c"
ls "$M/d" | grep -qx c || fail "a file we made is not listed at once"
mkdir "$M/d/sub"
ls "$M/d" | grep -qx sub || fail "a directory we made is not listed at once"
mv "$M/d/c" "$M/d/c2"
got=$(ls "$M/d" | tr '\n' ' ')
[ "$got" = "a b b2 c2 sub " ] || fail "after a rename: $got"
rm "$M/d/a"
rmdir "$M/d/sub"
got=$(ls "$M/d" | tr '\n' ' ')
[ "$got" = "b b2 c2 " ] || fail "after rm and rmdir: $got"
[ ! -e "$M/d/a" ] || fail "a removed file is still there"
s3_syncfs "$M"
got=$(s3_aws s3 ls "s3://$S3_BUCKET/d/" | awk 'NF == 4 {print $4}' | tr '\n' ' ')
[ "$got" = "b b2 c2 " ] || fail "the bucket after our changes: $got"
cvfs_umount "$M"

# 3. a longer cache timeout: the listing lives that long (4 s: not within
#    2 s, but within 4 s + 2 s)
s3_mount "$M" -o cache_timeout=4
ls "$M/d" >/dev/null
t0=$(date +%s%N)
put_fast e
ms=$(shows_after e 12)
[ "$ms" != never ] || fail "with cache_timeout=4 another client's object never showed"
ms=$((($(date +%s%N) - t0) / 1000000)) # from the listing
((ms >= 2000 && ms <= 6000)) || fail "with cache_timeout=4 another client's object showed after $ms ms"
echo "ok: cache_timeout=4: after $ms ms"
cvfs_umount "$M"

# 4. an explicit list_ttl wins over the cache timeout
s3_mount "$M" -o cache_timeout=1,store.list_ttl=30
ls "$M/d" >/dev/null
s3_aws s3 cp --quiet "$T/new" "s3://$S3_BUCKET/d/f"
sleep 3
ls "$M/d" | grep -qx f && fail "list_ttl=30: a listing fetched again before 30 s"
cvfs_umount "$M"
echo PASS
