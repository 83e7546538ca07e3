"""Delivers stored values to one destination from its own cursor; many destinations run side by side.

Each destination is one asyncio task reading from the store after its own acknowledgement cursor,
oldest first, so a platform that is down or slow holds back nothing but itself (every network wait
is bounded by the profile's timeout; store reads and encoding are bounded by the batch size). The
cursor moves only when the platform says yes. A record the platform rejects is written to the ledger
with the platform's reason and skipped (never retried forever); transport failures and unclear
answers back off exponentially with jitter up to a cap, and the batch is resent until acknowledged
(the platform's natural key makes a resend after a lost acknowledgement harmless).

Back-fill and fresh data. After an outage the cursor lane works through the backlog oldest first.
Fresh values are offered to the destination as they are produced (`offer`); whenever the cursor
lane is behind them, each round first sends the durable fresh values (a small batch), then one
back-fill batch, so real-time data keeps its period while the backlog drains. Values acknowledged
ahead of the cursor are remembered (`_ahead`) and passed over when the cursor lane reaches them.
Correctness never depends on the offers: an offer that is dropped (queue full, reboot) is simply
delivered later by the cursor lane. `_ahead` lives in RAM: after a reboot mid-back-fill the values
sent ahead (at most _AHEAD_MAX) go once more with the cursor lane - harmless by the natural key.
Without offers (or with the fresh lane full) delivery is plain oldest-first.

Batch size: the profile's limit (`batch`), capped by the link (`batch_cap()`), halved after a
timeout, an out-of-memory or repeated unclear refusals (a platform's undeclared size limit, a slow
4G uplink, a fragmented heap), doubled again after a run of successes but not back to a size that
failed until _CEILING_FOR batches have gone through. A batch sent whole whose answer then found no
heap (UNANSWERED) is not the batch's fault: it is sent again as it was, at once after a collection
(the platform may have it already: harmless by the natural key); only when that happens again in a
row is it halved, the batch held in RAM then being what leaves the answer no room.
"""

import asyncio
import gc
import os

from nengjian.core import log, records, timeutil
from nengjian.core.compat import const, ticks_diff, ticks_ms
from nengjian.net import http
from nengjian.store.batch import Batch
from nengjian.uplink.result import OK, OUT_OF_MEMORY, REJECTED, RETRY, UNANSWERED, Result

_BACKOFF_MIN_MS = const(2000)
_BACKOFF_MAX_MS = const(300000)
_IDLE_MS = const(5000)
_FRESH_MAX = const(16)  # fresh values queued in RAM: the newest, each a reference to a record the app built
_AHEAD_MAX = const(512)  # values acknowledged ahead of the cursor, remembered until the cursor passes
_GROW_AFTER = const(3)  # successes in a row before a shrunk batch grows again
_CEILING_FOR = const(100)  # batches during which a size that failed stays out of reach
_SHRINK_AFTER = const(2)  # unclear refusals in a row before the batch shrinks
_RESEND_UNANSWERED = const(1)  # resends of a whole batch whose answer found no heap, before it is halved


class Destination:
    def __init__(self, profile, store, batch, event, link_up=None, clock_ok=None, batch_cap=None,
                 backoff_min_ms=_BACKOFF_MIN_MS, backoff_max_ms=_BACKOFF_MAX_MS):
        self.name = profile.name
        self.profile = profile
        self.store = store
        self.batch = batch
        self.size = batch  # current batch size
        self._event = event
        self._link_up = link_up
        self._clock_ok = clock_ok
        self._batch_cap = batch_cap
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.info = None  # centerinfo.CenterInfo where the destination opts in to the info channel
        self.quality = None  # quality.Quality: the platform's score of this site, fed on acceptance
        self.upload_slot = False  # day and month values wait for the register answer's uploadTime
        self.caught_up = False  # the last round found nothing to send (the score may judge a day)
        self._slot_text = None
        self._slot_s = None
        self.wake = asyncio.Event()
        self.backoff_ms = 0
        self.failing = False
        self._fail_since = 0
        self._skip = set()  # rejected by the platform: passed over, never resent
        self._ahead = set()  # acknowledged through the fresh lane, ahead of the cursor
        self._fresh = []  # [(seq, record)] offered, not yet delivered
        # The cursor lane's batch, as stored (nengjian.store.batch): refilled each round, its buffers
        # all taken here, at boot, each record decoded only while a pass looks at it.
        self._batch = Batch(batch)
        self._ok_run = 0
        self._unclear_run = 0
        self._unanswered_run = 0  # UNANSWERED results in a row
        self._ceiling = batch  # a size that failed is not grown back to for _CEILING_FOR batches
        self._ceiling_left = 0
        self.progress = 0
        self.stats = {"sent": 0, "batches": 0, "rejected": 0, "failures": 0, "last_ok": 0,
                      "fresh": 0, "fresh_dropped": 0}
        self.last_error = ""
        self.last_error_code = ""

    # ---- fed by the app
    def offer(self, seq, rec):
        """A new VALUE record was appended as `seq`: a candidate for the fresh lane."""
        q = self._fresh
        if len(q) >= _FRESH_MAX:
            q.pop(0)
            self.stats["fresh_dropped"] += 1
        q.append((seq, rec))

    def kick(self):
        """The network came back: try at once instead of finishing the back-off."""
        self.backoff_ms = 0
        self.wake.set()

    def status(self):
        return {"name": self.name, "cursor": self.store.cursor(self.name), "backlog": self.store.backlog(self.name),
                "failing": self.failing, "error": self.last_error, "batch": self.size,
                "backoff_ms": self.backoff_ms, "stats": self.stats}

    # ---- helpers
    def _limit(self):
        cap = self._batch_cap() if self._batch_cap is not None else 0
        return min(self.size, cap) if cap else self.size

    def _jittered(self):
        b = self.backoff_ms
        return b // 2 + (os.urandom(1)[0] * b) // 512

    async def _idle(self, ms):
        self.wake.clear()
        try:
            await asyncio.wait_for_ms(self.wake.wait(), ms)
        except asyncio.TimeoutError:
            pass

    async def _backoff(self):
        self.backoff_ms = min(self.backoff_max_ms, max(self.backoff_min_ms, self.backoff_ms * 2))
        wait = self._jittered()
        log.warn("uplink", "%s: %s; retry in %d s" % (self.name, self.last_error, wait // 1000))
        start = ticks_ms()
        # Sleep in slices so the watchdog supervisor sees this loop alive, and a kick() (link back)
        # ends the wait early.
        while self.backoff_ms and ticks_diff(ticks_ms(), start) < wait:
            self.progress += 1
            await asyncio.sleep_ms(min(1000, max(1, wait - ticks_diff(ticks_ms(), start))))

    def _slot_offset(self):
        """Seconds after CST midnight of the platform's daily upload slot ("01:38:00"), or None."""
        s = self.profile.session
        text = s.get("uploadTime") if s else None
        if text != self._slot_text:
            self._slot_text = text
            self._slot_s = None
            try:
                h, m, sec = [int(x) for x in text.split(":")]
                if 0 <= h < 24 and 0 <= m < 60 and 0 <= sec < 60:
                    self._slot_s = h * 3600 + m * 60 + sec
            except (AttributeError, ValueError, TypeError):
                pass
            if text is not None and self._slot_s is None:
                self._event("uplink", "%s: upload slot %r unusable: day and month values sent as due" % (
                    self.name, text), "uplink.slot_unusable")
        return self._slot_s

    def _held(self, rec, now):
        """A day or month value waits for the upload slot after its period's end (Anhui: one daily
        batch at the assigned time). Without a slot from the platform it goes as due; one produced
        after its slot (a back-fill) goes at once rather than a day later."""
        stat = rec[records.V_STAT_TYPE]
        if stat != records.DAY and stat != records.MONTH:
            return False
        off = self._slot_offset()
        if off is None:
            return False
        start = rec[records.V_STAT_START]
        if stat == records.DAY:
            end = start + 86400
        else:
            from nengjian.values.intervals import next_month

            end = next_month(start)
        return now < end + off

    def _fresh_ready(self, after):
        """Durable offered values beyond `after` (not covered by the cursor lane's batch)."""
        q = self._fresh
        while q and q[0][0] <= after:
            q.pop(0)
        durable = self.store.durable_seq
        out = []
        limit = self._limit()
        now = timeutil.now() if self.upload_slot else 0
        for seq, rec in q:
            if seq > durable or len(out) >= limit:
                break
            if seq not in self._skip and seq not in self._ahead and not (now and self._held(rec, now)):
                out.append((seq, rec))
        return out

    def _passed(self, last):
        """The cursor reached `last`: forget what lies at or before it."""
        if self._skip:
            self._skip = set(s for s in self._skip if s > last)
        if self._ahead:
            self._ahead = set(s for s in self._ahead if s > last)

    def _shrink(self, why):
        if self.size > 1:
            self.size = max(1, self.size // 2)
            self._ceiling = self.size
            self._ceiling_left = _CEILING_FOR
            log.info("uplink", "%s: %s: batch size now %d" % (self.name, why, self.size))

    # ---- one exchange
    async def _send(self, batch):
        """Upload; returns the profile's Result (transport failures become RETRY)."""
        try:
            result = await self.profile.ensure_session()
            if result is None:
                result = await self.profile.upload(batch, timeutil.now())
        except http.HttpError as e:
            result = Result(RETRY, str(e))
            if e.timeout:
                self._shrink("timeout")
            self._unclear_run = self._unanswered_run = 0
            return result
        if result.kind == UNANSWERED:
            self._unanswered_run += 1
        else:
            self._unanswered_run = 0
        if result.kind == RETRY or result.kind == OUT_OF_MEMORY or result.kind == UNANSWERED:
            self._unclear_run += 1
            if self._unclear_run >= _SHRINK_AFTER and result.kind == RETRY:
                self._unclear_run = 0
                self._shrink("refused repeatedly")
        else:
            self._unclear_run = 0
        return result

    def _out_of_memory(self, result):
        """A batch too large for the heap right now: a local condition, not the platform's, so it is
        retried at once with half the batch (backing off only when a single record does not fit). One
        whose answer alone found no heap is first sent again whole."""
        if result.kind == UNANSWERED and self._unanswered_run <= _RESEND_UNANSWERED:
            gc.collect()
            log.info("uplink", "%s: %s: sending the same batch again" % (self.name, result.reason))
            return True
        if (result.kind != OUT_OF_MEMORY and result.kind != UNANSWERED) or self.size <= 1:
            return False
        self._shrink("out of memory")
        gc.collect()
        return True

    def _on_ok(self, n):
        self.stats["sent"] += n
        self.stats["batches"] += 1
        self.stats["last_ok"] = timeutil.now()
        if self.failing:
            self._event("uplink", "%s: delivering again after %d failure(s) over %d s (last: %s); backlog %d" % (
                self.name, self.stats["failures"], timeutil.now() - self._fail_since, self.last_error,
                self.store.backlog(self.name)), "uplink.delivering")
        self.failing = False
        self.backoff_ms = 0
        self._ok_run += 1
        if self._ceiling_left:
            self._ceiling_left -= 1
            if not self._ceiling_left:
                self._ceiling = self.batch
        if self._ok_run >= _GROW_AFTER and self.size < self._ceiling:
            self.size = min(self._ceiling, self.size * 2)
            self._ok_run = 0

    def _on_rejected(self, batch, result):
        for index, reason in result.rejected:
            seq, rec = batch[index]
            if seq in self._skip:
                continue
            self._skip.add(seq)
            self.stats["rejected"] += 1
            self._event("rejected", "%s refused %s %s (record %d): %s" % (
                self.name, rec[records.V_CODE], timeutil.cst_text(rec[records.V_STAT_START]), seq, reason), "uplink.refused")

    async def _on_retry(self, result):
        self.stats["failures"] += 1
        self._ok_run = 0
        self.last_error, self.last_error_code = result.reason, "dest_error"
        if not self.failing:
            self._fail_since = timeutil.now()
            self._event("uplink", "%s: delivery failing: %s" % (self.name, result.reason), "uplink.failing")
        self.failing = True
        await self._backoff()

    # ---- the task
    async def run(self):
        """Deliver forever. A bug or a MemoryError in one round is logged and backed off from; it
        never ends this destination's task (nor anyone else's)."""
        while True:
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the task must survive whatever one round hits
                self.stats["failures"] += 1
                self.last_error, self.last_error_code = "internal: %s %s" % (type(e).__name__, e), "dest_error_internal"
                gc.collect()
                if isinstance(e, MemoryError) and self.size > 1:
                    self._shrink("out of memory")  # a local condition: retried at once, smaller
                    continue
                self._event("uplink", "%s: round failed: %s" % (self.name, self.last_error), "uplink.round_failed")
                await self._backoff()

    async def _round(self):
        self.progress += 1
        if (self._link_up is not None and not self._link_up()) or (self._clock_ok is not None and not self._clock_ok()):
            await self._idle(2000)  # no link up, or the clock not trusted
            return
        if self.info is not None and self.info.due() and await self.profile.ensure_session() is None:
            await self.info.step()  # never blocks the data: a failure holds the info channel only
        skip = self._skip
        ahead = self._ahead
        # Passed over as the store reads them, not kept first and dropped after: values sent ahead
        # take no room in the batch.
        self._batch.unwanted = (lambda seq: seq in skip or seq in ahead) if skip or ahead else None
        batch, last = self.store.read(self.name, self._limit(), (records.VALUE,), 0, self._batch)
        held_from = 0  # seq of the first value in batch that waits for the upload slot
        if self.upload_slot and batch:
            now = timeutil.now()
            for seq, rec in batch:
                if self._held(rec, now):
                    held_from = seq
                    break
        if held_from:
            # The cursor stops before the first value waiting for the slot; what follows it goes
            # now and is remembered as sent ahead (as the fresh lane's values are), read past the
            # cursor's window once that holds nothing else to send.
            batch.keep(lambda _seq, rec: not self._held(rec, now), True)
            room = self._limit() - len(batch)
            if room > 0 and last < self.store.durable_seq and len(self._ahead) < _AHEAD_MAX:
                batch.extend(self._beyond(last, room, now))
            last = held_from - 1
        fresh = None
        if len(self._ahead) < _AHEAD_MAX:
            fresh = self._fresh_ready(last)
            if fresh and not await self._send_fresh(fresh):
                return
            if fresh and held_from:  # the fresh lane may just have sent some of the batch past the held value
                batch.keep(lambda seq: seq not in self._ahead)
        self.caught_up = not batch and not held_from and not fresh
        if not batch:
            if last > self.store.cursor(self.name):
                self.store.ack(self.name, last)
                self._passed(last)
                return
            await self._idle(_IDLE_MS)
            return
        result = await self._send(batch)
        if result.kind == OK:
            if self.quality is not None:  # before the cursor moves: a cut in between counts a resend once
                self.quality.accepted(batch, timeutil.now())
            if held_from:
                for i in range(len(batch)):
                    if batch.seq(i) > last:
                        self._ahead.add(batch.seq(i))
            self.store.ack(self.name, last)
            self._passed(last)
            self._on_ok(len(batch))
            log.info("uplink", "%s: %d value(s) accepted, up to record %d" % (self.name, len(batch), last))
        elif result.kind == REJECTED:
            self._on_rejected(batch, result)
        else:
            batch = None
            if not self._out_of_memory(result):
                await self._on_retry(result)

    def _beyond(self, after, limit, now):
        """Up to limit VALUE records stored after seq `after` to send while the cursor waits at a held one."""
        out = []
        skip = self._skip
        ahead = self._ahead

        def visit(seq, rec):
            if rec[0] == records.VALUE and seq not in skip and seq not in ahead and not self._held(rec, now):
                out.append((seq, rec))
            return len(out) >= limit

        self.store.scan(after + 1, visit)
        return out

    async def _send_fresh(self, fresh):
        """Send fresh values ahead of the back-fill; True if the round may go on to the back-fill."""
        result = await self._send(fresh)
        if result.kind == OK:
            if self.quality is not None:
                self.quality.accepted(fresh, timeutil.now())
            for seq, _rec in fresh:
                self._ahead.add(seq)
            top = fresh[-1][0]
            self._fresh = [x for x in self._fresh if x[0] > top]
            self.stats["fresh"] += len(fresh)
            self._on_ok(len(fresh))
            log.info("uplink", "%s: %d fresh value(s) accepted ahead of the back-fill (cursor %d)" % (
                self.name, len(fresh), self.store.cursor(self.name)))
            return True
        if result.kind == REJECTED:
            self._on_rejected(fresh, result)
            return False
        if not self._out_of_memory(result):
            await self._on_retry(result)
        return False
