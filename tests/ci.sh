#!/bin/sh
# What CI runs (via `make ci`, the README's test command): the strict build with every test,
# the same under ASan + UBSan, the threaded parts under TSan, a libFuzzer smoke of every target,
# and the systemd unit checks.
# Each stage's "N passed, N failed" line is added up (a stage without one counts as one check,
# passed or failed by its exit status), and the last line is the total.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM

stage() {
    name=$1
    shift
    echo "=== $name: $*"
    "$@" >"$out" 2>&1
    rc=$?
    cat "$out"
    line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^([A-Za-z]+: )?([0-9]+) passed.*/\2/')
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    elif [ "$rc" -eq 0 ]; then p=1; f=0
    else p=0; f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    echo "=== $name: $p passed, $f failed (exit $rc)"
}

stage check make check
stage check-asan make check-asan
stage check-tsan make check-tsan
[ -f tests/fuzz/run.sh ] && stage fuzz-smoke env FUZZ_SECONDS="${FUZZ_SECONDS:-30}" sh tests/fuzz/run.sh
[ -f scripts/check-unit.sh ] && stage unit-file sh scripts/check-unit.sh

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
