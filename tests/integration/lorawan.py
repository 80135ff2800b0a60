#!/usr/bin/env python3
"""lorawan.py - uplinks of LoRaWAN network servers for t90/t91 (SPEC §9), a QoS 1 stream
publisher that survives a broker restart, and the reference model of the final bay states.

  lorawan.py ttn DEVICE_ID DEV_EUI F_CNT DECODED_JSON EPOCH_MS [options]
      one The Things Stack v3 uplink (the "Uplink message example" of the TTS data formats page,
      as in tests/unit/test_uplink.c): F_CNT 0 is omitted like TTN does; DECODED_JSON "-" leaves
      decoded_payload out (no payload formatter). --gw 2: heard by the second gateway (other
      rx_metadata). --no-up-time: no uplink_message.received_at (the top-level one, EPOCH_MS +
      225 ms, is then the event time). --gateways K: heard by K gateways (K rx_metadata entries).
  lorawan.py ttn-join DEVICE_ID DEV_EUI EPOCH_MS       a join message (no uplink_message)
  lorawan.py cs DEV_EUI F_CNT OBJECT_JSON EPOCH_MS     one ChirpStack v4 "up" event (OBJECT_JSON "-": no
      object; --gateways K: K rxInfo entries)
  lorawan.py cs-status DEV_EUI EPOCH_MS                a ChirpStack v4 "status" event
  lorawan.py stream [options]                          publishes a deterministic stream (below)
  lorawan.py model [--extra "LOT BAY EPOCH_MS 0|1"]... DEVICES_CSV:EVENTS_LOG...
      the reference model: every event of each log mapped through its devices file, plus the
      extra bay events; per bay the state of the latest event time wins. Prints "bay LOT BAY S"
      and "lot LOT occupied N" lines, sorted.

The stream: message i (0 <= i < N) is an uplink of device k (the devices of --devices,
"DEVICE_ID:DEV_EUI" comma separated, "-" for none), its r-th: --order robin, k = i % D and
r = i // D; --order block, each device's N / D uplinks one after the other (so that the latest
uplink of some device is never far from any point of the stream, and a lost one shows in the
final state). Its frame counter is F0 + r, its event time T0_MS + i * STEP_MS, its state
(r + k) % 2: alternating per device. Each
message published is logged (--log) as "DEVICE_ID DEV_EUI EPOCH_MS 0|1" ("-" for none), before
it is sent. The
publisher is a minimal MQTT 3.1.1 client (no third-party module): QoS 1, at most --rate
messages a second; when the connection drops (the broker restarts) it reconnects for up to 60 s
and re-sends every message not yet acknowledged, then goes on. It prints "mark K" once K
messages are sent (--mark-at K) and "done N resent R" when every message has its PUBACK.
"""
import argparse
import datetime
import json
import os
import select
import socket
import struct
import sys
import time


def iso_ms(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


GATEWAYS = {
    1: {"gateway_ids": {"gateway_id": "gtw1", "eui": "9C5C8E00001A05C4"},
        "timestamp": 2463457000, "rssi": -35, "channel_rssi": -35, "snr": 5,
        "uplink_token": "ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=", "channel_index": 2},
    2: {"gateway_ids": {"gateway_id": "gtw2", "eui": "B827EBFFFE8D5B0A"},
        "timestamp": 117804212, "rssi": -97, "channel_rssi": -97, "snr": -4.25,
        "uplink_token": "ChIKEAoEZ3R3MhIIuCfr//6NWwoQ", "channel_index": 5},
}


def ttn_ids(dev, eui):
    ids = {"device_id": dev, "application_ids": {"application_id": "app1"}}
    if eui:
        ids["dev_eui"] = eui
    ids["join_eui"] = "800000000000000C"
    ids["dev_addr"] = "00BCB929"
    return ids


def ttn_uplink(dev, eui, fcnt, decoded, ms, gw=1, up_time=True, gateways=1):
    rx = dict(GATEWAYS[gw])
    rx["time"] = iso_ms(ms - 2)
    rxs = [rx] + [dict(rx, gateway_ids={"gateway_id": "gtw-x%d" % k, "eui": "B827EBFFFE8D5C%02X" % k},
                       rssi=-90 - k, channel_rssi=-90 - k, snr=-k / 4.0) for k in range(1, gateways)]
    um = {"session_key_id": "AXA50tHUGUucuzS/bCGMNw==", "f_port": 1}
    if fcnt:
        um["f_cnt"] = fcnt          # "empty fields are omitted": no f_cnt when it is 0
    um["frm_payload"] = "AQ=="
    if decoded is not None:
        um["decoded_payload"] = decoded
    um["rx_metadata"] = rxs
    um["settings"] = {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
                      "data_rate_index": 5, "coding_rate": "4/6", "frequency": "868300000",
                      "timestamp": rx["timestamp"], "time": iso_ms(ms - 2)}
    if up_time:
        um["received_at"] = iso_ms(ms)
    um["consumed_airtime"] = "0.056576s"
    return {"end_device_ids": ttn_ids(dev, eui),
            "correlation_ids": ["as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
                                "gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE"],
            "received_at": iso_ms(ms + 225),
            "uplink_message": um}


def ttn_join(dev, eui, ms):
    return {"end_device_ids": ttn_ids(dev, eui),
            "correlation_ids": ["as:up:01E191YN5F2HMBQCBCVRF731VY"],
            "received_at": iso_ms(ms + 200),
            "join_accept": {"session_key_id": "AXBSH1Pk6Z0G166RlH16CQ==", "received_at": iso_ms(ms)}}


def cs_info(eui):
    return {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "ChirpStack",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "applicationName": "Test application",
            "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
            "deviceProfileName": "Test device-profile", "deviceName": "Test device",
            "devEui": eui, "tags": {"key": "value"}}


def cs_uplink(eui, fcnt, obj, ms, gateways=1):
    m = {"deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d", "time": iso_ms(ms),
         "deviceInfo": cs_info(eui), "devAddr": "00189440", "dr": 1}
    if fcnt:
        m["fCnt"] = fcnt            # the protobuf JSON mapping omits a zero
    m["fPort"] = 1
    m["data"] = "AQ=="
    if obj is not None:
        m["object"] = obj
    m["rxInfo"] = [{"gatewayId": "0016c001f153a1%02x" % (0x4c + k), "uplinkId": 4217106255 + k,
                    "rssi": -36 - k, "snr": 10.5 - k, "context": "E3OWOQ==",
                    "metadata": {"region_name": "eu868", "region_common_name": "EU868"}}
                   for k in range(gateways)]
    m["txInfo"] = {"frequency": 867100000, "modulation": {"lora": {
        "bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}}}
    return m


def cs_status(eui, ms):
    return {"deduplicationId": "bf2a9746-1c8b-49be-a92e-f0b89c8534e4", "time": iso_ms(ms),
            "deviceInfo": cs_info(eui), "margin": 10, "batteryLevel": 88.3}


def dump(m):
    return json.dumps(m, separators=(",", ":"))


# ---- MQTT 3.1.1, QoS 1 publisher --------------------------------------------------------------

def _remaining(n):
    out = b""
    while True:
        b, n = n % 128, n // 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _str(b):
    return struct.pack("!H", len(b)) + b


def _packet(kind, body):
    return bytes([kind]) + _remaining(len(body)) + body


class Conn:
    def __init__(self, host, port, client_id, user, password):
        self.s = socket.create_connection((host, port), timeout=5)
        flags = 0x02 | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
        body = _str(b"MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + _str(client_id.encode())
        if user is not None:
            body += _str(user.encode())
        if password is not None:
            body += _str(password.encode())
        self.s.sendall(_packet(0x10, body))
        self.buf = b""
        kind, body = self.read(5)
        if kind is None or kind >> 4 != 2 or body[1] != 0:
            raise OSError("CONNACK refused: %r" % (body,))
        self.s.setblocking(False)

    def read(self, timeout):
        """One packet, (kind, body); (None, None) when none arrives within TIMEOUT."""
        end = time.time() + timeout
        while True:
            p = self._take()
            if p:
                return p
            left = end - time.time()
            if left <= 0:
                return None, None
            r, _, _ = select.select([self.s], [], [], left)
            if r:
                try:
                    d = self.s.recv(65536)
                except BlockingIOError:
                    continue
                if not d:
                    raise OSError("connection closed")
                self.buf += d

    def _take(self):
        if len(self.buf) < 2:
            return None
        mult, n, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(self.buf) < i + n:
            return None
        kind, body = self.buf[0], self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        return kind, body

    def send(self, data):
        self.s.setblocking(True)
        try:
            self.s.sendall(data)
        finally:
            self.s.setblocking(False)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def stream_messages(a):
    devs = [d.split(":") for d in a.devices.split(",")]
    per = max(1, a.n // len(devs))
    for i in range(a.n):
        if a.order == "block":      # each device's uplinks one after the other
            k, round_ = min(i // per, len(devs) - 1), i - min(i // per, len(devs) - 1) * per
        else:                       # round robin over the devices
            k, round_ = i % len(devs), i // len(devs)
        dev, eui = devs[k][0], (devs[k][1] if len(devs[k]) > 1 else "")
        dev = "" if dev == "-" else dev
        fcnt = a.fcnt0 + round_
        ms = a.t0_ms + i * a.step_ms
        occ = (round_ + k) % 2
        if a.format == "ttn":
            topic = "v3/app1@ttn/devices/%s/up" % dev
            msg = ttn_uplink(dev, eui, fcnt, {"occupied": bool(occ), "battery": 3.6}, ms,
                             gw=1 + i % 2)
        else:
            topic = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/%s/event/up" % eui.lower()
            msg = cs_uplink(eui.lower(), fcnt, {"status": "occupied" if occ else "free"}, ms)
        yield topic, dump(msg).encode(), (dev if a.format == "ttn" and dev else "-"), (eui or "-"), ms, occ


def cmd_stream(a):
    msgs = list(stream_messages(a))
    log = open(a.log, "w") if a.log else None
    marks = set(a.mark_at or [])
    unacked = {}          # packet id -> index
    next_i, pid, resent = 0, 0, 0
    conn = None
    t_start = time.time()

    def connect():
        end = time.time() + 60
        while True:
            try:
                return Conn(a.host, a.port, a.client_id, a.user, a.password)
            except OSError as e:
                if time.time() > end:
                    sys.exit("cannot reconnect: %s" % e)
                time.sleep(0.1)

    def publish(i, dup):
        topic, payload = msgs[i][0], msgs[i][1]
        pid_ = i % 65535 + 1
        conn.send(_packet(0x32 | (0x08 if dup else 0), _str(topic.encode()) + struct.pack("!H", pid_) + payload))
        return pid_

    conn = connect()
    while next_i < len(msgs) or unacked:
        try:
            if next_i < len(msgs) and len(unacked) < 200 and \
                    time.time() >= t_start + next_i / a.rate:
                if log:
                    log.write("%s %s %d %d\n" % msgs[next_i][2:])
                    log.flush()
                unacked[publish(next_i, False)] = next_i
                next_i += 1
                if next_i in marks:
                    print("mark %d" % next_i, flush=True)
                continue
            if next_i >= len(msgs) or len(unacked) >= 200:
                wait = 0.2
            else:
                wait = max(0.0, t_start + next_i / a.rate - time.time())
            kind, body = conn.read(min(wait, 0.2))
            if kind is not None and kind >> 4 == 4:
                unacked.pop(struct.unpack("!H", body[:2])[0], None)
        except OSError:
            conn.close()
            conn = connect()
            for p in sorted(unacked, key=lambda q: unacked[q]):
                publish(unacked[p], True)
                resent += 1
    conn.send(bytes([0xE0, 0]))
    conn.close()
    print("done %d resent %d" % (len(msgs), resent), flush=True)


# ---- reference model --------------------------------------------------------------------------

def cmd_model(a):
    latest = {}           # (lot, bay) -> (ms, state)

    def event(lot, bay, ms, s):
        old = latest.get((lot, bay))
        if old is None or ms > old[0]:
            latest[(lot, bay)] = (ms, s)

    def key(d):
        return d.upper() if len(d) == 16 and all(c in "0123456789abcdefABCDEF" for c in d) else d

    for spec in a.logs:
        devfile, logfile = spec.split(":", 1)
        mapping = {}
        for line in open(devfile):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            d, lot, bay = [f.strip() for f in line.split(",")]
            mapping[key(d)] = (lot, bay)
        for line in open(logfile):
            dev, eui, ms, s = line.split()
            # like dev_find: by DevEUI first, then by device id
            where = mapping.get(key(eui)) if eui != "-" else None
            if where is None and dev != "-":
                where = mapping.get(dev)
            if where is None:
                sys.exit("model: device %s/%s is not in %s" % (dev, eui, devfile))
            event(where[0], where[1], int(ms), int(s))
    for x in a.extra or []:
        lot, bay, ms, s = x.split()
        event(lot, bay, int(ms), int(s))
    out = []
    occupied = {}
    for (lot, bay), (ms, s) in latest.items():
        out.append("bay %s %s %d" % (lot, bay, s))
        occupied[lot] = occupied.get(lot, 0) + s
    for lot, n in occupied.items():
        out.append("lot %s occupied %d" % (lot, n))
    print("\n".join(sorted(out)))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("ttn")
    t.add_argument("dev"); t.add_argument("eui"); t.add_argument("fcnt", type=int)
    t.add_argument("decoded"); t.add_argument("ms", type=int)
    t.add_argument("--gw", type=int, default=1); t.add_argument("--no-up-time", action="store_true")
    t.add_argument("--gateways", type=int, default=1)
    j = sub.add_parser("ttn-join")
    j.add_argument("dev"); j.add_argument("eui"); j.add_argument("ms", type=int)
    c = sub.add_parser("cs")
    c.add_argument("eui"); c.add_argument("fcnt", type=int); c.add_argument("obj"); c.add_argument("ms", type=int)
    c.add_argument("--gateways", type=int, default=1)
    cst = sub.add_parser("cs-status")
    cst.add_argument("eui"); cst.add_argument("ms", type=int)
    s = sub.add_parser("stream")
    s.add_argument("--host", default="127.0.0.1"); s.add_argument("--port", type=int, required=True)
    s.add_argument("-u", "--user"); s.add_argument("-P", "--password")
    s.add_argument("--client-id", default="lw-stream-%d" % os.getpid())
    s.add_argument("--format", choices=["ttn", "cs"], required=True)
    s.add_argument("--devices", required=True)
    s.add_argument("-n", type=int, default=300)
    s.add_argument("--fcnt0", type=int, default=1)
    s.add_argument("--t0-ms", type=int, required=True)
    s.add_argument("--step-ms", type=int, default=1000)
    s.add_argument("--rate", type=float, default=50)
    s.add_argument("--order", choices=["robin", "block"], default="robin")
    s.add_argument("--mark-at", type=int, action="append")
    s.add_argument("--log")
    m = sub.add_parser("model")
    m.add_argument("--extra", action="append")
    m.add_argument("logs", nargs="*")
    a = p.parse_args()
    if a.cmd == "ttn":
        dec = None if a.decoded == "-" else json.loads(a.decoded)
        print(dump(ttn_uplink(a.dev, a.eui, a.fcnt, dec, a.ms, a.gw, not a.no_up_time, a.gateways)))
    elif a.cmd == "ttn-join":
        print(dump(ttn_join(a.dev, a.eui, a.ms)))
    elif a.cmd == "cs":
        print(dump(cs_uplink(a.eui, a.fcnt, None if a.obj == "-" else json.loads(a.obj), a.ms,
                             a.gateways)))
    elif a.cmd == "cs-status":
        print(dump(cs_status(a.eui, a.ms)))
    elif a.cmd == "stream":
        cmd_stream(a)
    else:
        cmd_model(a)


if __name__ == "__main__":
    main()
