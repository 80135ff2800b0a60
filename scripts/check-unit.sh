#!/bin/sh
# Checks systemd/parkd.service the way CI does: `systemd-analyze verify` must be clean and
# `systemd-analyze security --offline=yes` must rate it 2.0 or lower ("OK" or better).
# Works without systemd as PID 1 (containers): both commands only read files.
#
#   sh scripts/check-unit.sh            prints PASS:/FAIL: lines, exits non-zero on failure
#   MAX_EXPOSURE=1.5 sh scripts/check-unit.sh
#
# The unit holds @SBINDIR@ and @SYSCONFDIR@, which `make install` substitutes; here they are
# substituted into a copy in a temporary directory, with ExecStart= pointing at the built binary
# (or a stub when it is not built), since verify insists that the executable exists. The man
# pages named by Documentation= are looked up in this tree's man/ directory.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
unit=$top/systemd/parkd.service
max=${MAX_EXPOSURE:-2.0}
fails=0

passes=0
pass() { echo "PASS: $1"; passes=$((passes + 1)); }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "FAIL: systemd-analyze is installed (expected it on PATH, got nothing)"
    exit 1
fi
if [ ! -f "$unit" ]; then
    echo "FAIL: $unit exists"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parkd-unit.XXXXXX") || { echo "FAIL: mktemp -d"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -x "$top/$BUILD/parkd" ]; then
    sbindir=$top/$BUILD
else
    sbindir=$tmp/sbin
    mkdir -p "$sbindir"
    printf '#!/bin/sh\nexit 0\n' >"$sbindir/parkd"
    chmod 0755 "$sbindir/parkd"
fi
mkdir -p "$tmp/unit" "$tmp/man/man5" "$tmp/man/man8"
sed "s|@SBINDIR@|$sbindir|g; s|@SYSCONFDIR@|/etc|g" "$unit" >"$tmp/unit/parkd.service"

left=$(grep -n '@[A-Z_]*@' "$tmp/unit/parkd.service")
if [ -z "$left" ]; then pass "unit: only @SBINDIR@ and @SYSCONFDIR@ to substitute"; else
    fail "unit: placeholders other than @SBINDIR@/@SYSCONFDIR@ left: $left"; fi

# Documentation=man:... is checked by verify with man(1); point it at our pages.
man_opt=--man=yes
if command -v man >/dev/null 2>&1 && [ -f "$top/man/parkd.8" ] && [ -f "$top/man/parkd.yaml.5" ]; then
    cp "$top/man/parkd.8" "$tmp/man/man8/"
    cp "$top/man/parkd.yaml.5" "$tmp/man/man5/"
else
    man_opt=--man=no
    echo "note: man(1) or the man pages missing: Documentation= not checked"
fi

cd "$tmp/unit" || exit 1
out=$(MANPATH=$tmp/man SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$man_opt" ./parkd.service 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
    pass "systemd-analyze verify parkd.service is clean"
else
    fail "systemd-analyze verify parkd.service (rc $rc): $(printf '%s' "$out" | tr '\n' ' ')"
fi

out=$(SYSTEMD_COLORS=0 systemd-analyze security --offline=yes --no-pager ./parkd.service 2>&1)
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for parkd\.service: *\([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
    fail "systemd-analyze security --offline=yes gives an exposure level (got: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' '))"
elif awk -v l="$level" -v m="$max" 'BEGIN { exit !(l + 0 <= m + 0) }'; then
    pass "systemd-analyze security exposure $level <= $max ($(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for parkd\.service: *[0-9.]* *\([A-Z]*\).*/\1/p'))"
else
    fail "systemd-analyze security exposure $level > $max"
    printf '%s\n' "$out" | grep '✗' | sed 's/^/  /'
fi

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
