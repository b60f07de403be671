# The S3 test proxy (tests/lib/s3_proxy.py) between a mount and s3rver: checks
# SigV4 signatures with botocore and injects faults.  Source after s3.sh.
#
#   sp_require            exit 77 unless /usr/bin/python3 has botocore
#   sp_start [ARGS]       start it in front of $S3_PORT (ARGS: --sigcheck,
#                         --keys AK:SK[:TOKEN],...); sets SP_PORT, SP_URL, SP_PID
#   sp_config JSON        POST /__proxy/config ({"keys": [...], "rules": [...],
#                         "reset": true})
#   sp_stat EXPR          a Python expression over the stats dict `s` (sigfail,
#                         badkey, failures, log, rules, requests), printed
#   sp_count METHOD REGEX requests of METHOD whose decoded path matches REGEX
#   sp_stop               stop it (by its PID)
SP_PY=/usr/bin/python3
SP_SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/s3_proxy.py
SP_PID="" SP_PORT="" SP_URL=""

sp_require() {
	if ! "$SP_PY" -c 'import botocore.auth' 2>/dev/null; then
		echo "SKIP: $SP_PY cannot import botocore (Debian: python3-botocore)" >&2
		exit 77
	fi
}

sp_start() {
	local i
	SP_PORT=$(s3_free_port)
	SP_URL=http://127.0.0.1:$SP_PORT
	"$SP_PY" -u "$SP_SCRIPT" serve "$SP_PORT" "$S3_PORT" "$@" >>"${T:-/tmp}/proxy.log" 2>&1 &
	SP_PID=$!
	for ((i = 0; i < 200; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$SP_PORT") 2>/dev/null && return 0
		kill -0 "$SP_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "the S3 test proxy did not start:" >&2
	tail -5 "${T:-/tmp}/proxy.log" >&2
	return 1
}

sp_config() {
	"$SP_PY" "$SP_SCRIPT" ctl "$SP_PORT" POST /__proxy/config "$1" >/dev/null
}

sp_stat() {
	"$SP_PY" "$SP_SCRIPT" ctl "$SP_PORT" GET /__proxy/stats |
		"$SP_PY" -c 'import json, sys; s = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

sp_count() {
	sp_stat "sum(1 for l in s['log'] if l[0] == '$1' and __import__('re').search(r'''$2''', l[1]))"
}

sp_stop() {
	[ -n "$SP_PID" ] || return 0
	kill "$SP_PID" 2>/dev/null || true
	wait "$SP_PID" 2>/dev/null || true
	SP_PID=""
}
