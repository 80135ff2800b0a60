#!/bin/sh
# Builds parkd's libFuzzer targets with clang (ASan + UBSan, UB fatal) and runs each for a while.
#
#   sh tests/fuzz/run.sh [TARGET...]        TARGET: payload topic time config uplink (default: all)
#
# Environment:
#   FUZZ_SECONDS=60    time per target (CI smoke: 30)
#   FUZZ_RUNS=N        run N inputs per target instead of a time (both given: whichever ends first)
#   FUZZ_BUILD=build-fuzz   where binaries, the working corpus and crash artifacts go
#   FUZZ_ARGS=...      extra libFuzzer flags (e.g. -jobs=2, -max_len=4096)
#   CLANG=clang-14     the compiler (clang-14, else clang)
#
# The seed corpora in tests/fuzz/corpus/TARGET are read only; what the fuzzer finds goes to
# $FUZZ_BUILD/corpus/TARGET, so a run never dirties the tree. Crash inputs are written to
# $FUZZ_BUILD/artifacts/ and the run ends non-zero. Each target's last line says
# "fuzz TARGET: N executions, 0 crashes" (or how it failed); the run ends with
# "fuzz: N passed, N failed", counting targets (the line tests/ci.sh adds up).
#
# Debian packages: clang-14 and libclang-rt-14-dev (libFuzzer's runtime and the sanitizers).
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RUNS=${FUZZ_RUNS:-}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_ARGS=${FUZZ_ARGS:-}
if [ -z "${CLANG:-}" ]; then
    if command -v clang-14 >/dev/null 2>&1; then CLANG=clang-14; else CLANG=clang; fi
fi
command -v "$CLANG" >/dev/null 2>&1 || {
    echo "fuzz: $CLANG not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
}

CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter
-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Idaemon"

# The daemon sources and pkg-config packages each target needs.
srcs_of() {
    case "$1" in
        payload|topic|time) echo "daemon/payload.c" ;;
        config) echo "daemon/config.c daemon/util.c daemon/uplink.c daemon/payload.c" ;;
        uplink) echo "daemon/uplink.c daemon/payload.c" ;;
    esac
}
pkgs_of() {
    case "$1" in
        payload|topic|time) echo "jansson" ;;
        config) echo "yaml-0.1 jansson" ;;
        uplink) echo "jansson" ;;
    esac
}

targets=${*:-payload topic time config uplink}
for t in $targets; do
    [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "fuzz: no target $t (tests/fuzz/fuzz_$t.c)" >&2; exit 64; }
done

mkdir -p "$FUZZ_BUILD/artifacts" || exit 1
failed=0
n_passed=0
n_failed=0
for t in $targets; do
    bin=$FUZZ_BUILD/fuzz_$t
    pkgs=$(pkgs_of "$t")
    # shellcheck disable=SC2046,SC2086  # word splitting of flag lists is intended
    if ! $CLANG $CFLAGS $(pkg-config --cflags $pkgs) -o "$bin" "tests/fuzz/fuzz_$t.c" \
            $(srcs_of "$t") $(pkg-config --libs $pkgs) -lm; then
        echo "fuzz $t: build failed"
        failed=1
        n_failed=$((n_failed + 1))
        continue
    fi
    work=$FUZZ_BUILD/corpus/$t
    seeds=tests/fuzz/corpus/$t
    mkdir -p "$work"
    dict=
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    runs=
    [ -n "$FUZZ_RUNS" ] && runs="-runs=$FUZZ_RUNS"
    log=$FUZZ_BUILD/fuzz_$t.log
    echo "fuzz $t: running ${FUZZ_RUNS:+$FUZZ_RUNS inputs or }${FUZZ_SECONDS}s (log $log)"
    # shellcheck disable=SC2086
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$bin" -max_total_time="$FUZZ_SECONDS" $runs $dict -print_final_stats=1 \
        -artifact_prefix="$FUZZ_BUILD/artifacts/$t-" $FUZZ_ARGS "$work" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $t: ${execs:-?} executions, 0 crashes"
        n_passed=$((n_passed + 1))
    else
        failed=1
        n_failed=$((n_failed + 1))
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; artifacts:"
        ls "$FUZZ_BUILD/artifacts/" | grep "^$t-" | sed "s|^|  $FUZZ_BUILD/artifacts/|"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_|.*runtime error)' "$log" | head -n 5
    fi
done
echo "fuzz: $n_passed passed, $n_failed failed"
exit "$failed"
