"""Append-only, power-loss-safe record store on the data volume (littlefs), with a cursor per destination.

Owns: segment files, record framing, sequence numbers, acknowledgement cursors, recovery at boot,
and the ring policy when the volume is full. Knows nothing of meters or platforms: a record is a
CBOR array whose first element is its kind (see nengjian.records).

On flash
--------
A fixed ring of `segments` files `sNN.seg`, each at most `segment_bytes`, rewritten in turn (littlefs
compacts directories with many files slowly, so files are never created endlessly). A record is

    A5 | len u16 | seq u32 | CBOR payload (len bytes) | crc32 u32      (little-endian)

where the CRC covers len, seq and payload. A torn tail fails its CRC and is cut at boot; a damaged
record in the middle is skipped by searching for the next whole record. Cursors live in `c-NAME`,
written to `c-NAME.new` and renamed over the old one (an atomic littlefs operation), never rewritten
in place.

Durability window: appends are buffered in RAM and written with one flush at most every
`flush_records` records or `flush_ms` milliseconds, whichever comes first; only flushed records
count as stored. Records not yet flushed are lost on a power cut: with the defaults (16 records,
5 s) that is at most 5 s of readings, traded for far fewer littlefs block copies.
"""

import os
import struct
from binascii import crc32

from nengjian.compat import ticks_diff, ticks_ms
from nengjian.store import cbor

MAGIC = 0xA5
HEAD = 7
TAIL = 4
MAX_PAYLOAD = 1024


class StoreError(Exception):
    pass


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class _Segment:
    __slots__ = ("index", "first", "last", "size")

    def __init__(self, index):
        self.index = index
        self.first = 0  # 0 = empty
        self.last = 0
        self.size = 0


class Store:
    def __init__(self, root, destinations, segment_bytes=65536, segments=16,
                 flush_records=16, flush_ms=5000, on_event=None):
        self.root = root
        self.destinations = list(destinations)
        self.segment_bytes = segment_bytes
        self.segment_count = segments
        self.flush_records = flush_records
        self.flush_ms = flush_ms
        self._on_event = on_event
        self._segs = [_Segment(i) for i in range(segments)]
        self._cur = None  # active _Segment
        self._file = None
        self._pending = bytearray()
        self._pending_count = 0
        self._pending_since = 0
        self._next_seq = 1
        self.durable_seq = 0  # every record <= this is on flash
        self._cursors = {}
        self._hints = {}  # dest -> (segment index, offset, seq) where its next read starts
        self._rx = bytearray(HEAD + MAX_PAYLOAD + TAIL)
        self._rxv = memoryview(self._rx)
        self.stats = {"appended": 0, "flushes": 0, "bytes": 0, "dropped": 0, "recovered_cut": 0}

    # ---- paths
    def _seg_path(self, i):
        return "%s/s%02d.seg" % (self.root, i)

    def _cursor_path(self, dest):
        return "%s/c-%s" % (self.root, dest)

    def _event(self, kind, text):
        if self._on_event:
            self._on_event(kind, text)

    # ---- boot
    def open(self):
        """Scan the volume, cut torn tails, load cursors. Safe to call on an empty directory."""
        try:
            os.mkdir(self.root)
        except OSError:
            pass
        for seg in self._segs:
            self._scan_segment(seg)
        live = [s for s in self._segs if s.first]
        if live:
            newest = max(live, key=lambda s: s.last)
            self._next_seq = newest.last + 1
            self._cur = newest
        else:
            self._cur = self._segs[0]
        self.durable_seq = self._next_seq - 1
        for dest in self.destinations:
            self._cursors[dest] = self._load_cursor(dest)
        self._file = open(self._seg_path(self._cur.index), "ab")

    def _scan_segment(self, seg):
        path = self._seg_path(seg.index)
        if not _exists(path):
            return
        good_end = 0
        skipped = 0
        with open(path, "rb") as f:
            data_len = f.seek(0, 2)
            f.seek(0)
            pos = 0
            prev = 0
            while pos < data_len:
                seq, n = self._read_at(f, pos, data_len)
                if seq and seq > prev:
                    if not seg.first:
                        seg.first = seq
                    seg.last = seq
                    prev = seq
                    pos += n
                    good_end = pos
                    continue
                # Damaged here: find the next whole record, if any, further on.
                nxt = self._resync(f, pos + 1, data_len, prev)
                if nxt < 0:
                    break
                skipped += nxt - pos
                pos = nxt
        seg.size = good_end
        if good_end < data_len:
            self.stats["recovered_cut"] += data_len - good_end
            self._rewrite_prefix(path, good_end)
            self._event("store", "segment %d: cut %d damaged tail bytes" % (seg.index, data_len - good_end))
        if skipped:
            self._event("store", "segment %d: skipped %d damaged bytes between whole records"
                        % (seg.index, skipped))

    def _read_at(self, f, pos, data_len):
        """(seq, total length) of a whole record at pos, or (0, 0)."""
        if pos + HEAD + TAIL > data_len:
            return 0, 0
        f.seek(pos)
        rx = self._rx
        if f.readinto(self._rxv[:HEAD]) != HEAD or rx[0] != MAGIC:
            return 0, 0
        length = rx[1] | (rx[2] << 8)
        if length > MAX_PAYLOAD or pos + HEAD + length + TAIL > data_len:
            return 0, 0
        f.readinto(self._rxv[HEAD:HEAD + length + TAIL])
        crc = struct.unpack_from("<I", rx, HEAD + length)[0]
        if crc32(self._rxv[1:HEAD + length]) != crc:
            return 0, 0
        return struct.unpack_from("<I", rx, 3)[0], HEAD + length + TAIL

    def _resync(self, f, pos, data_len, prev):
        while pos < data_len:
            f.seek(pos)
            b = f.read(min(512, data_len - pos))
            i = b.find(bytes((MAGIC,)))
            if i < 0:
                pos += len(b)
                continue
            seq, n = self._read_at(f, pos + i, data_len)
            if seq and seq > prev:
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
        path = self._cursor_path(dest)
        try:
            with open(path) as f:
                text = f.read()
            seq_text, crc_text = text.split()
            seq = int(seq_text)
            if crc32(seq_text.encode()) != int(crc_text):
                raise ValueError("crc")
        except OSError:
            return self._oldest_seq() - 1
        except (ValueError, IndexError):
            self._event("store", "cursor of %s damaged: resending from the oldest record" % dest)
            return self._oldest_seq() - 1
        if seq > self._next_seq - 1:
            self._event("store", "cursor of %s (%d) past the data (%d): clamped" % (dest, seq, self._next_seq - 1))
            seq = self._next_seq - 1
        return seq

    def _oldest_seq(self):
        firsts = [s.first for s in self._segs if s.first]
        return min(firsts) if firsts else self._next_seq

    # ---- writing
    @property
    def last_seq(self):
        return self._next_seq - 1

    def append(self, record):
        """Queue a record (a list whose first item is its kind); returns its sequence number.

        The record is durable only after the next flush (see durable_seq).
        """
        seq = self._next_seq
        p = self._pending
        start = len(p)
        p.extend(b"\xa5\x00\x00")
        p.extend(struct.pack("<I", seq))
        cbor.encode_into(p, record)
        length = len(p) - start - HEAD
        if length > MAX_PAYLOAD:
            del p[start:]
            raise StoreError("record of %d bytes exceeds %d" % (length, MAX_PAYLOAD))
        p[start + 1] = length & 0xFF
        p[start + 2] = length >> 8
        p.extend(struct.pack("<I", crc32(memoryview(p)[start + 1:])))
        self._next_seq = seq + 1
        if not self._pending_count:
            self._pending_since = ticks_ms()
        self._pending_count += 1
        self.stats["appended"] += 1
        if self._pending_count >= self.flush_records:
            self.flush()
        return seq

    def flush_due(self):
        return self._pending_count and ticks_diff(ticks_ms(), self._pending_since) >= self.flush_ms

    def flush(self):
        """Write queued records and sync; after this they survive a power cut."""
        if not self._pending_count:
            return
        data = self._pending
        pos = 0
        n = len(data)
        while pos < n:
            length = data[pos + 1] | (data[pos + 2] << 8)
            total = HEAD + length + TAIL
            seq = struct.unpack_from("<I", data, pos + 3)[0]
            if self._cur.size + total > self.segment_bytes and self._cur.size:
                self._file.flush()
                self._rotate()
            self._write(memoryview(data)[pos:pos + total], seq)
            pos += total
        self._file.flush()
        self.durable_seq = self._next_seq - 1
        self._pending = bytearray()
        self._pending_count = 0
        self.stats["flushes"] += 1

    def _write(self, chunk, seq):
        try:
            self._file.write(chunk)
        except OSError as e:
            if e.args[0] != 28:  # ENOSPC: the volume holds less than the ring was sized for
                raise
            self._event("store", "volume full at segment %d: rotating early" % self._cur.index)
            self._rotate()
            self._file.write(chunk)
        seg = self._cur
        if not seg.first:
            seg.first = seq
        seg.last = seq
        seg.size += len(chunk)
        self.stats["bytes"] += len(chunk)

    def _rotate(self):
        self._file.close()
        nxt = self._segs[(self._cur.index + 1) % self.segment_count]
        if nxt.first:
            acked = self.min_cursor()
            if nxt.last > acked:
                lost_from = max(nxt.first, acked + 1)
                self.stats["dropped"] += nxt.last - lost_from + 1
                self._event("loss", "store full: dropped records %d..%d not yet acknowledged by every destination"
                            % (lost_from, nxt.last))
            for dest, hint in list(self._hints.items()):
                if hint[0] == nxt.index:
                    del self._hints[dest]
        nxt.first = nxt.last = nxt.size = 0
        self._cur = nxt
        self._file = open(self._seg_path(nxt.index), "wb")

    # ---- reading and acknowledging
    def min_cursor(self):
        if not self._cursors:
            return self.last_seq
        return min(self._cursors.values())

    def cursor(self, dest):
        return self._cursors[dest]

    def backlog(self, dest):
        """Records (of any kind) after the destination's cursor."""
        return self.durable_seq - max(self._cursors[dest], self._oldest_seq() - 1)

    def ack(self, dest, seq):
        """Move dest's cursor to seq (never backwards) and persist it atomically."""
        if seq <= self._cursors[dest]:
            return
        if seq > self.durable_seq:
            raise StoreError("ack of %d beyond stored %d" % (seq, self.durable_seq))
        path = self._cursor_path(dest)
        text = str(seq)
        with open(path + ".new", "w") as f:
            f.write("%s %d\n" % (text, crc32(text.encode())))
        os.rename(path + ".new", path)
        self._cursors[dest] = seq

    def read(self, dest, limit, kinds=None, max_bytes=0):
        """Up to `limit` durable records after dest's cursor whose kind is in `kinds`.

        Returns (records, last_seq_scanned): acknowledging last_seq_scanned also passes over the
        records of other kinds that lay between. Each record is (seq, decoded list).
        """
        after = self._cursors[dest]
        out = []
        state = [after, 0]  # last seq scanned, payload bytes collected

        def take(seq, payload_len):
            if seq > self.durable_seq:
                return True
            state[0] = seq
            if kinds is not None and self._rx[HEAD + 1] not in kinds:
                return False
            try:
                out.append((seq, cbor.decode(self._rxv, HEAD, HEAD + payload_len)))
            except cbor.CBORError:
                self._event("store", "record %d undecodable: skipped" % seq)
                return False
            state[1] += payload_len
            return len(out) >= limit or (max_bytes and state[1] >= max_bytes)

        self._walk(after + 1, take, dest)
        return out, state[0]

    def scan(self, from_seq, visit):
        """Call visit(seq, record) for each whole durable record from from_seq on, oldest first,
        until it returns True (recovery at boot, export)."""
        self.flush()

        def take(seq, payload_len):
            try:
                rec = cbor.decode(self._rxv, HEAD, HEAD + payload_len)
            except cbor.CBORError:
                return False
            return visit(seq, rec)

        self._walk(from_seq, take, None)

    def _walk(self, seq, take, dest):
        """Feed whole records from seq on to take(seq, payload_len) (record bytes in self._rx)
        until it returns True. Files are closed before returning, whatever happens."""
        hint = self._hints.get(dest) if dest else None
        order = sorted((s for s in self._segs if s.first and s.last >= seq), key=lambda s: s.first)
        for seg in order:
            if seg is self._cur:
                self._file.flush()
            start = 0
            if hint and hint[0] == seg.index and hint[2] <= seq:
                start = hint[1]
            with open(self._seg_path(seg.index), "rb") as f:
                end = seg.size
                pos = start
                while pos < end:
                    rseq, n = self._read_at(f, pos, end)
                    if not rseq:
                        pos = self._resync(f, pos + 1, end, 0)
                        if pos < 0:
                            break
                        continue
                    if rseq >= seq:
                        if dest:
                            self._hints[dest] = (seg.index, pos, rseq)
                        if take(rseq, n - HEAD - TAIL):
                            return
                    pos += n

    def close(self):
        self.flush()
        if self._file:
            self._file.close()
            self._file = None
