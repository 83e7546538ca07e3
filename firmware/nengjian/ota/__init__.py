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
        if p.get("boots", 0) >= p.get("max_boots", 2):
            why = p.get("failure")
            slots.add_log(p, "rolled back from %s to %s: not healthy after %d boot(s)%s" % (
                p.get("version"), p.get("previous_version") or "built-in", p.get("boots", 0),
                "; it failed to start: " + why if why else ""))
            slots.rollback(p)
        else:
            p["boots"] = p.get("boots", 0) + 1
            slots.add_log(p, "trial boot %d of %d: %s from slot %s" % (
                p["boots"], p.get("max_boots", 2), p.get("version"), p.get("active")))
        try:
            write_pointer(root, p)
        except OSError:
            pass
    slot = p.get("active")
    if not slot or not slots.exists("%s/%s/%s" % (root, slot, MANIFEST)):
        return None
    return "%s/%s" % (root, slot)


def _forget_package():
    for name in list(sys.modules):
        if name == "nengjian" or name.startswith("nengjian."):
            del sys.modules[name]


def activate(root):
    """select() and make `import nengjian` load from the chosen slot (main.py calls this first).
    Every nengjian module loaded so far (this one included) is dropped either way: the application
    imports what it needs from the right place, and no heap is kept for this module."""
    slot = select(root)
    if slot:
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
    bundle = pend.get("bundle") if isinstance(pend, dict) else None
    if not bundle:
        return
    try:
        # Only now, and in this fresh heap: the updater (the signature check) is not loaded otherwise.
        from nengjian.ota.updater import Updater, load_key

        up = Updater(root, load_key(pend["key"]), pend["board"], None, pend["window_s"], pend["max_boots"],
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
