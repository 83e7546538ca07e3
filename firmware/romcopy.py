"""The ROMFS switch at boot: copy the store of the chosen update slot into the partition MicroPython
mounts at /rom, so that a power cut at any write leaves either the old image with nothing to do, or
a copy to finish at the next boot.

Why a copy: the stock ESP32 firmware mounts only the partition labelled `romfs` (one ROMFS segment
from vfs.rom_ioctl, memory-mapped), so an A/B choice between two mounted images is impossible. The
board has `romfs` (the image that runs) and two stores, `romfs_a` and `romfs_b`
(board.romfs_stores(): {"active": partition, "a": partition, "b": partition}, each with the block
protocol of esp32.Partition: readblocks, writeblocks with an offset, ioctl 4/5/6). Slot "a" of a
signed update (nengjian.ota.slots) keeps its image in store a, slot "b" in store b; the image
`nengjian flash` wrote (the built-in package, slot "") is in store b too, which the first update
never takes (it installs into a).

Not part of the `nengjian` package, on purpose: the package runs from the ROMFS image, and this
erases that image. So this module is on the app filesystem (/lib/romcopy.mpy, loaded into RAM) and
imports nothing from nengjian. The board module runs at_boot() as it is imported - main.py imports
`board` before anything else, so before anything is imported from /rom (main.py itself never
changes on a gateway) - and resets the board after a copy, since the mounted image is then stale.

State, beside the update pointer in the board's APP_DIR (written by rename, which littlefs does
atomically):
    romfs.json   {"holds": "a" or "b", "len": image bytes, "sha256": hex}: what `romfs` holds once a
                 copy is done and checked; missing: the image `nengjian flash` wrote (store b's)
    romfs.copy   the marker: present from before the first erase until the copy is checked and
                 romfs.json says so. Present at boot: `romfs` may be torn, the copy is done again
"""

import json
import os

try:
    from hashlib import sha256
except ImportError:  # pragma: no cover
    from uhashlib import sha256

POINTER = "current"  # nengjian.ota.slots.POINTER: its name and format never change
STATE = "romfs.json"
MARKER = "romfs.copy"
BUILTIN_STORE = "b"
HEADER = b"\xd2\xcd\x31"  # a ROMFS image's first bytes (MicroPython extmod/vfs_rom.c)
ERASE = 6
BLOCK_COUNT = 4
BLOCK_SIZE = 5


class CopyError(Exception):
    pass


def store_of(slot):
    """The store holding slot `slot`'s image ("" the built-in package)."""
    return slot if slot in ("a", "b") else BUILTIN_STORE


def _read_json(path):
    try:
        with open(path) as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError):
        return None


def _write_json(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def wanted(root):
    """The store whose image should run: the active slot's of the update pointer."""
    p = _read_json(root + "/" + POINTER)
    return store_of(p.get("active") if p else "")


def holds(root):
    """The store whose image `romfs` holds when no copy is under way."""
    s = _read_json(root + "/" + STATE)
    h = s.get("holds") if s else None
    return h if h in ("a", "b") else BUILTIN_STORE


def needed(root):
    """True if boot() would copy: a copy was cut short, or the pointer chose another store."""
    return _exists(root + "/" + MARKER) or holds(root) != wanted(root)


def _check(r, what):
    # esp32.Partition raises; the sim's block devices (nengjian.store.blockdev) return -errno.
    if r:
        raise OSError(-r if r < 0 else r, what)


def image_len(dev, buf):
    """Bytes of the ROMFS image at the start of dev (0 if there is none); buf: one block."""
    _check(dev.readblocks(0, buf, 0), "read")
    if buf[0] != HEADER[0] or buf[1] != HEADER[1] or buf[2] != HEADER[2]:
        return 0
    n = 0
    i = 3
    while i < 16:
        b = buf[i]
        n = (n << 7) | (b & 0x7F)
        i += 1
        if not b & 0x80:
            return i + n
    return 0


def _digest(dev, length, buf):
    h = sha256()
    bs = len(buf)
    mv = memoryview(buf)
    block = 0
    while length > 0:
        _check(dev.readblocks(block, buf, 0), "read")
        n = bs if length > bs else length
        h.update(mv[:n])
        length -= n
        block += 1
    return h.digest()


def copy(root, parts, store):
    """Copy store `store`'s image into parts["active"] and record it; CopyError if the store holds
    no image or it does not fit, OSError if flash or the app filesystem fails (the marker then
    stays: the next boot copies again)."""
    src = parts[store]
    dst = parts["active"]
    bs = dst.ioctl(BLOCK_SIZE, 0)
    buf = bytearray(bs)
    length = image_len(src, buf)
    if not length:
        raise CopyError("store %s holds no ROMFS image" % store)
    blocks = (length + bs - 1) // bs
    if blocks > dst.ioctl(BLOCK_COUNT, 0) or src.ioctl(BLOCK_SIZE, 0) != bs:
        raise CopyError("the image of store %s (%d bytes) does not fit the romfs partition" % (store, length))
    _write_json(root + "/" + MARKER, {"to": store})
    h = sha256()
    mv = memoryview(buf)
    left = length
    for block in range(blocks):
        _check(src.readblocks(block, buf, 0), "read")
        n = bs if left > bs else left
        h.update(mv[:n])
        left -= n
        _check(dst.ioctl(ERASE, block), "erase")
        _check(dst.writeblocks(block, buf, 0), "write")
    digest = h.digest()
    if _digest(dst, length, buf) != digest:
        raise OSError(5, "romfs does not read back as store %s" % store)
    _write_json(root + "/" + STATE, {"holds": store, "len": length, "sha256": _hex(digest)})
    os.remove(root + "/" + MARKER)
    return length


def fill(part, f, length, buf):
    """Write `length` bytes read from file object f into partition `part` from its first block
    (erasing each block first) through `buf` (one block); the sha256 digest of what was written.
    For the updater: a store is filled before the pointer names its slot, so a cut here leaves the
    pointer, and what runs, as they were. OSError if f ends early or the image does not fit."""
    bs = len(buf)
    if (length + bs - 1) // bs > part.ioctl(BLOCK_COUNT, 0):
        raise OSError(28, "an image of %d bytes does not fit the store" % length)  # ENOSPC
    h = sha256()
    mv = memoryview(buf)
    block = 0
    left = length
    while left > 0:
        want = bs if left > bs else left
        got = 0
        while got < want:
            n = f.readinto(mv[got:want])
            if not n:
                raise OSError(5, "the image ended %d bytes early" % (left - got))
            got += n
        for i in range(want, bs):
            buf[i] = 0xFF
        h.update(mv[:want])
        _check(part.ioctl(ERASE, block), "erase")
        _check(part.writeblocks(block, buf, 0), "write")
        left -= want
        block += 1
    return h.digest()


def due(root, parts):
    """True if boot() would copy now: needed(), and the chosen store holds an image (a slot whose
    package is a directory on the app filesystem has none: nothing to switch)."""
    if not parts or not needed(root):
        return False
    src = parts[wanted(root)]
    return image_len(src, bytearray(src.ioctl(BLOCK_SIZE, 0))) > 0


def boot(root, parts):
    """At boot, before anything runs from /rom: finish a copy cut short, or make `romfs` hold the
    store the update pointer chose. True if `romfs` was written (the caller resets the board: the
    image mounted at /rom is stale). A store without an image is left alone (False)."""
    if not due(root, parts):
        return False
    try:
        copy(root, parts, wanted(root))
    except CopyError:
        return False
    return True


def at_boot(root, parts, reset):
    """What a board module runs as it is imported (main.py imports `board` first, before anything
    from /rom): boot(), then `reset()` if `romfs` was written. A failure is printed and the boot goes
    on with what `romfs` holds: better the last image than no boot."""
    if not parts:
        return
    try:
        if boot(root, parts):
            print("romfs: now holds the image of update store %s: resetting" % holds(root))
            reset()
    except Exception as e:  # noqa: BLE001 - the gateway must still boot
        print("romfs: switch at boot failed: %s: %s" % (type(e).__name__, e))


def _hex(b):
    from binascii import hexlify

    return hexlify(b).decode()
