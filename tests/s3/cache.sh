#!/bin/bash
# The content cache: files the mount wrote, and small objects it read whole,
# are read again (after the kernel dropped its pages) from local disk, with
# no GET; a change by another client (new ETag) drops the cached copy; the
# cache stays within cache_max; cache_max=0 turns it off.
# Requests are counted by the store: with CVFS_S3_STATS=1 it prints its
# counters at every syncfs (fsync of a directory) and at unmount.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test cache root
s3_start
B=s3://$S3_BUCKET
export CVFS_S3_STATS=1
M=$T/m

# syncfs through the mount, then the GET counter from the line it printed
gets() { s3_stat "$M" GET; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

head -c 4096 /dev/urandom >"$T/remote"
head -c 5000000 /dev/urandom >"$T/big"
head -c 4096 /dev/urandom >"$T/a"
head -c 3000000 /dev/urandom >"$T/b"
s3_aws s3 cp --quiet "$T/remote" "$B/remote.bin"
s3_aws s3 cp --quiet "$T/big" "$B/big.bin"

s3_mount "$M" -o store.list_ttl=1
mkdir "$M/w"
cp "$T/a" "$M/w/a.txt"
cp "$T/b" "$M/w/b.bin"
cmp "$T/remote" "$M/remote.bin" || fail "first read of remote.bin"
cmp "$T/big" "$M/big.bin" || fail "first read of big.bin"
g0=$(gets)
drop
sleep 1.2 # past list_ttl: the opens check the listing (LIST, not GET)
cmp "$T/a" "$M/w/a.txt" || fail "a.txt after drop_caches"
cmp "$T/b" "$M/w/b.bin" || fail "b.bin after drop_caches"
cmp "$T/remote" "$M/remote.bin" || fail "remote.bin after drop_caches"
g1=$(gets)
[ "$g1" = "$g0" ] || fail "cold reads of written / whole-read files sent $((g1 - g0)) GETs"
cmp "$T/big" "$M/big.bin" || fail "big.bin after drop_caches"
g2=$(gets)
[ "$g2" -gt "$g1" ] || fail "big.bin (over cache_whole) was read without a GET: the counter is wrong"
echo "ok: cold reads from the cache, no GET (big.bin: $((g2 - g1)) GETs)"

# a written file read sequentially goes through read-ahead windows filled
# from its local copy; a change while it is open (windows held) is seen
head -c 40000000 /dev/urandom >"$T/c"
cp "$T/c" "$M/w/c.bin"
g0=$(gets)
python3 - "$M/w/c.bin" "$T/c" <<'PY' || fail "reads of a changed local copy"
import os, sys
path, ref = sys.argv[1], bytearray(open(sys.argv[2], "rb").read())
def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")
fd = os.open(path, os.O_RDONLY)
drop()
if os.pread(fd, len(ref), 0) != ref:
    sys.exit("first cold read differs")
w = os.open(path, os.O_WRONLY)
os.pwrite(w, b"X" * 70000, 20000000)
os.close(w)
ref[20000000:20070000] = b"X" * 70000
drop()
off = 0
while off < len(ref):
    got = os.pread(fd, 1 << 20, off)
    if got != ref[off:off + (1 << 20)]:
        sys.exit(f"read at {off} after the change differs")
    off += 1 << 20
os.close(fd)
PY
g1=$(gets)
[ "$g1" = "$g0" ] || fail "reads of a written file sent $((g1 - g0)) GETs"
echo "ok: a written file read through windows of its local copy, changed while open"

# another client changes remote.bin (same size): the cached copy goes
head -c 4096 /dev/urandom >"$T/remote2"
s3_aws s3 cp --quiet "$T/remote2" "$B/remote.bin"
sleep 1.5
drop
cmp "$T/remote2" "$M/remote.bin" || fail "remote.bin changed by another client: stale cache"
echo "ok: a new ETag drops the cached copy"
cvfs_umount "$M"

# the LRU bound: 5 files of 40 KB in a cache of 100 KB
s3_mount "$M" -o store.cache_max=100000
for i in 1 2 3 4 5; do head -c 40000 /dev/urandom >"$T/l$i"; cp "$T/l$i" "$M/l$i"; done
g0=$(gets)
drop
for i in 1 2 3 4 5; do cmp "$T/l$i" "$M/l$i" || fail "l$i"; done
g1=$(gets)
[ "$((g1 - g0))" -ge 3 ] || fail "cache_max=100000 kept more than 2 files of 40 KB ($((g1 - g0)) GETs)"
cvfs_umount "$M"

# cache_max=0: no cache
s3_mount "$M" -o store.cache_max=0
cp "$T/a" "$M/a0"
g0=$(gets)
drop
cmp "$T/a" "$M/a0" || fail "a0"
g1=$(gets)
[ "$g1" -gt "$g0" ] || fail "cache_max=0 still served from a cache"
cvfs_umount "$M"
echo "ok: cache_max bounds the cache; 0 turns it off"
echo PASS
