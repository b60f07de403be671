# Redis helpers for shell tests.  Source this file (after tests/lib/mount.sh if
# you mount too).  Each server lives in a directory of its own, listens on a unix
# socket there (no TCP), and keeps nothing on disk unless asked.
#
#   redis_available                 0 if redis-server and redis-cli are installed
#   cvfs_has_redis                  0 if chuk-vfs-mount was built with the redis store
#   redis_start DIR [ARGS...]       starts redis-server in DIR (created) on DIR/redis.sock,
#                                   no persistence unless ARGS say otherwise (ARGS go to
#                                   redis-server, e.g. --requirepass x, --appendonly yes);
#                                   waits until it answers; sets REDIS_URL and REDIS_SOCK
#   redis_cli DIR ARGS...           redis-cli on DIR's server (pass -a via ARGS if needed)
#   redis_pid DIR                   the server's pid
#   redis_stop DIR                  stops it (SHUTDOWN NOSAVE, then SIGKILL), waits
#   redis_kill DIR                  SIGKILL, no shutdown (a crash)
#   redis_stop_all                  stops every server started here (use in an EXIT trap)
#
# Servers log to DIR/redis.log.

declare -gA REDIS_PIDS=()
declare -gA REDIS_ARGS=()

redis_available() {
	command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1
}

cvfs_has_redis() {
	local bin=${CVFS_MOUNT_BIN:-$(dirname "${BASH_SOURCE[0]}")/../../build/chuk-vfs-mount}
	local d out
	d=$(mktemp -d /tmp/cvfs-redis-probe.XXXXXX) || return 1
	out=$("$bin" -f -m "$d/m" -b redis --redis-url "unix://$d/none.sock" 2>&1)
	rm -rf "$d"
	! grep -q "not built" <<<"$out"
}

redis_start() {
	local dir=$1
	shift
	mkdir -p "$dir"
	dir=$(realpath "$dir")
	rm -f "$dir/redis.sock"
	redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
		--dir "$dir" --save '' --appendonly no --daemonize no \
		--logfile "$dir/redis.log" "$@" >/dev/null 2>&1 &
	REDIS_PIDS[$dir]=$!
	REDIS_ARGS[$dir]="$*"
	REDIS_SOCK=$dir/redis.sock
	REDIS_URL=unix://$dir/redis.sock
	local i
	for ((i = 0; i < 100; i++)); do
		if [ -S "$dir/redis.sock" ] &&
			redis-cli -s "$dir/redis.sock" --no-auth-warning PING 2>/dev/null |
			grep -qE 'PONG|NOAUTH'; then
			return 0
		fi
		if ! kill -0 "${REDIS_PIDS[$dir]}" 2>/dev/null; then
			echo "redis_start: redis-server in $dir died:" >&2
			tail -n 20 "$dir/redis.log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "redis_start: redis-server in $dir not answering after 5 s" >&2
	return 1
}

redis_cli() {
	local dir
	dir=$(realpath "$1")
	shift
	redis-cli -s "$dir/redis.sock" --no-auth-warning "$@"
}

redis_pid() {
	local dir
	dir=$(realpath "$1")
	echo "${REDIS_PIDS[$dir]:-}"
}

_redis_wait_gone() {
	local pid=$1 i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
}

redis_stop() {
	local dir
	dir=$(realpath "$1")
	local pid=${REDIS_PIDS[$dir]:-}
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	_redis_wait_gone "$pid"
	unset "REDIS_PIDS[$dir]"
}

redis_kill() {
	local dir
	dir=$(realpath "$1")
	local pid=${REDIS_PIDS[$dir]:-}
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null || true
	_redis_wait_gone "$pid"
	unset "REDIS_PIDS[$dir]"
}

redis_stop_all() {
	local d
	for d in "${!REDIS_PIDS[@]}"; do
		redis_stop "$d"
	done
}
