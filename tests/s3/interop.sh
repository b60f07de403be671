#!/bin/bash
# Interoperability with another S3 client (awscli): objects it wrote appear on
# the mount byte for byte; files the mount wrote are plain objects.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test interop aws
s3_start
B=s3://$S3_BUCKET

# objects written by aws, including nested keys (implied directories) and a
# multipart upload
head -c 1234567 /dev/urandom >"$T/one"
head -c 20000000 /dev/urandom >"$T/multi"
printf 'tiny' >"$T/tiny"
: >"$T/empty"
s3_aws s3 cp --quiet "$T/one" "$B/one.bin"
s3_aws s3 cp --quiet "$T/multi" "$B/deep/er/multi.bin"
s3_aws s3 cp --quiet "$T/tiny" "$B/deep/tiny.txt"
s3_aws s3 cp --quiet "$T/empty" "$B/empty"
s3_aws s3 cp --quiet "$T/tiny" "$B/with space+plus&amp=.txt"

M=$T/m
s3_mount "$M"
[ "$(ls "$M" | sort | tr '\n' ' ')" = "deep empty one.bin with space+plus&amp=.txt " ] ||
	fail "root listing: $(ls "$M" | tr '\n' ' ')"
[ -d "$M/deep" ] && [ -d "$M/deep/er" ] || fail "implied directories"
cmp "$T/one" "$M/one.bin" || fail "one.bin"
cmp "$T/multi" "$M/deep/er/multi.bin" || fail "multipart object"
cmp "$T/tiny" "$M/deep/tiny.txt" || fail "nested small object"
cmp "$T/tiny" "$M/with space+plus&amp=.txt" || fail "key with special characters"
[ "$(stat -c %s "$M/one.bin")" = 1234567 ] || fail "size of one.bin"
[ "$(stat -c %s "$M/deep/er/multi.bin")" = 20000000 ] || fail "size of multi.bin"
[ "$(stat -c %s "$M/empty")" = 0 ] || fail "empty object"
[ "$(stat -c %a "$M/one.bin")" = 644 ] && [ "$(stat -c %a "$M/deep")" = 755 ] ||
	fail "default modes"

# files written on the mount read back with aws
head -c 5000000 /dev/urandom >"$T/w"
cp "$T/w" "$M/deep/w.bin"
echo hello >"$M/new dir file"
mkdir "$M/made"
s3_syncfs "$M" # write-back: what close queued goes now
s3_aws s3 cp --quiet "$B/deep/w.bin" "$T/w.back"
cmp "$T/w" "$T/w.back" || fail "aws reads what the mount wrote"
[ "$(s3_aws s3 cp "$B/new dir file" -)" = hello ] || fail "key with a space"
s3_aws s3api head-object --bucket "$S3_BUCKET" --key made/ >/dev/null || fail "mkdir marker object"

# modes and times set on the mount survive a remount (and are s3fs's names)
chmod 600 "$M/one.bin"
touch -d '2010-05-06 07:08:09 UTC' "$M/one.bin"
s3_syncfs "$M"
meta=$(s3_aws s3api head-object --bucket "$S3_BUCKET" --key one.bin --query Metadata --output text)
grep -qw 0100600 <<<"$meta" || fail "x-amz-meta-mode: $meta"
cvfs_umount "$M"
s3_mount "$M"
[ "$(stat -c %a "$M/one.bin")" = 600 ] || fail "mode after remount"
[ "$(stat -c %Y "$M/one.bin")" = "$(date -d '2010-05-06 07:08:09 UTC' +%s)" ] || fail "mtime after remount"
cmp "$T/one" "$M/one.bin" || fail "data after the metadata copy"

# changes by others show up after the listing cache expires
s3_aws s3 cp --quiet "$T/tiny" "$B/later.txt"
s3_aws s3 rm --quiet "$B/deep/tiny.txt"
sleep 7
[ "$(cat "$M/later.txt")" = tiny ] || fail "an object added by another client"
[ ! -e "$M/deep/tiny.txt" ] || fail "an object removed by another client"

# changes still queued at unmount: afterwards awscli sees exactly what the
# mount showed (names, sizes, bytes)
mv "$M/later.txt" "$M/deep/later-moved.txt"
rm "$M/empty"
mkdir -p "$M/n1/n2"
head -c 300000 /dev/urandom >"$M/n1/n2/f"
echo again >"$M/new dir file"
ln -s one.bin "$M/link"
(cd "$M" && find . -type f -printf '%P %s\n' | sort) >"$T/mount.list"
mkdir "$T/view"
(cd "$M" && find . -type f | while read -r f; do mkdir -p "$T/view/$(dirname "$f")"; cp "$f" "$T/view/$f"; done)
cvfs_umount "$M"
s3_aws s3api list-objects-v2 --bucket "$S3_BUCKET" --query 'Contents[].[Key,Size]' --output text |
	grep -v '/	0$' | grep -v '^link	' | awk -F'\t' '{print $1, $2}' | sort >"$T/aws.list"
diff "$T/mount.list" "$T/aws.list" || fail "after unmount awscli sees another tree than the mount showed"
mkdir "$T/back"
s3_aws s3 sync --quiet "$B" "$T/back"
rm -f "$T/back/link"
find "$T/back" -type d -empty -delete
diff -r "$T/view" "$T/back" || fail "after unmount the bytes differ from what the mount showed"
[ "$(s3_aws s3 cp "$B/link" -)" = one.bin ] || fail "symlink target"
echo PASS
