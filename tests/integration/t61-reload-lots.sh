#!/bin/sh
# t61-reload-lots: SIGHUP with lots added, removed and changed (SPEC §7). An invalid file is
# logged and the running configuration kept (input still processed); a removed lot stops being
# published and its input is rejected, but its Redis keys stay; an added lot is published at
# once and, when it was configured before, resumes its state from Redis; a changed capacity
# applies at once (free recomputed and published without new input); no input is lost to a
# reload.
. "$(dirname "$0")/lib.sh"

A="  - {id: A, name: Alpha, capacity: 100, source: count}"
B="  - {id: B, name: Bee, capacity: 50, source: count}"
C="  - {id: C, capacity: 40, source: count}"
G="  - {id: G, capacity: 1000, source: gates}"

# reload — SIGHUP, then waits until the log has one more "reload:" summary or rejection line
reload() {
    _before=$(grep -c 'reload: [0-9]* lots\|reload: configuration rejected' "$PARKD_LOG")
    kill -HUP "$PARKD_PID"
    wait_for "grep -c 'reload: [0-9]* lots\|reload: configuration rejected' '$PARKD_LOG'" \
        $((_before + 1)) 5 || fail "reload is logged" "one more reload line" "$GOT"
}
lots_set() { rget smembers "${RP}lots" | sort | tr '\n' ' ' | sed 's/ $//'; }
# fresh_msgs NAME — number of non-retained messages the subscription NAME received
fresh_msgs() { grep -c '^[0-9.]*|0|' "$(sub_file "$1")"; }

write_config "$A
$B
$G"
cp "$CFG" "$T/v1.yaml"
parkd_start
pub "$IN/A/count" 30
pub "$IN/B/count" 20
check_eventually "before reload: A applied" "hget A occupied" 30
check_eventually "before reload: B applied" "hget B occupied" 20

# --- an invalid file: logged with file:line:col, the running configuration kept ------------------
{ cat "$T/v1.yaml"; echo "  - {id: A, capacity: 5, source: count}"; echo "bogus_key: 1"; } >"$CFG"
reload
check_ok "parkd still running after an invalid reload" parkd_alive
check "invalid reload: logged at error level" 1 "$(grep -c ' error: reload: configuration rejected, keeping the running one' "$PARKD_LOG")"
check "invalid reload: the error names file, line and column (duplicate id)" 1 \
    "$(grep -c "$CFG:[0-9]*:[0-9]*: .*duplicate" "$PARKD_LOG")"
check "invalid reload: the error names file, line and column (unknown key)" 1 \
    "$(grep -c "$CFG:[0-9]*:[0-9]*: .*bogus_key" "$PARKD_LOG")"
pub "$IN/A/count" 35
pub "$IN/B/count" 21
check_eventually "after an invalid reload, input is still applied (A)" "hget A occupied" 35
check_eventually "after an invalid reload, the old lots stay (B still taken)" "hget B occupied" 21
check "after an invalid reload, A keeps its capacity" 100 "$(hget A capacity)"

# --- a valid reload: A changed (capacity 100 -> 80, new name), B removed, C added --------------
snap
write_config "  - {id: A, name: Alpha Two, capacity: 80, source: count}
$C
$G"
reload
check "reload logs the removed lot" 1 "$(grep -c 'reload: lot B removed' "$PARKD_LOG")"
check "reload logs the added lot" 1 "$(grep -c 'reload: lot C added' "$PARKD_LOG")"
check_eventually "changed capacity applies at once (Redis capacity)" "hget A capacity" 80
check_eventually "changed capacity applies at once: free recomputed (80 - 35)" "hget A free" 45
check_eventually "changed capacity: availability republished without new input (free)" "avail_field A free" 45
check_json_field "changed capacity: availability capacity" "$(avail A)" capacity 80
check_eventually "changed name applies (Redis)" "hget A name" "Alpha Two"
check_eventually "$RP""lots holds the configured lots after the reload" lots_set "A C G"
check_eventually "added lot is published at once (status unknown, no data yet)" "avail_field C status" unknown
check_json_field "added lot: availability capacity" "$(avail C)" capacity 40
pub "$IN/C/count" 10
check_eventually "added lot takes input" "hget C occupied" 10
check_eventually "added lot: availability published with its data" "avail_field C free" 30

sub_start outB "$OUT/B/availability"
sleep 0.5
pub "$IN/B/count" 22
settle
check "removed lot: its input is rejected as unknown_lot" 1 "$(delta rejected_unknown_lot)"
check "removed lot: its Redis state stays" 21 "$(hget B occupied)"
check "removed lot: its Redis hash keeps its fields" Bee "$(hget B name)"
sleep 1
sub_stop outB
check "removed lot: no new availability published" 0 "$(fresh_msgs outB)"

# --- capacity below the occupied count: clamped, full, at once; B added back resumes its state,
# while gate input keeps flowing through two reloads: none of it is lost --------------------------
sub_start outA "$OUT/A/availability"
sleep 0.5
i=0
while [ $i -lt 60 ]; do echo in; i=$((i + 1)); done >"$T/ins"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$IN/G/gate/E1" -l <"$T/ins" &
feeder=$!
write_config "  - {id: A, name: Alpha Two, capacity: 20, source: count}
$B
$C
$G"
reload
cp "$CFG" "$T/v3.yaml"
kill -HUP "$PARKD_PID"      # and once more, the same file, while the feed may still run
wait "$feeder"
SENT=$((SENT + 60))
settle
check_eventually "capacity below occupied: occupied clamped to the new capacity" "hget A occupied" 20
check_eventually "capacity below occupied: free 0" "hget A free" 0
check_eventually "capacity below occupied: status full" "hget A status" full
check_eventually "capacity below occupied: availability published full" "avail_field A status" full
check "capacity change published without new input for A" yes \
    "$([ "$(fresh_msgs outA)" -ge 1 ] && echo yes || echo no)"
sub_stop outA
check_eventually "re-added lot resumes its state from Redis" "avail_field B occupied" 21
check_json_field "re-added lot: availability name" "$(avail B)" name Bee
pub "$IN/B/count" 23
check_eventually "re-added lot takes input again" "hget B occupied" 23
check_eventually "$RP""lots holds B again" lots_set "A B C G"
check_eventually "no gate input lost across two reloads (60 in)" "hget G occupied" 60
check_ok "parkd still running" parkd_alive
parkd_stop TERM
check "clean stop after reloads: exit 0" 0 "$PARKD_RC"
finish
