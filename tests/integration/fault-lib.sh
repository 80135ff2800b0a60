# fault-lib.sh — helpers of the fault tests (t30-t39). POSIX sh.
#
# Source it after lib.sh, with NO_SERVERS=1 set before lib.sh: the fault tests run their own
# servers, durable and restartable on the same port:
#   redis-server  appendonly yes, appendfsync always (a write Redis acknowledged survives even
#                 kill -9 of Redis), data in $T/redis
#   mosquitto     persistence true in $T/mosq/, max_queued_messages 100000 (parkd's session keeps
#                 the whole stream while parkd is down), logging without per-message lines
# The stream and its ground truth come from $PARKD_TOOLS/faultgen (tests/tools/faultgen.c);
# FG_ARGS holds its generation options, the same for `truth`, `lots` and `publish`.

FG=$PARKD_TOOLS/faultgen
FG_ARGS=${FG_ARGS:-}
FG_PID=
FG_RUNS=0
FG_OUT=
REDIS_PORT=
MQTT_PORT=

[ -x "$FG" ] || { echo "FAIL: faultgen is built (expected $FG, got nothing)"; exit 1; }
for _tool in mosquitto mosquitto_pub mosquitto_sub redis-server redis-cli; do
    command -v "$_tool" >/dev/null 2>&1 || { echo "FAIL: $_tool is installed (expected it on PATH, got nothing)"; exit 1; }
done

_fault_cleanup() {
    [ -n "$FG_PID" ] && kill "$FG_PID" 2>/dev/null
    # a test that failed while Redis was frozen (SIGSTOP) must not leave it stopped
    [ -n "$REDIS_PID" ] && kill -CONT "$REDIS_PID" 2>/dev/null
    _lib_cleanup
}
trap '_lib_rc=$?; _fault_cleanup; exit $_lib_rc' EXIT

# ---------------------------------------------------------------------------------------------
# servers

# fault_start_redis — on a free port the first time, then on the same one again (a restart)
fault_start_redis() {
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
        sleep 0.2      # the port may still be held by the previous instance
    done
    fail "redis-server starts on port $REDIS_PORT" PONG "$GOT"
    exit 1
}

# fault_stop_redis [SIGNAL=TERM] — and waits until it has exited
fault_stop_redis() {
    kill "-${1:-TERM}" "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=
}

# fault_start_mosquitto — likewise: a free port, then the same one again
fault_start_mosquitto() {
    [ -n "$MQTT_PORT" ] || MQTT_PORT=$(free_port)
    mkdir -p "$T/mosq"
    {
        echo "listener $MQTT_PORT 127.0.0.1"
        echo "allow_anonymous true"
        echo "persistence true"
        echo "persistence_location $T/mosq/"
        echo "autosave_interval 1800"
        echo "max_queued_messages 100000"
        echo "log_dest file $T/mosquitto.log"
        if [ -n "$FAULT_MOSQ_LOG_ALL" ]; then
            echo "log_type all"         # every packet: for debugging a failure
        else
            echo "log_type error"
            echo "log_type warning"
            echo "log_type notice"
            echo "log_type information"
        fi
        [ "$(id -u)" = 0 ] && echo "user root"
    } >"$T/mosquitto.conf"
    _try=0
    while [ $_try -lt 20 ]; do
        mosquitto -c "$T/mosquitto.conf" >>"$T/mosquitto.stderr" 2>&1 &
        MOSQ_PID=$!
        if wait_for "mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t '\$SYS/broker/version' -C 1 -W 1 >/dev/null && echo up" up 5; then
            return 0
        fi
        kill "$MOSQ_PID" 2>/dev/null
        wait "$MOSQ_PID" 2>/dev/null
        _try=$((_try + 1))
        sleep 0.2
    done
    fail "mosquitto starts on port $MQTT_PORT" "a broker" "$(tail -n 3 "$T/mosquitto.stderr")"
    exit 1
}

# fault_stop_mosquitto [SIGNAL=TERM] — TERM saves the persistence file on the way out
fault_stop_mosquitto() {
    kill "-${1:-TERM}" "$MOSQ_PID" 2>/dev/null
    wait "$MOSQ_PID" 2>/dev/null
    MOSQ_PID=
}

fault_servers() {
    LOGS="$LOGS $T/redis.log $T/mosquitto.log"
    fault_start_redis
    fault_start_mosquitto
}

# ---------------------------------------------------------------------------------------------
# parkd

# fault_config [section.key=value ...] — faultgen's lots, a fixed client id (one persistent
# session across parkd restarts), every change published (min_interval 0)
fault_config() {
    write_config "$("$FG" $FG_ARGS lots)" "mqtt.client_id=parkd-fault-$$" "log.level=info" "$@"
}

# fault_parkd_restart — starts parkd again on $CFG and waits (≤ 10 s) until it has restored its
# state and subscribed ("ready" in its log); unlike parkd_start it does not wait for the retained
# status, which may still be the "online" of the instance that was killed
fault_parkd_restart() {
    PARKD_RUNS=$((PARKD_RUNS + 1))
    PARKD_LOG=$T/parkd.$PARKD_RUNS.log
    LOGS="$LOGS $PARKD_LOG"
    "$PARKD_BIN" -c "$CFG" 2>"$PARKD_LOG" >"$T/parkd.$PARKD_RUNS.stdout" &
    PARKD_PID=$!
    # the log line, or else this process's pid in the daemon hash (written once it runs)
    if wait_for "grep -q ' ready' '$PARKD_LOG' && echo yes || { [ \"\$(dget pid)\" = $PARKD_PID ] && echo yes; }" yes 10; then
        return 0
    fi
    fail "parkd (run $PARKD_RUNS) restores its state and subscribes" "ready" "$(tail -n 2 "$PARKD_LOG" | tr '\n' ' ')"
    exit 1
}

# parkd_kill — kill -9, as a crash
parkd_kill() {
    kill -KILL "$PARKD_PID" 2>/dev/null
    wait "$PARKD_PID" 2>/dev/null
    PARKD_PID=
}

# ---------------------------------------------------------------------------------------------
# the stream

# fault_publish_bg [faultgen publish options] — in the background; FG_PID, output in $FG_OUT
fault_publish_bg() {
    FG_RUNS=$((FG_RUNS + 1))
    FG_OUT=$T/faultgen.$FG_RUNS.out
    LOGS="$LOGS $T/faultgen.$FG_RUNS.err"
    "$FG" $FG_ARGS -h 127.0.0.1 -p "$MQTT_PORT" -t "$IN" -i "faultgen-$$-$FG_RUNS" "$@" publish \
        >"$FG_OUT" 2>"$T/faultgen.$FG_RUNS.err" </dev/null &
    FG_PID=$!
}

# fault_publish_wait "description" — waits for the background publisher; a check that it
# published and saw every PUBACK
fault_publish_wait() {
    wait "$FG_PID"
    _rc=$?
    FG_PID=
    if [ "$_rc" -eq 0 ]; then
        pass "$1 ($(grep '^done' "$FG_OUT"))"
    else
        fail "$1" "faultgen exit 0" "exit $_rc: $(tail -n 2 "$T/faultgen.$FG_RUNS.err")"
    fi
}

# fault_publish "description" [options] — in the foreground
fault_publish() {
    _d=$1; shift
    fault_publish_bg "$@"
    fault_publish_wait "$_d"
}

# fault_wait_line LINE [timeout_s=30] — until the running publisher printed LINE ("mark 7000")
fault_wait_line() {
    if wait_for "grep -qx '$1' '$FG_OUT' && echo yes" yes "${2:-30}"; then
        return 0
    fi
    fail "publisher reaches '$1'" "$1" "$(tail -n 1 "$FG_OUT")"
    return 1
}

# fault_truth FILE [--to J] — the ground truth (faultgen truth, SPEC §3 applied by faultgen)
fault_truth() {
    _f=$1; shift
    "$FG" $FG_ARGS -t "$IN" "$@" truth >"$_f"
}

fault_publisher_running() { [ -n "$FG_PID" ] && kill -0 "$FG_PID" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# comparing with the ground truth

# fault_expected TRUTH — the lines the state should have: the truth plus, for every lot, the
# retained availability's occupied and free
fault_expected() {
    grep -v '^#' "$1"
    awk '$1 == "lot" && ($3 == "occupied" || $3 == "free") { print "avail", $2, $3, $4 }' "$1"
}

# fault_snapshot LOTS — what Redis and the retained availability topics hold, in the truth's format
fault_snapshot() {
    for _l in $1; do
        for _f in occupied free ts; do
            _v=$(rget hget "${RP}lot:$_l" "$_f")
            [ -n "$_v" ] && echo "lot $_l $_f $_v"
        done
        rget hgetall "${RP}lot:$_l:bays" | paste - - | awk -v l="$_l" 'NF == 2 { print "bay", l, $1, $2 }'
        rget hgetall "${RP}lot:$_l:gateseq" | paste - - | awk -v l="$_l" 'NF == 2 { print "gateseq", l, $1, $2 }'
    done
    _n=$(echo $1 | wc -w)
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t "$OUT/+/availability" -v -C "$_n" -W 2 2>/dev/null |
        while read -r _topic _payload; do
            _l=${_topic#"$OUT"/}; _l=${_l%/availability}
            for _f in occupied free; do
                _v=$(printf '%s\n' "$_payload" | sed -n "s/.*\"$_f\": *\([^,}]*\).*/\1/p")
                echo "avail $_l $_f $_v"
            done
        done
}

# fault_lots TRUTH — the lot ids that have data in the truth
fault_lots() { awk '$1 == "lot" { print $2 }' "$1" | sort -u | tr '\n' ' '; }

# _fault_diff KIND LOT — the ids of KIND lines (bay, gateseq) of LOT that differ, "id want X got Y"
_fault_diff() {
    awk -v k="$1" -v l="$2" '
        FNR == 1 { file++ }
        $1 == k && $2 == l { if (file == 1) want[$3] = $4; else got[$3] = $4 }
        END {
            for (id in want) if (!(id in got) || got[id] != want[id]) print id, "want", want[id], "got", (id in got ? got[id] : "none")
            for (id in got) if (!(id in want)) print id, "want none got", got[id]
        }' "$T/fault.expected" "$T/fault.got" | sort
}

_fault_field() {   # _fault_field FILE KIND LOT FIELD
    awk -v k="$2" -v l="$3" -v f="$4" '$1 == k && $2 == l && $3 == f { print $4 }' "$1"
}

# fault_compare LABEL TRUTH [timeout_s=30] — waits until Redis and the retained topics equal the
# ground truth (parkd may still be catching up), then checks every lot: occupied, free and ts in
# Redis, the retained availability, and every bay state and gate seq
fault_compare() {
    _label=$1; _truth=$2; _to=${3:-30}
    _lots=$(fault_lots "$_truth")
    fault_expected "$_truth" | sort >"$T/fault.expected"
    _t0=$(date +%s)
    while :; do
        fault_snapshot "$_lots" | sort >"$T/fault.got"
        cmp -s "$T/fault.expected" "$T/fault.got" && break
        [ $(($(date +%s) - _t0)) -ge "$_to" ] && break
        sleep 0.25
    done
    echo "# $_label: state compared after $(($(date +%s) - _t0)) s; parkd counters:" \
        "$(rget hgetall "${RP}daemon" | paste - - | awk '$1 ~ /^(messages_in|applied|unchanged|ignored_old|ignored_duplicate|anomaly_clamped|redis_batches)$/ { printf "%s=%s ", $1, $2 }')"
    for _l in $_lots; do
        _e=$T/fault.expected; _g=$T/fault.got
        check "$_label: lot $_l occupied/free/ts in Redis" \
            "$(_fault_field "$_e" lot "$_l" occupied)/$(_fault_field "$_e" lot "$_l" free)/$(_fault_field "$_e" lot "$_l" ts)" \
            "$(_fault_field "$_g" lot "$_l" occupied)/$(_fault_field "$_g" lot "$_l" free)/$(_fault_field "$_g" lot "$_l" ts)"
        check "$_label: lot $_l retained availability occupied/free" \
            "$(_fault_field "$_e" avail "$_l" occupied)/$(_fault_field "$_e" avail "$_l" free)" \
            "$(_fault_field "$_g" avail "$_l" occupied)/$(_fault_field "$_g" avail "$_l" free)"
        for _k in bay gateseq; do
            _want=$(awk -v k="$_k" -v l="$_l" '$1 == k && $2 == l' "$_e" | wc -l)
            [ "$_want" -gt 0 ] || continue
            _d=$(_fault_diff "$_k" "$_l")
            _nd=$(printf '%s' "$_d" | grep -c .)
            _got="$_nd differ"
            [ "$_nd" -gt 0 ] && _got="$_got: $(printf '%s\n' "$_d" | head -n 5 | tr '\n' ';')"
            check "$_label: lot $_l every $_k equals the ground truth ($_want of them)" "0 differ" "$_got"
        done
    done
}

# fault_counter NAME — a parkd:daemon counter (0 when missing)
fault_counter() { _v=$(dget "$1"); echo "${_v:-0}"; }
