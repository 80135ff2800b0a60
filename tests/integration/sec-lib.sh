# sec-lib.sh — helpers for the security tests (t70–t79). POSIX sh.
#
# Source it instead of lib.sh: it sources lib.sh with NO_SERVERS=1 (so lib.sh starts nothing),
# then offers servers with custom configurations — mosquitto with TLS or a password file, and
# redis-server with requirepass, ACL users or a Unix socket — plus certificates made with openssl
# in the test's temp dir. lib.sh's client helpers (pub, retained, rget and everything built on
# them: parkd_start, settle, dget, …) are redefined to pass the options these servers need:
#
#   MQTT_CLI_OPTS    extra mosquitto_pub/mosquitto_sub options (--cafile, --cert/--key, -u/-P)
#   REDIS_CLI_OPTS   how redis-cli reaches the server (default "-h 127.0.0.1 -p $REDIS_PORT")
#   REDIS_AUTH       the password redis-cli uses (for user REDIS_USER when set): handed to
#                    redis-cli alone through REDISCLI_AUTH, never exported, so that parkd's
#                    environment holds no secret and check_no_secret can look there
#
# Everything started here is stopped by lib.sh's cleanup trap (MOSQ_PID, REDIS_PID).

NO_SERVERS=1
. "$(dirname "$0")/lib.sh"

MQTT_CLI_OPTS=
REDIS_CLI_OPTS=
REDIS_AUTH=
REDIS_USER=
unset REDISCLI_AUTH

for _tool in mosquitto mosquitto_pub mosquitto_sub mosquitto_passwd redis-server redis-cli openssl; do
    command -v "$_tool" >/dev/null 2>&1 || { echo "FAIL: $_tool is installed (expected it on PATH, got nothing)"; exit 1; }
done

# ---------------------------------------------------------------------------------------------
# clients (redefining lib.sh's)

# shellcheck disable=SC2086  # the option lists are word-split on purpose
pub() {
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" $MQTT_CLI_OPTS -q 1 -t "$1" -m "$2" ||
        fail "mosquitto_pub to $1" "rc 0" "rc $?"
    _count_sent "$1"
}
# shellcheck disable=SC2086
retained() {
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" $MQTT_CLI_OPTS -C 1 -W "${2:-5}" -t "$1" 2>/dev/null
}
# shellcheck disable=SC2086
rget() {
    if [ -n "$REDIS_AUTH" ]; then
        REDISCLI_AUTH=$REDIS_AUTH redis-cli ${REDIS_CLI_OPTS:--h 127.0.0.1 -p $REDIS_PORT} \
            ${REDIS_USER:+--user "$REDIS_USER"} --no-auth-warning "$@"
    else
        redis-cli ${REDIS_CLI_OPTS:--h 127.0.0.1 -p $REDIS_PORT} "$@"
    fi
}

# ---------------------------------------------------------------------------------------------
# certificates

# sec_certs — a CA and, signed by it, a server certificate for 127.0.0.1/localhost and a client
# certificate; and a second, unrelated CA ("evil") with a client certificate of its own. All in
# $PKI; keys mode 0600.
PKI=$T/pki
_sec_ca() {     # _sec_ca NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=$2" -keyout "$PKI/$1.key" -out "$PKI/$1.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
_sec_leaf() {   # _sec_leaf NAME CA CN EXTENSIONS
    printf '%s\n' "$4" >"$PKI/$1.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$3" \
        -keyout "$PKI/$1.key" -out "$PKI/$1.csr" &&
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.crt" -CAkey "$PKI/$2.key" \
        -CAcreateserial -days 2 -extfile "$PKI/$1.ext" -out "$PKI/$1.crt"
}
sec_certs() {
    mkdir -p "$PKI"
    if ! {
        _sec_ca ca "parkd test CA" &&
        _sec_leaf server ca localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost" &&
        _sec_leaf client ca parkd "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth" &&
        _sec_ca evil-ca "evil CA" &&
        _sec_leaf evil-client evil-ca parkd "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
    } >"$T/openssl.log" 2>&1; then
        fail "openssl makes the test certificates" "rc 0" "$(tail -n 3 "$T/openssl.log")"
        exit 1
    fi
    chmod 600 "$PKI"/*.key
}

# ---------------------------------------------------------------------------------------------
# servers

_sec_port_open() {   # _sec_port_open PORT — a TCP connect to 127.0.0.1:PORT succeeds
    "$PY" -c 'import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

# sec_start_mosquitto "CONFIG LINES" — mosquitto with one listener on a free port of 127.0.0.1
# and the given lines after it (cafile/certfile/keyfile, require_certificate, password_file,
# allow_anonymous…). Ready once the port accepts connections. Sets MQTT_PORT and MOSQ_PID.
sec_start_mosquitto() {
    [ -n "$MOSQ_PID" ] && sec_stop_mosquitto
    _try=0
    while [ $_try -lt 3 ]; do
        MQTT_PORT=$(free_port)
        {
            echo "per_listener_settings false"
            echo "listener $MQTT_PORT 127.0.0.1"
            printf '%s\n' "$1"
            echo "persistence false"
            echo "max_queued_messages 10000"    # t76's floods outgrow the default 1000
            echo "log_dest file $T/mosquitto.log"
            echo "log_type all"
            [ "$(id -u)" = 0 ] && echo "user root"
        } >"$T/mosquitto.conf"
        mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.stderr" 2>&1 &
        MOSQ_PID=$!
        if wait_for "_sec_port_open $MQTT_PORT && echo up" up 5; then
            LOGS="$LOGS $T/mosquitto.log"
            return 0
        fi
        kill "$MOSQ_PID" 2>/dev/null
        wait "$MOSQ_PID" 2>/dev/null
        MOSQ_PID=
        _try=$((_try + 1))
    done
    fail "mosquitto starts" "a broker on port $MQTT_PORT" "$(cat "$T/mosquitto.stderr" "$T/mosquitto.log" 2>/dev/null | tail -n 5)"
    exit 1
}

sec_stop_mosquitto() {
    [ -n "$MOSQ_PID" ] || return 0
    kill "$MOSQ_PID" 2>/dev/null
    wait "$MOSQ_PID" 2>/dev/null
    MOSQ_PID=
}

# sec_start_redis [redis-server options...] — redis-server on a free port of 127.0.0.1 with the
# extra options (--requirepass, --aclfile, --unixsocket…). Ready once `rget ping` answers PONG,
# so set REDIS_AUTH / REDIS_CLI_OPTS first when the server needs them. Sets REDIS_PORT and
# REDIS_PID.
sec_start_redis() {
    _try=0
    while [ $_try -lt 3 ]; do
        REDIS_PORT=$(free_port)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
            --logfile "$T/redis.log" --daemonize no "$@" >/dev/null 2>&1 &
        REDIS_PID=$!
        if wait_for "rget ping" PONG 5; then
            return 0
        fi
        kill "$REDIS_PID" 2>/dev/null
        wait "$REDIS_PID" 2>/dev/null
        REDIS_PID=
        _try=$((_try + 1))
    done
    fail "redis-server starts" "PONG" "$GOT $(tail -n 3 "$T/redis.log" 2>/dev/null)"
    exit 1
}

# ---------------------------------------------------------------------------------------------
# secrets and refusals

# sec_secret_file NAME SECRET — writes SECRET (and a newline) to $T/NAME, mode 0600; prints the path
sec_secret_file() {
    (umask 077 && printf '%s\n' "$2" >"$T/$1")
    echo "$T/$1"
}

# check_no_secret "description" SECRET — SECRET appears in none of parkd's logs and stdouts, the
# --check outputs ($T/check.*), nor (while parkd runs) its command line and environment
check_no_secret() {
    _where=
    for _f in "$T"/parkd.*.log "$T"/parkd.*.stdout "$T"/check.*; do
        [ -f "$_f" ] || continue
        grep -qF -- "$2" "$_f" && _where="$_where $(basename "$_f")"
    done
    if parkd_alive; then
        tr '\0' ' ' <"/proc/$PARKD_PID/cmdline" | grep -qF -- "$2" && _where="$_where cmdline"
        tr '\0' '\n' <"/proc/$PARKD_PID/environ" 2>/dev/null | grep -qF -- "$2" && _where="$_where environ"
        ps -o args= -p "$PARKD_PID" | grep -qF -- "$2" && _where="$_where ps"
    fi
    check "$1" "nowhere" "${_where:-nowhere}"
}

# log_has REGEX — parkd's current log has a line matching the extended regex
log_has() { grep -Eq -- "$1" "$PARKD_LOG"; }

# check_log_eventually "description" REGEX [timeout_s=10]
check_log_eventually() {
    if wait_for "log_has '$(printf '%s' "$2" | sed "s/'/'\\\\''/g")' && echo yes" yes "${3:-10}"; then
        pass "$1"
    else
        fail "$1" "a log line matching /$2/" "$(tail -n 5 "$PARKD_LOG" | tr '\n' '|')"
    fi
}

# parkd_start_refused "what" REGEX — starts parkd on $CFG where the connection must be refused:
# checks that a log line matching REGEX appears, that parkd keeps running (it retries rather than
# exiting) and that it never reports ready. Leaves it stopped.
parkd_start_refused() {
    PARKD_RUNS=$((PARKD_RUNS + 1))
    PARKD_LOG=$T/parkd.$PARKD_RUNS.log
    LOGS="$LOGS $PARKD_LOG"
    "$PARKD_BIN" -c "$CFG" 2>"$PARKD_LOG" >"$T/parkd.$PARKD_RUNS.stdout" &
    PARKD_PID=$!
    check_log_eventually "$1: refused with a clear log line" "$2"
    check_ok "$1: parkd keeps running and retrying" parkd_alive
    check "$1: parkd never reports ready" "" "$(grep -E ' ready: [0-9]+ lots' "$PARKD_LOG")"
}

# parkd_stop_quiet — parkd_stop, then a check that it exited 0
parkd_stop_checked() {
    parkd_stop
    check "$1: parkd exits 0 on SIGTERM" 0 "$PARKD_RC"
}

# check_count_reaches_redis "what" LOT — one count message gets from MQTT to Redis
check_count_reaches_redis() {
    pub "$IN/$2/count" "{\"occupied\": 7, \"ts\": $(now)}"
    check_eventually "$1: a count message reaches Redis" "hget $2 occupied" 7 10
}

# ---------------------------------------------------------------------------------------------
# floods

# flood TOPIC_TEMPLATE N PAYLOAD — publishes N messages as fast as one plain-TCP MQTT 3.1.1
# connection allows (QoS 1, waiting for every PUBACK at the end), the topic being the template
# with each "%d" replaced by the message's number and "%r" by a random hex id; adds N to SENT.
flood() {
    "$PY" - "$MQTT_PORT" "$1" "$2" "$3" <<'PYEOF' || fail "flood of $2 messages on $1" "all acknowledged" "an error"
import os, socket, struct, sys

port, template, n, payload = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()

def remaining(length):
    out = b""
    while True:
        byte, length = length % 128, length // 128
        out += bytes([byte | (0x80 if length else 0)])
        if not length:
            return out

def utf8(s):
    return struct.pack("!H", len(s)) + s

def packet(kind, body):
    return bytes([kind]) + remaining(len(body)) + body

def read_packet(sock):
    head = sock.recv(1)
    if not head:
        raise SystemExit("connection closed")
    mult, length = 1, 0
    while True:
        b = sock.recv(1)[0]
        length += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return head[0], body

s = socket.create_connection(("127.0.0.1", port))
s.sendall(packet(0x10, utf8(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 30) +
                 utf8(("flood-%d" % os.getpid()).encode())))
kind, body = read_packet(s)
if kind != 0x20 or body[1] != 0:
    raise SystemExit("CONNACK refused")
out = bytearray()
for i in range(n):
    topic = template.replace("%d", str(i)).replace("%r", os.urandom(8).hex()).encode()
    out += packet(0x32, utf8(topic) + struct.pack("!H", i % 65535 + 1) + payload)
s.sendall(out)
acks = 0
while acks < n:
    kind, _ = read_packet(s)
    acks += (kind >> 4) == 4
s.sendall(bytes([0xE0, 0]))
s.close()
PYEOF
    SENT=$((SENT + $2))
}
