#!/bin/sh
# t60-notify: the sd_notify protocol (SPEC §7) without systemd: a datagram socket as
# NOTIFY_SOCKET records what parkd sends. READY=1 only once Redis state is restored and the input
# subscription is made; STATUS= lines; WATCHDOG=1 every WATCHDOG_USEC/2 (and not when
# WATCHDOG_PID names another process); RELOADING=1 then READY=1 around SIGHUP, valid or not;
# STOPPING=1 on SIGTERM.
. "$(dirname "$0")/lib.sh"

# --- the receiver: one line per field, "UNIXTIME FIELD"; runs $ON_READY once on the first READY=1
cat >"$T/notify.py" <<'EOF'
import os, socket, subprocess, sys, time
path, out = sys.argv[1], sys.argv[2]
on_ready = os.environ.get("ON_READY")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        fields = [x for x in s.recv(65536).decode("utf-8", "replace").split("\n") if x]
        t = time.time()
        if on_ready and "READY=1" in fields:
            subprocess.run(on_ready, shell=True)
            on_ready = None
        for x in fields:
            f.write("%.3f %s\n" % (t, x))
EOF

NLOG=$T/notify.log
# notify_start — a fresh receiver on $T/notify.sock, log $NLOG emptied; exports NOTIFY_SOCKET
notify_start() {
    [ -n "${NOTIFY_PID:-}" ] && { kill "$NOTIFY_PID" 2>/dev/null; wait "$NOTIFY_PID" 2>/dev/null; }
    rm -f "$T/notify.sock"
    : >"$NLOG"
    "$PY" "$T/notify.py" "$T/notify.sock" "$NLOG" &
    NOTIFY_PID=$!
    SUB_PIDS="$SUB_PIDS $NOTIFY_PID"
    wait_for '[ -S "$T/notify.sock" ] && echo up' up 5 || fail "notify receiver listens" up "$GOT"
    NOTIFY_SOCKET=$T/notify.sock
    export NOTIFY_SOCKET
}
nlines() { wc -l <"$NLOG" | tr -d ' '; }
# fields FROM_LINE — the fields received after line FROM_LINE, without timestamps
fields() { tail -n +"$(($1 + 1))" "$NLOG" | cut -d' ' -f2-; }
# has_after FROM_LINE FIELD_REGEX — prints yes when such a field came after FROM_LINE
has_after() { fields "$1" | grep -Eq -- "$2" && echo yes || echo no; }

# parkd_spawn — starts parkd without waiting for readiness (lib's parkd_start waits for it)
parkd_spawn() {
    PARKD_RUNS=$((PARKD_RUNS + 1))
    PARKD_LOG=$T/parkd.$PARKD_RUNS.log
    LOGS="$LOGS $PARKD_LOG"
    "$PARKD_BIN" -c "$CFG" 2>"$PARKD_LOG" >/dev/null &
    PARKD_PID=$!
}

redis_down() { kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=; }
redis_up() {    # the same port again, so parkd's configuration still points at it
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
        --logfile "$T/redis.log" --daemonize no >/dev/null 2>&1 &
    REDIS_PID=$!
    wait_for "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping" PONG 5 || fail "redis-server restarts" PONG "$GOT"
}

LOTS="  - {id: G1, capacity: 100, source: gates}
  - {id: C1, capacity: 50, source: count}"
write_config "$LOTS" "mqtt.client_id=parkd-t60-$$-$PARKD_RUNS"
cp "$CFG" "$T/good.yaml"

# --- READY=1 waits for Redis: none while Redis is down, then once it is back -------------------
notify_start
redis_down
WATCHDOG_USEC=2000000
export WATCHDOG_USEC
parkd_spawn
sleep 2.5
check_ok "parkd runs while Redis is down" parkd_alive
check "no READY=1 while Redis is down" no "$(has_after 0 '^READY=1$')"
check_eventually "STATUS= says redis down" "has_after 0 '^STATUS=.*redis down'" yes 3
check "loop alive before READY: WATCHDOG=1 already sent" yes "$(has_after 0 '^WATCHDOG=1$')"
redis_up
check_eventually "READY=1 once Redis is back" "has_after 0 '^READY=1$'" yes 15
check "READY=1 sent once" 1 "$(fields 0 | grep -c '^READY=1$')"
check_eventually "status topic online" "retained $OUT/status 1" online 5
check_match "STATUS= line: lots, msg/s, redis and mqtt state" \
    'STATUS=2 lots, [0-9]+ msg/s, redis (up|down), mqtt (up|down)' "$(fields 0 | grep '^STATUS=' | tail -n 1)"
check_eventually "STATUS= becomes 'redis up, mqtt up'" \
    "fields 0 | grep '^STATUS=' | tail -n 1 | grep -o 'redis up, mqtt up'" "redis up, mqtt up" 4
ready_at=$(grep ' READY=1$' "$NLOG" | head -n 1 | cut -d' ' -f1)
restored_at=$(grep 'restored state of 2 lots' "$PARKD_LOG" | head -n 1 | cut -d' ' -f1)
check "the restore is logged before READY=1 is sent" yes "$("$PY" -c '
import sys, datetime
try:
    r = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%fZ")
    r = r.replace(tzinfo=datetime.timezone.utc).timestamp()
    print("yes" if r <= float(sys.argv[2]) + 0.001 else "no: restored at %.3f, READY at %s" % (r, sys.argv[2]))
except ValueError:
    print("no restore line or no READY=1 (restored: %r, READY: %r)" % (sys.argv[1], sys.argv[2]))' \
    "$restored_at" "$ready_at")"

# --- watchdog: every WATCHDOG_USEC / 2 = 1 s ----------------------------------------------------
n=$(nlines)
sleep 3.2
w=$(fields "$n" | grep -c '^WATCHDOG=1$')
if [ "$w" -ge 2 ] && [ "$w" -le 5 ]; then pass "WATCHDOG=1 about every second (WATCHDOG_USEC=2000000): $w in 3.2 s"
else fail "WATCHDOG=1 about every second (WATCHDOG_USEC=2000000)" "2..5 in 3.2 s" "$w"; fi

# --- reload: RELOADING=1 (with MONOTONIC_USEC) then READY=1 -------------------------------------
n=$(nlines)
kill -HUP "$PARKD_PID"
check_eventually "SIGHUP: RELOADING=1 then READY=1" \
    "fields $n | grep -E '^(RELOADING|READY)=1$' | tr '\n' ' '" "RELOADING=1 READY=1 " 5
check "RELOADING=1 comes with MONOTONIC_USEC=" yes "$(has_after "$n" '^MONOTONIC_USEC=[0-9]+$')"

n=$(nlines)
printf 'mqtt: {no_such_key: 1}\nlots: []\n' >"$CFG"
kill -HUP "$PARKD_PID"
check_eventually "SIGHUP with an invalid config: RELOADING=1 then READY=1 (old config kept)" \
    "fields $n | grep -E '^(RELOADING|READY)=1$' | tr '\n' ' '" "RELOADING=1 READY=1 " 5
check_ok "parkd still running after an invalid reload" parkd_alive
cp "$T/good.yaml" "$CFG"

# --- input, then STOPPING=1 on SIGTERM ----------------------------------------------------------
for i in 1 2 3 4 5; do pub "$IN/G1/gate/E" in; done
check_eventually "gate input applied" "hget G1 occupied" 5
n=$(nlines)
parkd_stop TERM
check "SIGTERM: exit status 0" 0 "$PARKD_RC"
check "SIGTERM: STOPPING=1 sent" yes "$(has_after "$n" '^STOPPING=1$')"
check "no READY=1 after STOPPING=1" no "$(fields "$(grep -n ' STOPPING=1$' "$NLOG" | tail -n 1 | cut -d: -f1)" | grep -q '^READY=1$' && echo yes || echo no)"

# --- READY=1 means restored and subscribed: input sent the instant READY=1 arrives is applied on
# top of the restored state (5 + 1). A new client id, so that no broker session from the first run
# holds a subscription already. WATCHDOG_PID naming another process: no WATCHDOG=1. -------------
write_config "$LOTS" "mqtt.client_id=parkd-t60-$$-$PARKD_RUNS"
# ... and the parkd:daemon hash is this process's already (not only after the first tick)
ON_READY="redis-cli -h 127.0.0.1 -p $REDIS_PORT hmget ${RP}daemon pid version >$T/daemon-at-ready; mosquitto_pub -h 127.0.0.1 -p $MQTT_PORT -q 1 -t $IN/G1/gate/E -m in"
export ON_READY
notify_start
unset ON_READY
WATCHDOG_PID=1
export WATCHDOG_PID
parkd_start
check_eventually "input published on READY=1 is applied on the restored state (5 + 1)" "hget G1 occupied" 6 5
check "at READY=1, parkd:daemon already holds this run's pid and version" \
    "$PARKD_PID $("$PARKD_BIN" --version | awk '{ print $NF }')" "$(tr '\n' ' ' <"$T/daemon-at-ready" | sed 's/ $//')"
sleep 1.5
check "WATCHDOG_PID of another process: no WATCHDOG=1" no "$(has_after 0 '^WATCHDOG=1$')"
parkd_stop TERM
check "second run: exit status 0" 0 "$PARKD_RC"

# --- WATCHDOG_PID = parkd's own pid: the watchdog is on -----------------------------------------
cat >"$T/wrap.sh" <<EOF
#!/bin/sh
WATCHDOG_PID=\$\$ exec "$PARKD_BIN" "\$@"
EOF
chmod +x "$T/wrap.sh"
unset WATCHDOG_PID
notify_start
real_bin=$PARKD_BIN
PARKD_BIN=$T/wrap.sh
parkd_start
PARKD_BIN=$real_bin
check_eventually "WATCHDOG_PID = parkd's pid: WATCHDOG=1 sent" "has_after 0 '^WATCHDOG=1$'" yes 3
parkd_stop TERM

# --- without WATCHDOG_USEC: no WATCHDOG=1 ---------------------------------------------------------
unset WATCHDOG_USEC
notify_start
parkd_start
sleep 1.5
check "no WATCHDOG_USEC: no WATCHDOG=1" no "$(has_after 0 '^WATCHDOG=1$')"
check "READY=1 without a watchdog too" yes "$(has_after 0 '^READY=1$')"
parkd_stop TERM
check "STOPPING=1 on the last stop too" yes "$(has_after 0 '^STOPPING=1$')"
finish
