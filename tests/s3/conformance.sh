#!/bin/bash
# The store contract conformance suite (tests/unit/store_conformance) on the
# S3 store, against a fresh s3rver.  The S3 store has no hard links, so the
# program drives it as the core does (a name per inode, parents named
# first) and leaves out what its capability bits say it lacks, printing
# why (docs/s3.md, "Store conformance").
#   conformance.sh [PATH/TO/store_conformance] [ARGS...]
set -euo pipefail
source "$(dirname "$0")/common.sh"
PROG=${1:-${CVFS_BUILDDIR:-$HERE/../../build}/tests/unit/store_conformance}
shift || true
[ -x "$PROG" ] || { echo "SKIP: $PROG not built" >&2; exit 77; }
s3_test conformance
s3_start
# 2000 entries for the scale case (not 20000): each is an object to upload
# meta_max: the xattr case sets a 64 KiB value (AWS takes 2 KiB of metadata,
# the default; s3rver takes more, and those inodes are never uploaded)
timeout 600 "$PROG" s3 "bucket=$S3_BUCKET" "endpoint=$S3_URL" "cache_dir=$T" meta_max=1048576 \
	--scale=2000 "$@"
