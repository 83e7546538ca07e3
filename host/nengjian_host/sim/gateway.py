"""The sim rig: runs the real firmware on the MicroPython unix port as a gateway process.

`SimGateway` lays out a gateway directory (config/site.json, data.img), starts
`micropython -i firmware/main.py` with the `sim` board on its path and the RS-485 ptys in its
environment, and plays the board's hardware around it:

- USB serial port. The firmware's stdin/stdout/stderr is the slave of a pty (the chip's side of the
  USB-serial bridge), set raw. A 0x03 byte (Ctrl-C) reaches the firmware's stdin, and its console
  reader (nengjian.console.protocol) raises KeyboardInterrupt between two bytecodes, as the ESP32's
  USB/UART driver schedules one. Never as SIGINT (no ISIG): the unix port raises the interrupt from
  its signal handler, inside whatever C code runs, and one that lands in the garbage collector
  leaves the heap locked for good ("memory allocation failed, heap is locked" at the next allocation,
  then "FATAL: uncaught NLR"), one in littlefs leaves the data volume half way through an operation
  (its files for the collector to close, or error 84, corrupt). A thread pumps that pty's
  master to a second pty whose slave path (`port`, also the symlink `<dir>/usb`) is what a crew's
  laptop opens: `nengjian status --port <dir>/usb`, `mpremote connect <dir>/usb resume ...`.
  Every console line is also kept for `expect()`, the way pytest-embedded's DUT does.
- Reset and power. `kill()` is a power cut (SIGKILL: no flush, no close), `reset()` the EN pin
  (kill and boot again), `power_cut(off_s)` both with a pause. `-i` leaves the MicroPython REPL
  after the application stops on Ctrl-C, as on the ESP32; Ctrl-D there (exit code 0) and the
  board's reset() (a "@sim reset" line) boot the firmware again like a soft or hard reset.
  `stop()` is a clean stop: Ctrl-C on the console, then Ctrl-D leaves the REPL.
- Reset cause. Every boot is told why it runs (NJ_RESET_CAUSE, the sim board's reset_cause(); the
  names are nengjian.system.health's): "power-on" for the first start and after a power cut or a
  clean stop, "brown-out" after `power_cut(brownout=True)`, "reset" after the board's reset(),
  "soft-reboot" after Ctrl-D, "crash" when the process had died by itself. `crash(cause)` is a fault
  the board resets itself from: the process killed and booted at once as "crash" (a panic) or
  "watchdog".
- Signed updates. The compiled tree (simbuild) is the built-in package; `<dir>/app` is the board's
  APP_DIR, where the firmware keeps the A/B slots of updates a crew pushed over the console
  (`nengjian ota push`). Every boot, however it comes, runs main.py, which picks the slot.

Input typed while no firmware runs is dropped, like bytes sent to a board held in reset; output no
one reads is dropped once the crew port's buffer is full, like a USB CDC with no host attached.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import termios
import threading
import time
import tty
import weakref
from pathlib import Path

from nengjian_host.common import paths
from nengjian_host.sim import build as simbuild
from nengjian_host.sim.ptys import close_fds, open_raw_pty

DEFAULT_HEAP = "320k"
RESET_LINE = "@sim reset"  # boards/sim/board.py reset()
# Reset causes the launcher tells the firmware (nengjian.system.health.RESET_CAUSES)
POWER_ON, BROWN_OUT, RESET, SOFT_REBOOT, CRASH, WATCHDOG = (
    "power-on", "brown-out", "reset", "soft-reboot", "crash", "watchdog")
_BANNER = re.compile(r'^MicroPython .*; |Type "help\(\)" for more information')


def demo_site(platform_url: str, units=(1, 2), period_s: int = 60, interval_s: int = 5,
              enterprise: str = "91330000573973053F", region: str = "441900") -> dict:
    """A site config for simulated meters on bus rs485_0 and one reference platform."""
    meters = []
    items = []
    for i, unit in enumerate(units):
        mid = "m%d" % unit
        meters.append({"id": mid, "bus": "bus0", "profile": "sim-energy", "address": unit,
                       "interval_s": interval_s, "timeout_ms": 300})
        # The first meter is the whole-plant incomer (scope 1); the others feed processes 01, 02, ...
        code, scope = ("00-00-0000-023300-11", 1) if i == 0 else ("%02d-00-0000-023300-11" % i, 2)
        items.append({"code": code, "meter": mid, "point": "energy_kwh", "scope": scope, "min": 0, "max": 100000})
    return {
        "version": 1,
        "site": {"name": "sim site", "gateway": "NJ-SIM-1"},
        "enterprise": {"code": enterprise, "region": region},
        "realtime_period_s": period_s,
        "buses": [{"name": "bus0", "port": "rs485_0"}],
        "meters": meters,
        "items": items,
        "destinations": [{"name": "city", "profile": "ndrc-json", "url": platform_url, "batch": 50,
                          "timeout_ms": 5000}],
        "store": {"flush_records": 8, "flush_s": 2, "segment_kb": 32, "segments": 16},
    }


def _console_termios(fd: int) -> None:
    """Raw, no echo, no output processing (MicroPython writes its own CR LF in the REPL), no ISIG:
    0x03 is a byte for the firmware's console reader, not a signal (see the module docstring).
    VMIN=VTIME=0: reads never block."""
    tty.setraw(fd)
    a = termios.tcgetattr(fd)
    a[3] &= ~termios.ISIG
    a[6][termios.VMIN] = 0
    a[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, a)


class SimGateway:
    def __init__(self, workdir: str | Path, buses: dict[int, str] | None = None, heap: str = DEFAULT_HEAP,
                 env: dict | None = None, echo=None, data_kb: int = 4096, romfs: bool | str | Path | None = None):
        self.dir = Path(workdir).resolve()  # the firmware runs with its own cwd
        self.buses = buses or {}
        self.heap = heap
        # ROMFS mode: the package and profiles mounted from an image at /rom (boards/sim NJ_ROMFS), as an
        # ESP32 runs them from its romfs partition. True: the image of the built-in tree; a path: that
        # image; None: the default, on (the ESP32 boards run from ROMFS, and the sim runs what they run)
        # unless NJ_SIM_ROMFS=0 in the host's environment asks for the .mpy tree, or NJ_SIM_SOURCE=1
        # for the source. The image sits in the heap on the unix port, so -X heapsize grows by its size:
        # `heap` stays what the code gets.
        if romfs is None:
            romfs = os.environ.get("NJ_SIM_ROMFS", "1") != "0" and os.environ.get("NJ_SIM_SOURCE") != "1"
        self.romfs = romfs
        self.extra_env = env or {}
        self.echo = echo
        self.data_kb = data_kb
        # The built-in package (main.py beside nengjian/): the compiled tree of this checkout unless a
        # test boots another, e.g. an older release whose gateways must take today's updates.
        self.firmware: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.boots = 0
        self.causes: list[str] = []  # the reset cause each boot was told
        self.next_cause = POWER_ON
        self.app_stopped = False  # the application left to the REPL (Ctrl-C or an uncaught error)
        self._cond = threading.Condition()
        self._seen = 0
        self._partial = b""
        self._halt = False  # the host asked the process to end: no reboot
        self._reboot = False
        self._thread: threading.Thread | None = None
        (self.dir / "config").mkdir(parents=True, exist_ok=True)
        # Firmware side (the chip's UART) and crew side (what the laptop opens).
        self._fw_master, self._fw_slave = os.openpty()
        _console_termios(self._fw_slave)
        self._crew_master, self._crew_slave, self.port = open_raw_pty()
        for fd in (self._fw_master, self._crew_master, self._crew_slave):
            os.set_blocking(fd, False)
        self._fds = [self._fw_master, self._fw_slave, self._crew_master, self._crew_slave]
        self._finalizer = weakref.finalize(self, close_fds, self._fds)
        link = self.dir / "usb"
        try:
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(self.port)
        except OSError:
            pass

    @property
    def usb_link(self) -> Path:
        """A stable name for the crew-side port (a symlink to `port`)."""
        return self.dir / "usb"

    @property
    def config_path(self) -> Path:
        return self.dir / "config" / "site.json"

    @property
    def image_path(self) -> Path:
        return self.dir / "data.img"

    @property
    def button_path(self) -> Path:
        """The service button's line level (boards/sim/board.py NJ_BUTTON): outside config/, so the
        console's `put` cannot press it."""
        return self.dir / "button"

    def service_button(self, held: bool) -> None:
        """Hold or release the service button (BOOT on the ESP32 boards): replacing a trust anchor
        over the console needs it held."""
        self.button_path.write_text("0" if held else "1")

    @property
    def rtc_path(self) -> Path:
        """The sim board's own RTC (boards/sim/board.py NJ_RTC): its offset from simulated time, in s."""
        return self.dir / "rtc"

    def settable_rtc(self, offset_s: int = 0) -> None:
        """Give the board an RTC of its own that is `offset_s` off, which the firmware's clock sync sets
        (NTP, a platform's Date header) as on an ESP32; from the next boot."""
        self.rtc_path.write_text("%d\n" % offset_s)
        self.extra_env["NJ_RTC"] = str(self.rtc_path)

    def rtc_offset(self) -> int | None:
        """What the board's RTC is off from simulated time now (set_utc wrote it), None without one."""
        try:
            return int(self.rtc_path.read_text().strip() or "0")
        except (OSError, ValueError):
            return None

    def write_config(self, cfg: dict | str) -> None:
        text = cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)

    def builtin(self) -> Path:
        return self.firmware or simbuild.firmware_path()

    def romfs_path(self) -> Path | None:
        """The ROMFS image this gateway mounts (None: the .mpy tree is imported from directly): its
        own romfs.img, "flashed" at its first boot from the image given or built, and then the
        gateway's to write (its romfs partition; the stores are romfs_a.img and romfs_b.img, and the
        built image goes into romfs_b.img as `nengjian flash` writes it into the last store)."""
        if not self.romfs:
            return None
        own = self.dir / "romfs.img"
        if not own.exists():
            if self.romfs is not True:
                image = Path(self.romfs).read_bytes()
            elif self.firmware is None:
                image = simbuild.romfs_image().read_bytes()
            else:
                image = simbuild.romfs_image(self.dir / "romfs-built.img", self.firmware).read_bytes()
            image += b"\xff" * (-len(image) % 4096)  # whole erased blocks after it, as in a partition
            (self.dir / "romfs_b.img").write_bytes(image)
            own.write_bytes(image)
        return own

    def heapsize(self) -> str:
        """-X heapsize: `heap`, plus the ROMFS image in ROMFS mode (the unix port holds it in the heap)."""
        rom = self.romfs_path()
        if rom is None:
            return self.heap
        m = re.fullmatch(r"(\d+)([kKmM]?)", self.heap)
        if not m:
            return self.heap
        from nengjian_host.common import romfs

        unit = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
        return "%dk" % ((int(m.group(1)) * unit + romfs.image_length(rom.read_bytes()) + 1023) // 1024)

    def env(self) -> dict:
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([str(self.builtin()), str(paths.BOARDS / "sim"), ".frozen"])
        env["NJ_SIM_DIR"] = str(self.dir)
        env["NJ_PROFILES"] = str(paths.PROFILES)
        env["NJ_DATA_KB"] = str(self.data_kb)
        env["NJ_BUTTON"] = str(self.button_path)
        for n, path in self.buses.items():
            env["NJ_BUS%d" % n] = path
        env.update({k: str(v) for k, v in self.extra_env.items()})
        env["NJ_RESET_CAUSE"] = self.next_cause
        rom = self.romfs_path()
        if rom is not None:
            env["NJ_ROMFS"] = str(rom)
        return env

    # ---- process
    def _spawn(self) -> None:
        # A killed REPL may have left its own terminal mode behind; stale input is not the new boot's.
        _console_termios(self._fw_slave)
        termios.tcflush(self._fw_slave, termios.TCIFLUSH)
        cmd = [paths.micropython_binary(), "-X", "heapsize=" + self.heapsize(), "-i", str(self.builtin() / "main.py")]
        kw = {}
        setsid = shutil.which("setsid")
        # A session of its own, the console pty its controlling terminal: a Ctrl-C typed at the host's
        # terminal (SIGINT to the foreground process group) must not reach the firmware as a signal.
        if setsid:
            cmd = [setsid, "-c"] + cmd
        else:  # pragma: no cover - macOS
            kw["start_new_session"] = True
            kw["preexec_fn"] = _take_ctty
        self.proc = subprocess.Popen(cmd, env=self.env(), cwd=str(self.dir), stdin=self._fw_slave,
                                     stdout=self._fw_slave, stderr=self._fw_slave, close_fds=True, **kw)
        with self._cond:
            self.boots += 1
            self.causes.append(self.next_cause)
            self.app_stopped = False
            self._cond.notify_all()

    def start(self, cause: str | None = None) -> SimGateway:
        """Boot the firmware (power on); `cause` overrides the reset cause it is told."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        if cause:
            self.next_cause = cause
        if self._thread is not None:
            self._thread.join(5)
        self._halt = False
        self._reboot = False
        self._spawn()
        self._thread = threading.Thread(target=self._board, name="sim-board", daemon=True)
        self._thread.start()
        return self

    def _board(self) -> None:
        """Pumps the console between the two ptys, keeps lines, reboots on request."""
        poller = select.poll()
        poller.register(self._fw_master, select.POLLIN)
        poller.register(self._crew_master, select.POLLIN)
        while True:
            for fd, _ev in poller.poll(50):
                if fd == self._fw_master:
                    self._from_firmware()
                else:
                    self._from_crew()
            proc = self.proc
            if proc is None:
                return
            code = proc.poll()
            if code is None and not self._reboot:
                continue
            if code is None:  # the board asked for a reset
                proc.kill()
                proc.wait(10)
            self._from_firmware()
            soft = code == 0 and not self._halt
            if (self._reboot or soft) and not self._halt:
                self.next_cause = RESET if self._reboot else SOFT_REBOOT
                self._reboot = False
                self._spawn()
                continue
            if not self._halt:  # died by itself: a board would reset from the fault
                self.next_cause = CRASH
            with self._cond:
                self._cond.notify_all()
            return

    def _from_firmware(self) -> None:
        while True:
            try:
                data = os.read(self._fw_master, 4096)
            except BlockingIOError:
                return
            except OSError:
                return
            if not data:
                return
            self._to_crew(data)
            self._keep(data)

    def _to_crew(self, data: bytes) -> None:
        try:
            os.write(self._crew_master, data)
        except BlockingIOError:
            # No one reads the crew port: drop the oldest output, as a USB CDC without a host would.
            try:
                os.read(self._crew_slave, 65536)
                os.write(self._crew_master, data)
            except OSError:
                pass
        except OSError:
            pass

    def _from_crew(self) -> None:
        try:
            data = os.read(self._crew_master, 4096)
        except OSError:
            return
        if data and self.proc is not None and self.proc.poll() is None:
            try:
                os.write(self._fw_master, data)
            except OSError:
                pass  # the firmware does not read its console: bytes lost, as in a full UART FIFO

    def _keep(self, data: bytes) -> None:
        buf = self._partial + data
        *done, self._partial = buf.split(b"\n")
        new = [d.decode("utf-8", "replace").rstrip("\r") for d in done]
        if not new:
            return
        with self._cond:
            for line in new:
                self.lines.append(line)
                if _BANNER.search(line):
                    self.app_stopped = True
                if line.strip() == RESET_LINE:
                    self._reboot = True
            self._cond.notify_all()
        if self.echo:
            for line in new:
                self.echo(line)

    # ---- console
    def write_console(self, data: bytes | str) -> None:
        """Bytes as if typed on the crew's port (0x03 is Ctrl-C)."""
        if isinstance(data, str):
            data = data.encode()
        os.write(self._fw_master, data)

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match:
        """Wait for a console line matching `pattern` after the last one expected."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(self._seen, len(self.lines)):
                    m = rx.search(self.lines[i])
                    if m:
                        self._seen = i + 1
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or not self._board_alive():
                    tail = "\n".join(self.lines[-30:])
                    why = "within %s s" % timeout if left <= 0 else "before the firmware process ended"
                    raise TimeoutError(f"no line matching {pattern!r} {why}; last lines:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def _board_alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def alive(self) -> bool:
        """The firmware process runs and its application has not stopped to the REPL."""
        return self.proc is not None and self.proc.poll() is None and not self.app_stopped

    def down(self) -> bool:
        """Not running and nothing will boot it by itself: never started, powered off, ended, or its
        application stopped to the REPL. (A reboot in progress is not down.)"""
        return self.proc is None or self.app_stopped or not self._board_alive()

    def process_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ---- power and reset
    def kill(self) -> None:
        """Power cut: SIGKILL, nothing flushed or closed. The next boot is a power-on (unless the
        process had died by itself before: then the board reset from that crash)."""
        self._halt = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self.next_cause = POWER_ON
        if self._thread:
            self._thread.join(5)

    def power_cut(self, off_s: float = 0.0, brownout: bool = False) -> None:
        """Cut the power, leave it off for off_s, switch it on again; brownout: the supply only sagged
        (the chip's brown-out detector reset it)."""
        self.kill()
        if off_s:
            time.sleep(off_s)
        self.start(BROWN_OUT if brownout else POWER_ON)

    def crash(self, cause: str = CRASH) -> None:
        """A fault the board resets itself from: the process dies at once, nothing flushed, and boots
        again told `cause`: "crash" (a panic) or "watchdog" (the watchdog bit)."""
        self.kill()
        self.start(cause)

    def reset(self) -> None:
        """The EN (reset) pin: the process dies at once and the firmware boots again."""
        self.power_cut(0)

    def stop(self, timeout: float = 10) -> int | None:
        """Clean stop, like Ctrl-C on the console: the application ends (flushing the store), then
        Ctrl-D leaves the REPL."""
        self._halt = True
        proc = self.proc
        if proc and proc.poll() is None:
            try:
                if not self.app_stopped:
                    self.write_console(b"\x03")
                    self._wait(lambda: self.app_stopped or proc.poll() is not None, timeout)
                if proc.poll() is None and not self.app_stopped:
                    # The firmware does not read its console: a signal is the last resort (it may
                    # land inside C code, see the module docstring).
                    proc.send_signal(signal.SIGINT)
                    self._wait(lambda: self.app_stopped or proc.poll() is not None, 3)
                if proc.poll() is None:
                    self.write_console(b"\x04")  # Ctrl-D ends the unix port's REPL (raw or not)
                proc.wait(5)
            except (subprocess.TimeoutExpired, OSError):
                proc.kill()
                proc.wait(5)
        if self._thread:
            self._thread.join(5)
        self.next_cause = POWER_ON
        return proc.returncode if proc else None

    def _wait(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def close(self) -> None:
        """Stop the firmware and release the ptys (the crew port disappears)."""
        self.stop()
        self._finalizer()
        try:
            if self.usb_link.is_symlink():
                self.usb_link.unlink()
        except OSError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def _take_ctty() -> None:  # pragma: no cover - used where util-linux setsid is missing
    import fcntl

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
