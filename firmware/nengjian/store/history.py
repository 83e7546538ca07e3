"""History: delivered values folded into compact runs, in a ring of their own (hNN.seg).

Owns: the fold of main-ring segments into history, the run record, reading history back as VALUEs,
and what expiring a history segment counts and says. When to fold, and which history segment gives
way, is the space policy's (nengjian.store.store).

A run is the record
    [16, start, code, statType, step, exponent, inputType, scope, deltas, invalid]
holding the VALUEs of one item for consecutive periods start, start+step, ...: `deltas` is a byte
string of LEB128 zigzag differences between consecutive mantissas (the first from 0), `invalid` the
offsets of values sent as invalid; its framing seq is the seq of its last value. A run keeps neither
each value's seq nor its computation time. Records other than VALUEs are copied as they were.

A run is closed when its deltas and invalid offsets, as encoded, pass RUN_MAX_BYTES together (an
invalid offset costs up to 3 bytes where a delta of a steady load costs 1 or 2), which keeps it well
inside MAX_PAYLOAD for a data code of the usual size; a run that would still not fit a record (an
item with a very long code or scope) is written as two, halved again until each fits.
"""

from nengjian.core import records, timeutil
from nengjian.store import cbor
from nengjian.store.ring import HEAD, TAIL, Ring, StoreError, cold, frame, ts_of

HISTORY = 16
RUN_MAX_BYTES = 480  # deltas and invalid offsets per run record (as encoded), so a run fits MAX_PAYLOAD

_V = records.VALUE


def when(ts):
    return timeutil.cst_text(ts) if ts else "?"


def _varint(out, z):
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


class History(Ring):
    def __init__(self, root, seg_bytes, event, stats):
        super().__init__(root, "h", seg_bytes, event, stats, ordered=False)
        self.upto = 0  # every main record <= this has been folded into history
        self.fold_out = 0  # bytes the last fold wrote
        self._runbuf = bytearray()

    def expire(self, seg, why):
        """seg is about to be given up: count it and say which time range goes."""
        self.stats["history_expired"] += seg.count
        self.event("store", "history from %s to %s CST (%d records) expired: %s"
                   % (when(seg.t0), when(seg.t1), seg.count, why), "store.expired")

    def fold(self, main, unit, mark=0):
        """Append the records of main segments `unit` (oldest first) to history in one littlefs commit:
        VALUEs as runs, every other record as it was. Returns the time of the first record >= mark."""
        if self.dirty:
            self.recheck()
        # A fold is one commit, so it cannot be split across history segments: start a new one when
        # this fold is not expected to fit (about as much as the last fold wrote, and some).
        est = self.fold_out * 5 // 4 if self.fold_out else sum(s.size for s in unit) // 16
        if self.cur is None or self.cur.size + est > self.seg_bytes:
            self.close_file()
            self.cur = self.next_seg()  # type: ignore[misc]  # the store sets it before any write
        before = self.cur.size
        self.open_append()
        runs = {}
        upto = self.upto
        top = upto
        t_mark = 0
        values = 0
        try:
            for seg in unit:
                it = main.walk(upto + 1, None, [seg])
                try:
                    for seq, n in it:
                        if mark and seq >= mark and not t_mark:
                            t_mark = ts_of(main.rx)
                        top = seq
                        if main.rx[HEAD + 1] == _V and self._fold_value(main, runs, seq, n):
                            values += 1
                            continue
                        self.f.write(main.rxv[:n])
                        self.note(self.cur, seq, n, ts_of(main.rx))
                finally:
                    it.close()
            for key in list(runs):
                self._write_run(key, runs.pop(key))
            self.f.flush()
        finally:
            self.close_file()
        self.fold_out = self.cur.size - before
        self.upto = max(top, self.top())
        self.stats["folds"] += 1
        self.stats["history_values"] += values
        return t_mark

    def _fold_value(self, main, runs, seq, n):
        try:
            v = cbor.decode(main.rxv, HEAD, n - TAIL)
            code = v[records.V_CODE]
            start = v[records.V_STAT_START]
            d = v[records.V_VALUE]
            key = (code, v[records.V_STAT_TYPE], d.exponent, v[records.V_INPUT], v[records.V_SCOPE])
            valid = v[records.V_VALID]
            if len(v) > records.V_QUALITY:
                return False  # a refilled value keeps its mark: copied as it is, not folded
            mant = d.mantissa
            if not isinstance(start, int) or not isinstance(mant, int) or not isinstance(code, str):
                return False
        except (cbor.CBORError, IndexError, AttributeError, TypeError):
            return False
        # run: [start, step, last start, deltas, last mantissa, invalid offsets, count, last seq,
        #       bytes of the invalid offsets as encoded]
        r = runs.get(key)
        if r is not None:
            step = r[1] or (start - r[2])
            if step <= 0 or start != r[2] + step or len(r[3]) + r[8] > RUN_MAX_BYTES:
                self._write_run(key, runs.pop(key))
                r = None
            else:
                r[1] = step
        if r is None:
            r = [start, 0, start, bytearray(), 0, [], 0, seq, 0]
            runs[key] = r
        dv = mant - r[4]
        _varint(r[3], dv << 1 if dv >= 0 else ((-dv) << 1) - 1)
        if not valid:
            i = r[6]
            r[5].append(i)
            r[8] += 1 if i < 24 else 2 if i < 256 else 3  # a CBOR uint (i < 65536: a run is < 1024 values)
        r[2] = start
        r[4] = mant
        r[6] += 1
        r[7] = seq
        return True

    def _write_run(self, key, r):
        b = self._runbuf
        b[:] = b""
        try:
            frame(b, [HISTORY, r[0], key[0], key[1], r[1], key[2], key[3], key[4], bytes(r[3]), r[5]], r[7])
        except StoreError:  # over MAX_PAYLOAD: never written, no reader would accept it
            cold("write_halves", self, key, r, _varint, when)
            return
        self.f.write(b)
        self.note(self.cur, r[7], len(b), r[0])
