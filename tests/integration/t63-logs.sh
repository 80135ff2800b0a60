#!/bin/sh
# t63-logs: the log format (SPEC §7, issue 6). Without the journal every line starts with a UTC
# timestamp and the level; when stderr is the journal (JOURNAL_STREAM = its dev:ino) every line
# starts with a <N> syslog priority instead, and a JOURNAL_STREAM naming another file (inherited
# by a child) changes nothing. Rejected-input warnings are rate-limited per reason with a count of
# what was suppressed; untrusted topics are escaped; secrets never appear.
. "$(dirname "$0")/lib.sh"

TS_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (error|warning|info|debug): '
JR_RE='^<[3467]>'
SECRET=Zq9-secret-7Tx
printf '%s\n' "$SECRET" >"$T/mqtt.pass"
chmod 0600 "$T/mqtt.pass"
LOTS="  - {id: A, capacity: 100, source: count}"

# bad_lines FILE REGEX — lines of FILE that do not match REGEX (first 3), "" when all do
bad_lines() { grep -Ev -- "$2" "$1" | head -n 3; }
# reload_invalid — an invalid file on SIGHUP (logged at error level, several error lines)
reload_invalid() {
    cp "$CFG" "$T/good.yaml"
    printf 'bogus: 1\nlots: [{id: "bad id", capacity: 0, source: nope}]\n' >"$CFG"
    kill -HUP "$PARKD_PID"
    wait_for "grep -c 'configuration rejected' '$PARKD_LOG'" 1 5 >/dev/null
    cp "$T/good.yaml" "$CFG"
}

# --- without the journal: timestamps --------------------------------------------------------------
unset JOURNAL_STREAM
write_config "$LOTS"
parkd_start
pub "$IN/A/count" 5
check_eventually "input applied" "hget A occupied" 5
snap

# A flood of 100 malformed messages: 10 lines, the rest suppressed but counted.
i=0
while [ $i -lt 100 ]; do echo "not-a-count-$i"; i=$((i + 1)); done >"$T/flood"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$IN/A/count" -l <"$T/flood"
SENT=$((SENT + 100))
pub "$IN/NOSUCH/count" 1        # another reason: its own budget
pub "$IN/Ä/count" 1             # untrusted topic with non-ASCII bytes
settle
first_ms=$(now_ms)
check "flood: every rejected message counted" 100 "$(delta rejected_malformed)"
check "flood: rejected-input lines limited to a burst of 10" 10 \
    "$(grep -c 'rejected input (malformed) on topic "'"$IN"'/A/count"' "$PARKD_LOG")"
check "another reason is limited separately (unknown_lot logged)" 1 \
    "$(grep -c 'warning: rejected input (unknown_lot) on topic "'"$IN"'/NOSUCH/count": ' "$PARKD_LOG")"
check "untrusted topic bytes are escaped in the log" 1 \
    "$(grep -c 'rejected input (bad_id) on topic "'"$IN"'/\\xc3\\x84/count"' "$PARKD_LOG")"
check "no raw non-ASCII byte in the log" 0 "$(LC_ALL=C grep -c "$(printf '\303')" "$PARKD_LOG")"

# After the 10 s window, the next line says how many were suppressed.
first_line_ms=$("$PY" -c '
import sys, datetime
for line in open(sys.argv[1]):
    if "rejected input (malformed)" in line:
        t = datetime.datetime.strptime(line.split(" ")[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        print(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)); break' "$PARKD_LOG")
wait_ms=$((first_line_ms + 10300 - $(now_ms)))
[ "$wait_ms" -gt 0 ] && sleep "$(awk "BEGIN{print $wait_ms / 1000}")"
pub "$IN/A/count" "still-bad"
check_eventually "after the window: the next line reports the 90 suppressed" \
    "grep -c 'rejected input (malformed) on topic \"$IN/A/count\": .*(90 similar suppressed)' '$PARKD_LOG'" 1 4
pub "$IN/A/count" "bad-again"
settle
check "the line after the report does not repeat the count" 0 \
    "$(grep 'rejected input (malformed)' "$PARKD_LOG" | tail -n 1 | grep -c 'suppressed')"
reload_invalid
check_ok "parkd running after an invalid reload" parkd_alive
check "no journal: every line starts with an ISO-8601 UTC timestamp and a level" "" \
    "$(bad_lines "$PARKD_LOG" "$TS_RE")"
check "no journal: warnings at level warning" yes \
    "$(grep -Eq "$TS_RE" "$PARKD_LOG" && grep -q 'Z warning: rejected input' "$PARKD_LOG" && echo yes)"
check "no journal: no <N> prefixes" 0 "$(grep -Ec '^<[0-9]>' "$PARKD_LOG")"
parkd_stop TERM

# --- stderr is the journal: <N> prefixes -------------------------------------------------------
# parkd_start truncates the next log file in place, so its device and inode are known now.
next_log=$T/parkd.$((PARKD_RUNS + 1)).log
: >"$next_log"
JOURNAL_STREAM=$(stat -c %d:%i "$next_log")
export JOURNAL_STREAM
write_config "$LOTS" "mqtt.username=parkd" "mqtt.password_file=$T/mqtt.pass"
parkd_start
check "journal: stderr is the file JOURNAL_STREAM names" "$JOURNAL_STREAM" "$(stat -c %d:%i "$PARKD_LOG")"
pub "$IN/A/count" "bad"
pub "$IN/A/count" 7
check_eventually "journal run: input applied (with MQTT credentials)" "hget A occupied" 7
reload_invalid
kill -HUP "$PARKD_PID"      # a valid reload too
wait_for "grep -c 'reload: [0-9]* lots' '$PARKD_LOG'" 1 5 >/dev/null
parkd_stop TERM
check "journal: every line starts with a <N> priority" "" "$(bad_lines "$PARKD_LOG" "$JR_RE")"
check "journal: no timestamps (journald adds its own)" 0 "$(grep -Ec '^<[0-9]>[0-9]{4}-' "$PARKD_LOG")"
check "journal: info lines are <6>" 1 "$(grep -c '^<6>parkd .* starting' "$PARKD_LOG")"
check "journal: rejected-input warnings are <4>" 1 "$(grep -c '^<4>rejected input (malformed)' "$PARKD_LOG")"
check "journal: errors are <3>" yes "$(grep -q '^<3>.*configuration rejected' "$PARKD_LOG" && echo yes || echo no)"
check "journal: shutdown logged" yes "$(grep -q '^<6>stopped' "$PARKD_LOG" && echo yes || echo no)"
check "secrets never logged (password file content)" 0 "$(cat "$T"/parkd.*.log | grep -c "$SECRET")"

# --- JOURNAL_STREAM of another file (inherited, stderr redirected): timestamps -----------------
JOURNAL_STREAM=$(stat -c %d:%i "$T/mqtt.pass")
export JOURNAL_STREAM
write_config "$LOTS"
parkd_start
parkd_stop TERM
check "JOURNAL_STREAM naming another file: timestamps, not <N>" "" "$(bad_lines "$PARKD_LOG" "$TS_RE")"
unset JOURNAL_STREAM
finish
