#!/bin/sh
# t23-epoch-ts: every event time parkd accepts is one it can write. ts 0 (the epoch) was
# accepted, but its history entry (XADD 0-0, not a stream id) failed the whole batch, and with
# it every other message's effect in that turn (issue 11, item 5).
. "$(dirname "$0")/lib.sh"

write_config "  - {id: E1, capacity: 2, source: bays}
  - {id: E2, capacity: 10, source: count}
  - {id: E3, capacity: 10, source: count}" "history.interval=1ms"
parkd_start

# one burst: parkd is stopped while they are sent, so it reads them in one turn and one batch
kill -STOP "$PARKD_PID"
pub "$IN/E1/bay/b1" '{"occupied": true, "ts": 0}'
pub "$IN/E2/count" '{"occupied": 4, "ts": "1970-01-01T00:00:00Z"}'
pub "$IN/E3/count" '{"occupied": 7}'
kill -CONT "$PARKD_PID"
settle
check "a bay at ts 0 is stored" 1 "$(bayget E1 b1)"
check "a count at 1970-01-01T00:00:00Z is stored" 4 "$(hget E2 occupied)"
check "a message in the same turn is stored too" 7 "$(hget E3 occupied)"
check "the lot's ts is the epoch" "1970-01-01T00:00:00Z" "$(hget E1 ts)"
check "the history of E2 starts at the epoch" "0-1" \
    "$(rget xrange "${RP}lot:E2:history" - + COUNT 1 | head -n 1)"
# the lot fills at the same millisecond: a status change, the next id of the same ms
pub "$IN/E1/bay/b2" '{"occupied": true, "ts": 0.0004}'
settle
check "a second bay at ts 0.0004 (0 ms) is stored" 1 "$(bayget E1 b2)"
check "its lot counts both" 2 "$(hget E1 occupied)"
check "the history of E1 holds both epoch entries in order" "0-1 0-2" \
    "$(rget xrange "${RP}lot:E1:history" - + | grep -E '^0-[0-9]+$' | tr '\n' ' ' | sed 's/ $//')"
check "no batch failed (log)" 0 "$(grep -c 'refuses writes\|transaction\|history entry was not written' "$PARKD_LOG")"
check "no reconnect to Redis" 1 "$(grep -c 'redis: connected' "$PARKD_LOG")"
check_eventually "the availability of E1 is out: full" "avail_field E1 status" full
finish
