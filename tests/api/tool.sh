#!/bin/bash
# The chuk-vfs admin command: every command on a store (sqlite when built in,
# memory otherwise), its errors and exit codes, and `status` on a live mount.
set -u
: "${CVFS_TOOL_BIN:?}"
T=$CVFS_TOOL_BIN
. "$(dirname "$0")/../lib/mount.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cvfs-tool-XXXXXX")
trap 'cvfs_cleanup; rm -rf "$work"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# expect RC CMD...: runs CMD, checks its exit code; output in $out, errors in $err
expect() {
	local want=$1
	shift
	out=$("$@" 2>"$work/err")
	local rc=$?
	err=$(cat "$work/err")
	if [ "$rc" = "$want" ]; then ok "[$rc] $*"; else bad "[$rc, expected $want] $*: $err"; fi
}

expect 0 "$T" --help
grep -q "usage:" <<<"$out" || bad "--help: no usage"
expect 0 "$T" --version
grep -q "^chuk-vfs [0-9]" <<<"$out" || bad "--version: '$out'"
expect 2 "$T"
expect 2 "$T" frobnicate /
expect 2 "$T" --no-such-option ls /
expect 2 "$T" ls -z /
expect 2 "$T" mv /only-one
expect 1 "$T" -b no-such-store ls /
grep -q "unknown store" <<<"$err" || bad "unknown store message: $err"
expect 0 "$T" ls /               # memory: empty, but valid
[ -z "$out" ] || bad "memory ls / not empty: $out"

if "$T" -b sqlite --db-path "$work/probe.db" ls / >/dev/null 2>&1; then
	S=("$T" -b sqlite --db-path "$work/t.db")
else
	echo "(sqlite not built in: persistence checks use memory per run)"
	S=()
fi
if [ ${#S[@]} -gt 0 ]; then
	head -c 300000 /dev/urandom >"$work/blob"
	printf 'print("hello")\n' >"$work/hello.py"
	expect 0 "${S[@]}" mkdir -p /src/pkg
	expect 0 "${S[@]}" mkdir -p /src/pkg
	expect 1 "${S[@]}" mkdir /src/pkg
	grep -q "/src/pkg: File exists" <<<"$err" || bad "mkdir message: $err"
	expect 0 "${S[@]}" put "$work/blob" /src/pkg/blob
	expect 0 "${S[@]}" put "$work/hello.py" /src/hello.py
	expect 0 "${S[@]}" put - /src/stdin.txt < <(echo "from stdin")
	expect 0 "${S[@]}" get /src/pkg/blob "$work/blob.out"
	cmp -s "$work/blob" "$work/blob.out" && ok "put/get round trip" || bad "put/get differ"
	expect 0 "${S[@]}" cat /src/stdin.txt
	[ "$out" = "from stdin" ] && ok "cat" || bad "cat: '$out'"
	"${S[@]}" get /src/pkg/blob - | cmp -s - "$work/blob" && ok "get -" || bad "get - differs"
	expect 0 "${S[@]}" ls /src
	[ "$out" = $'hello.py\npkg/\nstdin.txt' ] && ok "ls" || bad "ls: '$out'"
	expect 0 "${S[@]}" ls -l /src/pkg
	grep -Eq '^-rw.* 300000 .* blob$' <<<"$out" && ok "ls -l" || bad "ls -l: '$out'"
	expect 0 "${S[@]}" stat /src/pkg/blob
	grep -q "Size: 300000" <<<"$out" && ok "stat size" || bad "stat: '$out'"
	expect 0 "${S[@]}" mv /src/hello.py /src/pkg/hello.py
	expect 1 "${S[@]}" stat /src/hello.py
	grep -q "/src/hello.py: No such file or directory" <<<"$err" || bad "stat message: $err"
	expect 1 "${S[@]}" cat /src/pkg
	grep -q "Is a directory" <<<"$err" || bad "cat dir message: $err"
	expect 1 "${S[@]}" rm /src
	grep -q "/src: Directory not empty" <<<"$err" || bad "rm message: $err"
	expect 1 "${S[@]}" mv /nope /x
	grep -q "cannot move /nope to /x: No such file or directory" <<<"$err" || bad "mv message: $err"
	expect 1 "${S[@]}" put "$work/missing" /x
	grep -q "$work/missing: No such file or directory" <<<"$err" || bad "put message: $err"
	expect 1 "${S[@]}" get /src/pkg/blob "$work/no/such/dir/x"
	expect 1 "${S[@]}" -r put "$work/blob" /ro
	grep -q "Read-only file system" <<<"$err" || bad "readonly message: $err"
	expect 0 "${S[@]}" rm -r /src/pkg
	expect 1 "${S[@]}" ls /src/pkg
	expect 0 "${S[@]}" rm -f /src/pkg
	# A mount of the same database shows what the tool wrote.
	expect 0 "${S[@]}" put "$work/hello.py" /hello.py
	if cvfs_mount "$work/m" -b sqlite --db-path "$work/t.db"; then
		cmp -s "$work/m/hello.py" "$work/hello.py" && ok "mount sees the tool's file" ||
			bad "mount: hello.py differs"
		cvfs_umount "$work/m" || bad "umount"
	else
		bad "mount of the sqlite store"
	fi
fi

# status on a live mount
if cvfs_mount "$work/s" -o cache_timeout=7; then
	echo data >"$work/s/f"
	cat "$work/s/f" >/dev/null
	expect 0 "$T" status "$work/s"
	grep -Eq '^store +memory$' <<<"$out" && ok "status: store" || bad "status: '$out'"
	grep -Eq '^options.cache_timeout +7$' <<<"$out" && ok "status: cache_timeout" || bad "status: '$out'"
	grep -Eq '^ops.create +[1-9]' <<<"$out" && ok "status: ops" || bad "status: '$out'"
	expect 0 "$T" status --json "$work/s"
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["store"]=="memory", d' <<<"$out" &&
		ok "status --json parses" || bad "status --json: '$out'"
	expect 1 "$T" status "$work"
	grep -q "not the root of a chuk-vfs mount" <<<"$err" || bad "status on a plain dir: $err"
	expect 1 "$T" status "$work/s/f"
	expect 1 "$T" status "$work/none"
	grep -q "No such file or directory" <<<"$err" || bad "status on nothing: $err"
	cvfs_umount "$work/s" || bad "umount"
else
	bad "mount for status"
fi
echo "$fails failure(s)"
[ "$fails" = 0 ]
