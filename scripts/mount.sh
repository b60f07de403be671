#!/usr/bin/env bash
# Installs what is missing, builds, and mounts chuk-vfs (memory store by
# default) at DIR.  Extra arguments go to chuk-vfs-mount.
#
#   scripts/mount.sh [DIR] [chuk-vfs-mount options...]     (DIR default: /tmp/chuk-vfs)
#   unmount with: fusermount3 -u DIR
set -eu
cd "$(dirname "$0")/.."
dir=${1:-/tmp/chuk-vfs}
[ $# -gt 0 ] && shift
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
build/chuk-vfs-mount -m "$dir" "$@"
echo "chuk-vfs mounted at $dir (unmount: fusermount3 -u $dir)"
