"""The `sim` board: the MicroPython unix port standing in for a gateway.

The only module that knows this is a simulation. Everything comes from environment variables set
by the host launcher (`nengjian sim`, tests):

  NJ_SIM_DIR     directory of this simulated gateway: config/ (the app filesystem's /config),
                 app/ (APP_DIR: the A/B slots of signed updates, nengjian.ota; the .mpy tree the
                 launcher runs is the built-in package) and data.img (the data partition, a
                 littlefs2 image in a file)
  NJ_BUS<n>      pty path wired to RS-485 port rs485_<n> (the meters' side is the other end)
  NJ_PULSE<n>    file driving pulse input pulse_<n>: a timeline a test appends to. '0' / '1' are
                 line levels, '-' holds the line for SimPin.HOLD_MS, other bytes are ignored.
                 Levels between two holds arrive at one instant, so "0101" is contact bounce and
                 "0-1-" a clean pulse, however late the gateway reads the file. A pin reads
                 from the end of the file it finds at boot: what was written before is past
  NJ_DATA_KB     size of the data partition (default 4096 KiB, the target boards' data partition)
  NJ_PROFILES    directory of meter profiles (default <repo>/profiles/meters)
  NJ_BUTTON      file holding the service button's line level, as a test or a developer writes it:
                 '0' pressed (the line pulled low, as BOOT is on the ESP32 boards), '1' released;
                 the last '0' or '1' in the file counts. Unset or missing: never held
  NJ_STATUS_PORT port of the status page (none: not served unless the site config names one), on
                 NJ_STATUS_HOST (default 127.0.0.1)
  NJ_RTC         file of a settable RTC (offset from the simulated time in seconds; set_utc writes
                 it): clock sync then runs as on the ESP32 boards, untrusted until it has synced.
                 Unset: no set_utc, the sim's clock is the reference
  NJ_RESET_CAUSE why this process runs, as the launcher saw the one before end: one of the reset
                 causes of nengjian.system.health ("power-on" after a power cut, "crash" after the
                 process died by itself, "watchdog", "reset", ...); none: a process just started
  NJ_GC_THRESHOLD the application's gc.threshold in bytes (0: the port's own, a collection only
                 when the heap is full), for comparing heap figures; unset: nengjian.app.GC_SHARE
  NJ_FRAGMENT_HEAP  tests only: "HOLE[:module,...]": in a run that began at power-on, the application's
                 heap is fragmented once it has started, no free block much over HOLE bytes, the
                 modules imported first; a reset ends it, the boot path's heap never is (simfrag)
  NJ_ROMFS       a ROMFS image of the package and profiles (nengjian_host.common.romfs): mounted
                 through vfs.VfsRom at /rom and put first on sys.path when this module is imported,
                 as the ESP32 firmware mounts its romfs partition before main.py runs. The unix port
                 cannot map a file, so the image is read into the heap: ROMFS_BYTES says how much of
                 it to subtract (the launcher adds as much to -X heapsize)

A pty transfers instantly and ignores parity; the bus computes wire time from baud and framing,
so timing code runs as it would on the ESP32.
"""

import os
import select
import termios
import time

NAME = "sim"
DATA_MOUNT = "/data"
_DIR = os.getenv("NJ_SIM_DIR") or "."
CONFIG_DIR = _DIR + "/config"
# Relative where the process runs in the gateway's directory (the launcher starts it there): each
# module loaded from a slot interns its path as __file__, and "app/a/nengjian/..." costs about what
# "/app/a/..." costs on a board, where a temporary directory's long name costs some 4 KB of heap.
APP_DIR = "app" if os.getcwd() == _DIR else _DIR + "/app"
PROFILE_DIR = os.getenv("NJ_PROFILES") or "profiles/meters"
BLOCK_SIZE = 4096
ROM_MOUNT = "/rom"
ROMFS_BYTES = 0  # bytes of the heap the mounted ROMFS image takes (NJ_ROMFS); 0 without one
_gc = os.getenv("NJ_GC_THRESHOLD")
if _gc:  # the application's gc.threshold in bytes, 0 for the port's own (nengjian.app.GC_SHARE): to compare
    GC_THRESHOLD = int(_gc)


def _cold(fn, *args):
    """fn(*args) of simcold (boards/sim/simcold.py: the board's boot-time and operator code), loaded
    for the call and dropped after, as the ESP32 boards do with esp32_cold."""
    import sys

    import simcold

    try:
        return getattr(simcold, fn)(*args)
    finally:
        sys.modules.pop("simcold", None)


if os.getenv("NJ_ROMFS"):  # as the ESP32 firmware mounts its romfs partition: at /rom, first on sys.path
    ROMFS_BYTES = _cold("mount_romfs", os.getenv("NJ_ROMFS"), ROM_MOUNT)

_ROMFS_KB = 384  # each ROMFS partition of the ESP32 boards (partitions.csv: 0x60000)


def romfs_stores():
    """The ROMFS partitions as the ESP32 boards give them ({"active", "a", "b"}: block devices; simcold)."""
    return _cold("romfs_stores", os.getenv("NJ_ROMFS"), _DIR, _ROMFS_KB * 1024 // BLOCK_SIZE, BLOCK_SIZE)
# The status page (nengjian.console.page): on the sim only where the launcher names a port, so that
# parallel sims never fight over one; on loopback unless NJ_STATUS_HOST says otherwise.
STATUS_PORT = int(os.getenv("NJ_STATUS_PORT") or "0") or None
STATUS_HOST = os.getenv("NJ_STATUS_HOST") or "127.0.0.1"


_data_dev = None


def data_device():
    """The data partition: data.img, a littlefs image in a file (nengjian.store.filedev)."""
    global _data_dev
    if _data_dev is None:
        _data_dev = _cold("file_device", _DIR + "/data.img", int(os.getenv("NJ_DATA_KB") or "4096") * 1024 // BLOCK_SIZE,
                          BLOCK_SIZE)
    return _data_dev


def mount_data(format_if_blank=True):
    """Mount the data partition at DATA_MOUNT; returns the mount point. A blank (all 0xFF) partition
    is formatted; a damaged one raises OSError and is left as it is for a crew to pull, never wiped
    silently (nengjian.store.volume.mount, as on the ESP32 boards)."""
    from nengjian.store import volume

    return volume.mount(data_device(), DATA_MOUNT, format_if_blank)


class PtyPort:
    """An RS-485 port on a pty: the same calls the ESP32 board's UART port offers."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, "r+b")
        fd = self._f.fileno()
        termios.setraw(fd)
        attrs = termios.tcgetattr(fd)
        # Linux c_cc[VTIME]=5, c_cc[VMIN]=6 (MicroPython's termios does not name them): read()
        # returns what is there instead of blocking until n bytes arrive.
        attrs[6][5] = 0
        attrs[6][6] = 0
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN)
        self.line = None
        self.de_changes = 0

    def configure(self, baud, bits, parity, stop):
        # A pty has no baud rate or parity; wire timing is computed by the bus from these.
        self.line = (baud, bits, parity, stop)

    def de(self, on):
        self.de_changes += 1

    def write(self, buf):
        return self._f.write(buf)

    def txdone(self):
        return True

    def any(self):
        return 1 if self._poll.poll(0) else 0

    def readinto(self, buf):
        if not self._poll.poll(0):
            return 0
        n = self._f.readinto(buf)
        return n or 0


def SimPin(path, level=1):  # noqa: N802 - stands for the class, as machine.Pin does on a board
    """A pulse input pin (boards/sim/simpin.py), loaded only where the launcher wired one: a site
    without pulse meters holds none of its code."""
    from simpin import SimPin as Pin

    return Pin(path, level)


def _wired(var, prefix, count, make):
    """name -> factory, for what the launcher wired: env var<n> holds the path of <prefix>_<n>."""
    out = {}
    for i in range(count):
        path = os.getenv(var + str(i))
        if path:
            out["%s_%d" % (prefix, i)] = (lambda p=path: make(p))
    return out


def pulse_inputs():
    """name -> factory of the pin; only inputs wired by the launcher (NJ_PULSE<n>) exist."""
    return _wired("NJ_PULSE", "pulse", 8, SimPin)


def rs485_ports():
    """name -> factory of the port; only ports wired by the launcher (NJ_BUS<n>) exist."""
    return _wired("NJ_BUS", "rs485", 4, PtyPort)


_CLOCK_SPEED = float(os.getenv("NJ_CLOCK_SPEED") or "1")
_CLOCK_T0 = float(os.getenv("NJ_CLOCK_T0") or "0")
_CLOCK_S0 = float(os.getenv("NJ_CLOCK_S0") or "0")
# NJ_RTC: the file of a settable RTC of the sim's own. It holds the RTC's offset in seconds from the
# simulated time (the launcher may write one, e.g. a clock days off; set_utc writes it, and it
# outlives a reset as an RTC does). Without NJ_RTC the sim has no set_utc: the host keeps its clock
# by NTP and the sim's clock is the reference, trusted at boot.
_RTC = os.getenv("NJ_RTC") or ""


def _rtc_offset():
    try:
        with open(_RTC) as f:
            return int(f.read().strip() or "0")
    except (OSError, ValueError, TypeError):
        return 0


_offset = _rtc_offset() if _RTC else 0


def utc_now():
    """The RTC. Tests may run it faster than real time (NJ_CLOCK_SPEED, from host time NJ_CLOCK_T0
    at simulated time NJ_CLOCK_S0) so that a day of 15-minute periods passes in minutes."""
    t = time.time()
    if _CLOCK_SPEED == 1 and not _CLOCK_S0:
        return int(t) + _offset
    return int(_CLOCK_S0 + (t - _CLOCK_T0) * _CLOCK_SPEED) + _offset


if _RTC:
    def set_utc(seconds):
        """Set the RTC (nengjian.system.clock after a sync): the new offset goes to the NJ_RTC file,
        written aside and renamed so that a power cut leaves the old or the new one."""
        global _offset
        _offset += int(seconds) - utc_now()
        tmp = _RTC + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % _offset)
        os.rename(tmp, _RTC)

    def clock_trusted():
        """As on the ESP32 boards: trusted once nengjian.system.clock has synced this boot."""
        from nengjian.system import clock as clocksync

        return clocksync.trusted()
else:
    def clock_trusted():
        """The host keeps its clock by NTP; a real board trusts its RTC only after a sync."""
        return True


class Watchdog:
    """Stands in for machine.WDT: counts feeds so tests see the supervisor's behaviour."""

    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.feeds = 0

    def feed(self):
        self.feeds += 1


# ---- network (owned by the uplink: links, modem, PPP stand-in) ---------------------------------
#   NJ_LINKS       preference order, comma-separated: "host" (default), "modem", "host,modem"
#   NJ_MODEM       pty path of the simulated AT modem (nengjian_host.sim.modem)
#   NJ_MODEM_CTL   file the PWRKEY pulses are written to (the simulated modem watches it)
#   NJ_MODEM_TIMING  JSON overriding nengjian.net.modem.TIMING (tests shorten the waits)
#   NJ_APN, NJ_SIM_PIN  what a site config would give
#   NJ_ETH_CTL     file whose content "down" unplugs the host link (failover tests)


def network_links(cfg=None):
    """Links in preference order (NJ_LINKS; simcold). The sim's data path is always the host's network;
    the modem link only differs in how it comes up (AT dialogue on a pty) and goes down (NO CARRIER).
    Called as the application builds its destinations: where NJ_FRAGMENT_HEAP is set, the heap of a
    run that began at power-on is fragmented from its first yield on (boards/sim/simfrag.py)."""
    links = _cold("network_links", cfg or {}, HostLink, sim_modem_link)
    if os.getenv("NJ_FRAGMENT_HEAP") and (os.getenv("NJ_RESET_CAUSE") or "power-on") == "power-on":
        import simfrag

        simfrag.later(os.getenv("NJ_FRAGMENT_HEAP"))
    return links


class HostLink:
    """The host's network, standing in for Ethernet; NJ_ETH_CTL can unplug it. (The Link interface
    of nengjian.net.links, written out so that importing the board does not compile that module.)"""

    name = "host"
    kind = "ethernet"
    max_batch = 0

    def __init__(self):
        self._ctl = os.getenv("NJ_ETH_CTL")
        self.state = "down"
        self.last_error = ""
        self.ups = 0
        self.failures = 0

    def _plugged(self):
        if not self._ctl:
            return True
        try:
            with open(self._ctl) as f:
                return f.read().strip() != "down"
        except OSError:
            return True

    async def up(self):
        if self._plugged():
            self.state = "up"
            self.ups += 1
            self.failures = 0
            self.last_error = ""
            return True
        self.state = "failed"
        self.failures += 1
        self.last_error = "no carrier (cable unplugged)"
        return False

    def is_up(self):
        # Up until the supervisor (if any) says otherwise: without one, the host network just works.
        return self.state != "failed" and self._plugged()

    async def down(self):
        self.state = "down"

    async def power_cycle(self):
        self.state = "down"

    def rssi(self):
        return None

    def status(self):
        return {"link": self.name, "kind": self.kind, "state": self.state, "up": self.is_up(),
                "error": self.last_error, "ups": self.ups, "failures": self.failures}


class SimPwrKey:
    """PWRKEY of the simulated modem: each press is written to NJ_MODEM_CTL as 'pulse <ms>'."""

    def __init__(self, path):
        self.path = path
        self._t = 0

    def on(self):
        self._t = time.ticks_ms()

    def off(self):
        ms = time.ticks_diff(time.ticks_ms(), self._t)
        with open(self.path, "a") as f:
            f.write("pulse %d\n" % ms)


class SimPPP:
    """Stands in for network.PPP (the unix port has none): the data path is the host network.

    While "connected" the modem's UART is the PPP stream; the only thing the simulated modem
    ever says in data mode is NO CARRIER, which the driver's URC parser turns into carrier_lost."""

    def __init__(self, modem):
        self.modem = modem
        self._up = False

    def connect(self, **kw):
        self._up = True

    def isconnected(self):
        if self._up:
            self.modem.drain_urcs()
            if self.modem.carrier_lost:
                self._up = False
        return self._up

    def disconnect(self):
        self._up = False

    def ifconfig(self):
        return ("10.64.0.2", "255.255.255.255", "10.64.0.1", "127.0.0.53")


def sim_modem_link(cfg=None):
    return _cold("modem_link", cfg or {}, PtyPort, SimPwrKey, SimPPP)


def credentials():
    """What `nengjian provision` put in the sim's nj_keys/ directory ({"key", "cert"}: PEM bytes;
    simcold); the ESP32 boards read the same from their nj_keys NVS partition."""
    return _cold("credentials", _DIR)


def service_button_held():
    """The service button (NJ_BUTTON; simcold), read when a console request needs it
    (nengjian.console.guard): trust anchors are replaced only while it is held."""
    return _cold("button_held", os.getenv("NJ_BUTTON"))


def unique_id():
    return (os.getenv("NJ_SIM_ID") or "sim-0000").encode()


# ---- console (the USB serial port of the sim is the process's stdio on a pty; see nengjian_host.sim.gateway)

RESET_LINE = "@sim reset"


def reset_cause():
    """machine.reset_cause() of the sim, board-neutral: what the launcher put in NJ_RESET_CAUSE (simcold)."""
    return _cold("reset_cause", os.getenv("NJ_RESET_CAUSE"))


def reset():
    """machine.reset() of the sim: the launcher (nengjian_host.sim.gateway.SimGateway, the sim's "hardware")
    sees this line on the console, kills the process and boots it again (main.py, so an update's
    slot is selected anew). Without a launcher nothing can restart the process: it then stops here,
    as a board with a stuck reset would. (An exit code cannot say it: `micropython -i` turns
    SystemExit into the REPL.)"""
    import sys

    # On a line of its own even if the console was cut off mid-line.
    sys.stdout.write("\n" + RESET_LINE + "\n")
    for _ in range(100):
        time.sleep_ms(100)
    raise SystemExit(1)


# As on the ESP32 boards (esp32_common): before main.py imports anything from /rom.
_cold("switch_romfs", romfs_stores, APP_DIR, reset)
