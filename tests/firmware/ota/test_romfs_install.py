"""Signed updates on a board that runs its package from ROMFS, on MicroPython: a bundle carrying
romfs.img is streamed into the spare slot's ROMFS store (slot a: romfs_a; slot b and the built-in
package: romfs_b), the slot directory keeps only the manifest and its signature, the slot proves
against the store's bytes, select() resets once for firmware/romcopy.py to copy the chosen image in,
and a trial that fails max_boots times comes back to the image that ran before.

The board is a stand-in module (tests/mpylib/romfsboard: romfs_stores() over RAM block devices with
NOR semantics, reset() that only counts); the whole path on the sim board is tests/e2e/test_ota_sim.py's ROMFS test."""

import json

import pytest
from mpyrun import ROMFS_BOARD, run_mpy
from nengjian_host.common import romfs
from nengjian_host.vendor import updates as host_ota

pytestmark = pytest.mark.mpy

SCRIPT = r'''
import json
import os
import sys

sys.path.insert(0, FAKE_DIR)
import board
import romcopy
from nengjian.store.blockdev import RAMBlockDevice
from nengjian import ota
from nengjian.ota import proof, slots
from nengjian.ota import updater as U

BS = 4096
NB = 4  # 16 KiB stores: the test images are small
board.PARTS = {"active": RAMBlockDevice(NB, BS), "a": RAMBlockDevice(NB, BS), "b": RAMBlockDevice(NB, BS)}
ROOT = WORK + "/app"
KEY = U.load_key(KEYPATH)
BUF = bytearray(BS)


def put(part, name):
    with open(IMAGES[name], "rb") as f:
        romcopy.fill(part, f, os.stat(IMAGES[name])[6], BUF)


def holds(part):
    """The image a partition holds: the name of IMAGES whose bytes it starts with, or None."""
    n = romcopy.image_len(part, BUF)
    if not n:
        return None
    data = bytearray()
    for block in range((n + BS - 1) // BS):
        part.readblocks(block, BUF, 0)
        data.extend(BUF)
    for name, path in IMAGES.items():
        with open(path, "rb") as f:
            if f.read() == data[:n]:
                return name
    return "?"


def boot():
    """What a reset leads to: the board module's switch (romcopy), then main.py's activate()."""
    r = len(board.RESETS)
    romcopy.at_boot(ROOT, board.PARTS, board.reset)
    copied = len(board.RESETS) > r
    slot = None if copied else ota.activate(ROOT)
    return copied, slot


def state():
    p = slots.read_pointer(ROOT) or {}
    return [p.get("active"), p.get("version"), p.get("state"), p.get("boots"), bool(p.get("switching"))]


def step(name, **kw):
    kw["active"] = holds(board.PARTS["active"])
    kw["pointer"] = state()
    kw["resets"] = len(board.RESETS)
    print("STEP " + json.dumps([name, kw]))


os.mkdir(ROOT)
# As `nengjian flash` leaves a gateway: the built-in image in romfs and in store b.
put(board.PARTS["active"], "builtin")
put(board.PARTS["b"], "builtin")
up = U.Updater(ROOT, KEY, "sim", None, 1800, 2, KEYPATH, "0.1.0")

try:
    U.Updater(ROOT, KEY, "sim", None, 1800, 2, KEYPATH, "0.1.0", stores={}).install_file(BUNDLES["v1"])
    step("no stores", refused=None)
except U.OtaError as e:
    step("no stores", refused=str(e))

try:
    up.install_file(BUNDLES["tampered"])
    step("tampered", refused=None)
except U.OtaError as e:
    step("tampered", refused=str(e), store_a=holds(board.PARTS["a"]),
         slot=sorted(os.listdir(ROOT + "/a")) if slots.exists(ROOT + "/a") else None)

man = up.install_file(BUNDLES["v1"])
step("installed v1", store_a=holds(board.PARTS["a"]), slot=sorted(os.listdir(ROOT + "/a")),
     proved=proof.prove(ROOT, KEY, "a"))
# The check at boot installed it (install_pending), after the board module's switch: select() resets.
slot = ota.activate(ROOT)
step("select after install", slot=slot)
copied, slot = boot()
step("boot 1", copied=copied)
copied, slot = boot()
step("boot 2", copied=copied, slot=slot, on_path=slot in sys.path)
# The trial fails to start twice: rolled back, the built-in image copied back in.
ota.failed(ROOT, "RuntimeError: test")
copied, slot = boot()
step("boot 3", copied=copied, slot=slot)
ota.failed(ROOT, "RuntimeError: test")
r = len(board.RESETS)
copied, slot = boot()
step("boot 4", copied=copied, reset_by_select=len(board.RESETS) - r)
copied, slot = boot()
step("boot 5", copied=copied)
copied, slot = boot()
step("boot 6", copied=copied, slot=slot)

# Again, and healthy this time; then v2 goes into slot b, over the built-in image in store b.
up.install_file(BUNDLES["v1"])
boot()
boot()
boot()
up.confirm()
step("v1 confirmed", store_a=holds(board.PARTS["a"]))
up.install_file(BUNDLES["v2"])
step("installed v2", store_b=holds(board.PARTS["b"]), proved=proof.prove(ROOT, KEY, "b"),
     previous=slots.read_pointer(ROOT)["previous"])
# Installed by the running application: the board module's switch copies it in at the reset.
first, _slot = boot()
copied, slot = boot()
step("v2 runs", first=first, copied=copied, slot=slot)
# The store changed under the slot: it no longer proves.
put(board.PARTS["b"], "v1")
try:
    proof.prove(ROOT, KEY, "b")
    step("store b replaced", refused=None)
except U.OtaError as e:
    step("store b replaced", refused=str(e))
put(board.PARTS["b"], "v2")

# A bundle of the package's files on this board: a directory slot, and its store holds no image
# (a stale one there would be copied in for it at the next boot).
up.confirm()
up.install_file(BUNDLES["dir"])
copied, slot = boot()
step("directory slot", copied=copied, store_a=holds(board.PARTS["a"]), on_path=slot in sys.path,
     package=slots.exists(ROOT + "/a/nengjian/ota_marker.py"))
'''


def _steps(out: str) -> dict:
    return {name: kw for name, kw in (json.loads(line[5:]) for line in out.splitlines() if line.startswith("STEP "))}


@pytest.fixture(scope="module")
def romfs_bundles(vendor, tmp_path_factory):
    d = tmp_path_factory.mktemp("romfs-ota")
    images, bundles = {}, {}
    for name, version in (("builtin", "0.1.0"), ("v1", "1.0.0"), ("v2", "2.0.0")):
        files = {p: b for p, b in vendor.files(version)}
        images[name] = d / (name + ".img")
        images[name].write_bytes(romfs.build(files))
        if name != "builtin":
            bundles[name] = d / (name + ".njota")
            man = host_ota.build(bundles[name], vendor.pem, version, ["sim"],
                                 files=[(host_ota.ROMFS_FILE, images[name].read_bytes())], romfs=True)
            assert [f[0] for f in man["files"]] == ["romfs.img"]
    data = bytearray(bundles["v1"].read_bytes())
    data[-100] ^= 0xFF  # inside the image: its hash no longer matches the signed manifest
    bundles["dir"] = vendor.bundle("3.0.0")
    bundles["tampered"] = d / "tampered.njota"
    bundles["tampered"].write_bytes(bytes(data))
    (d / "work").mkdir()
    return d, images, bundles


def test_romfs_update_streams_into_the_store_switches_at_boot_and_rolls_back(vendor, romfs_bundles):
    d, images, bundles = romfs_bundles
    head = "FAKE_DIR = %r\nWORK = %r\nKEYPATH = %r\nIMAGES = %r\nBUNDLES = %r\n" % (
        ROMFS_BOARD, str(d / "work"), str(vendor.pub), {k: str(v) for k, v in images.items()},
        {k: str(v) for k, v in bundles.items()})
    s = _steps(run_mpy(head + SCRIPT, heap="320k").stdout)

    assert "no ROMFS stores" in s["no stores"]["refused"]
    assert "romfs.img does not match its hash" in s["tampered"]["refused"]
    assert s["tampered"]["store_a"] is None and s["tampered"]["pointer"] == [None] * 4 + [False]
    assert not s["tampered"]["slot"]

    # Streamed into store a; the slot keeps only what proves it; romfs still runs the built-in image.
    v1 = s["installed v1"]
    assert v1["store_a"] == "v1" and v1["slot"] == ["MANIFEST.json", "MANIFEST.sig"] and v1["proved"] == "1.0.0"
    assert v1["active"] == "builtin" and v1["pointer"] == ["a", "1.0.0", "trial", 0, False]
    # select() sees romfs does not hold the trial's image: one reset, no trial boot counted.
    assert s["select after install"]["resets"] == 1
    assert s["select after install"]["pointer"] == ["a", "1.0.0", "trial", 0, True]
    # The next boot copies it in (and resets); the one after runs it, trial boot 1.
    assert s["boot 1"]["copied"] and s["boot 1"]["active"] == "v1"
    b2 = s["boot 2"]
    assert not b2["copied"] and b2["pointer"] == ["a", "1.0.0", "trial", 1, False]
    assert b2["slot"].endswith("/a") and not b2["on_path"]  # the package is the image at /rom
    assert s["boot 3"]["pointer"] == ["a", "1.0.0", "trial", 2, False] and s["boot 3"]["active"] == "v1"
    # Failed max_boots times: rolled back, select() resets, romcopy copies the built-in image back.
    b4 = s["boot 4"]
    assert b4["reset_by_select"] == 1 and b4["pointer"] == ["", None, "confirmed", 0, False]
    assert s["boot 5"]["copied"] and s["boot 5"]["active"] == "builtin"
    assert not s["boot 6"]["copied"] and s["boot 6"]["slot"] is None and s["boot 6"]["active"] == "builtin"

    assert s["v1 confirmed"]["pointer"] == ["a", "1.0.0", "confirmed", 0, False]
    assert s["v1 confirmed"]["active"] == "v1"
    v2 = s["installed v2"]
    assert v2["store_b"] == "v2" and v2["proved"] == "2.0.0" and v2["previous"] == "a"
    assert s["v2 runs"]["first"] and not s["v2 runs"]["copied"]
    assert s["v2 runs"]["active"] == "v2" and s["v2 runs"]["pointer"] == ["b", "2.0.0", "trial", 1, False]
    assert "does not match the signed manifest" in s["store b replaced"]["refused"]
    ds = s["directory slot"]
    assert not ds["copied"] and ds["store_a"] is None and ds["package"] and ds["on_path"]
    assert ds["active"] == "v2" and ds["pointer"] == ["a", "3.0.0", "trial", 1, False]
