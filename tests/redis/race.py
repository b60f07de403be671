#!/usr/bin/env python3
"""Random name operations on a few shared names, for race.sh.

  race.py DIR SEED N

Creates, writes, renames (within and across two directories, over existing
names too), links, unlinks, mkdirs and rmdirs N times over 6 names in DIR,
DIR/a and DIR/b.  Errors that a race explains (the name went or came, the
directory filled) are expected; any other error (EIO, EAGAIN, ...) fails."""
import errno
import os
import random
import sys

d, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
dirs = [d, os.path.join(d, "a"), os.path.join(d, "b"), os.path.join(d, "a", "n0")]
names = ["n%d" % i for i in range(6)]
# EPERM: link of a directory
RACE = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR,
        errno.EINVAL, errno.ESTALE, errno.EBUSY, errno.EMLINK, errno.EPERM}
counts = {}


def p():
    return os.path.join(rnd.choice(dirs), rnd.choice(names))


for i in range(n):
    op = rnd.choice(["create", "write", "rename", "rename", "unlink", "mkdir", "rmdir",
                     "link", "stat"])
    try:
        if op == "create":
            os.close(os.open(p(), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        elif op == "write":
            fd = os.open(p(), os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwrite(fd, b"x" * rnd.randint(1, 9000), rnd.randint(0, 70000))
            os.close(fd)
        elif op == "rename":
            os.rename(p(), p())
        elif op == "unlink":
            os.unlink(p())
        elif op == "mkdir":
            os.mkdir(p())
        elif op == "rmdir":
            os.rmdir(p())
        elif op == "link":
            os.link(p(), p())
        else:
            os.lstat(p())
        counts[op] = counts.get(op, 0) + 1
    except OSError as e:
        if e.errno not in RACE:
            sys.exit("%s: unexpected error %s" % (op, e))
print("done %s" % sorted(counts.items()))
