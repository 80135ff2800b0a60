#!/bin/sh
# t17-odd-files: a FIFO, a directory or a device where parkd expects a file (the configuration,
# a password file) is refused at once instead of blocking (issue "Hold under every fault", item
# 6). Opening a FIFO for reading blocks until some writer comes: at start that hung `--check`,
# on SIGHUP it stopped the event loop (no input applied, SIGTERM ignored).
. "$(dirname "$0")/lib.sh"

LOTS="  - {id: A1, capacity: 100, source: count}"

# run_timed SECS ARGS... — runs parkd with ARGS under a SECS timeout; exit status in RC (124 on
# timeout), stdout+stderr in OUTPUT, the time taken in ELAPSED_MS
run_timed() {
    _to=$1; shift
    _t0=$(now_ms)
    timeout -k 1 "$_to" "$PARKD_BIN" "$@" >"$T/run.out" 2>&1
    RC=$?
    ELAPSED_MS=$(($(now_ms) - _t0))
    OUTPUT=$(cat "$T/run.out")
}

# --- a FIFO as the configuration: start and --check ------------------------------------------
mkfifo "$T/fifo.yaml"
run_timed 10 -c "$T/fifo.yaml"
check "FIFO config: start exits 78" 78 "$RC"
check_match "FIFO config: start names the file and what it is" \
    ".*$T/fifo\\.yaml: not a regular file \\(a FIFO\\).*" "$(_flat "$OUTPUT")"

run_timed 10 -c "$T/fifo.yaml" --check
check "FIFO config: --check exits 78" 78 "$RC"
check "FIFO config: --check prints the error" "$T/fifo.yaml: not a regular file (a FIFO)" "$OUTPUT"
check_ok "FIFO config: --check answers within 2 s (took ${ELAPSED_MS} ms)" test "$ELAPSED_MS" -lt 2000

# --- a directory and a character device ------------------------------------------------------
mkdir "$T/dir.yaml"
run_timed 10 -c "$T/dir.yaml" --check
check "directory config: --check exits 78" 78 "$RC"
check "directory config: --check says so" "$T/dir.yaml: not a regular file (a directory)" "$OUTPUT"
run_timed 10 -c /dev/null --check
check "/dev/null config: --check exits 78" 78 "$RC"
check "/dev/null config: --check says so" "/dev/null: not a regular file (a character device)" "$OUTPUT"
ln -s /dev/zero "$T/zero.yaml"
run_timed 10 -c "$T/zero.yaml" --check
check "a symlink to /dev/zero: --check exits 78 at once" 78 "$RC"
check "a symlink to /dev/zero: --check says what it points to" \
    "$T/zero.yaml: not a regular file (a character device)" "$OUTPUT"

# --- SIGHUP with the configuration replaced by a FIFO -----------------------------------------
write_config "$LOTS"
parkd_start
pub "$IN/A1/count" 10
check_eventually "before the reload: input applied" "hget A1 occupied" 10
cp "$CFG" "$T/good.yaml"
rm "$CFG"
mkfifo "$CFG"
kill -HUP "$PARKD_PID"
check_eventually "SIGHUP to a FIFO: the error is logged" \
    "grep -c 'reload: configuration rejected' '$PARKD_LOG'" 1
check "SIGHUP to a FIFO: the log names the file and what it is" yes \
    "$(grep -Fq "$CFG: not a regular file (a FIFO)" "$PARKD_LOG" && echo yes)"
check_ok "SIGHUP to a FIFO: parkd keeps running" parkd_alive
pub "$IN/A1/count" 20
check_eventually "SIGHUP to a FIFO: input is still applied" "hget A1 occupied" 20
check "SIGHUP to a FIFO: the old configuration is kept (capacity)" 100 "$(hget A1 capacity)"
check_eventually "SIGHUP to a FIFO: still published" "avail_field A1 occupied" 20

# a directory in its place, then the good file back: that reload applies
rm "$CFG"
mkdir "$CFG"
kill -HUP "$PARKD_PID"
check_eventually "SIGHUP to a directory: the error is logged" \
    "grep -c '$CFG: not a regular file (a directory)' '$PARKD_LOG'" 1
rmdir "$CFG"
sed 's/capacity: 100/capacity: 80/' "$T/good.yaml" >"$CFG"
kill -HUP "$PARKD_PID"
check_eventually "a good configuration after the refused ones: applies" "hget A1 capacity" 80

rm "$CFG"
mkfifo "$CFG"
kill -HUP "$PARKD_PID"
check_eventually "a second SIGHUP to a FIFO: logged too" \
    "grep -c '$CFG: not a regular file (a FIFO)' '$PARKD_LOG'" 2
_t0=$(now_ms)
parkd_stop TERM
_el=$(($(now_ms) - _t0))
check "SIGTERM after SIGHUP to a FIFO: exit 0" 0 "$PARKD_RC"
check_ok "SIGTERM after SIGHUP to a FIFO: exits within 5 s (took ${_el} ms)" test "$_el" -lt 5000
rm "$CFG"

# --- a FIFO as a password file ---------------------------------------------------------------
# --check warns (it reads nothing), and says what the file is
mkfifo "$T/pw.fifo"
write_config "$LOTS" "mqtt.username=parkd" "mqtt.password_file=$T/pw.fifo" \
    "redis.password_file=$T/pw.fifo"
run_timed 10 -c "$CFG" --check
check "FIFO password files: --check exits 0 (warnings)" 0 "$RC"
check "FIFO password files: --check warns about both, naming the kind" 2 \
    "$(printf '%s\n' "$OUTPUT" | grep -c 'password_file "'"$T"'/pw\.fifo" is not a regular file (a FIFO)')"
check_ok "FIFO password files: --check answers within 2 s (took ${ELAPSED_MS} ms)" test "$ELAPSED_MS" -lt 2000

# mqtt.password_file: read when the client is made, a configuration error (78), promptly
run_timed 10 -c "$CFG"
check "FIFO mqtt.password_file: start exits 78 without blocking" 78 "$RC"
check_ok "FIFO mqtt.password_file: the error names the file" grep -Fq "mqtt: $T/pw.fifo: " "$T/run.out"

# mqtt.tls.ca_file: libmosquitto fopen()s it on the loop; parkd checks it first
write_config "$LOTS" "mqtt.tls={ca_file: $T/pw.fifo}"
run_timed 10 -c "$CFG"
check "FIFO mqtt.tls.ca_file: start exits 78 without blocking" 78 "$RC"
check_ok "FIFO mqtt.tls.ca_file: the error names the key and the file" \
    grep -Fq "mqtt: TLS: cannot read mqtt.tls.ca_file $T/pw.fifo" "$T/run.out"

# redis.password_file: read on the loop at each connect; logged, and parkd goes on (this Redis
# wants no password), so it does not block the loop
write_config "$LOTS" "redis.password_file=$T/pw.fifo"
parkd_start
check_ok "FIFO redis.password_file: the error is logged" \
    grep -q "redis: cannot read password file $T/pw.fifo" "$PARKD_LOG"
pub "$IN/A1/count" 30
check_eventually "FIFO redis.password_file: input applied" "hget A1 occupied" 30
_t0=$(now_ms)
parkd_stop TERM
_el=$(($(now_ms) - _t0))
check "FIFO redis.password_file: SIGTERM exits 0" 0 "$PARKD_RC"
check_ok "FIFO redis.password_file: exits within 5 s (took ${_el} ms)" test "$_el" -lt 5000

finish
