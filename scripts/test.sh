#!/usr/bin/env bash
# Builds chuk-vfs and runs every test, twice: in the normal build and in an
# AddressSanitizer + UndefinedBehaviorSanitizer build (a leak, an overflow or
# undefined behaviour in the daemon fails the test that mounted it).
# Needs root (FUSE mounts, a private redis-server, mount(8) helper tests).
#
#   scripts/test.sh [--quick]     --quick: the normal build only
#   MESON_TEST_ARGS="--suite unit" scripts/test.sh   to pick suites
set -u
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

setup() { # DIR ARGS...
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

total_pass=0 total_fail=0 total_skip=0 rc=0
run_suite() { # BUILDDIR LABEL
	local dir=$1 label=$2
	echo "== $label: meson test -C $dir"
	# shellcheck disable=SC2086
	meson test -C "$dir" --print-errorlogs --num-processes 2 ${MESON_TEST_ARGS:-}
	local r=$?
	[ $r -eq 0 ] || rc=1
	local counts
	counts=$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
	set -- $counts
	total_pass=$((total_pass + $1)) total_fail=$((total_fail + $2)) total_skip=$((total_skip + $3))
	[ $r -eq 0 ] || [ "$2" -gt 0 ] || total_fail=$((total_fail + 1))
}

scripts/deps.sh || { echo "cannot install the Debian packages"; echo "0 passed, 1 failed"; exit 1; }
if ! setup build -Dwerror=true || ! ninja -C build; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi
run_suite build "normal build"

if [ $quick = 0 ]; then
	if setup build-asan -Dwerror=true -Dbuildtype=debug -Db_sanitize=address,undefined \
		-Db_lundef=false && ninja -C build-asan; then
		ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=24} \
		CVFS_SANITIZED=1 run_suite build-asan "ASan+UBSan build"
	else
		echo "sanitizer build failed"
		total_fail=$((total_fail + 1))
		rc=1
	fi
fi

echo
echo "tests: $total_pass passed, $total_fail failed, $total_skip skipped"
exit $rc
