#!/bin/sh
# parkd benchmark (make bench): throughput against the broker's own ceiling, latency (under a
# steady 10,000 events/s, and of lone messages at 1, 10 and 100 events/s), memory, restart time
# and CPU cost per event, in one run, on a mosquitto and a redis-server of its own
# (free loopback ports, a temporary directory, always cleaned up). Prints a table and writes the
# same figures to tests/bench/results.md. See docs/benchmarks.md for what each figure means.
#
# Environment (defaults in brackets):
#   BUILD [build]              where parkd was built; the bench programs go to $BUILD/bench
#   BENCH_LOTS [1000] BENCH_BAYS [100] BENCH_EVENTS [1000000]
#                              the throughput load: EVENTS bay events over LOTS x BAYS
#   BENCH_LAT_RATE [10000] BENCH_LAT_SECONDS [10]
#                              the latency load: a steady RATE events/s for SECONDS
#   BENCH_LOW_RATES ["1:60 10:30 100:10"]
#                              the lone-message latency runs, RATE:SECONDS each: a city's few
#                              messages a second, each alone in parkd's loop turn ("": none)
#   BENCH_LOW_JITTER [0.5]     their intervals are uniform in (1 -+ JITTER) x 1/RATE (0: steady)
#   BENCH_INFLIGHT [1000] BENCH_QUEUED [100000]
#                              the broker's max_inflight_messages / max_queued_messages
#   BENCH_NODELAY=1            the broker sets TCP_NODELAY (set_tcp_nodelay true; mosquitto's
#                              default, and so the bench's, is Nagle on: its small packets to
#                              parkd can wait for parkd's delayed ACKs, up to ~40 ms)
#   BENCH_LEAD [80000]         how far the generator may run ahead of the consumer: below
#                              QUEUED, with room for parkd's own outputs, which come back to it
#   BENCH_QUICK=1              a tenth of the events and of the latency runs (the lone-message
#                              runs at least 5 s each), for a quick look
#   BENCH_RESULTS [tests/bench/results.md]   where the figures are written ("-": nowhere)
#   BENCH_PERF=NAME            also profile parkd in the throughput run NAME (qos0, small, qos1,
#                              zones; 1 means qos1), with perf, to $BUILD/bench/perf-NAME.txt
#   BENCH_HTTP_SECONDS [10]    the wrk run of GET /api/public/v3/parking-sites (skipped without wrk)
set -u

TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) BDIR=$BUILD ;; *) BDIR=$TOP/$BUILD ;; esac
PARKD=$BDIR/parkd
BB=$BDIR/bench
LOTS=${BENCH_LOTS:-1000}
BAYS=${BENCH_BAYS:-100}
EVENTS=${BENCH_EVENTS:-1000000}
LAT_RATE=${BENCH_LAT_RATE:-10000}
LAT_SECONDS=${BENCH_LAT_SECONDS:-10}
LOW_RATES=${BENCH_LOW_RATES-1:60 10:30 100:10}
LOW_JITTER=${BENCH_LOW_JITTER:-0.5}
INFLIGHT=${BENCH_INFLIGHT:-1000}
QUEUED=${BENCH_QUEUED:-100000}
if [ "${BENCH_NODELAY:-}" = 1 ]; then NODELAY=true; else NODELAY=false; fi
LEAD=${BENCH_LEAD:-80000}
RESULTS=${BENCH_RESULTS:-$TOP/tests/bench/results.md}
if [ "${BENCH_QUICK:-}" = 1 ]; then
    EVENTS=$((EVENTS / 10))
    LAT_SECONDS=$(( (LAT_SECONDS + 9) / 10 ))
    quick_rates=
    for rs in $LOW_RATES; do
        secs=$(( (${rs#*:} + 9) / 10 ))
        [ "$secs" -ge 5 ] || secs=5
        quick_rates="$quick_rates ${rs%%:*}:$secs"
    done
    LOW_RATES=${quick_rates# }
fi
[ "$LEAD" -lt "$QUEUED" ] || LEAD=$((QUEUED * 9 / 10))
SMALL_LOTS=$(( LOTS / 10 > 0 ? LOTS / 10 : 1 ))
SMALL_EVENTS=$(( EVENTS / 4 ))
LAT_EVENTS=$((LAT_RATE * LAT_SECONDS))
HZ=$(getconf CLK_TCK)

die() { echo "bench: $*" >&2; exit 1; }

for tool in cc pkg-config mosquitto mosquitto_sub redis-server redis-cli python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (make deps / scripts/deps.sh)"
done
[ -x "$PARKD" ] || die "no $PARKD (make first)"

# ---- the bench programs ----------------------------------------------------------------------

mkdir -p "$BB" || exit 1
BCFLAGS="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wno-unused-parameter"
BLIBS=$(pkg-config --cflags --libs libmosquitto hiredis) || die "pkg-config libmosquitto hiredis"
for prog in loadgen sink landed latency notifywait; do
    src=$TOP/tests/bench/$prog.c
    if [ ! -x "$BB/$prog" ] || [ "$src" -nt "$BB/$prog" ] || [ "$TOP/tests/bench/pattern.h" -nt "$BB/$prog" ]; then
        # shellcheck disable=SC2086  # flags are word lists
        cc $BCFLAGS -o "$BB/$prog" "$src" $BLIBS -lpthread || die "cannot build $prog"
    fi
done

# ---- servers and cleanup ---------------------------------------------------------------------

T=$(mktemp -d "${TMPDIR:-/tmp}/parkd-bench.XXXXXX") || die "mktemp -d"
MOSQ_PID=
REDIS_PID=
NW_PID=
PARKD_PID=
BG_PIDS=

cleanup() {
    set +e
    [ -n "$NW_PID" ] && kill -TERM "$NW_PID" 2>/dev/null
    [ -n "$PARKD_PID" ] && kill -TERM "$PARKD_PID" 2>/dev/null
    for p in $BG_PIDS; do kill "$p" 2>/dev/null; done
    [ -n "$MOSQ_PID" ] && kill "$MOSQ_PID" 2>/dev/null
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_file FILE PATTERN TIMEOUT_S — until a line of FILE matches PATTERN
wait_file() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt $(($3 * 20)) ] && return 1
        sleep 0.05
    done
    return 0
}

kv() { sed -n "s/^$2=//p" "$1" | tail -n 1; }      # kv FILE KEY
calc() { python3 -c "print($1)"; }                  # calc EXPR — arithmetic with floats
yes_no() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo met; else echo "not met"; fi; }
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
        --logfile "$T/redis.log" --daemonize no >/dev/null 2>&1 &
    REDIS_PID=$!
    i=0
    until [ "$(rcli ping 2>/dev/null)" = PONG ]; do
        i=$((i + 1)); [ $i -gt 100 ] && die "redis-server did not start"; sleep 0.05
    done
}

start_mosquitto() {
    MQTT_PORT=$(free_port)
    {
        echo "listener $MQTT_PORT 127.0.0.1"
        echo "allow_anonymous true"
        echo "persistence false"
        [ "$NODELAY" = true ] && echo "set_tcp_nodelay true"     # mosquitto >= 2.0
        echo "max_inflight_messages $INFLIGHT"
        echo "max_queued_messages $QUEUED"
        echo "log_dest file $T/mosquitto.log"
        echo "log_type error"
        echo "log_type warning"
        echo "log_type notice"
        [ "$(id -u)" = 0 ] && echo "user root"
    } >"$T/mosquitto.conf"
    mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.stderr" 2>&1 &
    MOSQ_PID=$!
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $MQTT_PORT), 1)" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && die "mosquitto did not start: $(cat "$T/mosquitto.stderr")"
        sleep 0.05
    done
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }          # user+sys, clock ticks
# cpu_ns PID — user+sys of all its threads in ns, from schedstat (the ticks are 10 ms: too coarse
# for a nearly idle parkd); in ticks x 1e9 / HZ where the kernel keeps no schedstat
cpu_ns() {
    if [ -r "/proc/$1/schedstat" ]; then
        cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
    else
        echo $(( $(cpu_ticks "$1") * 1000000000 / HZ ))
    fi
}
vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; } # vm_kb PID VmHWM

# ---- parkd -----------------------------------------------------------------------------------

# The zones run's lots: 10 zones by pattern over the bays b000..b099 (bay k in zone k / 10), and
# 3 categories, one by exact ids, two by patterns (SPEC §10). Its bays are BAYS = 100.
ZONES_YAML="zones: [$(z=0; while [ $z -lt 10 ]; do [ $z -gt 0 ] && printf ', '; printf '{id: Z%d, capacity: 10, bays: ["b0%d?"]}' $z $z; z=$((z + 1)); done)], categories: {disabled: {capacity: 2, bays: [b000, b001]}, ev_charging: {capacity: 10, bays: [\"b01?\"]}, family: {capacity: 5, bays: [\"b09[0-4]\"]}}"

# write_config FILE LOTS QOS MIN_INTERVAL RUN [HTTP_PORT] [zones] — LOTS lots of BAYS bays, plus
# the sentinel lot; with HTTP_PORT, http.listen on it; with "zones", each lot has ZONES_YAML
write_config() {
    {
        [ -n "${6:-}" ] && echo "http: {listen: \"127.0.0.1:$6\"}"
        echo "mqtt: {host: 127.0.0.1, port: $MQTT_PORT, client_id: parkd-bench-$5, qos: $3, clean_session: false}"
        echo "redis: {host: 127.0.0.1, port: $REDIS_PORT}"
        [ -n "$4" ] && echo "publish: {min_interval: $4}"
        echo "log: {level: warning}"
        echo "lots:"
        i=0
        while [ $i -lt "$2" ]; do
            if [ "${7:-}" = zones ]; then
                printf '  - {id: L%04d, capacity: %d, source: bays, %s}\n' $i "$BAYS" "$ZONES_YAML"
            else
                printf '  - {id: L%04d, capacity: %d, source: bays}\n' $i "$BAYS"
            fi
            i=$((i + 1))
        done
        echo "  - {id: END, capacity: 1, source: bays}"
    } >"$1"
}

# start_parkd NAME CONFIG — starts parkd under notifywait; sets PARKD_PID, READY_MS
start_parkd() {
    "$BB/notifywait" "$T/$1.nw" "$PARKD" -c "$2" 2>"$T/$1.log" &
    NW_PID=$!
    wait_file "$T/$1.nw" '^ready_ms=' 30 || die "parkd ($1) not ready in 30 s: $(tail -n 5 "$T/$1.log")"
    PARKD_PID=$(kv "$T/$1.nw" pid)
    READY_MS=$(kv "$T/$1.nw" ready_ms)
}

# stop_parkd NAME — stops parkd, then ends its MQTT session (clean_session: false keeps it):
# otherwise the broker would queue every later run's load for it, and work for a client that
# is gone.
stop_parkd() {
    kill -TERM "$PARKD_PID" 2>/dev/null
    wait "$NW_PID" 2>/dev/null
    NW_PID=
    PARKD_PID=
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -i "parkd-bench-$1" -t bench/none -E 2>/dev/null ||
        echo "bench: warning: cannot end the MQTT session parkd-bench-$1" >&2
}

# ---- runs ------------------------------------------------------------------------------------

# ceiling QOS — the bare subscriber's rate for the load; sets CEIL_RATE, CEIL_LOST
ceiling() {
    rcli del bench:sink >/dev/null
    "$BB/sink" -p "$MQTT_PORT" -q "$1" -R "127.0.0.1:$REDIS_PORT" -K bench:sink \
        >"$T/sink$1.out" 2>"$T/sink$1.err" &
    sink_pid=$!
    BG_PIDS="$BG_PIDS $sink_pid"
    wait_file "$T/sink$1.out" '^subscribed' 10 || die "sink did not subscribe"
    m0=$(cpu_ticks "$MOSQ_PID"); w0=$(date +%s%N)
    "$BB/loadgen" -p "$MQTT_PORT" -q "$1" -n "$EVENTS" -L "$LOTS" -B "$BAYS" -w "$(window "$1")" \
        -F "127.0.0.1:$REDIS_PORT" -K bench:sink -f count -Q "$LEAD" >"$T/lg-ceil$1.out" ||
        die "loadgen failed (ceiling, QoS $1)"
    wait "$sink_pid"
    m1=$(cpu_ticks "$MOSQ_PID"); w1=$(date +%s%N)
    CEIL_UTIL="mosquitto $(calc "round(($m1 - $m0) / $HZ / (($w1 - $w0) / 1e9), 2)")"
    count=$(kv "$T/sink$1.out" count)
    CEIL_RATE=$(calc "round($count * 1e9 / ($(kv "$T/sink$1.out" last_ns) - $(kv "$T/lg-ceil$1.out" start_ns)))")
    CEIL_LOST=$((EVENTS + 1 - count))
}

# Messages a QoS 1 publisher keeps unacknowledged: libmosquitto looks acknowledgements up in a
# list, so a large window costs the generator more CPU than it gains.
window() { if [ "$1" = 0 ]; then echo 1000; else echo 100; fi; }

# throughput NAME QOS LOTS EVENTS [zones] — parkd until Redis holds the final state; sets RATE,
# CPU_K (CPU ms per 1,000 events), HWM_KB, BATCHES, OK
throughput() {
    rcli flushall >/dev/null
    write_config "$T/$1.yaml" "$3" "$2" "" "$1" "" "${5:-}"
    start_parkd "$1" "$T/$1.yaml"
    c0=$(cpu_ticks "$PARKD_PID")
    perf_run=${BENCH_PERF:-}
    [ "$perf_run" = 1 ] && perf_run=qos1
    if [ "$perf_run" = "$1" ] && command -v perf >/dev/null 2>&1; then
        perf record -e cpu-clock -F 499 -g -o "$T/perf.data" -p "$PARKD_PID" >/dev/null 2>&1 &
        perf_pid=$!
    else
        perf_pid=
    fi
    "$BB/landed" -p "$REDIS_PORT" -n "$4" -L "$3" -B "$BAYS" -t 300 >"$T/$1.landed" 2>"$T/$1.landed.err" &
    landed_pid=$!
    BG_PIDS="$BG_PIDS $landed_pid"
    lead=$(( $3 * BAYS * 8 / 10 < LEAD ? $3 * BAYS * 8 / 10 : LEAD ))
    m0=$(cpu_ticks "$MOSQ_PID"); r0=$(cpu_ticks "$REDIS_PID"); w0=$(date +%s%N)
    "$BB/loadgen" -p "$MQTT_PORT" -q "$2" -n "$4" -L "$3" -B "$BAYS" -w "$(window "$2")" \
        -F "127.0.0.1:$REDIS_PORT" -S parkd: -Q "$lead" >"$T/lg-$1.out" ||
        die "loadgen failed ($1)"
    if wait "$landed_pid"; then OK=yes; else OK="no: $(head -n 3 "$T/$1.landed.err" | tr '\n' ' ')"; fi
    c1=$(cpu_ticks "$PARKD_PID")
    m1=$(cpu_ticks "$MOSQ_PID"); r1=$(cpu_ticks "$REDIS_PID"); w1=$(date +%s%N)
    HWM_KB=$(vm_kb "$PARKD_PID" VmHWM)
    # share of one core each used while the load ran
    UTIL="parkd $(calc "round(($c1 - $c0) / $HZ / (($w1 - $w0) / 1e9), 2)"), mosquitto $(calc "round(($m1 - $m0) / $HZ / (($w1 - $w0) / 1e9), 2)"), redis $(calc "round(($r1 - $r0) / $HZ / (($w1 - $w0) / 1e9), 2)")"
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"; wait "$perf_pid"
        perf report -i "$T/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
            grep '%' | head -n 40 >"$BB/perf-$1.txt"
    fi
    landed_ns=$(kv "$T/$1.landed" landed_ns)
    RATE=$(calc "round(($4 + 1) * 1e9 / ($landed_ns - $(kv "$T/lg-$1.out" start_ns)))")
    CPU_K=$(calc "round(($c1 - $c0) * 1000.0 / $HZ / $4 * 1000, 2)")
    BATCHES=$(rcli hget parkd:daemon redis_batches)
    stop_parkd "$1"
}

# restore — parkd on the state the last run left (LOTS x BAYS bays): READY time, memory
restore() {
    write_config "$T/restore.yaml" "$LOTS" 1 "" restore
    start_parkd restore "$T/restore.yaml"
    sleep 1     # anything the restore allocates lazily
    RESTORE_READY_MS=$READY_MS
    RESTORE_HWM_KB=$(vm_kb "$PARKD_PID" VmHWM)
    RESTORE_RSS_KB=$(vm_kb "$PARKD_PID" VmRSS)
    stop_parkd restore
}

# http_bench — wrk against GET /api/public/v3/parking-sites of parkd on the state the QoS 1
# run left ($LOTS lots with data): requests/s, and the loop's messages meanwhile. Skipped
# (HTTP_RPS says why) without wrk.
http_bench() {
    HTTP_RPS="not run (wrk is not installed)"
    HTTP_LAT=
    command -v wrk >/dev/null 2>&1 || return 0
    hport=$(free_port)
    write_config "$T/http.yaml" "$LOTS" 1 "" http "$hport"
    start_parkd http "$T/http.yaml"
    sleep 1.5       # the first snapshots
    wrk -t2 -c32 -d"${BENCH_HTTP_SECONDS:-10}s" --latency \
        "http://127.0.0.1:$hport/api/public/v3/parking-sites" >"$T/wrk.out" 2>&1 ||
        echo "bench: wrk failed: $(tail -n 3 "$T/wrk.out")" >&2
    HTTP_RPS=$(sed -n 's/^Requests\/sec: *//p' "$T/wrk.out")
    HTTP_LAT=$(awk '$1 == "99%" { print $2 }' "$T/wrk.out")
    HTTP_BYTES=$(curl -s "http://127.0.0.1:$hport/api/public/v3/parking-sites" | wc -c)
    stop_parkd http
    HTTP_RPS="${HTTP_RPS:-?} requests/s (p99 ${HTTP_LAT:-?}; $HTTP_BYTES bytes each; wrk -t2 -c32)"
}

# latency — a steady LAT_RATE events/s at QoS 1 with min_interval 0
latency() {
    rcli flushall >/dev/null
    write_config "$T/latency.yaml" "$LOTS" 1 0 latency
    start_parkd latency "$T/latency.yaml"
    "$BB/latency" -p "$MQTT_PORT" -R "$REDIS_PORT" -T "$T/times" -n "$LAT_EVENTS" -L "$LOTS" \
        -B "$BAYS" -t $((LAT_SECONDS + 60)) >"$T/latency.out" 2>"$T/latency.err" &
    lat_pid=$!
    BG_PIDS="$BG_PIDS $lat_pid"
    wait_file "$T/latency.out" '^subscribed' 10 || die "latency observer did not subscribe"
    c0=$(cpu_ticks "$PARKD_PID")
    "$BB/loadgen" -p "$MQTT_PORT" -q 1 -n "$LAT_EVENTS" -L "$LOTS" -B "$BAYS" -w 100 \
        -r "$LAT_RATE" -T "$T/times" >"$T/lg-latency.out" || die "loadgen failed (latency)"
    wait "$lat_pid" || echo "bench: latency observer: $(cat "$T/latency.err")" >&2
    LAT_CPU_K=$(calc "round(($(cpu_ticks "$PARKD_PID") - $c0) * 1000.0 / $HZ / $LAT_EVENTS * 1000, 2)")
    LAT_SENT_RATE=$(kv "$T/lg-latency.out" rate)
    stop_parkd latency
}

# lowrate NAME RATE SECONDS — lone messages: RATE events/s for SECONDS at QoS 1, paced with
# LOW_JITTER, on parkd's default topics (input parking/..., retained outputs parking/out/...),
# named here explicitly for loadgen and the observer; min_interval 0 like the latency run. Each
# event is the first of its lot (while RATE x SECONDS <= LOTS), flips one bay, and so makes one
# output. Sets LOW_CORES (parkd's share of one core meanwhile) and LOW_CPU_K (CPU ms per 1,000
# events); the observer's figures are in $T/NAME.out.
lowrate() {
    rcli flushall >/dev/null
    n=$(calc "max(1, round($2 * $3))")
    write_config "$T/$1.yaml" "$LOTS" 1 0 "$1"
    start_parkd "$1" "$T/$1.yaml"
    "$BB/latency" -p "$MQTT_PORT" -R "$REDIS_PORT" -o parking/out -P parkd: -T "$T/$1.times" \
        -n "$n" -L "$LOTS" -B "$BAYS" -t $(($3 + 60)) >"$T/$1.out" 2>"$T/$1.err" &
    lat_pid=$!
    BG_PIDS="$BG_PIDS $lat_pid"
    wait_file "$T/$1.out" '^subscribed' 10 || die "latency observer did not subscribe ($1)"
    c0=$(cpu_ns "$PARKD_PID"); w0=$(date +%s%N)
    "$BB/loadgen" -p "$MQTT_PORT" -q 1 -t parking -n "$n" -L "$LOTS" -B "$BAYS" -w 100 \
        -r "$2" -j "$LOW_JITTER" -T "$T/$1.times" >"$T/lg-$1.out" || die "loadgen failed ($1)"
    wait "$lat_pid" || echo "bench: latency observer ($1): $(cat "$T/$1.err")" >&2
    c1=$(cpu_ns "$PARKD_PID"); w1=$(date +%s%N)
    LOW_CORES=$(calc "round(($c1 - $c0) / ($w1 - $w0), 4)")
    LOW_CPU_K=$(calc "round(($c1 - $c0) / 1e6 / $n * 1000, 1)")
    LOW_N=$n
    stop_parkd "$1"
}

# ---- main ------------------------------------------------------------------------------------

CORES=$(nproc)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
echo "bench: $CORES cores, $CPU_MODEL; load average $LOAD0"
echo "bench: $EVENTS events over $LOTS lots x $BAYS bays; latency at $LAT_RATE/s for $LAT_SECONDS s"
[ -n "$LOW_RATES" ] && echo "bench: lone messages (rate/s:seconds): $LOW_RATES"

start_redis
start_mosquitto
MOSQ_VERSION=$(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version //p' | head -n 1)
REDIS_VERSION=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')

echo "bench: ceiling, QoS 0 ..."; ceiling 0; CEIL0=$CEIL_RATE; CEIL0_LOST=$CEIL_LOST; CU0=$CEIL_UTIL
echo "bench: ceiling, QoS 1 ..."; ceiling 1; CEIL1=$CEIL_RATE; CEIL1_LOST=$CEIL_LOST; CU1=$CEIL_UTIL
echo "bench: parkd, QoS 0 ..."
throughput qos0 0 "$LOTS" "$EVENTS"
R0=$RATE; CPU0=$CPU_K; OK0=$OK; B0=$BATCHES; U0=$UTIL
echo "bench: parkd, QoS 1, $SMALL_LOTS lots, $SMALL_EVENTS events ..."
throughput small 1 "$SMALL_LOTS" "$SMALL_EVENTS"
RS=$RATE; CPUS=$CPU_K; OKS=$OK
echo "bench: parkd, QoS 0, $SMALL_LOTS lots, $SMALL_EVENTS events ..."
throughput small0 0 "$SMALL_LOTS" "$SMALL_EVENTS"
RS0=$RATE; OKS0=$OK
echo "bench: parkd, QoS 1 ..."
throughput qos1 1 "$LOTS" "$EVENTS"
R1=$RATE; CPU1=$CPU_K; OK1=$OK; HWM1=$HWM_KB; B1=$BATCHES; U1=$UTIL
if [ "$BAYS" = 100 ]; then
    echo "bench: parkd, QoS 1, 10 zones and 3 categories per lot ..."
    throughput zones 1 "$LOTS" "$EVENTS" zones
    RZ=$RATE; CPUZ=$CPU_K; OKZ=$OK
    ZRATE=$(calc "round($RZ / $R1, 2)"); ZCPU=$(calc "round($CPUZ / $CPU1, 2)")
else
    RZ="skipped (needs BENCH_BAYS=100)"; CPUZ=-; OKZ=-; ZRATE=-; ZCPU=-
fi
BAYS_STORED=$(( $(rcli eval "local n = 0 for _, k in ipairs(redis.call('keys', 'parkd:lot:*:bays')) do n = n + redis.call('hlen', k) end return n" 0) - 1 ))
echo "bench: restart with $BAYS_STORED bays to restore ..."
restore
echo "bench: HTTP API with $LOTS lots ..."
http_bench
echo "bench: latency at $LAT_RATE events/s ..."
latency
# The lone-message runs: their latency rows in the report's table format (LOW_ROWS), and a row
# of their CPU (LOW_CPU_ROW).
LOW_ROWS=
LOW_CPU=
LOW_DESC=
for rs in $LOW_RATES; do
    lr=${rs%%:*}; lsec=${rs#*:}
    LOW_DESC="$LOW_DESC${LOW_DESC:+, }$lr/s for $lsec s"
    echo "bench: lone messages at $lr events/s for $lsec s ..."
    lowrate "low$lr" "$lr" "$lsec"
    o=$T/low$lr.out
    for w in redis mqtt; do
        if [ "$w" = redis ]; then what="publish -> Redis state"; else what="publish -> retained output"; fi
        p99=$(kv "$o" "${w}_p99_ms"); got=$(kv "$o" "${w}_n")
        if [ "${got:-0}" -gt 0 ]; then
            # every lone message flips a bay, so each must have made its own output
            verdict=$(yes_no "$p99 < 5 and $got >= $LOW_N")
            [ "$got" -ge "$LOW_N" ] || verdict="$verdict ($((LOW_N - got)) outputs missing)"
            value="p50 $(kv "$o" "${w}_p50_ms") ms, p99 $p99 ms, max $(kv "$o" "${w}_max_ms") ms ($got samples of $LOW_N events)"
        else
            verdict="not met"
            value="no samples: $(head -n 1 "$T/low$lr.err")"
        fi
        LOW_ROWS="$LOW_ROWS| latency $what, lone messages at $lr events/s ($lsec s) | $value | p99 < 5 ms | $verdict |
"
    done
    LOW_CPU="$LOW_CPU${LOW_CPU:+; }$lr/s: $LOW_CORES cores, $LOW_CPU_K ms per 1,000 events"
done
LOW_CPU_ROW=
if [ -z "$LOW_DESC" ]; then
    LOW_DESC="none run"
elif [ "$(calc "$LOW_JITTER > 0")" = True ]; then
    LOW_DESC="$LOW_DESC; intervals uniform in (1 -+ $LOW_JITTER) x 1/rate"
else
    LOW_DESC="$LOW_DESC; steady intervals"
fi
[ -n "$LOW_CPU" ] && LOW_CPU_ROW="| parkd CPU in the lone-message runs (cores used; CPU per 1,000 events) | $LOW_CPU | | |
"
ELAPSED=$(( $(date +%s) - T0 ))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ----------------------------------------------------------------------------------

RATIO0=$(calc "round($R0 / $CEIL0, 2)")
RATIO1=$(calc "round($R1 / $CEIL1, 2)")
RATIOS0=$(calc "round($RS0 / $CEIL0, 2)")
RATIOS1=$(calc "round($RS / $CEIL1, 2)")
LR50=$(kv "$T/latency.out" redis_p50_ms); LR99=$(kv "$T/latency.out" redis_p99_ms); LRMAX=$(kv "$T/latency.out" redis_max_ms)
LM50=$(kv "$T/latency.out" mqtt_p50_ms); LM99=$(kv "$T/latency.out" mqtt_p99_ms); LMMAX=$(kv "$T/latency.out" mqtt_max_ms)
LRN=$(kv "$T/latency.out" redis_n); LMN=$(kv "$T/latency.out" mqtt_n)
HWM1_MB=$(calc "round($HWM1 / 1024, 1)")
RHWM_MB=$(calc "round($RESTORE_HWM_KB / 1024, 1)")
RRSS_MB=$(calc "round($RESTORE_RSS_KB / 1024, 1)")
FLAT=$(calc "round($CPU1 / $CPUS, 2)")

report() {
    cat <<EOF
## Results

Machine: $CORES cores, $CPU_MODEL; $(uname -sr); date $DATE.
Load average before / after the run: $LOAD0 / $LOAD1 (the bench uses every core; other load
skews every figure). Whole run: ${ELAPSED} s.
Broker: mosquitto $MOSQ_VERSION, \`max_inflight_messages $INFLIGHT\`, \`max_queued_messages $QUEUED\`,
\`set_tcp_nodelay $NODELAY\`, no persistence. Redis $REDIS_VERSION, no persistence (\`save ''\`, no AOF).
All on loopback.
Load: $EVENTS bay events over $LOTS lots x $BAYS bays (JSON payloads with \`ts\`), every event a
change; the generator stays at most $LEAD messages ahead of the consumer (closed loop; see
docs/benchmarks.md).
Latency: a steady $LAT_RATE events/s for $LAT_SECONDS s, then lone messages ($LOW_DESC), all at QoS 1
on parkd's default topics (in \`parking\`, out \`parking/out\`) with \`min_interval: 0\`.

| figure | value | target | |
|---|---|---|---|
| ceiling QoS 0 (bare subscriber) | $CEIL0 msg/s (lost $CEIL0_LOST; cores used: $CU0) | | |
| ceiling QoS 1 (bare subscriber) | $CEIL1 msg/s (lost $CEIL1_LOST; cores used: $CU1) | | |
| parkd QoS 0, until Redis holds the final state | $R0 events/s = $RATIO0 x ceiling ($B0 Redis batches; state exact: $OK0; cores used: $U0) | >= 0.9 x ceiling | $(yes_no "$RATIO0 >= 0.9") |
| parkd QoS 1, until Redis holds the final state | $R1 events/s = $RATIO1 x ceiling ($B1 Redis batches; state exact: $OK1; cores used: $U1) | >= 0.95 x ceiling | $(yes_no "$RATIO1 >= 0.95") |
| parkd QoS 0, $SMALL_LOTS lots, $SMALL_EVENTS events | $RS0 events/s = $RATIOS0 x ceiling (state exact: $OKS0) | >= 0.9 x ceiling | $(yes_no "$RATIOS0 >= 0.9") |
| parkd QoS 1, $SMALL_LOTS lots, $SMALL_EVENTS events | $RS events/s = $RATIOS1 x ceiling (state exact: $OKS) | >= 0.95 x ceiling | $(yes_no "$RATIOS1 >= 0.95") |
| latency publish -> Redis state, at $LAT_SENT_RATE events/s | p50 $LR50 ms, p99 $LR99 ms, max $LRMAX ms ($LRN samples) | p99 < 5 ms | $(yes_no "$LR99 < 5") |
| latency publish -> retained output, at $LAT_SENT_RATE events/s | p50 $LM50 ms, p99 $LM99 ms, max $LMMAX ms ($LMN samples) | p99 < 5 ms | $(yes_no "$LM99 < 5") |
${LOW_ROWS}| peak RSS (VmHWM), $LOTS lots x $BAYS bays, during the QoS 1 run | $HWM1_MB MB | < 32 MB | $(yes_no "$HWM1 < 32768") |
| RSS after restoring $BAYS_STORED bays (VmHWM / VmRSS) | $RHWM_MB MB / $RRSS_MB MB | < 32 MB | $(yes_no "$RESTORE_HWM_KB < 32768") |
| start to READY=1, restoring $BAYS_STORED bays | $RESTORE_READY_MS ms | < 1000 ms | $(yes_no "$RESTORE_READY_MS < 1000") |
| CPU per 1,000 events, QoS 1, $SMALL_LOTS lots, $SMALL_EVENTS events | $CPUS ms ($RS events/s; state exact: $OKS) | flat | |
| CPU per 1,000 events, QoS 1, $LOTS lots, $EVENTS events | $CPU1 ms ($FLAT x the small run) | flat | $(yes_no "$FLAT <= 1.2") |
| CPU per 1,000 events, QoS 0, $LOTS lots, $EVENTS events | $CPU0 ms | | |
| QoS 1 with 10 zones and 3 categories per lot (the QoS 1 load) | $RZ events/s = $ZRATE x the QoS 1 run; CPU per 1,000 events $CPUZ ms = $ZCPU x (state exact: $OKZ) | within 10 % | $(if [ "$ZCPU" = - ]; then echo skipped; else yes_no "$ZCPU <= 1.10 and $ZRATE >= 0.90"; fi) |
| CPU per 1,000 events, latency run ($LAT_RATE/s, min_interval 0) | $LAT_CPU_K ms | | |
${LOW_CPU_ROW}| GET /api/public/v3/parking-sites, $LOTS lots | $HTTP_RPS | | |
EOF
}

echo
report
if [ "$RESULTS" != - ]; then
    {
        echo "# parkd benchmark results"
        echo
        echo "Written by \`make bench\` (tests/bench/run.sh); docs/benchmarks.md explains the figures."
        echo
        report
    } >"$RESULTS"
    echo
    echo "bench: written to $RESULTS"
fi
