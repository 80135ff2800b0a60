#!/bin/sh
# What CI runs (via `make ci`, the README's test command): the strict build with every test,
# the same under ASan + UBSan, the threaded parts under TSan, a libFuzzer smoke of every target,
# the systemd unit checks, and the Debian package under a real systemd (tests/systemd/run.sh).
# Each stage's "N passed, N failed" line is added up (a stage without one counts as one check,
# passed or failed by its exit status), and the last line is the total. A stage that exits 77
# is skipped (it printed why): shown as SKIP and counted apart, neither passed nor failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
passed=0
failed=0
skipped=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM

stage() {
    name=$1
    shift
    echo "=== $name: $*"
    "$@" >"$out" 2>&1
    rc=$?
    cat "$out"
    if [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1))
        echo "=== $name: SKIP ($(sed -n 's/^SKIP: //p' "$out" | tail -n 1))"
        return
    fi
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
[ -f tests/systemd/run.sh ] && stage systemd env REBUILD_DEB=1 sh tests/systemd/run.sh

if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"
else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ]
