"""Files replaced atomically: small JSON state, and the one writer every replaced file goes through.

Owns: how a module's small state (alarm levels, open tce totals, interval counters, pulse counts,
the boot counter, a platform session) is written, read back, and what a power cut at any moment
leaves behind; and the NAME.new-then-rename commit used for any other replaced file (the store's
cursors, the update pointer, a file the console receives).

    doc = statefile.load(path, 1, on_error)     # dict, or None: caller starts from its fallback
    ok = statefile.save(path, doc, 1, on_error)  # True once on flash; False (and on_error) if not
    statefile.remove(path)                       # the state and any half-finished save of it
    ok = statefile.replace(path, write, "wb")    # any content: write(f) fills it (cursors, pointers)
    f = statefile.begin(path, "wb"); ...; f.close(); statefile.commit(path)  # content arriving over time

Every file the firmware replaces goes through here, JSON or not, so there is one place that knows
what a power cut in the middle of a write leaves.

Format: the JSON text of the document. With a `version` (an int) the document is a dict and the
file holds it with "v": version as well (first); a file of another version is not used, so a
gateway rolled back to older firmware starts from its fallback rather than misreading a newer
format. version None stores any JSON value as given, no "v" (formats that had none: the boot
counter is a bare number, the ndrc session a dict).

Writing: to NAME.new, closed, then renamed over NAME. The rename is the commit: littlefs replaces
NAME atomically, so NAME is always the whole old state or the whole new one, never a mix. A
failed write (flash full, I/O error) never raises OSError: on_error(reason) and False; the
partial NAME.new is removed (on a full volume it holds the space the next try needs). The doc is
streamed to the file (json.dump), never built as one string in RAM.

Reading, and what a cut leaves:
- NAME readable: it is used; a NAME.new beside it is ignored (a save cut before its rename, torn
  or not: the rename is the commit, and a caller loses at most its last save, as with a cut just
  before that save).
- NAME missing or unusable, NAME.new present: used only when it parses as a whole document of the
  right version, and then renamed over NAME (finishing the save the cut interrupted). This is
  safe because a NAME.new exists only while its save has not reached the rename (every save
  that completes renames it away, every failed one removes it), so a whole NAME.new is the newest
  state ever written, never a stale one; and a JSON object is self-delimiting: a write cut short
  cannot parse as a complete object. Typical case: a cut between the first save's write and its
  rename, where the alternative is no state at all (pulse counts from zero). A torn NAME.new with
  no NAME is treated as no state (nothing was ever committed).
- NAME missing (ENOENT): None, quietly: the first boot.
- NAME torn, not JSON, not a JSON object, of another version, or unreadable (I/O error):
  on_error(reason) and None; the caller's fallback applies and it records the event.

on_error(reason) gets a short reason without the path (callers name the state in their own
ledger text); without on_error the reason goes to the console log.
"""

import json
import os

NEW = ".new"


def _report(on_error, path, reason):
    if on_error is not None:
        on_error(reason)
    else:
        from nengjian.core import log

        log.warn("state", "%s: %s" % (path, reason))


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else -1


def _read(path, version):
    """(doc, None), or (None, reason); reason None when the file does not exist."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        if _errno(e) == 2:  # ENOENT
            return None, None
        return None, "read failed: %s" % e
    except Exception as e:  # torn or garbage: ValueError on both ports, MemoryError for a huge one
        return None, "not complete JSON: %s" % e
    if version is None:
        return doc, None
    if not isinstance(doc, dict):
        return None, "not a JSON object"
    if doc.get("v") != version:
        return None, "version %s, this firmware reads %s" % (doc.get("v"), version)
    return doc, None


def load(path, version, on_error=None):
    """The state saved at `path`, or None (see the module doc for missing, torn and leftover files).
    With a version the result is a dict (its "v" included); without, the JSON value as saved."""
    doc, reason = _read(path, version)
    if doc is not None:
        return doc
    new = path + NEW
    rescued, _why = _read(new, version)
    if rescued is not None:
        try:
            os.rename(new, path)
        except OSError:
            pass  # still used: the next save writes NAME anyway
        if reason is not None:
            _report(None, path, "%s: using the complete %s%s of the save it was cut in" % (reason, path, NEW))
        return rescued
    if reason is not None:
        _report(on_error, path, reason)
    return None


def begin(path, mode="w"):
    """Open NAME.new for a replacement of NAME written over time (a file arriving in chunks); then
    commit(path) or abandon(path). Raises OSError like open()."""
    return open(path + NEW, mode)


def commit(path):
    """Rename a closed NAME.new over NAME: the moment the new content counts. Raises OSError."""
    os.rename(path + NEW, path)


def abandon(path):
    """Drop a NAME.new that will not be committed (on a full volume it holds the space a retry needs)."""
    try:
        os.remove(path + NEW)
    except OSError:
        pass


def replace(path, write, mode="w", on_error=None):
    """The one atomic writer of the firmware: write(f) fills NAME.new, the rename commits it, so NAME
    is always the whole old content or the whole new one. True once done; on an OSError NAME.new is
    removed, on_error(reason) (or the log) and False, never the OSError."""
    try:
        with begin(path, mode) as f:
            write(f)
        commit(path)
        return True
    except OSError as e:
        abandon(path)
        _report(on_error, path, "%s" % e)
        return False


def save(path, doc, version, on_error=None):
    """Write doc to path atomically (replace()). True once done; on an OSError on_error(reason) and
    False, never the OSError. With a version, doc must be a dict of JSON-able values with text keys;
    its own "v" (if any) is replaced by `version`."""

    def write(f):
        if version is None:
            json.dump(doc, f)
            return
        # "v" first and the caller's dict untouched, without a copy of it in RAM
        f.write('{"v": %d' % version)
        for k in doc:
            if k != "v":
                f.write(", ")
                json.dump(k, f)
                f.write(": ")
                json.dump(doc[k], f)
        f.write("}")

    return replace(path, write, "w", on_error)


def remove(path):
    """Forget the state: NAME and any NAME.new (which load would otherwise take up)."""
    for p in (path, path + NEW):
        try:
            os.remove(p)
        except OSError:
            pass
