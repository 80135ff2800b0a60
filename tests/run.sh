#!/bin/sh
# Runs every unit test binary and every integration test script, and ends with the line
# "N passed, N failed". Unit tests are cmocka binaries in $BUILD/tests; integration tests are
# tests/integration/t*.sh, each printing "PASS: what" / "FAIL: what" per check. Integration
# scripts start their own servers on free ports, so JOBS of them (default 4) run at once.
# TESTS="pattern ..." limits integration scripts to names matching one of the shell patterns.
BUILD=${BUILD:-build}
JOBS=${JOBS:-4}
top=$(cd "$(dirname "$0")/.." && pwd)
export BUILD PARKD_TOP="$top" PARKD_BIN="$top/$BUILD/parkd" PARKD_TOOLS="$top/$BUILD/tools"
# One integration script: its output to $logs/NAME.log, its exit status to $logs/NAME.rc.
if [ "${1:-}" = "--one" ]; then
    name=$(basename "$2" .sh)
    start=$(date +%s)
    timeout 300 sh "$2" >"$3/$name.log" 2>&1
    echo $? >"$3/$name.rc"
    echo $(($(date +%s) - start)) >"$3/$name.secs"
    exit 0
fi

passed=0
failed=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT INT TERM

# The layering rule (README, "Layout"): pure modules never see store.h, mqtt.h or uv.h.
lay=$(sh "$top/scripts/check-layering.sh" 2>&1)
echo "$lay"
p=$(echo "$lay" | sed -n 's/^layering: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(echo "$lay" | sed -n 's/^layering: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))

for t in "$top/$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    log="$logs/unit.log"
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

list="$logs/list"
: >"$list"
for t in "$top"/tests/integration/t*.sh; do
    [ -f "$t" ] || continue
    set -f      # TESTS holds shell patterns, space separated: not globs of this directory
    for pat in ${TESTS:-*}; do
        case "$(basename "$t")" in $pat) echo "$t" >>"$list"; break ;; esac
    done
    set +f
done
xargs -P "$JOBS" -I{} sh "$0" --one {} "$logs" <"$list"

while read -r t; do
    name=$(basename "$t" .sh)
    log="$logs/$name.log"
    rc=$(cat "$logs/$name.rc" 2>/dev/null || echo 1)
    p=$(grep -c '^PASS: ' "$log")
    f=$(grep -c '^FAIL: ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "FAIL: $name exited $rc"; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ] || [ -n "${VERBOSE:-}" ]; then cat "$log"; fi
    echo "integration $name: $p passed, $f failed ($(cat "$logs/$name.secs" 2>/dev/null)s)"
done <"$list"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
