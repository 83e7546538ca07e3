"""The store's cold code: what runs once at boot (Store.open: the segment files taken up, torn tails
cut, the cursor files read, the rings fitted to the volume) or on an operator's request
(Store.history: history read back). Store loads this module for the call and drops it after, so
none of it holds heap while the gateway runs. What each step means is said where its state lives:
nengjian.store.store (recovery, the space policy, the c-NAME files), .ring (the scan), .history
(runs). The store's modules import this one (for the call), so it imports none of them: what it
needs of them (a class, the format's constants, a helper) is handed in by the caller.
"""

import os
from binascii import crc32

from nengjian.core import records
from nengjian.store import cbor


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else -1


# ---- Store.open
def open_store(st, seg_class):
    # seg_class: nengjian.store.ring's _Seg
    try:
        os.mkdir(st.root)
    except OSError:
        pass
    by_prefix = {r.prefix: r for r in st._rings}
    for name in sorted(os.listdir(st.root)):
        if name.endswith(".tmp") or name.endswith(".new"):
            os.remove(st.root + "/" + name)  # never renamed: the write did not complete
            continue
        ring = by_prefix.get(name[:1])
        if ring is None or not name.endswith(".seg") or len(name) < 6:
            continue
        try:
            i = int(name[1:-4])
        except ValueError:
            continue
        seg = seg_class(i)  # a segment file found at boot, learnt record by record
        ring.segs[i] = seg
        ring.scan(seg)
    h = st._hist  # the next fold goes on where the last one ended
    h.upto = h.top()
    h.cur = h.newest()
    top = max(st._main.top(), st._raw.top(), h.upto)
    floor = max(top, _load_cursors(st))
    st._next_seq = floor + 1
    st.durable_seq = floor
    _settle(st, top, st._oldest_seq())
    _fit_volume(st)
    for ring in (st._main, st._raw):
        if ring is st._raw and not st.raw_count:
            continue
        try:
            ring.ready()
        except OSError as e:  # the first flush tries again
            st.alarms["flash"] = "cannot open a segment (errno %d)" % _errno(e)


def _fit_volume(st):
    """Size the rings to the volume, in littlefs blocks."""
    try:
        sv = os.statvfs(st.root)
    except (OSError, AttributeError):
        return
    bs, blocks = sv[0], sv[2]
    if not bs or not blocks or blocks * bs > 1 << 34:
        return  # a host file system: nothing to fit
    # littlefs keeps a skip list in each data block (4-8 bytes on average): a file of exactly
    # 16 blocks of data would spill into a 17th. Rotating a little early keeps whole blocks.
    for ring in st._rings:
        if ring.seg_bytes >= bs:
            ring.seg_bytes -= 8 * (ring.seg_bytes // bs)
    per = (st._main.seg_bytes + bs - 1) // bs
    raw = st.raw_count * ((st._raw.seg_bytes + bs - 1) // bs) if st.raw_count else 0
    # Kept free for littlefs: superblock and directory pairs, copy-on-write of the blocks being
    # appended to, and one fold's output on top of a full history segment; and one segment more
    # than the pool while a fold is under way.
    reserve = 16 + blocks // 32
    fit = (blocks - raw - reserve) // per - 1
    if fit < st.segment_count:
        want = st.segment_count
        st.segment_count = max(st.main_keep + st.fold_n + 1, fit)
        st._event("store", "%d segments of %d bytes do not fit a %d-byte volume: using %d"
                  % (want, st.segment_bytes, blocks * bs, st.segment_count), "store.segments")


def _load_cursors(st):
    """Read every destination's file; returns the highest seq saved (0 if none)."""
    high = 0
    for dest in st.destinations:
        c = _read_cursor(st, dest)
        st._at[dest] = c
        if c is not None and c > high:
            high = c
    return high


def _read_cursor(st, dest):
    try:
        with open(st._cursor_path(dest)) as f:
            text = f.read()
    except OSError:
        return None
    try:
        seq_text, crc_text = text.split()
        seq = int(seq_text)
        if crc32(seq_text.encode()) != int(crc_text) or seq < 0:
            raise ValueError("crc")
    except (ValueError, IndexError):
        st._event("store", "cursor of %s damaged: resending from the oldest record" % dest, "store.cursor_damaged")
        return None
    return seq


def _settle(st, top, oldest):
    """After the files are read: a destination without a cursor starts before `oldest`; one past
    `top`, the newest record, is clamped to it."""
    for dest in st.destinations:
        c = st._at[dest]
        if c is None:
            c = oldest - 1
        elif c > top:
            st._event("store", "cursor of %s (%d) past the newest record (%d): clamped" % (dest, c, top), "store.cursor_clamped")
            c = top
        st._at[dest] = c


# ---- Store.history
def unvarints(b):
    """The signed differences of a history run, decoded."""
    out = []
    z = 0
    shift = 0
    for c in b:
        z |= (c & 0x7F) << shift
        if c & 0x80:
            shift += 7
            continue
        out.append(z >> 1 if not z & 1 else -((z + 1) >> 1))
        z = 0
        shift = 0
    return out


def history(h, visit, head, tail, run_kind):
    # head, tail: nengjian.store.ring's HEAD and TAIL; run_kind: nengjian.store.history's HISTORY
    for seg in h.live():
        it = h.walk(0, None, [seg])
        try:
            for seq, n in it:
                try:
                    rec = cbor.decode(h.rxv, head, n - tail)
                except cbor.CBORError:
                    continue
                if rec[0] != run_kind:
                    visit(seq, rec)
                    continue
                m = 0
                for i, dv in enumerate(unvarints(rec[8])):
                    m += dv
                    visit(None, [records.VALUE, None, rec[2], rec[3], rec[1] + i * rec[4], cbor.Decimal(m, rec[5]),
                                 i not in rec[9], rec[6], rec[7]])
        finally:
            it.close()


# ---- rare repairs: Ring.put, Ring.scan, History._write_run
def shorten(record, over, max_payload, error):
    # max_payload, error: nengjian.store.ring's MAX_PAYLOAD and StoreError
    """The record with its longest text cut so that it fits MAX_PAYLOAD (an over-long event)."""
    rec = list(record)
    best = -1
    for i, v in enumerate(rec):
        if isinstance(v, str) and (best < 0 or len(v) > len(rec[best])):
            best = i
    if best < 0 or len(rec[best].encode()) < over + 8:
        raise error("record of %d bytes exceeds %d" % (over + max_payload, max_payload))
    b = rec[best].encode()[:len(rec[best].encode()) - over - 8]
    while b:
        try:
            rec[best] = b.decode() + " [cut]"
            break
        except UnicodeError:
            b = b[:-1]
    return rec


def rewrite_prefix(path, length):
    tmp = path + ".tmp"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        left = length
        while left:
            chunk = src.read(min(512, left))
            dst.write(chunk)
            left -= len(chunk)
    os.rename(tmp, path)


def write_halves(self, key, r, varint, when):
    # self: the History; varint, when: nengjian.store.history's _varint and when
    """Write run r, too long for one record, as two runs (each halved again if need be). Both
    carry r's seq: a run keeps only the seq of its last value."""
    n = r[6]
    if n < 2:  # a one-value run is no longer than its VALUE record but by the odd byte (a time
        # under 24 and a mantissa over 2**62 in a VALUE of the full MAX_PAYLOAD): said, not kept
        self.stats["lost"] += 1
        self.event("loss", "history: a value of %s at %s CST does not fit a record: not kept"
                   % (key[0][:40], when(r[0])), "loss.too_big")
        return
    k = n // 2
    d = r[3]
    pos = 0
    cut = 0  # where value k's delta starts
    m = 0  # mantissa of value k
    z = 0
    shift = 0
    seen = 0
    while seen <= k:
        c = d[pos]
        pos += 1
        z |= (c & 0x7F) << shift
        if c & 0x80:
            shift += 7
            continue
        m += z >> 1 if not z & 1 else -((z + 1) >> 1)
        z = 0
        shift = 0
        seen += 1
        if seen == k:
            cut = pos
    # (the fields a run's writing does not read, last mantissa and invalid bytes, are left 0)
    first = [r[0], r[1], r[0] + (k - 1) * r[1], d[:cut], 0, [i for i in r[5] if i < k], k, r[7], 0]
    rest = bytearray()
    varint(rest, m << 1 if m >= 0 else ((-m) << 1) - 1)  # the second run's first value, from 0
    rest.extend(d[pos:])
    second = [r[0] + k * r[1], r[1], r[2], rest, r[4], [i - k for i in r[5] if i >= k], n - k, r[7], 0]
    self._write_run(key, first)
    self._write_run(key, second)
