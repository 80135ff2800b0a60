#!/bin/sh
# t08-restart: state survives a restart and input is neither lost nor counted twice (SPEC §5
# "On start parkd restores all of it before it applies any input", MQTT clean_session false, QoS 1).
. "$(dirname "$0")/lib.sh"

write_config "  - {id: G1, capacity: 50, source: gates}
  - {id: B1, capacity: 10, source: bays}
  - {id: C1, capacity: 100, source: count}" "mqtt.client_id=parkd-restart-$$"
parkd_start

B=$(($(now) - 600))
pub "$IN/G1/gate/g1" '{"event": "in", "seq": 1}'
pub "$IN/G1/gate/g1" '{"event": "in", "seq": 2}'
pub "$IN/G1/gate/g1" '{"event": "in", "seq": 3}'
pub "$IN/B1/bay/b1" "{\"occupied\": true, \"ts\": $((B + 10))}"
pub "$IN/C1/count" "{\"occupied\": 40, \"ts\": $((B + 20))}"
check_eventually "run 1: gates applied" "hget G1 occupied" 3
check_eventually "run 1: bay applied" "hget B1 occupied" 1
check_eventually "run 1: count applied" "hget C1 occupied" 40
parkd_stop TERM
check "run 1: SIGTERM exit 0" 0 "$PARKD_RC"

# while parkd is down: the broker keeps these for parkd's persistent session
pub "$IN/G1/gate/g1" '{"event": "in", "seq": 4}'
pub "$IN/G1/gate/g1" '{"event": "in", "seq": 2}'                       # duplicate of run 1
pub "$IN/B1/bay/b1" "{\"occupied\": false, \"ts\": $B}"               # older than run 1's state
pub "$IN/C1/count" "{\"occupied\": 10, \"ts\": $B}"                   # older than run 1's count
pub "$IN/C1/count" "{\"occupied\": 45, \"ts\": $((B + 30))}"

parkd_start
check_eventually "input sent while parkd was down is applied after restart" "hget C1 occupied" 45
check_eventually "gate seq restored: a duplicate from before the restart is ignored" "hget G1 occupied" 4
check "bay ts restored: an older state is ignored after restart" 1 "$(hget B1 occupied)"
check "bays hash kept across restart" 1 "$(bayget B1 b1)"
# the daemon hash is stored before READY (with messages_in 0), and its counters are refreshed
# every second: wait for the count, then make sure it does not go on growing
check_eventually "run 2 counts the queued messages (messages_in)" "dget messages_in" 5 3
sleep 1.5
check "run 2 counts the queued messages once (messages_in)" 5 "$(dget messages_in)"
check "run 2: applied" 2 "$(dget applied)"
check "run 2: ignored_duplicate (seq restored)" 1 "$(dget ignored_duplicate)"
check "run 2: ignored_old (bay and count ts restored)" 2 "$(dget ignored_old)"

pub "$IN/G1/gate/g1" '{"event": "in", "seq": 3}'
pub "$IN/B1/bay/b1" "{\"occupied\": false, \"ts\": $((B + 5))}"
pub "$IN/C1/count" "{\"occupied\": 5, \"ts\": $((B + 25))}"
settle
check "after restart: live duplicate seq ignored" 4 "$(hget G1 occupied)"
check "after restart: live older bay state ignored" 1 "$(hget B1 occupied)"
check "after restart: live older count ignored" 45 "$(hget C1 occupied)"
check_eventually "after restart: availability has the restored state" "avail_field G1 occupied" 4

# a crash: input the broker has delivered but parkd may not have stored is redelivered, and seqs
# keep it from being counted twice
pub "$IN/G1/gate/g1" '{"event": "in", "seq": 5}'
pub "$IN/G1/gate/g1" '{"event": "in", "seq": 6}'
kill -KILL "$PARKD_PID"
wait "$PARKD_PID" 2>/dev/null
PARKD_PID=
wait_for "retained $OUT/status" offline 5 >/dev/null    # the will, so "online" below is the new run's
parkd_start
check_eventually "after SIGKILL and restart: gate input neither lost nor counted twice" "hget G1 occupied" 6
sleep 1
check "after SIGKILL and restart: still 6 a second later" 6 "$(hget G1 occupied)"
check_ok "parkd still running" parkd_alive
finish
