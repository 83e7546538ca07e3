"""The ESP32 boards' cold code: what runs once at boot (the reset cause, the ROMFS switch), on an
operator's request (the service button) or when credentials are read (the `nj_keys` NVS reader).
esp32_common loads this module for the call and drops it after (its _cold), so none of it holds
heap while the gateway runs; it imports nothing of esp32_common: what it needs is handed in.
On the device this is /lib/esp32_cold.mpy (board.json "shared").
"""

import struct

import machine

try:
    from binascii import crc32
except ImportError:  # a port built without it: entries are taken unchecked
    crc32 = None


# ---- boot
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


def switch_romfs(stores, app_dir, reset):
    # stores: esp32_common.romfs_stores. Whatever fails here, the board module must still import
    # (romcopy.at_boot says why it did not switch).
    try:
        parts = stores()
    except Exception:  # noqa: BLE001 - an esp32 module without Partition (a port or stand-in without it)
        return
    if not parts:
        return
    try:
        import romcopy
    except ImportError:  # an app filesystem from before it came in: nothing to switch
        return
    romcopy.at_boot(app_dir, parts, reset)


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


# ---- credentials (esp32_common.credentials)
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
