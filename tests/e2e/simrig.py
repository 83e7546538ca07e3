"""Fixtures for end-to-end tests on the sim rig: a pty RS-485 wire with pymodbus meters, the
reference platform, and the real firmware on MicroPython. Time runs fast (SPEED x) on both the
gateway's RTC and the platform's clock, so minutes of periods pass in seconds."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from nengjian_host.refplatform import RefPlatform
from nengjian_host.sim import SimGateway, demo_site
from nengjian_host.simmeters.modbus_meters import SimMeter, SimModbusMeters
from nengjian_host.wire import PtyWire

SPEED = 12  # a 60 s period passes in 5 s
PERIOD = 60
CST = timezone(timedelta(hours=8))


class SimRig:
    def __init__(self, tmp_path, units=(1, 2), power_kw=(600.0, 120.0)):
        self.tmp = tmp_path
        self.t0 = time.time()
        # Start the simulated day a little before a period boundary.
        self.s0 = float(int(self.t0) - int(self.t0) % PERIOD + PERIOD - 3)
        self.wire = PtyWire().start()
        self.meters = SimModbusMeters(self.wire.meters_path,
                                      [SimMeter(u, power_kw=p, energy_kwh=5000.0 * u) for u, p in zip(units, power_kw)],
                                      speedup=SPEED).start()
        self.platform = RefPlatform(db_path=str(tmp_path / "platform.sqlite"), period_s=PERIOD, clock=self.now).start()
        self.units = units
        self.gateway: SimGateway | None = None

    def now(self) -> float:
        return self.s0 + (time.time() - self.t0) * SPEED

    def site(self, **kw) -> dict:
        kw.setdefault("units", self.units)
        kw.setdefault("period_s", PERIOD)
        kw.setdefault("interval_s", 1)
        return demo_site(self.platform.url + "/api/register", **kw)

    def gateway_process(self, cfg=None, heap="256k") -> SimGateway:
        gw = SimGateway(self.tmp / "gw", {0: self.wire.gateway_path}, heap=heap,
                        env={"NJ_CLOCK_SPEED": SPEED, "NJ_CLOCK_T0": repr(self.t0), "NJ_CLOCK_S0": repr(self.s0)})
        gw.write_config(cfg if cfg is not None else self.site())
        self.gateway = gw
        return gw

    def wait_for(self, predicate, timeout=60.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.gateway and not self.gateway.alive():
                raise AssertionError(f"gateway exited while waiting for {what}:\n{self.gateway.output()[-3000:]}")
            time.sleep(0.2)
        out = self.gateway.output()[-3000:] if self.gateway else ""
        raise AssertionError(f"timed out waiting for {what}\n{out}")

    def close(self):
        if self.gateway:
            self.gateway.stop()
        self.platform.close()
        self.meters.stop()
        self.wire.close()


_POLL = re.compile(r" poll\s+(\S+) at (\S+): (.*)$")
_VALUE = re.compile(r" value\s+(\S+) (\S+ \S+) = (\S+)")


def readings_from_console(text: str) -> dict[str, list[tuple[int, str]]]:
    """meter id -> [(utc seconds, energy text)] from the gateway's poll lines."""
    out: dict[str, list[tuple[int, str]]] = {}
    for line in text.splitlines():
        m = _POLL.search(line)
        if not m:
            continue
        ts = int(datetime.strptime(m.group(2), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
        fields = dict(kv.split("=") for kv in m.group(3).split())
        if "energy_kwh" in fields:
            out.setdefault(m.group(1), []).append((ts, fields["energy_kwh"]))
    return out


def values_from_console(text: str) -> list[tuple[str, str, str]]:
    """(dataCode, statDate, value) the gateway says it produced."""
    return [m.groups() for m in map(_VALUE.search, text.splitlines()) if m]


def cst_to_utc(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())
