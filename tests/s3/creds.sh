#!/bin/bash
# Credentials as the AWS tools read them, against a proxy that accepts one
# key pair only (tests/lib/s3_proxy.py --sigcheck --keys): a credentials
# file with another pair fails the mount with a message naming the file;
# AWS_PROFILE picks [NAME] in AWS_SHARED_CREDENTIALS_FILE or [profile NAME]
# in AWS_CONFIG_FILE (with its region); a profile that is nowhere is an
# error.  Then, mounted, the file is rotated to a new pair (and later a new
# session token) and the proxy accepts only that: new work succeeds without
# a remount (the refused request is sent again once with the keys read
# again), from many threads at once.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$HERE/../lib/s3_proxy.sh"
s3_test creds aws
sp_require
s3_start
M=$T/m
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION AWS_REGION
export HOME=$T/home # no ~/.aws of the machine's
mkdir -p "$HOME"
export AWS_SHARED_CREDENTIALS_FILE=$T/credentials AWS_CONFIG_FILE=$T/config
: >"$AWS_CONFIG_FILE"
sp_start --sigcheck --keys BKEY:bsecret
saws() { (unset AWS_PROFILE; AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER \
	AWS_DEFAULT_REGION=us-east-1 AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
	s3_aws "$@"); }

# mount_fails PATTERN: the mount exits non-zero saying PATTERN
mount_fails() {
	local rc=0
	timeout 60 "$CVFS_MOUNT_BIN" -f -m "$M" -b s3 --bucket "$S3_BUCKET" --endpoint-url "$SP_URL" \
		>"$T/out" 2>&1 || rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || { cvfs_umount "$M" || true; fail "mount exited $rc"; }
	grep -q -- "$1" "$T/out" || fail "no '$1' in: $(cat "$T/out")"
	echo "ok: $(cat "$T/out")"
}

# 1. pair A in the credentials file: refused, clearly
printf '[default]\naws_access_key_id = AKEY\naws_secret_access_key = asecret\n' >"$AWS_SHARED_CREDENTIALS_FILE"
mount_fails "InvalidAccessKeyId"
grep -q "$AWS_SHARED_CREDENTIALS_FILE" "$T/out" || fail "the message does not name the file"

# 2. AWS_PROFILE with [bee] in the credentials file
printf '[bee]\naws_access_key_id = BKEY\naws_secret_access_key = bsecret\n' >>"$AWS_SHARED_CREDENTIALS_FILE"
export AWS_PROFILE=bee
s3_mount "$M" --endpoint-url "$SP_URL"
echo one >"$M/one"
s3_syncfs "$M"
cvfs_umount "$M"
[ "$(saws s3 cp "s3://$S3_BUCKET/one" -)" = one ] || fail "written with the profile's keys"

# 3. [profile cee] in the config file, with its region
export AWS_PROFILE=cee
printf '[profile cee]\naws_access_key_id = BKEY\naws_secret_access_key = bsecret\nregion = eu-west-3\n' >"$AWS_CONFIG_FILE"
mount_fails "region eu-west-3" # the proxy signs for us-east-1 only
sed -i 's/eu-west-3/us-east-1/' "$AWS_CONFIG_FILE"
s3_mount "$M" --endpoint-url "$SP_URL"
[ "$(cat "$M/one")" = one ] || fail "read with [profile cee]"
cvfs_umount "$M"

# 4. a profile that is nowhere
export AWS_PROFILE=nope
mount_fails "profile 'nope'"

# 5. rotation while mounted: the file gets pair C, the proxy takes only C
export AWS_PROFILE=bee
s3_mount "$M" --endpoint-url "$SP_URL"
ls "$M" >/dev/null
printf '[bee]\naws_access_key_id = CKEY\naws_secret_access_key = csecret\naws_session_token = ctoken1\n' \
	>"$T/credentials.new"
mv "$T/credentials.new" "$AWS_SHARED_CREDENTIALS_FILE"
sp_config '{"keys": ["CKEY:csecret:ctoken1"], "reset": true}'
for i in $(seq 1 40); do echo "file $i" >"$M/rot$i"; done
s3_syncfs "$M"
for i in $(seq 1 40); do
	[ "$(cat "$M/rot$i")" = "file $i" ] || fail "rot$i read back"
done
mkdir "$M/dir-after-rotation"
s3_syncfs "$M"
[ "$(sp_stat "s['badkey']")" -ge 1 ] || fail "the proxy never refused the old keys"
[ "$(sp_stat "s['sigfail']")" = 0 ] || fail "signature failures: $(sp_stat "s['failures']")"
# only the session token changes (ExpiredToken)
printf '[bee]\naws_access_key_id = CKEY\naws_secret_access_key = csecret\naws_session_token = ctoken2\n' \
	>"$T/credentials.new"
mv "$T/credentials.new" "$AWS_SHARED_CREDENTIALS_FILE"
sp_config '{"keys": ["CKEY:csecret:ctoken2"], "reset": true}'
echo after-token >"$M/tok2"
mkdir "$M/dir-after-token"
s3_syncfs "$M"
grep -q "ExpiredToken" <<<"$(sp_stat "s['failures']")" || fail "no ExpiredToken was answered"
cvfs_umount "$M"
for i in 1 17 40; do
	[ "$(saws s3 cp "s3://$S3_BUCKET/rot$i" -)" = "file $i" ] || fail "rot$i in S3"
done
[ "$(saws s3 cp "s3://$S3_BUCKET/tok2" -)" = after-token ] || fail "tok2 in S3"
saws s3api head-object --bucket "$S3_BUCKET" --key dir-after-token/ >/dev/null || fail "mkdir after the token changed"
echo PASS
