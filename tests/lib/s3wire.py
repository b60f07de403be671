#!/usr/bin/env python3
"""An HTTP proxy in front of an S3 server that records every request.

    s3wire.py PORT TARGET_PORT LOG

Each request is written to LOG as one line once its answer went back:

    START END STATUS METHOD PATH QUERY

(START and END: time.monotonic() when the request's head arrived and when
the answer was sent; QUERY is "-" when there is none).  If the file LOG.fail
holds a number N, every UploadPart of part N (PUT with partNumber=N and
uploadId) is answered 403 AccessDenied by the proxy, without reaching the
server: a part that fails for good.  If LOG.etag exists, the ETags of
UploadPart answers get '&<x>' added (characters an entity-tag may hold and
XML must escape), and a CompleteMultipartUpload body is parsed as XML
(400 MalformedXML if it is not) and sent on with the server's ETags back.

Every request gets a connection to the server of its own ("Connection:
close" both ways), so the proxy never has to find where an answer ends.
Request bodies must have a Content-Length (the S3 store always sends one);
"Expect: 100-continue" is answered by the proxy.
"""
import os
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET

port, target, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()


def record(start, status, method, path, query):
    line = "%.6f %.6f %s %s %s %s\n" % (start, time.monotonic(), status, method, path, query or "-")
    with lock:
        with open(log, "a") as f:
            f.write(line)


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None, buf
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def failing_part(method, query):
    if method != "PUT" or "uploadId=" not in query:
        return False
    try:
        with open(log + ".fail") as f:
            n = f.read().strip()
    except OSError:
        return False
    return bool(n) and ("partNumber=%s" % n) in query.split("&")


MARK = "&<x>"
ET.register_namespace("", "http://s3.amazonaws.com/doc/2006-03-01/")


def odd_etags():
    return os.path.exists(log + ".etag")


def serve(c):
    try:
        head, rest = read_head(c, b"")
        if head is None:
            return
        start = time.monotonic()
        lines = head.decode("latin-1").split("\r\n")
        method, url, _ = lines[0].split(" ", 2)
        path, _, query = url.partition("?")
        hdrs = []
        length = 0
        expect = False
        for h in lines[1:]:
            if not h:
                continue
            name, _, value = h.partition(":")
            k = name.strip().lower()
            if k == "content-length":
                length = int(value.strip())
            if k == "expect" and "100-continue" in value.lower():
                expect = True
                continue
            if k in ("connection", "keep-alive"):
                continue
            hdrs.append(h)
        if failing_part(method, query):
            if not expect:  # take the body, then refuse
                need = length - len(rest)
                while need > 0:
                    d = c.recv(min(need, 1 << 20))
                    if not d:
                        break
                    need -= len(d)
            body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                    b"<Message>refused by s3wire.py</Message></Error>")
            c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            record(start, 403, method, path, query)
            return
        if method == "POST" and "uploadId=" in query and odd_etags():
            need = length - len(rest)
            while need > 0:
                d = c.recv(min(need, 1 << 20))
                if not d:
                    return
                rest += d
                need -= len(d)
            try:
                doc = ET.fromstring(rest[:length])
            except ET.ParseError:
                body = b"<Error><Code>MalformedXML</Code></Error>"
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                          % len(body) + body)
                record(start, 400, method, path, query)
                return
            for e in doc.iter():
                if e.tag.endswith("ETag") and e.text:
                    e.text = e.text.replace(MARK, "")
            rest = ET.tostring(doc)
            length = len(rest)
            hdrs = [h for h in hdrs if h.partition(":")[0].strip().lower() != "content-length"]
            hdrs.append("Content-Length: %d" % length)
        u = socket.create_connection(("127.0.0.1", target))
        try:
            u.sendall(("\r\n".join([lines[0]] + hdrs + ["Connection: close", "", ""])).encode("latin-1"))
            if expect:
                c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            need = length
            if rest:
                u.sendall(rest[:need])
                need -= min(len(rest), need)
            while need > 0:
                d = c.recv(min(need, 1 << 20))
                if not d:
                    return
                u.sendall(d)
                need -= len(d)
            # the answer: its head with "Connection: close", then all the rest
            rhead, rrest = read_head(u, b"")
            if rhead is None:
                return
            rl = rhead.decode("latin-1").split("\r\n")
            status = rl[0].split(" ")[1]
            keep = [h for h in rl[1:] if h and h.split(":")[0].strip().lower() not in ("connection", "keep-alive")]
            if method == "PUT" and "uploadId=" in query and odd_etags():
                keep = [h[:-1] + MARK + '"' if h.lower().startswith("etag:") and h.endswith('"') else h
                        for h in keep]
            c.sendall(("\r\n".join([rl[0]] + keep + ["Connection: close", "", ""])).encode("latin-1") + rrest)
            while True:
                d = u.recv(1 << 20)
                if not d:
                    break
                c.sendall(d)
            record(start, status, method, path, query)
        finally:
            u.close()
    except OSError:
        pass
    finally:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.close()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(128)
while True:
    conn, _ = ls.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
