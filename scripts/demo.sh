#!/bin/sh
# demo.sh — parkd on the Birmingham car parks, live (run by `make demo` after building).
#
# Starts a private mosquitto and redis-server on free loopback ports in a scratch directory,
# runs build/parkd with config/parkd.yaml pointed at them, replays the recorded 2016 data with
# build/tools/parkd-feed and prints a small live table. Ctrl-C or the end of the replay stops
# everything and removes the scratch directory.
#
# The live map: mosquitto also listens for MQTT over WebSocket, and parkd gets an `http:` section
# (http.listen on a loopback port, http.map.mqtt_ws_url that listener) and PARKD_WEB_ROOT=build/web
# (`make web`), so the page and the HTTP API are served at the printed URLs. A parkd without the
# HTTP server rejects `http:`: the demo then says so and runs without the map.
#
# Environment (all optional):
#   DEMO_RATE=300        replay speed in messages per second (35,717 rows: ~2 minutes at 300)
#   DEMO_SECONDS=0       stop after this many seconds (0: when the replay ends)
#   DEMO_INTERVAL=10     seconds between live tables
#   DEMO_LOTS="..."      lots shown in the table
#   DEMO_DATA=FILE       CSV to replay (default ../shared/data/birmingham-parking-2016.csv)
#   DEMO_CONFIG=FILE     parkd config to start from (default config/parkd.yaml)
#   DEMO_MAP=1           serve the live map and HTTP API (0: do not add an http: section)
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
parkd=$top/$BUILD/parkd
feed=$top/$BUILD/tools/parkd-feed
config=${DEMO_CONFIG:-$top/config/parkd.yaml}
data=${DEMO_DATA:-$top/../shared/data/birmingham-parking-2016.csv}
rate=${DEMO_RATE:-300}
seconds=${DEMO_SECONDS:-0}
interval=${DEMO_INTERVAL:-10}
map=${DEMO_MAP:-1}
web=$top/$BUILD/web
lots=${DEMO_LOTS:-"BHMBCCMKT01 BHMNCPHST01 BHMMBMMBX01 Broad_Street Bull_Ring Shopping NIA_South"}
out=parking/out           # mqtt.output_prefix and redis.prefix as in config/parkd.yaml
rp=parkd:

say() { printf '%s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

for v in "$seconds" "$interval"; do
    case $v in '' | *[!0-9]*) die "DEMO_SECONDS and DEMO_INTERVAL are whole seconds" ;; esac
done
[ "$interval" -gt 0 ] || die "DEMO_INTERVAL must be > 0"
for f in "$parkd" "$feed"; do [ -x "$f" ] || die "$f is not built (run: make)"; done
[ -f "$config" ] || die "no parkd config at $config"
[ -f "$data" ] || die "no data at $data (expected the shared/ folder beside the repository)"
for c in mosquitto mosquitto_sub redis-server redis-cli od setsid; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found (run: sh scripts/deps.sh)"
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/parkd-demo.XXXXXX") || die "mktemp -d failed"
mosq_pid='' redis_pid='' parkd_pid='' feed_pid=''
ws_port='' http_port=''

# stop PID [seconds] — TERM, wait up to the given time, then KILL. Returns the exit status.
stop() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ "$i" -lt "$((${2:-5} * 10))" ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$1" 2>/dev/null; then
        say "demo: pid $1 did not stop within ${2:-5} s, killing it" >&2
        kill -KILL "$1" 2>/dev/null
    fi
    wait "$1" 2>/dev/null
}

# Stops the feed first and the servers last, so parkd can flush to Redis and publish `offline`.
# shellcheck disable=SC2317  # called from the trap
cleanup() {
    trap - EXIT INT TERM
    stop "$feed_pid"
    stop "$parkd_pid" 10
    rc=$?
    if [ "$rc" -ne 0 ]; then
        say "demo: parkd exited with status $rc; the end of its log:" >&2
        tail -n 20 "$dir/parkd.log" >&2
    fi
    stop "$redis_pid"
    stop "$mosq_pid"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'say; say "demo: interrupted, stopping"; exit 130' INT
trap 'exit 143' TERM

# Every background process runs in its own session (setsid), so a Ctrl-C at the terminal reaches
# only this script, and cleanup() stops them in order: without it redis-server and mosquitto
# would exit on the SIGINT at once, before parkd could flush to them.
random_port() { echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000)); }

# up PID CHECK-COMMAND — waits up to 5 s until the process runs and the command succeeds.
up() {
    i=0
    while [ "$i" -lt 50 ]; do
        kill -0 "$1" 2>/dev/null || return 1
        eval "$2" >/dev/null 2>&1 && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# Each server is started on a random port; a port in use makes it exit, and we try another.
start_mosquitto() {
    for _ in 1 2 3 4 5; do
        mqtt_port=$(random_port)
        ws_port=$(random_port)
        [ "$ws_port" = "$mqtt_port" ] && continue
        {
            echo "listener $mqtt_port 127.0.0.1"
            echo "allow_anonymous true"
            echo "persistence false"
            echo "max_queued_messages 10000"
            echo "set_tcp_nodelay true"         # apps get a lone change at once (README, Broker ACL)
            [ "$(id -u)" = 0 ] && echo "user root"
            # MQTT over WebSocket for the live map (Debian's mosquitto is built with it)
            echo "listener $ws_port 127.0.0.1"
            echo "protocol websockets"
        } >"$dir/mosquitto.conf"
        setsid mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
        mosq_pid=$!
        up "$mosq_pid" "mosquitto_sub -h 127.0.0.1 -p $mqtt_port -t '\$SYS/broker/version' -C 1 -W 1" &&
            return 0
        stop "$mosq_pid"
    done
    cat "$dir/mosquitto.log" >&2
    die "mosquitto did not start"
}

start_redis() {
    for _ in 1 2 3 4 5; do
        redis_port=$(random_port)
        setsid redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir" --save '' \
            --appendonly no --daemonize no >"$dir/redis.log" 2>&1 &
        redis_pid=$!
        up "$redis_pid" "[ \"\$(redis-cli -p $redis_port ping)\" = PONG ]" && return 0
        stop "$redis_pid"
    done
    cat "$dir/redis.log" >&2
    die "redis-server did not start"
}

# Writes config/parkd.yaml with the mqtt and redis sections pointed at our servers (flow or
# block style, host/port/socket replaced or added), no metrics listener, and no http section of
# the file's: with $1 = http, ours for the map (loopback ports) instead.
write_config() {
    awk -v mp="$mqtt_port" -v rp="$redis_port" -v http="${1:-}" -v hp="$http_port" -v wp="$ws_port" '
        function want(s) { return s == "mqtt" ? "host: 127.0.0.1, port: " mp : \
                                                 "host: 127.0.0.1, port: " rp ", socket: ~" }
        /^[A-Za-z_][A-Za-z0-9_]*:/ {
            sect = $0; sub(/:.*/, "", sect); seen[sect] = 1; pending = ""
            if (sect == "mqtt" || sect == "redis") {
                if ($0 ~ /^[a-z]+: *\{/) {                      # flow style, one line
                    gsub(/(host|port|socket): *[^,}]*(, *)?/, "")
                    sub(/\{/, "{" want(sect) ", "); sub(/, *\}/, "}")
                } else pending = want(sect)                     # block style: add below
                print; next
            }
            if (sect == "metrics") { gsub(/listen: *[^,}#]*/, "listen: ~") }
            if (sect == "http") next                           # ours replaces it (below)
            print; next
        }
        (sect == "mqtt" || sect == "redis") && /^[ \t]+[^ \t#]/ {
            if (pending != "") {                                # first key: copy its indent
                ind = $0; sub(/[^ \t].*/, "", ind)
                n = split(pending, kv, ", ")
                for (i = 1; i <= n; i++) print ind kv[i]
                pending = ""
            }
            if ($0 ~ /^[ \t]+(host|port|socket):/) next
        }
        sect == "metrics" && /^[ \t]+listen:/ { sub(/listen:.*/, "listen: ~") }
        sect == "http" && /^[ \t]/ { next }
        { print }
        END {
            if (!seen["mqtt"]) print "mqtt: {" want("mqtt") "}"
            if (!seen["redis"]) print "redis: {" want("redis") "}"
            if (http == "http")
                print "http: {listen: \"127.0.0.1:" hp "\", map: {mqtt_ws_url: \"ws://127.0.0.1:" wp "\", tile_url: ~}}"
        }' "$config" >"$dir/parkd.yaml"
}

# table — free spaces of the shown lots, as parkd keeps them in Redis.
table() {
    printf '  %-14s %6s %8s  %-11s %-6s %s\n' lot free capacity status stale "event time"
    for lot in $lots; do
        redis-cli -p "$redis_port" --raw hmget "${rp}lot:$lot" free capacity status stale ts |
        {
            read -r free; read -r cap; read -r status; read -r stale; read -r ts
            case $stale in 1|true) stale=yes ;; 0|false) stale=no ;; esac
            printf '  %-14s %6s %8s  %-11s %-6s %s\n' "$lot" "${free:--}" "${cap:--}" \
                "${status:--}" "${stale:--}" "${ts:--}"
        }
    done
}

# counters — parkd's non-zero counters from the parkd:daemon hash, on one line.
counters() {
    redis-cli -p "$redis_port" --raw hgetall "${rp}daemon" |
        awk 'NR % 2 { k = $0; next }
             k != "version" && k != "pid" && k != "started_ms" && $0 != "0" {
                 printf "%s%s=%s", (n++ ? " " : "  parkd counters: "), k, $0 }
             END { if (n) print "" }'
}

start_mosquitto
start_redis
if [ "$map" = 1 ] && [ ! -f "$web/index.html" ]; then
    say "demo: no live map built in $web (make web needs node and npm); running without it" >&2
    map=0
fi
if [ "$map" = 1 ]; then
    http_port=$(random_port)
    while [ "$http_port" = "$mqtt_port" ] || [ "$http_port" = "$ws_port" ] || [ "$http_port" = "$redis_port" ]; do
        http_port=$(random_port)
    done
    write_config http
    if ! "$parkd" -c "$dir/parkd.yaml" --check >"$dir/check.log" 2>&1 && grep -q '"http"' "$dir/check.log"; then
        say "demo: this parkd has no HTTP server yet; it rejects the http: section:" >&2
        say "demo:   $(head -n 1 "$dir/check.log")" >&2
        say "demo: running without the live map and the HTTP API" >&2
        map=0
    fi
fi
[ "$map" = 1 ] || write_config
if ! "$parkd" -c "$dir/parkd.yaml" --check >"$dir/check.log" 2>&1; then
    cat "$dir/check.log" >&2
    die "parkd rejects the demo config (written from $config)"
fi

PARKD_WEB_ROOT=$web setsid "$parkd" -c "$dir/parkd.yaml" >"$dir/parkd.log" 2>&1 &
parkd_pid=$!
status=
for _ in 1 2 3; do
    kill -0 "$parkd_pid" 2>/dev/null || break
    status=$(mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -t "$out/status" -C 1 -W 10 2>/dev/null)
    [ "$status" = online ] && break
done
if [ "$status" != online ]; then
    tail -n 30 "$dir/parkd.log" >&2
    die "parkd did not come online (status: ${status:-none})"
fi

cat <<EOF

parkd is online: MQTT on 127.0.0.1:$mqtt_port, Redis on 127.0.0.1:$redis_port (pid $parkd_pid).
Replaying $(basename "$data") at $rate messages/s. In another terminal, watch:

  mosquitto_sub -h 127.0.0.1 -p $mqtt_port -v -t '$out/#'
  redis-cli -p $redis_port hgetall ${rp}lot:BHMBCCMKT01
  tail -f $dir/parkd.log

EOF
if [ "$map" = 1 ]; then
    cat <<EOF
The live map (MQTT over WebSocket on 127.0.0.1:$ws_port) and the HTTP API:

  http://127.0.0.1:$http_port/
  http://127.0.0.1:$http_port/api/public/v3/parking-sites
  http://127.0.0.1:$http_port/ngsi-ld/v1/entities?type=OffStreetParking&options=keyValues
  http://127.0.0.1:$http_port/metrics

EOF
fi
cat <<EOF
Ctrl-C stops the demo.

EOF

setsid "$feed" --port "$mqtt_port" --rate "$rate" "$data" >"$dir/feed.log" 2>&1 &
feed_pid=$!
start=$(date +%s)
next=$((start + interval))
feed_rc=
while kill -0 "$feed_pid" 2>/dev/null; do
    now=$(date +%s)
    if [ "$seconds" -gt 0 ] && [ $((now - start)) -ge "$seconds" ]; then
        say "demo: DEMO_SECONDS=$seconds reached, stopping the replay"
        stop "$feed_pid"
        feed_rc=0
        break
    fi
    if ! kill -0 "$parkd_pid" 2>/dev/null; then
        tail -n 30 "$dir/parkd.log" >&2
        die "parkd exited during the replay"
    fi
    if [ "$now" -ge "$next" ]; then
        say "after $((now - start)) s:"
        table
        next=$((next + interval))
    fi
    sleep 1
done
if [ -z "$feed_rc" ]; then
    wait "$feed_pid"
    feed_rc=$?
fi
feed_pid=

sleep 3        # let parkd apply the last messages and publish them (publish.min_interval)
say
say "final state:"
table
counters
say
cat "$dir/feed.log"
[ "$feed_rc" -eq 0 ] || die "parkd-feed failed (exit $feed_rc)"
kill -0 "$parkd_pid" 2>/dev/null || die "parkd exited"
exit 0
