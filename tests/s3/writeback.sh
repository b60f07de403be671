#!/bin/bash
# Write-back: what is coalesced (counted with CVFS_S3_STATS), a listing
# fetched while ops are queued shows the local view, and ops on one key keep
# their order (the bucket checked byte for byte with awscli after unmount).
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test wb aws
s3_start
B=s3://$S3_BUCKET
export CVFS_S3_STATS=1
M=$T/m

# exchange A B: renameat2(A, B, RENAME_EXCHANGE)
exchange() {
	python3 - "$1" "$2" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0:
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
PY
}

# PUT (uploads, markers, copies) and DELETE requests sent by what "$@" does
counts() {
	local p0 d0 p1 d1
	p0=$(s3_stat "$M" PUT)
	d0=$(s3_stat "$M" DELETE)
	"$@"
	p1=$(s3_stat "$M" PUT)
	d1=$(s3_stat "$M" DELETE)
	echo "$((p1 - p0)) $((d1 - d0))"
}
absent() { ! s3_aws s3api head-object --bucket "$S3_BUCKET" --key "$1" >/dev/null 2>&1; }

# ---- coalescing (uploads wait 5 s: everything below happens before) ----
s3_mount "$M" -o store.wb_delay=5000
c1() { echo x >"$M/f1"; rm "$M/f1"; }
[ "$(counts c1)" = "0 0" ] || fail "create+write+unlink sent requests: $(counts c1)"
c2() { echo y >"$M/g"; mv "$M/g" "$M/h"; }
[ "$(counts c2)" = "1 0" ] || fail "upload then rename: not one PUT to the new key"
absent g || fail "g exists in S3"
[ "$(s3_aws s3 cp "$B/h" -)" = y ] || fail "h in S3"
c3() { mkdir "$M/d"; rmdir "$M/d"; }
[ "$(counts c3)" = "0 0" ] || fail "mkdir+rmdir sent requests"
c4() { echo z >"$M/c"; chmod 600 "$M/c"; touch -d '2011-01-01 UTC' "$M/c"; }
[ "$(counts c4)" = "1 0" ] || fail "chmod and utimes did not fold into the upload"
meta=$(s3_aws s3api head-object --bucket "$S3_BUCKET" --key c --query Metadata --output text)
grep -qw 0100600 <<<"$meta" || fail "mode of c in S3: $meta"
c5() { for i in 1 2 3 4 5; do echo "$i" >"$M/many"; done; }
[ "$(counts c5)" = "1 0" ] || fail "five rewrites before the upload: not one PUT"
[ "$(s3_aws s3 cp "$B/many" -)" = 5 ] || fail "many in S3"
echo "ok: coalescing"
cvfs_umount "$M"

# ---- a listing fetched while ops are queued shows the local view ----
s3_aws s3 rm --quiet --recursive "$B/"
for k in old1 old2 dir1/x keep; do echo "$k" | s3_aws s3 cp --quiet - "$B/$k"; done
s3_mount "$M" -o store.wb_delay=8000,store.wb_delay_all=1,store.list_ttl=1
ls "$M" >/dev/null
rm "$M/old1"
mv "$M/old2" "$M/new2"
echo fresh >"$M/fresh"
mkdir "$M/nd"
rm "$M/dir1/x"
rmdir "$M/dir1"
echo other | s3_aws s3 cp --quiet - "$B/other" # another client
sleep 2                                          # past list_ttl: listed again
want="fresh keep nd new2 other "
got=$(ls "$M" | sort | tr '\n' ' ')
[ "$got" = "$want" ] || fail "listing with ops queued: '$got', want '$want'"
[ "$(s3_aws s3 ls "$B/" | grep -c old1)" = 1 ] || fail "the delete of old1 was not queued any more (test too slow?)"
[ "$(cat "$M/new2")" = old2 ] || fail "new2 read"
s3_syncfs "$M"
got=$(s3_aws s3 ls "$B/" | awk '{print $NF}' | sort | tr '\n' ' ')
[ "$got" = "fresh keep nd/ new2 other " ] || fail "bucket after syncfs: '$got'"
cvfs_umount "$M"
echo "ok: listings show the local view while ops are queued"

# ---- per-key order: a key written, renamed, written again, others removed,
# with and without a delay (uploads started or not when the rename comes) ----
for delay in 0 2000; do
	s3_aws s3 rm --quiet --recursive "$B/"
	s3_mount "$M" -o store.wb_delay=$delay
	rm -rf "$T/want"
	mkdir -p "$T/want/sub"
	mkdir "$M/sub"
	for i in $(seq 1 12); do
		head -c $((i * 7000)) /dev/urandom >"$T/a$i"
		cp "$T/a$i" "$M/a$i"                 # create, write
		mv "$M/a$i" "$M/sub/b$i"             # rename (cross-directory)
		head -c 5000 /dev/urandom >"$T/a$i.2"
		cp "$T/a$i.2" "$M/a$i"               # the old name written again
		echo "more $i" >>"$M/sub/b$i"         # the renamed file changed
		cp "$T/a$i" "$T/want/sub/b$i"
		echo "more $i" >>"$T/want/sub/b$i"
		cp "$T/a$i.2" "$T/want/a$i"
		echo "tmp" >"$M/t$i"
		[ "$i" -gt 1 ] && rm "$M/t$((i - 1))" # unlink of other names
	done
	echo tmp >"$T/want/t12"
	# a directory renamed with uploads queued inside (drains, then moves)
	mkdir -p "$M/dd/in" "$T/want/ee/in"
	for j in 1 2 3; do
		head -c $((j * 1000)) /dev/urandom >"$T/want/ee/in/f$j"
		cp "$T/want/ee/in/f$j" "$M/dd/in/f$j"
	done
	mv "$M/dd" "$M/ee"
	echo late >"$M/ee/in/late"
	echo late >"$T/want/ee/in/late"
	# RENAME_EXCHANGE of two files whose uploads are queued
	head -c 3000 /dev/urandom >"$T/want/x1"
	head -c 4000 /dev/urandom >"$T/want/x2"
	cp "$T/want/x2" "$M/x1"
	cp "$T/want/x1" "$M/x2"
	exchange "$M/x1" "$M/x2"
	cmp "$T/want/x1" "$M/x1" || fail "x1 after the exchange"
	# a big file renamed while its upload runs waits for it
	head -c 20M /dev/urandom >"$T/want/bigmoved"
	cp "$T/want/bigmoved" "$M/big"
	[ "$delay" = 0 ] && sleep 0.3
	mv "$M/big" "$M/bigmoved"
	cvfs_umount "$M"
	rm -rf "$T/back"
	mkdir "$T/back"
	s3_aws s3 sync --quiet "$B" "$T/back"
	diff -r "$T/want" "$T/back" || fail "wb_delay=$delay: the bucket differs from what was written"
	echo "ok: per-key order, wb_delay=$delay"
done

# back-pressure: a queue of 4 ops, uploads held 60 s: 40 files still go
# through (a full queue makes the writer wait and the held uploads go now)
s3_mount "$M" -o store.wb_max_ops=4,store.wb_delay=60000
mkdir "$M/bp"
t0=$(date +%s)
for i in $(seq 1 40); do echo "$i" >"$M/bp/f$i"; done
t1=$(date +%s)
[ $((t1 - t0)) -le 30 ] || fail "40 files through a queue of 4 took $((t1 - t0)) s"
cvfs_umount "$M"
n=$(s3_aws s3 ls "$B/bp/" | grep -c " f[0-9]*$") || true
[ "$n" = 40 ] || fail "back-pressure: $n objects in bp/, not 40"
echo "ok: back-pressure"

# RENAME_EXCHANGE with sync=close: both objects swap in S3 (temporary keys)
s3_mount "$M" -o store.sync=close
cp "$T/want/x1" "$M/e1"
cp "$T/want/x2" "$M/e2"
exchange "$M/e1" "$M/e2"
cvfs_umount "$M"
s3_aws s3 cp --quiet "$B/e1" "$T/e1"
s3_aws s3 cp --quiet "$B/e2" "$T/e2"
cmp "$T/want/x2" "$T/e1" && cmp "$T/want/x1" "$T/e2" || fail "sync=close: exchanged objects"
[ -z "$(s3_aws s3 ls "$B/.chuk-vfs-tmp/")" ] || fail "temporary keys left behind"
echo "ok: RENAME_EXCHANGE, sync=close"
echo PASS
