# The start every S3 test shares; source it after `set -euo pipefail`:
#
#   s3_test NAME [aws] [root]
#
# sources the mount and s3rver helpers, skips (77) without s3rver, or without
# awscli / root when asked, makes the scratch directory $T (removed at exit,
# after every mount and server is stopped) and defines fail.  The caller then
# runs s3_start (after setting S3_DATA if it wants the server's data there).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/mount.sh
source "$HERE/../lib/mount.sh"
# shellcheck source=../lib/s3.sh
source "$HERE/../lib/s3.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }

s3_test() {
	local name=$1 need
	shift
	s3_require
	for need in "$@"; do
		case $need in
		aws)
			if ! command -v aws >/dev/null; then
				echo "SKIP: awscli is not installed" >&2
				exit 77
			fi ;;
		root)
			if [ "$(id -u)" != 0 ]; then
				echo "SKIP: dropping the page cache needs root" >&2
				exit 77
			fi ;;
		esac
	done
	T=$(mktemp -d "/tmp/cvfs-s3-$name.XXXXXX")
	trap 'rc=$?; set +e; cvfs_cleanup; s3_cleanup; rm -rf "$T"; exit $rc' EXIT
}
