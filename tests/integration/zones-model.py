# zones-model.py — the bay stream and reference model of t28-zones (SPEC §3, §10).
#
#   gen SEED BASE_TS N OUTFILE     writes N bay events of lot Z1, one "TOPIC_SUFFIX<TAB>PAYLOAD"
#                                  a line (TOPIC_SUFFIX = "Z1/bay/<bay>"), in arrival order, with
#                                  duplicates (the same message twice), reordered (older ts) and
#                                  equal-ts messages
#   model EVENTS [TO]              the expected final state of Z1 after events [0, TO) as JSON
#   publish EVENTS HOST PORT IN FROM TO MARKFILE MARK
#                                  publishes events [FROM, TO) with one `mosquitto_pub -l -q 1`
#                                  per topic (so each bay's messages keep their order), paced, and
#                                  appends "mark" to MARKFILE once MARK events are written
#   check SUBFILE                  checks every availability message of Z1 recorded by sub_start:
#                                  zones and categories consistent with the lot; prints
#                                  "checked N" or the first violations
import fnmatch, json, random, subprocess, sys, time

ZONES = [("L1", "Level 1", 10, ["L1-*"]),
         ("L2", "L2", 10, ["L2-*"]),
         ("L3", "L3", 10, ["L3-01", "L3-02", "L3-0[3-9]", "L3-10"])]
CATS = {"disabled": (2, ["L1-01", "L2-01"]), "ev_charging": (3, ["L3-0[1-3]"])}
CAPACITY = 30
BAYS = ["L%d-%02d" % (z, i) for z in (1, 2, 3) for i in range(1, 11)]
P_OCC = {"L1": 0.85, "L2": 0.5, "L3": 0.2}   # so that the zones end up in different states


def matches(bay, pats):
    return any(fnmatch.fnmatchcase(bay, p) for p in pats)


def zone_of(bay):
    exact = [z for z in ZONES if bay in z[3]]
    if exact:
        return exact[0][0]
    hits = [z for z in ZONES if matches(bay, z[3])]
    return hits[0][0] if len(hits) == 1 else None


def zone_status(cap, occ):
    # capacity 10: no occupancy of a whole bay count falls into the hysteresis band [0.85, 0.9)
    free = cap - occ
    if free <= 0:
        return "full"
    if occ / cap >= 0.9 - 1e-9:
        return "almost_full"
    return "open"


def gen(seed, base, n, out):
    rnd = random.Random(seed)
    sent = {b: [] for b in BAYS}      # payloads sent per bay
    last = {b: None for b in BAYS}    # (ts, state) of the newest message generated per bay
    clock = float(base)
    lines = []
    kinds = {"new": 0, "dup_now": 0, "dup_old": 0, "older": 0, "equal_ts": 0}

    def payload(state, ts):
        st = rnd.choice(["true", "1"]) if state else rnd.choice(["false", "0"])
        return '{"occupied": %s, "ts": %s}' % (st, ("%d" % ts) if ts == int(ts) else ("%.1f" % ts))

    while len(lines) < n:
        bay = rnd.choice(BAYS)
        r = rnd.random()
        if last[bay] is None or r < 0.62:
            clock += rnd.choice([0, 1, 1, 2, 3, 0.5])
            st = rnd.random() < P_OCC[bay[:2]]
            p = payload(st, clock)
            last[bay] = (clock, st)
            kinds["new"] += 1
        elif r < 0.74:
            p = sent[bay][-1]                       # the same message again, at once
            kinds["dup_now"] += 1
        elif r < 0.82:
            p = rnd.choice(sent[bay])               # an earlier message again, later
            kinds["dup_old"] += 1
        elif r < 0.93:
            ts = last[bay][0] - rnd.choice([1, 2, 5, 10, 30, 0.5])   # older than the bay's newest
            p = payload(rnd.random() < 0.5, ts)
            kinds["older"] += 1
        else:
            ts, st = last[bay]                      # same ts, the other state: later arrival wins
            p = payload(not st, ts)
            last[bay] = (ts, not st)
            kinds["equal_ts"] += 1
        sent[bay].append(p)
        lines.append("Z1/bay/%s\t%s" % (bay, p))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(" ".join("%s=%d" % kv for kv in sorted(kinds.items())))


def load(path):
    ev = []
    with open(path) as f:
        for line in f:
            topic, p = line.rstrip("\n").split("\t", 1)
            ev.append((topic.split("/")[2], json.loads(p)))
    return ev


def model(path, to=None):
    ev = load(path)
    if to is not None:
        ev = ev[:int(to)]
    state = {}
    for bay, p in ev:
        ts = float(p["ts"])
        occ = p["occupied"] in (True, 1)
        if bay in state and ts < state[bay][0]:
            continue                                # older than the last applied: ignored
        state[bay] = (ts, occ)                      # newer, or equal ts: the later arrival wins
    occ_bays = {b for b, (_, o) in state.items() if o}
    res = {"occupied": len(occ_bays), "free": CAPACITY - len(occ_bays), "zones": {}, "cats": {},
           "bays": {b: (1 if o else 0) for b, (_, o) in state.items()}}
    for zid, name, cap, _ in ZONES:
        o = min(cap, sum(1 for b in occ_bays if zone_of(b) == zid))
        res["zones"][zid] = {"capacity": cap, "occupied": o, "free": cap - o,
                             "status": zone_status(cap, o)}
    for c, (cap, pats) in CATS.items():
        o = min(cap, sum(1 for b in occ_bays if matches(b, pats)))
        res["cats"][c] = {"capacity": cap, "occupied": o, "free": cap - o}
    print(json.dumps(res, sort_keys=True))


def publish(path, host, port, prefix, frm, to, markfile, mark):
    frm, to, mark = int(frm), int(to), int(mark)
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t", 1) for l in f][frm:to]
    procs = {}
    for topic, _ in lines:
        if topic not in procs:
            procs[topic] = subprocess.Popen(
                ["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", prefix + "/" + topic, "-l"],
                stdin=subprocess.PIPE)
    time.sleep(0.3)                                 # every client connected
    for i, (topic, p) in enumerate(lines):
        w = procs[topic].stdin
        w.write((p + "\n").encode())
        w.flush()
        time.sleep(0.002)
        if frm + i + 1 == mark:
            with open(markfile, "a") as m:
                m.write("mark\n")
    rc = 0
    for pr in procs.values():
        pr.stdin.close()
    for pr in procs.values():
        rc |= pr.wait()
    print("published %d events, rc %d" % (len(lines), rc))
    sys.exit(rc)


def check(subfile):
    bad = []
    n = 0
    with open(subfile) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("|", 2)
            if len(parts) < 3 or not parts[2]:
                continue
            n += 1
            where = "message %d" % lineno
            try:
                a = json.loads(parts[2])
            except Exception:
                bad.append("%s: invalid JSON" % where)
                continue
            zs = a.get("zones")
            cs = a.get("categories")
            if not isinstance(zs, list) or [z.get("id") for z in zs] != [z[0] for z in ZONES]:
                bad.append("%s: zones %s" % (where, json.dumps(zs)))
                continue
            if [z.get("name") for z in zs] != [z[1] for z in ZONES] or \
                    [z.get("capacity") for z in zs] != [z[2] for z in ZONES]:
                bad.append("%s: zone names/capacities %s" % (where, json.dumps(zs)))
            if not isinstance(cs, dict) or sorted(cs) != sorted(CATS):
                bad.append("%s: categories %s" % (where, json.dumps(cs)))
                continue
            if list(a.keys())[-2:] != ["zones", "categories"]:
                bad.append("%s: zones and categories not at the end: %s" % (where, list(a.keys())))
            if any("unknown" in z for z in zs) or any("unknown" in c for c in cs.values()):
                bad.append("%s: unknown in a lot without bay_stale_after" % where)
            for c, (cap, _) in CATS.items():
                if cs[c].get("capacity") != cap:
                    bad.append("%s: category %s capacity %s" % (where, c, cs[c].get("capacity")))
            if a.get("occupied") is None:
                for z in zs:
                    if z.get("occupied") is not None or z.get("free") is not None or z.get("status") != "unknown":
                        bad.append("%s: lot without data, zone %s" % (where, json.dumps(z)))
                continue
            so = sum(z["occupied"] for z in zs if isinstance(z.get("occupied"), int))
            sf = sum(z["free"] for z in zs if isinstance(z.get("free"), int))
            if so != a["occupied"]:
                bad.append("%s: sum of zone occupied %d != lot occupied %s" % (where, so, a["occupied"]))
            if sf != a["free"]:
                bad.append("%s: sum of zone free %d != lot free %s" % (where, sf, a["free"]))
            for z in zs:
                o, fr, cap = z.get("occupied"), z.get("free"), z["capacity"]
                if not (isinstance(o, int) and isinstance(fr, int) and 0 <= o <= cap and 0 <= fr <= cap):
                    bad.append("%s: zone %s out of range" % (where, json.dumps(z)))
                    continue
                if fr != cap - o:
                    bad.append("%s: zone %s free != capacity - occupied" % (where, json.dumps(z)))
                if z.get("status") != zone_status(cap, o):
                    bad.append("%s: zone %s status, expected %s" % (where, json.dumps(z), zone_status(cap, o)))
            for c, v in cs.items():
                o, fr, cap = v.get("occupied"), v.get("free"), v.get("capacity")
                if not (isinstance(o, int) and isinstance(fr, int) and 0 <= o <= cap and fr == cap - o):
                    bad.append("%s: category %s %s" % (where, c, json.dumps(v)))
    if bad:
        print("%d of %d messages: %s" % (len(bad), n, " | ".join(bad[:5])))
    else:
        print("checked %d" % n)


if __name__ == "__main__":
    {"gen": lambda a: gen(int(a[0]), float(a[1]), int(a[2]), a[3]),
     "model": lambda a: model(*a),
     "publish": lambda a: publish(*a),
     "check": lambda a: check(*a)}[sys.argv[1]](sys.argv[2:])
