"""The ROMFS switch at boot (firmware/romcopy.py), on MicroPython, with the power cut at every write.

One fault-injecting RAM block device (nengjian.store.blockdev) holds, as windows of its blocks, the
littlefs app filesystem (the update pointer, romfs.json, the marker) and the three ROMFS partitions
(`romfs`, the stores a and b), so one count of program/erase operations covers both kinds of write.
The workload is the boot after an update was switched in: the pointer names slot a, `romfs` holds the
flashed image (store b's), and boot() copies store a into `romfs`. For every N in 1..W and each fault
mode the power dies at operation N; then the board boots again:

- the app filesystem mounts;
- with no marker, `romfs` holds exactly the image romfs.json names (never a torn image unmarked);
- boot() then leaves `romfs` holding store a's image, romfs.json saying so, and no marker;
- a further boot copies nothing.
"""

from __future__ import annotations

import random

import pytest
from mpyrun import run_mpy, with_mpylib
from nengjian_host.common import romfs

pytestmark = pytest.mark.mpy

HARNESS = r'''
import gc
import os
import vfs

import cutsweep
import flashparts
import romcopy
from nengjian.store.blockdev import MODES, RAMBlockDevice

BS = 4096
FS_BLOCKS = 24
PART = 20
NB = FS_BLOCKS + 3 * PART
MNT = "/rc"


def read(path):
    with open(path, "rb") as f:
        return f.read()


IMG = {"a": read(IMG_A), "b": read(IMG_B)}
DATA = RAMBlockDevice(NB, BS).data


def board(dev):
    return flashparts.layout(dev, FS_BLOCKS, PART)


def put(part, image):
    buf = bytearray(BS)
    for i in range((len(image) + BS - 1) // BS):
        part.ioctl(6, i)
        chunk = image[i * BS:(i + 1) * BS]
        buf[:] = b"\xff" * BS
        buf[:len(chunk)] = chunk
        part.writeblocks(i, buf, 0)


def content(part, n):
    return flashparts.content(part, n, bytearray(BS))


def mount(fs):
    cutsweep.mount(fs, MNT)


def umount():
    cutsweep.umount(MNT)


# The state an update leaves: pointer on slot a, store a written, romfs as flashed (store b's image).
dev = RAMBlockDevice(NB, BS, data=DATA)
fs, parts = board(dev)
vfs.VfsLfs2.mkfs(fs)
mount(fs)
with open(MNT + "/" + romcopy.POINTER, "w") as f:
    f.write('{"active": "a", "state": "trial", "boots": 0}')
umount()
put(parts["active"], IMG["b"])
put(parts["b"], IMG["b"])
put(parts["a"], IMG["a"])
BASE = dev.snapshot()


def workload(dev):
    fs, parts = board(dev)
    mount(fs)
    try:
        return romcopy.boot(MNT, parts)
    finally:
        umount()


def verify(dev):
    fs, parts = board(dev)
    try:
        mount(fs)
    except OSError as e:
        return "app filesystem does not mount: %r" % (e,)
    try:
        marker = romcopy._exists(MNT + "/" + romcopy.MARKER)
        if not marker:
            h = romcopy.holds(MNT)
            if content(parts["active"], len(IMG[h])) != IMG[h]:
                return "no marker, romfs.json says %s, but romfs does not hold that image" % h
        copied = romcopy.boot(MNT, parts)
        if marker and not copied:
            return "a marker, but boot copied nothing"
        if content(parts["active"], len(IMG["a"])) != IMG["a"]:
            return "after the boot romfs does not hold store a's image"
        if romcopy.holds(MNT) != "a" or romcopy._exists(MNT + "/" + romcopy.MARKER):
            return "after the boot: holds %s, marker %s" % (romcopy.holds(MNT),
                                                           romcopy._exists(MNT + "/" + romcopy.MARKER))
        if romcopy.boot(MNT, parts):
            return "a second boot copied again"
    finally:
        umount()
    return None


dev.reset_counters()
assert workload(dev) is True
total = dev.ops
print("COUNT W=%d progs=%d erases=%d" % (total, dev.progs, dev.erases))
dev.kill()
check = RAMBlockDevice(NB, BS, data=DATA)
print("NOCUT", verify(check) or "ok")
done = fails = 0
for mode in range(len(MODES)):
    for n in range(1, total + 1):
        dev = RAMBlockDevice(NB, BS, data=DATA)
        dev.restore(BASE)
        dev.reset_counters()
        dev.arm(n, mode)
        try:
            workload(dev)
        except Exception:
            pass  # the power died: whatever was under way raised
        dev.kill()
        gc.collect()
        check = RAMBlockDevice(NB, BS, data=DATA)
        err = verify(check)
        check.kill()
        done += 1
        if err:
            fails += 1
            print("FAIL n=%d mode=%s op=%s: %s" % (n, MODES[mode], dev.cut_kind, err))
print("DONE covered=%d fails=%d" % (done, fails))
'''


def _image(seed: int, size: int) -> bytes:
    rnd = random.Random(seed)
    return romfs.build({"nengjian/app.mpy": bytes(rnd.getrandbits(8) for _ in range(size)),
                        "profiles/meters/m.json": b'{"seed": %d}' % seed})


def test_a_power_cut_at_any_write_of_the_copy_is_finished_at_the_next_boot(tmp_path):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    a.write_bytes(_image(1, 9 * 4096 + 123))  # ten blocks, the last one partly
    b.write_bytes(_image(2, 5 * 4096))
    head = "IMG_A = %r\nIMG_B = %r\n" % (str(a), str(b))
    out = run_mpy(with_mpylib(head + HARNESS), heap="2m", timeout=600).stdout
    assert "NOCUT ok" in out, out[-3000:]
    count = int(out.split("COUNT W=")[1].split()[0])
    assert count >= 20  # ten erases and ten programs of romfs at least, plus the app filesystem's
    fails = [ln for ln in out.splitlines() if ln.startswith("FAIL")]
    assert not fails, "\n".join(fails[:20])
    assert "DONE covered=%d fails=0" % (3 * count) in out, out[-2000:]


def test_boot_copies_nothing_without_partitions_or_when_romfs_holds_the_chosen_store(tmp_path):
    code = """
import os
import romcopy
os.mkdir(%r)
root = %r
print(romcopy.boot(root, {}), romcopy.needed(root), romcopy.wanted(root))
with open(root + '/current', 'w') as f:
    f.write('{"active": "b"}')
print(romcopy.needed(root))
with open(root + '/current', 'w') as f:
    f.write('{"active": "a"}')
print(romcopy.needed(root), romcopy.store_of(''), romcopy.store_of('a'))
""" % (str(tmp_path / "app"), str(tmp_path / "app"))
    out = run_mpy(code).stdout.split()
    # No pointer: the built-in package, whose image nengjian flash wrote into romfs and store b.
    assert out == ["False", "False", "b", "False", "True", "b", "a"]


def test_fill_writes_an_image_into_a_store_that_copy_then_takes(tmp_path):
    image = tmp_path / "a.img"
    image.write_bytes(_image(3, 3 * 4096 + 7))
    code = """
import os, romcopy
from nengjian.store.blockdev import RAMBlockDevice
from binascii import hexlify
os.mkdir(%r)
root = %r
store = RAMBlockDevice(8, 4096)
store.ioctl(6, 5)
active = RAMBlockDevice(8, 4096)
buf = bytearray(4096)
n = os.stat(%r)[6]
with open(%r, 'rb') as f:
    digest = romcopy.fill(store, f, n, buf)
with open(%r, 'rb') as f:
    try:
        romcopy.fill(RAMBlockDevice(2, 4096), f, n, buf)
    except OSError as e:
        print('refused', e.args[0])
print(romcopy.image_len(store, buf) == n, hexlify(digest).decode())
print(romcopy.copy(root, {'active': active, 'a': store}, 'a') == n, romcopy.holds(root))
""" % ((str(tmp_path / "app"),) * 2 + (str(image),) * 3)
    out = run_mpy(code).stdout.split()
    import hashlib

    assert out == ["refused", "28", "True", hashlib.sha256(image.read_bytes()).hexdigest(), "True", "a"]
