#!/usr/bin/env python3
"""A TCP proxy in front of an S3 server whose behaviour can be switched while
it runs, for the write-back failure tests (tests/s3/wbfail.sh).

    s3proxy.py PORT TARGET_PORT MODE_FILE

MODE_FILE holds one word, read every 50 ms (a missing or empty file is
"pass"):

    pass     bytes go to 127.0.0.1:TARGET_PORT and back
    refuse   nothing listens on PORT: connections are refused
    503      every request is read, then answered 503 SlowDown
    403      every request is read, then answered 403 AccessDenied

At every change of mode the connections open so far are closed, so a client
with kept-alive connections meets the new mode at its next request.  The
number of requests answered with an error is written to MODE_FILE.count.
"""
import os
import select
import socket
import sys
import threading
import time

port, target, mode_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
conns = set()  # sockets of the current mode, closed at the next change
answered = 0


def read_mode():
    try:
        with open(mode_file) as f:
            m = f.read().strip()
    except OSError:
        m = ""
    return m if m in ("pass", "refuse", "503", "403") else "pass"


def track(*socks):
    with lock:
        conns.update(socks)


def close_all():
    with lock:
        socks = list(conns)
        conns.clear()
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def passthrough(c):
    try:
        u = socket.create_connection(("127.0.0.1", target))
    except OSError:
        c.close()
        return
    track(u)
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()


def answer(c, status):
    """Reads each request (headers and Content-Length bytes of body, so the
    client is not cut off mid-send) and answers it with an S3 error."""
    global answered
    code, reason, text = {
        "503": ("SlowDown", "Service Unavailable", "Please reduce your request rate."),
        "403": ("AccessDenied", "Forbidden", "Access Denied"),
    }[status]
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            while len(buf) < length:
                d = c.recv(min(1 << 20, length - len(buf)))
                if not d:
                    return
                buf += d
            buf = buf[length:]
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                    "<Message>%s</Message></Error>" % (code, text)).encode()
            method = head.split(b" ", 1)[0]
            c.sendall(b"HTTP/1.1 %s %s\r\nContent-Type: application/xml\r\n"
                      b"Content-Length: %d\r\n\r\n%s" %
                      (status.encode(), reason.encode(), len(body),
                       b"" if method == b"HEAD" else body))
            with lock:
                answered += 1
                n = answered
            with open(mode_file + ".count.tmp", "w") as f:
                f.write("%d\n" % n)
            os.replace(mode_file + ".count.tmp", mode_file + ".count")
    except OSError:
        pass
    finally:
        try:
            c.close()
        except OSError:
            pass


def listen():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for _ in range(100):
        try:
            s.bind(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.05)
    s.listen(64)
    return s


ls = None
mode = None
while True:
    m = read_mode()
    if m != mode:
        mode = m
        close_all()
        if mode == "refuse" and ls is not None:
            ls.close()
            ls = None
        elif mode != "refuse" and ls is None:
            ls = listen()
    if ls is None:
        time.sleep(0.05)
        continue
    r, _, _ = select.select([ls], [], [], 0.05)
    if not r:
        continue
    try:
        c, _ = ls.accept()
    except OSError:
        continue
    track(c)
    if mode == "pass":
        passthrough(c)
    else:
        threading.Thread(target=answer, args=(c, mode), daemon=True).start()
