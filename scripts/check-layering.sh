#!/bin/sh
# The layering rule of the README's layout table, checked over #include lines (run by
# `make check`):
#   - the pure modules (the ones a replay drives with no servers) never see store.h, mqtt.h or
#     uv.h: not in their own files, not through any header they include;
#   - no include cycle between modules (module x = x.c + x.h; x uses y when either includes y.h).
# Prints one line per violation and "layering: N passed, N failed"; exits non-zero on any.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "${LAYERING_DIR:-$top/daemon}" || exit 1
PURE="payload lot zone uplink devices input smooth profile learn forecast history pubrule opendata"

for f in *.c *.h; do
    sed -n "s|^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]\([^\">]*\)[\">].*|$f \1|p" "$f"
done | awk -v pure="$PURE" '
    { inc[$1] = inc[$1] " " $2; files[$1] = 1 }
    # headers seen when compiling FILE: its includes, and theirs, within this tree
    function see(file, seen,    n, i, list, h) {
        n = split(inc[file], list, " ")
        for (i = 1; i <= n; i++) {
            h = list[i]
            if (h in seen) continue
            seen[h] = 1
            if (h in files) see(h, seen)
        }
    }
    function module(file) { sub(/\.[ch]$/, "", file); return file }
    # depth-first search for a cycle through module M; state 1 on the path, 2 done
    function visit(m, path,    n, i, list, d) {
        state[m] = 1
        n = split(uses[m], list, " ")
        for (i = 1; i <= n; i++) {
            d = list[i]
            if (state[d] == 1) { cycle = path " -> " d; return 1 }
            if (state[d] == 0 && visit(d, path " -> " d)) return 1
        }
        state[m] = 2
        return 0
    }
    END {
        passed = failed = 0
        np = split(pure, pm, " ")
        for (i = 1; i <= np; i++) {
            delete seen
            see(pm[i] ".c", seen)
            see(pm[i] ".h", seen)
            bad = ""
            if ("store.h" in seen) bad = bad " store.h"
            if ("mqtt.h" in seen) bad = bad " mqtt.h"
            if ("uv.h" in seen) bad = bad " uv.h"
            if (bad != "") { print "FAIL: pure module " pm[i] " sees" bad; failed++ }
            else passed++
        }
        for (f in files) {
            m = module(f)
            mods[m] = 1
            n = split(inc[f], list, " ")
            for (i = 1; i <= n; i++) {
                d = list[i]
                if (!(d in files) || d !~ /\.h$/) continue
                d = module(d)
                if (d != m && index(" " uses[m] " ", " " d " ") == 0) uses[m] = uses[m] " " d
            }
        }
        cycles = 0
        for (m in mods) {
            if (state[m] != 0) continue
            cycle = ""
            # the search stops at the first cycle, leaving its path marked: one report
            if (visit(m, m)) { print "FAIL: include cycle " cycle; cycles++; break }
        }
        if (cycles) failed += cycles; else passed++
        printf "layering: %d passed, %d failed\n", passed, failed
        exit failed > 0
    }'
