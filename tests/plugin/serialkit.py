"""The desk rig behind the fixtures: a gateway on USB, a USB-RS485 adapter on its bus, this host on its
LAN. docs/RIG.md shows the wiring.

The simulated meters (pymodbus, as on the sim rig) serve a pty; `SerialBridge` copies bytes between
that pty and the real adapter, so the same fault switches work on the real bus: silence and CRC
errors per meter, noise bytes, a corrupted reply, a cut wire. The gateway's console is read by one
thread (`TeePort`): every line for expect(), every byte also to a pty that the console client, the
CLI, mpremote and `nengjian console` open instead of the port (two readers of one serial port would
each get a part of what the gateway says).

`SimBoard` is the hardware of a rig file with a "sim" section (tests/rigs/sim-usb.json): a sim gateway
whose USB console is a pty, as a USB-serial bridge gives one, and whose RS-485 wire ends in a pty
standing in for the adapter. The kit opens both by path as on a desk, so CI runs this code.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import threading
import time
from pathlib import Path

from nengjian_host.common.device import Console, RawRepl, resolve_port
from nengjian_host.sim.gateway import SimGateway, demo_site
from nengjian_host.sim.meters.modbus_meters import SimMeter, SimModbusMeters
from nengjian_host.sim.ptys import close_fds, open_raw_pty
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.wire import PtyWire

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
        self.lost = ""  # why the adapter stopped answering, once it has
        self._thread = threading.Thread(target=self._pump, name="rs485-bridge", daemon=True)
        self._thread.start()

    def inject_noise(self, data: bytes, to: str = "gateway") -> None:
        with self._lock:
            if to == "gateway":
                self.ser.write(data)
            else:
                os.write(self._m_master, data)

    def _pump(self) -> None:
        import serial

        poller = select.poll()
        poller.register(self.ser.fileno(), select.POLLIN)
        poller.register(self._m_master, select.POLLIN)
        while not self._stop.is_set():
            try:
                self._turn(poller)
            except (serial.SerialException, OSError) as e:  # the adapter is gone: a dead bus from now on
                self.lost = str(e)
                return

    def _turn(self, poller) -> None:
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


BOOT_LINE = r"nengjian \S+ on board"  # the application's first log line (nengjian.app.main_async)


class TeePort:
    """The one reader of the gateway's serial port. Every line is kept (expect); every byte is also
    written to a pty whose slave (`share`, or the symlink `link` to it: mpremote treats /dev/pts/ paths
    as QEMU's and reads without a timeout) the console client, the CLI and mpremote open instead of
    the port, and what they write goes to the gateway. Output no one reads is dropped once that pty
    is full, as a USB CDC without a host drops it. A port that vanishes (native USB re-enumerates on
    a reset) is opened again when it comes back."""

    def __init__(self, port: str, baud: int, echo=None, link: Path | None = None):
        self.port = port
        self.baud = baud
        self.echo = echo
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._partial = b""
        self._stop = threading.Event()
        self.ser = self._open()
        self._master, self._slave, self.share = open_raw_pty()
        for fd in (self._master, self._slave):
            os.set_blocking(fd, False)
        self._fds = [self._master, self._slave]
        self.link = None
        if link is not None:
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(self.share)
            self.link = link
        self._thread = threading.Thread(target=self._pump, name="dut-console", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        """What the rig's clients open."""
        return str(self.link or self.share)

    def _open(self):
        import serial

        ser = serial.serial_for_url(self.port, do_not_open=True, baudrate=self.baud, timeout=0)
        ser.dtr = False  # opening the port must not reset a board with an auto-reset circuit
        ser.rts = False
        ser.open()
        return ser

    def _pump(self) -> None:
        while not self._stop.is_set():
            if self.ser is None:
                self._reopen()
                continue
            poller = select.poll()
            poller.register(self._master, select.POLLIN)
            try:
                poller.register(self.ser.fileno(), select.POLLIN)
                polled = True
            except Exception:  # a URL port (socket://, rfc2217://) has no file to poll: read it each turn
                polled = False
            ready = poller.poll(50 if polled else 10)
            if any(fd == self._master for fd, _ev in ready):
                self._from_clients()
            if not polled or any(fd != self._master for fd, _ev in ready):
                self._from_gateway()

    def _from_gateway(self) -> None:
        try:
            data = self.ser.read(self.ser.in_waiting or 1)
        except Exception:  # the port vanished (serial.SerialException, OSError)
            self._lost()
            return
        if not data:
            return
        self._to_clients(data)
        *done, self._partial = (self._partial + data).split(b"\n")
        new = [d.decode("utf-8", "replace").rstrip("\r") for d in done]
        if new:
            with self._cond:
                self.lines.extend(new)
                self._cond.notify_all()
            if self.echo:
                for line in new:
                    self.echo(line)

    def _to_clients(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except BlockingIOError:  # no client reads: drop the oldest output
            try:
                os.read(self._slave, 65536)
                os.write(self._master, data)
            except OSError:
                pass
        except OSError:
            pass

    def _from_clients(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:
            return
        if data and self.ser is not None:
            try:
                self.ser.write(data)
            except Exception:
                self._lost()  # bytes lost, as to an unplugged cable

    def _lost(self) -> None:
        try:
            self.ser.close()
        except Exception:
            pass
        self.ser = None

    def _reopen(self) -> None:
        try:
            self.ser = self._open()
        except Exception:
            self._stop.wait(0.5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        if self.ser is not None:
            self.ser.close()
        close_fds(self._fds)
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()


class SerialDut(DutBase):
    """The gateway on the desk rig: same API as SimDut. `port` is the console as the rig shares it
    (TeePort): open that, never the gateway's port itself."""

    kind = "serial"

    def __init__(self, spec, bus: Bus, platform: RefPlatform, platform_url: str, echo=None,
                 port: str | None = None, link: Path | None = None):
        self.spec = spec
        self.bus = bus
        self.platform = platform
        self.platform_url = platform_url
        d = spec.dut
        self.baud = d.get("baud", 115200)
        self.boot_s = d.get("boot_s", 20)
        self.echo = echo
        self.tee = TeePort(port or resolve_port(d["port"]), self.baud, echo, link)
        self._seen = 0
        self._console = None

    @property
    def port(self) -> str:
        return self.tee.path

    def site(self, **kw) -> dict:
        kw.setdefault("units", self.bus.units)
        kw.setdefault("period_s", 60)
        kw.setdefault("interval_s", 1)
        cfg = demo_site(self.platform_url.rstrip("/") + "/api/register", **kw)
        cfg["buses"][0]["port"] = self.spec.bus.get("gateway_port", "rs485_0")
        return cfg

    def start(self, cfg=None) -> SerialDut:
        """Write the config over the console and reset (cfg None: the rig's default site; False: leave
        the gateway's config as it is, and its application running)."""
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
            self._console = Console(self.port, baud=self.baud, timeout=15)
        return self._console

    def _drop_console(self) -> None:
        if self._console is not None:
            self._console.close()
            self._console = None

    def repl(self) -> RawRepl:
        """mpremote's raw REPL (stops the application; start it again with reset())."""
        self._drop_console()
        return RawRepl(self.port, self.baud)

    def reset(self) -> None:
        """Reset the gateway and wait for its application's first line: what the console said before
        is passed over (a later expect() never takes a line of the boot before)."""
        with self.tee._cond:
            self._seen = len(self.tee.lines)
        how = self.spec.dut.get("reset")
        if how == "rts":  # EN low through RTS, as esptool's hard reset does
            self.tee.ser.dtr = False
            self.tee.ser.rts = True
            time.sleep(0.2)  # the pulse itself: EN must stay low a moment
            self.tee.ser.rts = False
        elif how == "console":
            self.console().reset()
        else:
            raise RuntimeError("rig %s declares no way to reset the gateway" % self.spec.name)
        self._drop_console()  # a native USB port comes back as a new device
        self.expect(BOOT_LINE, timeout=self.boot_s)

    def _power(self, what: str) -> None:
        cmd = (self.spec.power or {}).get(what)
        if not cmd:
            raise RuntimeError("rig %s declares no power switch" % self.spec.name)
        subprocess.run(cmd, shell=True, check=True, timeout=30)

    def power_off(self) -> None:
        self._power("off")

    def power_on(self) -> None:
        with self.tee._cond:
            self._seen = len(self.tee.lines)
        self._power("on")
        self._drop_console()
        self.expect(BOOT_LINE, timeout=self.boot_s)

    def power_cut(self, off_s: float = 0.0) -> None:
        self.power_off()
        time.sleep(max(off_s, (self.spec.power or {}).get("settle_s", 1)))  # how long the power stays off
        self.power_on()

    def set_link(self, up: bool) -> None:
        cmd = (self.spec.link or {}).get("up" if up else "down")
        if not cmd:
            raise RuntimeError("rig %s declares no link switch" % self.spec.name)
        subprocess.run(cmd, shell=True, check=True, timeout=30)

    def stop(self) -> None:
        pass  # a desk gateway keeps running between tests

    def close(self) -> None:
        self._drop_console()
        self.tee.close()


class SimBoard:
    """A sim gateway as a desk rig's hardware: the firmware on the MicroPython unix port
    (nengjian_host.sim.gateway.SimGateway), its USB console a pty as a USB-serial bridge's is, its
    RS-485 port on a pty wire whose far end (`adapter`) stands in for the USB-RS485 adapter. Only the
    board is simulated: the serial kit opens `usb` and `adapter` by path, as on the desk."""

    def __init__(self, tmp: Path, heap: str):
        self.wire = PtyWire().start()
        self.gateway = SimGateway(tmp / "gw", {0: self.wire.gateway_path}, heap=heap)

    @property
    def usb(self) -> str:
        return str(self.gateway.usb_link)

    @property
    def adapter(self) -> str:
        return self.wire.meters_path

    def power_on(self, cfg: dict) -> None:
        """Boot with `cfg`: a desk gateway is provisioned and running before the tests come."""
        self.gateway.write_config(cfg)
        self.gateway.start()

    def close(self) -> None:
        self.gateway.close()
        self.wire.close()


class SerialRigRuntime(RigBase):
    """What the `rig` fixture holds on a desk rig (or one whose board is a SimBoard)."""

    def __init__(self, spec, tmp: Path, echo=None, units=(1, 2), power_kw=(600.0, 120.0)):
        self.spec = spec
        self.tmp = tmp
        self.echo = echo
        self._units = tuple(units)
        self._power = tuple(power_kw)
        self._bus = None
        self._platform = None
        self._dut = None
        self.board = SimBoard(tmp, spec.sim.get("heap", "320k")) if spec.sim is not None else None
        self.speed = 1
        self.period = 60

    def now(self) -> float:
        return time.time()

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            b = self.spec.bus
            bridge = SerialBridge(self.board.adapter if self.board else b["port"], b.get("baud", 9600))
            meters = [SimMeter(u, power_kw=p, energy_kwh=5000.0 * u) for u, p in zip(self._units, self._power)]
            server = SimModbusMeters(bridge.meters_path, meters, baudrate=b.get("baud", 9600)).start()
            self._bus = Bus(bridge, server, b.get("gateway_port", "rs485_0"))
        return self._bus

    @property
    def platform(self) -> RefPlatform:
        if self._platform is None:
            p = self.spec.platform
            if not p.get("url") and self.board is None:
                raise RuntimeError("this rig has no platform.url: the gateway cannot reach the reference platform "
                                   "(give --platform-url or a rig file)")
            self._platform = RefPlatform(host=p.get("bind", "0.0.0.0"), port=p.get("port", 8765),
                                         period_s=self.period).start()
        return self._platform

    @property
    def platform_url(self) -> str:
        """How the gateway reaches the platform: the rig's platform.url, or where a SimBoard's does."""
        return self.spec.platform.get("url") or self.platform.url

    @property
    def dut(self) -> SerialDut:
        if self._dut is None:
            bus, platform = self.bus, self.platform
            port = self.board.usb if self.board else None
            self._dut = SerialDut(self.spec, bus, platform, self.platform_url, self.echo, port,
                                  link=self.tmp / "dut-usb")
            if self.board is not None:
                self.board.power_on(self._dut.site())
                self._dut.expect(BOOT_LINE, timeout=self._dut.boot_s)
        return self._dut

    def site(self, **kw) -> dict:
        return self.dut.site(**kw)

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "condition") -> None:
        self.dut.wait_for(predicate, timeout, what)

    def close(self) -> None:
        for x in (self._dut, self._bus, self.board, self._platform):
            if x is not None:
                x.close()
