#!/bin/sh
# t90-lorawan: uplinks of LoRaWAN network servers (SPEC §9) end to end. A The Things Stack v3
# input on its own broker (a second mosquitto with a password file and an ACL: only the TTS
# application user may read) and a ChirpStack v4 input on parkd's main connection, each with a
# devices file, land on bays of two bays lots exactly like SPEC §3 bay messages (Redis lot hash,
# :bays, retained availability). The same frame from two gateways or redelivered is applied
# once; a frame counter restarting after a rejoin is judged by event time; the event time is
# uplink_message.received_at (else the top-level received_at) and ChirpStack's time; bad input
# (unknown device, not JSON, wrong types, no decoded payload or field, unmapped value, a join,
# oversize, future) changes nothing and each reason is counted exactly, per input, in
# parkd:daemon and on /metrics. --check reports a broken devices file as PATH:LINE (exit 78);
# SIGHUP re-reads the devices files, a broken one keeps the old mapping.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lw-lib.sh"

command -v curl >/dev/null 2>&1 || { fail "curl is installed" curl nothing; finish; }

ns_start
cat >"$TTS_DEV" <<EOF
# device,lot,bay — TTN device ids and a DevEUI in lower case
dev1,P1,b1
0004a30b001c0532,P1,b2
dev3,P1,b3
EOF
cat >"$CS_DEV" <<EOF
# ChirpStack devices by DevEUI, hex in either case
0101010101010101,P2,c1
0A0B0C0D0E0F1011,P2,c2
  1111111111111111 , P2 , c3
EOF
lw_config
parkd_start
lw_wait_subscribed
check_ok "parkd logs in to the network server's broker as $NS_USER" grep -qF "u'$NS_USER'" "$NS_LOG"
check "anonymous clients are refused by the network server's broker (the ACL setup is real)" refused \
    "$(mosquitto_pub -h 127.0.0.1 -p "$NS_PORT" -q 1 -t v3/x -m x 2>/dev/null && echo accepted || echo refused)"

B=$(( ($(now) - 3000) * 1000 ))     # event times in ms, well in the past (replay is allowed)
ms() { echo $((B + $1 * 1000)); }   # ms SECONDS — B + SECONDS

# --- both formats end to end --------------------------------------------------------------------
isnap
ttn_up dev1 0004A30B001C0531 10 '{"occupied":true,"battery":3.6}' "$(ms 10)"
ttn_up dev2 0004A30B001C0532 10 '{"occupied":true}' "$(ms 10)"       # listed by its DevEUI
ttn_up dev3 0004A30B001C0533 10 '{"occupied":false}' "$(ms 10)"
cs_up 0101010101010101 10 '{"status":"occupied"}' "$(ms 10)"
cs_up 0a0b0c0d0e0f1011 10 '{"status":0}' "$(ms 10)"                   # listed upper, sent lower
cs_up 1111111111111111 10 '{"status":1,"battery":90}' "$(ms 10)"
wait_uplinks tts 3
wait_uplinks cs 3
check_eventually "ttn-v3: bays b1 b2 b3 of P1 (device id, DevEUI, free)" "lot_state P1 b1 b2 b3" "2/8 b1=1 b2=1 b3=0"
check_eventually "chirpstack-v4: bays c1 c2 c3 of P2 (\"occupied\", 0, 1)" "lot_state P2 c1 c2 c3" "2/8 c1=1 c2=0 c3=1"
check_eventually "ttn-v3: retained availability of P1" "echo \$(avail_field P1 occupied)/\$(avail_field P1 free)" 2/8
check_eventually "chirpstack-v4: retained availability of P2" "echo \$(avail_field P2 occupied)/\$(avail_field P2 free)" 2/8
check_idelta "ttn-v3: 3 applied" tts applied 3
check_idelta "chirpstack-v4: 3 applied" cs applied 3
check_match "ttn-v3: availability ts is the uplinks' event time" "$(iso $((B / 1000 + 10)) | sed 's/Z$//')(\.0+)?Z" "$(avail_field P1 ts)"

# --- uplinks heard by many gateways are larger than parkd's own messages (limits.max_payload 1024)
isnap
ttn_up dev3 0004A30B001C0533 11 '{"occupied":true}' "$(ms 20)" --gateways 8          # ~2.6 KB
cs_up 1111111111111111 11 '{"status":"free"}' "$(ms 20)" --gateways 5               # ~1.5 KB, main connection
wait_uplinks tts 1
wait_uplinks cs 1
check_eventually "a TTN uplink heard by 8 gateways (~2.6 KB) is applied (b3 occupied)" "lot_state P1 b3" "3/7 b3=1" 3
check_eventually "a ChirpStack uplink heard by 5 gateways (~1.5 KB, on the main connection) is applied (c3 free)" \
    "lot_state P2 c3" "1/9 c3=0" 3
ttn_up dev3 0004A30B001C0533 12 '{"occupied":false}' "$(ms 21)"     # back to the states above
cs_up 1111111111111111 12 '{"status":"occupied"}' "$(ms 21)"
wait_uplinks tts 2
wait_uplinks cs 2
check_eventually "back to b3 free, c3 occupied" "echo \$(lot_state P1 b3) \$(lot_state P2 c3)" "2/8 b3=0 2/8 c3=1" 3

# --- the same frame twice: two gateways (TTN), a redelivery (ChirpStack) ------------------------
isnap
ttn_up dev1 0004A30B001C0531 20 '{"occupied":false}' "$(ms 100)" --gw 1
ttn_up dev1 0004A30B001C0531 20 '{"occupied":false}' "$(ms 100)" --gw 2
cs_up 0101010101010101 20 '{"status":"free"}' "$(ms 100)"
cs_up 0101010101010101 20 '{"status":"free"}' "$(ms 100)"
wait_uplinks tts 2
wait_uplinks cs 2
check_eventually "two gateways: b1 freed" "lot_state P1 b1" "1/9 b1=0"
check_idelta "two gateways: applied once" tts applied 1
check_idelta "two gateways: the second counted as duplicate" tts duplicate 1
check_idelta "two gateways: nothing unchanged or ignored_old" tts unchanged 0
check_eventually "ChirpStack redelivery: c1 freed" "lot_state P2 c1" "1/9 c1=0"
check_idelta "ChirpStack redelivery: applied once" cs applied 1
check_idelta "ChirpStack redelivery: counted as duplicate" cs duplicate 1

# --- a rejoin: the frame counter restarts (TTN omits f_cnt 0), judged by event time -------------
isnap
ttn_up dev1 0004A30B001C0531 0 '{"occupied":true}' "$(ms 200)"        # after the rejoin: no f_cnt
ttn_up dev1 0004A30B001C0531 1 '{"occupied":false}' "$(ms 150)"       # low f_cnt, older time
ttn_up dev1 0004A30B001C0531 2 '{"occupied":true}' "$(ms 210)"        # same state, newer
cs_up 0a0b0c0d0e0f1011 1 '{"status":"occupied"}' "$(ms 200)"          # fCnt 1 after 10, newer time
cs_up 0a0b0c0d0e0f1011 0 '{"status":"free"}' "$(ms 190)"              # no fCnt, older time
wait_uplinks tts 3
wait_uplinks cs 2
check_eventually "rejoin: TTN uplink without f_cnt and a newer time applied (b1 occupied)" "lot_state P1 b1" "2/8 b1=1"
check_idelta "rejoin: TTN applied 1" tts applied 1
check_idelta "rejoin: TTN older time with a low f_cnt ignored as old" tts ignored_old 1
check_idelta "rejoin: TTN same state, newer time: unchanged" tts unchanged 1
check_idelta "rejoin: TTN no duplicate" tts duplicate 0
check_eventually "rejoin: ChirpStack fCnt 1 with a newer time applied (c2 occupied)" "lot_state P2 c2" "2/8 c2=1"
check_idelta "rejoin: ChirpStack applied 1" cs applied 1
check_idelta "rejoin: ChirpStack older time ignored as old" cs ignored_old 1

# a device that rejoins twice in a row: f_cnt 0 (omitted) again a minute later, with another state.
# Not a second copy of the same frame (another event time, another state): a restarted counter,
# which the event time decides.
isnap
ttn_up dev1 0004A30B001C0531 0 '{"occupied":false}' "$(ms 260)"
ttn_up dev1 0004A30B001C0531 0 '{"occupied":true}' "$(ms 320)"
wait_uplinks tts 2
check_eventually "second rejoin: f_cnt 0 again 60 s later with another state is applied (b1 occupied)" \
    "lot_state P1 b1" "2/8 b1=1" 3
check_idelta "second rejoin: both applied, no duplicate" tts duplicate 0
ttn_up dev1 0004A30B001C0531 1 '{"occupied":true}' "$(ms 330)"     # resync b1 for what follows
wait_uplinks tts 3

# --- which time is the event time ----------------------------------------------------------------
# A: uplink_message.received_at +300, top-level +320; B: uplink +310, top-level +311 (older than
# A's top-level): B is newer by uplink_message.received_at and must apply. C has no
# uplink_message.received_at, top-level +315: the fallback, newer than B. D: uplink +312, older
# than C: ignored.
isnap
ns_pub "$(ttn_topic dev3)" "$("$PY" "$LW" ttn dev3 0004A30B001C0533 30 '{"occupied":true}' "$(ms 300)" |
    sed "s/\"received_at\":\"[^\"]*\",\"uplink_message\"/\"received_at\":\"$(iso $((B / 1000 + 320)))\",\"uplink_message\"/")"
ns_pub "$(ttn_topic dev3)" "$("$PY" "$LW" ttn dev3 0004A30B001C0533 31 '{"occupied":false}' "$(ms 310)")"
wait_uplinks tts 2
check_eventually "event time is uplink_message.received_at, not the top-level one (b3 free)" "lot_state P1 b3" "2/8 b3=0"
isnap
ttn_up dev3 0004A30B001C0533 32 '{"occupied":true}' "$(($(ms 315) - 225))" --no-up-time
ttn_up dev3 0004A30B001C0533 33 '{"occupied":false}' "$(ms 312)"
wait_uplinks tts 2
check_eventually "without uplink_message.received_at the top-level received_at is the time (b3 occupied)" "lot_state P1 b3" "3/7 b3=1"
check_idelta "the fallback time orders later uplinks (one ignored as old)" tts ignored_old 1
check_idelta "the fallback time: one applied" tts applied 1

# --- bad input mixed with good -------------------------------------------------------------------
# state now: P1 b1=1 b2=1 b3=1 (3/7), P2 c1=0 c2=1 c3=1 (2/8). Every bad message is newer than
# the bays' state and would change it if it were applied.
isnap
"$PY" -c 'import sys; sys.stdout.write("x" * 70000)' >"$T/pad"
"$PY" "$LW" ttn dev1 0004A30B001C0531 59 "{\"occupied\":false,\"pad\":\"$(cat "$T/pad")\"}" "$(ms 409)" >"$T/big.json"
ttn_up dev77 00000000000000FF 50 '{"occupied":false}' "$(ms 400)"                  # unknown device
ttn_up dev2 0004A30B001C0532 50 '{"occupied":false}' "$(ms 401)"                   # GOOD: b2 free
ns_pub "$(ttn_topic dev1)" '{"end_device_ids":{"device_id":"dev1"'                  # not JSON
ns_pub "$(ttn_topic dev1)" "$("$PY" "$LW" ttn dev1 0004A30B001C0531 51 '{"occupied":false}' "$(ms 402)" |
    sed 's/"f_cnt":51/"f_cnt":"51"/')"                                               # f_cnt a string
ttn_up dev1 0004A30B001C0531 52 - "$(ms 403)"                                       # no decoded_payload
ttn_up dev1 0004A30B001C0531 53 '{"battery":3.1}' "$(ms 404)"                      # no field
ttn_up dev1 0004A30B001C0531 54 '{"occupied":"maybe"}' "$(ms 405)"                 # unmapped value
ns_pub "v3/app1@ttn/devices/dev1/join" "$("$PY" "$LW" ttn-join dev1 0004A30B001C0531 "$(ms 406)")"   # not subscribed
ns_pub "$(ttn_topic dev1)" "$("$PY" "$LW" ttn-join dev1 0004A30B001C0531 "$(ms 407)")"  # a join on .../up
ttn_up dev1 0004A30B001C0531 58 '{"occupied":false}' "$(( ($(now) + 3600) * 1000 ))" # an hour ahead
ns_pub_file "$(ttn_topic dev1)" "$T/big.json"                                       # > 64 KiB
ttn_up dev3 0004A30B001C0533 50 '{"occupied":false}' "$(ms 410)"                   # GOOD: b3 free
cs_up 0101010101010101 50 '{"status":"broken"}' "$(ms 400)"                        # unmapped value
cs_up 1111111111111111 50 '{"status":"free"}' "$(ms 401)"                          # GOOD: c3 free
cs_up 0101010101010101 51 - "$(ms 402)"                                             # no object
cs_up 0101010101010101 52 '{"battery":90}' "$(ms 403)"                             # no field
cs_up 0101010101010101 53 '{"status":2}' "$(ms 404)"                               # a number not in the map
cs_up ffffffffffffffff 54 '{"status":"occupied"}' "$(ms 405)"                      # unknown device
main_pub "$(cs_topic 0101010101010101)" 'not json'                                   # not JSON
main_pub "$(cs_topic 0101010101010101)" '{"deviceInfo":{"devEui":"0101010101010101"},"fCnt":true,"object":{"status":"occupied"}}'
main_pub "$(cs_topic 0101010101010101 status)" "$("$PY" "$LW" cs-status 0101010101010101 "$(ms 406)")"   # not subscribed
cs_up 0a0b0c0d0e0f1011 55 '{"status":"free"}' "$(ms 410)"                          # GOOD: c2 free
wait_uplinks tts 11
wait_uplinks cs 9
check_eventually "bad input: P1 as with the good uplinks alone" "lot_state P1 b1 b2 b3" "1/9 b1=1 b2=0 b3=0"
check_eventually "bad input: P2 as with the good uplinks alone" "lot_state P2 c1 c2 c3" "0/10 c1=0 c2=0 c3=0"
check_eventually "bad input: retained availability of P1" "echo \$(avail_field P1 occupied)/\$(avail_field P1 free)" 1/9
check_eventually "bad input: retained availability of P2" "echo \$(avail_field P2 occupied)/\$(avail_field P2 free)" 0/10
for rc in "uplinks 11" "applied 2" "rejected_unknown_device 1" "rejected_malformed 2" "rejected_no_field 2" \
    "rejected_unmapped_value 1" "not_uplink 1" "rejected_future 1" "rejected_oversize 1" "duplicate 0" \
    "unchanged 0" "ignored_old 0" "rejected_unknown_lot 0"; do
    set -- $rc
    check_idelta "bad input: tts $1 +$2" tts "$1" "$2"
done
for rc in "uplinks 9" "applied 2" "rejected_unknown_device 1" "rejected_malformed 2" "rejected_no_field 2" \
    "rejected_unmapped_value 2" "not_uplink 0" "rejected_future 0" "rejected_oversize 0" "duplicate 0" \
    "unchanged 0" "ignored_old 0"; do
    set -- $rc
    check_idelta "bad input: cs $1 +$2" cs "$1" "$2"
done
check "bad input: the join on .../join never reached parkd (default subscription /up only)" "" \
    "$(grep -F 'devices/dev1/join' "$PARKD_LOG" | head -n 1)"
check_ok "bad input: parkd still running" parkd_alive

# --- Prometheus ----------------------------------------------------------------------------------
PROM_KEYS="tts:uplinks tts:applied tts:duplicate tts:rejected_malformed tts:rejected_no_field tts:ignored_old
    cs:uplinks cs:applied cs:duplicate cs:rejected_unmapped_value cs:rejected_unknown_device"
prom_got() {
    set --
    # every message is parkd_uplinks_total{input}; what became of them parkd_uplink_results_total
    # (parkd_input_messages_total is taken: parkd's own input by kind, with a "kind" label)
    for _k in $PROM_KEYS; do
        case ${_k#*:} in
            uplinks) set -- "$@" "parkd_uplinks_total{input=\"${_k%%:*}\"}" ;;
            *) set -- "$@" "parkd_uplink_results_total{input=\"${_k%%:*}\",result=\"${_k#*:}\"}" ;;
        esac
    done
    _vals=$(metric "$@" | tr '\n' ' ')
    set -- $_vals
    for _k in $PROM_KEYS; do printf '%s=%s ' "$_k" "$1"; shift; done
}
prom_want() {
    for _k in $PROM_KEYS; do printf '%s=%s ' "$_k" "$(ic "${_k%%:*}" "${_k#*:}")"; done
}
check_eventually "/metrics: parkd_uplinks_total and parkd_uplink_results_total equal parkd:daemon's input counters" \
    prom_got "$(prom_want)" 3

# --- --check with a broken devices file ----------------------------------------------------------
"$PARKD_BIN" -c "$CFG" --check >"$T/check.ok" 2>&1
check "--check with good devices files: exit 0" 0 "$?"
printf 'dev1,P1,b1\ndev2,P1\ndev3,P1,b1\n' >"$T/broken.csv"
sed "s|devices_file: $TTS_DEV|devices_file: $T/broken.csv|" "$CFG" >"$T/broken.yaml"
"$PARKD_BIN" -c "$T/broken.yaml" --check >"$T/check.out" 2>&1
check "--check with a broken devices file: exit 78" 78 "$?"
check_ok "--check: names $T/broken.csv:2 (two fields)" grep -qF "$T/broken.csv:2: " "$T/check.out"
check_ok "--check: names $T/broken.csv:3 (a bay mapped twice)" grep -qF "$T/broken.csv:3: " "$T/check.out"
sed "s|devices_file: $CS_DEV|devices_file: $T/no-such.csv|" "$CFG" >"$T/missing.yaml"
"$PARKD_BIN" -c "$T/missing.yaml" --check >"$T/check.missing" 2>&1
check "--check with a missing devices file: exit 78" 78 "$?"
check_ok "--check: names the missing devices file" grep -qF "$T/no-such.csv" "$T/check.missing"
timeout 10 "$PARKD_BIN" -c "$T/broken.yaml" >/dev/null 2>"$T/start.broken"
check "starting with a broken devices file: exit 78 (EX_CONFIG)" 78 "$?"
check_ok "starting with a broken devices file: the error names $T/broken.csv:2" grep -qF "$T/broken.csv:2: " "$T/start.broken"

# --- SIGHUP re-reads the devices files -----------------------------------------------------------
isnap
ttn_up dev3 0004A30B001C0533 55 '{"occupied":true}' "$(ms 450)"
wait_uplinks tts 1
check_eventually "before the reload: dev3 occupies b3" "lot_state P1 b3" "2/8 b3=1"
reloads() { grep -cE 'reload: [0-9]+ lots' "$PARKD_LOG"; }
wait_reload() {   # wait_reload N — until the log shows N completed reloads
    wait_for "reloads" "$1" 5 || fail "reload $1 completes (log 'reload: N lots')" "$1" "$GOT"
}
r0=$(reloads)
cat >"$TTS_DEV" <<EOF
dev1,P1,b1
0004a30b001c0532,P1,b2
dev3,P1,b9
dev9,P9,x1
EOF
kill -HUP "$PARKD_PID"
wait_reload $((r0 + 1))
isnap
ttn_up dev3 0004A30B001C0533 60 '{"occupied":true}' "$(ms 500)"
ttn_up dev9 0004A30B001C0539 60 '{"occupied":true}' "$(ms 500)"
wait_uplinks tts 2
check_eventually "reload: dev3's next uplink lands on its new bay b9; b3 keeps its last state" \
    "lot_state P1 b1 b2 b3 b9" "3/7 b1=1 b2=0 b3=1 b9=1"
check_idelta "reload: a device mapped to an unconfigured lot is rejected_unknown_lot" tts rejected_unknown_lot 1
check "reload: nothing written for the unconfigured lot" 0 "$(rget exists "${RP}lot:P9:bays")"
check_ok "reload: parkd still running (same process)" kill -0 "$PARKD_PID"

printf 'dev1,P1,b1\n0004a30b001c0532,P1,b2\ndev3,P1,b3,extra\n' >"$TTS_DEV"
kill -HUP "$PARKD_PID"
check_eventually "broken devices file on reload: the error is logged as FILE:LINE" \
    "grep -qF '$TTS_DEV:3: ' '$PARKD_LOG' && echo yes" yes 5
isnap
ttn_up dev3 0004A30B001C0533 61 '{"occupied":false}' "$(ms 510)"
ttn_up dev9 0004A30B001C0539 61 '{"occupied":false}' "$(ms 510)"
wait_uplinks tts 2
check_eventually "broken reload: the old mapping stays (dev3 still on b9)" "lot_state P1 b3 b9" "2/8 b3=1 b9=0"
check_idelta "broken reload: dev9 still mapped (to the unconfigured lot, not unknown)" tts rejected_unknown_lot 1
check_idelta "broken reload: no uplink rejected as unknown device" tts rejected_unknown_device 0
check_ok "broken reload: parkd keeps running" parkd_alive
isnap
cs_up 0101010101010101 60 '{"status":"occupied"}' "$(ms 520)"
wait_uplinks cs 1
check_eventually "broken reload: the other input still works" "lot_state P2 c1" "1/9 c1=1"

parkd_stop
check "SIGTERM: exit 0" 0 "$PARKD_RC"
finish
