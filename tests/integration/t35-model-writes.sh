#!/bin/sh
# t35-model-writes: a lot's forecast model is written to Redis at once the first time, then its
# changes wait (at most a minute per lot: writing them with every event cost a fifth of the CPU
# under load) — and a clean stop writes every waiting change, so a restart loses no learning.
. "$(dirname "$0")/lib.sh"

write_config "  - {id: C, capacity: 100, source: count}"
parkd_start
B=$(( ($(now) - 86400) / 900 * 900 ))     # yesterday, on the 15-minute grid
model() { rget hgetall "${RP}lot:C:model" | paste - - | sort | md5sum | cut -c1-12; }

pub "$IN/C/count" "{\"occupied\": 10, \"ts\": $B}"
check_eventually "the first reading's model is stored at once" "rget exists ${RP}lot:C:model" 1
m0=$(model)
i=1
while [ $i -le 8 ]; do      # two hours of readings, 15 minutes apart in event time
    pub "$IN/C/count" "{\"occupied\": $((10 + 5 * i)), \"ts\": $((B + 900 * i))}"
    i=$((i + 1))
done
settle
check_eventually "the readings are stored" "hget C occupied" 50
sleep 1.5       # the once-a-second look for waiting model changes finds none due yet
check "the later readings' model changes wait (not written with every event)" "$m0" "$(model)"
parkd_stop
check "parkd stops cleanly" 0 "$PARKD_RC"
m2=$(model)
check "a clean stop writes the waiting model changes" yes "$([ "$m2" != "$m0" ] && echo yes || echo "no, still $m0")"
parkd_start
parkd_stop
check "restored and stopped again without input: the stored model is the same" "$m2" "$(model)"
finish
