#!/bin/bash
# Retries, through a fault-injecting proxy (tests/lib/s3_proxy.py): answers
# worth another attempt (503 SlowDown, 500 InternalError, 429, 400
# RequestTimeout, a connection cut mid-body) are retried with backoff until
# the operation succeeds, with the body sent again whole; answers that would
# be the same next time (403, 404, 501) are sent once and reach the caller
# as EACCES, ENOENT, EIO; attempts are bounded (retries=, 4 by default).
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$HERE/../lib/s3_proxy.sh"
s3_test retry aws
sp_require
s3_start
sp_start
M=$T/m
head -c 300000 /dev/urandom >"$T/small"
head -c 6500000 /dev/urandom >"$T/big" # two parts of a multipart upload

# op write|read PATH [SRC]: prints "ok" or the errno's name, and the seconds
op() {
	python3 - "$@" <<'PY'
import errno, os, sys, time
what, path = sys.argv[1], sys.argv[2]
t0 = time.time()
try:
    if what == "write":
        data = open(sys.argv[3], "rb").read()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            done = 0
            while done < len(data):
                done += os.write(fd, data[done:])
        finally:
            os.close(fd)
    elif what == "stat":
        os.stat(path)
    elif what == "mkdir":
        os.mkdir(path)
    else:
        with open(path, "rb") as f:
            f.read()
    r = "ok"
except OSError as e:
    r = errno.errorcode[e.errno]
print(r, "%.1f" % (time.time() - t0))
PY
}

# rules JSON: the proxy's fault rules, counters reset
rules() { sp_config "{\"rules\": $1, \"reset\": true}"; }
hits() { sp_stat "s['rules'][${1:-0}]"; }
# answers METHOD KEY STATUS: how many requests to KEY got STATUS
answers() { sp_stat "sum(1 for l in s['log'] if l[0] == '$1' and l[1] == '/$S3_BUCKET/$2' and str(l[3]) == '$3')"; }
in_s3() {
	s3_aws s3 cp --quiet "s3://$S3_BUCKET/$1" "$T/back" || fail "$1 is not in S3"
	cmp "$2" "$T/back" || fail "$1: other bytes in S3"
}
expect() { # expect WANT RESULT...
	local want=$1
	shift
	[ "$1" = "$want" ] || fail "expected $want, got $*"
}

s3_mount "$M" --endpoint-url "$SP_URL" -o store.sync=close -o store.multipart_threshold=1048576 -o store.multipart_part=1048576

# 1. transient answers: retried until the operation succeeds
r=$(rules '[{"method": "PUT", "path": "/t503$", "times": 3, "action": "error", "status": 503, "code": "SlowDown"}]'; op write "$M/t503" "$T/small")
expect ok $r
[ "$(hits)" = 3 ] && [ "$(answers PUT t503 200)" -ge 1 ] || fail "503 SlowDown: $(hits) refused"
in_s3 t503 "$T/small"

r=$(rules '[{"method": "PUT", "path": "/t429$", "times": 2, "action": "error", "status": 429, "code": "TooManyRequests"}]'; op write "$M/t429" "$T/small")
expect ok $r
[ "$(hits)" = 2 ] || fail "429: $(hits) refused"

# S3's RequestTimeout comes with 400: the code decides
r=$(rules '[{"method": "PUT", "path": "/t400rt$", "times": 1, "action": "error", "status": 400, "code": "RequestTimeout"}]'; op write "$M/t400rt" "$T/small")
expect ok $r
[ "$(hits)" = 1 ] || fail "400 RequestTimeout: $(hits) refused"

# the connection cut mid-body, twice: the body goes again from its start
r=$(rules '[{"method": "PUT", "path": "/tcut$", "times": 2, "action": "cut", "after": 100000}]'; op write "$M/tcut" "$T/small")
expect ok $r
[ "$(hits)" = 2 ] || fail "cut: $(hits) cut"
in_s3 tcut "$T/small"

# a part of a multipart upload cut mid-body, then 502 and 504
r=$(rules '[{"method": "PUT", "path": "/tbig$", "query": "partNumber=2", "times": 1, "action": "cut", "after": 500000},
	{"method": "PUT", "path": "/tbig$", "query": "partNumber=1", "times": 1, "action": "error", "status": 502, "code": "BadGateway"},
	{"method": "POST", "path": "/tbig$", "query": "uploadId", "times": 1, "action": "error", "status": 504, "code": "GatewayTimeout"}]'
	op write "$M/tbig" "$T/big")
expect ok $r
[ "$(sp_stat "s['rules']")" = "[1, 1, 1]" ] || fail "multipart faults: $(sp_stat "s['rules'], s['log']")"
in_s3 tbig "$T/big"

# reads: 500 InternalError twice, then the bytes
op write "$M/tread" "$T/small" >/dev/null
cvfs_umount "$M"
s3_mount "$M" --endpoint-url "$SP_URL" -o store.sync=close -o store.multipart_threshold=1048576 -o store.multipart_part=1048576
r=$(rules '[{"method": "GET", "path": "/tread$", "times": 2, "action": "error", "status": 500, "code": "InternalError"}]'; op read "$M/tread")
expect ok $r
[ "$(hits)" = 2 ] || fail "500 on GET: $(hits) refused"
cmp "$T/small" "$M/tread" || fail "read after 500s"

# 2. final answers: one request, the errno of the mapping (mkdir: one PUT
#    of the marker, the error reaches mkdir(2) with sync=close)
final() { # final STATUS CODE ERRNO
	local r
	r=$(rules "[{\"method\": \"PUT\", \"path\": \"/d$1/\$\", \"action\": \"error\", \"status\": $1, \"code\": \"$2\"}]"
		op mkdir "$M/d$1")
	expect "$3" $r
	[ "$(hits)" = 1 ] || fail "$1 $2 sent $(hits) times: $(sp_stat "s['log']")"
}
final 403 AccessDenied EACCES
final 501 NotImplemented EIO
final 409 OperationAborted EIO
final 400 InvalidRequest EIO
final 412 PreconditionFailed EIO
# the same mkdir with a transient answer first: retried
r=$(rules '[{"method": "PUT", "path": "/d503/$", "times": 1, "action": "error", "status": 503, "code": "SlowDown"}]'; op mkdir "$M/d503")
expect ok $r

# a HEAD answered 404 (the object went away after the listing): one HEAD,
# ENOENT; a GET answered 404: ENOENT (the kernel may ask more than once)
cvfs_umount "$M"
s3_mount "$M" --endpoint-url "$SP_URL" -o store.sync=close -o store.multipart_threshold=1048576 -o store.multipart_part=1048576
r=$(rules '[{"method": "HEAD", "path": "/tread$", "action": "error", "status": 404, "code": "NoSuchKey"}]'; op stat "$M/tread")
expect ENOENT $r
[ "$(hits)" = 1 ] || fail "404 sent $(hits) times: $(sp_stat "s['log']")"
cvfs_umount "$M"
s3_mount "$M" --endpoint-url "$SP_URL" -o store.sync=close -o store.multipart_threshold=1048576 -o store.multipart_part=1048576
r=$(rules '[{"method": "GET", "path": "/tread$", "action": "error", "status": 404, "code": "NoSuchKey"}]'; op read "$M/tread")
expect ENOENT $r

# 3. bounded: always 503 is 1 + retries attempts (one mkdir), with backoff
#    between them
r=$(rules '[{"method": "PUT", "path": "/f503/$", "action": "error", "status": 503, "code": "ServiceUnavailable"}]'; op mkdir "$M/f503")
expect EIO $r
[ "$(hits)" = 5 ] || fail "always 503: $(hits) attempts, not 1 + 4 retries"
# backoff of at least 50+100+200+400 ms (half of each step is random)
python3 -c "import sys; sys.exit(float(sys.argv[1]) < 0.7)" "${r#* }" || fail "no backoff: $r"
cvfs_umount "$M"
s3_mount "$M" --endpoint-url "$SP_URL" -o store.sync=close -o store.multipart_threshold=1048576 -o store.multipart_part=1048576 -o store.retries=1
r=$(rules '[{"method": "PUT", "path": "/f503b/$", "action": "error", "status": 503, "code": "SlowDown"}]'; op mkdir "$M/f503b")
expect EIO $r
[ "$(hits)" = 2 ] || fail "retries=1: $(hits) attempts"
rules '[]'
cvfs_umount "$M"
echo PASS
