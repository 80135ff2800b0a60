#!/bin/sh
# t79-mqtt-reconnect: the broker goes away under a connected, authenticated parkd and comes back
# (issue 7). Regression test for a crash: a read error closed the poll handle and the same turn
# closed it again (libuv: "uv_close: Assertion `!uv__is_closing(handle)' failed"), on every
# broker-side close — restart, refused CONNECT, TLS alert. parkd must log the loss, keep running,
# reconnect with its password (kept by libmosquitto, not re-read) and take input again.
. "$(dirname "$0")/sec-lib.sh"

PW="rc-pw-$$-Lz4hV7"
(umask 077 && : >"$T/mosquitto.passwd")
mosquitto_passwd -b "$T/mosquitto.passwd" parkd "$PW" || { fail "mosquitto_passwd" "rc 0" "rc $?"; exit 1; }
mosquitto_passwd -b "$T/mosquitto.passwd" tester tester-pw || { fail "mosquitto_passwd" "rc 0" "rc $?"; exit 1; }
sec_start_redis
sec_start_mosquitto "allow_anonymous false
password_file $T/mosquitto.passwd"
MQTT_CLI_OPTS="-u tester -P tester-pw"
PWF=$(sec_secret_file mqtt.pw "$PW")
write_config "  - {id: C1, capacity: 100, source: count}" "mqtt.username=parkd" "mqtt.password_file=$PWF"
parkd_start
check_count_reaches_redis "before the restart" C1

# --- the broker goes away: parkd survives and retries -----------------------------------------------
sec_stop_mosquitto
check_log_eventually "broker gone: the loss is logged" "mqtt: connection lost"
check_log_eventually "broker gone: reconnect attempts are logged with the reason" \
    "mqtt: cannot connect to 127.0.0.1:$MQTT_PORT: Connection refused"
sleep 1
check_ok "broker gone: parkd keeps running" parkd_alive

# --- the broker comes back on the same port ------------------------------------------------------
mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.stderr" 2>&1 &
MOSQ_PID=$!
check_eventually "broker back: parkd reconnects and says online again" "retained $OUT/status 1" online 40
SENT=0
IN0=$(dget messages_in)
pub "$IN/C1/count" "{\"occupied\": 33, \"ts\": $(now)}"
check_eventually "broker back: input reaches Redis again" "hget C1 occupied" 33 10
check "the log shows no assertion or crash" "" "$(grep -iE 'assert|abort' "$PARKD_LOG")"
check_no_secret "the password is in no log after the reconnects" "$PW"
parkd_stop_checked "after the broker restart"

finish
