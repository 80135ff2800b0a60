#!/bin/sh
# t91-lorawan-faults: the SPEC §5 guarantee for LoRaWAN inputs (SPEC §9) — an uplink is
# acknowledged only once Redis holds its effect, on every connection, and one connection down
# stalls no other. Two QoS 1 streams of 300 uplinks each (The Things Stack v3 on the network
# server's own broker, ChirpStack v4 on parkd's main broker; increasing frame counters and event
# times, each device alternating its state) run while parkd is killed with -9 three times: plain,
# with a Redis batch in flight (Redis frozen, then resumed after the kill), and while Redis is
# down (uplinks read but not storable must not have been acknowledged); then two more
# streams while the network server's broker (persistence on, same port) is stopped and started
# again. Each time, once the streams are in, every bay, the lots' occupied/free and the retained
# availability equal the reference model of lorawan.py (the latest event time per bay wins), and
# while the network server's broker is down the main connection keeps applying input. Last,
# parkd started while that broker is down becomes ready, serves the main connection and catches
# up once it is back; and with the main broker down, the other broker's uplinks still reach Redis.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
NS_PERSIST=1
. "$(dirname "$0")/lw-lib.sh"

# Redis durable (appendfsync always: what it acknowledged survives its restart) and restartable
# on the same port, as in fault-lib.sh; the main mosquitto is lib.sh's
redis_start() {
    [ -n "$REDIS_PORT" ] || REDIS_PORT=$(free_port)
    mkdir -p "$T/redis"
    _try=0
    while [ $_try -lt 20 ]; do
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T/redis" --save '' \
            --appendonly yes --appendfsync always --logfile "$T/redis.log" --daemonize no \
            >/dev/null 2>&1 &
        REDIS_PID=$!
        if wait_for "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping" PONG 5; then
            return 0
        fi
        kill "$REDIS_PID" 2>/dev/null
        wait "$REDIS_PID" 2>/dev/null
        _try=$((_try + 1))
        sleep 0.2
    done
    fail "redis-server starts on port $REDIS_PORT" PONG "$GOT"
    exit 1
}
redis_stop() {
    kill -TERM "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=
}
for _tool in mosquitto mosquitto_pub mosquitto_sub redis-server redis-cli; do
    command -v "$_tool" >/dev/null 2>&1 || { echo "FAIL: $_tool is installed (expected it on PATH, got nothing)"; exit 1; }
done
redis_start
start_mosquitto

_t91_cleanup() {
    [ -n "$REDIS_PID" ] && kill -CONT "$REDIS_PID" 2>/dev/null   # never leave Redis frozen
    [ -n "$NS_PID" ] && kill -CONT "$NS_PID" 2>/dev/null
    for _p in $STREAM_PIDS; do kill "$_p" 2>/dev/null; done
    _lw_cleanup
}
trap '_lib_rc=$?; _t91_cleanup; exit $_lib_rc' EXIT
STREAM_PIDS=

ns_start
# 100 devices on each input, each sending N / 100 uplinks one after the other (lorawan.py
# --order block): the latest uplink of some bay is never more than 3 uplinks away from any
# moment of the stream, so an uplink lost across a kill shows in the final state
D=100
TTS_DEVS=
CS_DEVS=
: >"$TTS_DEV"
: >"$CS_DEV"
k=0
while [ $k -lt $D ]; do
    eui=$(printf '0004A30B%08X' $k)
    TTS_DEVS="$TTS_DEVS,td$k:$eui"
    # half of the TTN devices listed by device id, half by DevEUI (lower case)
    if [ $((k % 2)) = 0 ]; then echo "td$k,P1,t$k"; else echo "$(echo "$eui" | tr A-F a-f),P1,t$k"; fi >>"$TTS_DEV"
    ceui=$(printf 'a84041%010x' $k)
    CS_DEVS="$CS_DEVS,-:$ceui"
    if [ $((k % 2)) = 0 ]; then echo "$ceui,P2,c$k"; else echo "$(echo "$ceui" | tr a-f A-F),P2,c$k"; fi >>"$CS_DEV"
    k=$((k + 1))
done
TTS_DEVS=${TTS_DEVS#,}
CS_DEVS=${CS_DEVS#,}
LW_CAPACITY=200
lw_config "log.level=info"
parkd_start
lw_wait_subscribed

B=$(( ($(now) - 3000) * 1000 ))
N=300
RATE=30

# stream NAME FORMAT FCNT0 T0_MS [options] — one background stream; its log of events in
# $T/NAME.events, its output in $T/NAME.out
stream() {
    _n=$1; _f=$2; _c=$3; _t=$4; shift 4
    if [ "$_f" = ttn ]; then
        set -- --port "$NS_PORT" -u "$NS_PUB_USER" -P "$NS_PUB_PW" --devices="$TTS_DEVS" "$@"
    else
        set -- --port "$MQTT_PORT" --devices="$CS_DEVS" "$@"
    fi
    "$PY" "$LW" stream --format "$_f" -n "$N" --rate "$RATE" --fcnt0 "$_c" --t0-ms "$_t" \
        --client-id "lw-$_n-$$" --log "$T/$_n.events" "$@" >"$T/$_n.out" 2>"$T/$_n.err" &
    STREAM_PIDS="$STREAM_PIDS $!"
    eval "SPID_$_n=$!"
    LOGS="$LOGS $T/$_n.err"
}
stream_wait() {   # stream_wait NAME
    eval "_p=\$SPID_$1"
    wait "$_p"
    _rc=$?
    if [ "$_rc" -eq 0 ]; then pass "stream $1 published $N uplinks and had every PUBACK ($(tail -n 1 "$T/$1.out"))"
    else fail "stream $1 published $N uplinks and had every PUBACK" "exit 0" "exit $_rc: $(tail -n 2 "$T/$1.err")"; fi
}
wait_line() {     # wait_line NAME LINE
    wait_for "grep -qx '$2' '$T/$1.out' && echo yes" yes 30 ||
        fail "stream $1 reaches '$2'" "$2" "$(tail -n 1 "$T/$1.out")"
}
running() { eval "_p=\$SPID_$1"; kill -0 "$_p" 2>/dev/null; }

# parkd_restart — like fault-lib's: waits for this process's "ready" (the retained status may
# still be the killed instance's "online")
parkd_restart() {
    PARKD_RUNS=$((PARKD_RUNS + 1))
    PARKD_LOG=$T/parkd.$PARKD_RUNS.log
    LOGS="$LOGS $PARKD_LOG"
    "$PARKD_BIN" -c "$CFG" 2>"$PARKD_LOG" >"$T/parkd.$PARKD_RUNS.stdout" &
    PARKD_PID=$!
    if wait_for "grep -q ' ready' '$PARKD_LOG' && echo yes || { [ \"\$(dget pid)\" = $PARKD_PID ] && echo yes; }" yes 10; then
        return 0
    fi
    fail "parkd (run $PARKD_RUNS) restores its state and subscribes" "ready" "$(tail -n 2 "$PARKD_LOG" | tr '\n' ' ')"
    exit 1
}
parkd_kill() {
    kill -KILL "$PARKD_PID" 2>/dev/null
    wait "$PARKD_PID" 2>/dev/null
    PARKD_PID=
}

EXTRA=     # bay events of the main topics, "LOT BAY EPOCH_MS 0|1", for the model

# model_out — the reference model on every events log written so far
model_out() {
    _args=
    for _s in tts cs; do
        [ "$_s" = tts ] && _d=$TTS_DEV || _d=$CS_DEV
        for _k in "" 2; do
            [ -f "$T/$_s$_k.events" ] && _args="$_args $_d:$T/$_s$_k.events"
        done
    done
    if [ -n "$EXTRA" ]; then
        # shellcheck disable=SC2086
        "$PY" "$LW" model --extra "$EXTRA" $_args
    else
        # shellcheck disable=SC2086
        "$PY" "$LW" model $_args
    fi | awk -v cap="$LW_CAPACITY" '{ print } $1 == "lot" { print "lot", $2, "free", cap - $4; print "avail", $2, "occupied", $4; print "avail", $2, "free", cap - $4 }' | sort
}
# state_out — the same lines from Redis and the retained availability
state_out() {
    for _l in P1 P2; do
        rget hgetall "${RP}lot:$_l:bays" | paste - - | awk -v l="$_l" 'NF == 2 { print "bay", l, $1, $2 }'
        echo "lot $_l occupied $(hget "$_l" occupied)"
        echo "lot $_l free $(hget "$_l" free)"
        _a=$(avail "$_l")
        echo "avail $_l occupied $(jget "$_a" occupied)"
        echo "avail $_l free $(jget "$_a" free)"
    done | sort
}
# compare LABEL — waits (≤ 30 s) until the state equals the model, then one check per lot
compare() {
    model_out >"$T/want"
    _t0=$(now)
    while :; do
        state_out >"$T/got"
        cmp -s "$T/want" "$T/got" && break
        [ $(($(now) - _t0)) -ge 30 ] && break
        sleep 0.25
    done
    for _l in P1 P2; do
        _w=$(grep " $_l " "$T/want" | tr '\n' ';')
        _g=$(grep " $_l " "$T/got" | tr '\n' ';')
        if [ "$_w" = "$_g" ]; then
            pass "$1: lot $_l — every bay, occupied/free in Redis and the retained availability equal the model"
        else
            fail "$1: lot $_l equals the model" "$(diff "$T/want" "$T/got" | grep '^<' | grep " $_l " | head -n 8 | tr '\n' ';')" \
                "$(diff "$T/want" "$T/got" | grep '^>' | grep " $_l " | head -n 8 | tr '\n' ';')"
        fi
    done
    for _i in tts cs; do
        _r=
        for _c in rejected_unknown_device rejected_malformed rejected_no_field rejected_unmapped_value \
            rejected_oversize rejected_unknown_lot rejected_future not_uplink; do
            _v=$(ic "$_i" "$_c")
            [ "$_v" = 0 ] || _r="$_r $_c=$_v"
        done
        check "$1: input $_i rejected nothing" "" "$_r"
    done
    echo "# $1: counters $(rget hgetall "${RP}daemon" | paste - - | awk '$1 ~ /^input:/ { printf "%s=%s ", $1, $2 }')"
}

# --- kill -9 of parkd while both connections stream ------------------------------------------------
stream tts ttn 1 "$B" --mark-at 60 --mark-at 130 --mark-at 200
stream cs cs 1 "$B"
for k in 60 130 200; do
    wait_line tts "mark $k"
    sleep "0.$(awk -v s="$k$$" 'BEGIN { srand(s); printf "%d", 1 + rand() * 8 }')"
    what="kill -9 of parkd while both inputs stream (after uplink $k)"
    case $k in
        130)
            what="kill -9 of parkd with a Redis batch in flight, executed after the kill (after uplink $k)"
            kill -STOP "$REDIS_PID"
            sleep 0.3 ;;
        200)
            # Redis down: parkd reads uplinks it cannot store; none may be acknowledged
            what="kill -9 of parkd while Redis is down and uplinks arrive (after uplink $k)"
            redis_stop
            sleep 1 ;;
    esac
    if running tts && running cs; then pass "$what"; else fail "$what" "both streams running" "one had finished"; fi
    parkd_kill
    case $k in
        130) kill -CONT "$REDIS_PID" ;;
        200) redis_start ;;
    esac
    sleep 1        # both brokers queue what comes meanwhile for parkd's sessions
    parkd_restart
done
stream_wait tts
stream_wait cs
compare "after three kill -9"
check_ok "parkd still running" parkd_alive

# --- the network server's broker restarted mid-stream ----------------------------------------------
B2=$((B + (N + 10) * 1000))
stream tts2 ttn $((N / D + 1)) "$B2" --mark-at 100
stream cs2 cs $((N / D + 1)) "$B2"
wait_line tts2 "mark 100"
sleep 0.3
conns=$(grep -c "as parkd-tts-$$ " "$NS_LOG")
ns_stop TERM
if running cs2; then pass "network server's broker stopped while the streams run"; else
    fail "network server's broker stopped while the streams run" "cs2 running" "it had finished"; fi
c0=$(ic cs uplinks)
ZT=$(now)
pub "$IN/P1/bay/z1" "{\"occupied\": true, \"ts\": $ZT}"
EXTRA="P1 z1 $((ZT * 1000)) 1"
check_eventually "network server's broker down: a bay message on the main broker is applied within 3 s" "bayget P1 z1" 1 3
check_eventually "network server's broker down: ChirpStack uplinks on the main connection still counted" \
    "[ \$(ic cs uplinks) -gt $c0 ] && echo more" more 3
sleep 1
ns_start
check_ok "the network server's broker is back on port $NS_PORT" _lw_port_open "$NS_PORT"
stream_wait tts2
stream_wait cs2
compare "after the network server's broker restart"
check_ok "parkd kept running through the broker restart" parkd_alive
check "parkd connected to the network server's broker again after its restart" yes \
    "$([ "$(grep -c "as parkd-tts-$$ " "$NS_LOG")" -gt "$conns" ] && echo yes || echo no)"

# --- parkd started while the network server's broker is down -------------------------------------
parkd_stop
check "SIGTERM: exit 0" 0 "$PARKD_RC"
conns=$(grep -c "as parkd-tts-$$ " "$NS_LOG")
ns_stop TERM
ZT=$(now)
parkd_start
pass "parkd becomes ready while the network server's broker is down"
pub "$IN/P1/bay/z1" "{\"occupied\": false, \"ts\": $ZT}"
check_eventually "network server's broker down at start: the main broker's bay message is applied" "bayget P1 z1" 0 3
c0=$(ic cs uplinks)
cs_up a840410000000000 900 '{"status":"occupied"}' "$((B2 + (N + 10) * 1000))"
check_eventually "network server's broker down at start: a ChirpStack uplink is applied" "bayget P2 c0" 1 3
ns_start
wait_for "[ \$(grep -c 'as parkd-tts-$$ ' '$NS_LOG') -gt $conns ] && echo yes" yes 15 >/dev/null
ttn_up td0 0004A30B00000000 900 '{"occupied":true}' "$((B2 + (N + 10) * 1000))"
check_eventually "network server's broker back: parkd connects and applies its uplinks" "bayget P1 t0" 1 15

# --- the main broker down: the network server's uplinks still reach Redis --------------------------
kill "$MOSQ_PID"
wait "$MOSQ_PID" 2>/dev/null
ttn_up td1 0004A30B00000001 901 '{"occupied":false}' "$((B2 + (N + 11) * 1000))"
check_eventually "main broker down: an uplink of the network server's broker still reaches Redis" "bayget P1 t1" 0 5
mosquitto -c "$T/mosquitto.conf" >>"$T/mosquitto.stderr" 2>&1 &     # same port; no persistence
MOSQ_PID=$!
check_eventually "main broker back: P1's availability, changed meanwhile, is published" \
    "jget \"\$(retained $OUT/P1/availability 1)\" occupied" "$(hget P1 occupied)" 5

# --- the network server's broker hung (SIGSTOP: no RST, no reply) right after an uplink of it ------
ttn_up td2 0004A30B00000002 902 '{"occupied":true}' "$((B2 + (N + 12) * 1000))"
check_eventually "an uplink of the network server's broker is applied" "bayget P1 t2" 1 5
kill -STOP "$NS_PID"
ZT=$(now)
pub "$IN/P1/bay/z1" "{\"occupied\": true, \"ts\": $ZT}"
check_eventually "network server's broker hung: the main broker's bay message is applied" "bayget P1 z1" 1 3
cs_up a840410000000001 902 '{"status":"free"}' "$((B2 + (N + 12) * 1000))"
check_eventually "network server's broker hung: a ChirpStack uplink is applied" "bayget P2 c1" 0 3
kill -CONT "$NS_PID"
check_ok "parkd still running" parkd_alive
finish
