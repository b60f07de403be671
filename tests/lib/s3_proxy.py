#!/usr/bin/python3
"""An HTTP proxy between a mount and s3rver, for the S3 tests.

    s3_proxy.py serve PORT TARGET_PORT [--sigcheck] [--keys AK:SK[:TOKEN],...]
    s3_proxy.py ctl PORT GET|POST PATH [JSON]

serve: listens on 127.0.0.1:PORT and forwards every request to s3rver on
127.0.0.1:TARGET_PORT (keep-alive on both sides), re-signed with s3rver's key
(S3RVER/S3RVER) by botocore so that any key pair the proxy accepts works.

--sigcheck: checks the SigV4 signature of every request the way S3 does,
with botocore's signer over a request rebuilt from what was received: the
method, the path and the query (decoded, then encoded as SigV4 wants), the
headers named in SignedHeaders (each must have been received), the
X-Amz-Date received, region us-east-1, service s3, and the secret of the
access key (one of --keys, default S3RVER:S3RVER).  A key it does not know
gets 403 InvalidAccessKeyId; a session token other than the key's 403
ExpiredToken (InvalidToken when none was sent); a signature that differs
403 SignatureDoesNotMatch (counted in "sigfail", the reason in "failures").

Faults: rules (POST /__proxy/config {"rules": [...]}) are tried in order on
every request; the first that matches and has hits left acts:
    {"method": "PUT", "path": REGEX (searched in the decoded path),
     "query": REGEX, "times": N (-1: always),
     "action": "error", "status": 503, "code": "SlowDown"}
    "action": "cut", "after": BYTES   read that much of the body, then reset
                                      the connection (no answer)
    "action": "hang"                  read the request, never answer
    "action": "delay", "seconds": S   hold the request S seconds, then go on
                                      as if no rule had matched ("held"
                                      counts those being held)
Control (never signed, never forwarded):
    GET  /__proxy/stats   {"requests", "held", "sigfail", "badkey", "failures",
                          "log": [[method, path, query, status], ...],
                          "rules": [hits of each rule]}
    POST /__proxy/config  {"keys": [...], "rules": [...], "reset": true}
"""
import hashlib
import http.client
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

UPSTREAM_KEY = ("S3RVER", "S3RVER")
REGION, SERVICE = "us-east-1", "s3"
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})$")


class State:
    def __init__(self, sigcheck, keys):
        self.lock = threading.Lock()
        self.sigcheck = sigcheck
        self.keys = keys  # ak -> (sk, token or None)
        self.rules = []
        self.held = 0  # requests a "delay" rule holds now (not reset)
        self.reset()

    def reset(self):
        self.requests = 0
        self.sigfail = 0
        self.badkey = 0
        self.failures = []
        self.log = []
        for r in self.rules:
            r["hits"] = 0


def parse_keys(spec):
    keys = {}
    for item in spec:
        parts = item.split(":")
        keys[parts[0]] = (parts[1], parts[2] if len(parts) > 2 and parts[2] else None)
    return keys


def s3_quote(s, safe):
    return urllib.parse.quote(s, safe=safe)


def canonical_path(raw):
    """The path S3 signs: each byte of the decoded path encoded once."""
    return s3_quote(urllib.parse.unquote(raw, errors="strict"), "/-_.~")


def query_pairs(raw):
    pairs = []
    for part in raw.split("&") if raw else []:
        k, _, v = part.partition("=")
        pairs.append((urllib.parse.unquote(k, errors="strict"),
                      urllib.parse.unquote(v, errors="strict")))
    return pairs


class Reject(Exception):
    def __init__(self, status, code, msg, sig=False):
        super().__init__(msg)
        self.status, self.code, self.msg, self.sig = status, code, msg, sig


def check_signature(st, method, target, hdrs, body):
    """hdrs: [(lower name, value)] as received.  Raises Reject."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest, HTTPHeaders
    from botocore.credentials import Credentials

    got = {}
    for n, v in hdrs:
        got.setdefault(n, []).append(v)
    auth = got.get("authorization")
    if not auth:
        raise Reject(403, "AccessDenied", "request not signed", sig=True)
    m = AUTH_RE.match(auth[0])
    if not m:
        raise Reject(400, "AuthorizationHeaderMalformed", "bad Authorization: " + auth[0],
                     sig=True)
    ak, day, region, service, signed, sig = m.groups()
    with st.lock:
        key = st.keys.get(ak)
    if key is None:
        raise Reject(403, "InvalidAccessKeyId", "unknown access key " + ak)
    sk, token = key
    if token is not None:
        sent = got.get("x-amz-security-token")
        if not sent:
            raise Reject(403, "InvalidToken", "no session token for " + ak)
        if sent[0] != token:
            raise Reject(403, "ExpiredToken", "the session token of " + ak + " expired")
    names = signed.split(";")
    if names != sorted(set(names)):
        raise Reject(403, "SignatureDoesNotMatch", "SignedHeaders not sorted: " + signed,
                     sig=True)
    for n in names:
        if n not in got:
            raise Reject(403, "SignatureDoesNotMatch",
                         "SignedHeaders names '%s', which was not sent" % n, sig=True)
    for n in ("host", "x-amz-date", "x-amz-content-sha256"):
        if n not in names:
            raise Reject(403, "SignatureDoesNotMatch", n + " not signed", sig=True)
    for n in got:
        if n.startswith("x-amz-") and n not in names:
            raise Reject(403, "AccessDenied",
                         "header %s present but not signed" % n, sig=True)
    date = got["x-amz-date"][0]
    if day != date[:8] or region != REGION or service != SERVICE:
        raise Reject(403, "SignatureDoesNotMatch",
                     "credential scope %s/%s/%s, date %s" % (day, region, service, date),
                     sig=True)
    sha = got["x-amz-content-sha256"][0]
    if sha not in ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER") and \
            sha != hashlib.sha256(body).hexdigest():
        raise Reject(400, "XAmzContentSHA256Mismatch", "payload hash differs", sig=True)

    path, _, query = target.partition("?")
    try:
        cpath = canonical_path(path)
        params = query_pairs(query)
    except UnicodeDecodeError:
        raise Reject(400, "InvalidURI", "path or query not UTF-8", sig=True)
    headers = HTTPHeaders()
    for n in names:
        for v in got[n]:
            headers.add_header(n, v)

    class Verifier(S3SigV4Auth):
        def headers_to_sign(self, request):
            return headers  # exactly the signed ones, as S3 does

    v = Verifier(Credentials(ak, sk), SERVICE, REGION)
    req = AWSRequest(method=method, url="http://" + got["host"][0] + cpath,
                     headers=headers, params=params)
    req.context["timestamp"] = date
    creq = v.canonical_request(req)
    want = v.signature(v.string_to_sign(req, creq), req)
    if v.signed_headers(headers) != signed:
        raise Reject(403, "SignatureDoesNotMatch", "SignedHeaders %s" % signed, sig=True)
    if want != sig:
        raise Reject(403, "SignatureDoesNotMatch",
                     "signature differs; canonical request:\n" + creq, sig=True)


def resign(method, target, hdrs, body, port):
    """The request as forwarded: signed with s3rver's key by botocore."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    drop = {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
            "expect", "host", "content-length", "connection", "user-agent", "accept",
            "transfer-encoding"}
    keep = [(n, v) for n, v in hdrs if n not in drop]
    path, _, query = target.partition("?")
    req = AWSRequest(method=method, url="http://127.0.0.1:%d%s" % (port, path),
                     headers=dict(keep), params=query_pairs(query), data=body)
    req.headers["host"] = "127.0.0.1:%d" % port
    S3SigV4Auth(Credentials(*UPSTREAM_KEY), SERVICE, REGION).add_auth(req)
    return [(n, v) for n, v in req.headers.items()]


def error_body(code, msg):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
            "<Message>%s</Message></Error>" % (code, msg.replace("&", "&amp;")
                                               .replace("<", "&lt;"))).encode()


class Handler(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        self.up = None

    def upstream(self, method, target, hdrs, body):
        for attempt in (0, 1):
            if self.up is None:
                self.up = http.client.HTTPConnection("127.0.0.1", self.server.target,
                                                     timeout=300)
            try:
                self.up.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for n, v in hdrs:
                    self.up.putheader(n, v)
                self.up.putheader("Content-Length", str(len(body)))
                self.up.endheaders(body)
                r = self.up.getresponse()
                data = r.read()
                return r.status, r.reason, r.getheaders(), data, r.will_close
            except (OSError, http.client.HTTPException):
                self.up.close()
                self.up = None
                if attempt:
                    raise
        raise OSError("unreachable")

    def reply(self, status, reason, hdrs, body, head=False):
        out = ["HTTP/1.1 %d %s" % (status, reason)]
        for n, v in hdrs:
            if n.lower() in ("content-length", "transfer-encoding", "connection", "keep-alive"):
                continue
            out.append("%s: %s" % (n, v))
        out.append("Content-Length: %d" % len(body))
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        if not head:
            self.wfile.write(body)
        self.wfile.flush()

    def reset_conn(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()

    def handle(self):
        st = self.server.st
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            line = line.decode("latin-1").rstrip("\r\n")
            if not line:
                continue
            method, target, _ = line.split(" ", 2)
            hdrs = []
            while True:
                h = self.rfile.readline(65537).decode("latin-1")
                if h in ("\r\n", "\n", ""):
                    break
                n, _, v = h.partition(":")
                hdrs.append((n.strip().lower(), v.strip()))
            hd = dict(hdrs)
            blen = int(hd.get("content-length", "0"))
            path, _, query = target.partition("?")
            dpath = urllib.parse.unquote(path)

            if path.startswith("/__proxy/"):
                body = self.rfile.read(blen) if blen else b""
                self.control(method, path, body)
                continue

            rule = None
            with st.lock:
                st.requests += 1
                for r in st.rules:
                    if r.get("times", -1) == 0:
                        continue
                    if r.get("method") and r["method"] != method:
                        continue
                    if r.get("path") and not re.search(r["path"], dpath):
                        continue
                    if r.get("query") and not re.search(r["query"], query):
                        continue
                    if r.get("times", -1) > 0:
                        r["times"] -= 1
                    r["hits"] = r.get("hits", 0) + 1
                    rule = r
                    break
            if rule and rule["action"] == "cut":
                after = min(int(rule.get("after", 0)), blen)
                if after:
                    self.rfile.read(after)
                with st.lock:
                    st.log.append([method, dpath, query, "cut"])
                self.reset_conn()
                return
            if rule and rule["action"] == "hang":
                with st.lock:
                    st.log.append([method, dpath, query, "hang"])
                while self.rfile.read(65536):
                    pass
                return
            body = self.rfile.read(blen) if blen else b""
            if rule and rule["action"] == "delay":
                with st.lock:
                    st.held += 1
                time.sleep(float(rule.get("seconds", 1)))
                with st.lock:
                    st.held -= 1
            if rule and rule["action"] == "error":
                status = int(rule.get("status", 503))
                code = rule.get("code", "SlowDown")
                with st.lock:
                    st.log.append([method, dpath, query, status])
                self.reply(status, "Injected", [("Content-Type", "application/xml")],
                           b"" if method == "HEAD" else error_body(code, "injected"),
                           head=method == "HEAD")
                continue
            try:
                if st.sigcheck:
                    check_signature(st, method, target, hdrs, body)
            except Reject as e:
                with st.lock:
                    st.log.append([method, dpath, query, e.status])
                    if e.sig:
                        st.sigfail += 1
                    else:
                        st.badkey += 1
                    if len(st.failures) < 50:
                        st.failures.append("%s %s: %s %s" % (method, target, e.code, e.msg))
                self.reply(e.status, "Refused", [("Content-Type", "application/xml")],
                           b"" if method == "HEAD" else error_body(e.code, e.msg),
                           head=method == "HEAD")
                continue
            fwd = resign(method, target, hdrs, body, self.server.target)
            try:
                status, reason, rh, data, close = self.upstream(method, target, fwd, body)
            except (OSError, http.client.HTTPException):
                with st.lock:
                    st.log.append([method, dpath, query, "down"])
                self.reset_conn()
                return
            with st.lock:
                st.log.append([method, dpath, query, status])
            if method == "HEAD":
                self.reply_head(status, reason, rh)
            else:
                self.reply(status, reason, rh, data)

    def reply_head(self, status, reason, hdrs):
        out = ["HTTP/1.1 %d %s" % (status, reason)]
        for n, v in hdrs:
            if n.lower() in ("transfer-encoding", "connection", "keep-alive"):
                continue
            out.append("%s: %s" % (n, v))
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        self.wfile.flush()

    def control(self, method, path, body):
        st = self.server.st
        if path == "/__proxy/config" and method == "POST":
            cfg = json.loads(body or b"{}")
            with st.lock:
                if "keys" in cfg:
                    st.keys = parse_keys(cfg["keys"])
                if "rules" in cfg:
                    st.rules = cfg["rules"]
                    for r in st.rules:
                        r["hits"] = 0
                if cfg.get("reset"):
                    st.reset()
            out = b"{}"
        else:
            with st.lock:
                out = json.dumps({"requests": st.requests, "held": st.held,
                                  "sigfail": st.sigfail,
                                  "badkey": st.badkey, "failures": st.failures,
                                  "log": st.log,
                                  "rules": [r.get("hits", 0) for r in st.rules]}).encode()
        self.reply(200, "OK", [("Content-Type", "application/json")], out)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "ctl":
        port, method, path = int(sys.argv[2]), sys.argv[3], sys.argv[4]
        body = sys.argv[5].encode() if len(sys.argv) > 5 else None
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request(method, path, body=body)
        r = c.getresponse()
        sys.stdout.write(r.read().decode() + "\n")
        return 0 if r.status == 200 else 1
    if len(sys.argv) < 4 or sys.argv[1] != "serve":
        sys.stderr.write(__doc__)
        return 2
    port, target = int(sys.argv[2]), int(sys.argv[3])
    sigcheck = "--sigcheck" in sys.argv
    keys = ["%s:%s" % UPSTREAM_KEY]
    if "--keys" in sys.argv:
        keys = sys.argv[sys.argv.index("--keys") + 1].split(",")
    import botocore.auth  # noqa: F401  (fail at start, not at the first request)
    srv = Server(("127.0.0.1", port), Handler)
    srv.st = State(sigcheck, parse_keys(keys))
    srv.target = target
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
