"""The update slots on flash and the pointer naming the active one: the state the boot path
(nengjian.ota), the running gateway's resident part (nengjian.ota.resident) and the updater
(nengjian.ota.updater) read and write - the trial confirmed or rolled back, the log taken for the
ledger, a bundle left for the boot - and OtaError. A module of its own so that they import it and
never each other (as nengjian.config.errors does for config).

Layout under `root` (the board's APP_DIR):
    a/, b/          each a `nengjian` package, the MANIFEST.json it came with and that manifest's
                    signature (MANIFEST.sig): what proves the slot holds what the vendor signed
                    (nengjian.ota.proof). MANIFEST.json is written last and removed first: a slot
                    without it is incomplete and never run
                    On a board that runs its package from ROMFS (board.romfs_stores()), a slot
                    whose bundle carried romfs.img keeps only MANIFEST.json and MANIFEST.sig: the
                    image is in the slot's ROMFS store (slot a: romfs_a; slot b and the built-in
                    package: romfs_b), which firmware/romcopy.py copies into `romfs` at boot
    current         the pointer (JSON, below); missing or unreadable: the built-in package runs
    pending.json    a bundle left for the check at the next boot (nengjian.ota.install_pending):
                    {"bundle": path, "version", "key": vendor key path, "board", "window_s", "max_boots"}

Pointer: {"active": "" (the built-in package), "a" or "b"; "version"; "previous", "previous_version":
what a rollback returns to; "state": "trial" or "confirmed"; "boots", "max_boots", "window_s" of the
trial; "failure": why the trial failed to start; "log": the last 8 texts for the ledger; "refused":
the version the check at boot refused; "rolled_back": the last version rolled back here, which the
update fetcher does not fetch again (else it would be installed, fail and be rolled back at every
check; a crew can still push it), dropped when another is installed; "switching": a reset to copy the trial's ROMFS image in was
made (select() does it once); "min_version": the persisted minimum, no bundle older than it
installs unless it is a signed downgrade; "min_on_confirm": what the minimum becomes when the trial
is confirmed}. Older firmware (a rollback to the built-in package) reads the same file: its name and
format never change (keys are only ever added).

The slot a trial runs from is never the slot of the confirmed version a rollback returns to, and no
install starts while a version is on trial (nengjian.ota.updater refuses it): so whatever the
sequence of installs, trials, rollbacks and power cuts, "previous" of a trial names a slot that is
whole and confirmed.

Writing: nengjian.core.statefile.replace, so a power cut leaves the whole old pointer or the whole new
one; a write that fails raises OSError (the caller decides: boot goes on, the crew is told).
"""

import json
import os

from nengjian.core import statefile

POINTER = "current"
PENDING = "pending.json"
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"
ROMFS_IMAGE = "romfs.img"  # the one file of a bundle that carries the package as a ROMFS image
LOG_KEEP = 8


class OtaError(Exception):
    pass


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def read_pointer(root):
    try:
        with open(root + "/" + POINTER) as f:
            p = json.load(f)
        if isinstance(p, dict) and p.get("active") in ("", "a", "b"):
            return p
    except (OSError, ValueError):
        pass
    return None


def write_pointer(root, p):
    write_json(root + "/" + POINTER, p)


# The update channel's record of its checks (what it holds: nengjian.ota.channel.seen()); here because
# the resident part and the updater clear a record that gave up without loading nengjian.ota.channel.
SEEN = "channel.seen"


def seen_gave_up(root):
    """The record SEEN when it says the update check gave up (no restart for it), else None."""
    try:
        with open(root + "/" + SEEN) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("gave_up") else None


def write_json(path, doc):
    """doc as JSON at path, atomically; OSError if it could not be written (path then unchanged)."""
    why = []
    if not statefile.replace(path, lambda f: json.dump(doc, f), "w", why.append):
        raise OSError(why[0])


def romfs_stores():
    """The board's ROMFS partitions (board.romfs_stores(): {"active", "a", "b"}), or None on a board
    without them: there a slot is a package directory."""
    try:
        import board
    except ImportError:
        return None
    stores = getattr(board, "romfs_stores", None)
    return (stores() or None) if stores else None


def add_log(p, text):
    """Keep text in the pointer's log for the ledger (the app writes it there once the store is open)."""
    log = p.setdefault("log", [])
    log.append(text)
    del log[:-LOG_KEEP]


def rollback(p):
    """Point back at what ran before the trial (the caller writes the pointer)."""
    p["rolled_back"] = p.get("version")
    p["active"] = p.get("previous") or ""
    p["version"] = p.get("previous_version")
    p["previous"] = None
    p["previous_version"] = None
    p["state"] = "confirmed"
    p["boots"] = 0
    p.pop("failure", None)
    p.pop("switching", None)
    p.pop("min_on_confirm", None)  # the minimum stays what the confirmed version set


# ---- the pointer, as the running application changes it (nengjian.ota.resident, nengjian.ota.updater)
def on_trial(root):
    p = read_pointer(root)
    return bool(p and p.get("state") == "trial")


def confirm(root, event=None):
    """The running version is healthy: keep it. False if nothing is on trial."""
    p = read_pointer(root)
    if not p or p.get("state") != "trial":
        return False
    p["state"] = "confirmed"
    p["boots"] = 0
    p.pop("failure", None)
    low = p.pop("min_on_confirm", None)
    if low:
        p["min_version"] = low  # anti-rollback: nothing older than what is now confirmed
    write_pointer(root, p)
    if event is not None:
        event("ota", "version %s confirmed healthy: kept" % p.get("version"), "ota.confirmed")
    return True


def check_trial(root, uptime_s, window_s, event=None):
    """Roll back a trial not confirmed within its window. True if it did (the caller resets)."""
    p = read_pointer(root)
    if not p or p.get("state") != "trial" or uptime_s < p.get("window_s", window_s):
        return False
    text = "rolled back from %s to %s: not healthy within %d s" % (
        p.get("version"), p.get("previous_version") or "built-in", p.get("window_s", window_s))
    rollback(p)
    write_pointer(root, p)
    if event is not None:
        event("ota", text, "ota.rolled_back")
    return True


def take_log(root, event):
    """What the boot path and earlier runs left in the pointer for the ledger; written there once."""
    p = read_pointer(root)
    if not p or not p.get("log") or event is None:
        return []
    out = p.pop("log")
    write_pointer(root, p)
    for text in out:
        event("ota", text, "ota")
    return out


def take_refused(root):
    """The version the check at boot refused, once (None if none)."""
    p = read_pointer(root)
    if not p or "refused" not in p:
        return None
    version = p.pop("refused")
    write_pointer(root, p)
    return version


def defer_bundle(root, path, version, key_path, board_name, window_s, max_boots, running, event=None):
    """Leave the received bundle at path to the check at the next boot (nengjian.ota.install_pending)."""
    write_json(root + "/" + PENDING, {
        "bundle": path, "version": version, "key": key_path, "board": board_name, "window_s": window_s,
        "max_boots": max_boots, "running": running})
    if event is not None:
        event("ota", "bundle%s received: verified and installed at the restart" % (" " + version if version else ""), "ota.received")
