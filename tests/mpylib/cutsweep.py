"""The power-cut sweep, on MicroPython: cut the power at every write of a workload, in every fault mode.

Shared by the store's and the update slots' power-cut tests (tests/firmware/store/test_powercut.py,
tests/firmware/ota/test_slots_powercut.py). A harness supplies the workload and its checks; this runs
it once to count its program/erase operations W, checks the uncut result, then for every N in 1..W
that is this part's (N % npart == part) and every mode restores the freshly formatted image, arms the
fault-injecting RAM block device (nengjian.store.blockdev) to die at operation N, runs the workload
and checks what survives with the harness's `verify`. It prints the lines the host side reads
(tests/powercut.py): COUNT, NOCUT, FAIL and DONE.

Also the frame most harnesses' pieces share: mount and umount of a littlefs volume, steps() for a
workload of steps the power may cut anywhere, checked() for a verify that mounts what survived.
"""

import gc
import sys

import vfs
from nengjian.store.blockdev import RAMBlockDevice


def run(nb, bs, data, modes, part, npart, new_obs, mount, umount, workload, verify, describe=None, fs=None):
    """`data` is the RAM image, made early while the heap is whole; `describe(obs)` adds to COUNT.
    `fs(dev)`: the part of the device that holds the volume (the rest, other partitions on the same
    power line: their writes are cut points too); default the whole device."""
    dev = RAMBlockDevice(nb, bs, data=data)
    vfs.VfsLfs2.mkfs(fs(dev) if fs else dev)
    base = dev.snapshot()
    obs = new_obs()
    mount(dev)
    dev.reset_counters()
    workload(dev, obs)
    umount()
    total = dev.ops
    print("COUNT W=%d progs=%d erases=%d %s" % (total, dev.progs, dev.erases, describe(obs) if describe else ""))
    dev.kill()
    check = RAMBlockDevice(nb, bs, data=data)
    print("NOCUT", verify(check, obs) or "ok")
    check.kill()
    done = fails = 0
    for mode in modes:
        for n in range(1, total + 1):
            if n % npart != part:
                continue
            dev = RAMBlockDevice(nb, bs, data=data)
            dev.restore(base)
            obs = new_obs()
            mount(dev)
            dev.reset_counters()
            dev.arm(n, mode)
            err = None
            try:
                workload(dev, obs)
            except Exception as e:
                err = "the workload raised %r" % (e,)
            umount()
            dev.kill()  # littlefs objects of this run can never write again
            gc.collect()
            check = RAMBlockDevice(nb, bs, data=data)
            err = err or verify(check, obs)
            check.kill()
            gc.collect()
            done += 1
            if err:
                fails += 1
                print("FAIL n=%d mode=%d op=%s: %s" % (n, mode, dev.cut_kind, err))
    print("DONE covered=%d fails=%d" % (done, fails))


def mount(dev, mnt):
    vfs.mount(vfs.VfsLfs2(dev), mnt)


def umount(mnt):
    """Unmount mnt if it is mounted (a run the power cut may have left it either way)."""
    try:
        vfs.umount(mnt)
    except OSError:
        pass


def steps(dev, todo):
    """Run the calls of todo in order until the power is cut; True when all ran. An exception while the
    power is on is the workload's own failure and goes on up."""
    for step in todo:
        try:
            step()
        except Exception:
            if not dev.cut:
                raise
            return False
        if dev.cut:
            return False  # the power is gone: nothing later may run
    return True


def checked(dev, mount, umount, check):
    """A verify: mount(dev) what survived, then check(): its text, or None when all holds. A volume that
    does not mount, or an exception in check (printed with its traceback), is a failure; the volume is
    unmounted after."""
    try:
        mount(dev)
    except OSError as e:
        return "volume does not mount: %r" % (e,)
    try:
        return check()
    except Exception as e:
        sys.print_exception(e)
        return "exception: %r" % (e,)
    finally:
        umount()
