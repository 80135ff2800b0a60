#!/bin/sh
# t24-redis-data-loss: after a reconnect parkd decides from the mark each batch sets
# (<prefix>written, inside the batch's transaction) whether Redis still holds what it stored.
#   - Redis killed (-9) and restarted with its append-only file: it lost nothing, so parkd
#     sends only the batches it had in flight, not its whole state with every forecast model;
#   - Redis restarted empty (its files deleted): parkd writes every lot in full again: hashes,
#     bays, gate seqs, restore state and models.
# Exact state either way (issue 11, item 3: "rewrite only what changed since the last
# confirmed batch").
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"

fault_servers
write_config "  - {id: B, capacity: 10, source: bays}
  - {id: G, capacity: 100, source: gates}
  - {id: C, capacity: 100, source: count}" "mqtt.client_id=parkd-t24-$$" "log.level=info"
parkd_start
T0=$(($(now) - 7200))
feed() {   # feed ROUND — a few changes on every lot, event time a minute per round
    _t=$((T0 + $1 * 60))
    pub "$IN/B/bay/b$1" "{\"occupied\": true, \"ts\": $_t}"
    pub "$IN/G/gate/g1" "{\"event\": \"in\", \"count\": 3, \"seq\": $1, \"ts\": $_t}"
    pub "$IN/C/count" "{\"occupied\": $(($1 * 7)), \"ts\": $_t}"
}
state() {   # what Redis holds of every lot, one line
    echo "B=$(hget B occupied)/$(rget hlen "${RP}lot:B:bays") G=$(hget G occupied)/$(rget hget "${RP}lot:G:gateseq" g1) C=$(hget C occupied)"
}
for r in 1 2 3 4; do feed $r; done
settle
check "before: the state is stored" "B=4/4 G=12/4 C=28" "$(state)"
check_eventually "before: a forecast model is stored" "rget exists ${RP}lot:C:model" 1

# --- killed and restarted with its data ------------------------------------------------------
full0=$(grep -c 'writing every lot in full' "$PARKD_LOG")
fault_stop_redis KILL
feed 5     # read while Redis is away: unacknowledged, redelivered or kept
fault_start_redis
check_eventually "restart with data: parkd sees Redis intact" \
    "grep -c 'redis: holds everything stored before the connection went' '$PARKD_LOG'" 1 15
settle 15
check "restart with data: exact" "B=5/5 G=15/5 C=35" "$(state)"
check "restart with data: no full rewrite" "$full0" "$(grep -c 'writing every lot in full' "$PARKD_LOG")"

# --- restarted empty ---------------------------------------------------------------------------
fault_stop_redis TERM
rm -rf "$T/redis"
fault_start_redis
check "restarted empty: Redis holds nothing" 0 "$(rget dbsize)"
check_eventually "restarted empty: parkd notices and writes everything" \
    "grep -c 'redis: does not hold what parkd last stored' '$PARKD_LOG'" 1 15
check_eventually "restarted empty: every lot written back" "state" "B=5/5 G=15/5 C=35" 10
check "restarted empty: the lot set is back" 3 "$(rget scard "${RP}lots")"
check "restarted empty: the forecast model is back" 1 "$(rget exists "${RP}lot:C:model")"
check "restarted empty: the bay restore state is back" 5 "$(rget hlen "${RP}lot:B:baystate")"
feed 6
settle
check "and input flows on" "B=6/6 G=18/6 C=42" "$(state)"

# --- a restart of parkd reads it all back ------------------------------------------------------
parkd_stop TERM
parkd_start
pub "$IN/G/gate/g1" "{\"event\": \"in\", \"count\": 3, \"seq\": 6, \"ts\": $((T0 + 360))}"
settle
check "after a parkd restart: the duplicate seq is ignored, state exact" "B=6/6 G=18/6 C=42" "$(state)"
finish
