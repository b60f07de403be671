#!/usr/bin/env bash
# Installs the Debian packages chuk-vfs needs (scripts/debian-packages.txt),
# only those missing.  Needs root (or sudo) when something is missing.
set -u
cd "$(dirname "$0")/.."
missing=()
for p in $(grep -v '^#' scripts/debian-packages.txt); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm (for the S3 test server, s3rver from npm): Debian's, unless
# a node with npm is already installed (e.g. from NodeSource; the packages conflict).
if ! command -v npm >/dev/null 2>&1; then
	for p in nodejs npm; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
