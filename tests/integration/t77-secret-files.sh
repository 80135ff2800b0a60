#!/bin/sh
# t77-secret-files: `parkd --check` warns about secret files others can read or parkd cannot,
# and never shows a secret; the same warnings are logged at start-up (issue 7, SPEC §6 "Secrets
# are read from *_file paths, never written to logs").
. "$(dirname "$0")/sec-lib.sh"

SECRET="file-secret-$$-Nb6yG0"
LOTS="  - {id: C1, capacity: 100, source: count}"
MQTT_PORT=1883 REDIS_PORT=6379     # --check connects to nothing

# check_run NAME [config overrides...] — writes the config and runs --check; output in
# $T/check.NAME.out / .err, exit status in CHECK_RC
check_run() {
    _n=$1; shift
    write_config "$LOTS" "$@"
    "$PARKD_BIN" -c "$CFG" --check >"$T/check.$_n.out" 2>"$T/check.$_n.err"
    CHECK_RC=$?
}
warnings() { cat "$T/check.$1.err"; }

# --- a secret file readable by group and others ------------------------------------------------
PW=$(sec_secret_file mqtt.pw "$SECRET")
chmod 644 "$PW"
check_run world "mqtt.username=parkd" "mqtt.password_file=$PW"
check "0644 password file: --check still exits 0" 0 "$CHECK_RC"
check "0644 password file: --check still prints FILE: ok" "$CFG: ok" "$(cat "$T/check.world.out")"
check_match "0644 password file: a warning naming the key, the file and the mode" \
    "$CFG: warning: mqtt\\.password_file \"$PW\" is readable by group and others \\(mode 0644\\).*" "$(warnings world)"

chmod 640 "$PW"
check_run group "mqtt.username=parkd" "mqtt.password_file=$PW"
check_match "0640 password file: warned as group-readable" ".*mqtt\\.password_file .* is readable by its group \\(mode 0640\\).*" "$(warnings group)"

RPW=$(sec_secret_file redis.pw "$SECRET")
chmod 604 "$RPW"
chmod 600 "$PW"
check_run other "redis.password_file=$RPW"
check_match "0604 redis password file: warned as readable by others" ".*redis\\.password_file .* is readable by others \\(mode 0604\\).*" "$(warnings other)"

# --- private files: no warning -----------------------------------------------------------------
chmod 600 "$RPW"
check_run private "mqtt.username=parkd" "mqtt.password_file=$PW" "redis.password_file=$RPW"
check "0600 secret files: no warning" "" "$(warnings private)"
chmod 400 "$RPW"
check_run readonly "redis.password_file=$RPW"
check "0400 secret file: no warning" "" "$(warnings readonly)"

# --- TLS key (a secret) and certificate/CA (readable is enough) ------------------------------
sec_certs
chmod 644 "$PKI/client.key"
check_run tls "mqtt.tls={ca_file: $PKI/ca.crt, cert_file: $PKI/client.crt, key_file: $PKI/client.key}"
check_match "0644 TLS key: warned" ".*mqtt\\.tls\\.key_file .* is readable by group and others.*" "$(warnings tls)"
check "a 0644 CA file and certificate are not warned about" "" "$(warnings tls | grep -E 'ca_file|cert_file')"
chmod 600 "$PKI/client.key"

# --- missing, empty, not a file --------------------------------------------------------------------
: >"$T/empty.pw"
chmod 600 "$T/empty.pw"
check_run missing "mqtt.username=parkd" "mqtt.password_file=$T/missing.pw" "redis.password_file=$T/empty.pw" \
    "mqtt.tls={ca_file: $T}"
check "missing/empty files: --check still exits 0 (warnings, not errors)" 0 "$CHECK_RC"
check_match "missing password file: warned as unreadable" ".*mqtt\\.password_file \"$T/missing\\.pw\" cannot be read: No such file or directory.*" "$(warnings missing)"
check_match "empty password file: warned" ".*redis\\.password_file \"$T/empty\\.pw\" is empty.*" "$(warnings missing)"
check_match "a directory as CA file: warned" ".*mqtt\\.tls\\.ca_file \"$T\" is not a regular file.*" "$(warnings missing)"
if [ "$(id -u)" != 0 ]; then
    chmod 000 "$RPW"
    check_run unreadable "redis.password_file=$RPW"
    check_match "unreadable password file: warned" ".*redis\\.password_file .* cannot be read: Permission denied.*" "$(warnings unreadable)"
    chmod 600 "$RPW"
fi

# --- a secret written into the config itself is refused, and not echoed -------------------------
check_run inline "mqtt.username=parkd" "mqtt.password=$SECRET" "redis.password=\"$SECRET\""
check "a password in the config itself: --check exits 78" 78 "$CHECK_RC"
check_match "a password in the config itself: unknown key mqtt.password" ".*unknown key \"password\" in mqtt.*" "$(warnings inline)"
check_match "a password in the config itself: unknown key redis.password" ".*unknown key \"password\" in redis.*" "$(warnings inline)"

# --- no secret anywhere ------------------------------------------------------------------------
check_no_secret "no --check output holds the secret" "$SECRET"

# --- the same warnings at start-up, and the secret not in the process's argv ---------------------
sec_start_redis
sec_start_mosquitto "allow_anonymous true"
chmod 644 "$RPW"
(umask 022 && printf '%s\n' "$SECRET" >"$T/redis-open.pw")
rget config set requirepass "$SECRET" >/dev/null
REDIS_AUTH=$SECRET
write_config "$LOTS" "redis.password_file=$T/redis-open.pw"
parkd_start
check_ok "start-up logs the warning about a 0644 password file" \
    log_has "warning: .*redis\\.password_file \"$T/redis-open\\.pw\" is readable by group and others"
check "parkd's command line is just its options" "$PARKD_BIN -c $CFG" "$(tr '\0' ' ' <"/proc/$PARKD_PID/cmdline" | sed 's/ $//')"
check_no_secret "running parkd: the secret is in no log, argv or environment" "$SECRET"
parkd_stop_checked "warned start-up"

finish
