"""A Modbus meter's clock kept by the gateway, end to end on the sim board: a meter whose profile names
its time registers (sim-energy-clock) runs 3 minutes fast; at its first reading the gateway writes
the time with FC 16 and reads it back, the meter's clock is then right to a second or two, the
ledger (console `events`) tells the setting with the offset before and after, and it happens once.

Time: the gateway's RTC and the meter's clock run from one host clock at real speed, from a
simulated noon (CST), so the check never meets the midnight rule whenever the test runs.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from nengjian_host.common.device import Console
from nengjian_host.sim.gateway import SimGateway, demo_site
from nengjian_host.sim.meters.modbus_meters import SimMeter, SimModbusMeters
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.wire import PtyWire
from simrig import nengjian, wait_on

pytestmark = [pytest.mark.e2e]

CST = timezone(timedelta(hours=8))
FAST_S = 180


class NoonClock:
    """Simulated UTC seconds at real speed, from 12:00 CST today."""

    def __init__(self):
        self.t0 = time.time()
        self.s0 = datetime.now(CST).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()

    def __call__(self) -> float:
        return self.s0 + time.time() - self.t0

    def env(self) -> dict:
        return {"NJ_CLOCK_SPEED": 1, "NJ_CLOCK_T0": repr(self.t0), "NJ_CLOCK_S0": repr(self.s0)}


def test_a_modbus_meter_three_minutes_fast_is_set_once_and_the_ledger_tells_it(tmp_path):
    clock = NoonClock()
    wire = PtyWire().start()
    meter = SimMeter(1, clock_at=64, clock_offset=float(FAST_S), clock=clock)
    meters = SimModbusMeters(wire.meters_path, [meter]).start()
    platform = RefPlatform(db_path=str(tmp_path / "platform.sqlite"), period_s=60, clock=clock).start()
    gw = SimGateway(tmp_path / "gw", {0: wire.gateway_path}, env=clock.env())
    cfg = demo_site(platform.url + "/api/register", units=(1,), interval_s=1)
    cfg["meters"][0]["profile"] = "sim-energy-clock"
    gw.write_config(cfg)
    try:
        gw.start()
        wait_on(gw, lambda: meter.clock_writes >= 1, 60, "the meter's clock written")
        # Within a second or two: whole seconds on both sides, and the write's time on the wire.
        assert abs(meter.clock_offset) <= 2, meter.clock_offset
        out_n = len(gw.output())
        wait_on(gw, lambda: len(re.findall(r" poll\s+m1 at", gw.output()[out_n:])) >= 3, 30, "polls after the setting")
        assert meter.clock_writes == 1  # checked daily: not at every reading
        con = Console(str(gw.usb_link), timeout=15).open()
        try:
            events = [e for e in con.events(50) if e["kind"] == "meterclock"]
            st = con.status()
        finally:
            con.close()
        # The console's status tells it too, and `nengjian status` shows it in either language.
        mem = next(m for m in st["meters"] if m["id"] == "m1")["memory"]
        today = datetime.fromtimestamp(clock(), CST).replace(hour=0, minute=0, second=0, microsecond=0)
        assert mem["clock_set_day"] == int(today.timestamp()), mem
        assert abs(mem["clock_offset_s"]) <= 2 and mem["clock_checked_at"] and mem["refills"] == 0, mem
        for lang, title in (("en", "meter memory"), ("zh", "电表存储")):
            code, out = nengjian("--lang", lang, "status", "--port", str(gw.usb_link))
            assert code == 0 and title in out, out
            row = next(line for line in out.split(title, 1)[1].splitlines() if line.startswith("│ m1"))
            assert today.strftime("%Y-%m-%d") in row, row
        assert len(events) == 1, events
        m = re.fullmatch(r"m1: meter clock off by \+(\d+) s \(limit 60 s\): written (\S+ \S+) by FC 16 at "
                         r"register 64, read back ([+-]\d+) s: set", events[0]["text"])
        assert m, events[0]
        assert FAST_S - 2 <= int(m.group(1)) <= FAST_S
        assert abs(int(m.group(3))) <= 2
        assert gw.alive()

        # A restart the same day: the meter has drifted again, the gateway checks it at its first reading
        # and, its write of the day kept on flash (meterclock.json), writes no second time.
        meter.clock_offset = float(FAST_S)
        gw.kill()
        out_n = len(gw.output())
        gw.start()
        wait_on(gw, lambda: meter.clock_writes > 1 or re.search(r"m1: meter clock off by \+\d+ s: set once today "
                                                                r"already", gw.output()[out_n:]),
                60, "the clock check after the restart")
        assert meter.clock_writes == 1
    finally:
        gw.close()
        platform.close()
        meters.stop()
        wire.close()
