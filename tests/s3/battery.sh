#!/bin/bash
# The syscall battery (tests/battery) on an S3 mount (write-back, the
# default), case by case, with meta_max=8192: the xattr case sets 2.3 KiB of
# values, past AWS's 2 KiB of user metadata per object (the default; s3rver
# takes more).  Exceptions (also in docs/s3.md, "Syscall battery"):
#   big_file_5g   skipped: a 5 GiB object, minutes of upload on s3rver
#   a case whose only failure is link(2) or mkfifo(2) answering EPERM (no
#   hard links, no special files in S3: hardlink, rename_hardlink_sibling,
#   fifo, and the cases that make one on the way) counts as known; any other
#   failure fails the test.
#   names that are not UTF-8 may be refused with EILSEQ (S3 keys are UTF-8:
#   CVFS_BATTERY_UTF8_NAMES=1 tells the battery's names_odd case so)
set -euo pipefail
source "$(dirname "$0")/common.sh"
: "${CVFS_BATTERY:?CVFS_BATTERY must point at the battery binary}"
s3_test battery
chmod 0755 "$T"
s3_start
skip=" big_file_5g ${S3_BATTERY_SKIP:-} "
failed=""
for c in $("$CVFS_BATTERY" --list); do
	case "$skip" in *" $c "*) echo "skip: $c (see the header)"; continue ;; esac
	rc=0
	CVFS_BATTERY_UTF8_NAMES=1 TMPDIR=$T "$CVFS_SRCDIR/tests/battery/run-mount.sh" -b s3 --bucket "$S3_BUCKET" \
		--endpoint-url "$S3_URL" -o store.meta_max=8192 -- --only "$c" >"$T/$c.log" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		echo "ok: $c"
	elif grep -q '^not ok' "$T/$c.log" &&
		! grep '^not ok' "$T/$c.log" | grep -qvE '(link|mkfifo|mknod)\(.*EPERM|mknod of a FIFO is not supported'; then
		echo "known: $c ($(grep -m1 '^not ok' "$T/$c.log" | sed 's/^not ok [0-9]* - //'))"
	else
		echo "FAILED: $c"
		cat "$T/$c.log"
		failed="$failed $c"
	fi
done
[ -z "$failed" ] || fail "battery cases failed on the S3 store:$failed"
echo PASS
