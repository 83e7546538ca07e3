"""Delivers stored values to one destination from its own cursor; many destinations run side by side.

Each destination is one asyncio task reading from the store after its own acknowledgement cursor,
oldest first, so a platform that is down or slow holds back nothing but itself. The cursor moves
only when the platform says yes. A record the platform rejects is written to the ledger with the
platform's reason and skipped (never retried forever); transport failures and unclear answers
back off exponentially with jitter up to a cap, and the batch is resent until acknowledged (the
platform's natural key makes a resend after a lost acknowledgement harmless).
"""

import asyncio
import os

from nengjian import log, records, timeutil
from nengjian.uplink import http, ndrc

BACKOFF_MIN_MS = 2000
BACKOFF_MAX_MS = 300000


class Destination:
    def __init__(self, profile, store, batch, event, link_up=None):
        self.name = profile.name
        self.profile = profile
        self.store = store
        self.batch = batch
        self._event = event
        self._link_up = link_up
        self.wake = asyncio.Event()
        self.backoff_ms = 0
        self.failing = False
        self._skip = set()
        self.progress = 0
        self.stats = {"sent": 0, "batches": 0, "rejected": 0, "failures": 0, "last_ok": 0}
        self.last_error = ""

    def _jittered(self):
        b = self.backoff_ms
        return b // 2 + (os.urandom(1)[0] * b) // 512

    async def _idle(self, ms):
        self.wake.clear()
        try:
            await asyncio.wait_for_ms(self.wake.wait(), ms)
        except asyncio.TimeoutError:
            pass

    async def run(self):
        while True:
            self.progress += 1
            if self._link_up is not None and not self._link_up():
                await self._idle(2000)
                continue
            batch, last = self.store.read(self.name, self.batch, (records.VALUE,))
            if self._skip:
                batch = [r for r in batch if r[0] not in self._skip]
            if not batch:
                if last > self.store.cursor(self.name):
                    self.store.ack(self.name, last)
                    continue
                await self._idle(5000)
                continue
            try:
                result = await self.profile.ensure_session()
                if result is None:
                    result = await self.profile.upload(batch, timeutil.now())
            except http.HttpError as e:
                result = ndrc.Result(ndrc.RETRY, str(e))
            if result.kind == ndrc.OK:
                self.store.ack(self.name, last)
                self._skip = set(s for s in self._skip if s > last)
                self.stats["sent"] += len(batch)
                self.stats["batches"] += 1
                self.stats["last_ok"] = timeutil.now()
                log.info("uplink", "%s: %d value(s) accepted, up to record %d" % (self.name, len(batch), last))
                if self.failing:
                    self._event("uplink", "%s: delivering again after failures (%s)" % (self.name, self.last_error))
                self.failing = False
                self.backoff_ms = 0
            elif result.kind == ndrc.REJECTED:
                for index, reason in result.rejected:
                    seq, rec = batch[index]
                    self._skip.add(seq)
                    self.stats["rejected"] += 1
                    self._event("rejected", "%s refused %s %s (record %d): %s" % (
                        self.name, rec[records.V_CODE], timeutil.cst_text(rec[records.V_STAT_START]), seq, reason))
            else:
                self.stats["failures"] += 1
                self.last_error = result.reason
                if not self.failing:
                    self._event("uplink", "%s: delivery failing: %s" % (self.name, result.reason))
                self.failing = True
                self.backoff_ms = min(BACKOFF_MAX_MS, max(BACKOFF_MIN_MS, self.backoff_ms * 2))
                wait = self._jittered()
                log.warn("uplink", "%s: %s; retry in %d s" % (self.name, result.reason, wait // 1000))
                await asyncio.sleep_ms(wait)
