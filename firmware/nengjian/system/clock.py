"""Trusted time: NTP over UDP, the platform's time where a profile returns it, and the trust flag.

Readings are stamped only while `trusted()` is true (the pollers ask; uploads wait for it too, so
an uploadDate is never made up). Statistics times of regulatory data rest on this clock, so only
sources that prove something set it:
- NTP: an answer counts only if it comes from the address the request went to and carries back, as
  its originate timestamp, the 8 random bytes our request sent as its transmit timestamp. A spoofer
  off the path knows neither; other datagrams are ignored and the wait goes on for the real answer.
- the platform's time (`from_platform(utc, source)`): `net.http` calls it with the Date header of
  answers over certificate-verified TLS only (never the keepalive probe, which does not verify).
  NTP outranks it: a platform time sets the clock only when NTP has not answered for
  `platform_after_s`, although it always counts as the second source of the rule below. While the
  clock is untrusted and NTP fails, `ask_platform` (set by the app) makes one request to a platform
  for its Date header, since no upload goes before the clock is trusted.

The step rule: once the clock is trusted, a step larger than `max_step_s` (site config
`clock.max_step_s`, 300 s by default) is taken only when two different sources (two NTP servers, or
NTP and a platform's Date header) put the clock off by the same amount, within `agree_s`. A source
alone is held, written to the ledger once per claim, and waits for a second one (claims are kept
for HELD_MS). Smaller steps need one source. Every step is a ledger event with its size and its
source(s) (`nengjian ledger` lists them).

At boot without a trusted RTC (an ESP32 after a power cut reads 2000-01-01) the first sync is a huge
step by nature, and there is nothing to hold it against: the first answer of one such source sets
the clock and trusts it, so readings start without waiting for a second server that may not exist on
a site's network. The step rule then protects the trusted clock: a wrong first answer is corrected as
soon as two sources agree, and a stranger can no longer move a good clock far on its own. Until the
first sync nothing is stamped (the pollers ask `trusted()`).

The board supplies the RTC: `set_utc(seconds)` where the clock can be set (ESP32: machine.RTC),
and whether the RTC is trusted at boot (the sim: the host keeps its clock by NTP, and tests may run
it fast, so nothing here may set it; unless the launcher gives the sim an RTC of its own, NJ_RTC,
which this module then sets as on an ESP32). A step within `tolerance_s` does not touch the RTC.
"""

import asyncio
import os
import socket
import struct

from nengjian.core import log, timeutil
from nengjian.core.compat import const, ticks_add, ticks_diff, ticks_ms

NTP_DELTA = 2208988800  # 1900-01-01 to 1970-01-01
MIN_PLAUSIBLE = 1735689600  # 2025-01-01: an RTC or a server below this is wrong
SERVERS = ("ntp.aliyun.com", "ntp.tencent.com", "cn.pool.ntp.org")
MAX_STEP_S = 300
AGREE_S = 10
HELD_MS = const(6 * 3600 * 1000)  # an RTC drifts well under a second in that time
HELD_MAX = const(4)


class ClockSync:
    def __init__(self, set_utc=None, trusted=False, event=None, servers=SERVERS, every_s=3600,
                 tolerance_s=2, platform_after_s=3600, timeout_ms=3000, max_step_s=MAX_STEP_S, agree_s=AGREE_S):
        self._set_utc = set_utc
        self._trusted = bool(trusted)
        self.event = event
        self.servers = list(servers)
        self.every_ms = every_s * 1000
        self.tolerance_s = tolerance_s
        self.platform_after_ms = platform_after_s * 1000
        self.timeout_ms = timeout_ms
        self.max_step_s = max_step_s
        self.agree_s = agree_s
        self.source = "rtc" if trusted else ""
        self.last_sync = 0  # UTC seconds of the last accepted time
        self._last_ntp_ms = None
        self._held = []  # [step s, source, ticks] of large steps one source asked for
        self.last_step = 0
        self.last_error = ""
        self.progress = 0
        # async callable: one verified request to a platform, whose Date header reaches
        # from_platform. Asked when NTP fails while the clock is untrusted: nothing is stamped then,
        # so no upload would ever bring a Date header on a site whose network blocks NTP.
        self.ask_platform = None

    def trusted(self):
        return self._trusted

    def status(self):
        return {"trusted": self._trusted, "source": self.source, "last_sync": self.last_sync,
                "last_step_s": self.last_step, "held": len(self._held), "error": self.last_error}

    def accept(self, utc, source, settle=True):
        """Take `utc` from `source` as the true time if the rules allow; True when taken. With
        `settle` false the answer may only confirm a large step another source asked for."""
        if utc < MIN_PLAUSIBLE:
            self.last_error = "%s gave an implausible time %d" % (source, utc)
            return False
        step = utc - timeutil.now()
        if self._trusted and (step > self.max_step_s or step < -self.max_step_s):
            other = self._agreeing(step, source)
            if other is None:
                self._hold(step, source)
                return False
            source = "%s + %s" % (source, other)
        elif not settle:
            return False
        stepped = (step > self.tolerance_s or step < -self.tolerance_s) and self._set_utc is not None
        if stepped:
            self._set_utc(utc)
            self.last_step = step
            self._held = []  # claims measured against the old clock
        was = self._trusted
        self._trusted = True
        self.source = source
        self.last_sync = utc
        if not was:
            self._note("clock trusted from %s (%s, step %+d s)" % (source, timeutil.iso_utc(utc), step), "clock.trusted")
        elif stepped:
            self._note("clock stepped by %+d s from %s (%s)" % (step, source, timeutil.iso_utc(utc)), "clock.stepped")
        return True

    def _agreeing(self, step, source):
        """The source of a held claim from another source within agree_s of `step`, else None."""
        now = ticks_ms()
        self._held = [h for h in self._held if ticks_diff(now, h[2]) < HELD_MS]
        for h in self._held:
            if h[1] != source and -self.agree_s <= h[0] - step <= self.agree_s:
                return h[1]
        return None

    def _hold(self, step, source):
        self.last_error = ("%s puts the clock %+d s off, more than clock.max_step_s (%d s): not set until a second "
                           "source agrees" % (source, step, self.max_step_s))
        for h in self._held:
            if h[1] == source:
                new = not -self.agree_s <= h[0] - step <= self.agree_s
                h[0] = step
                h[2] = ticks_ms()
                break
        else:
            new = True
            if len(self._held) >= HELD_MAX:
                self._held.pop(0)
            self._held.append([step, source, ticks_ms()])
        if new:  # once per claim: a source that keeps saying the same fills no ledger
            self._note("clock not stepped: %s" % self.last_error, "clock.held")

    def _note(self, text, code):
        if self.event is not None:
            self.event("clock", text, code)
        else:
            log.info("clock", text)

    def from_platform(self, utc, source="Date header"):
        """A platform told us its time over verified TLS (profile hook / HTTP Date): it sets the clock
        when NTP is silent, and may always confirm a large step NTP asked for."""
        if self._set_utc is None and self._trusted:
            return False  # the board's clock is authoritative (sim) and already trusted
        ntp_fresh = self._last_ntp_ms is not None and ticks_diff(ticks_ms(), self._last_ntp_ms) < self.platform_after_ms
        return self.accept(utc, source, not ntp_fresh)

    async def ntp(self, server):
        """UTC seconds from one SNTP exchange with `server` ("host" or "host:port"), or None
        (every wait bounded)."""
        from nengjian.net import http

        port = 123
        if ":" in server:
            server, p = server.rsplit(":", 1)
            port = int(p)
        try:
            ip = http.resolve(server)
        except http.HttpError as e:
            self.last_error = str(e)
            return None
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setblocking(False)
            pkt = bytearray(48)
            pkt[0] = 0x1B  # LI 0, version 3, mode 3 (client)
            nonce = os.urandom(8)  # our transmit timestamp: random, so only the server can echo it
            pkt[40:48] = nonce
            addr = socket.getaddrinfo(ip, port, 0, socket.SOCK_DGRAM)[0][-1]
            sent = ticks_ms()
            s.sendto(pkt, addr)
            deadline = ticks_add(sent, self.timeout_ms)
            why = None  # what the last datagram ignored was
            while ticks_diff(deadline, ticks_ms()) > 0:
                try:
                    data, src = s.recvfrom(48)
                except OSError:
                    data = None
                if not data:
                    await asyncio.sleep_ms(20)
                    continue
                first = why is None
                if not _same_addr(src, addr):
                    why = "NTP %s: an answer from another address was ignored" % server
                elif len(data) < 48 or data[24:32] != nonce:
                    why = "NTP %s: an answer that does not carry our timestamp back was ignored" % server
                else:
                    utc = _decode(data, ticks_diff(ticks_ms(), sent))
                    if utc is None:
                        self.last_error = "NTP %s: not a usable server answer (unsynchronised or kiss-of-death)" % server
                    return utc
                if first:  # once per exchange: a flood of forged datagrams must not flood the log
                    log.warn("clock", why)
                await asyncio.sleep_ms(0)  # nor hold the event loop
            self.last_error = why or "no NTP answer from %s within %d ms" % (server, self.timeout_ms)
            return None
        except OSError as e:
            self.last_error = "NTP %s: %s" % (server, e)
            return None
        finally:
            s.close()

    async def sync_once(self):
        """Ask the servers in turn until one answer is taken (one held for a large step asks the next
        for agreement)."""
        for server in self.servers:
            utc = await self.ntp(server)
            if utc is not None and self.accept(utc, "ntp " + server):
                self._last_ntp_ms = ticks_ms()
                return True
        log.warn("clock", "NTP failed: %s" % self.last_error)
        return False

    async def run(self, link_up=None):
        """Sync at start and every `every_s`; retry every minute (or every `every_s` if sooner) while
        untrusted or failing."""
        if self._set_utc is None:
            return  # nothing to set: the board's clock is the reference
        while True:
            self.progress += 1
            ok = False
            if link_up is None or link_up():
                ok = await self.sync_once()
                if not ok and not self._trusted and self.ask_platform is not None:
                    try:
                        await self.ask_platform()
                    except Exception as e:  # noqa: BLE001 - a platform's trouble must not end the clock task
                        self.last_error = "asking the platform for its time: %s" % e
            await asyncio.sleep_ms(self.every_ms if ok else min(self.every_ms, 60000))


def _same_addr(a, b):
    """Whether two socket addresses name the same host and port: (ip, port) tuples on lwip (ESP32),
    raw sockaddr bytes on the unix port (family, port, IPv4: the first 8)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and a[:2] == b[:2]
    return bytes(a[:8]) == bytes(b[:8])


def _decode(data, rtt_ms):
    if len(data) < 48:
        return None
    li_vn_mode = data[0]
    if (li_vn_mode & 7) != 4 or (li_vn_mode >> 6) == 3 or not 1 <= data[1] <= 15:
        return None  # not a server reply, unsynchronised, or a kiss-of-death
    secs, frac = struct.unpack_from(">II", data, 40)
    if not secs:
        return None
    return secs - NTP_DELTA + (frac >> 31) + (rtt_ms // 2000)


_clock = None


def init(set_utc=None, trusted=False, event=None, **kw):
    """Create the gateway's clock (the app does this once at boot)."""
    global _clock
    _clock = ClockSync(set_utc, trusted, event, **kw)
    return _clock


def clock():
    global _clock
    if _clock is None:
        _clock = ClockSync()
    return _clock


def trusted():
    return clock().trusted()


def from_platform(utc, source="Date header"):
    return clock().from_platform(utc, source)
