"""A meter that refuses one point loses that point only (nengjian.meters.poller.Unsupported and the
three bus drivers), on MicroPython: the real drivers, Bus and BusPoller, against a port that answers
like a meter lacking one register or data identifier. The refused point leaves the values, is listed
as unsupported, is announced once as a `point` event and is not asked again until its retry is due
(the test makes it due rather than waiting an hour); every other point keeps arriving each poll and
the meter stays online. A meter that answers only with refusals still fails its polls and goes
offline, and a refusal that says something about the meter's state (Modbus 04) fails the poll as
before.
"""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy

pytestmark = [pytest.mark.mpy]

# A port that answers each request at once with what `answer(request)` returns (None: silence), and
# a poll harness around one PolledMeter; each poll() returns what a test looks at.
HARNESS = r"""
import asyncio, json
from nengjian.bus.rs485 import Bus, Line
from nengjian.meters import poller
from nengjian.core.compat import ticks_add, ticks_ms

class Port:
    def __init__(self, answer):
        self.answer = answer
        self.reply = b""
        self.asked = []
    def configure(self, baud, bits, parity, stop):
        pass
    def de(self, on):
        pass
    def write(self, buf):
        req = bytes(buf)
        self.reply = self.answer(req) or b""
        return len(req)
    def txdone(self):
        return True
    def readinto(self, buf):
        n = min(len(self.reply), len(buf))
        for i in range(n):
            buf[i] = self.reply[i]
        self.reply = self.reply[n:]
        return n

def bcd(raw, n):
    out = bytearray(n)
    for i in range(n):
        out[i] = (raw % 10) | ((raw // 10 % 10) << 4)
        raw //= 100
    return bytes(out)

class Harness:
    def __init__(self, cfg, driver, answer):
        self.port = Port(answer)
        self.events = []
        self.values = None
        base = {"interval_s": 1, "timeout_ms": 60, "retries": 0, "gap_ms": 0, "fail_limit": 2, "backoff_s": 60}
        base.update(cfg)
        self.m = poller.PolledMeter(base, driver, Line(115200))
        self.p = poller.BusPoller(Bus("b0", self.port), [self.m], self._sink, self._event, lambda: True)
    def _sink(self, m, values, ts):
        self.values = dict((k, v.text()) for k, v in values.items())
    def _event(self, kind, text, code=None):
        self.events.append([kind, text])
    def poll(self):
        self.values = None
        self.port.asked = []
        n = len(self.events)
        ok = asyncio.run(self.p.poll_once(self.m))
        m = self.m
        return {"ok": ok, "values": self.values, "asked": self.port.asked, "events": self.events[n:],
                "unsupported": dict(getattr(m, "unsupported", {})), "offline": m.offline, "failures": m.failures,
                "exceptions": m.stats["exceptions"]}
    def retry_due(self):
        # the hour has passed: every refused unit is due again
        ref = getattr(self.m, "refusals", None)
        due = ref.due if ref is not None else {}
        for k in due:
            due[k] = ticks_add(ticks_ms(), -1)

def emit(label, r):
    print("R " + json.dumps([label, r]))
"""


def through_ledger(events: list) -> list[dict]:
    """The firmware's real `point` events as the crew's ledger (nengjian ledger) lists them."""
    from nengjian_host.crew import ledger

    t0 = 1_777_593_600
    return ledger.build([[3, t0 + 60 * i, kind, text] for i, (kind, text) in enumerate(events)])["unsupported_points"]


def run(script: str) -> dict:
    out = run_mpy(HARNESS + script, heap="256k").stdout
    res = {}
    for line in out.splitlines():
        if line.startswith("R "):
            label, r = json.loads(line[2:])
            res[label] = r
    return res


DLT645 = r"""
from nengjian.meters import dlt645_meter
ADDR = bytes([0x12, 0x90, 0x78, 0x56, 0x34, 0x12])  # 123456789012, lowest byte first
VALUES = {0x00010000: (123456, 4), 0x02010100: (2314, 2), 0x00020000: (700, 4)}
REFUSE = set([0x00020000])
ERROR = [0x02]  # the error byte: no such data

def frame(ctrl, plain):
    body = bytearray([0x68]) + ADDR + bytearray([0x68, ctrl, len(plain)])
    for b in plain:
        body.append((b + 0x33) & 0xFF)
    s = 0
    for b in body:
        s += b
    return bytes(body) + bytes([s & 0xFF, 0x16])

def answer(req):
    i = req.index(0x68)
    if req[i + 8] != 0x11:
        return None
    plain = bytes([(b - 0x33) & 0xFF for b in req[i + 10:i + 14]])
    di = plain[0] | plain[1] << 8 | plain[2] << 16 | plain[3] << 24
    h.port.asked.append("%08X" % di)
    if di in REFUSE or di not in VALUES:
        return frame(0xD1, bytes(ERROR))
    raw, n = VALUES[di]
    return frame(0x91, plain + bcd(raw, n))

prof = {"id": "p", "protocol": "dlt645-2007", "points": {
    "energy_kwh": {"di": "00010000"}, "voltage_a": {"di": "02010100"},
    "energy_reverse_kwh": {"di": "00020000"}}}
cfg = {"id": "e1", "address": "123456789012", "unsupported_retry_s": 900}
drv = dlt645_meter.Dlt645Meter(cfg, prof, ["energy_kwh", "energy_reverse_kwh", "voltage_a"])
h = Harness(cfg, drv, answer)
emit("first", h.poll())
emit("second", h.poll())
h.retry_due()
emit("retried", h.poll())
REFUSE.clear()  # the meter now holds the register
emit("not yet due", h.poll())
h.retry_due()
emit("answers", h.poll())
REFUSE.update(VALUES)  # every DI refused: only errors
emit("all refused 1", h.poll())
emit("all refused 2", h.poll())
"""


def test_dlt645_meter_that_lacks_one_data_identifier():
    r = run(DLT645)
    first = r["first"]
    assert first["ok"] and first["failures"] == 0 and not first["offline"]
    assert first["values"] == {"energy_kwh": "1234.56", "voltage_a": "231.4"}
    assert first["unsupported"] == {"energy_reverse_kwh": "meter error 0x02 no_such_data"}
    assert first["events"] == [["point", "meter e1 point energy_reverse_kwh unsupported: meter error 0x02 "
                                         "no_such_data; asked again every 900 s"]]  # the site's setting
    # not asked again before its retry is due; the others keep their schedule and values
    second = r["second"]
    assert second["asked"] == ["00010000", "02010100"] and second["events"] == []
    assert second["values"] == first["values"] and second["unsupported"] == first["unsupported"]
    # asked again when due, refused again: no second event
    assert "00020000" in r["retried"]["asked"] and r["retried"]["events"] == []
    assert r["retried"]["values"] == first["values"]
    assert "00020000" not in r["not yet due"]["asked"]
    answers = r["answers"]
    assert answers["values"] == {"energy_kwh": "1234.56", "voltage_a": "231.4", "energy_reverse_kwh": "7.00"}
    assert answers["unsupported"] == {}
    assert answers["events"] == [["point", "meter e1 point energy_reverse_kwh answers again"]]
    listed = through_ledger(first["events"] + answers["events"])
    assert [(x["meter"], x["point"], x["why"], x["open"]) for x in listed] == [
        ("e1", "energy_reverse_kwh", "meter error 0x02 no_such_data", False)]
    # a meter that refuses everything answers only with errors: failed polls, offline at fail_limit
    one, two = r["all refused 1"], r["all refused 2"]
    assert not one["ok"] and one["values"] is None and one["failures"] == 1 and one["exceptions"] == 1
    assert two["offline"] and any(k == "meter" and "offline" in t for k, t in two["events"])
    assert one["unsupported"] == {} and not any(k == "point" for k, _ in one["events"] + two["events"])


MODBUS = r"""
from nengjian.meters import modbus_meter
from nengjian.proto.crc import crc16
REGS = [0, 1234, 0, 5678, 0, 99, 0, 0, 0, 0, 42, 0]
REFUSE = set([4, 5])  # a tariff register this model lacks
EXC = [0]  # answer everything with this exception code (0: no)

def crc(body):
    c = crc16(body)
    return bytes(body) + bytes([c & 0xFF, c >> 8])

def answer(req):
    unit, fc, addr, count = req[0], req[1], req[2] << 8 | req[3], req[4] << 8 | req[5]
    h.port.asked.append([addr, count])
    if EXC[0]:
        return crc(bytes([unit, fc | 0x80, EXC[0]]))
    for r in range(addr, addr + count):
        if r in REFUSE or r >= len(REGS):
            return crc(bytes([unit, fc | 0x80, 2]))
    data = bytearray([unit, fc, 2 * count])
    for r in range(addr, addr + count):
        data.append(REGS[r] >> 8)
        data.append(REGS[r] & 0xFF)
    return crc(data)

prof = {"id": "p", "protocol": "modbus-rtu", "points": {
    "energy": {"fc": 3, "address": 0, "type": "u32", "decimals": 2},
    "reverse": {"fc": 3, "address": 2, "type": "u32", "decimals": 2},
    "tariff1": {"fc": 3, "address": 4, "type": "u32", "decimals": 2},
    "pf": {"fc": 3, "address": 10, "type": "u16", "decimals": 2}}}
cfg = {"id": "m1", "address": 1}
drv = modbus_meter.ModbusMeter(cfg, prof, ["energy", "reverse", "tariff1"])
h = Harness(cfg, drv, answer)
emit("plan", [[b.address, b.count] for b in drv.blocks])
emit("first", h.poll())
emit("second", h.poll())
h.retry_due()
emit("retried", h.poll())
EXC[0] = 4  # device failure: a state of the meter, not of the register
emit("device failure", h.poll())
EXC[0] = 0
emit("back", h.poll())

# a block that bridges unused registers the meter refuses to read, although each point answers
REFUSE.clear()
REFUSE.update([8])
drv2 = modbus_meter.ModbusMeter({"id": "m2", "address": 2}, prof, ["energy", "pf"])
h = Harness({"id": "m2", "address": 2}, drv2, answer)
emit("gap plan", [[b.address, b.count] for b in drv2.blocks])
emit("gap first", h.poll())
emit("gap second", h.poll())

# a meter that answers every request with exception 02: only errors, and no split
drv3 = modbus_meter.ModbusMeter({"id": "m3", "address": 3}, prof, ["energy", "reverse"])
h = Harness({"id": "m3", "address": 3}, drv3, answer)
EXC[0] = 2
emit("refuses all 1", h.poll())
emit("refuses all 2", h.poll())
EXC[0] = 0
emit("refuses all then answers", h.poll())
"""


def test_modbus_meter_that_lacks_one_register_in_a_block_read():
    r = run(MODBUS)
    assert r["plan"] == [[0, 6]]  # three points merged into one block read
    first = r["first"]
    # the block is refused (exception 02), then read point by point: only the tariff is lost
    assert first["asked"] == [[0, 6], [0, 2], [2, 2], [4, 2]]
    assert first["ok"] and first["failures"] == 0 and first["values"] == {"energy": "12.34", "reverse": "56.78"}
    assert first["unsupported"] == {"tariff1": "modbus exception 2 (illegal data address)"}
    assert first["events"] == [["point", "meter m1 point tariff1 unsupported: modbus exception 2 (illegal data "
                                         "address); asked again every 3600 s"]]
    assert through_ledger(first["events"])[0]["why"] == "modbus exception 2 (illegal data address)"
    second = r["second"]
    assert second["asked"] == [[0, 2], [2, 2]]  # split for good; the refused register is left alone
    assert second["values"] == first["values"] and second["events"] == []
    assert r["retried"]["asked"] == [[0, 2], [2, 2], [4, 2]] and r["retried"]["events"] == []
    # exception 04 is no refusal of a point: the poll fails as before, nothing more is unsupported
    failure = r["device failure"]
    assert not failure["ok"] and failure["exceptions"] == 1 and failure["unsupported"] == first["unsupported"]
    assert r["back"]["ok"] and r["back"]["values"] == first["values"]

    # the planner bridged registers 2..9; the meter refuses that read, but each point answers alone
    assert r["gap plan"] == [[0, 11]]
    gap = r["gap first"]
    assert gap["asked"] == [[0, 11], [0, 2], [10, 1]] and gap["values"] == {"energy": "12.34", "pf": "0.42"}
    assert gap["unsupported"] == {} and gap["events"] == []
    assert r["gap second"]["asked"] == [[0, 2], [10, 1]]

    # exception 02 to everything: the meter answers only with errors
    one, two, back = r["refuses all 1"], r["refuses all 2"], r["refuses all then answers"]
    assert not one["ok"] and one["asked"] == [[0, 4], [0, 2], [2, 2]] and one["unsupported"] == {}
    assert two["offline"] and not any(k == "point" for k, _ in one["events"] + two["events"])
    # it was not split: answering again, it is read in one block
    assert back["ok"] and back["asked"] == [[0, 4]] and back["values"] == {"energy": "12.34", "reverse": "56.78"}


CJT188 = r"""
from nengjian.meters import cjt188_meter
ADDR = bytes([0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78])  # 78330011223344, lowest byte first
MODE = ["short"]  # short: the reply ends after the current flow; full; abnormal

def frame(ctrl, data):
    body = bytearray([0x68, 0x10]) + ADDR + bytearray([ctrl, len(data)]) + data
    s = 0
    for b in body:
        s += b
    return bytes(body) + bytes([s & 0xFF, 0x16])

def answer(req):
    i = req.index(0x68)
    di_ser = req[i + 11:i + 14]
    h.port.asked.append(MODE[0])
    if MODE[0] == "abnormal":
        return frame(0xC1, bytes([di_ser[2], 0x00, 0x00]))
    data = bytes(di_ser) + bcd(1725, 4) + bytes([0x2C])
    if MODE[0] == "full":
        data += bcd(1500, 4) + bytes([0x2C]) + bytes(7) + bytes(2)
    return frame(0x81, data)

prof = {"id": "p", "protocol": "cjt188", "meter_type": "cold_water", "points": {
    "volume_m3": {"field": "flow", "unit": "m3"}, "settle_volume_m3": {"field": "settle_flow", "unit": "m3"}}}
cfg = {"id": "w1", "address": "78330011223344"}
drv = cjt188_meter.Cjt188Meter(cfg, prof, ["settle_volume_m3", "volume_m3"])
h = Harness(cfg, drv, answer)
emit("short 1", h.poll())
emit("short 2", h.poll())
MODE[0] = "full"
emit("full", h.poll())
MODE[0] = "abnormal"
emit("abnormal 1", h.poll())
emit("abnormal 2", h.poll())
"""


def test_cjt188_meter_whose_reply_lacks_a_field_and_one_that_answers_abnormally():
    r = run(CJT188)
    one, two = r["short 1"], r["short 2"]
    assert one["ok"] and one["failures"] == 0 and one["values"] == {"volume_m3": "17.25"}
    assert one["unsupported"] == {"settle_volume_m3": "reply has no settle_flow"}
    assert one["events"] == [["point", "meter w1 point settle_volume_m3 unsupported: reply has no settle_flow; "
                                       "checked in every reply"]]
    assert two["ok"] and two["values"] == one["values"] and two["events"] == []
    full = r["full"]
    assert full["values"] == {"volume_m3": "17.25", "settle_volume_m3": "15.00"} and full["unsupported"] == {}
    assert full["events"] == [["point", "meter w1 point settle_volume_m3 answers again"]]
    listed = through_ledger(one["events"])
    assert [(x["meter"], x["point"], x["why"], x["open"]) for x in listed] == [
        ("w1", "settle_volume_m3", "reply has no settle_flow", True)]
    # the abnormal reply refuses the one 901F read, every point at once: the meter answered only with
    # an error, so the poll fails and the meter goes offline as a silent one does
    a1, a2 = r["abnormal 1"], r["abnormal 2"]
    assert not a1["ok"] and a1["exceptions"] == 1 and a1["unsupported"] == {}
    assert a2["offline"] and not any(k == "point" for k, _ in a1["events"] + a2["events"])


BOOKKEEPING = r"""
import micropython
ref = poller.Unsupported({})
unit = object()
points = [("energy", 0)]
out = {"energy": 1}
def normal_read():
    ref.begin()
    skipped = ref.skip(unit)
    ref.answered(unit, points)
    ref.end(out)
    return skipped
normal_read()
micropython.heap_lock()
try:
    for _ in range(3):
        normal_read()
    locked = "ok"
except MemoryError:
    locked = "allocated"
micropython.heap_unlock()
print("R " + json.dumps(["locked", locked]))
"""


def test_the_bookkeeping_allocates_nothing_while_every_point_answers():
    assert run(BOOKKEEPING)["locked"] == "ok"
