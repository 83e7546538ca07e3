"""Link supervisor: keeps the best available link up, proves it carries data, and repairs it.

Links are tried in preference order (e.g. Ethernet, then 4G). The supervisor:
- brings up the most preferred link that comes up (failover), and while on a less preferred one
  tries the better ones again every `failback_s` (failback), dropping the worse one after;
- watches the active link: carrier (is_up) every `check_ms`, and an application-level keepalive:
  when no HTTP answer has arrived for `keepalive_s`, it sends a probe (HEAD to a platform host);
  `probe_failures` failed probes in a row, `probe_retry_s` apart, declare the link dead (a dead 4G
  session that still looks "connected" is found within keepalive_s + probe_failures * probe_retry_s);
- re-dials a lost link, and power-cycles it (modem PWRKEY) after `power_cycle_after` failed
  bring-ups in a row; waits `retry_s` between rounds when nothing comes up;
- logs every change and the signal strength as ledger events, and keeps a status dict.

Other modules ask `is_up()` (uplink) and `batch_cap()` (records per upload on this link), and may
register `on_change` callbacks (called with the new active link or None).
"""

import asyncio

from nengjian.core import log
from nengjian.core.compat import ticks_diff, ticks_ms
from nengjian.net import http


class Supervisor:
    def __init__(self, links, event, probe_urls=(), keepalive_s=300, probe_timeout_ms=10000, probe_failures=2,
                 probe_retry_s=30, failback_s=900, retry_s=20, power_cycle_after=3, check_ms=2000, probe=None):
        self.links = list(links)
        self._event = event
        self.probe_urls = list(probe_urls)
        self.keepalive_ms = keepalive_s * 1000
        self.probe_timeout_ms = probe_timeout_ms
        self.probe_failures = probe_failures
        self.probe_retry_ms = probe_retry_s * 1000
        self.failback_ms = failback_s * 1000
        self.retry_ms = retry_s * 1000
        self.power_cycle_after = power_cycle_after
        self.check_ms = check_ms
        self._probe = probe or self._probe_urls
        self.active = None
        self.on_change = []
        self.progress = 0
        self._since = ticks_ms()
        self._last_alive = ticks_ms()
        self._last_probe = ticks_ms()
        self._probe_misses = 0
        self._last_failback = ticks_ms()
        self.stats = {"switches": 0, "lost": 0, "probes": 0, "probe_failures": 0, "power_cycles": 0}

    # ---- asked by others
    def is_up(self):
        return self.active is not None and self.active.is_up()

    def batch_cap(self):
        return self.active.max_batch if self.active is not None else 0

    def status(self):
        return {"active": self.active.name if self.active else None, "up": self.is_up(),
                "for_s": ticks_diff(ticks_ms(), self._since) // 1000, "stats": self.stats,
                "links": [lk.status() for lk in self.links]}

    # ---- internals
    def _set_active(self, link):
        old = self.active
        self.active = link
        self._since = ticks_ms()
        self._last_alive = ticks_ms()
        self._last_probe = ticks_ms()
        self._probe_misses = 0
        self._last_failback = ticks_ms()
        http.forget_dns()
        if link is not old:
            self.stats["switches"] += 1
        for cb in self.on_change:
            try:
                cb(link)
            except Exception as e:  # a listener's bug must not take the network down
                log.error("link", "on_change listener failed: %s" % e)

    def _describe(self, link):
        r = link.rssi()
        return "%s (%s)%s" % (link.name, link.kind, "" if r is None else ", signal %d dBm" % r)

    async def _try(self, link):
        """Bring `link` up; power-cycle it after repeated failures. True when up."""
        self.progress += 1
        ok = await link.up()
        self.progress += 1
        if ok:
            return True
        log.warn("link", "%s will not come up (%d in a row): %s" % (link.name, link.failures, link.last_error))
        if link.failures == 1:
            self._event("link", "%s will not come up: %s" % (link.name, link.last_error), "link.no_start")
        if self.power_cycle_after and link.failures % self.power_cycle_after == 0:
            self.stats["power_cycles"] += 1
            self._event("link", "%s: %d failed bring-ups in a row: power-cycling" % (link.name, link.failures),
                        "link.power_cycle")
            await link.power_cycle()
        return False

    async def _bring_up(self, candidates):
        for link in candidates:
            if await self._try(link):
                return link
        return None

    async def _probe_urls(self):
        """True if any probe URL answers (any HTTP status, or a refusal: the path works)."""
        for url in self.probe_urls:
            if await http.reachable(url, self.probe_timeout_ms):
                return True
        return not self.probe_urls

    async def _lost(self, why):
        link = self.active
        self.stats["lost"] += 1
        self._event("link", "%s lost: %s" % (link.name, why), "link.lost")
        self._set_active(None)
        await link.down()

    async def _keepalive(self):
        now = ticks_ms()
        answered = http.last_answer_ms
        if answered is not None and ticks_diff(answered, self._last_alive) > 0:
            self._last_alive = answered
            self._probe_misses = 0
        if ticks_diff(now, self._last_alive) < self.keepalive_ms:
            return True
        gap = self.probe_retry_ms if self._probe_misses else self.keepalive_ms
        if ticks_diff(now, self._last_probe) < gap:
            return True
        self._last_probe = now
        self.stats["probes"] += 1
        if await self._probe():
            self._last_alive = ticks_ms()
            self._probe_misses = 0
            return True
        self._probe_misses += 1
        self.stats["probe_failures"] += 1
        log.warn("link", "%s: keepalive probe %d failed" % (self.active.name, self._probe_misses))
        return self._probe_misses < self.probe_failures

    async def step(self):
        """One round of supervision (the loop body; tests drive it directly)."""
        self.progress += 1
        if self.active is None:
            link = await self._bring_up(self.links)
            if link is None:
                await asyncio.sleep_ms(self.retry_ms)
                return
            self._set_active(link)
            self._event("link", "using %s" % self._describe(link), "link.using")
            return
        await asyncio.sleep_ms(self.check_ms)
        if not self.active.is_up():
            await self._lost("carrier gone")
            return
        if not await self._keepalive():
            await self._lost("no answer to %d keepalive probe(s)" % self._probe_misses)
            return
        rank = self.links.index(self.active)
        if rank and ticks_diff(ticks_ms(), self._last_failback) >= self.failback_ms:
            self._last_failback = ticks_ms()
            better = await self._bring_up(self.links[:rank])
            if better is not None:
                old = self.active
                self._set_active(better)
                self._event("link", "back on %s; %s released" % (self._describe(better), old.name), "link.back")
                await old.down()

    async def run(self):
        while True:
            await self.step()
