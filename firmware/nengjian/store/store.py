"""Append-only, power-loss-safe record store on the data volume (littlefs): a cursor per destination,
and a compact long-term history.

Owns: the store's one interface (Store: append, flush, read, scan, ack, history), sequence numbers and
what is durable, recovery at boot, and the space policy: which segment a full ring goes on in, when
acknowledged segments are folded, what gives way when space or RAM runs out, and the events that say
so. Its parts, each behind this interface: nengjian.store.ring (record framing and segment files),
nengjian.store.history (the fold into compact history); the c-NAME files are this module's (their
reading at boot nengjian.store.cold's).
Knows the kinds of nengjian.core.records only to route and fold them; knows nothing of meters or
platforms.

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
    c-NAME   a destination's cursor, "seq crc32\\n" (the seq in decimal and the CRC-32 of that text),
             written through the firmware's one atomic writer (nengjian.core.statefile.replace:
             c-NAME.new, renamed over c-NAME). A missing or damaged one counts as none: the
             destination starts again from the oldest record in the main ring, since resending is
             harmless (the platform's natural key) and skipping is not. One past the data is clamped
             to the newest record, but still raises the next seq (a platform may hold an
             acknowledgement for it).

Record framing: nengjian.store.ring; history runs: nengjian.store.history. Sequence numbers are
shared by all rings and only grow.

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

from binascii import crc32

from nengjian.core import records, statefile
from nengjian.core.compat import const, ticks_add, ticks_diff, ticks_ms
from nengjian.store import cbor
from nengjian.store.history import HISTORY, History, when  # noqa: F401 (HISTORY: the format's name)
from nengjian.store.ring import HEAD, MAGIC, MAX_PAYLOAD, TAIL, Ring, StoreError, _Seg, cold, merge  # noqa: F401 (same)

_ENOSPC = const(28)


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else -1


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
        self.on_event = on_event  # the ledger: fn(kind, text, code), kinds "store" and "loss"
        self.raw_kinds = tuple(raw_kinds) if raw_segments else ()
        self.raw_count = raw_segments
        self.main_keep = max(1, main_keep)
        self.fold_n = max(2, fold)
        self.max_pending = max_pending
        self.alarms = {}
        self.open_events = []  # (kind, text, code) raised by open(), for a ledger that did not exist yet
        self.stats = {"appended": 0, "flushes": 0, "bytes": 0, "dropped": 0, "recovered_cut": 0,
                      "skipped_bytes": 0, "lost": 0, "loss_events": 0, "expired_raw": 0, "folds": 0,
                      "history_values": 0, "history_expired": 0, "write_errors": 0, "read_errors": 0, "enospc": 0, "shed": 0}
        ev = self._event
        self._main = Ring(root, "s", segment_bytes, ev, self.stats)
        self._raw = Ring(root, "r", raw_segment_bytes or max(512, segment_bytes // 2), ev, self.stats)
        self._hist = History(root, segment_bytes, ev, self.stats)
        self._main.next_seg = self._main_next
        self._raw.next_seg = self._raw_next
        self._hist.next_seg = self._hist_next
        self._rings = (self._main, self._raw, self._hist)
        self._at = {}  # dest -> seq acknowledged: its c-NAME file (read at boot by nengjian.store.cold)
        self._pending_count = 0
        self._pending_since = 0
        self._next_seq = 1
        self.durable_seq = 0  # every record <= this is on flash
        self._busy = False  # inside flush/fold: events wait in _deferred, appends do not flush
        self._deferred = []
        self._retry_at = None
        self._backoff = 0

    # ---- events
    def _event(self, kind, text, code=None):
        if self._busy:
            self._deferred.append((kind, text, code))
            return
        if self._opening:
            self.open_events.append((kind, text, code))
        if self.on_event:
            try:
                self.on_event(kind, text, code)
            except Exception:  # a ledger that fails must not take the store down
                pass

    _opening = False

    def _emit_deferred(self):
        while self._deferred and not self._busy:
            kind, text, code = self._deferred.pop(0)
            self._event(kind, text, code)

    def _loss(self, text, code):
        self.stats["loss_events"] += 1
        self.alarms["loss"] = text
        self._event("loss", text, code)

    # ---- boot
    def open(self):
        """Scan the volume, cut torn tails, load cursors. Safe on an empty or missing directory. The
        code, boot-only, is nengjian.store.cold's."""
        self._opening = True
        try:
            cold("open_store", self, _Seg)
        finally:
            self._opening = False

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
        ring.put(record, seq)
        self._next_seq = seq + 1
        if not self._pending_count:
            self._pending_since = ticks_ms()
        self._pending_count += 1
        self.stats["appended"] += 1
        if self._main.pend_bytes() + self._raw.pend_bytes() > self.max_pending:
            self._shed()
        if self._pending_count >= self.flush_records and not self._busy and not self._waiting():
            self.flush()
        return seq

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
                            ring.write_pending()
                    failed = None
                    break
                except OSError as e:
                    failed = e
                    self._after_error()
                    if _errno(e) != _ENOSPC:
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
                self._deferred.append(("store", "flash writable again", "store.writable"))
        else:
            self.stats["write_errors"] += 1
            self._backoff = min(60000, max(1000, self._backoff * 2))
            self._retry_at = ticks_add(ticks_ms(), self._backoff)
            if "flash" not in self.alarms:
                self.alarms["flash"] = "write failed (errno %d)" % _errno(failed)
                self._deferred.append(("store", "flash write failed (errno %d): %d records held in RAM, retrying"
                                       % (_errno(failed), self._pending_count), "store.write_failed"))
        self._emit_deferred()

    def _after_error(self):
        """After a failed write: close the rings' files; believe only what is committed on flash."""
        for ring in self._rings:
            ring.close_file()
            ring.dirty = True
        try:
            self._hist.recheck()
        except OSError:
            pass

    # ---- the space policy
    _credit = 0  # main segments a fold under way is about to free

    def _free_slots(self):
        return self.segment_count + self._credit - len(self._main.segs) - len(self._hist.segs)

    def _raw_next(self):
        """The raw ring is a fixed ring: once full, its oldest segment expires, quietly."""
        r = self._raw
        if len(r.segs) < self.raw_count:
            return r.new_seg()
        seg = r.oldest(but=r.cur) or r.new_seg()
        self.stats["expired_raw"] += seg.count
        return r.blank(seg)

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
                self._hist.expire(h, "history is full" if live and live[0].last <= acked
                                  else "undelivered records need the room")
                self._hist.remove(h)
                return m.new_seg()
        old = live[0] if live else m.cur
        if old.last > acked:
            self._drop_main(old, "the store is full")
        else:
            self._hist.fold(m, [old])
        return m.blank(old)

    def _hist_next(self):
        h = self._hist
        seg = h.oldest()
        if self._free_slots() > 0 or seg is None:
            return h.new_seg()
        h.expire(seg, "history is full")
        return h.blank(seg)

    def _release(self, unit):
        """Fold acknowledged segments into history, then free all but the first for reuse."""
        self._credit = len(unit) - 1
        try:
            self._hist.fold(self._main, unit)
        finally:
            self._credit = 0
        for s in unit[1:]:
            self._main.remove(s)
        return self._main.blank(unit[0])

    def _drop_main(self, seg, why, fold=True):
        """seg leaves the main ring, maybe with records some destination has not acknowledged:
        say exactly which (seq and time range) and raise the alarm."""
        lo = max(seg.first, self.min_cursor() + 1, self._hist.upto + 1)
        behind = [d for d in self.destinations if self._at[d] < seg.last]
        t0 = self._hist.fold(self._main, [seg], lo) if fold else 0
        if lo <= seg.last:
            self.stats["lost"] += seg.last - lo + 1
            self.stats["dropped"] += seg.last - lo + 1
            self._loss("%s: records %d..%d (%s .. %s CST) dropped before %s acknowledged them; %s"
                       % (why, lo, seg.last, when(t0 or seg.t0), when(seg.t1), ", ".join(behind) or "every destination",
                          "their values are kept in history" if fold else "they are lost"), "loss.unacked")

    def _make_room(self):
        """littlefs is out of space: free the oldest history, raw, then main segment. False if none."""
        try:
            return self._free_one()
        except OSError:
            return False

    def _free_one(self):
        h = self._hist.oldest()
        if h is not None:
            self._hist.expire(h, "the volume is full")
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

    def _shed(self):
        """RAM for unwritten records is bounded: drop the oldest (raw readings first) down to a quarter
        of the bound, so that a flash that stays dead costs one loss event per few hundred records."""
        excess = self._main.pend_bytes() + self._raw.pend_bytes() - self.max_pending // 4
        for ring in (self._raw, self._main):
            if excess <= 0:
                break
            cut, dropped, lo, hi = ring.shed(excess)
            if not cut:
                continue
            excess -= cut
            self._pending_count -= dropped
            self.stats["shed"] += dropped
            self.stats["lost"] += dropped
            self._loss("flash not writable: %d %s records between %d and %d dropped from RAM before they were stored"
                       % (dropped, "raw" if ring is self._raw else "main", lo, hi), "loss.unwritable")

    # ---- reading and acknowledging
    def min_cursor(self):
        at = self._at
        if not at:
            return self.last_seq
        return min(at.values())

    def cursor(self, dest):
        return self._at[dest]

    def backlog(self, dest):
        """Records (of any kind) after the destination's cursor."""
        return max(0, self.durable_seq - max(self._at[dest], self._oldest_seq() - 1))

    def ack(self, dest, seq):
        """Move dest's cursor to seq (never backwards) and persist it atomically.

        Returns True once the cursor is on flash; False if writing it failed (the cursor still moves
        in RAM, and a later ack writes it: the platform may then see a batch again after a reboot).
        """
        if seq <= self._at[dest]:
            return True
        if seq > self.durable_seq:
            raise StoreError("ack of %d beyond stored %d" % (seq, self.durable_seq))
        self._at[dest] = seq
        text = str(seq)
        line = "%s %d\n" % (text, crc32(text.encode()))

        def failed(why):
            self.stats["write_errors"] += 1
            self._event("store", "cursor of %s not saved (%s)" % (dest, why), "store.cursor_not_saved")

        return statefile.replace(self._cursor_path(dest), lambda f: f.write(line), "w", failed)

    def _cursor_path(self, dest):
        return "%s/c-%s" % (self.root, dest)

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

    def read(self, dest, limit, kinds=None, max_bytes=0, into=None):
        """Up to `limit` durable records after dest's cursor whose kind is in `kinds`.

        Returns (records, last_seq_scanned): acknowledging last_seq_scanned also passes over the
        records of other kinds that lay between. Each record is (seq, decoded list). With `into` (a
        nengjian.store.batch.Batch, cleared first) the records are kept there as stored, and it is
        returned: a record it has no room for ends the read before it; one it passes over (its
        `unwanted`) is not counted against `limit`.
        """
        after = self._at[dest]
        out = into if into is not None else []
        if into is not None:
            into.clear()
        last = after
        nbytes = 0
        stop = self.durable_seq
        rings = self._rings_for(kinds)
        gens = [r.walk(after + 1, dest) for r in rings]
        complete = True
        self._busy = True  # an event raised here must not rotate a segment under the walk
        try:
            for seq, ring, n in merge(rings, gens):
                if seq > stop:
                    break
                if kinds is not None and ring.rx[HEAD + 1] not in kinds:
                    last = seq
                    continue
                try:
                    rec = cbor.decode(ring.rxv, HEAD, n - TAIL)  # one at a time: only a check with `into`
                except cbor.CBORError:
                    last = seq
                    self._event("store", "record %d undecodable: skipped" % seq, "store.undecodable")
                    continue
                if into is None:
                    out.append((seq, rec))
                elif not into.put(seq, ring.rxv, HEAD, n - TAIL):
                    if not len(into):
                        into.extend([(seq, rec)])  # too large for its chunks: alone, decoded
                        last = seq
                    complete = False
                    break
                rec = None
                last = seq
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
        gens = [r.walk(from_seq) for r in rings]
        self._busy = True  # a visitor's appends must not rotate a segment under the walk
        try:
            for seq, ring, n in merge(rings, gens):
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
            self._deferred.append(("store", "flash read failed (errno %d)" % _errno(e), "store.read_failed"))

    def history(self, visit):
        """Call visit(seq, record) for everything in history, in the order written: folded VALUEs come
        back as VALUE lists (with time None and seq None); other records as they were. The reading
        back, for an operator, is nengjian.store.cold's."""
        cold("history", self._hist, visit, HEAD, TAIL, HISTORY)

    def close(self):
        self.flush()
        for ring in self._rings:
            ring.close_file()
