#!/bin/sh
# t05-status: status and its hysteresis (SPEC §4 `status`; per-lot and `defaults` thresholds, §6).
. "$(dirname "$0")/lib.sh"

write_config "  - {id: H1, capacity: 100, source: count, almost_full: 0.9, hysteresis: 0.05}
  - {id: F577, capacity: 577, source: count, almost_full: 0.9, hysteresis: 0.05}
  - {id: F20, capacity: 20, source: count, almost_full: 0.9, hysteresis: 0.05}
  - {id: D1, capacity: 100, source: count}" \
    "defaults.almost_full=0.8" "defaults.hysteresis=0.1"
parkd_start

# step LOT OCCUPIED STATUS WHY
step() {
    pub "$IN/$1/count" "$2"
    if wait_for "hget $1 occupied" "$2" 5; then
        check "$1 occupied $2 ($4): $3" "$3" "$(hget "$1" status)"
    else
        fail "$1 occupied $2 applied" "$2" "$GOT"
    fi
}

step H1 50 open "occupancy 0.50"
step H1 89 open "0.89 < almost_full 0.90"
step H1 90 almost_full "0.90 >= almost_full"
check_eventually "status change published (availability almost_full)" "avail_field H1 status" almost_full
step H1 86 almost_full "0.86 not below 0.90 - 0.05"
step H1 84 open "0.84 below 0.85 leaves almost_full"
step H1 88 open "re-entry needs >= 0.90 again"
step H1 95 almost_full "0.95"
step H1 100 full "free 0"
step H1 99 almost_full "free 1 >= max(1, round(100 * 0.01)) = 1 leaves full"
step H1 100 full "free 0 again"
step H1 50 open "from full straight to open"

step F577 500 open "0.867"
step F577 520 almost_full "0.901"
step F577 577 full "free 0"
check_eventually "status change published (availability full)" "avail_field F577 status" full
step F577 572 full "free 5 < round(5.77) = 6 stays full"
step F577 576 full "free 1 stays full"
step F577 571 almost_full "free 6 >= 6 leaves full"
step F577 577 full "free 0"
step F577 300 open "0.52"

step F20 20 full "free 0, capacity 20"
step F20 19 almost_full "free 1 >= max(1, round(0.2)) = 1 leaves full"
step F20 20 full "free 0 again"
step F20 5 open "0.25"

step D1 79 open "defaults.almost_full 0.8: 0.79 open"
step D1 80 almost_full "defaults.almost_full 0.8"
step D1 71 almost_full "0.71 not below 0.8 - defaults.hysteresis 0.1"
step D1 69 open "0.69 below 0.7"
step D1 75 open "re-entry needs >= 0.8"

check_eventually "availability status follows (H1)" "avail_field H1 status" open
check_eventually "availability status follows (F20)" "avail_field F20 status" open
check_ok "parkd still running" parkd_alive
finish
