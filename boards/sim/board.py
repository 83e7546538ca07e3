"""The `sim` board: the MicroPython unix port standing in for a gateway.

The only module that knows this is a simulation. Everything comes from environment variables set
by the host launcher (`nengjian sim`, tests):

  NJ_SIM_DIR     directory of this simulated gateway: config/ (the app filesystem's /config) and
                 data.img (the data partition, a littlefs2 image in a file)
  NJ_BUS<n>      pty path wired to RS-485 port rs485_<n> (the meters' side is the other end)
  NJ_DATA_KB     size of the data partition (default 4096 KiB, the target boards' data partition)
  NJ_PROFILES    directory of meter profiles (default <repo>/profiles/meters)

A pty transfers instantly and ignores parity; the bus computes wire time from baud and framing,
so timing code runs as it would on the ESP32.
"""

import os
import select
import termios
import time

import vfs

NAME = "sim"
DATA_MOUNT = "/data"
_DIR = os.getenv("NJ_SIM_DIR") or "."
CONFIG_DIR = _DIR + "/config"
PROFILE_DIR = os.getenv("NJ_PROFILES") or "profiles/meters"
BLOCK_SIZE = 4096


class FileBlockDevice:
    """littlefs block device backed by a host file. Methods allocate nothing: littlefs may call
    them with the heap locked."""

    def __init__(self, path, blocks, block_size=BLOCK_SIZE):
        self.block_size = block_size
        self.blocks = blocks
        try:
            self._f = open(path, "r+b")
        except OSError:
            self._f = open(path, "w+b")
        end = self._f.seek(0, 2)
        want = blocks * block_size
        if end < want:
            self._erased = b"\xff" * block_size
            self._f.seek(end - end % block_size)
            for _ in range((want - end + block_size - 1) // block_size):
                self._f.write(self._erased)
        self._erased = b"\xff" * block_size
        self.writes = 0
        self.erases = 0

    def readblocks(self, block, buf, offset=0):
        self._f.seek(block * self.block_size + offset)
        self._f.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            offset = 0
        self._f.seek(block * self.block_size + offset)
        self._f.write(buf)
        self.writes += 1

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            self._f.seek(arg * self.block_size)
            self._f.write(self._erased)
            self.erases += 1
            return 0
        if op == 3:
            self._f.flush()
        return 0


_data_dev = None


def data_device():
    global _data_dev
    if _data_dev is None:
        kb = int(os.getenv("NJ_DATA_KB") or "4096")
        _data_dev = FileBlockDevice(_DIR + "/data.img", kb * 1024 // BLOCK_SIZE)
    return _data_dev


def mount_data(format_if_blank=True):
    """Mount the data partition at DATA_MOUNT; returns the mount point.

    A blank (all 0xFF) partition is formatted; a damaged one raises OSError and is left as it is
    for a crew to pull, never wiped silently.
    """
    dev = data_device()
    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        if not format_if_blank or not _is_blank(dev):
            raise
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, DATA_MOUNT)
    return DATA_MOUNT


def _is_blank(dev):
    buf = bytearray(64)
    for block in (0, 1):
        dev.readblocks(block, buf)
        for b in buf:
            if b != 0xFF:
                return False
    return True


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


def rs485_ports():
    """name -> factory of the port; only ports wired by the launcher exist."""
    ports = {}
    for i in range(4):
        path = os.getenv("NJ_BUS%d" % i)
        if path:
            ports["rs485_%d" % i] = (lambda p=path: PtyPort(p))
    return ports


_CLOCK_SPEED = float(os.getenv("NJ_CLOCK_SPEED") or "1")
_CLOCK_T0 = float(os.getenv("NJ_CLOCK_T0") or "0")
_CLOCK_S0 = float(os.getenv("NJ_CLOCK_S0") or "0")


def utc_now():
    """The RTC. Tests may run it faster than real time (NJ_CLOCK_SPEED, from host time NJ_CLOCK_T0
    at simulated time NJ_CLOCK_S0) so that a day of 15-minute periods passes in minutes."""
    t = time.time()
    if _CLOCK_SPEED == 1 and not _CLOCK_S0:
        return int(t)
    return int(_CLOCK_S0 + (t - _CLOCK_T0) * _CLOCK_SPEED)


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


def network_links():
    """The sim's network is the host's: one link that is always up."""
    return [HostLink()]


class HostLink:
    name = "host"
    kind = "ethernet"

    async def up(self):
        return True

    def is_up(self):
        return True

    def status(self):
        return {"link": "host", "up": True}


def unique_id():
    return (os.getenv("NJ_SIM_ID") or "sim-0000").encode()


