#!/usr/bin/env python3
"""Lock helper for tests/redis/locks.sh.

  lk.py hold PATH READY SECS OP...   applies OPs in order on one descriptor,
                                     touches READY, sleeps SECS, exits
  lk.py try PATH OP                  exit 0 if OP is granted at once, 1 if it
                                     conflicts (EAGAIN/EACCES/EWOULDBLOCK)
  lk.py wait PATH OP                 applies OP blocking (F_SETLKW / flock);
                                     exit 0 once granted, 2 if interrupted
  lk.py getlk PATH OP                prints "TYPE START LEN PID" of the lock
                                     that conflicts with OP, or "UNLCK"

OP: W:START:LEN, R:START:LEN, U:START:LEN (fcntl, LEN 0 = to the end) or
    FX, FS, FU (flock exclusive, shared, unlock).
"""
import errno
import fcntl
import os
import signal
import struct
import sys
import time

TYPES = {"W": fcntl.F_WRLCK, "R": fcntl.F_RDLCK, "U": fcntl.F_UNLCK}
NAMES = {fcntl.F_WRLCK: "W", fcntl.F_RDLCK: "R", fcntl.F_UNLCK: "UNLCK"}
FLOCKS = {"FX": fcntl.LOCK_EX, "FS": fcntl.LOCK_SH, "FU": fcntl.LOCK_UN}
FMT = "@hhqqi4x"  # struct flock on Linux/LP64


def flock_arg(op):
    t, start, length = op.split(":")
    return struct.pack(FMT, TYPES[t], os.SEEK_SET, int(start), int(length), 0)


def apply(fd, op, block):
    if op in FLOCKS:
        mode = FLOCKS[op]
        if not block and mode != fcntl.LOCK_UN:
            mode |= fcntl.LOCK_NB
        fcntl.flock(fd, mode)
    else:
        fcntl.fcntl(fd, fcntl.F_SETLKW if block else fcntl.F_SETLK, flock_arg(op))


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    fd = os.open(path, os.O_RDWR)
    if cmd == "hold":
        ready, secs = sys.argv[3], float(sys.argv[4])
        for op in sys.argv[5:]:
            apply(fd, op, False)
        open(ready, "w").close()
        time.sleep(secs)
        return 0
    op = sys.argv[3]
    if cmd == "try":
        try:
            apply(fd, op, False)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return 1
            raise
        return 0
    if cmd == "wait":
        class Interrupted(Exception):
            pass

        def on_term(*_):
            raise Interrupted()

        # SIGTERM interrupts the wait (the daemon must answer EINTR) and
        # this exits 2, instead of dying from the signal
        signal.signal(signal.SIGTERM, on_term)
        try:
            apply(fd, op, True)
        except Interrupted:
            return 2
        return 0
    if cmd == "getlk":
        r = fcntl.fcntl(fd, fcntl.F_GETLK, flock_arg(op))
        t, _, start, length, pid = struct.unpack(FMT, r)
        if t == fcntl.F_UNLCK:
            print("UNLCK")
        else:
            print(NAMES[t], start, length, pid)
        return 0
    raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    sys.exit(main())
