"""The desk rig behind the fixtures: a gateway on USB, a USB-RS485 adapter on its bus, this host on its
LAN. docs/RIG.md shows the wiring.

The simulated meters (pymodbus, as on the sim rig) serve a pty; `SerialBridge` copies bytes between
that pty and the real adapter, so the same fault switches work on the real bus: silence and CRC
errors per meter, noise bytes, a corrupted reply, a cut wire. The gateway's console is read by one
thread (`TeePort`): lines for expect(), the rest for the console client, so both share the port.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import threading
import time

from nengjian_host.common.device import Console, RawRepl, resolve_port
from nengjian_host.sim.gateway import demo_site
from nengjian_host.sim.meters.modbus_meters import SimMeter, SimModbusMeters
from nengjian_host.sim.ptys import open_raw_pty
from nengjian_host.sim.refplatform import RefPlatform

from plugin.kitbase import DutBase, RigBase
from plugin.simkit import Bus


class SerialBridge:
    """PtyWire's fault API between the real USB-RS485 adapter and a pty the meters serve."""

    def __init__(self, port: str, baud: int = 9600):
        import serial

        self.ser = serial.Serial(resolve_port(port), baudrate=baud, timeout=0)
        self._m_master, self._m_slave, self.meters_path = open_raw_pty()
        self.gateway_path = None  # the gateway has its own UART on the real bus
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.cut = False
        self.corrupt_next_reply = 0
        self.bytes_to_meters = 0
        self.bytes_to_gateway = 0
        self._thread = threading.Thread(target=self._pump, name="rs485-bridge", daemon=True)
        self._thread.start()

    def inject_noise(self, data: bytes, to: str = "gateway") -> None:
        with self._lock:
            if to == "gateway":
                self.ser.write(data)
            else:
                os.write(self._m_master, data)

    def _pump(self) -> None:
        poller = select.poll()
        poller.register(self.ser.fileno(), select.POLLIN)
        poller.register(self._m_master, select.POLLIN)
        while not self._stop.is_set():
            for fd, _ev in poller.poll(50):
                with self._lock:
                    if fd == self._m_master:
                        data = os.read(self._m_master, 512)
                        if self.cut:
                            continue
                        if self.corrupt_next_reply and data:
                            self.corrupt_next_reply -= 1
                            i = min(2, len(data) - 1)
                            data = data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:]
                        self.bytes_to_gateway += len(data)
                        self.ser.write(data)
                    else:
                        data = self.ser.read(512)
                        if self.cut or not data:
                            continue
                        self.bytes_to_meters += len(data)
                        os.write(self._m_master, data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.ser.close()
        for fd in (self._m_master, self._m_slave):
            try:
                os.close(fd)
            except OSError:
                pass


class TeePort:
    """One reader of the gateway's serial port: every line is kept (expect), and the bytes are also
    offered to the console client through a serial-like read()."""

    def __init__(self, port: str, baud: int, echo=None):
        import serial

        self.ser = serial.serial_for_url(port, do_not_open=True, baudrate=baud, timeout=0.05)
        self.ser.dtr = False
        self.ser.rts = False
        self.ser.open()
        self.port = port
        self.echo = echo
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._rx = bytearray()
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="dut-console", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.ser.read(4096)
            except Exception:  # the port vanished (native USB re-enumerates on reset): retry
                time.sleep(0.5)
                continue
            if not data:
                continue
            *done, self._partial = (self._partial + data).split(b"\n")
            with self._cond:
                self._rx += data
                for d in done:
                    line = d.decode("utf-8", "replace").rstrip("\r")
                    self.lines.append(line)
                    if self.echo:
                        self.echo(line)
                self._cond.notify_all()

    # serial-like surface for device.Console
    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def read(self, n: int = 1) -> bytes:
        with self._cond:
            if not self._rx:
                self._cond.wait(0.05)
            out = bytes(self._rx[:n])
            del self._rx[:n]
            return out

    def write(self, data: bytes) -> int:
        return self.ser.write(data)

    def flush(self) -> None:
        self.ser.flush()

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._rx.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.ser.close()


class SerialDut(DutBase):
    """The gateway on the desk rig: same API as SimDut."""

    kind = "serial"

    def __init__(self, spec, bus: Bus, platform: RefPlatform, echo=None):
        self.spec = spec
        self.bus = bus
        self.platform = platform
        d = spec.dut
        self.port = resolve_port(d["port"])
        self.baud = d.get("baud", 115200)
        self.boot_s = d.get("boot_s", 8)
        self.echo = echo
        self.tee = TeePort(self.port, self.baud, echo)
        self._seen = 0
        self._console = None

    def site(self, **kw) -> dict:
        kw.setdefault("units", self.bus.units)
        kw.setdefault("period_s", 60)
        kw.setdefault("interval_s", 1)
        cfg = demo_site(self.spec.platform["url"].rstrip("/") + "/api/register", **kw)
        cfg["buses"][0]["port"] = self.spec.bus.get("gateway_port", "rs485_0")
        return cfg

    def start(self, cfg=None) -> SerialDut:
        if cfg is not False:
            self.put_config(cfg if cfg is not None else self.site())
            self.reset()
        return self

    def expect(self, pattern: str, timeout: float = 30.0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.tee._cond:
            while True:
                for i in range(self._seen, len(self.tee.lines)):
                    m = rx.search(self.tee.lines[i])
                    if m:
                        self._seen = i + 1
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no line matching %r within %s s; last lines:\n%s" % (
                        pattern, timeout, "\n".join(self.tee.lines[-30:])))
                self.tee._cond.wait(min(left, 0.5))

    def output(self) -> str:
        with self.tee._cond:
            return "\n".join(self.tee.lines)

    @property
    def lines(self) -> list[str]:
        return self.tee.lines

    def alive(self) -> bool:
        try:
            return self.console().status().get("mode") is not None
        except Exception:  # no answer: not alive
            return False

    def console(self) -> Console:
        if self._console is None:
            con = Console(self.port, baud=self.baud, timeout=15)
            con._ser = self.tee  # share the one reader of the port
            self._console = con
        return self._console

    def repl(self) -> RawRepl:
        self.tee.close()
        self._console = None
        return RawRepl(self.port, self.baud)

    def reset(self) -> None:
        how = self.spec.dut.get("reset")
        if how == "rts":  # EN low through RTS, as esptool's hard reset does
            self.tee.ser.dtr = False
            self.tee.ser.rts = True
            time.sleep(0.2)
            self.tee.ser.rts = False
        elif how == "console":
            self.console().reset()
        else:
            raise RuntimeError("rig %s declares no way to reset the gateway" % self.spec.name)
        time.sleep(self.boot_s)

    def _power(self, what: str) -> None:
        cmd = (self.spec.power or {}).get(what)
        if not cmd:
            raise RuntimeError("rig %s declares no power switch" % self.spec.name)
        subprocess.run(cmd, shell=True, check=True, timeout=30)

    def power_off(self) -> None:
        self._power("off")

    def power_on(self) -> None:
        self._power("on")
        time.sleep(self.boot_s)

    def power_cut(self, off_s: float = 0.0) -> None:
        self.power_off()
        time.sleep(max(off_s, (self.spec.power or {}).get("settle_s", 1)))
        self.power_on()

    def set_link(self, up: bool) -> None:
        cmd = (self.spec.link or {}).get("up" if up else "down")
        if not cmd:
            raise RuntimeError("rig %s declares no link switch" % self.spec.name)
        subprocess.run(cmd, shell=True, check=True, timeout=30)

    def stop(self) -> None:
        pass  # a desk gateway keeps running between tests

    def close(self) -> None:
        self.tee.close()


class SerialRigRuntime(RigBase):
    """What the `rig` fixture holds on a desk rig."""

    def __init__(self, spec, echo=None, units=(1, 2), power_kw=(600.0, 120.0)):
        self.spec = spec
        self.echo = echo
        self._units = tuple(units)
        self._power = tuple(power_kw)
        self._bus = None
        self._platform = None
        self._dut = None
        self.speed = 1
        self.period = 60

    def now(self) -> float:
        return time.time()

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            b = self.spec.bus
            bridge = SerialBridge(b["port"], b.get("baud", 9600))
            meters = [SimMeter(u, power_kw=p, energy_kwh=5000.0 * u) for u, p in zip(self._units, self._power)]
            server = SimModbusMeters(bridge.meters_path, meters, baudrate=b.get("baud", 9600)).start()
            self._bus = Bus(bridge, server, b.get("gateway_port", "rs485_0"))
        return self._bus

    @property
    def platform(self) -> RefPlatform:
        if self._platform is None:
            p = self.spec.platform
            if not p.get("url"):
                raise RuntimeError("this rig has no platform.url: the gateway cannot reach the reference platform "
                                   "(give --platform-url or a rig file)")
            self._platform = RefPlatform(host=p.get("bind", "0.0.0.0"), port=p.get("port", 8765),
                                         period_s=self.period).start()
        return self._platform

    @property
    def dut(self) -> SerialDut:
        if self._dut is None:
            self._dut = SerialDut(self.spec, self.bus, self.platform, self.echo)
        return self._dut

    def site(self, **kw) -> dict:
        return self.dut.site(**kw)

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "condition") -> None:
        self.dut.wait_for(predicate, timeout, what)

    def close(self) -> None:
        for x in (self._dut, self._platform, self._bus):
            if x is not None:
                x.close()
