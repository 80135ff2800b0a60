#!/bin/sh
# t72-mqtt-password: MQTT user name and password, the password read from mqtt.password_file
# (issue 7). The broker has a mosquitto_passwd file and no anonymous access: parkd connects with
# the right password and is refused, with a clear log line, with a wrong one or none; the
# password is never in a log, parkd's command line or its environment.
. "$(dirname "$0")/sec-lib.sh"

GOOD="pw-good-$$-Zq8vK2"
BAD="pw-bad-$$-Jm4xT7"
(umask 077 && : >"$T/mosquitto.passwd")
mosquitto_passwd -b "$T/mosquitto.passwd" parkd "$GOOD" || { fail "mosquitto_passwd" "rc 0" "rc $?"; exit 1; }
mosquitto_passwd -b "$T/mosquitto.passwd" tester tester-pw || { fail "mosquitto_passwd" "rc 0" "rc $?"; exit 1; }
sec_start_redis
sec_start_mosquitto "allow_anonymous false
password_file $T/mosquitto.passwd"
MQTT_CLI_OPTS="-u tester -P tester-pw"
LOTS="  - {id: C1, capacity: 100, source: count}"

# --- the right password ----------------------------------------------------------------------
PWF=$(sec_secret_file mqtt.pw "$GOOD")
write_config "$LOTS" "mqtt.username=parkd" "mqtt.password_file=$PWF"
parkd_start
pass "right password: parkd becomes ready ($OUT/status online)"
check_count_reaches_redis "right password" C1
check_eventually "right password: availability published" "avail_field C1 occupied" 7
check_ok "right password: the broker saw user parkd" grep -q "u'parkd'" "$T/mosquitto.log"
check_no_secret "right password: the password is in no log, argv or environment" "$GOOD"
parkd_stop_checked "right password"

# --- a wrong password ------------------------------------------------------------------------
PWF=$(sec_secret_file mqtt.pw "$BAD")
write_config "$LOTS" "mqtt.username=parkd" "mqtt.password_file=$PWF"
parkd_start_refused "wrong password" "mqtt: broker refused the connection: .*(not authori[sz]ed|bad user name or password)"
check_no_secret "wrong password: the wrong password is in no log, argv or environment" "$BAD"
check_no_secret "wrong password: the right password is in no log either" "$GOOD"
parkd_stop_checked "wrong password"

# --- a user name but no password --------------------------------------------------------------
write_config "$LOTS" "mqtt.username=parkd"
parkd_start_refused "no password" "mqtt: broker refused the connection: .*(not authori[sz]ed|bad user name or password)"
parkd_stop_checked "no password"

# --- a password file parkd cannot read: a configuration error, without the content ----------
write_config "$LOTS" "mqtt.username=parkd" "mqtt.password_file=$T/no-such.pw"
"$PARKD_BIN" -c "$CFG" >"$T/parkd.nofile.stdout" 2>"$T/parkd.nofile.log" &
_p=$!
_i=0
while kill -0 "$_p" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
if kill -0 "$_p" 2>/dev/null; then
    kill "$_p"; wait "$_p"
    fail "unreadable password file: parkd exits" "exit 78" "still running after 10 s"
else
    wait "$_p"
    check "unreadable password file: parkd exits 78 (EX_CONFIG)" 78 "$?"
fi
check_match "unreadable password file: the error names the file" ".*mqtt: .*$T/no-such\\.pw: No such file or directory.*" "$(tr '\n' ' ' <"$T/parkd.nofile.log")"

# --- --check: no secrets in its output ---------------------------------------------------------
PWF=$(sec_secret_file mqtt.pw "$GOOD")
write_config "$LOTS" "mqtt.username=parkd" "mqtt.password_file=$PWF"
"$PARKD_BIN" -c "$CFG" --check >"$T/check.out" 2>"$T/check.err"
check "--check with a password file: exit 0" 0 "$?"
check "--check with a password file: prints FILE: ok" "$CFG: ok" "$(cat "$T/check.out")"
check_no_secret "--check: the password is not in its output" "$GOOD"

finish
