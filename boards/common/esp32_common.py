"""What every ESP32 board does the same way: paths, the data volume, watchdog, reset, RS-485 ports and
pulse inputs built from a pin table, the modem link, the RTC, and the credentials in `nj_keys`.

Owns no pin and no hardware fact: each board file (boards/<name>/board.py, the device's `board`
module, the only module the firmware imports) keeps its pins, PHY and modem wiring and passes them
in. On the device this is /lib/esp32_common.mpy, bundled for the boards whose board.json lists it
under "shared" (nengjian_host.common.bundle). Not named `esp32`: that would shadow MicroPython's module.

Nothing from `nengjian` is imported at module level: main.py imports `board` before nengjian.ota
picks the application slot, and a module bound here would be the built-in one, not the slot's.
"""

import struct
import time

import esp32
import machine
import network

try:
    from binascii import crc32
except ImportError:  # a port built without it: entries are taken unchecked
    crc32 = None

# ---- the board API every ESP32 board takes as it is: its board.py does `from esp32_common import *`
# and adds what it knows itself (NAME, pins, rs485_ports, pulse_inputs, network_links). MicroPython
# honours __all__ there (MICROPY_MODULE___ALL__, on from the basic feature level up: the ESP32 and
# unix ports; tests/boards/test_esp32_boards.py checks it on the unix port). A build without it would
# bind every public name of this module, harmless: the board's own definitions come after the import.
__all__ = [
    "APP_DIR",
    "CONFIG_DIR",
    "DATA_MOUNT",
    "PROFILE_DIR",
    "ROMFS_BYTES",
    "ROM_MOUNT",
    "STATUS_HOST",
    "STATUS_PORT",
    "Watchdog",
    "clock_trusted",
    "credentials",
    "mount_data",
    "reset",
    "reset_cause",
    "romfs_stores",
    "set_utc",
    "unique_id",
]

# ---- where things live
# The app filesystem (partition `vfs`, littlefs, mounted at / by MicroPython's boot code) is what
# nengjian_host.common.bundle writes: /main.py, /lib, /profiles/meters, /config (provisioned).
DATA_MOUNT = "/data"
CONFIG_DIR = "/config"
PROFILE_DIR = "/profiles/meters"
DATA_LABEL = "data"
KEYS_LABEL = "nj_keys"
KEYS_NAMESPACE = "nj"  # nengjian_host.install.provision.NVS_NAMESPACE
# The status page (nengjian.console.page), where the site serves it: HTTP on the Ethernet link's own
# address; STATUS_HOST only for a LAN link without a NIC of its own (none on these boards).
STATUS_PORT = 80
STATUS_HOST = "0.0.0.0"
# Signed update slots (nengjian.ota): /app/a, /app/b and the pointer /app/current. They must be on
# the app filesystem: main.py picks the slot before the app runs, when only / is mounted (the data
# partition is mounted later, and is the thing safe mode exists for). The bundle never writes under
# app/ (bundle.RESERVED), so `flash --sync` leaves the slots alone; a full reflash rebuilds the app
# filesystem from the bundle plus /config and drops them, so the gateway runs the package just
# flashed rather than a slot compiled for another MicroPython. The package itself runs from ROMFS (the
# `romfs` partition, ROM_MOUNT): the 832 KiB vfs keeps room to receive a bundle beside the base image
# (tests/host/install/test_bundle_flash.py checks), not for two packages; ota.Updater refuses an update
# that would not fit.
APP_DIR = "/app"


# ---- data volume
def mount_data(format_if_blank=True):
    """Mount the littlefs data partition at DATA_MOUNT; returns the mount point.

    A blank partition (all 0xFF) is formatted; a damaged one raises OSError and is left as it is
    for a crew to pull, never wiped: the app starts safe mode instead (stored data lives on its own
    partition because the stock boot code loops forever on a corrupt root filesystem). The rule is
    nengjian.store.volume.mount's, the sim board's too.
    """
    from nengjian.store import volume

    return volume.mount(_partition(DATA_LABEL), DATA_MOUNT, format_if_blank)


def _partition(label):
    parts = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
    if not parts:
        raise OSError(19, "no partition labelled %s" % label)  # ENODEV
    return parts[0]


# ---- ROMFS (boards/<name>/partitions.csv, board.json "romfs")
# MicroPython mounts the partition labelled `romfs` at /rom before main.py runs (memory-mapped: its
# image takes no heap, hence ROMFS_BYTES 0) and finds only that one, so the images of signed updates
# wait in the stores until romcopy (firmware/romcopy.py) copies the chosen one into it at boot.
ROM_MOUNT = "/rom"
ROMFS_BYTES = 0
ROMFS_LABEL = "romfs"
ROMFS_STORES = (("a", "romfs_a"), ("b", "romfs_b"))


def romfs_stores():
    """{"active": the `romfs` partition, "a": romfs_a, "b": romfs_b} as esp32.Partition objects (4 KiB
    blocks: readblocks, writeblocks with an offset programs without erasing, ioctl 6 erases); {} on
    a gateway whose partition table has none of them (flashed before they came in)."""
    try:
        out = {"active": _partition(ROMFS_LABEL)}
        for slot, label in ROMFS_STORES:
            out[slot] = _partition(label)
    except OSError:
        return {}
    return out


# ---- watchdog, identity, reset
class Watchdog:
    """machine.WDT: once started it cannot be stopped; the app's supervisor feeds it."""

    def __init__(self, timeout_ms):
        self._wdt = machine.WDT(timeout=timeout_ms)
        self.timeout_ms = timeout_ms

    def feed(self):
        self._wdt.feed()


def unique_id():
    return machine.unique_id()


def reset():
    machine.reset()


def reset_cause():
    """Why the chip booted, as a nengjian.system.health reset cause. The ESP32 port (modmachine.c,
    MicroPython 1.26 to 1.29) reports ESP_RST_BROWNOUT as PWRON_RESET and ESP_RST_PANIC as HARD_RESET,
    as it does machine.reset() (ESP_RST_SW): a brown-out reads as a power-on, neither a crash, and a
    panic as a reset, a crash unless the firmware said beforehand that it reset on purpose
    (health.BootGuard.planned). The watchdogs (task, interrupt, RTC) are WDT_RESET; SOFT_RESET is
    MicroPython's soft reboot, the chip still running. DEEPSLEEP_RESET never happens here (the
    gateway does not sleep) and counts, with ESP_RST_UNKNOWN (0), as unknown."""
    from nengjian.system import health

    c = machine.reset_cause()
    if c == machine.PWRON_RESET:
        return health.POWER_ON
    if c == machine.WDT_RESET:
        return health.WATCHDOG
    if c == machine.HARD_RESET:
        return health.RESET
    if c == machine.SOFT_RESET:
        return health.SOFT_REBOOT
    return health.UNKNOWN


# ---- RS-485 and pulse inputs, from the board's pin tables
def rs485_ports(table):
    """name -> factory of the port (rs485_uart: machine.UART plus the DE/RE pin), from
    {name: (uart id, TX, RX, DE/RE)}."""
    from rs485_uart import UartPort

    out = {}
    for name, (uart, tx, rx, de) in table.items():
        out[name] = (lambda u=uart, t=tx, r=rx, d=de: UartPort(u, t, r, d))
    return out


def pulse_inputs(table, pull_up):
    """name -> factory of the input pin (nengjian.meters.pulse attaches an IRQ on both edges), from
    {name: GPIO}; pull_up False where the board carries pull-up resistors."""
    pull = machine.Pin.PULL_UP if pull_up else None
    out = {}
    for name, gpio in table.items():
        out[name] = (lambda g=gpio: machine.Pin(g, machine.Pin.IN, pull))
    return out


def io_from_pins(rs485, pulse, pull_up):
    """The board's rs485_ports() and pulse_inputs() (no arguments, as the firmware calls them), from
    its pin tables: `rs485_ports, pulse_inputs = common.io_from_pins(RS485, PULSE, pull_up=...)`."""
    return (lambda: rs485_ports(rs485)), (lambda: pulse_inputs(pulse, pull_up))


# ---- the service button (nengjian.console.guard: trust anchors are replaced only while it is held)
def button_held(gpio, configure=True, samples=64):
    """The button on `gpio` (pressed pulls the line low, as BOOT does) is held: `samples` reads in a
    row all low. configure=False reads the pin without taking it from the peripheral it serves (GPIO0
    as the Ethernet PHY's clock input): a running clock reads high somewhere in the run, so it is
    never taken for a held button. The board's service_button_held() calls this with its pin."""
    pin = machine.Pin(gpio, machine.Pin.IN, machine.Pin.PULL_UP) if configure else machine.Pin(gpio)
    for _ in range(samples):
        if pin.value() != 0:
            return False
    return True


# ---- the modem link (nengjian.net: the board supplies UART, PWRKEY and network.PPP)
class PwrKey:
    """The GPIO driving the modem's PWRKEY (through a transistor on our boards: high = pressed)."""

    def __init__(self, pin_no):
        self._pin = machine.Pin(pin_no, machine.Pin.OUT, value=0)

    def on(self):
        self._pin.value(1)

    def off(self):
        self._pin.value(0)


class Ppp:
    """network.PPP on the modem's UART, started only after the driver saw CONNECT (SPEC 7: the
    application dials; MicroPython >= 1.26 for the disconnect fixes - board.json pins the minimum)."""

    def __init__(self, modem):
        self._ppp = network.PPP(modem.port)
        if hasattr(self._ppp, "active"):
            self._ppp.active(True)

    def connect(self):
        self._ppp.connect()

    def isconnected(self):
        return self._ppp.isconnected()

    def disconnect(self):
        try:
            self._ppp.disconnect()
        finally:
            if hasattr(self._ppp, "active"):
                self._ppp.active(False)

    def ifconfig(self):
        return self._ppp.ifconfig()


_uarts = {}


def modem_uart(uart_id, tx, rx, baud):
    """One machine.UART per id for the whole run: the links are rebuilt on a config reload."""
    u = _uarts.get(uart_id)
    if u is None:
        # timeout=0: reads return what is there; the AT driver polls. rxbuf holds a burst of URCs.
        u = machine.UART(uart_id, baudrate=baud, tx=tx, rx=rx, rxbuf=2048, timeout=0, timeout_char=0)
        _uarts[uart_id] = u
    return u


def cellular_link(cfg, uart_id, tx, rx, pwrkey, baud=115200):
    """The 4G link; cfg is the site's network section (apn, pin, dial)."""
    from nengjian.net import cellular, modem

    m = modem.Modem(modem_uart(uart_id, tx, rx, baud), PwrKey(pwrkey), apn=cfg.get("apn", ""),
                    pin=cfg.get("pin"), dial=cfg.get("dial", "atd"))
    return cellular.CellularLink(m, Ppp, name="4g")


# ---- time (nengjian.system.clock sets and trusts the RTC)
def clock_trusted():
    from nengjian.system import clock as clocksync

    return clocksync.trusted()


def set_utc(seconds):
    """Set the RTC to UTC seconds since 1970 (the ESP32 port's epoch is 2000 before 1.22 builds)."""
    shift = 0 if time.gmtime(0)[0] == 1970 else 946684800
    t = time.gmtime(seconds - shift)
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


# ---- credentials
# nengjian_host.install.provision writes the gateway's key, certificate and ids into the `nj_keys` NVS
# partition (namespace "nj"). esp32.NVS() opens only the default `nvs` partition, so the page
# format is read here (ESP-IDF "NVS" format, as esp-idf-nvs-partition-gen writes it): pages of
# 4096 bytes with a 32-byte header (state, sequence, version, CRC), a 32-byte bitmap of 2-bit entry
# states, then 126 entries of 32 bytes: namespace index, type, span, chunk index, header CRC32,
# key (16 bytes), data (8 bytes); a string or blob chunk's bytes fill the span - 1 entries after it.
# Not in `nvs` on purpose: that partition is MicroPython's and ESP-IDF's (PHY calibration, Wi-Fi,
# esp32.NVS) and only a whole-partition image could put entries there, wiping theirs; a reflash of
# the app leaves both alone; and the key stays off the app filesystem, which `nengjian flash` backs
# up to the crew's laptop. The gateway only reads nj_keys, so pages are taken
# in flash order and a later duplicate of a key wins; only `active`/`full` pages are read.
_PAGE = 4096
_ENTRIES = 126
_ACTIVE, _FULL = 0xFFFFFFFE, 0xFFFFFFFC
_U8, _SZ, _BLOB, _BLOB_DATA, _BLOB_IDX = 0x01, 0x21, 0x41, 0x42, 0x48


def credentials():
    """The gateway's credentials: {"key": private key (PKCS#8 PEM, bytes), "cert": its certificate
    (PEM bytes, once issued), "gateway": id, "enterprise": credit code}; {} if never provisioned.
    Read from flash on every call: the caller keeps the key no longer than it needs it."""
    return nvs_read(_partition(KEYS_LABEL), KEYS_NAMESPACE)


def _crc_ok(data, want):
    return crc32 is None or crc32(data, 0xFFFFFFFF) & 0xFFFFFFFF == want


def _head_ok(mv, at):
    """The entry's CRC32 covers its bytes 0-3 and 8-31 (not the CRC field itself)."""
    if crc32 is None:
        return True
    got = crc32(mv[at + 8:at + 32], crc32(mv[at:at + 4], 0xFFFFFFFF)) & 0xFFFFFFFF
    return got == struct.unpack_from("<I", mv, at + 4)[0]


def nvs_read(dev, namespace):
    """{key: str or bytes} of one namespace of an NVS partition on block device `dev` (4096-byte
    blocks: esp32.Partition). Strings come back as str, blobs as bytes; an entry whose CRC does not
    match is skipped, as ESP-IDF skips it; integers are not read (provisioning writes none)."""
    buf = bytearray(_PAGE)
    mv = memoryview(buf)
    ns_index = {}  # namespace name -> index
    items = {}  # type: dict  # (index, key) -> str/bytes, or {chunk: bytes} for blob v2 data
    index = {}  # (index, key) -> (size, chunk count, first chunk) of a blob v2
    for page in range(dev.ioctl(4, 0)):
        dev.readblocks(page, buf)
        if struct.unpack_from("<I", buf, 0)[0] not in (_ACTIVE, _FULL):
            continue
        i = 0
        while i < _ENTRIES:
            at = 64 + 32 * i
            span = buf[at + 2]
            if (buf[32 + i // 4] >> (i % 4 * 2)) & 3 != 2 or not 0 < span <= _ENTRIES - i:
                i += 1  # empty, erased or not a header
                continue
            i += span
            if not _head_ok(mv, at):
                continue
            ns, typ, chunk = buf[at], buf[at + 1], buf[at + 3]
            key = bytes(mv[at + 8:at + 24]).split(b"\0")[0].decode()
            if ns == 0:
                if typ == _U8:
                    ns_index[key] = buf[at + 24]
            elif typ in (_SZ, _BLOB, _BLOB_DATA):
                size = struct.unpack_from("<H", buf, at + 24)[0]
                data = mv[at + 32:at + 32 + size]
                if size > 32 * (span - 1) or not _crc_ok(data, struct.unpack_from("<I", buf, at + 28)[0]):
                    continue
                if typ == _SZ:
                    items[(ns, key)] = bytes(data).split(b"\0")[0].decode()
                elif typ == _BLOB:
                    items[(ns, key)] = bytes(data)
                else:
                    parts = items.get((ns, key))
                    if not isinstance(parts, dict):
                        parts = items[(ns, key)] = {}
                    parts[chunk] = bytes(data)
            elif typ == _BLOB_IDX:
                index[(ns, key)] = struct.unpack_from("<IBB", buf, at + 24)
    want = ns_index.get(namespace)
    out = {}
    for (ns, key), value in items.items():
        if ns != want:
            continue
        if isinstance(value, dict):
            if (ns, key) not in index:
                continue
            size, count, first = index[(ns, key)]
            value = b"".join(value.get(first + j, b"") for j in range(count))
            if len(value) != size:
                continue  # a chunk is missing or damaged: the blob is not there
        out[key] = value
    return out


def _switch_romfs():
    # At import, so before main.py imports anything from /rom: the copy erases that image. Whatever
    # fails here, the board module must still import (romcopy.at_boot says why it did not switch).
    try:
        parts = romfs_stores()
    except Exception:  # noqa: BLE001 - an esp32 module without Partition (a port or stand-in without it)
        return
    if not parts:
        return
    try:
        import romcopy
    except ImportError:  # an app filesystem from before it came in: nothing to switch
        return
    romcopy.at_boot(APP_DIR, parts, reset)


_switch_romfs()
