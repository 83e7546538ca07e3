"""Intervals at boot: the state file read back and the store replayed after it (the module doc of
nengjian.values.intervals says what and why). Code that runs once per boot, so a module apart:
Intervals.resume loads it and drops it once it has run. It imports nothing of intervals (which
imports it): what it needs from there (the saved fields, the file's version, the counter's
modulus) is handed in."""

from nengjian.core import records, statefile
from nengjian.core.compat import const

_REPLAY_WITHOUT_STATE = const(5000)


def resume(iv, store, path, saved, version, modulus):
    """Intervals.resume: returns how many items have a known counter. saved, version, modulus:
    nengjian.values.intervals' _SAVED, _STATE_VERSION and modulus()."""
    seq = load(iv, path, saved, version, modulus)
    if seq is None:
        first = max(1, store.last_seq - _REPLAY_WITHOUT_STATE)
    else:
        # Items sharing one meter point were fed after the save that named this seq: a margin
        # re-reads them, and readings the state already holds are skipped by time.
        first = max(1, seq + 1 - 2 * len(iv.states) - 16)
    pending = {}
    codes = {}
    for st in iv.states:
        codes[st.code] = st

    def visit(_seq, rec):
        kind = rec[0]
        if kind == records.READING:
            q = records.REFILLED if len(rec) > 5 and rec[5] == records.REFILLED else 0
            for index in iv.by_point.get((rec[2], rec[3]), ()):
                iv.feed(index, rec[1], rec[4], q)
        elif kind == records.VALUE and rec[records.V_INPUT] == records.FIELD_INSTRUMENT:
            st = codes.get(rec[records.V_CODE])
            if st is not None:
                stat = rec[records.V_STAT_TYPE]
                start = rec[records.V_STAT_START]
                pending.pop((st.code, stat, start), None)
                if stat <= records.MONTH and start > st.done[stat]:
                    st.done[stat] = start
        return False

    iv._quiet = True
    iv._pending = pending
    try:
        store.scan(first, visit)
    finally:
        iv._quiet = False
        iv._pending = None
    for key in sorted(pending, key=lambda k: (k[2], k[1], k[0])):
        iv._emit(pending[key])
    iv._store = store
    iv._path = path
    iv._dirty = True
    iv._save_after = 0
    return sum(1 for st in iv.states if st.t is not None)


def load(iv, path, saved_fields, version, modulus):
    """Restore items from a state file; returns the store seq it was written at, or None."""
    def unreadable(why):
        iv._event("store", "interval state %s unreadable (%s): replaying recent records only" % (path, why),
                  "interval.unreadable")

    doc = statefile.load(path, version, unreadable)
    if doc is None:
        return None
    try:
        items = doc["items"]
        seq = int(doc["seq"])
        if not isinstance(items, dict):
            raise TypeError("items not a mapping")
    except (ValueError, KeyError, TypeError) as e:
        unreadable(repr(e))
        return None
    same_period = doc.get("period") == iv.period
    for st in iv.states:
        saved = items.get(st.code)
        if not saved or len(saved) != len(saved_fields):
            continue
        if saved[0] != st.meter or saved[1] != st.point:
            iv._event("config", "%s now reads %s.%s: its saved counter is not carried over" % (
                st.code, st.meter, st.point), "interval.moved")
            continue
        for name, v in zip(saved_fields[2:], saved[2:]):
            setattr(st, name, v)
        st.mod = modulus(st.rollover, st.e) if st.rollover else 0
        if not same_period:
            st.bt = None
    return seq
