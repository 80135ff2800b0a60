#!/bin/sh
# tests/systemd/run.sh (make check-systemd): the Debian package under a real systemd 252.
# A minimal bookworm root (debootstrap, cached in $PARKD_TEST_CACHE/bookworm, default
# /var/cache/parkd-test, with Debian's redis-server and mosquitto in it) is copied, booted with
# systemd-nspawn (private network), and driven with nsenter on the container's PID 1: install the
# .deb with apt, the README's Redis socket settings, start (returns after READY=1), a bay message
# reaches the lot hash, reload with a good and a broken configuration, journal priorities,
# Restart= after SIGKILL, the watchdog after SIGSTOP, an upgrade N -> N+1 that keeps the edited
# conffile, stop. Prints PASS:/FAIL: lines and "systemd: N passed, N failed".
# Exit 77 (after a "SKIP: systemd: why" line) when this machine cannot build or boot the
# container: not root, a tool missing, no mirror, nspawn refuses to boot. Everything it starts is
# stopped (poweroff, then SIGKILL on timeout) and its copy of the root removed, also on Ctrl-C.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
CACHE=${PARKD_TEST_CACHE:-/var/cache/parkd-test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cached=$CACHE/bookworm
SERVER_PKGS="redis-server redis-tools mosquitto mosquitto-clients"
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 LC_ALL=C

passes=0
fails=0
pass() { echo "PASS: $1"; passes=$((passes + 1)); }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
# check WHAT EXPECTED GOT
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1 (expected '$2', got '$3')"; fi; }
skip() { echo "SKIP: systemd: $*"; exit 77; }
t0=$(date +%s)
phase() { echo "# $(($(date +%s) - t0))s: $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
for c in systemd-nspawn debootstrap nsenter dpkg-deb timeout; do
    command -v "$c" >/dev/null 2>&1 || skip "$c is missing (sh scripts/deps.sh installs it)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/parkd-systemd.XXXXXX") || exit 1
run=
nspawn=
pid1=
cleanup() {
    if [ -n "$pid1" ] && kill -0 "$pid1" 2>/dev/null; then
        kill -s RTMIN+4 "$pid1" 2>/dev/null   # systemd: poweroff
        i=0
        while kill -0 "$nspawn" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
        if kill -0 "$nspawn" 2>/dev/null; then
            echo "# the container did not power off in 30 s: SIGKILL" >&2
            kill -KILL "$pid1" 2>/dev/null   # PID 1 of its namespace: takes every process with it
            sleep 1
            kill -KILL "$nspawn" 2>/dev/null
        fi
    elif [ -n "$nspawn" ]; then
        kill -KILL "$nspawn" 2>/dev/null
    fi
    [ -n "$nspawn" ] && wait "$nspawn" 2>/dev/null
    [ -n "$run" ] && rm -rf --one-file-system "$run"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the packages: N from make deb, N+1 built here from the same tree --------------------------
# REBUILD_DEB=1 (tests/ci.sh) builds N first; else the newest in $BUILD/deb (make deb) is N.
deb=$(ls "$top/$BUILD"/deb/parkd_*.deb 2>/dev/null | sort -V | tail -n 1)
if [ -z "$deb" ] || [ "${REBUILD_DEB:-}" = 1 ]; then
    rm -f "$top/$BUILD"/deb/parkd*
    sh "$top/scripts/build-deb.sh" "$top/$BUILD/deb" >/dev/null || { fail "make deb builds the package"; exit 1; }
    deb=$(ls "$top/$BUILD"/deb/parkd_*.deb | sort -V | tail -n 1)
    phase "package built by scripts/build-deb.sh into $BUILD/deb"
fi
ver=$(dpkg-deb -f "$deb" Version)
next=$ver+systemdtest1
sh "$top/scripts/build-deb.sh" --version "$next" "$work/next" >/dev/null 2>&1 ||
    { fail "the package builds as version $next"; exit 1; }
deb2=$work/next/parkd_${next}_$(dpkg-deb -f "$deb" Architecture).deb
phase "packages $ver and $next built"
# The runtime packages the container needs: the package's Depends (first of alternatives).
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*//; s/ //g' | grep . | tr '\n' ' ')

# --- the cached root ---------------------------------------------------------------------------
# Commands in the root while it is not booted: nspawn as a chroot with /proc, /dev, the host's
# network and resolv.conf. policy-rc.d keeps package scripts from starting servers there.
in_root() {
    timeout 900 systemd-nspawn -q --register=no --keep-unit --resolv-conf=copy-host -D "$1" --pipe \
        env DEBIAN_FRONTEND=noninteractive sh -c "$2" </dev/null
}
missing_in() {
    for p in $deps $SERVER_PKGS; do
        s=$(dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${Status}' "$p" 2>/dev/null)
        [ "$s" = "install ok installed" ] || printf '%s ' "$p"
    done
}
install_in() {   # ROOT PKGS...: apt-get install in the root, no services started
    r=$1; shift
    in_root "$r" "printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d &&
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $* >/dev/null;
        rc=\$?; rm -f /usr/sbin/policy-rc.d; apt-get clean; exit \$rc"
}
if [ ! -f "$cached/.parkd-test-complete" ]; then
    phase "no cached root in $cached: debootstrap bookworm from $MIRROR (cold, a few minutes)"
    mkdir -p "$CACHE" || skip "cannot create $CACHE"
    # A finished debootstrap in $cached.new is kept when a later step fails, and reused.
    if [ ! -f "$cached.new/.parkd-debootstrap-done" ]; then
        rm -rf --one-file-system "$cached.new"
        if ! timeout 1200 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
            bookworm "$cached.new" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
            tail -n 5 "$work/debootstrap.log"
            rm -rf --one-file-system "$cached.new"
            skip "debootstrap bookworm from $MIRROR failed (no network or mirror?)"
        fi
        echo parkd-test >"$cached.new/etc/hostname"
        touch "$cached.new/.parkd-debootstrap-done"
    fi
    if ! install_in "$cached.new" $SERVER_PKGS $deps >"$work/prep.log" 2>&1; then
        tail -n 5 "$work/prep.log"
        skip "cannot run commands in the root with systemd-nspawn, or apt-get failed there (see above)"
    fi
    touch "$cached.new/.parkd-test-complete"
    rm -rf --one-file-system "$cached" && mv "$cached.new" "$cached"
    phase "cached root ready: $cached ($(du -sh "$cached" | cut -f1))"
else
    m=$(missing_in "$cached")
    if [ -n "$m" ]; then
        phase "adding to the cached root: $m"
        install_in "$cached" $m >"$work/prep.log" 2>&1 || { tail -n 5 "$work/prep.log"; skip "apt-get install $m in the cached root failed"; }
    fi
    phase "cached root reused: $cached"
fi
m=$(missing_in "$cached")
[ -z "$m" ] || { fail "cached root has $m"; exit 1; }

# --- boot a copy -------------------------------------------------------------------------------
run=$CACHE/run.$$
cp -a --reflink=auto "$cached" "$run" || { fail "copy of the cached root"; exit 1; }
mkdir -p "$run/root/debs" && cp "$deb" "$deb2" "$run/root/debs/"
rm -f "$run/etc/machine-id" && : >"$run/etc/machine-id"
phase "root copied to $run"

systemd-nspawn --register=no --keep-unit --private-network --console=passive -b -D "$run" \
    >"$work/boot.log" 2>&1 &
nspawn=$!
i=0
while [ -z "$pid1" ] && [ $i -lt 30 ] && kill -0 "$nspawn" 2>/dev/null; do
    sleep 1; i=$((i + 1))
    pid1=$(ps -o pid= --ppid "$nspawn" 2>/dev/null | head -n 1 | tr -d ' ')
done
if [ -z "$pid1" ]; then
    tail -n 10 "$work/boot.log"
    skip "systemd-nspawn -b did not start a container (see its output above)"
fi
# inside [SECS] CMD...: CMD in the container (all its namespaces, its root), at most SECS seconds.
inside() {
    secs=60
    case $1 in [0-9]*) secs=$1; shift ;; esac
    timeout "$secs" nsenter -t "$pid1" -m -u -i -n -p -C -r -w \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 SYSTEMD_COLORS=0 SYSTEMD_PAGER= \
        DEBIAN_FRONTEND=noninteractive "$@" </dev/null
}
state=$(inside 120 systemctl is-system-running --wait 2>&1)
case $state in
    running|degraded) pass "container boots with systemd $(inside systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') as PID 1 ($state)" ;;
    *) tail -n 10 "$work/boot.log"; skip "the container did not finish booting (is-system-running: $state)" ;;
esac
[ "$state" = degraded ] && inside systemctl --failed --no-legend | sed 's/^/# failed unit: /'
phase "booted"

# --- Redis on its Unix socket with the README's Debian settings; the package --------------------
sock=/run/redis/redis-server.sock
inside sed -i -e "s|^# *unixsocket .*|unixsocket $sock|" -e 's|^# *unixsocketperm .*|unixsocketperm 770|' \
    /etc/redis/redis.conf
inside systemctl restart redis-server
check "redis-server listens on $sock, mode 770, group redis" "srwxrwx--- redis" \
    "$(inside stat -c '%A %G' "$sock" 2>&1)"
check "mosquitto is active" active "$(inside systemctl is-active mosquitto)"

out=$(inside 300 apt-get install -y --no-install-recommends "/root/debs/$(basename "$deb")" 2>&1)
check "apt-get install ./parkd_${ver}_*.deb exits 0" 0 $?
[ -n "${VERBOSE:-}" ] && printf '%s\n' "$out"
check "the package created the system user parkd" "parkd:/nonexistent:/usr/sbin/nologin" \
    "$(inside getent passwd parkd | cut -d: -f1,6,7)"
check "parkd.service is enabled" enabled "$(inside systemctl is-enabled parkd)"
check "parkd.service is not started by the install" inactive "$(inside systemctl is-active parkd)"
check "the example configuration checks as the service user" "/etc/parkd/parkd.yaml: ok" \
    "$(inside runuser -u parkd -- parkd -c /etc/parkd/parkd.yaml --check 2>&1)"

# The operator's configuration (an edit of the conffile) and the README's socket drop-in; the
# test's own drop-in shortens the watchdog (parkd pings at half of it) and keeps no core dumps.
conf=/etc/parkd/parkd.yaml
cat >"$work/good.yaml" <<EOF
# edited by the operator (tests/systemd/run.sh)
mqtt: {host: 127.0.0.1, port: 1883, client_id: parkd-systemd-test}
redis: {socket: $sock}
http: {listen: "127.0.0.1:8088"}
lots:
  - {id: T1, capacity: 10, source: bays}
EOF
cp "$work/good.yaml" "$run$conf"
mkdir -p "$run/etc/systemd/system/parkd.service.d"
printf '[Service]\nSupplementaryGroups=redis\n' >"$run/etc/systemd/system/parkd.service.d/redis-socket.conf"
printf '[Service]\nWatchdogSec=4s\nLimitCORE=0\n' >"$run/etc/systemd/system/parkd.service.d/test.conf"
inside systemctl daemon-reload
check "multi-user.target is ordered after parkd (a boot waits for its start)" 1 \
    "$(inside systemctl show -p After --value multi-user.target | tr ' ' '\n' | grep -cx parkd.service)"
mainpid() { inside systemctl show -p MainPID --value parkd; }
journal() { inside journalctl -u parkd --no-pager -o cat "$@"; }

# --- start, data, reload ------------------------------------------------------------------------
s=$(date +%s)
inside 120 systemctl start parkd
check "systemctl start parkd exits 0" 0 $?
check "parkd is active as soon as start returns (Type=notify: after READY=1)" active \
    "$(inside systemctl show -p ActiveState --value parkd)"
check "the journal has the ready line when start returns" 1 "$(journal | grep -c 'ready: 1 lots')"
phase "parkd started in $(($(date +%s) - s))s"
check "parkd runs as the system user parkd" parkd \
    "$(inside ps -o user= -p "$(mainpid)" | tr -d ' ')"

inside mosquitto_pub -h 127.0.0.1 -q 1 -t parking/T1/bay/b1 -m 1
hget() { inside redis-cli -s "$sock" --no-raw hget "$1" "$2" | tr -d '"'; }
i=0
while [ "$(hget parkd:lot:T1 occupied)" != 1 ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
check "a bay message reaches the lot hash over the Redis socket (occupied)" 1 "$(hget parkd:lot:T1 occupied)"
check "... and the bays hash" 1 "$(hget parkd:lot:T1:bays b1)"

# The map's files, when the package has them, from the built-in web root inside the sandbox.
if dpkg-deb -c "$deb" | grep -q '/usr/share/parkd/web/index.html$'; then
    check "the packaged map is served (GET / from /usr/share/parkd/web)" "HTTP/1.1 200 OK" \
        "$(inside bash -c 'exec 3<>/dev/tcp/127.0.0.1/8088 && printf "GET / HTTP/1.0\r\n\r\n" >&3 &&
            head -n 1 <&3' | tr -d '\r')"
else
    echo "# the package has no map files (no make web before make deb): GET / not checked"
fi

pid=$(mainpid)
printf '  - {id: T2, capacity: 5, source: bays}\n' >>"$work/good.yaml"
cp "$work/good.yaml" "$run$conf"
inside systemctl reload parkd
check "systemctl reload (good configuration) exits 0" 0 $?
i=0
while [ "$(journal | grep -c 'reload: 2 lots')" -eq 0 ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
check "the reload is applied (journal: reload: 2 lots)" 1 "$(journal | grep -c 'reload: 2 lots')"
check "reload keeps the process" "$pid" "$(mainpid)"

printf 'mqtt: {host: 127.0.0.1}\nlots:\n  - {id: T1, capacity: 10, source: bays, colour: red}\n' >"$run$conf"
inside systemctl reload parkd
check "systemctl reload (broken configuration) exits 0" 0 $?
i=0
while [ "$(journal -p err | grep -c "^$conf:[0-9]*:[0-9]*: ")" -eq 0 ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
check "the broken configuration is logged as FILE:LINE:COL at priority err" 1 \
    "$(journal -p err | grep -c "^$conf:[0-9]*:[0-9]*: ")"
journal -p err | grep "^$conf:" | head -n 2 | sed 's/^/# journal -p err: /'
check "after the rejected reload parkd is still active" active "$(inside systemctl is-active parkd)"
check "... the same process" "$pid" "$(mainpid)"
check "the start line has priority info (in -p info)" 1 "$(journal -p info | grep -c 'starting: 1 lots')"
check "... and not notice (not in -p notice)" 0 "$(journal -p notice | grep -c 'starting: 1 lots')"
cp "$work/good.yaml" "$run$conf"
inside systemctl reload parkd

# --- Restart= and the watchdog --------------------------------------------------------------------
waitnew() {   # OLDPID SECS: until parkd is active with another main PID
    n=0
    while [ $n -lt $(($2 * 2)) ]; do
        p=$(mainpid)
        [ "$p" != "$1" ] && [ "$p" != 0 ] && [ "$(inside systemctl is-active parkd)" = active ] && return 0
        sleep 0.5; n=$((n + 1))
    done
    return 1
}
pid=$(mainpid)
inside sh -c "kill -KILL $pid"
waitnew "$pid" 20
check "SIGKILL: Restart= starts parkd again (active, new PID)" 0 $?
check "... NRestarts is 1" 1 "$(inside systemctl show -p NRestarts --value parkd)"

pid=$(mainpid)
inside sh -c "kill -STOP $pid"
waitnew "$pid" 40
check "SIGSTOP: the watchdog restarts parkd (active, new PID)" 0 $?
check "... the journal says watchdog" 1 "$(inside journalctl -u parkd --no-pager | grep -c 'Watchdog timeout')"
phase "restart and watchdog checked"

# --- upgrade N -> N+1 with the edited conffile ---------------------------------------------------
cp "$run$conf" "$work/before.yaml"
pid=$(mainpid)
out=$(inside 300 apt-get install -y --no-install-recommends "/root/debs/$(basename "$deb2")" 2>&1)
check "upgrade with apt-get install ./parkd_${next}_*.deb exits 0" 0 $?
[ -n "${VERBOSE:-}" ] && printf '%s\n' "$out"
check "the installed version is $next" "$next" "$(inside dpkg-query -W -f='${Version}' parkd)"
check "the edited configuration is kept by the upgrade" same \
    "$(cmp -s "$work/before.yaml" "$run$conf" && echo same || echo changed)"
check "no .dpkg-new/.dpkg-dist left beside it" "" "$(ls "$run/etc/parkd" | grep '\.dpkg-')"
waitnew "$pid" 30
check "the upgrade restarted the running service (active, new PID)" 0 $?

# --- stop ------------------------------------------------------------------------------------------
n=$(journal | grep -c 'stopping: flushing')
inside 60 systemctl stop parkd
check "systemctl stop parkd exits 0" 0 $?
check "... the service ended with success" "success 0" \
    "$(inside systemctl show -p Result --value parkd) $(inside systemctl show -p ExecMainStatus --value parkd)"
check "... after flushing (journal)" $((n + 1)) "$(journal | grep -c 'stopping: flushing')"
# --- removal: stops a running service, keeps the configuration ----------------------------------
inside 60 systemctl start parkd
inside 120 apt-get remove -y parkd >/dev/null 2>&1
check "apt-get remove parkd exits 0" 0 $?
check "... stops the running service" inactive "$(inside systemctl is-active parkd)"
check "... keeps /etc/parkd/parkd.yaml" same "$(cmp -s "$work/before.yaml" "$run$conf" && echo same || echo changed)"
phase "done"
[ $fails -ne 0 ] && { echo "# journal of parkd:"; journal -o short-monotonic | tail -n 40 | sed 's/^/#   /'; }

echo "systemd: $passes passed, $fails failed ($(($(date +%s) - t0))s)"
[ $fails -eq 0 ]
