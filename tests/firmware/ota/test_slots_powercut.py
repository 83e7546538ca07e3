"""Power cut at every write of an update, on MicroPython itself.

The technique is the store's (tests/firmware/store/test_powercut.py): littlefs2 (vfs.VfsLfs2) over the
fault-injecting RAM block device (nengjian.store.blockdev). A workload of a gateway's update life runs
once to count its program/erase operations W:

    push 1.0.0 (the console's receive, install into slot a), boot, confirm;
    fetch 2.0.0 (the fetcher's download and hand-over), boot: the check at boot installs it into b,
    it is on trial; a push of 3.0.0 now is refused; 2.0.0 fails to start twice: rolled back to 1.0.0;
    push 3.0.0, boot, confirm; push 1.5.0 (older than the minimum 3.0.0): refused;
    push 2.0.0 signed as a downgrade (replaces_down_to 2.0.0), boot, confirm.

Then for every N in 1..W and each fault mode (clean cut, torn last operation, erased-but-unwritten
block) the image is restored, the power dies at operation N, and the surviving image is booted as
main.py boots it (install_pending, then the slot select() picks) and checked:

- the volume mounts;
- what runs is the built-in package or a slot that proves to be what the vendor signed (the
  manifest kept in the slot verifies with the vendor key, every file matches it), and the pointer's
  label is the version the slot holds;
- a version on trial has a confirmed version to return to: "previous" is another slot that proves
  signed and holds what "previous_version" says (or the built-in package), and it was confirmed;
- the minimum version is the one the last confirm left (or the one it was writing);
- the gateway goes on: a trial runs out and is rolled back to a slot that proves signed, and a new
  bundle installs and boots from its slot.

Cost: some 390 cut points per mode; those of each mode are shared among PARTS tests (each a
MicroPython process of its own that xdist can place on any worker). The whole sweep took under 40 s
of CPU in all on a 2-core machine with a load average of 7, about 20 s on an idle one.
"""

import pytest
from powercut import run_sweep

pytestmark = pytest.mark.mpy

HARNESS = r'''
import gc

import cutsweep
import otalife
import vfs
from nengjian.store.blockdev import RAMBlockDevice
from nengjian import ota
from nengjian.ota import slots
from nengjian.ota import updater as U

gc.collect()
DATA = RAMBlockDevice(NB, BS).data
MNT = "/otapc"
ROOT = MNT + "/app"
BUILTIN = otalife.BUILTIN
OBS = {}
LIFE = otalife.Life(ROOT, KEYPATH, BUNDLES, OBS)
push = LIFE.push


def boot():
    ota.install_pending(ROOT)
    LIFE.note_switch()
    return ota.select(ROOT)


def confirm(u, obs, floor):
    obs["confirming"] = slots.read_pointer(ROOT)["version"]
    obs["floor_next"] = floor
    if u.confirm():
        obs["confirmed"].append(obs["confirming"])
        obs["floor"] = floor


def refused(call, why):
    try:
        call()
    except U.OtaError as e:
        if why not in str(e):
            raise
        return
    raise AssertionError("not refused: " + why)


def workload(dev, obs):
    u = LIFE.updater()
    done = cutsweep.steps(dev, (
        lambda: push(u, "1.0.0"), boot, lambda: confirm(u, obs, "1.0.0"),
        lambda: LIFE.fetch(u, "2.0.0", "2.0.0"), boot,
        lambda: refused(lambda: push(u, "3.0.0"), "is on trial"),
        lambda: ota.failed(ROOT, "RuntimeError: x"), boot, lambda: ota.failed(ROOT, "RuntimeError: x"), boot,
        lambda: push(u, "3.0.0"), boot, lambda: confirm(u, obs, "3.0.0"),
        lambda: refused(lambda: push(u, "1.5.0"), "older than the minimum"),
        lambda: push(u, "2.0.0-down"), boot, lambda: confirm(u, obs, "2.0.0"),
    ))
    p = slots.read_pointer(ROOT)
    if done and (p["active"], p["version"], p["state"]) != ("a", "2.0.0", "confirmed"):
        raise AssertionError("the workload ended at %r" % (p,))


def mount(dev):
    cutsweep.mount(dev, MNT)


def umount():
    cutsweep.umount(MNT)


def check_running(after):
    slot = ota.select(ROOT)
    p = slots.read_pointer(ROOT)
    if slot is None:
        if p is not None and p.get("active"):
            return "%s: the pointer names slot %s, which is incomplete (the built-in runs)" % (after, p["active"])
        return None
    err = LIFE.prove(slot.rsplit("/", 1)[1], p["version"])
    return after + ": " + err if err else None


def to_builtin(p):
    if p.get("previous_version") is not None:
        return "returns to the built-in labelled %s" % p.get("previous_version")
    return None


def survived(obs):
    u = LIFE.updater()
    boot_slot = boot()
    p = slots.read_pointer(ROOT)
    if boot_slot is not None:
        err = LIFE.prove(boot_slot.rsplit("/", 1)[1], p["version"])
        if err:
            return "runs an unproved version: " + err
    elif p is not None and p.get("active"):
        return "the pointer names slot %s, which is incomplete" % p["active"]
    err = LIFE.pointer_error(p, to_builtin)
    if err:
        return err
    if p is not None:
        low = U.vkey(u.minimum(p))
        if low not in (U.vkey(obs["floor"]), U.vkey(obs["floor_next"])):
            return "minimum %s, the last confirm left %s" % (u.minimum(p), obs["floor"])
    return LIFE.goes_on(u, check_running)


def verify(dev, obs):
    return cutsweep.checked(dev, mount, umount, lambda: survived(obs))


def new_obs():
    OBS.update(confirmed=[], confirming=None, floor=BUILTIN, floor_next=BUILTIN, switched=False)
    return OBS


def describe(obs):
    return "confirmed=" + ",".join(obs["confirmed"])


cutsweep.run(NB, BS, DATA, MODES, PART, NPART, new_obs, mount, umount, workload, verify, describe)
'''

BS, NB = 512, 256  # small blocks: more, finer cut points than the ESP32's 4 KB sectors
MODES = {"clean": 0, "torn": 1, "erased": 2}
PARTS = 2
PART_TIMEOUT_S = 600  # a bound for a machine many times slower or loaded, not a speed target


@pytest.fixture(scope="module")
def small_vendor(tmp_path_factory, make_vendor):
    """A cut can break the slots' logic, not the signature scheme (test_ota.py checks RSA-3072): a
    1024-bit key keeps the checks of each of the thousand-odd replays cheap."""
    return make_vendor(tmp_path_factory.mktemp("vendor1024"), bits=1024)


@pytest.fixture(scope="module")
def bundles(small_vendor):
    # 1.0.0's marker spans blocks: a file written in more than one program
    made = {v: small_vendor.bundle(v, pad=900 if v == "1.0.0" else 0) for v in ("1.0.0", "2.0.0", "3.0.0", "1.5.0",
                                                                              "4.0.0")}
    made["2.0.0-down"] = small_vendor.bundle("2.0.0", replaces_down_to="2.0.0")
    return {k: str(v) for k, v in made.items()}


def _sweep(vendor, bundles, modes, part, nparts):
    settings = dict(NB=NB, BS=BS, KEYPATH=str(vendor.pub), BUNDLES=bundles, MODES=tuple(modes), PART=part,
                    NPART=nparts)
    return run_sweep(settings, HARNESS, "1m", PART_TIMEOUT_S)


def test_the_workload_goes_through_the_life_it_claims(small_vendor, bundles):
    sweep = _sweep(small_vendor, bundles, [], 0, 1)
    assert sweep.covered == 0 and "confirmed=1.0.0,3.0.0,2.0.0" in sweep.count_line
    assert sweep.writes >= 150, sweep.count_line  # enough writes for the sweep to mean something


@pytest.mark.timeout(PART_TIMEOUT_S + 60)
@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("mode", list(MODES))
def test_power_cut_at_every_write_of_an_update_leaves_a_bootable_signed_gateway(small_vendor, bundles, mode, part):
    _sweep(small_vendor, bundles, [MODES[mode]], part, PARTS).assert_clean(part, PARTS)
