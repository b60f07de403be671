# s3rver helpers for the S3 store's tests.  Source after mount.sh.
#
#   s3_require            exit 77 unless the s3 store is built in and node/npm can
#                         run s3rver (installed on demand into $CVFS_NPM_DIR,
#                         default /var/tmp/chuk-vfs-npm)
#   s3_start [PORT]       start s3rver on 127.0.0.1 (a free port unless given) with
#                         the data dir $S3_DATA (a fresh temp dir unless set) and the
#                         bucket $S3_BUCKET; sets S3_PORT, S3_URL, S3_PID
#   s3_stop               stop it (by its PID) and wait
#   s3_mount DIR [args]   cvfs_mount DIR -b s3 --bucket $S3_BUCKET --endpoint-url $S3_URL
#   s3_aws ARGS...        aws --endpoint-url $S3_URL ARGS...
#   s3_syncfs DIR         fsync(2) of the mount's root directory: the S3 store
#                         sends everything queued (write-back) and waits for it
#   s3_stat DIR METHOD    syncfs, then the count of METHOD requests (GET HEAD PUT
#                         DELETE POST LIST) the store printed with CVFS_S3_STATS=1
#   s3_cleanup            stop s3rver, remove the temp dirs (part of the EXIT trap)
#
# s3rver accepts the access key S3RVER (secret S3RVER); these are exported.

: "${CVFS_NPM_DIR:=/var/tmp/chuk-vfs-npm}"
: "${S3_BUCKET:=cvfs-test}"
S3RVER_VERSION=3.7.1
S3_PID="" S3_PORT="" S3_URL="" S3_OWN_DATA=""
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3

s3_require() {
	local out probe
	probe=$(mktemp -d /tmp/cvfs-s3-probe.XXXXXX)
	out=$("$CVFS_MOUNT_BIN" -f -m "$probe" -b s3 2>&1) || true
	rmdir "$probe" 2>/dev/null || true
	if grep -q "not built" <<<"$out"; then
		echo "SKIP: the s3 store is not built in" >&2
		exit 77
	fi
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "SKIP: node and npm are needed for s3rver" >&2
		exit 77
	fi
	S3RVER_BIN=$CVFS_NPM_DIR/node_modules/s3rver/bin/s3rver.js
	if [ ! -f "$S3RVER_BIN" ]; then
		mkdir -p "$CVFS_NPM_DIR"
		if ! (cd "$CVFS_NPM_DIR" && timeout 600 npm install --no-audit --no-fund \
			"s3rver@$S3RVER_VERSION" >npm-install.log 2>&1); then
			echo "SKIP: npm install s3rver@$S3RVER_VERSION failed (see $CVFS_NPM_DIR/npm-install.log)" >&2
			exit 77
		fi
	fi
}

s3_free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

s3_start() {
	local try
	# a port picked at random may be taken meanwhile: pick another
	for try in 1 2 3 4 5; do
		s3_start1 "$@" && return 0
		[ -z "${1:-}" ] && grep -q EADDRINUSE "$S3_DATA.log" 2>/dev/null || return 1
		S3_PORT=""
	done
	return 1
}

s3_start1() {
	S3_PORT=${1:-${S3_PORT:-$(s3_free_port)}}
	if [ -z "${S3_DATA:-}" ]; then
		S3_DATA=$(mktemp -d /tmp/cvfs-s3rver.XXXXXX)
		S3_OWN_DATA=$S3_DATA
	fi
	S3_URL=http://127.0.0.1:$S3_PORT
	# s3rver 3.7.1 makes continuation tokens (listings past 1000 keys) with
	# DES, which OpenSSL 3 only has in its legacy provider.
	node --openssl-legacy-provider "$S3RVER_BIN" -d "$S3_DATA" -a 127.0.0.1 -p "$S3_PORT" --silent \
		--configure-bucket "$S3_BUCKET" >>"$S3_DATA.log" 2>&1 &
	S3_PID=$!
	local i
	for ((i = 0; i < 150; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$S3_PID" 2>/dev/null; then
			echo "s3rver exited at start:" >&2
			tail -5 "$S3_DATA.log" >&2
			S3_PID=""
			return 1
		fi
		sleep 0.1
	done
	echo "s3rver did not listen on $S3_PORT within 15 s" >&2
	return 1
}

s3_stop() {
	[ -n "$S3_PID" ] || return 0
	kill "$S3_PID" 2>/dev/null || true
	local i
	for ((i = 0; i < 50; i++)); do
		kill -0 "$S3_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$S3_PID" 2>/dev/null || true
	wait "$S3_PID" 2>/dev/null || true
	S3_PID=""
}

s3_mount() {
	local dir=$1
	shift
	cvfs_mount "$dir" -b s3 --bucket "$S3_BUCKET" --endpoint-url "$S3_URL" "$@"
}

s3_aws() {
	aws --endpoint-url "$S3_URL" "$@"
}

s3_syncfs() {
	python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$1"
}

s3_stat() {
	s3_syncfs "$1"
	grep -o "requests .*;" "$1.log" | tail -1 | grep -o "$2 [0-9]*" | grep -o '[0-9]*$'
}

s3_cleanup() {
	s3_flaky_stop
	s3_proxy_stop
	! declare -F sp_stop >/dev/null || sp_stop # tests/lib/s3_proxy.sh
	moto_stop
	s3_stop
	if [ -n "$S3_OWN_DATA" ]; then
		rm -rf "$S3_OWN_DATA" "$S3_OWN_DATA.log"
	fi
}

# A TCP proxy in front of the S3 server, to cut the connection mid-transfer:
#   s3_proxy_start PORT TARGET_PORT [CUT_AFTER_BYTES]   sets S3_PROXY_PID
#   (with CUT_AFTER_BYTES it closes every connection and stops listening once
#   that many request bytes went through: a server dying mid-upload)
#   s3_proxy_stop
S3_PROXY_PID=""
s3_proxy_start() {
	local port=$1 target=$2 cut=${3:-0}
	python3 -u - "$port" "$target" "$cut" <<'PY' &
import os, socket, sys, threading
port, target, cut = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port)); ls.listen(64)
sent = 0; lock = threading.Lock()
def pump(a, b, up):
    global sent
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if up and cut:
                with lock:
                    sent += len(d)
                    if sent > cut:
                        os._exit(0)  # every connection and the listener die
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
while True:
    c, _ = ls.accept()
    u = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pump, args=(c, u, True), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, False), daemon=True).start()
PY
	S3_PROXY_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
s3_proxy_stop() {
	[ -n "$S3_PROXY_PID" ] || return 0
	kill "$S3_PROXY_PID" 2>/dev/null || true
	wait "$S3_PROXY_PID" 2>/dev/null || true
	S3_PROXY_PID=""
}

# A real s3fs on the bucket (when installed), for the interop checks:
#   s3fs_mount DIR [ARGS...]   mounts it in the background (ARGS go to s3fs,
#                              e.g. -o use_xattr); returns 1, with its log on
#                              stderr, if it is not mounted within 10 s
#   s3fs_umount DIR            unmounts it and waits for it
S3FS_PID=""
s3fs_mount() {
	local dir=$1 i
	shift
	mkdir -p "$dir"
	printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$dir.pass"
	chmod 600 "$dir.pass"
	s3fs "$S3_BUCKET" "$dir" -f -o url="$S3_URL" -o use_path_request_style \
		-o passwd_file="$dir.pass" "$@" >"$dir.log" 2>&1 &
	S3FS_PID=$!
	for ((i = 0; i < 100; i++)); do mountpoint -q "$dir" && return 0; sleep 0.1; done
	echo "s3fs did not mount: $(cat "$dir.log")" >&2
	return 1
}
s3fs_umount() {
	fusermount3 -u "$1" 2>/dev/null || fusermount -u "$1" || true
	[ -n "$S3FS_PID" ] && wait "$S3FS_PID" 2>/dev/null
	S3FS_PID=""
}

# moto_server (Python moto), when installed: an S3 with AbortMultipartUpload,
# ListMultipartUploads and UploadPartCopy, which s3rver 3.7.1 lacks.
#   moto_start   sets MOTO_PORT, MOTO_URL, MOTO_PID (returns 1 if unavailable)
MOTO_PID="" MOTO_PORT="" MOTO_URL=""
moto_start() {
	command -v moto_server >/dev/null || return 1
	MOTO_PORT=$(s3_free_port)
	MOTO_URL=http://127.0.0.1:$MOTO_PORT
	moto_server -H 127.0.0.1 -p "$MOTO_PORT" >/dev/null 2>&1 &
	MOTO_PID=$!
	local i
	for ((i = 0; i < 150; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null; then
			aws --endpoint-url "$MOTO_URL" s3 mb "s3://$S3_BUCKET" >/dev/null && return 0
			return 1
		fi
		kill -0 "$MOTO_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
moto_stop() {
	[ -n "$MOTO_PID" ] || return 0
	kill "$MOTO_PID" 2>/dev/null || true
	wait "$MOTO_PID" 2>/dev/null || true
	MOTO_PID=""
}

# A proxy in front of s3rver that can be switched while it runs between
# passing requests on, refusing connections, answering 503 and answering 403
# (tests/lib/s3proxy.py):
#   s3_flaky_start          sets FLAKY_PORT, FLAKY_URL, FLAKY_PID, FLAKY_MODE
#                           (the control file; mode "pass")
#   s3_flaky pass|refuse|503|403   switches (in effect within ~0.2 s)
#   s3_flaky_stop
FLAKY_PID="" FLAKY_PORT="" FLAKY_URL="" FLAKY_MODE=""
s3_flaky_start() {
	FLAKY_PORT=$(s3_free_port)
	FLAKY_URL=http://127.0.0.1:$FLAKY_PORT
	FLAKY_MODE=$(mktemp /tmp/cvfs-s3-flaky.XXXXXX)
	echo pass >"$FLAKY_MODE"
	python3 -u "$(dirname "${BASH_SOURCE[0]}")/s3proxy.py" "$FLAKY_PORT" "$S3_PORT" \
		"$FLAKY_MODE" >"$FLAKY_MODE.log" 2>&1 &
	FLAKY_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$FLAKY_PORT") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "s3proxy did not listen on $FLAKY_PORT" >&2
	return 1
}
s3_flaky() {
	echo "$1" >"$FLAKY_MODE.tmp"
	mv "$FLAKY_MODE.tmp" "$FLAKY_MODE"
	sleep 0.2
}
s3_flaky_stop() {
	[ -n "$FLAKY_PID" ] || return 0
	kill "$FLAKY_PID" 2>/dev/null || true
	wait "$FLAKY_PID" 2>/dev/null || true
	rm -f "$FLAKY_MODE" "$FLAKY_MODE".*
	FLAKY_PID=""
}
