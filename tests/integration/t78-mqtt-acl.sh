#!/bin/sh
# t78-mqtt-acl: the broker ACL of docs/security.md, on a real mosquitto with a password file and
# an acl_file, in the default topic layout (input parking/#, output parking/out/#). parkd works
# with read on the input prefix and write on the output prefix; a gateway limited to its own lot
# reaches Redis but can spoof neither parkd's outputs nor another lot; a read ACL narrower than
# the input prefix silently starves the lots outside it.
IN=parking
OUT=parking/out
. "$(dirname "$0")/sec-lib.sh"

PW="acl-mqtt-$$-Rk9dW2"
(umask 077 && : >"$T/mosquitto.passwd")
for _u in parkd gw-c1 dashboard; do
    mosquitto_passwd -b "$T/mosquitto.passwd" "$_u" "$PW-$_u" || { fail "mosquitto_passwd" "rc 0" "rc $?"; exit 1; }
done
write_acl() {   # write_acl PARKD_READ_TOPIC
    cat >"$T/mosquitto.acl" <<ACL
# parkd: reads the sensors, writes its outputs (and its will, $OUT/status)
user parkd
topic read $1
topic write $OUT/#

# a gateway: writes the input of its own lot only
user gw-c1
topic write $IN/C1/#

# dashboards and apps: read the outputs only
user dashboard
topic read $OUT/#
ACL
}
write_acl "$IN/#"
sec_start_redis
sec_start_mosquitto "allow_anonymous false
password_file $T/mosquitto.passwd
acl_file $T/mosquitto.acl"
LOTS="  - {id: C1, capacity: 100, source: count}
  - {id: C2, capacity: 100, source: count}"
PWF=$(sec_secret_file mqtt.pw "$PW-parkd")

# the test's own clients: the gateway publishes, the dashboard reads
MQTT_CLI_OPTS="-u dashboard -P $PW-dashboard"
gw_pub() { mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -u gw-c1 -P "$PW-gw-c1" -q 1 -t "$1" -m "$2"; }

write_config "$LOTS" "mqtt.username=parkd" "mqtt.password_file=$PWF"
parkd_start
pass "ACL: parkd becomes ready with read $IN/# and write $OUT/# ($OUT/status online)"
gw_pub "$IN/C1/count" "{\"occupied\": 12, \"ts\": $(now)}"
check_eventually "ACL: the gateway's count for its lot reaches Redis" "hget C1 occupied" 12 10
check_eventually "ACL: the dashboard reads parkd's availability" "avail_field C1 occupied" 12

gw_pub "$IN/C2/count" "{\"occupied\": 99, \"ts\": $(now)}"
gw_pub "$OUT/C1/availability" '{"lot":"C1","free":100,"status":"open"}'
gw_pub "$IN/C1/count" "{\"occupied\": 13, \"ts\": $(now)}"
check_eventually "ACL: later input of the gateway's lot still arrives" "hget C1 occupied" 13 10
check "ACL: the gateway cannot write another lot's input" "" "$(hget C2 occupied)"
check_eventually "ACL: the gateway cannot spoof parkd's retained output" "avail_field C1 occupied" 13
check "ACL: parkd's log has no MQTT errors" "" "$(grep -E 'mqtt: .*(refused|denied|cannot)' "$PARKD_LOG")"
parkd_stop_checked "ACL"
check "ACL: parkd's will/offline goes through its write permission" offline "$(retained "$OUT/status")"

# --- a read ACL narrower than the input prefix: mosquitto grants the wildcard subscription and
# filters each message, so parkd cannot see the mistake; lots outside it simply get no input
# (docs/security.md says so). The gateway here may write both lots.
write_acl "$IN/C1/#"
sed -i "s|^topic write $IN/C1/#|topic write $IN/+/count|" "$T/mosquitto.acl"
kill -HUP "$MOSQ_PID"
sleep 0.5
write_config "$LOTS" "mqtt.username=parkd" "mqtt.password_file=$PWF"
parkd_start
pass "narrow read ACL: parkd still becomes ready (the broker grants $IN/#)"
gw_pub "$IN/C2/count" "{\"occupied\": 21, \"ts\": $(now)}"
gw_pub "$IN/C1/count" "{\"occupied\": 22, \"ts\": $(now)}"
check_eventually "narrow read ACL: input inside it arrives" "hget C1 occupied" 22 10
check "narrow read ACL: input outside it never reaches parkd" "" "$(hget C2 occupied)"
parkd_stop_checked "narrow read ACL"

finish
