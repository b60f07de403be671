#!/bin/bash
# Write-back when S3 refuses or cannot be reached (docs/s3.md, "Errors"):
# nothing queued is dropped, failures reach fsync, syncfs, `chuk-vfs status`
# and the unmount's exit status.  The mount talks to s3rver through a proxy
# switched at run time (tests/lib/s3proxy.py) between pass, refuse
# (connection refused), 503 and 403; the bucket is checked with awscli
# straight at s3rver.
#  - changes made while S3 is down (uploads, overwrites, unlink, rename,
#    mkdir, chmod, symlink) all arrive, byte-exact and in order, once it is
#    back, also after minutes of 403 (which used to drop them);
#  - fsync while down: EIO within the bound, again at the next fsync; 0 once
#    it is back; an old object stays whole while its new version fails;
#  - `chuk-vfs status` shows the queue, the failing ops and the last error;
#  - unmount (fusermount3 -u, SIGTERM) with S3 down: exit status 1 and every
#    path not sent named; with journal=1 the next mount sends them.
set -euo pipefail
source "$(dirname "$0")/common.sh"
s3_test wbfail aws
s3_start
s3_flaky_start
B=s3://$S3_BUCKET
M=$T/m
# a failure shows what the daemon said
fail() {
	echo "FAIL: $*" >&2
	[ -f "$M.log" ] && tail -n 80 "$M.log" >&2
	exit 1
}
CVFS=${CVFS_BUILDDIR:-$(dirname "$0")/../../build}/chuk-vfs
# short delays so the test takes seconds: fsync gives up after 4 s with
# nothing on the wire, retries 0.2 s doubling to 1 s, unmount waits 3 s
OPTS=store.wb_delay=200,store.retries=1,store.connect_timeout=2,store.wb_retry_min=0.2
OPTS=$OPTS,store.wb_retry_max=1,store.fsync_timeout=4,store.wb_drain=3,store.list_ttl=1
mnt() {
	cvfs_mount "$M" -b s3 --bucket "$S3_BUCKET" --endpoint-url "$FLAKY_URL" -o "$OPTS$1"
}

# fsync(PATH): prints "ok" or the errno name, then the seconds it took
fsync_of() {
	python3 - "$1" <<'PY'
import errno, os, sys, time
t = time.time()
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    os.fsync(fd)
    r = "ok"
except OSError as e:
    r = errno.errorcode.get(e.errno, str(e.errno))
os.close(fd)
print(r, int(time.time() - t))
PY
}

# fsync(PATH) until it answers ok (S3 back): at most 60 s
fsync_ok() {
	local i r
	for ((i = 0; i < 30; i++)); do
		r=$(fsync_of "$1")
		[ "${r% *}" = ok ] && return 0
		sleep 1
	done
	fail "fsync of $1 still failing: $r"
}

# the value of a line of `chuk-vfs status` (key as printed, e.g. store_status.queued)
status_of() { "$CVFS" status "$M" | awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); print }'; }

# until `chuk-vfs status` shows KEY >= N, at most 30 s
status_at_least() {
	local i v
	for ((i = 0; i < 150; i++)); do
		v=$(status_of "$1")
		[ -n "$v" ] && [ "$v" -ge "$2" ] && return 0
		sleep 0.2
	done
	fail "status: $1 = '$v', not >= $2; $("$CVFS" status "$M")"
}

same() { # KEY LOCALFILE: the object in S3 has exactly these bytes
	s3_aws s3 cp --quiet "$B/$1" "$T/back" || fail "$1 is not in S3"
	cmp -s "$2" "$T/back" || fail "$1: other bytes in S3"
}
absent() { ! s3_aws s3api head-object --bucket "$S3_BUCKET" --key "$1" >/dev/null 2>&1; }

for i in 1 2 3 4; do head -c $((i * 300000 + i)) /dev/urandom >"$T/data$i"; done
: >"$T/empty"

# ---- changes while S3 is down all arrive once it is back ----
mnt ""
echo old >"$M/pre"
echo doomed >"$M/del"
cp "$T/data1" "$M/mv-src"
echo mode >"$M/chm"
mkdir "$M/olddir"
echo inside >"$M/olddir/x"
s3_syncfs "$M"
[ "$(s3_aws s3 cp "$B/pre" -)" = old ] || fail "pre not in S3 before the outage"

s3_flaky refuse
cp "$T/data2" "$M/f2"
cp "$T/data3" "$M/f3"
cp "$T/empty" "$M/f0"
echo new >"$M/pre"
rm "$M/del"
mv "$M/mv-src" "$M/mv-dst"
mkdir "$M/newdir"
chmod 600 "$M/chm"
ln -s f2 "$M/link"
rm "$M/olddir/x"
# one key changed again after its upload failed: the order holds
echo v1 >"$M/ord"
status_at_least store_status.failing 3
echo v2 >"$M/ord"
mv "$M/ord" "$M/ord2"
echo v3 >"$M/ord"

"$CVFS" status "$M" >"$T/status"
sv() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); print }' "$T/status"; }
v=$(sv store_status.queued)
[ "$v" -ge 8 ] || fail "status: queued = $v with 8+ changes waiting"
[ "$(sv store_status.failing)" -ge 1 ] || fail "status: nothing failing"
sv store_status.last_error.error | grep -q . || fail "status: no last error"
sv store_status.last_error.path | grep -q '^/' || fail "status: no path of the last error"
echo "ok: status while S3 is down: queued $v, failing $(sv store_status.failing)," \
	"last error: $(sv store_status.last_error.op) of $(sv store_status.last_error.path):" \
	"$(sv store_status.last_error.error)"

# fsync while down: EIO within the bound (fsync_timeout 4 s + an attempt),
# and again at the next fsync (not just once)
for try in 1 2; do
	r=$(fsync_of "$M/f2")
	[ "${r% *}" = EIO ] || fail "fsync $try of f2 with S3 down: $r"
	[ "${r#* }" -le 30 ] || fail "fsync $try of f2 took ${r#* } s"
done
r=$(fsync_of "$M")
[ "${r% *}" = EIO ] || fail "syncfs with S3 down: $r"
# an old object stays whole while the new version fails
[ "$(s3_aws s3 cp "$B/pre" -)" = old ] || fail "pre changed in S3 while the server was down"
echo "ok: fsync and syncfs with S3 down: EIO (${r#* } s), twice"

# S3 answers 503, then 403 (refused: used to drop every op): still kept
s3_flaky 503
r=$(fsync_of "$M/f3")
[ "${r% *}" = EIO ] || fail "fsync of f3 with S3 answering 503: $r"
s3_flaky 403
r=$(fsync_of "$M/f3")
[ "${r% *}" = EIO ] || fail "fsync of f3 with S3 answering 403: $r"
# let every op meet the 403 a few times (retries at most 1 s apart)
n0=$(cat "$FLAKY_MODE.count" 2>/dev/null || echo 0)
for ((i = 0; i < 100; i++)); do
	n1=$(cat "$FLAKY_MODE.count" 2>/dev/null || echo 0)
	[ "$n1" -ge $((n0 + 30)) ] && break
	sleep 0.1
done
[ "$(status_of store_status.dropped)" = 0 ] || fail "ops dropped: $("$CVFS" status "$M")"
status_of store_status.last_error.by | grep -q refused || fail "status: last error not S3's refusal"
echo "ok: 503 and 403: fsync EIO, nothing dropped ($(status_of store_status.queued) queued)"

s3_flaky pass
fsync_ok "$M/f2"
same f2 "$T/data2"
fsync_ok "$M"
same f3 "$T/data3"
same f0 "$T/empty"
same mv-dst "$T/data1"
absent mv-src || fail "mv-src still in S3"
absent del || fail "del still in S3"
absent olddir/x || fail "olddir/x still in S3"
[ "$(s3_aws s3 cp "$B/pre" -)" = new ] || fail "pre in S3 is not the new version"
[ "$(s3_aws s3 cp "$B/ord" -)" = v3 ] || fail "ord in S3 is not v3"
[ "$(s3_aws s3 cp "$B/ord2" -)" = v2 ] || fail "ord2 in S3 is not v2"
s3_aws s3api head-object --bucket "$S3_BUCKET" --key newdir/ >/dev/null || fail "no newdir/ marker"
meta=$(s3_aws s3api head-object --bucket "$S3_BUCKET" --key chm --query Metadata --output text)
grep -qw 0100600 <<<"$meta" || fail "mode of chm in S3: $meta"
[ "$(s3_aws s3 cp "$B/link" -)" = f2 ] || fail "symlink target in S3"
[ "$(status_of store_status.queued)" = 0 ] || fail "queue not empty: $("$CVFS" status "$M")"
[ "$(status_of store_status.failing)" = 0 ] || fail "ops still failing"
grep -q "went through after" "$M.log" || fail "no 'went through' in the log"
echo "ok: S3 back: every change arrived, byte-exact and in order"

# ---- unmount with S3 down: exit 1, the paths not sent named ----
s3_flaky refuse
cp "$T/data4" "$M/u1"
echo u2 >"$M/u2"
rm "$M/f0"
rc=0
cvfs_umount "$M" || rc=$?
[ "$rc" = 1 ] || fail "unmount with changes not sent: exit $rc"
for p in "upload /u1 (not sent)" "upload /u2 (not sent)" "delete /f0 (not sent)" "they are lost"; do
	grep -qF "$p" "$M.log" || fail "unmount log lacks '$p': $(cat "$M.log")"
done
echo "ok: unmount with S3 down: exit 1, the unsent paths named"
s3_flaky pass
absent u1 || fail "u1 in S3"

# ---- the same with the journal, stopped by SIGTERM: the next mount sends them ----
J="store.journal=1,store.cache_dir=$T/cache"
mkdir -p "$T/cache"
mnt ",$J"
ls "$M" >/dev/null
s3_flaky refuse
cp "$T/data4" "$M/j1"
echo j2 >"$M/j2"
mv "$M/mv-dst" "$M/mv-j"
status_at_least store_status.failing 1
pid=${CVFS_PIDS[$M]}
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
unset "CVFS_PIDS[$M]"
fusermount3 -u "$M" 2>/dev/null || true
[ "$rc" = 1 ] || fail "SIGTERM with changes not sent: exit $rc; $(cat "$M.log")"
for p in "upload /j1 (not sent)" "upload /j2 (not sent)" "rename /mv-dst -> /mv-j (not sent)" \
	"stay in the journal"; do
	grep -qF "$p" "$M.log" || fail "SIGTERM log lacks '$p': $(cat "$M.log")"
done
echo "ok: SIGTERM with S3 down: exit 1, the unsent changes named and kept in the journal"
s3_flaky pass
mnt ",$J"
same j1 "$T/data4"
[ "$(s3_aws s3 cp "$B/j2" -)" = j2 ] || fail "j2 not sent by the next mount"
same mv-j "$T/data1"
absent mv-dst || fail "mv-dst still in S3"
cvfs_umount "$M" || fail "clean unmount after the replay"
echo "ok: the next mount sent what the journal kept"

# ---- sync=close: close reports EIO when S3 refuses; the bytes go up later ----
mnt ",store.sync=close"
rc=0
# open (a lookup in S3) while it answers, then 403 for the upload at close
python3 - "$M/sc" "$T/data2" "$FLAKY_MODE" <<'PY' || rc=$?
import errno, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, open(sys.argv[2], "rb").read())
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write("403\n")
os.replace(sys.argv[3] + ".tmp", sys.argv[3])
time.sleep(0.3)
try:
    os.close(fd)
except OSError as e:
    sys.exit(0 if e.errno == errno.EIO else 3)
sys.exit(2)
PY
[ "$rc" = 0 ] || fail "sync=close: close with S3 answering 403: rc $rc (2: no error, 3: not EIO)"
s3_flaky pass
cvfs_umount "$M" || fail "sync=close: unmount with S3 back"
same sc "$T/data2"
echo "ok: sync=close: close EIO on a 403, the file sent at unmount"
echo PASS
