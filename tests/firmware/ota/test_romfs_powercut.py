"""Power cut at every write of a ROMFS update, on MicroPython: the app filesystem (littlefs) and the
three ROMFS partitions (`romfs`, the stores romfs_a and romfs_b) are parts of one fault-injecting RAM
device, so a store being filled, the copy into `romfs` at boot and the slot's and pointer's files all
share one power line (tests/mpylib/cutsweep.py; the directory-slot sweep is test_slots_powercut.py).

Workload, on a board whose `romfs` and store b hold the flashed image (0.1.0):
    push 1.0.0 (streamed into store a), boot (copied into romfs), confirm;
    fetch 2.0.0, boot: the check at boot streams it into store b, select() resets, the copy at the
    next boot puts it in romfs; it fails to start twice: rolled back, 1.0.0 copied back;
    push 3.0.0 into store b, boot, confirm.

After each cut the surviving flash boots as a gateway boots (the board module's switch, then
install_pending and select, again after each reset they ask for) and is checked:
- what `romfs` holds, and so runs, is the image of the slot the pointer names (the flashed image for
  the built-in package), and that slot proves to be what the vendor signed against its store;
- a version on trial has a confirmed one to return to, whose slot proves or is the built-in in store b;
- the gateway goes on: a trial runs out and is rolled back, and a new bundle installs and runs.
"""

import pytest
from mpyrun import ROMFS_BOARD
from nengjian_host.common import romfs
from nengjian_host.vendor import updates as host_ota
from powercut import run_sweep

pytestmark = pytest.mark.mpy

HARNESS = r'''
import gc
import os
import sys

sys.path.insert(0, FAKE_DIR)
import board
import cutsweep
import flashparts
import otalife
import romcopy
from nengjian.store.blockdev import RAMBlockDevice
from nengjian import ota
from nengjian.ota import slots

gc.collect()
NB = NBFS + 3 * NSTORE
DATA = RAMBlockDevice(NB, BS).data
MNT = "/otapc"
ROOT = MNT + "/app"
BUILTIN = otalife.BUILTIN
BUF = bytearray(512)
OBS = {}
LIFE = otalife.Life(ROOT, KEYPATH, BUNDLES, OBS, lambda: board.PARTS)
push = LIFE.push


def parts_of(dev):
    return flashparts.layout(dev, NBFS, NSTORE)[1]


def fs_of(dev):
    return flashparts.layout(dev, NBFS, NSTORE)[0]


def image_name(part):
    """The version whose image the partition holds (IMAGES), None if none, "?" if another."""
    n = romcopy.image_len(part, BUF)
    if not n:
        return None
    data = flashparts.content(part, n, BUF)
    for version, path in IMAGES.items():
        with open(path, "rb") as f:
            if f.read() == data:
                return version
    return "?"


# The flashed gateway: the built-in image in romfs and in store b, written before the sweep's base
# image is taken (the sweep's format touches only the volume's blocks).
flashed = parts_of(RAMBlockDevice(NB, BS, data=DATA))
for name in ("active", "b"):
    with open(IMAGES[BUILTIN], "rb") as f:
        romcopy.fill(flashed[name], f, os.stat(IMAGES[BUILTIN])[6], bytearray(BS))
del flashed


def boot():
    """A reset and what follows, until a boot asks for no further reset: the board module's switch
    (romcopy), then main.py's install_pending and select. False if the resets never end."""
    for _ in range(5):
        r = len(board.RESETS)
        romcopy.at_boot(ROOT, board.PARTS, board.reset)
        if len(board.RESETS) > r:
            continue
        ota.install_pending(ROOT)
        LIFE.note_switch()
        ota.select(ROOT)
        if len(board.RESETS) == r:
            return True
    return False


def must_boot():
    if not boot():
        raise AssertionError("resets without end")


def confirm(u, obs):
    obs["confirming"] = slots.read_pointer(ROOT)["version"]
    if u.confirm():
        obs["confirmed"].append(obs["confirming"])


def workload(dev, obs):
    u = LIFE.updater()
    done = cutsweep.steps(dev, (
        lambda: push(u, "1.0.0"), must_boot, lambda: confirm(u, obs),
        lambda: LIFE.fetch(u, "2.0.0", "2.0.0"), must_boot,
        lambda: ota.failed(ROOT, "RuntimeError: x"), must_boot, lambda: ota.failed(ROOT, "RuntimeError: x"),
        must_boot,
        lambda: push(u, "3.0.0"), must_boot, lambda: confirm(u, obs),
    ))
    p = slots.read_pointer(ROOT)
    if done and ((p["active"], p["version"], p["state"]) != ("b", "3.0.0", "confirmed")
                 or image_name(board.PARTS["active"]) != "3.0.0"):
        raise AssertionError("the workload ended at %r" % (p,))


def mount(dev):
    board.PARTS = parts_of(dev)
    cutsweep.mount(fs_of(dev), MNT)


def umount():
    cutsweep.umount(MNT)


def check_running(after):
    if not boot():
        return after + ": resets without end"
    p = slots.read_pointer(ROOT)
    slot = p.get("active") if p else ""
    want = p["version"] if slot else BUILTIN
    runs = image_name(board.PARTS["active"])
    if runs != want:
        return "%s: romfs holds %s, the pointer chose %s (slot %r)" % (after, runs, want, slot)
    if slot:
        err = LIFE.prove(slot, p["version"])
        if err:
            return after + ": " + err
    return None


def to_builtin(p):
    if image_name(board.PARTS["b"]) != BUILTIN:
        return "the trial returns to the built-in, and store b holds %s" % image_name(board.PARTS["b"])
    return None


def survived(obs):
    err = check_running("at the boot after the cut") or LIFE.pointer_error(slots.read_pointer(ROOT), to_builtin)
    return err or LIFE.goes_on(None, check_running)


def verify(dev, obs):
    return cutsweep.checked(dev, mount, umount, lambda: survived(obs))


def new_obs():
    OBS.update(confirmed=[], confirming=None, switched=False)
    return OBS


def describe(obs):
    return "confirmed=" + ",".join(obs["confirmed"]) + " resets=%d" % len(board.RESETS)


cutsweep.run(NB, BS, DATA, MODES, PART, NPART, new_obs, mount, umount, workload, verify, describe, fs_of)
'''

BS, NBFS, NSTORE = 512, 256, 8  # small blocks: finer cut points than the ESP32's 4 KB sectors
MODES = {"clean": 0, "torn": 1, "erased": 2}
PARTS = 2
PART_TIMEOUT_S = 600  # a bound for a machine many times slower or loaded, not a speed target
VERSIONS = ("0.1.0", "1.0.0", "2.0.0", "3.0.0", "4.0.0")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_vendor):
    d = tmp_path_factory.mktemp("romfs-pc")
    vendor = make_vendor(d, bits=1024)  # a cut breaks the slots' logic, not RSA (test_ota.py checks that)
    images, bundles = {}, {}
    for version in VERSIONS:
        # A marker of some 1.1 KB: each image spans three blocks, so a store is filled in several steps
        images[version] = d / (version + ".img")
        images[version].write_bytes(romfs.build(dict(vendor.files(version, pad=1100))))
        if version != "0.1.0":
            bundles[version] = d / (version + ".njota")
            host_ota.build(bundles[version], vendor.pem, version, ["sim"],
                           files=[(host_ota.ROMFS_FILE, images[version].read_bytes())], romfs=True)
    return dict(FAKE_DIR=ROMFS_BOARD, KEYPATH=str(vendor.pub), IMAGES={k: str(v) for k, v in images.items()},
                BUNDLES={k: str(v) for k, v in bundles.items()})


def _sweep(setup, modes, part, nparts):
    settings = dict(setup, NBFS=NBFS, NSTORE=NSTORE, BS=BS, MODES=tuple(modes), PART=part, NPART=nparts)
    return run_sweep(settings, HARNESS, "1m", PART_TIMEOUT_S)


def test_the_romfs_workload_goes_through_the_life_it_claims(setup):
    sweep = _sweep(setup, [], 0, 1)
    assert sweep.covered == 0 and "confirmed=1.0.0,3.0.0" in sweep.count_line, sweep.count_line
    assert sweep.writes >= 150, sweep.count_line


@pytest.mark.timeout(PART_TIMEOUT_S + 60)
@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("mode", list(MODES))
def test_power_cut_at_every_write_of_a_romfs_update_leaves_a_bootable_signed_gateway(setup, mode, part):
    _sweep(setup, [MODES[mode]], part, PARTS).assert_clean(part, PARTS)
