#!/usr/bin/env python3
"""Runs N file operations of one kind in DIR, for the round-trip test (rtt.sh).

  ops.py KIND DIR N

KIND: create (open O_CREAT|O_EXCL, close), stat (lstat), write4k (create,
write 4 KiB, close), append4k (open an existing file, write 4 KiB, close),
unlink, rename (fNNN -> rNNN), mkdir, rmdir, chmod.  Names are DIR/fNNNNN (or
dNNNNN for directories, rNNNNN after a rename).  Exits 1 at the first failure
or wrong answer."""
import os
import stat
import sys

kind, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
buf = bytes((i * 7) & 0xFF for i in range(4096))


def f(i, p="f"):
    return os.path.join(d, "%s%05d" % (p, i))


for i in range(n):
    if kind == "create":
        os.close(os.open(f(i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    elif kind == "stat":
        st = os.lstat(f(i))
        if not stat.S_ISREG(st.st_mode):
            sys.exit("lstat %s: not a regular file" % f(i))
    elif kind == "write4k":
        fd = os.open(f(i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        if os.write(fd, buf) != len(buf):
            sys.exit("short write")
        os.close(fd)
    elif kind == "append4k":
        fd = os.open(f(i), os.O_WRONLY)
        if os.pwrite(fd, buf, 0) != len(buf):
            sys.exit("short write")
        os.close(fd)
    elif kind == "unlink":
        os.unlink(f(i))
    elif kind == "rename":
        os.rename(f(i), f(i, "r"))
    elif kind == "mkdir":
        os.mkdir(f(i, "d"), 0o755)
    elif kind == "rmdir":
        os.rmdir(f(i, "d"))
    elif kind == "chmod":
        os.chmod(f(i), 0o600)
    else:
        sys.exit("unknown kind " + kind)
