# lib.sh — sourced by every tests/integration/t*.sh. POSIX sh.
#
# Starts a real mosquitto and a real redis-server on free loopback ports in a fresh `mktemp -d`
# directory, writes parkd configurations, starts and stops parkd, and always cleans up (trap on
# EXIT/INT/TERM). Each check prints one line "PASS: what" or "FAIL: what (expected X, got Y)";
# `finish` exits non-zero when any check failed, and on failure the tail of the parkd log is shown.
#
# Set before sourcing (all optional):
#   IN=parking          mqtt.input_prefix written into the config
#   OUT=out/parking     mqtt.output_prefix (kept outside <in>/# so parkd's own output does not
#                       reach its input subscription and the message counters stay exact)
#   RP=parkd:           redis.prefix
#   NO_SERVERS=1        do not start mosquitto / redis (CLI-only tests)
#   MOSQ_EXTRA_CONF=... lines appended to mosquitto.conf (e.g. "max_packet_size 65536")
#   MOSQ_WS=1           also a WebSocket listener on a free loopback port, exported as MQTT_WS_PORT
#
# Environment from tests/run.sh: PARKD_TOP, PARKD_BIN, PARKD_TOOLS, BUILD.

PARKD_TOP=${PARKD_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
PARKD_BIN=${PARKD_BIN:-$PARKD_TOP/$BUILD/parkd}
PARKD_TOOLS=${PARKD_TOOLS:-$PARKD_TOP/$BUILD/tools}
IN=${IN:-parking}
OUT=${OUT:-out/parking}
RP=${RP:-parkd:}
PY=${PY:-python3}
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

T=$(mktemp -d "${TMPDIR:-/tmp}/parkd-it.XXXXXX") || { echo "FAIL: mktemp -d"; exit 1; }
CFG=$T/parkd.yaml
FAILS=0
PASSES=0
SENT=0             # messages published to <in>/# since the last parkd_start
IN0=0              # parkd:daemon messages_in right after the last parkd_start
PARKD_PID=
PARKD_RC=
PARKD_LOG=$T/parkd.log
PARKD_RUNS=0
MOSQ_PID=
REDIS_PID=
SUB_PIDS=
SETTLE_BROKEN=
LOGS=

# ---------------------------------------------------------------------------------------------
# cleanup

_lib_cleanup() {
    set +e
    if [ -n "$PARKD_PID" ] && kill -0 "$PARKD_PID" 2>/dev/null; then
        kill -TERM "$PARKD_PID" 2>/dev/null
        _i=0
        while kill -0 "$PARKD_PID" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
        kill -KILL "$PARKD_PID" 2>/dev/null
    fi
    for _p in $SUB_PIDS; do kill "$_p" 2>/dev/null; done
    [ -n "$MOSQ_PID" ] && kill "$MOSQ_PID" 2>/dev/null
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
    if [ "$FAILS" -gt 0 ]; then
        for _l in $LOGS; do
            [ -s "$_l" ] || continue
            echo "--- tail of $(basename "$_l") ---"
            tail -n 40 "$_l"
        done
    fi
    wait 2>/dev/null
    rm -rf "$T"
}
trap '_lib_rc=$?; _lib_cleanup; exit $_lib_rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# checks

_flat() { printf '%s' "$1" | tr '\n' ' ' | cut -c1-400; }

pass() { PASSES=$((PASSES + 1)); echo "PASS: $1"; }
fail() {   # fail DESC EXPECTED GOT
    FAILS=$((FAILS + 1))
    echo "FAIL: $1 (expected $(_flat "$2"), got $(_flat "$3"))"
}

# check "description" expected actual
check() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "$2" "$3"; fi
}

# check_ok "description" command... — passes when the command succeeds
check_ok() {
    _d=$1; shift
    if "$@" >/dev/null 2>&1; then pass "$_d"; else fail "$_d" "success of: $*" "failure"; fi
}

# wait_for "command" expected [timeout_s=5] — polls every 0.1 s until the command's output equals
# expected. Returns 0/1; the last output is in $GOT.
wait_for() {
    _cmd=$1; _exp=$2; _to=${3:-5}
    _n=$(awk "BEGIN{print int($_to * 10)}")
    _i=0
    while :; do
        GOT=$(eval "$_cmd" 2>/dev/null)
        [ "$GOT" = "$_exp" ] && return 0
        [ $_i -ge $_n ] && return 1
        sleep 0.1
        _i=$((_i + 1))
    done
}

# check_eventually "description" "command" expected [timeout_s=5]
check_eventually() {
    if wait_for "$2" "$3" "${4:-5}"; then pass "$1"; else fail "$1" "$3" "$GOT"; fi
}

# ---------------------------------------------------------------------------------------------
# JSON (python3; jq is not assumed)

# jget JSON PATH — PATH is dotted ("lots.0.free", "" for the whole document). Strings print raw,
# everything else as JSON (null, true, 12, 0.5, [..]); "<missing>" / "<invalid json>".
jget() {
    "$PY" -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except Exception:
    print("<invalid json>"); sys.exit(0)
for k in [p for p in sys.argv[2].split(".") if p != ""]:
    try:
        d = d[int(k)] if isinstance(d, list) else d[k]
    except Exception:
        print("<missing>"); sys.exit(0)
print(d if isinstance(d, str) else json.dumps(d))
' "$1" "$2"
}

# jtype JSON PATH — python type name of the value: int float str bool NoneType list dict missing
jtype() {
    "$PY" -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except Exception:
    print("invalid"); sys.exit(0)
for k in [p for p in sys.argv[2].split(".") if p != ""]:
    try:
        d = d[int(k)] if isinstance(d, list) else d[k]
    except Exception:
        print("missing"); sys.exit(0)
print(type(d).__name__)
' "$1" "$2"
}

# jkeys JSON [PATH] — sorted keys of an object, space separated
jkeys() {
    "$PY" -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
    for k in [p for p in sys.argv[2].split(".") if p != ""]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    print(" ".join(sorted(d.keys())))
except Exception:
    print("<not an object>")
' "$1" "${2:-}"
}

# check_json_field "description" JSON PATH expected
check_json_field() {
    check "$1" "$4" "$(jget "$2" "$3")"
}

# near A B TOL — succeeds when |A - B| <= TOL (numbers as strings)
near() {
    "$PY" -c 'import sys
try:
    a, b, t = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
except Exception:
    sys.exit(1)
sys.exit(0 if abs(a - b) <= t else 1)' "$1" "$2" "$3"
}

# check_near "description" expected actual tolerance
check_near() {
    if near "$2" "$3" "$4"; then pass "$1"; else fail "$1" "$2 ± $4" "$3"; fi
}

# matches REGEX STRING — extended regex, whole string
matches() { printf '%s\n' "$2" | grep -Eqx -- "$1"; }

check_match() {   # check_match "description" REGEX actual
    if matches "$2" "$3"; then pass "$1"; else fail "$1" "match of /$2/" "$3"; fi
}

# ---------------------------------------------------------------------------------------------
# time

now() { date +%s; }
now_ms() { "$PY" -c 'import time; print(int(time.time() * 1000))'; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }            # iso EPOCH_SECONDS -> UTC ISO-8601
iso_offset() {                                              # iso_offset EPOCH HOURS -> +HH:00 form
    date -u -d "@$(($1 + $2 * 3600))" "+%Y-%m-%dT%H:%M:%S+$(printf %02d "$2"):00"
}

# ---------------------------------------------------------------------------------------------
# servers

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_redis() {
    _try=0
    while [ $_try -lt 3 ]; do
        REDIS_PORT=$(free_port)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
            --logfile "$T/redis.log" --daemonize no >/dev/null 2>&1 &
        REDIS_PID=$!
        if wait_for "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping" PONG 5; then
            return 0
        fi
        kill "$REDIS_PID" 2>/dev/null
        _try=$((_try + 1))
    done
    fail "redis-server starts" "PONG" "$GOT"
    exit 1
}

start_mosquitto() {
    _try=0
    while [ $_try -lt 3 ]; do
        MQTT_PORT=$(free_port)
        [ -n "${MOSQ_WS:-}" ] && MQTT_WS_PORT=$(free_port) && export MQTT_WS_PORT
        {
            echo "listener $MQTT_PORT 127.0.0.1"
            echo "allow_anonymous true"
            echo "persistence ${MOSQ_PERSISTENCE:-false}"
            [ -n "$MOSQ_PERSISTENCE" ] && echo "persistence_location $T/"
            echo "log_dest file $T/mosquitto.log"
            echo "log_type all"
            echo "max_queued_messages 10000"
            echo "set_tcp_nodelay true"     # outputs reach subscribers without Nagle's wait
            [ "$(id -u)" = 0 ] && echo "user root"
            [ -n "${MOSQ_EXTRA_CONF:-}" ] && printf '%s\n' "$MOSQ_EXTRA_CONF"
            [ -n "${MOSQ_WS:-}" ] && printf 'listener %s 127.0.0.1\nprotocol websockets\n' "$MQTT_WS_PORT"
        } >"$T/mosquitto.conf"
        mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.stderr" 2>&1 &
        MOSQ_PID=$!
        if wait_for "mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t '\$SYS/broker/version' -C 1 -W 1 >/dev/null && echo up" up 5; then
            return 0
        fi
        kill "$MOSQ_PID" 2>/dev/null
        _try=$((_try + 1))
    done
    fail "mosquitto starts" "a broker on port $MQTT_PORT" "$(cat "$T/mosquitto.stderr")"
    exit 1
}

# ---------------------------------------------------------------------------------------------
# MQTT and Redis helpers

# pub TOPIC PAYLOAD — QoS 1, returns once the broker acknowledged it
pub() {
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$1" -m "$2" || fail "mosquitto_pub to $1" "rc 0" "rc $?"
    _count_sent "$1"
}
pub_empty() {     # zero-length payload
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$1" -n || fail "mosquitto_pub -n to $1" "rc 0" "rc $?"
    _count_sent "$1"
}
pub_file() {      # pub_file TOPIC FILE — the file's exact bytes
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$1" -f "$2" || fail "mosquitto_pub -f to $1" "rc 0" "rc $?"
    _count_sent "$1"
}
_count_sent() {
    case "$1" in "$IN"|"$IN"/*) SENT=$((SENT + 1)) ;; esac
}

# retained TOPIC [timeout] — one (normally the retained) message's payload
retained() {
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -C 1 -W "${2:-5}" -t "$1" 2>/dev/null
}

avail() { retained "$OUT/$1/availability"; }       # avail LOT
avail_field() { jget "$(avail "$1")" "$2"; }       # avail_field LOT FIELD

rget() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
hget() { rget hget "${RP}lot:$1" "$2"; }           # hget LOT FIELD
bayget() { rget hget "${RP}lot:$1:bays" "$2"; }    # bayget LOT BAY
dget() { rget hget "${RP}daemon" "$1"; }           # dget COUNTER

# sub_start NAME TOPIC — records every message on TOPIC into $T/NAME.sub as "UNIXTIME|RETAIN|PAYLOAD"
sub_start() {
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$2" -F '%U|%r|%p' >"$T/$1.sub" 2>/dev/null &
    SUB_PIDS="$SUB_PIDS $!"
    eval "SUBPID_$1=$!"
}
sub_stop() {
    eval "_p=\$SUBPID_$1"
    kill "$_p" 2>/dev/null
    wait "$_p" 2>/dev/null
}
sub_file() { echo "$T/$1.sub"; }

# ---------------------------------------------------------------------------------------------
# parkd configuration and process

# write_config LOTS [section.key=value ...]
#   LOTS is the body of the `lots:` section: YAML list items, one per line, e.g.
#     "  - {id: C1, name: Broad Street, capacity: 100, source: count}"
#   Each override sets (or replaces) one key of a top-level section; value "-" removes the key.
#   A section whose value is not a mapping (timezone) is set with "timezone=Europe/London".
write_config() {
    _lots=$1; shift
    _mqtt="host: 127.0.0.1
port: $MQTT_PORT
client_id: parkd-it-$$
keepalive: 5s
qos: 1
clean_session: false
input_prefix: $IN
output_prefix: $OUT"
    _redis="host: 127.0.0.1
port: $REDIS_PORT
prefix: \"$RP\""
    _publish="min_interval: 0
heartbeat: 5m
deadband: 1
summary_interval: 1s"
    _smoothing=
    _forecast=
    _history=
    _limits=
    _log="level: debug"
    _defaults=
    _top=
    for _o in "$@"; do
        case "$_o" in
            *.*=*) ;;
            *=*) _top="$_top
${_o%%=*}: ${_o#*=}"; continue ;;
        esac
        _sec=${_o%%.*}; _kv=${_o#*.}; _k=${_kv%%=*}; _v=${_kv#*=}
        eval "_cur=\$_$_sec"
        _cur=$(printf '%s\n' "$_cur" | grep -v "^$_k:" | grep -v '^$')
        if [ "$_v" != "-" ]; then
            _cur="$_cur
$_k: $_v"
        fi
        eval "_$_sec=\$_cur"
    done
    {
        for _sec in mqtt redis publish smoothing forecast history limits log defaults; do
            eval "_cur=\$_$_sec"
            _cur=$(printf '%s\n' "$_cur" | grep -v '^$')
            [ -n "$_cur" ] || continue
            echo "$_sec:"
            printf '%s\n' "$_cur" | sed 's/^/  /'
        done
        [ -n "$_top" ] && printf '%s\n' "$_top" | grep -v '^$'
        echo "lots:"
        printf '%s\n' "$_lots"
    } >"$CFG"
}

parkd_alive() { [ -n "$PARKD_PID" ] && kill -0 "$PARKD_PID" 2>/dev/null; }

# parkd_start [extra args] — starts parkd on $CFG, waits until <out>/status is "online" (retained)
# and the daemon hash is there; resets SENT and records IN0. Exits the test when parkd is not ready.
parkd_start() {
    if [ ! -x "$PARKD_BIN" ]; then
        fail "parkd binary exists" "$PARKD_BIN" "nothing (build first)"
        exit 1
    fi
    PARKD_RUNS=$((PARKD_RUNS + 1))
    PARKD_LOG=$T/parkd.$PARKD_RUNS.log
    LOGS="$LOGS $PARKD_LOG"
    "$PARKD_BIN" -c "$CFG" "$@" 2>"$PARKD_LOG" >"$T/parkd.$PARKD_RUNS.stdout" &
    PARKD_PID=$!
    # a retained "offline" (the will of a killed instance) answers at once: poll for 10 s
    _st=
    _end=$(($(now) + 10))
    while [ "$(now)" -le "$_end" ]; do
        _st=$(retained "$OUT/status" 1)
        [ "$_st" = online ] && break
        parkd_alive || break
        sleep 0.1
    done
    if [ "$_st" != online ]; then
        if parkd_alive; then _why="still running"; else wait "$PARKD_PID"; _why="exited with $?"; fi
        fail "parkd becomes ready ($OUT/status online)" "online" "'$_st', parkd $_why"
        exit 1
    fi
    SENT=0
    # the daemon hash may still be the previous run's: wait for this process's pid in it
    if wait_for "dget pid" "$PARKD_PID" 5; then
        IN0=$(dget messages_in)
    else
        fail "parkd:daemon hash written after startup (pid field)" "$PARKD_PID" "$GOT"
        IN0=$(dget messages_in)
    fi
    IN0=${IN0:-0}
    return 0
}

# parkd_stop [SIGNAL=TERM] — signals parkd and waits (≤ 10 s); exit status in PARKD_RC ("timeout"
# when it did not exit, after which it is killed).
parkd_stop() {
    [ -n "$PARKD_PID" ] || return 0
    kill "-${1:-TERM}" "$PARKD_PID" 2>/dev/null
    _i=0
    while kill -0 "$PARKD_PID" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    if kill -0 "$PARKD_PID" 2>/dev/null; then
        kill -KILL "$PARKD_PID" 2>/dev/null
        wait "$PARKD_PID" 2>/dev/null
        PARKD_RC=timeout
    else
        wait "$PARKD_PID"
        PARKD_RC=$?
    fi
    PARKD_PID=
}

# settle [timeout=6] — waits until parkd:daemon messages_in counts (at least) every message
# published to <in>/# since parkd_start (the hash is refreshed at least every second), i.e. until
# parkd has handled everything sent so far (MQTT keeps the order of one subscription).
settle() {
    if [ -n "$SETTLE_BROKEN" ]; then sleep 1; return 0; fi
    _want=$((IN0 + SENT))
    if wait_for '_m=$(dget messages_in); [ "${_m:-0}" -ge '"$_want"' ] && echo ok' ok "${1:-6}"; then
        return 0
    fi
    SETTLE_BROKEN=1
    fail "parkd:daemon messages_in counts every input message" ">= $_want" "$(dget messages_in)"
    return 1
}

# snap — remembers every parkd:daemon field, for delta (after settle, so that the counters
# include every message sent before)
snap() {
    settle
    rget hgetall "${RP}daemon" >"$T/snap" 2>/dev/null
}
# delta COUNTER — current value minus the value at the last snap (missing counts as 0)
delta() {
    _old=$(awk -v k="$1" 'NR % 2 == 1 && $0 == k { getline v; print v; exit }' "$T/snap")
    _new=$(dget "$1")
    echo $(( ${_new:-0} - ${_old:-0} ))
}

# finish — ends the test; the exit status says whether every check passed
finish() {
    if [ $((PASSES + FAILS)) -eq 0 ]; then echo "FAIL: no checks ran"; exit 1; fi
    [ "$FAILS" -eq 0 ]
    exit $?
}

if [ -z "$NO_SERVERS" ]; then
    for _tool in mosquitto mosquitto_pub mosquitto_sub redis-server redis-cli; do
        command -v "$_tool" >/dev/null 2>&1 || { echo "FAIL: $_tool is installed (expected it on PATH, got nothing)"; exit 1; }
    done
    start_redis
    start_mosquitto
fi
