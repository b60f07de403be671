#!/bin/bash
# Reads: a sequential read of 64 MiB (through the read-ahead window) and a
# random-access pattern are byte-exact; `ls -l` of a directory of 1500
# entries (HEADs in parallel) shows the right sizes and modes.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test ra
s3_start
M=$T/m
head -c 64M /dev/urandom >"$T/big"
s3_mount "$M"
cp "$T/big" "$M/big"
mkdir "$M/many"
python3 - "$M/many" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(1500):
    with open(f"{d}/f{i}", "wb") as f:
        f.write(b"x" * (i % 97))
    if i % 10 == 0:
        os.chmod(f"{d}/f{i}", 0o600)
PY
cvfs_umount "$M"

# a fresh mount: no page cache, no metadata known.  A sequential read goes
# through windows growing from 1 MiB to 32 MiB, two of them fetched ahead
# of the reader, each with two GETs: 7 windows for 64 MiB, not a GET per
# read the kernel sends (512 of 128 KiB)
export CVFS_S3_STATS=1
s3_mount "$M"
g0=$(s3_stat "$M" GET)
dd if="$M/big" bs=128k status=none | cmp - "$T/big" || fail "sequential read of 64 MiB"
g1=$(s3_stat "$M" GET)
[ $((g1 - g0)) -ge 2 ] && [ $((g1 - g0)) -le 24 ] || fail "sequential read of 64 MiB sent $((g1 - g0)) GETs"
echo "ok: sequential read, $((g1 - g0)) GETs"
# readers that stop early (the file closed while windows are on the wire),
# then the whole file again
for i in 1 2 3 4 5; do
	head -c $((i * 3))M "$M/big" | cmp - <(head -c $((i * 3))M "$T/big") || fail "a read of the first $((i * 3)) MiB"
done
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
cmp "$T/big" "$M/big" || fail "sequential read after early closes"
unset CVFS_S3_STATS
cvfs_umount "$M"

# through the library, 1 MiB reads (the size of the first window; the
# kernel sends 256 KiB ones): windows too, not a GET per read
if [ -n "${CVFS_S3_APIREAD:-}" ]; then
	CVFS_S3_STATS=1 "$CVFS_S3_APIREAD" "$S3_URL" "$S3_BUCKET" /big "$T/big" 2>"$T/api.log" ||
		fail "a read through the library: $(cat "$T/api.log")"
	g=$(grep -o "GET [0-9]*" "$T/api.log" | tail -1 | grep -o '[0-9]*$')
	[ "$g" -ge 2 ] && [ "$g" -le 24 ] || fail "64 MiB read through the library in 1 MiB reads: $g GETs"
	echo "ok: 1 MiB reads through the library, $g GETs"
fi
s3_mount "$M"
python3 - "$M/big" "$T/big" <<'PY' || fail "random access"
import os, random, sys
ref = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_RDONLY)
rnd = random.Random(7)
for i in range(400):
    off = rnd.randrange(0, len(ref))
    n = rnd.choice([1, 511, 4096, 65536, 1 << 20, 3 << 20])
    got = os.pread(fd, n, off)
    if got != ref[off:off + n]:
        sys.exit(f"random read at {off}+{n} differs")
# sequential runs broken by jumps, backwards too
off = 0
while off < len(ref):
    n = rnd.choice([4096, 131072, 1 << 20])
    got = os.pread(fd, n, off)
    if got != ref[off:off + n]:
        sys.exit(f"read at {off}+{n} differs")
    off += n
    if rnd.random() < 0.02:
        off = rnd.randrange(0, len(ref))
    elif rnd.random() < 0.01:
        off = max(0, off - (5 << 20))
os.close(fd)
PY
# ls -l of 1500 entries: sizes and modes as written
(cd "$M/many" && ls -l | awk 'NR > 1 {print $1, $5, $9}' | sort) >"$T/got"
python3 - >"$T/want" <<'PY'
for i in range(1500):
    print("-rw-------" if i % 10 == 0 else "-rw-r--r--", i % 97, f"f{i}")
PY
sort -o "$T/want" "$T/want"
diff "$T/want" "$T/got" >/dev/null || { diff "$T/want" "$T/got" | head; fail "ls -l of 1500 entries"; }
cvfs_umount "$M"
echo PASS
