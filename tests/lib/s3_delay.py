#!/usr/bin/env python3
"""An HTTP proxy for the S3 tests that holds some requests for a while.

    s3_delay.py PORTFILE UPSTREAM METHOD PATH_REGEX SECONDS HELDFILE

Listens on a free loopback port (written to PORTFILE once listening) and
forwards every request to UPSTREAM (http://127.0.0.1:PORT).  A request whose
method is METHOD and whose path matches PATH_REGEX is held SECONDS before it
is forwarded; while one is held, HELDFILE exists (the test waits for it).
"""
import http.client
import http.server
import os
import re
import sys
import threading
import time
import urllib.parse

portfile, upstream, method, regex, seconds, heldfile = sys.argv[1:7]
up = urllib.parse.urlsplit(upstream)
pat = re.compile(regex)
delay = float(seconds)
held = 0
lock = threading.Lock()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def relay(self):
        global held
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        if self.command == method and pat.search(self.path):
            with lock:
                held += 1
                open(heldfile, "w").close()
            time.sleep(delay)
            with lock:
                held -= 1
                if held == 0:
                    os.unlink(heldfile)
        c = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        self.send_response_only(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", r.getheader("Content-Length") or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
srv.daemon_threads = True
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
