"""The sim rig behind the fixtures: a pty RS-485 wire with pymodbus meters, the reference platform,
and the real firmware on the MicroPython unix port (nengjian_host.sim.gateway.SimGateway).

Time can run fast on the gateway's RTC, the meters' energy and the platform's clock alike (one
SimClock), so a day of 15-minute periods passes in minutes. ExtraDrop hangs 68H-framed meters
(DL/T 645, CJ/T 188) on the same wire, for a mixed bus.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from pathlib import Path

from nengjian_host.common.device import Console, RawRepl
from nengjian_host.sim.gateway import SimGateway, demo_site
from nengjian_host.sim.meters import open_pty, start
from nengjian_host.sim.meters.modbus_meters import SimMeter, SimModbusMeters
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.wire import PtyWire

from plugin.kitbase import DutBase, RigBase


class SimClock:
    """Simulated UTC = s0 + (host time - t0) * speed; starts `lead` s before a period boundary."""

    def __init__(self, speed: float = 12, period: int = 60, lead: float = 3, start: float | None = None):
        self.speed = speed
        self.period = period
        self.t0 = time.time()
        base = start if start is not None else self.t0
        self.s0 = float(int(base) - int(base) % period + period - lead)

    def now(self) -> float:
        return self.s0 + (time.time() - self.t0) * self.speed

    def env(self) -> dict:
        return {"NJ_CLOCK_SPEED": self.speed, "NJ_CLOCK_T0": repr(self.t0), "NJ_CLOCK_S0": repr(self.s0)}

    def host_seconds(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed


class Bus:
    """The RS-485 side where simulated meters attach, with the faults a real bus has.

    meters: unit -> SimMeter (power_kw, energy_kwh, silent, bad_crc, delay_s, exception, ...)."""

    def __init__(self, wire, server: SimModbusMeters, gateway_port: str = "rs485_0"):
        self.wire = wire
        self.server = server
        self.meters = server.meters
        self.gateway_port = gateway_port

    @property
    def units(self) -> tuple:
        return tuple(sorted(self.meters))

    def silence(self, unit: int, on: bool = True) -> None:
        """The meter stops answering (a dead meter, a broken A/B pair to it)."""
        self.meters[unit].silent = on

    def crc_errors(self, unit: int, on: bool = True) -> None:
        """The meter's replies arrive with a broken CRC."""
        self.meters[unit].bad_crc = on

    def noise(self, data: bytes = b"\x00\xff\x13\x37\xa5\x5a\xfe", to: str = "gateway") -> None:
        """Stray bytes on the wire (EMI, a device talking out of turn)."""
        self.wire.inject_noise(data, to)

    def corrupt_replies(self, n: int = 1) -> None:
        """Flip a bit in the next n chunks meters send."""
        self.wire.corrupt_next_reply = n

    def cut(self, on: bool = True) -> None:
        """Nothing passes the wire (a cable cut between gateway and every meter)."""
        self.wire.cut = on

    def close(self) -> None:
        self.server.stop()
        self.wire.close()


class ExtraDrop:
    """Simulated 68H-framed meters as a second drop on a PtyWire: they hear every request and
    their replies go to the gateway, alongside the pymodbus meters on the wire's meter end."""

    def __init__(self, wire: PtyWire, meters):
        self.wire = wire
        self.master, path = open_pty()
        self.thread, self.stop_event = start(self.master, meters)
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self._prev = wire.tap
        wire.tap = self._tap
        self._running = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _tap(self, direction, data):
        if self._prev:
            self._prev(direction, data)
        if direction == "to_meters":
            os.write(self.fd, data)

    def _read(self):
        while self._running:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 512)
                except OSError:
                    return
                self.wire.inject_noise(data, "gateway")

    def close(self):
        self._running = False
        self.stop_event.set()
        self.thread.join(2)
        self.reader.join(2)
        os.close(self.fd)


class SimDut(DutBase):
    """The gateway under test on the sim rig (SimGateway inside). Common DUT API: start, expect,
    output, alive, console/status/events/read_file, put_config, reset, power_cut, power_off/on,
    set_link, stop, wait_for; sim only: gateway, image(), service_button(held), crash(cause)."""

    kind = "sim"
    poll_s = 0.2

    def __init__(self, workdir: Path, bus: Bus, platform: RefPlatform, clock: SimClock, heap: str, echo=None):
        self.bus = bus
        self.platform = platform
        self.clock = clock
        self.eth_ctl = workdir / "eth.ctl"
        env = dict(clock.env())
        env["NJ_ETH_CTL"] = str(self.eth_ctl)
        self.gateway = SimGateway(workdir / "gw", {0: bus.wire.gateway_path}, heap=heap, env=env, echo=echo)
        self._console: Console | None = None

    # ---- config and life cycle
    def site(self, **kw) -> dict:
        kw.setdefault("units", self.bus.units)
        kw.setdefault("period_s", self.clock.period)
        kw.setdefault("interval_s", 1)
        return demo_site(self.platform.url + "/api/register", **kw)

    def start(self, cfg=None) -> SimDut:
        """Boot the gateway; cfg None: the rig's default site; False: leave the config as it is
        (none on a new gateway)."""
        if cfg is not False:
            self.gateway.write_config(cfg if cfg is not None else self.site())
        self.gateway.start()
        return self

    @property
    def port(self) -> str:
        return str(self.gateway.usb_link)

    def expect(self, pattern: str, timeout: float = 30.0):
        return self.gateway.expect(pattern, timeout)

    def output(self) -> str:
        return self.gateway.output()

    @property
    def lines(self) -> list[str]:
        return self.gateway.lines

    def alive(self) -> bool:
        return self.gateway.alive()

    def stopped(self) -> bool:
        return self.gateway.down()

    # ---- console
    def console(self) -> Console:
        if self._console is None:
            self._console = Console(self.port, timeout=15).open()
        return self._console

    def repl(self) -> RawRepl:
        """mpremote's raw REPL (stops the application; start it again with reset())."""
        if self._console is not None:
            self._console.close()
            self._console = None
        return RawRepl(self.port)

    # ---- power, reset, link
    def reset(self) -> None:
        self.gateway.reset()

    def power_cut(self, off_s: float = 0.0) -> None:
        self.gateway.power_cut(off_s)

    def crash(self, cause: str = "crash") -> None:
        """The firmware dies of a fault and the board resets itself ("crash": a panic, "watchdog")."""
        self.gateway.crash(cause)

    def power_off(self) -> None:
        self.gateway.kill()

    def power_on(self) -> None:
        self.gateway.start()

    def set_link(self, up: bool) -> None:
        self.eth_ctl.write_text("up" if up else "down")

    def service_button(self, held: bool) -> None:
        self.gateway.service_button(held)

    def image(self) -> bytes:
        return self.gateway.image_path.read_bytes()

    def stop(self) -> int | None:
        return self.gateway.stop()

    def close(self) -> None:
        if self._console is not None:
            self._console.close()
            self._console = None
        self.gateway.close()


class SimRigRuntime(RigBase):
    """What the `rig` fixture holds on the sim rig. Resources start when first used; also offers the
    older SimRig API (gateway_process, meters, platform, site, wait_for, now) for existing tests."""

    def __init__(self, spec, tmp: Path, clock: SimClock, heap: str, units=(1, 2), power_kw=(600.0, 120.0),
                 echo=None):
        self.spec = spec
        self.tmp = tmp
        self.clock = clock
        self.heap = heap
        self.echo = echo
        self._units = tuple(units)
        self._power = tuple(power_kw)
        self._bus: Bus | None = None
        self._platform: RefPlatform | None = None
        self._dut: SimDut | None = None
        self.gateway: SimGateway | None = None

    # ---- clock (name, caps, has: RigBase)
    @property
    def speed(self) -> float:
        return self.clock.speed

    @property
    def period(self) -> int:
        return self.clock.period

    def now(self) -> float:
        return self.clock.now()

    # ---- resources
    @property
    def bus(self) -> Bus:
        if self._bus is None:
            wire = PtyWire().start()
            meters = [SimMeter(u, power_kw=p, energy_kwh=5000.0 * u) for u, p in zip(self._units, self._power)]
            server = SimModbusMeters(wire.meters_path, meters, speedup=self.clock.speed).start()
            self._bus = Bus(wire, server)
        return self._bus

    @property
    def platform(self) -> RefPlatform:
        if self._platform is None:
            self._platform = RefPlatform(db_path=str(self.tmp / "platform.sqlite"), period_s=self.clock.period,
                                         clock=self.clock.now).start()
        return self._platform

    @property
    def dut(self) -> SimDut:
        if self._dut is None:
            self._dut = SimDut(self.tmp, self.bus, self.platform, self.clock, self.heap, self.echo)
            self.gateway = self._dut.gateway
        return self._dut

    # ---- the older SimRig API
    @property
    def wire(self):
        return self.bus.wire

    @property
    def meters(self) -> SimModbusMeters:
        return self.bus.server

    @property
    def units(self) -> tuple:
        return self._units

    def site(self, **kw) -> dict:
        return self.dut.site(**kw)

    def gateway_process(self, cfg=None, heap=None) -> SimGateway:
        if heap:
            self.heap = heap
        d = self.dut
        d.gateway.write_config(cfg if cfg is not None else d.site())
        return d.gateway

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "condition") -> None:
        if self._dut is None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if predicate():
                    return
                time.sleep(0.2)
            raise AssertionError("timed out waiting for %s" % what)
        self._dut.wait_for(predicate, timeout, what)

    def close(self) -> None:
        if self._dut is not None:
            self._dut.close()
        if self._platform is not None:
            self._platform.close()
        if self._bus is not None:
            self._bus.close()
