"""Append-only, power-loss-safe record store on the data volume (littlefs): a cursor per destination,
and a compact long-term history.

Owns: segment files, record framing, sequence numbers, acknowledgement cursors, recovery at boot, the
fold of delivered values into history, and what happens when space runs out. Knows the kinds of
nengjian.core.records only to route and fold them; knows nothing of meters or platforms.

Partition assumed
-----------------
A 4 MiB littlefs data partition (1024 blocks of 4 KiB) on boards with 8 MB of flash or more
(esp32s3-4g has 16 MB, esp32-eth WROVER 4-8 MB). docs/STORE.md has the arithmetic: a VALUE record
takes 54 bytes as written, so full records hold 3.2 days of 15-minute data for 64 items per MiB;
folded into history a value takes about 2.5 bytes (68 days per MiB), and the 4 MiB partition keeps
about 194 days (measured by bench/bench_store.py --long). Raw READINGs expire first.

On flash (directory `root`)
---------------------------
    sNN.seg  main ring: every record except the raw kinds; what destinations read
    rNN.seg  raw ring: READINGs (the `raw_kinds`), a short fixed ring that expires by age
    hNN.seg  history: delivered VALUEs folded into runs, other main records copied as they were
    c-NAME   a destination's cursor, "seq crc32\\n", written to c-NAME.new and renamed over c-NAME

A record is  A5 | len u16 | seq u32 | CBOR payload | crc32 u32  (little-endian; the CRC covers len,
seq and payload). Sequence numbers are shared by all rings and only grow. A history run is the record
    [16, start, code, statType, step, exponent, inputType, scope, deltas, invalid]
holding the VALUEs of one item for consecutive periods start, start+step, ...: `deltas` is a byte
string of LEB128 zigzag differences between consecutive mantissas (the first from 0), `invalid` the
offsets of values sent as invalid; its framing seq is the seq of its last value.

Space
-----
`segments` files of `segment_bytes` form one pool shared by the main ring and history (the raw ring
has its own `raw_segments`). The main ring keeps its newest `main_keep` segments; once `fold`
further segments are acknowledged by every destination they are folded into history in a single
littlefs commit and their files released. While a destination is behind, the main ring grows by
taking history's oldest segment (delivered data goes first); only when history is down to one
segment is an unacknowledged segment dropped from the send queue: its values are folded into
history, a "loss" event names the seq and time range and the destinations that missed it, and
`alarms["loss"]` is set. ENOSPC from littlefs frees the oldest history, raw, then main segment and
retries; appends and flushes never raise OSError to the poller (records wait in RAM, bounded by
`max_pending` bytes, and the event names what was shed).

Durability window: appends are buffered in RAM and written with one flush (one littlefs sync per
ring) at most every `flush_records` records or `flush_ms` milliseconds, whichever comes first; only
records up to `durable_seq` are stored. littlefs copies the partly filled last block of a file on
every append after a sync, so each flush costs about half a block besides its data: see
docs/STORE.md for the measured trade-off.
"""

import os
import struct
from binascii import crc32

from nengjian.core import records, timeutil
from nengjian.core.compat import ticks_add, ticks_diff, ticks_ms
from nengjian.store import cbor

MAGIC = 0xA5
HEAD = 7
TAIL = 4
MAX_PAYLOAD = 1024
HISTORY = 16
ENOSPC = 28
RUN_MAX_BYTES = 480  # deltas per run record, so a run always fits MAX_PAYLOAD

_V = records.VALUE


class StoreError(Exception):
    pass


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else -1


def _when(ts):
    return timeutil.cst_text(ts) if ts else "?"


class _Seg:
    __slots__ = ("index", "first", "last", "size", "count", "t0", "t1")

    def __init__(self, index):
        self.index = index
        self.reset()

    def reset(self):
        self.first = 0  # 0 = empty
        self.last = 0
        self.size = 0
        self.count = 0
        self.t0 = 0  # time (record field 1) of the first and last records, 0 if unknown
        self.t1 = 0


class _Ring:
    def __init__(self, root, prefix, seg_bytes, ordered=True):
        self.root = root
        self.prefix = prefix
        self.seg_bytes = seg_bytes
        self.ordered = ordered  # seqs grow within a file (not so in history)
        self.segs = {}
        self.cur = None
        self.f = None
        self.pend = bytearray()
        self.pend_n = 0
        self.pend_first = 0
        self.hints = {}  # dest -> (segment index, offset, seq) where its next read starts
        self.dirty = False  # a write failed: the current segment is rescanned before the next
        self.rx = bytearray(HEAD + MAX_PAYLOAD + TAIL)
        self.rxv = memoryview(self.rx)

    def path(self, i):
        return "%s/%s%02d.seg" % (self.root, self.prefix, i)

    def live(self):
        return sorted((s for s in self.segs.values() if s.first),
                      key=(lambda s: s.first) if self.ordered else (lambda s: s.last))

    def oldest(self, but=None):
        for s in self.live():
            if s is not but:
                return s
        return None

    def newest(self):
        best = None
        for s in self.segs.values():
            if best is None or s.last > best.last:
                best = s
        return best

    def top(self):
        return max([s.last for s in self.segs.values()] + [0])

    def note(self, seg, seq, total, ts):
        if not seg.first or seq < seg.first:
            seg.first = seq
        if seq > seg.last:
            seg.last = seq
        seg.size += total
        seg.count += 1
        if ts:
            if not seg.t0:
                seg.t0 = ts
            seg.t1 = ts

    def open_append(self):
        self.f = open(self.path(self.cur.index), "ab")

    def close_file(self):
        f = self.f
        self.f = None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def blank(self, seg):
        """Make seg an empty, committed file (truncating an old one)."""
        for d in list(self.hints):
            if self.hints[d][0] == seg.index:
                del self.hints[d]
        open(self.path(seg.index), "wb").close()
        seg.reset()
        self.segs[seg.index] = seg
        return seg

    def new_seg(self):
        for s in self.segs.values():
            if not s.first and s is not self.cur:
                return s
        i = 0
        while i in self.segs:
            i += 1
        return self.blank(_Seg(i))

    def remove(self, seg):
        for d in list(self.hints):
            if self.hints[d][0] == seg.index:
                del self.hints[d]
        os.remove(self.path(seg.index))
        del self.segs[seg.index]

    def pend_bytes(self):
        return len(self.pend)

    def recount(self):
        """pend_n and pend_first from the pending buffer."""
        p = self.pend
        pos = 0
        n = 0
        first = 0
        while pos < len(p):
            if not n:
                first = struct.unpack_from("<I", p, pos + 3)[0]
            n += 1
            pos += HEAD + (p[pos + 1] | (p[pos + 2] << 8)) + TAIL
        self.pend_n = n
        self.pend_first = first


def _ts_of(rx):
    """Field 1 of a record whose payload is in rx[HEAD:], when it is a 4-byte time; else 0."""
    if 0x82 <= rx[HEAD] <= 0x97 and rx[HEAD + 2] == 0x1A:
        return struct.unpack_from(">I", rx, HEAD + 3)[0]
    return 0


def _varint(out, z):
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def unvarints(b):
    """The signed differences of a history run, decoded (for history() and tests)."""
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


class Store:
    def __init__(self, root, destinations, segment_bytes=65536, segments=48,
                 flush_records=16, flush_ms=5000, on_event=None, raw_segments=8,
                 raw_segment_bytes=0, raw_kinds=(records.READING,), main_keep=2, fold=4,
                 max_pending=16384):
        self.root = root
        self.destinations = list(destinations)
        self.segment_bytes = segment_bytes
        self.segment_count = segments
        self.flush_records = flush_records
        self.flush_ms = flush_ms
        self._on_event = on_event
        self.raw_kinds = tuple(raw_kinds) if raw_segments else ()
        self.raw_count = raw_segments
        self.main_keep = max(1, main_keep)
        self.fold_n = max(2, fold)
        self.max_pending = max_pending
        self._main = _Ring(root, "s", segment_bytes)
        self._raw = _Ring(root, "r", raw_segment_bytes or max(512, segment_bytes // 2))
        self._hist = _Ring(root, "h", segment_bytes, ordered=False)
        self._rings = (self._main, self._raw, self._hist)
        self._pending_count = 0
        self._pending_since = 0
        self._next_seq = 1
        self.durable_seq = 0  # every record <= this is on flash
        self._hist_upto = 0  # every main record <= this has been folded into history
        self._cursors = {}
        self._busy = False  # inside flush/fold: events wait in _deferred, appends do not flush
        self._deferred = []
        self._retry_at = None
        self._backoff = 0
        self._hdr = bytearray(HEAD)
        self._crc = bytearray(TAIL)
        self._runbuf = bytearray()
        self.alarms = {}
        self.open_events = []  # (kind, text) raised by open(), for a ledger that did not exist yet
        self.stats = {"appended": 0, "flushes": 0, "bytes": 0, "dropped": 0, "recovered_cut": 0,
                      "skipped_bytes": 0, "lost": 0, "loss_events": 0, "expired_raw": 0, "folds": 0,
                      "history_values": 0, "history_expired": 0, "write_errors": 0, "read_errors": 0, "enospc": 0, "shed": 0}

    # ---- events
    @property
    def on_event(self):
        return self._on_event

    @on_event.setter
    def on_event(self, fn):
        """The ledger: fn(kind, text) for what the store has to report (kinds "store" and "loss")."""
        self._on_event = fn

    def _event(self, kind, text):
        if self._busy:
            self._deferred.append((kind, text))
            return
        if self._opening:
            self.open_events.append((kind, text))
        if self._on_event:
            try:
                self._on_event(kind, text)
            except Exception:  # a ledger that fails must not take the store down
                pass

    _opening = False

    def _emit_deferred(self):
        while self._deferred and not self._busy:
            kind, text = self._deferred.pop(0)
            self._event(kind, text)

    # ---- boot
    def open(self):
        """Scan the volume, cut torn tails, load cursors. Safe on an empty or missing directory."""
        self._opening = True
        try:
            self._open()
        finally:
            self._opening = False

    def _open(self):
        try:
            os.mkdir(self.root)
        except OSError:
            pass
        by_prefix = {r.prefix: r for r in self._rings}
        for name in sorted(os.listdir(self.root)):
            if name.endswith(".tmp") or name.endswith(".new"):
                os.remove(self.root + "/" + name)  # never renamed: the write did not complete
                continue
            ring = by_prefix.get(name[:1])
            if ring is None or not name.endswith(".seg") or len(name) < 6:
                continue
            try:
                i = int(name[1:-4])
            except ValueError:
                continue
            seg = _Seg(i)
            ring.segs[i] = seg
            self._scan(ring, seg)
        self._hist_upto = self._hist.top()
        self._hist.cur = self._hist.newest()  # the next fold goes on where the last one ended
        saved = {}
        for dest in self.destinations:
            saved[dest] = self._load_cursor(dest)
        top = max(self._main.top(), self._raw.top(), self._hist_upto)
        floor = max([top] + [c for c in saved.values() if c is not None])
        self._next_seq = floor + 1
        self.durable_seq = floor
        oldest = self._oldest_seq()
        for dest in self.destinations:
            c = saved[dest]
            if c is None:
                c = oldest - 1
            elif c > top:
                self._event("store", "cursor of %s (%d) past the newest record (%d): clamped" % (dest, c, top))
                c = top
            self._cursors[dest] = c
        self._fit_volume()
        for ring in (self._main, self._raw):
            if ring is self._raw and not self.raw_count:
                continue
            try:
                self._ready(ring)
            except OSError as e:  # the first flush tries again
                self.alarms["flash"] = "cannot open a segment (errno %d)" % _errno(e)

    def _fit_volume(self):
        """Size the rings to the volume, in littlefs blocks."""
        try:
            st = os.statvfs(self.root)
        except (OSError, AttributeError):
            return
        bs, blocks = st[0], st[2]
        if not bs or not blocks or blocks * bs > 1 << 34:
            return  # a host file system: nothing to fit
        # littlefs keeps a skip list in each data block (4-8 bytes on average): a file of exactly
        # 16 blocks of data would spill into a 17th. Rotating a little early keeps whole blocks.
        for ring in self._rings:
            if ring.seg_bytes >= bs:
                ring.seg_bytes -= 8 * (ring.seg_bytes // bs)
        per = (self._main.seg_bytes + bs - 1) // bs
        raw = self.raw_count * ((self._raw.seg_bytes + bs - 1) // bs) if self.raw_count else 0
        # Kept free for littlefs: superblock and directory pairs, copy-on-write of the blocks being
        # appended to, and one fold's output on top of a full history segment; and one segment more
        # than the pool while a fold is under way.
        reserve = 16 + blocks // 32
        fit = (blocks - raw - reserve) // per - 1
        if fit < self.segment_count:
            want = self.segment_count
            self.segment_count = max(self.main_keep + self.fold_n + 1, fit)
            self._event("store", "%d segments of %d bytes do not fit a %d-byte volume: using %d"
                        % (want, self.segment_bytes, blocks * bs, self.segment_count))

    def _scan(self, ring, seg):
        path = ring.path(seg.index)
        good_end = 0
        skipped = 0
        with open(path, "rb") as f:
            end = f.seek(0, 2)
            pos = 0
            prev = 0
            while pos < end:
                seq, n = self._read_at(f, pos, end, ring)
                if seq and (seq > prev or not ring.ordered):
                    ring.note(seg, seq, n, _ts_of(ring.rx))
                    if ring.ordered:
                        prev = seq
                    pos += n
                    good_end = pos
                    continue
                nxt = self._resync(f, pos + 1, end, prev, ring)
                if nxt < 0:
                    break
                self._event("store", "segment %s: skipped %d damaged bytes after record %d"
                            % (path[len(self.root) + 1:], nxt - pos, prev or seg.last))
                skipped += nxt - pos
                pos = nxt
        self.stats["skipped_bytes"] += skipped
        if good_end < end:
            self.stats["recovered_cut"] += end - good_end
            self._rewrite_prefix(path, good_end)
            self._event("store", "segment %s: cut %d damaged tail bytes after record %d"
                        % (path[len(self.root) + 1:], end - good_end, seg.last))
        seg.size = good_end

    def _read_at(self, f, pos, end, ring):
        """(seq, total length) of a whole record at pos, now in ring.rx; or (0, 0)."""
        if pos + HEAD + TAIL > end:
            return 0, 0
        f.seek(pos)
        rx = ring.rx
        if f.readinto(ring.rxv[:HEAD]) != HEAD or rx[0] != MAGIC:
            return 0, 0
        length = rx[1] | (rx[2] << 8)
        if length > MAX_PAYLOAD or pos + HEAD + length + TAIL > end:
            return 0, 0
        if f.readinto(ring.rxv[HEAD:HEAD + length + TAIL]) != length + TAIL:
            return 0, 0
        if crc32(ring.rxv[1:HEAD + length]) != struct.unpack_from("<I", rx, HEAD + length)[0]:
            return 0, 0
        return struct.unpack_from("<I", rx, 3)[0], HEAD + length + TAIL

    def _resync(self, f, pos, end, prev, ring):
        """Offset of the next whole record after damage (with a seq above prev in ordered rings), or -1."""
        while pos < end:
            f.seek(pos)
            b = f.read(min(512, end - pos))
            i = b.find(b"\xa5")
            if i < 0:
                pos += len(b)
                continue
            seq, n = self._read_at(f, pos + i, end, ring)
            if seq and (seq > prev or not ring.ordered):
                return pos + i
            pos += i + 1
        return -1

    def _rewrite_prefix(self, path, length):
        tmp = path + ".tmp"
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            left = length
            while left:
                chunk = src.read(min(512, left))
                dst.write(chunk)
                left -= len(chunk)
        os.rename(tmp, path)

    def _load_cursor(self, dest):
        """The saved cursor, or None when there is none (new destination) or it is damaged."""
        try:
            with open("%s/c-%s" % (self.root, dest)) as f:
                text = f.read()
        except OSError:
            return None
        try:
            seq_text, crc_text = text.split()
            seq = int(seq_text)
            if crc32(seq_text.encode()) != int(crc_text) or seq < 0:
                raise ValueError("crc")
        except (ValueError, IndexError):
            self._event("store", "cursor of %s damaged: resending from the oldest record" % dest)
            return None
        return seq

    def _oldest_seq(self):
        s = self._main.oldest()
        return s.first if s else self._next_seq

    # ---- writing
    @property
    def last_seq(self):
        return self._next_seq - 1

    def append(self, record):
        """Queue a record (a list whose first item is its kind); returns its sequence number.

        The record is durable only after the next flush (see durable_seq). Never raises OSError.
        """
        ring = self._raw if record[0] in self.raw_kinds else self._main
        seq = self._next_seq
        p = ring.pend
        start = len(p)
        try:
            p.extend(self._hdr)
            cbor.encode_into(p, record)
            length = len(p) - start - HEAD
            if length > MAX_PAYLOAD:
                p[start:] = b""
                record = self._shorten(record, length - MAX_PAYLOAD)
                p.extend(self._hdr)
                cbor.encode_into(p, record)
                length = len(p) - start - HEAD
                if length > MAX_PAYLOAD:
                    raise StoreError("record of %d bytes exceeds %d" % (length, MAX_PAYLOAD))
        except Exception:
            p[start:] = b""  # a record that cannot be stored leaves nothing half-framed behind
            raise
        struct.pack_into("<BHI", p, start, MAGIC, length, seq)
        struct.pack_into("<I", self._crc, 0, crc32(memoryview(p)[start + 1:]))
        p.extend(self._crc)
        self._next_seq = seq + 1
        if not ring.pend_n:
            ring.pend_first = seq
        ring.pend_n += 1
        if not self._pending_count:
            self._pending_since = ticks_ms()
        self._pending_count += 1
        self.stats["appended"] += 1
        if self._main.pend_bytes() + self._raw.pend_bytes() > self.max_pending:
            self._shed()
        if self._pending_count >= self.flush_records and not self._busy and not self._waiting():
            self.flush()
        return seq

    def _shorten(self, record, over):
        """The record with its longest text cut so that it fits MAX_PAYLOAD (an over-long event)."""
        rec = list(record)
        best = -1
        for i, v in enumerate(rec):
            if isinstance(v, str) and (best < 0 or len(v) > len(rec[best])):
                best = i
        if best < 0 or len(rec[best].encode()) < over + 8:
            raise StoreError("record of %d bytes exceeds %d" % (over + MAX_PAYLOAD, MAX_PAYLOAD))
        b = rec[best].encode()[:len(rec[best].encode()) - over - 8]
        while b:
            try:
                rec[best] = b.decode() + " [cut]"
                break
            except UnicodeError:
                b = b[:-1]
        return rec

    def _shed(self):
        """RAM for unwritten records is bounded: drop the oldest (raw readings first) down to a quarter
        of the bound, so that a flash that stays dead costs one loss event per few hundred records."""
        excess = self._main.pend_bytes() + self._raw.pend_bytes() - self.max_pending // 4
        for ring in (self._raw, self._main):
            p = ring.pend
            cut = 0
            lo = hi = 0
            while excess > 0 and cut < len(p):
                seq = struct.unpack_from("<I", p, cut + 3)[0]
                lo = lo or seq
                hi = seq
                n = HEAD + (p[cut + 1] | (p[cut + 2] << 8)) + TAIL
                cut += n
                excess -= n
            if cut:
                was = ring.pend_n
                p[:cut] = b""
                ring.recount()
                dropped = was - ring.pend_n
                self._pending_count -= dropped
                self.stats["shed"] += dropped
                self.stats["lost"] += dropped
                self._loss("flash not writable: %d %s records between %d and %d dropped from RAM before they were stored"
                           % (dropped, "raw" if ring is self._raw else "main", lo, hi))

    def _loss(self, text):
        self.stats["loss_events"] += 1
        self.alarms["loss"] = text
        self._event("loss", text)

    def _waiting(self):
        return self._retry_at is not None and ticks_diff(self._retry_at, ticks_ms()) > 0

    def flush_due(self):
        if not self._pending_count or self._waiting():
            return False
        return ticks_diff(ticks_ms(), self._pending_since) >= self.flush_ms

    def flush(self):
        """Write queued records and sync; after this they survive a power cut. Never raises OSError:
        a failed write keeps the records in RAM and is retried (with a back-off) by the next flush."""
        if self._busy or not self._pending_count:
            return
        self._busy = True
        failed = None
        try:
            for _attempt in range(6):
                try:
                    for ring in (self._main, self._raw):
                        if ring.pend_n:
                            self._flush_ring(ring)
                    failed = None
                    break
                except OSError as e:
                    failed = e
                    self._after_error()
                    if _errno(e) != ENOSPC:
                        break
                    self.stats["enospc"] += 1
                    if not self._make_room():
                        break
        finally:
            self._busy = False
        self._pending_count = self._main.pend_n + self._raw.pend_n
        if self._pending_count:
            self._pending_since = ticks_ms()
        if failed is None:
            # Records shed from RAM while the flash failed lie below this too: announced as lost.
            firsts = [r.pend_first for r in (self._main, self._raw) if r.pend_n]
            self.durable_seq = (min(firsts) if firsts else self._next_seq) - 1
            self.stats["flushes"] += 1
            if self._retry_at is not None:
                self._retry_at = None
                self._backoff = 0
                self.alarms.pop("flash", None)
                self._deferred.append(("store", "flash writable again"))
        else:
            self.stats["write_errors"] += 1
            self._backoff = min(60000, max(1000, self._backoff * 2))
            self._retry_at = ticks_add(ticks_ms(), self._backoff)
            if "flash" not in self.alarms:
                self.alarms["flash"] = "write failed (errno %d)" % _errno(failed)
                self._deferred.append(("store", "flash write failed (errno %d): %d records held in RAM, retrying"
                                       % (_errno(failed), self._pending_count)))
        self._emit_deferred()

    def _ready(self, ring):
        """The ring has a current segment open for appending (after a failed write: one whose size
        and records are what is committed on flash)."""
        if ring.dirty:
            self._recheck(ring)
        if ring.f is None:
            if ring.cur is None:
                ring.cur = ring.newest() or ring.new_seg()
            ring.open_append()

    def _recheck(self, ring):
        seg = ring.cur
        if seg is not None and seg.index in ring.segs:
            seg.reset()
            self._scan(ring, seg)
        ring.dirty = False
        # Whatever a failed sync did commit is on flash now: never write it twice.
        top = ring.top()
        p = ring.pend
        cut = 0
        while cut < len(p) and struct.unpack_from("<I", p, cut + 3)[0] <= top:
            cut += HEAD + (p[cut + 1] | (p[cut + 2] << 8)) + TAIL
        if cut:
            p[:cut] = b""
            ring.recount()

    def _flush_ring(self, ring):
        self._ready(ring)
        p = ring.pend
        mv = memoryview(p)
        pos = 0
        done = 0
        end = len(p)
        try:
            while pos < end:
                total = HEAD + (p[pos + 1] | (p[pos + 2] << 8)) + TAIL
                seq = struct.unpack_from("<I", p, pos + 3)[0]
                if ring.cur.size and ring.cur.size + total > ring.seg_bytes:
                    ring.f.flush()
                    done = pos
                    self._rotate(ring)
                ring.f.write(mv[pos:pos + total])
                ring.note(ring.cur, seq, total, _ts_of(mv[pos:pos + total]) if total >= HEAD + 7 + TAIL else 0)
                self.stats["bytes"] += total
                pos += total
            ring.f.flush()
            done = pos
        finally:
            mv = None
            if done:
                p[:done] = b""
                ring.recount()

    def _after_error(self):
        """After a failed write: close the rings' files; believe only what is committed on flash."""
        for ring in self._rings:
            ring.close_file()
            ring.dirty = True
        try:
            self._recheck(self._hist)
        except OSError:
            pass

    def _make_room(self):
        """littlefs is out of space: free the oldest history, raw, then main segment. False if none."""
        try:
            return self._free_one()
        except OSError:
            return False

    def _free_one(self):
        h = self._hist.oldest()
        if h is not None:
            self._expire_history(h, "the volume is full")
            self._hist.remove(h)
            if self._hist.cur is h:
                self._hist.cur = None
            return True
        r = self._raw.oldest(but=self._raw.cur)
        if r is not None:
            self.stats["expired_raw"] += r.count
            self._raw.remove(r)
            return True
        m = self._main.oldest(but=self._main.cur)
        if m is not None:
            self._drop_main(m, "the volume is full", fold=False)
            self._main.remove(m)
            return True
        return False

    # ---- rotation and the space policy
    _credit = 0  # main segments a fold under way is about to free
    _fold_out = 0  # bytes the last fold wrote to history

    def _free_slots(self):
        return self.segment_count + self._credit - len(self._main.segs) - len(self._hist.segs)

    def _rotate(self, ring):
        ring.close_file()
        if ring is self._raw:
            if len(ring.segs) < self.raw_count:
                seg = ring.new_seg()
            else:
                seg = ring.oldest(but=ring.cur) or ring.new_seg()
                self.stats["expired_raw"] += seg.count
                ring.blank(seg)
        else:
            seg = self._main_next()
        ring.cur = seg
        ring.open_append()

    def _main_next(self):
        m = self._main
        acked = self.min_cursor()
        live = [s for s in m.live() if s is not m.cur]
        unit = live[:self.fold_n]
        if unit and len(live) + 1 >= self.main_keep + self.fold_n and unit[-1].last <= acked:
            return self._release(unit)
        if self._free_slots() > 0:
            return m.new_seg()
        if len(self._hist.segs) > 1:
            h = self._hist.oldest()
            if h is not None:
                self._expire_history(h, "history is full" if live and live[0].last <= acked
                                     else "undelivered records need the room")
                self._hist.remove(h)
                return m.new_seg()
        old = live[0] if live else m.cur
        if old.last > acked:
            self._drop_main(old, "the store is full")
        else:
            self._fold([old])
        return m.blank(old)

    def _release(self, unit):
        """Fold acknowledged segments into history, then free all but the first for reuse."""
        self._credit = len(unit) - 1
        try:
            self._fold(unit)
        finally:
            self._credit = 0
        for s in unit[1:]:
            self._main.remove(s)
        return self._main.blank(unit[0])

    def _drop_main(self, seg, why, fold=True):
        """seg leaves the main ring, maybe with records some destination has not acknowledged:
        say exactly which (seq and time range) and raise the alarm."""
        lo = max(seg.first, self.min_cursor() + 1, self._hist_upto + 1)
        behind = [d for d in self.destinations if self._cursors[d] < seg.last]
        t0 = self._fold([seg], lo) if fold else 0
        if lo <= seg.last:
            self.stats["lost"] += seg.last - lo + 1
            self.stats["dropped"] += seg.last - lo + 1
            self._loss("%s: records %d..%d (%s .. %s CST) dropped before %s acknowledged them; %s"
                       % (why, lo, seg.last, _when(t0 or seg.t0), _when(seg.t1), ", ".join(behind) or "every destination",
                          "their values are kept in history" if fold else "they are lost"))

    def _expire_history(self, seg, why):
        self.stats["history_expired"] += seg.count
        self._event("store", "history from %s to %s CST (%d records) expired: %s"
                    % (_when(seg.t0), _when(seg.t1), seg.count, why))

    def _hist_next(self):
        h = self._hist
        seg = h.oldest()
        if self._free_slots() > 0 or seg is None:
            return h.new_seg()
        self._expire_history(seg, "history is full")
        return h.blank(seg)

    def _fold(self, unit, mark=0):
        """Append the records of main segments `unit` (oldest first) to history in one littlefs commit:
        VALUEs as runs, every other record as it was. Returns the time of the first record >= mark."""
        h = self._hist
        m = self._main
        if h.dirty:
            self._recheck(h)
        # A fold is one commit, so it cannot be split across history segments: start a new one when
        # this fold is not expected to fit (about as much as the last fold wrote, and some).
        est = self._fold_out * 5 // 4 if self._fold_out else sum(s.size for s in unit) // 16
        if h.cur is None or h.cur.size + est > h.seg_bytes:
            h.close_file()
            h.cur = self._hist_next()
        before = h.cur.size
        h.f = open(h.path(h.cur.index), "ab")
        runs = {}
        upto = self._hist_upto
        top = upto
        t_mark = 0
        values = 0
        try:
            for seg in unit:
                it = self._iter(m, upto + 1, None, [seg])
                try:
                    for seq, n in it:
                        if mark and seq >= mark and not t_mark:
                            t_mark = _ts_of(m.rx)
                        top = seq
                        if m.rx[HEAD + 1] == _V and self._fold_value(runs, seq, n):
                            values += 1
                            continue
                        h.f.write(m.rxv[:n])
                        h.note(h.cur, seq, n, _ts_of(m.rx))
                finally:
                    it.close()
            for key in list(runs):
                self._write_run(key, runs.pop(key))
            h.f.flush()
        finally:
            h.close_file()
        self._fold_out = h.cur.size - before
        self._hist_upto = max(top, h.top())
        self.stats["folds"] += 1
        self.stats["history_values"] += values
        return t_mark

    def _fold_value(self, runs, seq, n):
        try:
            v = cbor.decode(self._main.rxv, HEAD, n - TAIL)
            code = v[records.V_CODE]
            start = v[records.V_STAT_START]
            d = v[records.V_VALUE]
            key = (code, v[records.V_STAT_TYPE], d.exponent, v[records.V_INPUT], v[records.V_SCOPE])
            valid = v[records.V_VALID]
            mant = d.mantissa
            if not isinstance(start, int) or not isinstance(mant, int) or not isinstance(code, str):
                return False
        except (cbor.CBORError, IndexError, AttributeError, TypeError):
            return False
        # run: [start, step, last start, deltas, last mantissa, invalid offsets, count, last seq]
        r = runs.get(key)
        if r is not None:
            step = r[1] or (start - r[2])
            if step <= 0 or start != r[2] + step or len(r[3]) > RUN_MAX_BYTES:
                self._write_run(key, runs.pop(key))
                r = None
            else:
                r[1] = step
        if r is None:
            r = [start, 0, start, bytearray(), 0, [], 0, seq]
            runs[key] = r
        dv = mant - r[4]
        _varint(r[3], dv << 1 if dv >= 0 else ((-dv) << 1) - 1)
        if not valid:
            r[5].append(r[6])
        r[2] = start
        r[4] = mant
        r[6] += 1
        r[7] = seq
        return True

    def _write_run(self, key, r):
        h = self._hist
        b = self._runbuf
        b[:] = b""
        b.extend(self._hdr)
        cbor.encode_into(b, [HISTORY, r[0], key[0], key[1], r[1], key[2], key[3], key[4], bytes(r[3]), r[5]])
        length = len(b) - HEAD
        struct.pack_into("<BHI", b, 0, MAGIC, length, r[7])
        struct.pack_into("<I", self._crc, 0, crc32(memoryview(b)[1:]))
        b.extend(self._crc)
        h.f.write(b)
        h.note(h.cur, r[7], len(b), r[0])

    # ---- reading and acknowledging
    def min_cursor(self):
        if not self._cursors:
            return self.last_seq
        return min(self._cursors.values())

    def cursor(self, dest):
        return self._cursors[dest]

    def backlog(self, dest):
        """Records (of any kind) after the destination's cursor."""
        return max(0, self.durable_seq - max(self._cursors[dest], self._oldest_seq() - 1))

    def ack(self, dest, seq):
        """Move dest's cursor to seq (never backwards) and persist it atomically.

        Returns True once the cursor is on flash; False if writing it failed (the cursor still moves
        in RAM, and a later ack writes it: the platform may then see a batch again after a reboot).
        """
        if seq <= self._cursors[dest]:
            return True
        if seq > self.durable_seq:
            raise StoreError("ack of %d beyond stored %d" % (seq, self.durable_seq))
        self._cursors[dest] = seq
        path = "%s/c-%s" % (self.root, dest)
        text = str(seq)
        try:
            with open(path + ".new", "w") as f:
                f.write("%s %d\n" % (text, crc32(text.encode())))
            os.rename(path + ".new", path)
        except OSError as e:
            self.stats["write_errors"] += 1
            self._event("store", "cursor of %s not saved (errno %d)" % (dest, _errno(e)))
            return False
        return True

    def _rings_for(self, kinds):
        if not self.raw_kinds:
            return (self._main,)
        if kinds is None:
            return (self._main, self._raw)
        raw = [k in self.raw_kinds for k in kinds]
        if all(raw):
            return (self._raw,)
        if any(raw):
            return (self._main, self._raw)
        return (self._main,)

    def read(self, dest, limit, kinds=None, max_bytes=0):
        """Up to `limit` durable records after dest's cursor whose kind is in `kinds`.

        Returns (records, last_seq_scanned): acknowledging last_seq_scanned also passes over the
        records of other kinds that lay between. Each record is (seq, decoded list).
        """
        after = self._cursors[dest]
        out = []
        last = after
        nbytes = 0
        stop = self.durable_seq
        rings = self._rings_for(kinds)
        gens = [self._iter(r, after + 1, dest) for r in rings]
        complete = True
        self._busy = True  # an event raised here must not rotate a segment under the walk
        try:
            for seq, ring, n in self._merge(rings, gens):
                if seq > stop:
                    break
                last = seq
                if kinds is not None and ring.rx[HEAD + 1] not in kinds:
                    continue
                try:
                    out.append((seq, cbor.decode(ring.rxv, HEAD, n - TAIL)))
                except cbor.CBORError:
                    self._event("store", "record %d undecodable: skipped" % seq)
                    continue
                nbytes += n - HEAD - TAIL
                if len(out) >= limit or (max_bytes and nbytes >= max_bytes):
                    complete = False
                    break
        except OSError as e:
            complete = False
            self._read_failed(e)
        finally:
            self._busy = False
            for g in gens:
                g.close()
        self._emit_deferred()
        if complete:
            # Every durable record after the cursor was looked at: the rings not read hold no
            # record of the wanted kinds.
            last = max(last, stop)
        return out, last

    def scan(self, from_seq, visit):
        """Call visit(seq, record) for each whole durable record (main and raw rings) from from_seq on,
        oldest first, until it returns True (recovery at boot, export)."""
        self.flush()
        rings = (self._main, self._raw) if self.raw_kinds else (self._main,)
        gens = [self._iter(r, from_seq, None) for r in rings]
        self._busy = True  # a visitor's appends must not rotate a segment under the walk
        try:
            for seq, ring, n in self._merge(rings, gens):
                if seq > self.durable_seq:
                    break
                try:
                    rec = cbor.decode(ring.rxv, HEAD, n - TAIL)
                except cbor.CBORError:
                    continue
                if visit(seq, rec):
                    break
        except OSError as e:
            self._read_failed(e)
        finally:
            self._busy = False
            for g in gens:
                g.close()
        self._emit_deferred()

    def _read_failed(self, e):
        self.stats["read_errors"] += 1
        if "read" not in self.alarms:
            self.alarms["read"] = "read failed (errno %d)" % _errno(e)
            self._deferred.append(("store", "flash read failed (errno %d)" % _errno(e)))

    def history(self, visit):
        """Call visit(seq, record) for everything in history, in the order written: folded VALUEs come
        back as VALUE lists (with time None and seq None); other records as they were."""
        h = self._hist
        for seg in h.live():
            it = self._iter(h, 0, None, [seg])
            try:
                for seq, n in it:
                    try:
                        rec = cbor.decode(h.rxv, HEAD, n - TAIL)
                    except cbor.CBORError:
                        continue
                    if rec[0] != HISTORY:
                        visit(seq, rec)
                        continue
                    m = 0
                    for i, dv in enumerate(unvarints(rec[8])):
                        m += dv
                        visit(None, [_V, None, rec[2], rec[3], rec[1] + i * rec[4], cbor.Decimal(m, rec[5]),
                                     i not in rec[9], rec[6], rec[7]])
            finally:
                it.close()

    def _merge(self, rings, gens):
        """(seq, ring, length) from several rings' walks, in seq order."""
        heads = [self._next(g) for g in gens]
        while True:
            best = -1
            for i, hd in enumerate(heads):
                if hd is not None and (best < 0 or hd[0] < heads[best][0]):
                    best = i
            if best < 0:
                return
            seq, n = heads[best]
            yield seq, rings[best], n
            heads[best] = self._next(gens[best])

    def _next(self, g):
        try:
            return next(g)
        except StopIteration:
            return None

    def _iter(self, ring, seq, dest=None, segs=None):
        """Yield (seq, length) of whole records from seq on (the record itself in ring.rx); the file
        is closed when the walk ends or is closed."""
        hint = ring.hints.get(dest) if dest else None
        for seg in segs or ring.live():
            if seg.last < seq and ring.ordered:
                continue
            pos = 0
            if hint and hint[0] == seg.index and hint[2] <= seq:
                pos = hint[1]
            f = open(ring.path(seg.index), "rb")
            try:
                end = seg.size
                while pos < end:
                    rseq, n = self._read_at(f, pos, end, ring)
                    if not rseq:
                        pos = self._resync(f, pos + 1, end, 0, ring)
                        if pos < 0:
                            break
                        continue
                    if rseq >= seq:
                        if dest:
                            ring.hints[dest] = (seg.index, pos, rseq)
                        yield rseq, n
                    pos += n
            finally:
                f.close()

    def close(self):
        self.flush()
        for ring in self._rings:
            ring.close_file()
