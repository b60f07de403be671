#!/bin/bash
# Benchmark (not a test): 10,000 files of 4 KiB written through the Python
# API and read back through the mount, then written through the mount (cp
# from a staging directory) and read back through the API.  One memory store,
# mounted by the same process (cvfs_mount_start).
#
#   bench/api_vs_mount.sh [NFILES]          (build first: ninja -C build)
# CHUK_VFS_LIB overrides the library (default build/libchuk-vfs.so).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH=$root/bindings/python
export CHUK_VFS_LIB=${CHUK_VFS_LIB:-$root/build/libchuk-vfs.so}
export PYTHONDONTWRITEBYTECODE=1
N=${1:-10000}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
work=$(mktemp -d "${TMPDIR:-/tmp}/cvfs-bench-XXXXXX")
trap 'fusermount3 -uz "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/mnt" "$work/stage"
"$PY" - "$work" "$N" <<'PY'
import os, subprocess, sys, time
from chuk_vfs import VirtualFS, mount, MountOptions

work, n = sys.argv[1], int(sys.argv[2])
mnt, stage = f"{work}/mnt", f"{work}/stage"
payload = [os.urandom(4096) for _ in range(16)]
print(f"chuk-vfs bench: {n} files x 4 KiB, memory store, library {os.environ['CHUK_VFS_LIB']}")

def rate(label, t0, count):
    dt = time.perf_counter() - t0
    print(f"  {label:<46} {dt:7.3f} s  {count / dt:10.0f} files/s")

with VirtualFS("memory") as vfs, mount(vfs, mnt, MountOptions()) as m:
    # 1. the Python API writes, the mount reads (cat-like: open/read/close)
    vfs.mkdir("/a")
    t0 = time.perf_counter()
    for i in range(n):
        vfs.write_file(f"/a/f{i:05d}", payload[i % 16])
    rate("API write (VirtualFS.write_file)", t0, n)
    t0 = time.perf_counter()
    for i in range(n):
        with open(f"{mnt}/a/f{i:05d}", "rb") as f:
            assert f.read() == payload[i % 16]
    rate("mount read (open/read/close, this process)", t0, n)
    t0 = time.perf_counter()
    out = subprocess.run(["sh", "-c", f"cat {mnt}/a/* | wc -c"], capture_output=True,
                         check=True).stdout
    assert int(out) == 4096 * n, out
    rate("mount read (one `cat` subprocess)", t0, n)

    # 2. the mount writes (cp from a staging dir), the API reads
    for i in range(n):
        with open(f"{stage}/f{i:05d}", "wb") as f:
            f.write(payload[i % 16])
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", stage, f"{mnt}/b"], check=True)
    rate("mount write (cp -r staging -> mount)", t0, n)
    t0 = time.perf_counter()
    names = vfs.ls("/b")
    assert len(names) == n
    for i in range(n):
        assert vfs.read_file(f"/b/f{i:05d}") == payload[i % 16]
    rate("API read (VirtualFS.read_file)", t0, n)
    t0 = time.perf_counter()
    for i in range(n):
        with open(f"{mnt}/b/f{i:05d}", "rb") as f:
            f.read()
    rate("mount read of the cp'd files (this process)", t0, n)
PY
