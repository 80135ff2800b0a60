#!/bin/sh
# lot-memory: how much resident memory one configured lot costs a running parkd — the figure
# behind limits.max_lots' default and the memory warning of --check (config.c).
#
# For each lot count N it starts parkd on its own mosquitto and redis-server (free loopback
# ports, a temporary directory, always cleaned up) with N count lots, feeds every lot READINGS
# readings 15 minutes apart in event time (so each lot has data, a forecast, a history entry
# and a stored model), waits until parkd has taken them all and its Redis writes are done, and
# reads VmRSS from /proc/PID/status. The cost per lot is the slope between the smallest and the
# largest N, which leaves out what does not grow with lots (code, libraries, buffers).
#
# usage: BUILD=build sh tests/bench/lot-memory.sh [N ...]     (default: 1000 10000)
# Environment: HORIZONS [15m, 30m, 60m] (forecast.horizons), READINGS [4].
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
PARKD=$TOP/$BUILD/parkd
FEED=$TOP/$BUILD/tools/parkd-feed
HORIZONS=${HORIZONS:-15m, 30m, 60m}
READINGS=${READINGS:-4}
[ $# -gt 0 ] || set -- 1000 10000
[ -x "$PARKD" ] && [ -x "$FEED" ] || { echo "lot-memory: build first (make all)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/parkd-lotmem.XXXXXX") || exit 1
MOSQ= REDIS= PID=
cleanup() {
    for p in $PID $MOSQ $REDIS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# until CMD prints WANT (60 s)
wait_for() {
    i=0
    while [ "$(eval "$1" 2>/dev/null)" != "$2" ]; do
        i=$((i + 1))
        [ $i -lt 600 ] || { echo "lot-memory: timed out waiting for: $1" >&2; exit 1; }
        sleep 0.1
    done
}

MP=$(port) RP=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\n' \
    "$MP" >"$T/mosquitto.conf"
[ "$(id -u)" = 0 ] && echo "user root" >>"$T/mosquitto.conf"
mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
MOSQ=$!
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" >"$T/redis.log" 2>&1 &
REDIS=$!
wait_for "redis-cli -p $RP ping" PONG

# limits.max_lots when this parkd has it (so older builds can be measured too)
printf 'limits: {max_lots: 1}\nlots:\n  - {id: A, capacity: 1, source: count}\n' >"$T/probe.yaml"
LIMITS=
"$PARKD" -c "$T/probe.yaml" --check >/dev/null 2>&1 && LIMITS=yes

# rss N — prints parkd's VmRSS in kB with N lots fed
rss() {
    n=$1
    redis-cli -p "$RP" flushall >/dev/null
    {
        printf 'mqtt: {host: 127.0.0.1, port: %s, input_prefix: parking, output_prefix: out/parking}\n' "$MP"
        printf 'redis: {host: 127.0.0.1, port: %s}\n' "$RP"
        printf 'forecast: {horizons: [%s]}\nlog: {level: warning}\n' "$HORIZONS"
        [ -n "$LIMITS" ] && printf 'limits: {max_lots: %s}\n' "$n"
        echo "lots:"
        i=0
        while [ $i -lt "$n" ]; do printf '  - {id: L%d, capacity: 500, source: count}\n' $i; i=$((i + 1)); done
    } >"$T/parkd.yaml"
    awk -v n="$n" -v k="$READINGS" 'BEGIN {
        print "SystemCodeNumber,Capacity,Occupancy,LastUpdated"
        for (r = 0; r < k; r++)
            for (i = 0; i < n; i++)
                printf "L%d,500,%d,2016-10-04 %02d:%02d:00\n", i, (i + 37 * r) % 500, 8 + int(r / 4), (r % 4) * 15
    }' >"$T/feed.csv"
    "$PARKD" -c "$T/parkd.yaml" 2>"$T/parkd.log" &
    PID=$!
    wait_for "redis-cli -p $RP hget parkd:daemon pid" "$PID"
    "$FEED" --port "$MP" --inflight 1000 "$T/feed.csv" >/dev/null || { echo "lot-memory: feed failed" >&2; exit 1; }
    wait_for "redis-cli -p $RP hget parkd:daemon messages_in" $((n * READINGS))
    sleep 3     # the last batches and publishes go out
    awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"
    kill -TERM "$PID"
    wait "$PID"
    PID=
}

first= last= first_n= last_n=
for n in "$@"; do
    kb=$(rss "$n") || exit 1
    printf 'lots %7d: VmRSS %8d kB\n' "$n" "$kb"
    [ -n "$first" ] || { first=$kb; first_n=$n; }
    last=$kb last_n=$n
done
if [ "$last_n" != "$first_n" ]; then
    awk -v a="$first" -v b="$last" -v m="$first_n" -v n="$last_n" -v h="$HORIZONS" 'BEGIN {
        printf "per lot (horizons %s): %.1f kB (%d bytes)\n", h, (b - a) / (n - m), (b - a) * 1024 / (n - m) }'
fi
