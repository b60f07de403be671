#!/bin/bash
# Extended attributes on S3: kept in x-amz-meta-xattr in s3fs's format
# (urlencode of {"name":"base64(value)",...}), so s3fs and chuk-vfs read
# each other's; they survive a remount; the object's user metadata stays
# within S3's 2 KiB (meta_max=).  With s3fs installed, a real s3fs mount
# (-o use_xattr) reads ours and we read its.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test xattr aws
command -v getfattr >/dev/null || { echo "SKIP: getfattr (attr) is not installed" >&2; exit 77; }
s3_start
B=s3://$S3_BUCKET
M=$T/m
s3_mount "$M"
echo data >"$M/f"
mkdir "$M/d"
setfattr -n user.a -v alpha "$M/f"
setfattr -n user.bin -v 0x00ff10 "$M/f"
setfattr -n user.empty "$M/f"
setfattr -n user.dir -v D "$M/d"
setfattr -n user.gone -v x "$M/f"
setfattr -x user.gone "$M/f"
if setfattr -n user.big -v "$(head -c 1800 /dev/zero | tr '\0' a)" "$M/f" 2>"$T/err"; then
	fail "1800 bytes (2400 in base64) of xattrs past S3's 2 KiB of metadata were taken"
fi
grep -q "No space left" "$T/err" || fail "too much metadata: $(cat "$T/err")"
want=$'user.a="alpha"\nuser.bin=0sAP8Q\nuser.empty=""'
cvfs_umount "$M"

# in S3, in s3fs's format
raw=$(s3_aws s3api head-object --bucket "$S3_BUCKET" --key f --query Metadata.xattr --output text)
json=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.argv[1]))' "$raw")
python3 - "$json" <<'PY' || fail "x-amz-meta-xattr of f: $json"
import base64, json, sys
got = {k: base64.b64decode(v) for k, v in json.loads(sys.argv[1]).items()}
want = {"user.a": b"alpha", "user.bin": b"\x00\xff\x10", "user.empty": b""}
sys.exit(0 if got == want else f"got {got}")
PY
s3_aws s3api head-object --bucket "$S3_BUCKET" --key d/ --query Metadata.xattr --output text | grep -q "user.dir" ||
	fail "x-amz-meta-xattr of the directory marker"
# an object another client wrote with the header (by hand, as s3fs would)
hv=$(python3 -c 'import base64, urllib.parse; print(urllib.parse.quote("{\"user.k\":\"" + base64.b64encode(b"v\x01w").decode() + "\"}", safe=""))')
echo other >"$T/o"
s3_aws s3api put-object --bucket "$S3_BUCKET" --key o --metadata "xattr=$hv" --body "$T/o" >/dev/null

# after a remount: ours and the other client's
s3_mount "$M"
got=$(getfattr -d "$M/f" 2>/dev/null | grep "^user" | sort)
[ "$got" = "$(sort <<<"$want")" ] || fail "xattrs of f after a remount: $got"
[ "$(getfattr --only-values -n user.dir "$M/d")" = D ] || fail "xattr of d after a remount"
getfattr -e hex -n user.k "$M/o" 2>/dev/null | grep -qx 'user.k=0x760177' || fail "an xattr another client wrote"
# chmod and a rename keep them
chmod 600 "$M/f"
mv "$M/f" "$M/g"
cvfs_umount "$M"
s3_mount "$M"
[ "$(getfattr --only-values -n user.a "$M/g")" = alpha ] || fail "xattr after chmod + rename"
[ "$(stat -c %a "$M/g")" = 600 ] || fail "mode after chmod + rename"
cvfs_umount "$M"
echo "ok: xattrs in x-amz-meta-xattr"

# a real s3fs on the same bucket, when installed
if command -v s3fs >/dev/null; then
	S=$T/s3fs
	s3fs_mount "$S" -o use_xattr || fail "s3fs did not mount"
	r1=$(getfattr --only-values -n user.a "$S/g" 2>"$T/gf.err") || r1="$(cat "$T/gf.err")"
	setfattr -n user.s3fs -v "by s3fs" "$S/g" || true
	s3fs_umount "$S"
	[ "$r1" = alpha ] || fail "s3fs read our xattr as: $r1"
	s3_mount "$M"
	[ "$(getfattr --only-values -n user.s3fs "$M/g")" = "by s3fs" ] || fail "s3fs's xattr"
	[ "$(getfattr --only-values -n user.a "$M/g")" = alpha ] || fail "ours after s3fs wrote"
	cvfs_umount "$M"
	echo "ok: s3fs reads our xattrs and we read its"
fi
echo PASS
