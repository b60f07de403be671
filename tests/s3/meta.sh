#!/usr/bin/env bash
# Mode, uid, gid and mtime in user metadata (x-amz-meta-mode/-uid/-gid/-mtime)
# agree between the mount, rclone and s3fs (the real tools, when installed):
#   - objects rclone wrote with --metadata show rclone's mode (octal without
#     a leading 0, "100640"), uid, gid and mtime (fractional seconds) here;
#   - files we write show the right mode and mtime in rclone (lsl, and a
#     copy back to a local directory with --metadata) and in s3fs;
#   - metadata others wrote that is garbage (no such mode, a uid of 2^32-1,
#     NaN, negative or huge times, an impossible date) gives the mount's
#     defaults (0644 regular files, 0755 directories, our uid/gid,
#     LastModified), never a crash or a strange file type.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test meta aws
s3_start
M=$T/m
me_u=$(id -u) me_g=$(id -g)

# "MODE UID GID MTIME_NS TYPE" of a path
st() {
	python3 - "$1" <<'PY'
import os, stat, sys
s = os.lstat(sys.argv[1])
t = "reg" if stat.S_ISREG(s.st_mode) else "dir" if stat.S_ISDIR(s.st_mode) else \
    "lnk" if stat.S_ISLNK(s.st_mode) else "other"
print("%o %d %d %d %s" % (stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid, s.st_mtime_ns, t))
PY
}
expect() { # PATH "MODE UID GID MTIME_NS TYPE" WHAT
	local got
	got=$(st "$1")
	[ "$got" = "$2" ] || fail "$3: $1 is '$got', want '$2'"
}
# rclone with an s3 remote X on our s3rver, configured from the environment
# (the CA bundle awscli is given makes rclone 1.60 refuse plain http)
have_rclone=0
if command -v rclone >/dev/null; then
	have_rclone=1
	: >"$T/rclone.conf"
fi
rc() {
	env -u AWS_CA_BUNDLE RCLONE_CONFIG="$T/rclone.conf" RCLONE_CONFIG_X_TYPE=s3 \
		RCLONE_CONFIG_X_PROVIDER=Other RCLONE_CONFIG_X_ENDPOINT="$S3_URL" \
		RCLONE_CONFIG_X_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
		RCLONE_CONFIG_X_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
		RCLONE_CONFIG_X_REGION=us-east-1 RCLONE_CONFIG_X_FORCE_PATH_STYLE=true \
		rclone -q "$@"
}

# 1. what rclone writes, read by the mount
if [ $have_rclone = 1 ]; then
	mkdir -p "$T/src/sub"
	echo one >"$T/src/a"
	echo two >"$T/src/sub/b"
	chmod 0640 "$T/src/a"
	chmod 0751 "$T/src/sub/b"
	chown 1234:5678 "$T/src/a" 2>/dev/null || true
	touch -d '2021-01-02 03:04:05.123456789 UTC' "$T/src/a"
	touch -d '2001-09-09 01:46:40.5 UTC' "$T/src/sub/b"
	rc copy --metadata "$T/src" "X:$S3_BUCKET/rc"
	# what rclone wrote: octal mode without the leading 0, decimal ids,
	# fractional seconds
	h=$(s3_aws s3api head-object --bucket "$S3_BUCKET" --key rc/a --query Metadata --output json)
	grep -q '"mode": "100640"' <<<"$h" || fail "rclone's mode header: $h"
	grep -q '"mtime": "1609556645.123456789"' <<<"$h" || fail "rclone's mtime header: $h"
	a_u=$(stat -c %u "$T/src/a") a_g=$(stat -c %g "$T/src/a")
	s3_mount "$M"
	expect "$M/rc/a" "640 $a_u $a_g 1609556645123456789 reg" "rclone's file"
	expect "$M/rc/sub/b" "751 $(stat -c '%u %g' "$T/src/sub/b") 1000000000500000000 reg" \
		"rclone's file in a directory"
	[ "$(cat "$M/rc/a")" = one ] || fail "rclone's bytes"
	cvfs_umount "$M"
	echo "ok: rclone's metadata on the mount"
fi

# 2. what we write, read by rclone and s3fs
s3_mount "$M"
mkdir "$M/ours"
echo g >"$M/ours/g"
chmod 0604 "$M/ours/g"
ou=$me_u og=$me_g
if [ "$me_u" = 0 ]; then
	chown 4321:8765 "$M/ours/g"
	ou=4321 og=8765
fi
touch -d '2020-02-03 04:05:06.25 UTC' "$M/ours/g"
echo x >"$M/ours/x"
chmod 0750 "$M/ours/x"
touch -d '2019-05-06 07:08:09 UTC' "$M/ours/x"
mkdir "$M/ours/d"
chmod 0710 "$M/ours/d"
ln -s g "$M/ours/l"
s3_syncfs "$M"
cvfs_umount "$M"
h=$(s3_aws s3api head-object --bucket "$S3_BUCKET" --key ours/g --query Metadata --output json)
grep -q '"mode": "0100604"' <<<"$h" || fail "our mode header: $h"
grep -q '"mtime": "1580702706.250000000"' <<<"$h" || fail "our mtime header: $h"
grep -q "\"uid\": \"$ou\"" <<<"$h" || fail "our uid header: $h"
s3_mount "$M"
expect "$M/ours/g" "604 $ou $og 1580702706250000000 reg" "ours after a remount"
expect "$M/ours/d" "710 $me_u $me_g $(st "$M/ours/d" | cut -d' ' -f4) dir" "our directory"
[ "$(readlink "$M/ours/l")" = g ] || fail "our symlink after a remount"
cvfs_umount "$M"
if [ $have_rclone = 1 ]; then
	lsl=$(rc lsl "X:$S3_BUCKET/ours")
	grep -Eq '^ +2 2020-02-03 04:05:06\.250000000 g$' <<<"$lsl" || fail "rclone lsl of ours: $lsl"
	grep -Eq '^ +2 2019-05-06 07:08:09\.000000000 x$' <<<"$lsl" || fail "rclone lsl of ours: $lsl"
	j=$(rc lsjson --metadata "X:$S3_BUCKET/ours/g")
	grep -q '"mode":"0100604"' <<<"$j" || fail "rclone lsjson --metadata of ours: $j"
	# rclone applies mode, owner and mtime when it copies to local files
	rc copy --metadata "X:$S3_BUCKET/ours" "$T/back"
	got=$(stat -c '%a %Y' "$T/back/g" "$T/back/x" | tr '\n' ' ')
	[ "$got" = "604 1580702706 750 1557126489 " ] || fail "rclone's copy of ours: $got"
	if [ "$me_u" = 0 ]; then
		[ "$(stat -c %u:%g "$T/back/g")" = 4321:8765 ] || fail "rclone's copy: owner"
	fi
	echo "ok: rclone reads our mode, owner and mtime"
fi
if command -v s3fs >/dev/null; then
	S=$T/s3fs
	s3fs_mount "$S" || fail "s3fs did not mount"
	got=$({ stat -c '%A %u %g %Y' "$S/ours/g" "$S/ours/x" && stat -c %A "$S/ours/d"; } 2>&1) || true
	lnk=$(readlink "$S/ours/l" 2>&1) || true
	s3fs_umount "$S"
	want="-rw----r-- $ou $og 1580702706
-rwxr-x--- $me_u $me_g 1557126489
drwx--x---"
	[ "$got" = "$want" ] || fail "s3fs shows ours as: $got"
	[ "$lnk" = g ] || fail "s3fs reads our symlink as: $lnk"
	echo "ok: s3fs reads our mode, owner and mtime"
fi

# 3. metadata others wrote by hand: good forms and garbage
echo z >"$T/z"
put() { # KEY METADATA
	s3_aws s3api put-object --bucket "$S3_BUCKET" --key "$1" --metadata "$2" --body "$T/z" >/dev/null
}
: >"$T/empty"
putdir() {
	s3_aws s3api put-object --bucket "$S3_BUCKET" --key "$1" --metadata "$2" --body "$T/empty" \
		--content-type application/x-directory >/dev/null
}
put h/s3fs 'mode=33184,uid=7,gid=8,mtime=1609556645'
put h/oct0 'mode=0100600,mtime=1609556645.5'
put h/rcl 'mode=100600,mtime=1609556645.000000001'
put h/perm 'mode=384'
put h/iso 'mtime=2021-01-02T03:04:05.5+01:00'
put h/isoz 'mtime=2021-01-02T03:04:05Z'
putdir h/d493/ 'mode=493'
putdir h/drc/ 'mode=40750'
putdir h/dsticky/ 'mode=41777'
# garbage
put h/g_word 'mode=rw-r--r--,uid=-1,gid=abc,mtime=NaN'
put h/g_dirmode 'mode=16877,mtime=-5'
put h/g_fifo 'mode=10644,mtime=inf'
put h/g_huge 'mode=4294967295,uid=4294967295,gid=99999999999,mtime=1e400'
put h/g_sec 'mtime=99999999999999'
put h/g_date 'mtime=2021-13-45T99:99:99Z'
put h/g_frac 'mtime=12.x,uid=12x'
putdir h/g_dir/ 'mode=33188,uid=4294967295,mtime=-1.5'
now=$(date +%s)
s3_mount "$M"
expect "$M/h/s3fs" "640 7 8 1609556645000000000 reg" "s3fs's decimal mode"
expect "$M/h/oct0" "600 $me_u $me_g 1609556645500000000 reg" "octal mode with a 0"
expect "$M/h/rcl" "600 $me_u $me_g 1609556645000000001 reg" "rclone's octal mode"
perm=$(st "$M/h/perm")
[ "${perm%% *}" = 600 ] || fail "a mode without type bits: $perm"
expect "$M/h/iso" "644 $me_u $me_g 1609553045500000000 reg" "RFC 3339 with an offset"
expect "$M/h/isoz" "644 $me_u $me_g 1609556645000000000 reg" "RFC 3339 in UTC"
for d in d493:755 drc:750 dsticky:1777; do
	got=$(st "$M/h/${d%%:*}")
	[ "$(cut -d' ' -f1,5 <<<"$got")" = "${d#*:} dir" ] || fail "directory ${d%%:*}: $got"
done
for g in g_word g_dirmode g_fifo g_huge g_sec g_date g_frac g_dir; do
	read -r mode uid gid mt type < <(st "$M/h/$g")
	wt=reg wm=644
	[ $g = g_dir ] && wt=dir wm=755
	[ "$mode $uid $gid $type" = "$wm $me_u $me_g $wt" ] ||
		fail "garbage metadata of $g: $mode $uid $gid $type"
	# LastModified (s3rver's clock is ours)
	d=$((mt / 1000000000 - now))
	((d > -120 && d < 120)) || fail "garbage mtime of $g: $mt (now $now)"
done
[ "$(cat "$M/h/g_huge")" = z ] || fail "bytes of an object with garbage metadata"
ls -l "$M/h" >/dev/null
cvfs_umount "$M"
echo "ok: other tools' forms read, garbage gives the defaults"
echo PASS
