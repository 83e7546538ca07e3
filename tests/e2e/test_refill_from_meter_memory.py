"""Refill from the meter's memory, end to end on the sim board: a DL/T 645-2007 meter with its own
clock keeps hourly and daily freezes; the gateway is off for most of a day and then has a 6-hour
power cut across midnight, and the platform still gets every hourly real-time value and the day
value, exact to the meter's frozen readings, uploaded in order; the ledger tells each refill, and
the meter's clock, 90 s fast, is set once by broadcast time sync.

Time: the gateway's RTC, the platform's clock and the meter's all run SPEED x from one host clock,
and jump while the gateway is off (its RTC is set from the environment at each boot), so a cut of
hours costs no wait. Hourly real-time values (SPEC section 2 allows 1 h): a 15-minute site refills
only the hours from hourly freezes (tests/firmware/meters/test_refill.py).
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from nengjian.core.records import REFILLED  # a reading taken back from the meter's freezes, and its values
from nengjian_host.crew import ledger
from nengjian_host.sim.gateway import SimGateway, demo_site
from nengjian_host.sim.meters import Dlt645Meter, SimBus
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.wire import PtyWire
from simrig import nengjian, readings_from_console, wait_on

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEED = 60  # a reading every real second is one every simulated minute: within the 2-minute tolerance
PERIOD = 3600
CST = timezone(timedelta(hours=8))
H = 3600
ADDR = "123456789012"
CODE = "00-00-0000-023300-11"
# As the other DL/T 645 sites on the sim: compiled code sits in the heap here (frozen in flash on an
# ESP32), and the DL/T 645 driver, refill and meter clock modules come on top of a Modbus-only site.
HEAP = "384k"


class JumpClock:
    """Simulated UTC seconds: SPEED x host time, plus jumps made while the gateway is off."""

    def __init__(self, start: float):
        self.t0 = time.time()
        self.s0 = start
        self.jumped = 0.0

    def __call__(self) -> float:
        return self.s0 + self.jumped + (time.time() - self.t0) * SPEED

    def env(self) -> dict:
        return {"NJ_CLOCK_SPEED": SPEED, "NJ_CLOCK_T0": repr(self.t0), "NJ_CLOCK_S0": repr(self.s0 + self.jumped)}

    def jump_to(self, ts: float) -> None:
        self.jumped += ts - self()


def cst(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=CST).timestamp())


def cst_text(ts: int) -> str:
    return datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def parts(tmp_path):
    clock = JumpClock(cst("2026-12-01 23:45"))
    wire = PtyWire().start()
    meter = Dlt645Meter(ADDR, {0x00010000: "5000.00"}, rates={0x00010000: "0.01"}, clock=clock, memory=True,
                        clock_offset=90.0)
    bus = SimBus(wire.meters_path, [meter]).__enter__()
    platform = RefPlatform(db_path=str(tmp_path / "platform.sqlite"), period_s=PERIOD, clock=clock).start()
    gw = SimGateway(tmp_path / "gw", {0: wire.gateway_path}, heap=HEAP, env=clock.env())
    cfg = demo_site(platform.url + "/api/register", units=(1,), period_s=PERIOD, interval_s=1)
    cfg["meters"] = [{"id": "e1", "bus": "bus0", "profile": "dlt645-2007-generic", "address": ADDR,
                      "interval_s": 1, "timeout_ms": 600}]
    cfg["items"] = [{"code": CODE, "meter": "e1", "point": "energy_kwh", "scope": 1, "min": 0, "max": 100000}]
    gw.write_config(cfg)
    try:
        yield clock, meter, platform, gw
    finally:
        gw.close()
        platform.close()
        bus.__exit__(None, None, None)
        wire.close()


def _polled_after(gw, ts) -> bool:
    return any(t >= ts for t, _v in readings_from_console(gw.output()).get("e1", ()))


def _boot(gw, clock, at=None):
    if at is not None:
        clock.jump_to(at)
        gw.extra_env.update(clock.env())
    n = len(re.findall(r"boot: started firmware", gw.output()))
    gw.start()
    wait_on(gw, lambda: len(re.findall(r"boot: started firmware", gw.output())) > n, 60, "the boot")


def _cut_after(gw, clock, ts):
    """Power off once a reading at or after ts is stored and on flash (flush_s is 2 s)."""
    wait_on(gw, lambda: _polled_after(gw, ts) and clock() > ts + 3 * SPEED, 60, "a reading after %s" % cst_text(ts))
    gw.kill()


def test_six_hour_power_cut_across_midnight_refilled_from_the_meter(parts, tmp_path):
    clock, meter, platform, gw = parts
    day = cst("2026-12-02 00:00")
    # Boot 1 just before midnight: the 00:00 boundary of 2 December is measured live.
    _boot(gw, clock)
    _cut_after(gw, clock, day)
    # Off until 20:50 (a first outage, also refilled), then up across 21:00.
    _boot(gw, clock, day + 20 * H + 50 * 60)
    _cut_after(gw, clock, day + 21 * H)
    # The 6-hour power cut: 21:0x to 03:0x, across midnight.
    cut = clock()
    _boot(gw, clock, cut + 6 * H)
    live = day + 28 * H  # 04:00 on 3 December: a live boundary after the refill
    wait_on(gw, lambda: _polled_after(gw, live + 60), 150, "the 04:00 boundary polled")

    readings = readings_from_console(gw.output())["e1"]

    def measured(b):
        return next(Decimal(v) for t, v in readings if b <= t <= b + 120)

    # What each boundary must be: polled at 00:00, 21:00 and 04:00; every other hour the meter's
    # hourly freeze, midnight its daily freeze.
    want_a = {}
    for b in range(day, live + 1, H):
        if b in (day, day + 21 * H, live):
            want_a[b] = measured(b)
        else:
            want_a[b] = meter.frozen("daily" if b == day + 24 * H else "hourly", b)
            assert want_a[b] is not None, cst_text(b)
    assert meter.frozen("daily", day + 24 * H) == meter.frozen("hourly", day + 24 * H)
    want = {(CODE, 0, cst_text(b)): want_a[b + H] - want_a[b] for b in range(day, live, H)}
    want[(CODE, 1, cst_text(day))] = want_a[day + 24 * H] - want_a[day]

    def at_platform():
        return {(r["dataCode"], r["statType"], r["statDate"]): r for r in platform.records()}

    wait_on(gw, lambda: set(want) <= set(at_platform()), 60, "every value at the platform")
    got = at_platform()
    for key, value in want.items():
        assert Decimal(str(got[key]["dataValue"])) == value, (key, got[key]["dataValue"], value)
        assert got[key]["receivedCount"] == 1, key
        assert got[key]["valid"] in (True, 1, "true"), key
    # Uploaded in order: no real-time value reached the platform before an older one.
    rt = sorted((r for k, r in got.items() if k[1] == 0), key=lambda r: r["statDate"])
    assert all(a["firstReceivedAt"] <= b["firstReceivedAt"] for a, b in zip(rt, rt[1:]))

    out = gw.output()
    refills = re.findall(r"event\s+refill: e1: (\d+) of (\d+) missed boundary reading\(s\) (\S+ \S+) \.\. (\S+ \S+)", out)
    assert [(int(a), int(b), f, t) for a, b, f, t in refills] == [
        (20, 20, cst_text(day + H), cst_text(day + 20 * H)),
        (6, 6, cst_text(day + 22 * H), cst_text(day + 27 * H))], refills
    assert not re.search(r"event\s+(estimate|gap):", out), "no boundary estimated or reported missing"
    # The meter clock, 90 s fast, was set once by broadcast, at the first boot (to within the frame's
    # time on the wire: at SPEED x, 100 ms of host time are 6 simulated seconds).
    assert meter.syncs == 1 and abs(meter.clock_offset) < 10
    syncs = re.findall(r"event\s+meterclock: e1: meter clock off by \+(\d+) s \(limit 60 s\): broadcast", out)
    assert len(syncs) == 1 and 60 < int(syncs[0]) <= 100, (syncs, re.findall(r"meterclock: .*", out))

    # In the gateway's own store, as a crew's pull reads it: each value at the platform is marked refilled
    # (the trailing quality REFILLED), valid, and no value is an estimate; the refilled boundary readings
    # are READINGs of quality REFILLED at their boundaries, the polled ones are not; the ledger's
    # events tell each refill.
    pulled = tmp_path / "pulled"
    code, text = nengjian("pull", "--port", str(gw.usb_link), "--out", str(pulled), "--json")
    assert code == 0, text
    recs = [r for r in (ledger.normalize(x) for x in ledger.load(json.loads(text)["dir"])) if r]
    stored = {(v["code"], v["stat_type"], cst_text(v["stat_start"])): v for v in recs if v["kind"] == "value"}
    for key in want:
        assert stored[key]["quality"] == REFILLED and stored[key]["valid"] is True, (key, stored[key])
    assert all(v["valid"] for v in stored.values()), [k for k, v in stored.items() if not v["valid"]]
    marks = {r["ts"]: r.get("quality") for r in recs if r["kind"] == "reading" and r["meter"] == "e1"}
    assert all(marks.get(b) == REFILLED for b in want_a if b not in (day, day + 21 * H, live)), marks
    assert not any(marks.get(b) == REFILLED for b in (day, day + 21 * H, live))
    assert len([r for r in recs if r["kind"] == "event" and r["event"] == "refill"]) == 2
