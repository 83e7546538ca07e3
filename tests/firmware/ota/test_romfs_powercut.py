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
from nengjian_host.common import romfs
from nengjian_host.vendor import updates as host_ota
from powercut import run_sweep

pytestmark = pytest.mark.mpy

FAKE_BOARD = '''
PARTS = None
RESETS = []


def romfs_stores():
    return PARTS


def reset():
    RESETS.append(1)
'''

HARNESS = r'''
import gc
import os
import sys

sys.path.insert(0, FAKE_DIR)
import board
import cutsweep
import romcopy
import vfs
from nengjian.core import statefile
from nengjian.store.blockdev import RAMBlockDevice
from nengjian import ota
from nengjian.ota import proof, slots
from nengjian.ota import updater as U

gc.collect()
NB = NBFS + 3 * NSTORE
DATA = RAMBlockDevice(NB, BS).data
MNT = "/otapc"
ROOT = MNT + "/app"
KEY = U.load_key(KEYPATH)
BUILTIN = "0.1.0"
BUF = bytearray(512)


class View:
    """Blocks first..first+blocks-1 of a device: a partition on the same flash chip."""

    def __init__(self, dev, first, blocks):
        self.dev = dev
        self.first = first
        self.blocks = blocks

    def readblocks(self, block, buf, offset=0):
        return self.dev.readblocks(self.first + block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        return self.dev.writeblocks(self.first + block, buf, offset)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 6:
            return self.dev.ioctl(6, self.first + arg)
        return self.dev.ioctl(op, arg)


def parts_of(dev):
    return {"active": View(dev, NBFS, NSTORE), "a": View(dev, NBFS + NSTORE, NSTORE),
            "b": View(dev, NBFS + 2 * NSTORE, NSTORE)}


def fs_of(dev):
    return View(dev, 0, NBFS)


def image_name(part):
    """The version whose image the partition holds (IMAGES), None if none, "?" if another."""
    n = romcopy.image_len(part, BUF)
    if not n:
        return None
    data = bytearray()
    block = 0
    while len(data) < n:
        part.readblocks(block, BUF, 0)
        data.extend(BUF)
        block += 1
    for version, path in IMAGES.items():
        with open(path, "rb") as f:
            if f.read() == data[:n]:
                return version
    return "?"


# The flashed gateway: the built-in image in romfs and in store b, written before the sweep's base
# image is taken (the sweep's format touches only the volume's blocks).
flashed = parts_of(RAMBlockDevice(NB, BS, data=DATA))
for name in ("active", "b"):
    with open(IMAGES[BUILTIN], "rb") as f:
        romcopy.fill(flashed[name], f, os.stat(IMAGES[BUILTIN])[6], bytearray(BS))
del flashed


def copy(src, dst):
    mv = memoryview(BUF)
    with open(src, "rb") as f:
        while True:
            n = f.readinto(BUF)
            if not n:
                return
            dst.write(mv[:n])


def updater():
    return U.Updater(ROOT, KEY, "sim", None, 1800, 2, KEYPATH, BUILTIN)


def push(u, name):
    src = BUNDLES[name]
    path = u.incoming(os.stat(src)[6])
    f = statefile.begin(path, "wb")
    copy(src, f)
    f.close()
    statefile.commit(path)
    try:
        man = u.install_file(path)
        OBS["switched"] = True
        return man
    finally:
        u.discard(path)


def fetch(u, name, version):
    src = BUNDLES[name]
    path = u.incoming(os.stat(src)[6])
    with open(path, "wb") as f:
        copy(src, f)
    u.defer(path, version)


def boot():
    """A reset and what follows, until a boot asks for no further reset: the board module's switch
    (romcopy), then main.py's install_pending and select. False if the resets never end."""
    for _ in range(5):
        r = len(board.RESETS)
        romcopy.at_boot(ROOT, board.PARTS, board.reset)
        if len(board.RESETS) > r:
            continue
        ota.install_pending(ROOT)
        p = slots.read_pointer(ROOT)
        if p is not None and p.get("version") is not None:
            OBS["switched"] = True
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
    u = updater()
    steps = (
        lambda: push(u, "1.0.0"), must_boot, lambda: confirm(u, obs),
        lambda: fetch(u, "2.0.0", "2.0.0"), must_boot,
        lambda: ota.failed(ROOT, "RuntimeError: x"), must_boot, lambda: ota.failed(ROOT, "RuntimeError: x"),
        must_boot,
        lambda: push(u, "3.0.0"), must_boot, lambda: confirm(u, obs),
    )
    for step in steps:
        try:
            step()
        except Exception as e:
            if not dev.cut:
                raise
            return
        if dev.cut:
            return
    p = slots.read_pointer(ROOT)
    if (p["active"], p["version"], p["state"]) != ("b", "3.0.0", "confirmed") or image_name(board.PARTS["active"]) != "3.0.0":
        raise AssertionError("the workload ended at %r" % (p,))


def mount(dev):
    board.PARTS = parts_of(dev)
    vfs.mount(vfs.VfsLfs2(fs_of(dev)), MNT)


def umount():
    try:
        vfs.umount(MNT)
    except OSError:
        pass


def prove(slot, label):
    try:
        v = proof.prove(ROOT, KEY, slot, board.PARTS)
    except U.OtaError as e:
        return "slot %s does not prove signed: %s" % (slot, e)
    if v != label:
        return "slot %s holds %s, the pointer says %s" % (slot, v, label)
    return None


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
        err = prove(slot, p["version"])
        if err:
            return after + ": " + err
    return None


def verify(dev, obs):
    try:
        mount(dev)
    except OSError as e:
        return "volume does not mount: %r" % (e,)
    try:
        err = check_running("at the boot after the cut")
        if err:
            return err
        p = slots.read_pointer(ROOT)
        known = [None] + obs["confirmed"] + [obs["confirming"]]
        if p is None and obs["switched"]:
            return "the pointer is lost: the built-in runs, not what was installed and confirmed"
        if p is not None:
            if p.get("state") == "trial":
                prev = p.get("previous") or ""
                if prev == p["active"]:
                    return "the trial in %s returns to its own slot" % prev
                if p.get("previous_version") not in known:
                    return "the trial returns to %s, never confirmed" % p.get("previous_version")
                if prev:
                    err = prove(prev, p.get("previous_version"))
                    if err:
                        return "no confirmed version to return to: " + err
                elif image_name(board.PARTS["b"]) != BUILTIN:
                    return "the trial returns to the built-in, and store b holds %s" % image_name(board.PARTS["b"])
            elif p.get("version") not in known:
                return "confirmed %s, which was never confirmed" % p.get("version")
        p = slots.read_pointer(ROOT)
        if p is not None and p.get("state") == "trial":
            p["boots"] = p.get("max_boots", 2)
            slots.write_pointer(ROOT, p)
            err = check_running("after the rollback")
            if err:
                return err
        u = updater()
        p = slots.read_pointer(ROOT)
        if p is not None and p.get("state") != "trial" and p.get("version"):
            u.running = p["version"]
        push(u, "4.0.0")
        err = check_running("after a new install")
        if err:
            return err
        p = slots.read_pointer(ROOT)
        if (p["version"], p["state"]) != ("4.0.0", "trial"):
            return "a new install after the cut runs %s (%s)" % (p["version"], p["state"])
    except Exception as e:
        sys.print_exception(e)
        return "exception: %r" % (e,)
    finally:
        umount()
    return None


def new_obs():
    OBS.update(confirmed=[], confirming=None, switched=False)
    return OBS


OBS = {}


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
    (d / "fake").mkdir()
    (d / "fake" / "board.py").write_text(FAKE_BOARD)
    return dict(FAKE_DIR=str(d / "fake"), KEYPATH=str(vendor.pub), IMAGES={k: str(v) for k, v in images.items()},
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
