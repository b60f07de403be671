#!/usr/bin/env bash
# Runs the battery on a fresh temporary directory of the host filesystem
# (TMPDIR or /tmp), removed afterwards.
#   CVFS_BATTERY=path/to/battery run-plain.sh [battery args...]
set -u
: "${CVFS_BATTERY:?CVFS_BATTERY must point at the battery binary}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cvfs-battery-plain.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
"$CVFS_BATTERY" "$tmp" "$@"
