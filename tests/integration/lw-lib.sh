# lw-lib.sh — helpers of the LoRaWAN input tests (t90, t91; SPEC §9). POSIX sh.
#
# Source it after lib.sh (which runs the main mosquitto and redis): it adds a second mosquitto,
# the network server's broker ("NS"), with a password file and an ACL — anonymous clients are
# refused, parkd connects as the TTS application user, the test publishes as the network
# server — on a port chosen once and kept across restarts (NS_PERSIST=1: persistence on, so that
# a restart keeps parkd's session, its queued messages and what was in flight). Messages are made
# by lorawan.py (shapes of tests/unit/test_uplink.c); the configuration is lw_config's.

LW=$PARKD_TOP/tests/integration/lorawan.py
NS_PORT=
NS_PID=
NS_USER=app1@ttn
NS_PW="tts-key-$$-Vb7qP3"
NS_PUB_USER=ns
NS_PUB_PW="ns-pw-$$-Hx2mL9"
NS_DIR=$T/ns
NS_LOG=$NS_DIR/mosquitto.log
MAIN_MOSQ_LOG=$T/mosquitto.log
TTS_DEV=$T/tts-devices.csv
CS_DEV=$T/cs-devices.csv
CS_APP=17c82e96-be03-4f38-aef3-f83d48582d97
METRICS_PORT=

command -v mosquitto_passwd >/dev/null 2>&1 || { echo "FAIL: mosquitto_passwd is installed (expected it on PATH, got nothing)"; exit 1; }

_lw_cleanup() {
    [ -n "$NS_PID" ] && kill "$NS_PID" 2>/dev/null
    _lib_cleanup
}
trap '_lib_rc=$?; _lw_cleanup; exit $_lib_rc' EXIT

# ---------------------------------------------------------------------------------------------
# the network server's broker

_lw_port_open() {
    "$PY" -c 'import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

ns_start() {
    mkdir -p "$NS_DIR"
    if [ ! -f "$NS_DIR/passwd" ]; then
        (umask 077 && : >"$NS_DIR/passwd")
        mosquitto_passwd -b "$NS_DIR/passwd" "$NS_USER" "$NS_PW" &&
            mosquitto_passwd -b "$NS_DIR/passwd" "$NS_PUB_USER" "$NS_PUB_PW" ||
            { fail "mosquitto_passwd for the network server's broker" "rc 0" "rc $?"; exit 1; }
        # the TTS application user reads its application's topics only; the network server writes
        cat >"$NS_DIR/acl" <<ACL
user $NS_USER
topic read v3/app1@ttn/#

user $NS_PUB_USER
topic readwrite v3/#
ACL
        LOGS="$LOGS $NS_LOG"
    fi
    [ -n "$NS_PORT" ] || NS_PORT=$(free_port)
    {
        echo "per_listener_settings false"
        echo "listener $NS_PORT 127.0.0.1"
        echo "allow_anonymous false"
        echo "password_file $NS_DIR/passwd"
        echo "acl_file $NS_DIR/acl"
        if [ -n "${NS_PERSIST:-}" ]; then
            echo "persistence true"
            echo "persistence_location $NS_DIR/"
            echo "autosave_interval 1800"
        else
            echo "persistence false"
        fi
        echo "max_queued_messages 100000"
        echo "log_dest file $NS_LOG"
        echo "log_type error"
        echo "log_type warning"
        echo "log_type notice"
        echo "log_type information"
        echo "log_type subscribe"
        [ "$(id -u)" = 0 ] && echo "user root"
    } >"$NS_DIR/mosquitto.conf"
    _try=0
    while [ $_try -lt 20 ]; do
        mosquitto -c "$NS_DIR/mosquitto.conf" >>"$NS_DIR/stderr" 2>&1 &
        NS_PID=$!
        if wait_for "_lw_port_open $NS_PORT && echo up" up 5; then
            return 0
        fi
        kill "$NS_PID" 2>/dev/null
        wait "$NS_PID" 2>/dev/null
        NS_PID=
        _try=$((_try + 1))
        sleep 0.2     # the port may still be held by the previous instance
    done
    fail "the network server's mosquitto starts on port $NS_PORT" "a broker" "$(tail -n 3 "$NS_DIR/stderr")"
    exit 1
}

# ns_stop [SIGNAL=TERM] — TERM saves the persistence file on the way out
ns_stop() {
    [ -n "$NS_PID" ] || return 0
    kill "-${1:-TERM}" "$NS_PID" 2>/dev/null
    wait "$NS_PID" 2>/dev/null
    NS_PID=
}

# ns_pub TOPIC PAYLOAD / ns_pub_file TOPIC FILE — as the network server, QoS 1
ns_pub() {
    mosquitto_pub -h 127.0.0.1 -p "$NS_PORT" -u "$NS_PUB_USER" -P "$NS_PUB_PW" -q 1 -t "$1" -m "$2" ||
        fail "mosquitto_pub to the network server's broker, $1" "rc 0" "rc $?"
}
ns_pub_file() {
    mosquitto_pub -h 127.0.0.1 -p "$NS_PORT" -u "$NS_PUB_USER" -P "$NS_PUB_PW" -q 1 -t "$1" -f "$2" ||
        fail "mosquitto_pub -f to the network server's broker, $1" "rc 0" "rc $?"
}

# ---------------------------------------------------------------------------------------------
# messages

ttn_topic() { echo "v3/app1@ttn/devices/$1/up"; }                       # ttn_topic DEVICE_ID
cs_topic() { echo "application/$CS_APP/device/$1/event/${2:-up}"; }     # cs_topic DEVEUI [EVENT]

# ttn_up DEVICE_ID DEV_EUI F_CNT DECODED_JSON|- EPOCH_MS [lorawan.py options] — publish one uplink
ttn_up() {
    ns_pub "$(ttn_topic "$1")" "$("$PY" "$LW" ttn "$@")"
}
# cs_up DEVEUI F_CNT OBJECT_JSON|- EPOCH_MS — on the main broker (the cs input has no mqtt:)
cs_up() {
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$(cs_topic "$1")" -m "$("$PY" "$LW" cs "$@")" ||
        fail "mosquitto_pub of a ChirpStack uplink" "rc 0" "rc $?"
}
main_pub() {    # main_pub TOPIC PAYLOAD — on the main broker, outside parkd's <in>/#
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$1" -m "$2" ||
        fail "mosquitto_pub to $1" "rc 0" "rc $?"
}

# ---------------------------------------------------------------------------------------------
# configuration and counters

# lw_config — lots P1 and P2 (bays, capacity LW_CAPACITY, default 10), the tts input on the NS broker and the cs input on the main
# connection, the metrics endpoint on METRICS_PORT; extra write_config overrides as arguments
lw_config() {
    [ -n "$METRICS_PORT" ] || METRICS_PORT=$(free_port)
    [ -f "$T/tts.key" ] || (umask 077 && printf '%s\n' "$NS_PW" >"$T/tts.key")
    write_config "  - {id: P1, capacity: ${LW_CAPACITY:-10}, source: bays}
  - {id: P2, capacity: ${LW_CAPACITY:-10}, source: bays}" "$@"
    cat >>"$CFG" <<EOF
metrics:
  listen: "127.0.0.1:$METRICS_PORT"
inputs:
  - name: tts
    format: ttn-v3
    mqtt: {host: 127.0.0.1, port: $NS_PORT, username: "$NS_USER", password_file: "$T/tts.key", client_id: parkd-tts-$$, clean_session: false}
    occupied: {field: decoded_payload.occupied}
    devices_file: $TTS_DEV
  - name: cs
    format: chirpstack-v4
    occupied: {field: status, occupied: ["occupied", 1], free: ["free", 0]}
    devices_file: $CS_DEV
EOF
}

# lw_wait_subscribed — until both brokers saw parkd's subscriptions of the inputs (messages sent
# before would find no session on a first start)
lw_wait_subscribed() {
    if ! wait_for "grep -qF 'v3/+/devices/+/up' '$NS_LOG' && echo yes" yes 10; then
        fail "parkd subscribes v3/+/devices/+/up on the network server's broker" "a SUBSCRIBE" "$(tail -n 3 "$NS_LOG" | tr '\n' '|')"
        exit 1
    fi
    # the main broker logs everything (lib.sh: log_type all)
    if ! wait_for "grep -qF 'application/+/device/+/event/up' '$MAIN_MOSQ_LOG' && echo yes" yes 10; then
        fail "parkd subscribes application/+/device/+/event/up on the main broker" "a SUBSCRIBE" "nothing"
        exit 1
    fi
}

# ic INPUT RESULT — the parkd:daemon counter input:INPUT:RESULT (0 when missing)
ic() { _v=$(dget "input:$1:$2"); echo "${_v:-0}"; }

# isnap — remembers every input counter, for idelta
isnap() { rget hgetall "${RP}daemon" >"$T/isnap" 2>/dev/null; }
# idelta INPUT RESULT — current value minus the value at the last isnap
idelta() {
    _old=$(awk -v k="input:$1:$2" 'NR % 2 == 1 && $0 == k { getline v; print v; exit }' "$T/isnap")
    echo $(( $(ic "$1" "$2") - ${_old:-0} ))
}

# wait_uplinks INPUT N [timeout=10] — until input:INPUT:uplinks grew by N since the last isnap
wait_uplinks() {
    if ! wait_for "idelta $1 uplinks" "$2" "${3:-10}"; then
        fail "parkd counts $2 more uplinks of input $1" "$2" "$GOT"
        return 1
    fi
    return 0
}

# check_idelta "description" INPUT RESULT EXPECTED — waits ≤ 3 s (the hash is refreshed each second)
check_idelta() {
    check_eventually "$1" "idelta $2 $3" "$4" 3
}

# metric KEY... — samples of GET /metrics (one request), each KEY as name{labels sorted by
# name}, e.g. 'parkd_uplink_results_total{input="tts",result="applied"}'; one value a line,
# "<missing>" when absent
metric() {
    curl -s --max-time 3 "http://127.0.0.1:$METRICS_PORT/metrics" | "$PY" -c '
import re, sys
sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
label = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"([^\"]*)\"")
got = {}
for line in sys.stdin:
    m = sample.match(line.rstrip("\n"))
    if not m:
        continue
    labels = dict(label.findall(m.group(2) or ""))
    key = m.group(1) + ("{" + ",".join("%s=\"%s\"" % (k, labels[k]) for k in sorted(labels)) + "}" if labels else "")
    f = float(m.group(3))
    got[key] = "%d" % f if f == int(f) else m.group(3)
for k in sys.argv[1:]:
    print(got.get(k, "<missing>"))' "$@"
}

# lot_state LOT BAY... — "occupied/free b1=S b2=S ..." from Redis
lot_state() {
    _l=$1; shift
    _s="$(hget "$_l" occupied)/$(hget "$_l" free)"
    for _b in "$@"; do _s="$_s $_b=$(bayget "$_l" "$_b")"; done
    echo "$_s"
}
