#!/bin/sh
# t07-cli: command line and configuration errors (SPEC §6, §7). Needs no servers.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"

[ -x "$PARKD_BIN" ] || { fail "parkd binary exists" "$PARKD_BIN" "nothing (build first)"; exit 1; }

# run_parkd ARGS... — output (stdout+stderr) in $OUTPUT, exit status in $RC; never hangs
run_parkd() {
    timeout 10 "$PARKD_BIN" "$@" >"$T/out" 2>&1
    RC=$?
    OUTPUT=$(cat "$T/out")
}

# --- good configurations ------------------------------------------------------------------------
cat >"$T/spec.yaml" <<'EOF'
mqtt:   {host: 127.0.0.1, port: 1883, client_id: parkd, username: ~, password_file: ~,
         tls: {ca_file: ~, cert_file: ~, key_file: ~}, keepalive: 30s, qos: 1,
         clean_session: false, input_prefix: parking, output_prefix: parking/out}
redis:  {host: 127.0.0.1, port: 6379, socket: ~, username: ~, password_file: ~, db: 0, prefix: "parkd:"}
publish:   {min_interval: 2s, heartbeat: 5m, deadband: 1, summary_interval: 10s}
smoothing: {tau: 5m}
forecast:  {horizons: [15m, 30m, 60m]}
history:   {interval: 1m, max_len: 100000}
limits:    {max_payload: 1024, max_future: 5m, max_bays_per_lot: 10000}
log:       {level: info}          # error | warning | info | debug
metrics:   {listen: ~}            # e.g. 127.0.0.1:9108 for a Prometheus text endpoint
timezone:  Europe/London          # IANA name for time-of-day/week patterns; default: the system's
defaults:  {stale_after: 1h, almost_full: 0.9, hysteresis: 0.05}   # each may be set per lot too
lots:
  - {id: BHMBCCMKT01, name: Broad Street, capacity: 577, source: count, lat: 52.4781, lon: -1.9086}
EOF
run_parkd -c "$T/spec.yaml" --check
check "--check on the SPEC §6 example: exit 0" 0 "$RC"
check "--check on the SPEC §6 example prints 'FILE: ok'" "$T/spec.yaml: ok" "$(printf '%s\n' "$OUTPUT" | grep -F "$T/spec.yaml")"

cat >"$T/min.yaml" <<'EOF'
# only lots is required; durations in every form
publish: {min_interval: 500ms, heartbeat: 1d, summary_interval: 30}
smoothing:
  tau: 1h
lots:
  - id: A1
    capacity: 10
    source: bays
  - {id: a-2.b_3, name: "Two", capacity: 1, source: gates, stale_after: 90, almost_full: 0.8, hysteresis: 0.1}
  - {id: A3, capacity: 5000, source: count}
EOF
run_parkd -c "$T/min.yaml" --check
check "--check: minimal config with every duration form: exit 0" 0 "$RC"
check "--check: minimal config prints 'FILE: ok'" "$T/min.yaml: ok" "$(printf '%s\n' "$OUTPUT" | grep -F "$T/min.yaml")"

if [ -f "$PARKD_TOP/config/parkd.yaml" ]; then
    run_parkd -c "$PARKD_TOP/config/parkd.yaml" --check
    check "--check on the shipped config/parkd.yaml: exit 0" 0 "$RC"
fi

# --- bad configurations: FILE:LINE:COL and exit 78 ---------------------------------------------------
# bad NAME LINE [COL] DESCRIPTION — $T/NAME.yaml must be rejected naming LINE (and COL when given)
bad() {
    _f=$T/$1.yaml
    run_parkd -c "$_f" --check
    check "--check $4: exit 78" 78 "$RC"
    if [ -n "$3" ]; then _re="$_f:$2:$3:"; else _re="$_f:$2:[0-9]+:"; fi
    if printf '%s\n' "$OUTPUT" | grep -Eq "^$_re"; then pass "--check $4: error names $_f:$2${3:+:$3}"; else
        fail "--check $4: error names the file, line${3:+ and column}" "a line starting $_re" "$OUTPUT"; fi
}
cat >"$T/unknown.yaml" <<'EOF'
mqtt:
  host: 127.0.0.1
  hots: 127.0.0.2
lots:
  - {id: A1, capacity: 10, source: count}
EOF
bad unknown 3 3 "unknown key"
cat >"$T/unknowntop.yaml" <<'EOF'
lots:
  - {id: A1, capacity: 10, source: count}
colour: blue
EOF
bad unknowntop 3 1 "unknown top-level key"
cat >"$T/type.yaml" <<'EOF'
lots:
  - id: A1
    capacity: lots
    source: count
EOF
bad type 3 "" "wrong type (capacity: lots)"
cat >"$T/dup.yaml" <<'EOF'
lots:
  - {id: A1, capacity: 10, source: count}
  - {id: B1, capacity: 10, source: count}
  - {id: A1, capacity: 20, source: bays}
EOF
bad dup 4 "" "duplicate lot id"
cat >"$T/cap0.yaml" <<'EOF'
lots:
  - {id: A1, capacity: 0, source: count}
EOF
bad cap0 2 "" "bad value (capacity 0)"
cat >"$T/dur.yaml" <<'EOF'
publish:
  min_interval: 2x
lots:
  - {id: A1, capacity: 10, source: count}
EOF
bad dur 2 "" "bad duration (2x)"
cat >"$T/src.yaml" <<'EOF'
lots:
  - {id: A1, capacity: 10, source: count}
  - id: A2
    capacity: 10
    source: magic
EOF
bad src 5 "" "bad source"
cat >"$T/id.yaml" <<'EOF'
lots:
  - {id: "../x", capacity: 10, source: count}
EOF
bad id 2 "" "lot id breaking the SPEC §2 rule"
cat >"$T/port.yaml" <<'EOF'
mqtt:
  port: 70000
lots:
  - {id: A1, capacity: 10, source: count}
EOF
bad port 2 "" "bad value (port 70000)"
cat >"$T/af.yaml" <<'EOF'
defaults:
  almost_full: 1.5
lots:
  - {id: A1, capacity: 10, source: count}
EOF
bad af 2 "" "bad value (almost_full 1.5)"
cat >"$T/syntax.yaml" <<'EOF'
lots:
  - {id: A1, capacity: 10, source: count
  - {id: A2, capacity: 10, source: count}
EOF
run_parkd -c "$T/syntax.yaml" --check
check "--check YAML syntax error: exit 78" 78 "$RC"
check "--check YAML syntax error: FILE:LINE:COL" yes "$(printf '%s\n' "$OUTPUT" | grep -Eq "^$T/syntax.yaml:[0-9]+:[0-9]+:" && echo yes)"
cat >"$T/nolots.yaml" <<'EOF'
mqtt: {port: 1883}
EOF
run_parkd -c "$T/nolots.yaml" --check
check "--check without lots: exit 78" 78 "$RC"
check "--check without lots: error names the file" yes "$(printf '%s\n' "$OUTPUT" | grep -q "^$T/nolots.yaml:" && echo yes)"

cat >"$T/secret.txt" <<'EOF'
s3cr3t-PARKD-pw
EOF
cat >"$T/sec.yaml" <<EOF
mqtt: {username: u, password_file: $T/secret.txt, bogus: 1}
lots:
  - {id: A1, capacity: 10, source: count}
EOF
run_parkd -c "$T/sec.yaml" --check
check "--check with a secret file and an error: exit 78" 78 "$RC"
check "secrets never printed" "" "$(printf '%s\n' "$OUTPUT" | grep s3cr3t)"

# --- running with a bad configuration -----------------------------------------------------------------
run_parkd -c "$T/dup.yaml"
check "running with a bad config exits 78" 78 "$RC"
check "running with a bad config reports FILE:LINE:COL" yes "$(printf '%s\n' "$OUTPUT" | grep -Eq "$T/dup.yaml:4:[0-9]+:" && echo yes)"
run_parkd -c "$T/does-not-exist.yaml" --check
check "--check on a missing file fails" yes "$([ "$RC" -ne 0 ] && echo yes)"
check "--check on a missing file names it" yes "$(printf '%s\n' "$OUTPUT" | grep -q "does-not-exist.yaml" && echo yes)"

# --- --version, --help, usage ---------------------------------------------------------------------------
run_parkd --version
check "--version exits 0" 0 "$RC"
check "--version prints a version" yes "$(printf '%s\n' "$OUTPUT" | grep -Eq '[0-9]+\.[0-9]+\.[0-9]+' && echo yes)"
run_parkd --help
check "--help exits 0" 0 "$RC"
check "--help mentions -c and --check" yes "$(printf '%s\n' "$OUTPUT" | grep -q -- '--check' && printf '%s\n' "$OUTPUT" | grep -q -- '-c' && echo yes)"
run_parkd --no-such-option
check "unknown option fails" yes "$([ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && echo yes)"
finish
