#!/bin/sh
# Runs every unit test binary and every integration test script, and ends with the line
# "N passed, N failed". Unit tests are cmocka binaries in $BUILD/tests; integration tests are
# tests/integration/t*.sh, each printing "PASS: what" / "FAIL: what" per check.
# TESTS=pattern limits integration scripts to names matching the shell pattern.
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
export BUILD PARKD_TOP="$top" PARKD_BIN="$top/$BUILD/parkd" PARKD_TOOLS="$top/$BUILD/tools"
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT INT TERM

for t in "$top/$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    CMOCKA_MESSAGE_OUTPUT=stdout "$t" >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then cat "$log"; fi
    echo "unit $(basename "$t"): $p passed, $f failed"
done

for t in "$top"/tests/integration/t*.sh; do
    [ -f "$t" ] || continue
    case "$(basename "$t")" in ${TESTS:-*}) ;; *) continue ;; esac
    timeout 300 sh "$t" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS: ' "$log")
    f=$(grep -c '^FAIL: ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "FAIL: $(basename "$t") exited $rc"; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ] || [ -n "$VERBOSE" ]; then cat "$log"; fi
    echo "integration $(basename "$t"): $p passed, $f failed"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
