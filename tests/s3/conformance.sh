#!/bin/bash
# The store conformance program (tests/unit) against the S3 store on s3rver.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib/mount.sh"
source "$HERE/../lib/s3.sh"
s3_require
PROG=${CVFS_BUILDDIR:-$HERE/../../build}/tests/unit/store_conformance
[ -x "$PROG" ] || { echo "SKIP: $PROG not built" >&2; exit 77; }
trap 'rc=$?; set +e; s3_cleanup; exit $rc' EXIT
s3_start
timeout 600 "$PROG" s3 "bucket=$S3_BUCKET" "endpoint=$S3_URL" "$@"
