"""What every ESP32 board does the same way: paths, the data volume, watchdog, reset, RS-485 ports and
pulse inputs built from a pin table, the modem link, the RTC, and the credentials in `nj_keys`.

Owns no pin and no hardware fact: each board file (boards/<name>/board.py, the device's `board`
module, the only module the firmware imports) keeps its pins, PHY and modem wiring and passes them
in. On the device this is /lib/esp32_common.mpy, bundled for the boards whose board.json lists it
under "shared" (nengjian_host.common.bundle). Not named `esp32`: that would shadow MicroPython's module.

Nothing from `nengjian` is imported at module level: main.py imports `board` before nengjian.ota
picks the application slot, and a module bound here would be the built-in one, not the slot's.
"""

import time

import esp32
import machine

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
    """Why the chip booted, as a nengjian.system.health reset cause (esp32_cold)."""
    return _cold("reset_cause")


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
    """All `samples` reads of `gpio` low (esp32_cold); the board's service_button_held() calls this."""
    return _cold("button_held", gpio, configure, samples)


# ---- the modem link (boards/common/esp32_modem.py: loaded where a board links a modem, kept while it runs)
def cellular_link(cfg, uart_id, tx, rx, pwrkey, baud=115200):
    """The 4G link; cfg is the site's network section (apn, pin, dial)."""
    import esp32_modem

    return esp32_modem.cellular_link(cfg, uart_id, tx, rx, pwrkey, baud)


# ---- time (nengjian.system.clock sets and trusts the RTC)
def clock_trusted():
    from nengjian.system import clock as clocksync

    return clocksync.trusted()


def set_utc(seconds):
    """Set the RTC to UTC seconds since 1970 (the ESP32 port's epoch is 2000 before 1.22 builds)."""
    shift = 0 if time.gmtime(0)[0] == 1970 else 946684800
    t = time.gmtime(seconds - shift)
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


def _cold(fn, *args):
    """fn(*args) of esp32_cold, the boards' boot-time and operator code, loaded for the call and
    dropped after."""
    import sys

    import esp32_cold

    try:
        return getattr(esp32_cold, fn)(*args)
    finally:
        sys.modules.pop("esp32_cold", None)


# ---- credentials (esp32_cold: the `nj_keys` NVS partition's reader and its format)
def credentials():
    """The gateway's credentials: {"key": private key (PKCS#8 PEM, bytes), "cert": its certificate
    (PEM bytes, once issued), "gateway": id, "enterprise": credit code}; {} if never provisioned.
    Read from flash on every call: the caller keeps the key no longer than it needs it."""
    return _cold("nvs_read", _partition(KEYS_LABEL), KEYS_NAMESPACE)


def nvs_read(dev, namespace):
    """{key: str or bytes} of one namespace of an NVS partition on block device `dev` (esp32_cold)."""
    return _cold("nvs_read", dev, namespace)


# At import, so before main.py imports anything from /rom: the copy erases that image.
_cold("switch_romfs", romfs_stores, APP_DIR, reset)
