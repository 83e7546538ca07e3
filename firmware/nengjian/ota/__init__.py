"""Signed application updates, the boot path: what firmware/main.py calls before anything else
imports nengjian, in a fresh heap - install a bundle left for this boot, pick the slot to run, count
trial boots, roll back a trial that never got healthy, and record a trial that failed to start.

main.py is never updated on a gateway (bundles replace only the package), so the names it calls
here - install_pending, activate, trial, failed - stay, with these meanings
(tests/firmware/ota/test_boot_names.py pins them):

    ota.install_pending(root)   # a bundle the application left for a fresh heap: verified, switched in
    slot = ota.activate(root)   # the slot directory to run (None: the built-in package), on sys.path
    ota.trial(root)             # True while the active slot is on trial
    ota.failed(root, why)       # the version on trial raised while starting (main.py then resets)

The rest - receiving and verifying a bundle, installing it in the spare slot, confirming a healthy
trial, rolling back one not healthy in time - is the running application's: nengjian.ota.updater,
imported by the application (and here only when a bundle is pending), so an ordinary boot does not
load it. The slots and the pointer both use are nengjian.ota.slots (layout and format there).

Trial: "trial" is the state of a version just installed. select() counts its boots; one that booted
`max_boots` times without confirming is rolled back at the next boot (a crash loop before healthy);
one that runs but is not healthy within `window_s` rolls itself back (Updater.check_trial);
health.Supervisor's healthy confirms it (Updater.confirm). A trial whose package raises while it
starts is recorded with failed() and the board is reset at once (a board sitting in the REPL would
never count the next boot), so a crash at import is rolled back after max_boots boots. What happened
is left in the pointer's "log" for the application to write to the ledger once the store is open.
On a board that runs its package from ROMFS a slot's image is in a ROMFS store, which the board
module copies into `romfs` (firmware/romcopy.py) before this runs: select() resets once when the
check at boot has just installed a trial (the copy comes at that reset, no trial boot counted), and
after a rollback, so what runs is always the image of the slot the pointer names.

Verified at boot when the running application cannot: a gateway that has run for weeks has a
fragmented heap (measured on the sim board: 22 kB free, no free block over 448 bytes), and the
signature check needs kilobyte-sized integers. So a bundle fetched over the uplink is only written
to flash by the running application, named in `root`/pending.json (Updater.defer), and verified and
switched in by install_pending() at the next boot, before the application fills the heap; a crew's
push is verified at once and deferred the same way only when that runs out of memory. A refusal at
boot goes into the pointer's log (the ledger) and its version into "refused", which the update
fetcher takes once so that it does not download that bundle again straight away.

On the sim board the slots live in the gateway's directory (NJ_SIM_DIR/app) and the crew pushes a
bundle over the console (`ota` command, `nengjian ota push`).
"""

import json
import sys

from nengjian.ota import slots
from nengjian.ota.slots import (  # noqa: F401  (callers' names: ota.OtaError, ota.read_pointer, ...)
    MANIFEST,
    PENDING,
    POINTER,
    OtaError,
    read_pointer,
    write_pointer,
)


def select(root):
    """At boot, before nengjian is imported from anywhere else: the slot directory to run, or None for
    the built-in package. Counts trial boots and rolls back a trial that never got healthy."""
    p = read_pointer(root)
    if p is None:
        return None
    if p.get("state") == "trial":
        rolled = True
        if p.get("boots", 0) >= p.get("max_boots", 2):
            why = p.get("failure")
            slots.add_log(p, "rolled back from %s to %s: not healthy after %d boot(s)%s" % (
                p.get("version"), p.get("previous_version") or "built-in", p.get("boots", 0),
                "; it failed to start: " + why if why else ""))
            slots.rollback(p)
        elif _image_due(root):
            rolled = _switch_image(root, p)
        else:
            rolled = False
            p.pop("switching", None)
            p["boots"] = p.get("boots", 0) + 1
            slots.add_log(p, "trial boot %d of %d: %s from slot %s" % (
                p["boots"], p.get("max_boots", 2), p.get("version"), p.get("active")))
        try:
            write_pointer(root, p)
        except OSError:
            pass
        if rolled and _image_due(root):
            _reset_for_image()  # the image of what a rollback returns to is copied in at that boot
    slot = p.get("active")
    if not slot or not slots.exists("%s/%s/%s" % (root, slot, MANIFEST)):
        return None
    return "%s/%s" % (root, slot)


def _image_due(root):
    """True on a board that runs its package from ROMFS when `romfs` does not hold the image of the
    slot the pointer chose (firmware/romcopy.py copies it in as the board module is imported)."""
    parts = slots.romfs_stores()
    if not parts:
        return False
    try:
        import romcopy

        return romcopy.due(root, parts)
    except Exception:  # noqa: BLE001 - an unreadable store: boot on with the image there
        return False


def _switch_image(root, p):
    """The trial's ROMFS image is not in `romfs` yet (installed at this boot, by install_pending):
    reset once, without counting a trial boot, for romcopy to copy it in. If a reset for it came
    and went (the copy failed), the trial is rolled back instead: the old image would run under the
    trial's name, and be confirmed as it. True if it rolled back (the caller writes the pointer)."""
    if not p.get("switching"):
        p["switching"] = 1
        slots.add_log(p, "%s: its ROMFS image is copied in at the restart" % p.get("version"))
        try:
            write_pointer(root, p)
        except OSError:
            return False
        _reset_for_image()
        return False  # only where reset() returns (a test's board)
    slots.add_log(p, "rolled back from %s to %s: its ROMFS image was not copied in" % (
        p.get("version"), p.get("previous_version") or "built-in"))
    slots.rollback(p)
    return True


def _reset_for_image():
    import board

    print("ota: the chosen ROMFS image is copied in at the restart: resetting")
    board.reset()


def _fresh_heap():
    """After the channel's check at boot: reset, so that the application starts in a heap the check
    never touched. Its modules go once it is done, but not the names they interned, nor the holes its
    integers left among them: at the smallest heap the gateway runs in, that was enough for its boot
    to fail where a fresh one does not (bench/bench_heap.py's day). pending.json is gone by then:
    the boot after this one is an ordinary boot, never another check."""
    try:
        import board
    except ImportError:  # CPython, where the tests call install_pending()
        return
    print("ota: update channel checked at boot: resetting into a fresh heap")
    board.reset()


def _forget_package():
    for name in list(sys.modules):
        if name == "nengjian" or name.startswith("nengjian."):
            del sys.modules[name]


def activate(root):
    """select() and make `import nengjian` load from the chosen slot (main.py calls this first).
    Every nengjian module loaded so far (this one included) is dropped either way: the application
    imports what it needs from the right place, and no heap is kept for this module."""
    slot = select(root)
    if slot and slots.exists(slot + "/nengjian"):  # a ROMFS slot's package is the image at /rom
        sys.path.insert(0, slot)
    _forget_package()
    return slot


def trial(root):
    """True while the active slot is on trial (main.py: a failure to start then resets the board)."""
    p = read_pointer(root)
    return bool(p and p.get("state") == "trial")


def failed(root, why):
    """The version on trial raised while starting: keep why for the ledger (the reset that follows
    counts the next trial boot, or rolls back)."""
    p = read_pointer(root)
    if not p or p.get("state") != "trial":
        return
    why = why[:160]
    p["failure"] = why
    slots.add_log(p, "%s failed to start on trial boot %d: %s" % (p.get("version"), p.get("boots", 0), why))
    write_pointer(root, p)


def install_pending(root):
    """At boot, before activate(): verify and switch in the bundle the application left for a fresh
    heap (Updater.defer). The outcome goes into the pointer's log for the ledger; a refused version
    into its "refused" (Updater.take_refused)."""
    path = root + "/" + PENDING
    try:
        with open(path) as f:
            pend = json.load(f)
    except OSError:
        return  # nothing pending: every ordinary boot
    except ValueError:
        pend = None  # torn by a power cut: dropped (the fetcher downloads the bundle again)
    slots.remove(path)  # before anything else: a bundle that breaks this code must not be retried every boot
    channel = pend.get("channel") if isinstance(pend, dict) else None
    if channel:
        # The update channel's signature, which the running heap had no room to check (nengjian.ota.channel).
        p = read_pointer(root) or {"active": "", "state": "confirmed"}
        try:
            from nengjian.ota import channel as otachannel
            from nengjian.ota.updater import load_keys

            slots.add_log(p, otachannel.check_at_boot(root, channel, load_keys(pend["key"])))
        except Exception as e:  # noqa: BLE001 - the version before it boots; the channel is read again
            slots.add_log(p, "update channel not checked at boot: %s: %s" % (type(e).__name__, e))
        finally:
            slots.remove(channel)
        try:
            write_pointer(root, p)
        except OSError:
            pass
        _fresh_heap()
        return
    bundle = pend.get("bundle") if isinstance(pend, dict) else None
    if not bundle:
        return
    try:
        # Only now, and in this fresh heap: the updater (the signature check) is not loaded otherwise.
        from nengjian.ota.updater import Updater, load_keys

        up = Updater(root, load_keys(pend["key"]), pend["board"], None, pend["window_s"], pend["max_boots"],
                     running=pend.get("running"))
        up.install_file(bundle)
    except Exception as e:  # noqa: BLE001 - whatever it was, the version before it boots
        p = read_pointer(root) or {"active": "", "state": "confirmed"}
        why = str(e) if isinstance(e, OtaError) else "%s: %s" % (type(e).__name__, e)
        slots.add_log(p, "update refused: %s" % why)
        p["refused"] = pend.get("version")
        try:
            write_pointer(root, p)
        except OSError:
            pass
    finally:
        slots.remove(bundle)
