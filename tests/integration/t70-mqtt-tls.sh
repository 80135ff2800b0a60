#!/bin/sh
# t70-mqtt-tls: MQTT over TLS with server-certificate verification (SPEC §6 mqtt.tls; issue 7).
# A CA made here signs the broker's certificate for 127.0.0.1/localhost: parkd connects with
# that CA, and refuses, with a clear log line, a broker whose certificate the CA did not sign.
. "$(dirname "$0")/sec-lib.sh"

sec_certs
sec_start_redis
sec_start_mosquitto "allow_anonymous true
cafile $PKI/ca.crt
certfile $PKI/server.crt
keyfile $PKI/server.key"
MQTT_CLI_OPTS="--cafile $PKI/ca.crt"
LOTS="  - {id: C1, capacity: 100, source: count}"

# --- the right CA ----------------------------------------------------------------------------
write_config "$LOTS" "mqtt.tls={ca_file: $PKI/ca.crt}"
parkd_start
pass "right CA: parkd becomes ready over TLS ($OUT/status online)"
check_count_reaches_redis "right CA" C1
check_eventually "right CA: availability published over TLS" "avail_field C1 occupied" 7
check_ok "right CA: log says connected" log_has "mqtt: connected to 127.0.0.1:$MQTT_PORT"
check "right CA: no TLS warnings" "" "$(grep -iE 'openssl|tls' "$PARKD_LOG")"
parkd_stop_checked "right CA"
check "right CA: offline published on shutdown" offline "$(retained "$OUT/status")"

# --- a CA that did not sign the broker's certificate -----------------------------------------
write_config "$LOTS" "mqtt.tls={ca_file: $PKI/evil-ca.crt}"
parkd_start_refused "wrong CA" 'mqtt: .*certificate verify failed'
check_ok "wrong CA: the connection failure names the broker" log_has "mqtt: cannot connect to 127.0.0.1:$MQTT_PORT"
parkd_stop_checked "wrong CA"

# --- no TLS at all against a TLS listener: no silent plaintext fallback ----------------------
write_config "$LOTS"
parkd_start_refused "plaintext to a TLS listener" "mqtt: cannot connect to 127.0.0.1:$MQTT_PORT: (closed by the broker|Connection reset by peer)"
parkd_stop_checked "plaintext to a TLS listener"
check "plaintext: the broker still says offline (parkd never got online)" offline "$(retained "$OUT/status")"

# --- a broker certificate for another host name: verification includes the host -----------
_sec_leaf otherhost ca mqtt.example.com "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:mqtt.example.com" >>"$T/openssl.log" 2>&1
sec_start_mosquitto "allow_anonymous true
cafile $PKI/ca.crt
certfile $PKI/otherhost.crt
keyfile $PKI/otherhost.key"
write_config "$LOTS" "mqtt.tls={ca_file: $PKI/ca.crt}"
parkd_start_refused "certificate for another host" 'mqtt: .*certificate verify failed'
parkd_stop_checked "certificate for another host"

# --- a CA file that does not exist: a configuration error at start --------------------------
write_config "$LOTS" "mqtt.tls={ca_file: $T/missing-ca.crt}"
"$PARKD_BIN" -c "$CFG" >"$T/parkd.missing.stdout" 2>"$T/parkd.missing.log" &
_p=$!
_i=0
while kill -0 "$_p" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
if kill -0 "$_p" 2>/dev/null; then
    kill "$_p"; wait "$_p"
    fail "missing CA file: parkd exits" "exit 78" "still running after 10 s"
else
    wait "$_p"
    check "missing CA file: parkd exits 78 (EX_CONFIG)" 78 "$?"
fi
check_match "missing CA file: the error names the key and the file" ".*mqtt: TLS: cannot read mqtt\.tls\.ca_file $T/missing-ca\.crt: No such file or directory.*" "$(tr '\n' ' ' <"$T/parkd.missing.log")"

finish
