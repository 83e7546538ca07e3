"""Refill from a DL/T 645 meter's memory (firmware/nengjian/meters/refill.py), on MicroPython: which
missed boundaries are planned from which freeze, a freeze whose time read back is not its boundary
is not used, a meter clock too far off uses none, and refilled values carry their own quality
(never an estimate's)."""

import json

import pytest
from mpyrun import run_mpy

pytestmark = pytest.mark.mpy

PRELUDE = r"""
import asyncio, json
from nengjian.core import records, timeutil
from nengjian.core.decimal import Decimal
from nengjian.meters import refill, memwatch, dlt645_meter, profile
from nengjian.values import intervals

PROF = profile.load(PROFILE_DIR, "dlt645-2007-generic")
MEM = PROF["memory"]
MID = timeutil.timestamp(2026, 12, 1, 16, 0)  # 2026-12-02 00:00 CST
H = 3600


def dec(x):
    return Decimal(int(round(x * 100)), -2)


class Store:
    def __init__(self):
        self.recs = []
    def append(self, rec):
        self.recs.append(rec)
        return len(self.recs)


class Gw:
    def __init__(self, period, estimate=False):
        self.store = Store()
        self.events = []
        self.values = []
        items = [{"code": "00-00-0000-023300-11", "meter": "e1", "point": "energy_kwh", "scope": 1,
                  "estimate": estimate}]
        self.items_by_point = {("e1", "energy_kwh"): [0]}
        self.intervals = intervals.Intervals(items, period, self.values.append, self.event, {})
    def event(self, kind, text, code=None):
        self.events.append((kind, text))


def kwh(ts):
    # the meter's counter: 1000 kWh at MID - 12 h, 10 kWh an hour
    return 1000 + (ts - (MID - 12 * H)) * 10 / H


class FakeMeterMemory:
    # What a meter answers for the memory DIs, from its own clock (offset) and freezes by the
    # boundary they stand for; `wrong` boundaries read back another freeze time.
    def __init__(self, now, offset=0, wrong=()):
        self.now = now
        self.offset = offset
        self.wrong = wrong
        self.asked = []

    def value(self, di):
        self.asked.append(di)
        if di == 0x04000101 or di == 0x04000102:
            t = timeutil.civil(self.now + self.offset + timeutil.CST_OFFSET)
            if di == 0x04000101:
                return bytes([3, int("%d" % t[2], 16), int("%d" % t[1], 16), int("%d" % (t[0] % 100), 16)])
            return bytes([int("%d" % t[5], 16), int("%d" % t[4], 16), int("%d" % t[3], 16)])
        kind = (di >> 16) & 0xFF
        n = di & 0xFF
        step = H if kind == 4 else 86400
        b = timeutil.slot_start(self.now + self.offset, step) - (n - 1) * step
        if (di >> 8) & 0xFF == 0:
            shown = b + 60 if b in self.wrong else b
            t = timeutil.civil(shown + timeutil.CST_OFFSET)
            return bytes([int("%d" % t[4], 16), int("%d" % t[3], 16), int("%d" % t[2], 16), int("%d" % t[1], 16),
                          int("%d" % (t[0] % 100), 16)])
        raw = int(round(kwh(b) * 100))
        out = bytearray(4)
        for k in range(4):
            out[k] = int("%d" % (raw % 100), 16)
            raw //= 100
        return bytes(out)


def driver(mem):
    drv = dlt645_meter.Dlt645Meter({"id": "e1", "address": "123456789012"}, PROF, ["energy_kwh"])
    async def read_di(bus, line, timeout_ms, gap_ms, di):
        v = mem.value(di)
        for k in range(len(v)):
            drv.value[k] = v[k]
        return len(v)
    drv.read_di = read_di
    return drv


def run_refill(gw, last, now, offset=0, wrong=()):
    # one reading before the gap, then the refill as a read after the gap runs it, then the live one
    gw.intervals.feed(0, last, dec(kwh(last)))
    timeutil.set_source(lambda: now)
    mem = FakeMeterMemory(now, offset, wrong)
    drv = driver(mem)
    w = memwatch.Watch(gw, drv, {"clock_max_drift_s": 0}, "bus0", lambda: True)
    asyncio.run(w.after(None, None, 100, 0))
    mem.status = w.status()  # what the console's status shows of it
    gw.intervals.feed(0, now, dec(kwh(now)))
    return mem
"""


def _run(body: str) -> dict:
    from nengjian_host.common import paths

    code = "PROFILE_DIR = %r\n" % str(paths.PROFILES) + PRELUDE + body
    out = run_mpy(code, heap="320k").stdout
    return json.loads(out.strip().splitlines()[-1])


def test_plan_takes_hourly_freezes_for_hours_and_the_daily_one_for_midnight():
    got = _run(r"""
last = MID - 6 * H + 200      # 18:03:20 CST, a 15-minute site
now = MID + 3 * H + 300       # 03:05 the next day
p = refill.plan(last, now, 900, 120, MEM, 0)
print(json.dumps({"plan": [[b - MID, k, n] for b, k, n in p],
                  "behind": [[b - MID, k, n] for b, k, n in refill.plan(last, now, 900, 120, MEM, -400)],
                  "shallow": [[b - MID, k, n] for b, k, n in refill.plan(
                      last, now, 3600, 120, {"hourly": {"depth": 2}, "daily": {"depth": 62}}, 0)]}))
""")
    H = 3600
    # quarter hours are not planned (the meter freezes hourly); 00:00 from the daily freeze, n = 1
    want = [[b, 0, 4 - b // H] for b in range(-5 * H, 0, H)] + [[0, 1, 1]] + [[b, 0, 4 - b // H]
                                                                               for b in range(H, 4 * H, H)]
    assert got["plan"] == want
    # a meter 400 s behind has not frozen 03:00 yet by its clock: everything one freeze nearer
    assert got["behind"][-1] == [2 * H, 0, 1] and [3 * H, 0, 1] not in got["behind"]
    # only as deep as the meter keeps: two hourly freezes; midnight still from the daily one
    assert got["shallow"] == [[0, 1, 1], [2 * H, 0, 2], [3 * H, 0, 1]]


def test_month_boundary_beyond_the_daily_depth_comes_from_settlement():
    got = _run(r"""
first = timeutil.timestamp(2026, 11, 30, 16, 0)  # 2026-12-01 00:00 CST
mem = {"daily": {"depth": 3}, "settlement": {"depth": 12}}
p = refill.plan(first - 86400 + 5, first + 20 * 86400 + 3600, 86400, 120, mem, 0)
print(json.dumps([[b - first, k, n] for b, k, n in p]))
""")
    assert got == [[0, 2, 1], [18 * 86400, 1, 3], [19 * 86400, 1, 2], [20 * 86400, 1, 1]]


def test_refilled_values_are_exact_flagged_and_a_wrong_freeze_time_is_not_used():
    got = _run(r"""
gw = Gw(3600)
last = MID - 3 * H + 30
now = MID + 3 * H + 30
mem = run_refill(gw, last, now, offset=20, wrong=(MID + H,))
vals = [[v[3], v[4] - MID, v[5].text(), v[6], len(v) > records.V_QUALITY and v[records.V_QUALITY]] for v in gw.values]
reads = [[r[1] - MID, r[4].text(), r[5]] for r in gw.store.recs if r[0] == records.READING]
st = mem.status
print(json.dumps({"values": vals, "reads": reads, "events": gw.events,
                  "status": [st["refills"], st["refilled_at"] - now, st["clock_set_day"]]}))
""")
    H = 3600
    assert got["status"] == [1, 0, None]  # one refill, at the read after the gap; the clock never set
    # 01:00 read back as 01:01: not used, so the values around it are missing, not invented
    # (03:00 is the live reading's: the refill stops at the last boundary without one)
    assert [r[0] for r in got["reads"]] == [-2 * H, -H, 0, 2 * H]
    assert all(r[2] == 2 for r in got["reads"])
    rt = [(v[1], v[2], v[3], v[4]) for v in got["values"] if v[0] == 0]
    # (the first and last boundaries are the polled readings, 30 s after them: 0.08 kWh)
    assert rt == [(-3 * H, "9.92", True, 2), (-2 * H, "10.00", True, 2), (-H, "10.00", True, 2),
                  (2 * H, "10.08", True, 2)]
    assert any(k == "refill" and "hourly freeze 3 reads 2026-12-02 01:01, not 2026-12-02 01:00: not used" in t
               for k, t in got["events"])
    assert any(k == "refill" and "4 of 5 missed boundary reading(s)" in t and "meter clock +20 s" in t
               for k, t in got["events"]), got["events"]


def test_a_meter_clock_off_past_the_tolerance_refills_nothing():
    got = _run(r"""
gw = Gw(3600)
mem = run_refill(gw, MID - 3 * H + 30, MID + 3 * H + 30, offset=600)
print(json.dumps({"reads": len([r for r in gw.store.recs if r[0] == records.READING]), "asked": len(mem.asked),
                  "events": gw.events, "values": len(gw.values)}))
""")
    assert got["reads"] == 0 and got["asked"] == 2 and got["values"] == 0
    assert any("meter clock off by 600 s" in t for _k, t in got["events"])


def test_estimates_between_refilled_hours_stay_estimates():
    got = _run(r"""
gw = Gw(900, estimate=True)
mem = run_refill(gw, MID - 2 * H + 30, MID + 30)
vals = [[v[4] - MID, v[6], len(v) > records.V_QUALITY] for v in gw.values if v[3] == 0]
print(json.dumps(vals))
""")
    # quarter hours between the refilled hours are estimates: invalid and without the refill mark;
    # no 15-minute value rests on two refilled boundaries (they are an hour apart)
    assert got and all(v[1] is False and v[2] is False for v in got)


def test_no_gap_no_request():
    got = _run(r"""
gw = Gw(900)
mem = run_refill(gw, MID + 30, MID + 90)
print(json.dumps(len(mem.asked)))
""")
    assert got == 0


def test_the_refill_and_the_frozen_data_fields_are_dropped_when_it_is_done():
    # A refill is rare: neither its code nor the frozen-data fields it read stay in the heap.
    got = _run(r"""
import sys
gw = Gw(3600)
run_refill(gw, MID - 3 * H + 30, MID + 3 * H + 30)
print(json.dumps([len(gw.values), sorted(m for m in sys.modules if m.startswith("nengjian.")
                                         and m.rpartition(".")[2] in ("refill", "meterclock", "dlt645_frozen"))]))
""")
    assert got[0] > 0 and got[1] == []
