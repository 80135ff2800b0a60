#!/bin/sh
# t80-http-api: the HTTP API (SPEC §8) against a running parkd with real servers: NGSI-LD
# entities equal Redis and validate against the FIWARE schemas, ParkAPI v3 sites equal Redis,
# pagination, idPattern, zones as ParkingGroup entities (values exact, schema-valid) and
# categories as ParkAPI capacity_<cat> fields (SPEC's names and ParkAPI's own), every error path (404, 400, 405, 431), static files without path
# traversal, CORS, /config.json, 200 concurrent connections, a slow client that never finishes
# its request while input keeps being stored, /metrics on http.listen and on metrics.listen,
# http.max_connections, and one server when both listen on the same address.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null 2>&1 || { fail "curl is installed" curl nothing; finish; }
SCHEMAS=$PARKD_TOP/../shared/standards/fiware
[ -d "$SCHEMAS" ] || SCHEMAS=/work/shared/standards/fiware
[ -f "$SCHEMAS/OffStreetParking/schema.json" ] || fail "FIWARE schemas found" "$SCHEMAS" nothing

# report — turns the helper's "ok DESC" / "bad DESC: detail" lines into checks
report() {
    while IFS= read -r _line; do
        case "$_line" in
            "ok "*) pass "${_line#ok }" ;;
            "bad "*) fail "${_line#bad }" "as described" "otherwise" ;;
            *) echo "$_line" ;;
        esac
    done
}

cat >"$T/api.py" <<'EOF'
import http.client, json, os, socket, subprocess, sys, threading, time
port, redis_port, prefix, schemas = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def ok(d): print("ok " + d)
def bad(d, why): print("bad %s: %s" % (d, why))
def check(d, cond, why=""):
    ok(d) if cond else bad(d, why)

def get(path, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body

def rhash(key):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", redis_port, "--no-raw", "hgetall",
                          key], capture_output=True, text=True).stdout
    vals = [json.loads(l.split(") ", 1)[1]) for l in out.splitlines() if ") " in l]
    return dict(zip(vals[0::2], vals[1::2]))

def validator(t):
    import jsonschema
    common = json.load(open(os.path.join(schemas, "common-schema.json")))
    schema = json.load(open(os.path.join(schemas, t, "schema.json")))
    uri = "https://smart-data-models.github.io/data-models/common-schema.json"
    try:
        import referencing
        reg = referencing.Registry().with_resource(uri, referencing.Resource.from_contents(
            common, default_specification=referencing.jsonschema.DRAFT202012))
        return jsonschema.Draft202012Validator(schema, registry=reg)
    except ImportError:
        res = jsonschema.RefResolver.from_schema(schema, store={uri: common})
        cls = getattr(jsonschema, "Draft202012Validator", jsonschema.Draft7Validator)
        return cls(schema, resolver=res)

def problem(d, path, status, etype, headers=None, method="GET"):
    s, h, b = get(path, headers, method)
    try:
        j = json.loads(b)
    except Exception:
        j = {}
    check(d, s == status and j.get("type") == "https://uri.etsi.org/ngsi-ld/errors/" + etype
          and j.get("status") == status, "%s %s" % (s, b[:200]))

def values(lots, stale, nopos):
    s, h, b = get("/api/public/v3/parking-sites")
    items = {i["id"]: i for i in json.loads(b)["items"]}
    check("ParkAPI: 200 application/json", s == 200 and h.get("content-type") == "application/json", s)
    check("ParkAPI: every lot listed", sorted(items) == sorted(lots), sorted(items))
    for lot in lots:
        r, i = rhash(prefix + "lot:" + lot), items.get(lot, {})
        want = {"capacity": int(r["capacity"]), "name": r["name"]}
        if lot != nopos:
            want.update(lat=float(r["lat"]), lon=float(r["lon"]))
        if lot == stale:
            want["has_realtime_data"] = False
        else:
            want.update(has_realtime_data=True, realtime_capacity=int(r["capacity"]),
                        realtime_free_capacity=int(r["free"]), realtime_opening_status="OPEN",
                        realtime_data_updated_at=r["ts"])
        got = {k: i.get(k) for k in want}
        check("ParkAPI %s equals Redis" % lot, got == want, "%s vs %s" % (got, want))
        if lot == stale:
            check("ParkAPI stale lot has no realtime_* fields",
                  not [k for k in i if k.startswith("realtime_")], i)
        if lot == nopos:
            check("ParkAPI lot without position has no lat/lon", "lat" not in i and "lon" not in i, i)
        s1, h1, b1 = get("/api/public/v3/parking-sites/" + lot)
        check("ParkAPI /parking-sites/%s equals its list item" % lot,
              s1 == 200 and json.loads(b1) == i, b1[:200])
    s, h, b = get("/ngsi-ld/v1/entities?type=OffStreetParking&options=keyValues&limit=1000")
    ents = {e["id"]: e for e in json.loads(b)}
    want_ids = sorted("urn:ngsi-ld:OffStreetParking:" + l for l in lots if l != nopos)
    check("NGSI-LD: every lot with a position listed, none without", sorted(ents) == want_ids,
          sorted(ents))
    v = validator("OffStreetParking")
    for lot in lots:
        if lot == nopos:
            continue
        r, e = rhash(prefix + "lot:" + lot), ents.get("urn:ngsi-ld:OffStreetParking:" + lot, {})
        want = {"type": "OffStreetParking", "name": r["name"], "totalSpotNumber": int(r["capacity"]),
                "availableSpotNumber": int(r["free"]), "occupiedSpotNumber": int(r["occupied"]),
                "dateModified": r["ts"],
                "location": {"type": "Point", "coordinates": [float(r["lon"]), float(r["lat"])]},
                "status": [{"open": "spacesAvailable", "almost_full": "almostFull",
                            "full": "full"}[r["status"]]]}
        got = {k: e.get(k) for k in want}
        check("NGSI-LD %s equals Redis" % lot, got == want, "%s vs %s" % (got, want))
        check("NGSI-LD %s occupancy equals Redis" % lot,
              abs(e.get("occupancy", -1) - float(r["occupancy"])) < 0.001, e.get("occupancy"))
        errs = [x.message for x in v.iter_errors(e)]
        check("NGSI-LD %s validates against OffStreetParking/schema.json" % lot, not errs, errs[:3])
        check("NGSI-LD %s has the forecast extension" % lot,
              isinstance(e.get("forecast", {}).get("horizons"), list), e.get("forecast"))

def spots(lot):
    s, h, b = get("/ngsi-ld/v1/entities?type=ParkingSpot&options=keyValues&limit=1000")
    ents = [e for e in json.loads(b) if e["id"].startswith("urn:ngsi-ld:ParkingSpot:%s:" % lot)]
    bays = rhash(prefix + "lot:" + lot + ":bays")
    got = {e["id"].rsplit(":", 1)[1]: e["status"] for e in ents}
    want = {k: ("occupied" if v == "1" else "free") for k, v in bays.items()}
    check("ParkingSpot: one per bay, status equals Redis", got == want, "%s vs %s" % (got, want))
    v = validator("ParkingSpot")
    errs = [x.message for e in ents for x in v.iter_errors(e)]
    check("ParkingSpot entities validate against ParkingSpot/schema.json", not errs, errs[:3])
    check("ParkingSpot refParkingSite is the lot's urn",
          all(e["refParkingSite"] == "urn:ngsi-ld:OffStreetParking:" + lot for e in ents), ents[:1])

# Z1's zones and categories as t80 feeds them: bays L1-1, L1-3, L2-2 occupied, L1-2, L2-1 free
ZONES = {"L1": ("Level 1", 4, 2, 2), "L2": ("Level 2", 6, 1, 5)}     # name, capacity, occ, free
CATS = {"disabled": (2, 1), "ev_charging": (3, 2), "women": (1, 0)}  # capacity, free
PARKAPI_NAMES = {"ev_charging": "charging", "women": "woman"}        # ParkAPI v3's own names

def groups(lot):
    urn = "urn:ngsi-ld:ParkingGroup:%s:" % lot
    s, h, b = get("/ngsi-ld/v1/entities?type=ParkingGroup&options=keyValues&limit=1000")
    ents = {e["id"]: e for e in json.loads(b)} if s == 200 else {}
    check("ParkingGroup: one entity per zone, zones of lots only",
          sorted(ents) == [urn + z for z in sorted(ZONES)], sorted(ents))
    r = rhash(prefix + "lot:" + lot)
    v = validator("ParkingGroup")
    for z, (name, cap, occ, free) in ZONES.items():
        e = ents.get(urn + z, {})
        want = {"id": urn + z, "type": "ParkingGroup", "name": name, "category": ["offStreet"],
                "refParkingSite": "urn:ngsi-ld:OffStreetParking:" + lot, "totalSpotNumber": cap,
                "availableSpotNumber": free, "occupiedSpotNumber": occ, "dateModified": r["ts"],
                "location": {"type": "Point", "coordinates": [float(r["lon"]), float(r["lat"])]}}
        check("ParkingGroup %s: values exact" % z, e == want, "%s vs %s" % (e, want))
        check("ParkingGroup %s: free and capacity equal Redis" % z,
              (int(r.get("zone:%s:free" % z, -1)), int(r.get("zone:%s:capacity" % z, -1))) ==
              (free, cap), r)
        errs = [x.message for x in v.iter_errors(e)]
        check("ParkingGroup %s validates against ParkingGroup/schema.json" % z, not errs, errs[:3])
        s1, h1, b1 = get("/ngsi-ld/v1/entities/" + urn + z + "?options=keyValues")
        check("ParkingGroup %s by id equals its list item" % z,
              s1 == 200 and json.loads(b1) == e, (s1, b1[:200]))
    s, h, b = get("/ngsi-ld/v1/entities/" + urn + "L2")
    e = json.loads(b) if s == 200 else {}
    a, ref = e.get("availableSpotNumber", {}), e.get("refParkingSite", {})
    check("ParkingGroup normalized: Property with observedAt, refParkingSite a Relationship",
          a.get("type") == "Property" and a.get("value") == 5 and a.get("observedAt") == r["ts"]
          and ref == {"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:" + lot},
          e)
    s, h, b = get("/ngsi-ld/v1/entities?type=ParkingGroup&limit=1&options=keyValues")
    ids = [x["id"] for x in json.loads(b)]
    check("ParkingGroup: limit=1 gives the first zone and a Link rel=next",
          ids == [urn + "L1"] and 'offset=1>; rel="next"' in h.get("link", ""), (ids, h.get("link")))
    s, h, b = get("/ngsi-ld/v1/entities?type=ParkingGroup&idPattern=:L2$")
    check("ParkingGroup: idPattern selects a zone", [x["id"] for x in json.loads(b)] == [urn + "L2"], b)

def categories(lot, plain):
    s, h, b = get("/api/public/v3/parking-sites/" + lot)
    i = json.loads(b) if s == 200 else {}
    r = rhash(prefix + "lot:" + lot)
    want = {}
    for c, (cap, free) in CATS.items():
        for n in (c, PARKAPI_NAMES.get(c)):
            if n:
                want["capacity_" + n] = cap
                want["realtime_free_capacity_" + n] = free
        check("ParkAPI %s: %s free and capacity equal Redis" % (lot, c),
              (int(r.get("cat:%s:free" % c, -1)), int(r.get("cat:%s:capacity" % c, -1))) ==
              (free, cap), r)
    got = {k: v for k, v in i.items() if k.startswith(("capacity_", "realtime_free_capacity_"))}
    check("ParkAPI %s: per category fields exact (SPEC and ParkAPI names)" % lot, got == want,
          "%s vs %s" % (got, want))
    s, h, b = get("/api/public/v3/parking-sites/" + plain)
    i = json.loads(b) if s == 200 else {}
    check("ParkAPI %s (no categories): no category fields" % plain,
          s == 200 and not [k for k in i if k.startswith("capacity_")], i)

def forms(lot):
    s, h, b = get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:" + lot)
    e = json.loads(b)
    a = e.get("availableSpotNumber", {})
    check("normalized: a Property with value and observedAt",
          a.get("type") == "Property" and "value" in a and "observedAt" in a, a)
    check("normalized: location is a GeoProperty", e.get("location", {}).get("type") == "GeoProperty",
          e.get("location"))
    check("application/json: @context as a Link header, not inline",
          "@context" not in e and 'rel="http://www.w3.org/ns/json-ld#context"' in h.get("link", ""), h)
    s, h, b = get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:" + lot,
                  {"Accept": "application/ld+json"})
    e = json.loads(b)
    check("application/ld+json: @context inline, content type ld+json",
          h.get("content-type") == "application/ld+json" and isinstance(e.get("@context"), list), h)
    s, h, b = get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:" + lot + "?options=keyValues")
    check("one entity, keyValues", s == 200 and json.loads(b).get("totalSpotNumber") is not None, b)

def pages(total):
    seen, path, n = [], "/ngsi-ld/v1/entities?type=OffStreetParking&options=keyValues&limit=2", 0
    while path and n < 20:
        s, h, b = get(path)
        seen += [e["id"] for e in json.loads(b)]
        nexts = [v for v in h.get("link", "").split(", <") if v.endswith('rel="next"')]
        path = nexts[0].lstrip("<").split(">")[0] if nexts else None
        if n == 0:
            check("a page's Link header has the @context too",
                  "json-ld#context" in h.get("link", ""), h.get("link"))
        n += 1
    check("pagination: limit=2 pages with Link rel=next cover every entity once",
          len(seen) == total and len(set(seen)) == total and n == (total + 1) // 2, (n, seen))
    s, h, b = get("/ngsi-ld/v1/entities?type=OffStreetParking&limit=1000")
    check("no Link next when nothing follows", 'rel="next"' not in h.get("link", ""), h.get("link"))
    s, h, b = get("/ngsi-ld/v1/entities?type=OffStreetParking&offset=1000")
    check("offset past the end: empty list", s == 200 and json.loads(b) == [], b)

def pattern(lot):
    s, h, b = get("/ngsi-ld/v1/entities?type=OffStreetParking&idPattern=.*:%s$" % lot)
    ids = [e["id"] for e in json.loads(b)]
    check("idPattern selects by id", ids == ["urn:ngsi-ld:OffStreetParking:" + lot], ids)

def errors():
    problem("unknown id: 404 ResourceNotFound", "/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:NOPE",
            404, "ResourceNotFound")
    problem("ParkingGroup id of a lot without zones: 404", "/ngsi-ld/v1/entities/urn:ngsi-ld:ParkingGroup:C1:z",
            404, "ResourceNotFound")
    problem("bad type: 400 BadRequestData", "/ngsi-ld/v1/entities?type=Car", 400, "BadRequestData")
    problem("no type: 400 BadRequestData", "/ngsi-ld/v1/entities", 400, "BadRequestData")
    problem("limit=0: 400", "/ngsi-ld/v1/entities?type=OffStreetParking&limit=0", 400, "BadRequestData")
    problem("limit=1001: 400", "/ngsi-ld/v1/entities?type=OffStreetParking&limit=1001", 400,
            "BadRequestData")
    problem("limit=x: 400", "/ngsi-ld/v1/entities?type=OffStreetParking&limit=x", 400, "BadRequestData")
    problem("bad idPattern: 400", "/ngsi-ld/v1/entities?type=OffStreetParking&idPattern=(", 400,
            "BadRequestData")
    problem("unknown ParkAPI site: 404", "/api/public/v3/parking-sites/NOPE", 404, "ResourceNotFound")
    problem("unknown path: 404", "/nope", 404, "ResourceNotFound")
    problem("POST: 405", "/api/public/v3/parking-sites", 405, "OperationNotSupported", method="POST")
    problem("DELETE: 405", "/ngsi-ld/v1/entities/x", 405, "OperationNotSupported", method="DELETE")
    s, h, b = get("/api/public/v3/parking-sites", method="HEAD")
    check("HEAD: 200 without a body", s == 200 and b == b"", (s, b[:50]))

def big_header():
    # past 8 KiB of head: 431; a request line past MHD's connection memory (16 KiB): 414
    for size, want, where in ((9 * 1024, 431, "header"), (64 * 1024, 431, "header"),
                              (9 * 1024, 431, "request line"), (20 * 1024, 414, "request line")):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        if where == "header":
            c.sendall(b"GET /api/public/v3/parking-sites HTTP/1.1\r\nHost: x\r\nX-Big: " +
                      b"a" * size + b"\r\n\r\n")
        else:
            c.sendall(b"GET /api/public/v3/parking-sites?x=" + b"a" * size +
                      b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while b"\r\n" not in data:
                d = c.recv(4096)
                if not d:
                    break
                data += d
        except OSError:
            pass
        c.close()
        check("a %d KiB %s: %d" % (size // 1024, where, want),
              data.startswith(b"HTTP/1.1 %d" % want), data[:60])

def traversal(secret):
    for p in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2E%2E%2Fsecret.txt",
              "/link.txt", "//secret.txt", "/sub/../../secret.txt", "/" + secret, "/./index.html",
              "/dir"]:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.putrequest("GET", p, skip_accept_encoding=True)
        c.endheaders()
        r = c.getresponse()
        b = r.read()
        c.close()
        check("traversal %s: 403/404, no content from outside the root" % p,
              r.status in (400, 403, 404) and b"TOPSECRET" not in b, (r.status, b[:80]))

def static():
    s, h, b = get("/")
    check("GET /: index.html as text/html", s == 200 and b"<title>map" in b and
          h.get("content-type", "").startswith("text/html"), (s, h.get("content-type")))
    for name, t in (("app.js", "text/javascript"), ("style.css", "text/css"), ("pic.png", "image/png"),
                    ("icon.svg", "image/svg+xml"), ("data.json", "application/json"),
                    ("app.js.map", "application/json")):
        s, h, b = get("/" + name)
        check("GET /%s: 200 %s" % (name, t), s == 200 and h.get("content-type", "").startswith(t),
              (s, h.get("content-type")))
    s, h, b = get("/config.json")
    j = json.loads(b) if s == 200 else {}
    check("GET /config.json: the map's settings", j == {"mqtt_ws_url": "ws://127.0.0.1:9001",
          "tile_url": None, "output_prefix": sys.argv[6]}, b)

def cors():
    s, h, b = get("/api/public/v3/parking-sites", {"Origin": "https://map.example"})
    check("CORS: a configured origin gets Access-Control-Allow-Origin",
          h.get("access-control-allow-origin") == "https://map.example", h)
    s, h, b = get("/api/public/v3/parking-sites", {"Origin": "https://evil.example"})
    check("CORS: another origin gets none", "access-control-allow-origin" not in h, h)
    check("CORS: Vary: Origin either way", h.get("vary") == "Origin", h)

def concurrent(n):
    res, socks = [], []
    for i in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    def one(c):
        try:
            c.sendall(b"GET /api/public/v3/parking-sites HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = c.recv(65536)
                if not d:
                    break
                data += d
            res.append(data.startswith(b"HTTP/1.1 200"))
        except OSError:
            res.append(False)
        finally:
            c.close()
    ts = [threading.Thread(target=one, args=(c,)) for c in socks]
    for t in ts: t.start()
    for t in ts: t.join()
    check("%d concurrent connections all answered 200" % n, len(res) == n and all(res),
          "%d of %d" % (sum(res), n))

def limit(n):
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for i in range(n)]
    time.sleep(0.5)
    status = None
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        c.request("GET", "/metrics")
        status = c.getresponse().status
    except Exception:
        status = "refused"
    check("max_connections %d: one more is not served" % n, status != 200, status)
    for s in socks: s.close()
    time.sleep(0.5)
    s, h, b = get("/metrics")
    check("served again once connections close", s == 200, s)

def slow_begin():
    c = socket.create_connection(("127.0.0.1", port), timeout=20)
    c.sendall(b"GET /api/public/v3/parking-sites HTTP/1.1\r\nHost: x\r\n")   # never finished
    return c

def slow_end(c, start):
    try:
        d = c.recv(100)
    except OSError:
        d = b"<timeout>"
    check("the idle connection is closed after the timeout (<= 15 s)",
          d != b"<timeout>" and time.time() - start < 15, (d, time.time() - start))

def main():
    cmd = sys.argv[1]
    a = sys.argv[7:]
    if cmd == "values": values(a[0].split(","), a[1], a[2])
    elif cmd == "spots": spots(a[0])
    elif cmd == "groups": groups(a[0])
    elif cmd == "categories": categories(a[0], a[1])
    elif cmd == "forms": forms(a[0])
    elif cmd == "pages": pages(int(a[0]))
    elif cmd == "pattern": pattern(a[0])
    elif cmd == "errors": errors()
    elif cmd == "big": big_header()
    elif cmd == "traversal": traversal(a[0])
    elif cmd == "static": static()
    elif cmd == "cors": cors()
    elif cmd == "concurrent": concurrent(int(a[0]))
    elif cmd == "limit": limit(int(a[0]))
    elif cmd == "slow":
        # a client that sends half a request and stops: input sent meanwhile is still stored
        # within 1 s, and the connection is closed once idle for the timeout
        start = time.time()
        c = slow_begin()
        time.sleep(0.2)
        sent = time.time()
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", a[0], "-q", "1", "-t", a[1],
                        "-m", a[2]], check=True)
        stored = None
        while time.time() - sent < 5:
            if rhash(prefix + "lot:" + a[3]).get("occupied") == a[4]:
                stored = time.time() - sent
                break
            time.sleep(0.02)
        check("input sent while a slow client holds a connection is stored within 1 s",
              stored is not None and stored < 1.0, stored)
        slow_end(c, start)
main()
EOF

HPORT=$(free_port)
MPORT=$(free_port)
mkdir -p "$T/web/sub" "$T/web/dir"
printf '<!doctype html><title>map</title>\n' >"$T/web/index.html"
for f in app.js style.css pic.png icon.svg data.json app.js.map; do echo "/* $f */" >"$T/web/$f"; done
echo TOPSECRET >"$T/secret.txt"
ln -s ../secret.txt "$T/web/link.txt"
export PARKD_WEB_ROOT="$T/web"

write_config "  - {id: C1, name: Broad Street, capacity: 100, source: count, lat: 52.4781, lon: -1.9086}
  - {id: B1, name: Bays, capacity: 5, source: bays, lat: 52.48, lon: -1.90}
  - {id: G1, capacity: 50, source: gates, lat: 52.47, lon: -1.91}
  - {id: N1, name: Nowhere, capacity: 30, source: count}
  - {id: S1, name: Stale, capacity: 20, source: count, stale_after: 60s, lat: 52.46, lon: -1.92}
  - {id: F1, name: Full, capacity: 10, source: count, lat: 52.45, lon: -1.93}
  - {id: Z1, name: Zoned, capacity: 10, source: bays, lat: 52.49, lon: -1.89,
     zones: [{id: L1, name: Level 1, capacity: 4, bays: [\"L1-*\"]},
             {id: L2, name: Level 2, capacity: 6, bays: [L2-1, L2-2]}],
     categories: {disabled: {capacity: 2, bays: [L1-1, L2-1]},
                  ev_charging: {capacity: 3, bays: [\"*-2\"]}, women: {capacity: 1, bays: [L2-2]}}}"
cat >>"$CFG" <<EOF
http:
  listen: "127.0.0.1:$HPORT"
  cors_origins: ["https://map.example"]
  max_connections: 256
  map: {mqtt_ws_url: "ws://127.0.0.1:9001"}
metrics:
  listen: "127.0.0.1:$MPORT"
EOF
parkd_start
check "startup logs the HTTP endpoint" 1 "$(grep -c "http: serving http://127.0.0.1:$HPORT/" "$PARKD_LOG")"
check "startup logs the metrics endpoint" 1 "$(grep -c "metrics: serving http://127.0.0.1:$MPORT/metrics" "$PARKD_LOG")"

n=$(now)
pub "$IN/C1/count" "{\"occupied\": 61, \"ts\": $n}"
pub "$IN/B1/bay/b1" 1
pub "$IN/B1/bay/b2" 0
pub "$IN/B1/bay/b3" 1
pub "$IN/G1/gate/g1" in
pub "$IN/G1/gate/g1" in
pub "$IN/N1/count" 7
pub "$IN/S1/count" "{\"occupied\": 3, \"ts\": $((n - 600))}"
pub "$IN/F1/count" "{\"free\": 0, \"ts\": $n}"
for b in L1-1:1 L1-2:0 L1-3:1 L2-1:0 L2-2:1; do pub "$IN/Z1/bay/${b%:*}" "${b#*:}"; done
settle
check_eventually "S1 is stale in Redis" "hget S1 stale" 1
check_eventually "G1 stored" "hget G1 occupied" 2
check_eventually "Z1's bays stored" "hget Z1 occupied" 3
sleep 1.2      # the next snapshot (each second) has everything Redis has

# api CHECK ARGS... — runs one check group of api.py; a crash of the helper is a failure too
api() {
    _c=$1; shift
    "$PY" "$T/api.py" "$_c" "$HPORT" "$REDIS_PORT" "$RP" "$SCHEMAS" "$OUT" "$@" >"$T/api.out" 2>&1
    _rc=$?
    report <"$T/api.out"
    [ "$_rc" -eq 0 ] || fail "api.py $_c runs to the end" "exit 0" "exit $_rc: $(tail -n 2 "$T/api.out")"
}
if "$PY" -c 'import jsonschema' 2>/dev/null; then
    api values C1,B1,G1,N1,S1,F1,Z1 S1 N1
    api spots B1
    api groups Z1
else
    fail "python3 jsonschema is installed (scripts/deps.sh: python3-jsonschema)" jsonschema nothing
fi
api categories Z1 C1
api forms C1
api pages 6
api pattern G1
api errors
api big
api traversal secret.txt
api static
api cors
api concurrent 200

# /metrics on both addresses
code=$(curl -s --max-time 3 -o "$T/m1" -w '%{http_code}' "http://127.0.0.1:$HPORT/metrics")
check "/metrics on http.listen: 200" 200 "$code"
check "/metrics on http.listen has the lots" 1 "$(grep -c '^parkd_lots 7$' "$T/m1")"
code=$(curl -s --max-time 3 -o "$T/m2" -w '%{http_code}' "http://127.0.0.1:$MPORT/metrics")
check "/metrics on metrics.listen: 200" 200 "$code"
check "metrics.listen serves no API" 404 "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/api/public/v3/parking-sites")"

api slow "$MQTT_PORT" "$IN/C1/count" "{\"occupied\": 62, \"ts\": $(now)}" C1 62
check "parkd still running" yes "$(parkd_alive && echo yes)"
parkd_stop
check "parkd exits 0" 0 "$PARKD_RC"

# --- one server for both, and max_connections ---------------------------------------------------
sed -i "s/listen: \"127.0.0.1:$MPORT\"/listen: \"127.0.0.1:$HPORT\"/; s/max_connections: 256/max_connections: 4/" "$CFG"
parkd_start
check "same address: metrics served by the HTTP server" 1 "$(grep -c "metrics: serving http://127.0.0.1:$HPORT/metrics" "$PARKD_LOG")"
check "same address: no second server (no listen error)" 0 "$(grep -c 'cannot listen' "$PARKD_LOG")"
check "same address: /metrics" 200 "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/metrics")"
check "same address: the API" 200 "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/api/public/v3/parking-sites")"
api limit 4
# a reload that changes http.* keeps the running server and says a restart is needed
sed -i 's|cors_origins: \["https://map.example"\]|cors_origins: ["https://other.example"]|' "$CFG"
kill -HUP "$PARKD_PID"
check_eventually "reload: http.cors_origins is start-only (logged)" \
    "grep -c 'reload: http.cors_origins changed; it is read at start only' '$PARKD_LOG'" 1
check "reload: the running server keeps its origins" "https://map.example" \
    "$(curl -s --max-time 3 -D - -o /dev/null -H 'Origin: https://map.example' "http://127.0.0.1:$HPORT/api/public/v3/parking-sites" | sed -n 's/^[Aa]ccess-[Cc]ontrol-[Aa]llow-[Oo]rigin: *//p' | tr -d '\r')"
rm "$T/web/index.html"
code=$(curl -s --max-time 3 -o "$T/idx" -w '%{http_code}' "http://127.0.0.1:$HPORT/")
check "no index.html: / is 404" 404 "$code"
check "no index.html: with a hint" 1 "$(grep -c 'PARKD_WEB_ROOT' "$T/idx")"
parkd_stop
check "parkd exits 0 (second run)" 0 "$PARKD_RC"
finish
