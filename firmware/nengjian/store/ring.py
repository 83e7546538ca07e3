"""Segment rings: the record framing and the segment files of one ring.

Owns: how a record is framed and checked, the segment files of a ring (PNN.seg, P the ring's prefix)
and what is known of each (seq and time range, size, count), the RAM buffer of records not yet
written and writing it, rotating to the next segment when one is full, walking the whole records
from a seq on, and the scan at boot and after a failed write that skips damaged records and cuts a
torn tail. Which segment a full ring goes on in, and what gives way for it, is the space policy's
(nengjian.store.store): a ring calls its `next_seg`.

A record is

    A5 | len u16 | seq u32 | CBOR payload (len bytes) | crc32 u32

little-endian; the CRC covers len, seq and payload. The payload is a CBOR array whose first item is
the record's kind (nengjian.core.records). In an ordered ring (main, raw) seqs grow within a file;
history holds them in fold order.
"""

import os
import struct
from binascii import crc32

from nengjian.core.compat import unload
from nengjian.store import cbor

MAGIC = 0xA5
HEAD = 7
TAIL = 4
MAX_PAYLOAD = 1024

# Scratch for framing, shared by every ring: a frame is built and written within one call.
_hdr = bytearray(HEAD)
_crc = bytearray(TAIL)


class StoreError(Exception):
    pass


def ts_of(rx):
    """Field 1 of a record whose payload is in rx[HEAD:], when it is a 4-byte time; else 0."""
    if 0x82 <= rx[HEAD] <= 0x97 and rx[HEAD + 2] == 0x1A:
        return struct.unpack_from(">I", rx, HEAD + 3)[0]
    return 0


def frame(buf, record, seq):
    """Append `record` to buf, framed with seq; returns the framed length. For records built to fit
    (history runs; appends go through Ring.put): one over MAX_PAYLOAD, which no reader would accept,
    is not shortened but refused with StoreError, buf as it was."""
    start = len(buf)
    buf.extend(_hdr)
    cbor.encode_into(buf, record)
    length = len(buf) - start - HEAD
    if length > MAX_PAYLOAD:
        buf[start:] = b""
        raise StoreError("record of %d bytes exceeds %d" % (length, MAX_PAYLOAD))
    struct.pack_into("<BHI", buf, start, MAGIC, length, seq)
    struct.pack_into("<I", _crc, 0, crc32(memoryview(buf)[start + 1:]))
    buf.extend(_crc)
    return HEAD + length + TAIL


def cold(fn, *args):
    """nengjian.store.cold's function fn called with args: the store's code for boot, an operator's
    request and rare repairs (an over-long record, a torn tail, a run too long for one record) is
    loaded for the call and dropped after, unless it was loaded already (a test that opens stores
    hundreds of times in one heap keeps it, rather than have it compiled again each time)."""
    import sys

    held = _COLD in sys.modules
    from nengjian.store import cold as mod

    try:
        return getattr(mod, fn)(*args)
    finally:
        if not held:
            unload(_COLD)


_COLD = "nengjian.store.cold"


def merge(rings, gens):
    """(seq, ring, length) from several rings' walks, in seq order."""
    heads = [_next(g) for g in gens]
    while True:
        best = -1
        for i, hd in enumerate(heads):
            if hd is not None and (best < 0 or hd[0] < heads[best][0]):
                best = i
        if best < 0:
            return
        seq, n = heads[best]
        yield seq, rings[best], n
        heads[best] = _next(gens[best])


def _next(g):
    try:
        return next(g)
    except StopIteration:
        return None


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


class Ring:
    def __init__(self, root, prefix, seg_bytes, event, stats, ordered=True):
        self.root = root
        self.prefix = prefix
        self.seg_bytes = seg_bytes
        self.ordered = ordered  # seqs grow within a file (not so in history)
        self.event = event  # fn(kind, text, code): the store's ledger
        self.stats = stats  # the store's counters
        self.next_seg = None  # fn() -> the segment to go on in when cur is full (the space policy)
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

    # ---- files
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
        self._forget(seg)
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
        self._forget(seg)
        os.remove(self.path(seg.index))
        del self.segs[seg.index]

    def _forget(self, seg):
        for d in list(self.hints):
            if self.hints[d][0] == seg.index:
                del self.hints[d]

    def rotate(self):
        self.close_file()
        self.cur = self.next_seg()  # type: ignore[misc]  # the store sets it before any write
        self.open_append()

    def ready(self):
        """A current segment is open for appending (after a failed write: one whose size and
        records are what is committed on flash)."""
        if self.dirty:
            self.recheck()
        if self.f is None:
            if self.cur is None:
                self.cur = self.newest() or self.new_seg()
            self.open_append()

    # ---- the records not yet written
    def put(self, record, seq):
        """Frame record as seq at the end of the pending buffer. An over-long record has its longest
        text cut to fit MAX_PAYLOAD; one that cannot fit raises StoreError, the buffer unchanged."""
        # frame() written out: this is append()'s hot path, and a further call costs a fifth of it
        p = self.pend
        start = len(p)
        try:
            p.extend(_hdr)
            cbor.encode_into(p, record)
            length = len(p) - start - HEAD
            if length > MAX_PAYLOAD:
                p[start:] = b""
                record = cold("shorten", record, length - MAX_PAYLOAD, MAX_PAYLOAD, StoreError)
                p.extend(_hdr)
                cbor.encode_into(p, record)
                length = len(p) - start - HEAD
                if length > MAX_PAYLOAD:
                    raise StoreError("record of %d bytes exceeds %d" % (length, MAX_PAYLOAD))
        except Exception:
            p[start:] = b""  # a record that cannot be stored leaves nothing half-framed behind
            raise
        struct.pack_into("<BHI", p, start, MAGIC, length, seq)
        struct.pack_into("<I", _crc, 0, crc32(memoryview(p)[start + 1:]))
        p.extend(_crc)
        if not self.pend_n:
            self.pend_first = seq
        self.pend_n += 1

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

    def shed(self, excess):
        """Drop the oldest pending records, whole, until `excess` bytes are gone:
        (bytes, records, first seq, last seq) dropped."""
        p = self.pend
        cut = 0
        lo = hi = 0
        while excess > cut and cut < len(p):
            seq = struct.unpack_from("<I", p, cut + 3)[0]
            lo = lo or seq
            hi = seq
            cut += HEAD + (p[cut + 1] | (p[cut + 2] << 8)) + TAIL
        was = self.pend_n
        if cut:
            p[:cut] = b""
            self.recount()
        return cut, was - self.pend_n, lo, hi

    def write_pending(self):
        """Write the pending records, rotating as segments fill, and sync. Records written before an
        OSError leave the buffer; the rest stay for the next try."""
        self.ready()
        p = self.pend
        mv = memoryview(p)
        pos = 0
        done = 0
        end = len(p)
        try:
            while pos < end:
                total = HEAD + (p[pos + 1] | (p[pos + 2] << 8)) + TAIL
                seq = struct.unpack_from("<I", p, pos + 3)[0]
                if self.cur.size and self.cur.size + total > self.seg_bytes:
                    self.f.flush()
                    done = pos
                    self.rotate()
                self.f.write(mv[pos:pos + total])
                self.note(self.cur, seq, total, ts_of(mv[pos:pos + total]) if total >= HEAD + 7 + TAIL else 0)
                self.stats["bytes"] += total
                pos += total
            self.f.flush()
            done = pos
        finally:
            mv = None
            if done:
                p[:done] = b""
                self.recount()

    def recheck(self):
        """After a failed write: rescan the current segment, and drop from the pending buffer what
        the failed sync did commit (never write it twice)."""
        seg = self.cur
        if seg is not None and seg.index in self.segs:
            seg.reset()
            self.scan(seg)
        self.dirty = False
        top = self.top()
        p = self.pend
        cut = 0
        while cut < len(p) and struct.unpack_from("<I", p, cut + 3)[0] <= top:
            cut += HEAD + (p[cut + 1] | (p[cut + 2] << 8)) + TAIL
        if cut:
            p[:cut] = b""
            self.recount()

    # ---- reading
    def scan(self, seg):
        """Learn seg from its file, record by record: skip damaged records, cut a damaged tail."""
        path = self.path(seg.index)
        good_end = 0
        skipped = 0
        with open(path, "rb") as f:
            end = f.seek(0, 2)
            pos = 0
            prev = 0
            while pos < end:
                seq, n = self.read_at(f, pos, end)
                if seq and (seq > prev or not self.ordered):
                    self.note(seg, seq, n, ts_of(self.rx))
                    if self.ordered:
                        prev = seq
                    pos += n
                    good_end = pos
                    continue
                nxt = self.resync(f, pos + 1, end, prev)
                if nxt < 0:
                    break
                self.event("store", "segment %s: skipped %d damaged bytes after record %d"
                           % (path[len(self.root) + 1:], nxt - pos, prev or seg.last), "store.skipped")
                skipped += nxt - pos
                pos = nxt
        self.stats["skipped_bytes"] += skipped
        if good_end < end:
            self.stats["recovered_cut"] += end - good_end
            cold("rewrite_prefix", path, good_end)
            self.event("store", "segment %s: cut %d damaged tail bytes after record %d"
                       % (path[len(self.root) + 1:], end - good_end, seg.last), "store.cut")
        seg.size = good_end

    def read_at(self, f, pos, end):
        """(seq, total length) of a whole record at pos, now in self.rx; or (0, 0)."""
        if pos + HEAD + TAIL > end:
            return 0, 0
        f.seek(pos)
        rx = self.rx
        if f.readinto(self.rxv[:HEAD]) != HEAD or rx[0] != MAGIC:
            return 0, 0
        length = rx[1] | (rx[2] << 8)
        if length > MAX_PAYLOAD or pos + HEAD + length + TAIL > end:
            return 0, 0
        if f.readinto(self.rxv[HEAD:HEAD + length + TAIL]) != length + TAIL:
            return 0, 0
        if crc32(self.rxv[1:HEAD + length]) != struct.unpack_from("<I", rx, HEAD + length)[0]:
            return 0, 0
        return struct.unpack_from("<I", rx, 3)[0], HEAD + length + TAIL

    def resync(self, f, pos, end, prev):
        """Offset of the next whole record after damage (with a seq above prev in ordered rings), or -1."""
        while pos < end:
            f.seek(pos)
            b = f.read(min(512, end - pos))
            i = b.find(b"\xa5")
            if i < 0:
                pos += len(b)
                continue
            seq, n = self.read_at(f, pos + i, end)
            if seq and (seq > prev or not self.ordered):
                return pos + i
            pos += i + 1
        return -1

    def walk(self, seq, dest=None, segs=None):
        """Yield (seq, length) of whole records from seq on (the record itself in self.rx), in the
        live segments or `segs`; the file is closed when the walk ends or is closed. With a dest, where
        it stopped is kept so that its next read starts there."""
        hint = self.hints.get(dest) if dest else None
        for seg in segs or self.live():
            if seg.last < seq and self.ordered:
                continue
            pos = 0
            if hint and hint[0] == seg.index and hint[2] <= seq:
                pos = hint[1]
            f = open(self.path(seg.index), "rb")
            try:
                end = seg.size
                while pos < end:
                    rseq, n = self.read_at(f, pos, end)
                    if not rseq:
                        pos = self.resync(f, pos + 1, end, 0)
                        if pos < 0:
                            break
                        continue
                    if rseq >= seq:
                        if dest:
                            self.hints[dest] = (seg.index, pos, rseq)
                        yield rseq, n
                    pos += n
            finally:
                f.close()
