"""Trusted time: NTP over UDP, the platform's time where a profile returns it, and the trust flag.

Readings are stamped only while `trusted()` is true (the pollers ask; uploads wait for it too, so
an uploadDate is never made up). The clock becomes trusted by one plausible NTP answer, or - when
no NTP server answers - by a platform's time (`from_platform(utc, source)`, the hook a profile calls
when a response carries the server time; the HTTP Date header can be wired to it too). NTP wins
over a platform: a platform time is taken only when NTP has not answered for `platform_after_s`.

The board supplies the RTC: `set_utc(seconds)` where the clock can be set (ESP32: machine.RTC),
and whether the RTC is trusted at boot (the sim: the host keeps its clock by NTP, and tests may run
it fast, so nothing here may set it). A step larger than `tolerance_s` is written to the ledger.
"""

import asyncio
import socket
import struct

from nengjian.core import log, timeutil
from nengjian.core.compat import ticks_add, ticks_diff, ticks_ms

NTP_DELTA = 2208988800  # 1900-01-01 to 1970-01-01
MIN_PLAUSIBLE = 1735689600  # 2025-01-01: an RTC or a server below this is wrong
SERVERS = ("ntp.aliyun.com", "ntp.tencent.com", "cn.pool.ntp.org")


class ClockSync:
    def __init__(self, set_utc=None, trusted=False, event=None, servers=SERVERS, every_s=3600,
                 tolerance_s=2, platform_after_s=3600, timeout_ms=3000):
        self._set_utc = set_utc
        self._trusted = bool(trusted)
        self.event = event
        self.servers = list(servers)
        self.every_ms = every_s * 1000
        self.tolerance_s = tolerance_s
        self.platform_after_ms = platform_after_s * 1000
        self.timeout_ms = timeout_ms
        self.source = "rtc" if trusted else ""
        self.last_sync = 0  # UTC seconds of the last accepted time
        self._last_ntp_ms = None
        self.last_step = 0
        self.last_error = ""
        self.progress = 0

    def trusted(self):
        return self._trusted

    def status(self):
        return {"trusted": self._trusted, "source": self.source, "last_sync": self.last_sync,
                "last_step_s": self.last_step, "error": self.last_error}

    def accept(self, utc, source):
        """Take `utc` as the true time; False if it is implausible."""
        if utc < MIN_PLAUSIBLE:
            self.last_error = "%s gave an implausible time %d" % (source, utc)
            return False
        step = utc - timeutil.now()
        if (step > self.tolerance_s or step < -self.tolerance_s) and self._set_utc is not None:
            self._set_utc(utc)
            self.last_step = step
            if self.event is not None and self._trusted:
                self.event("clock", "clock stepped by %d s from %s" % (step, source))
        was = self._trusted
        self._trusted = True
        self.source = source
        self.last_sync = utc
        if not was:
            if self.event is not None:
                self.event("clock", "clock trusted from %s (%s, step %d s)" % (source, timeutil.iso_utc(utc), step))
            else:
                log.info("clock", "clock trusted from %s" % source)
        return True

    def from_platform(self, utc, source="platform"):
        """A platform told us its time (profile hook / HTTP Date): used when NTP is silent."""
        if self._last_ntp_ms is not None and ticks_diff(ticks_ms(), self._last_ntp_ms) < self.platform_after_ms:
            return False
        if self._set_utc is None and self._trusted:
            return False  # the board's clock is authoritative (sim) and already trusted
        return self.accept(utc, source)

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
            sent = ticks_ms()
            s.sendto(pkt, socket.getaddrinfo(ip, port, 0, socket.SOCK_DGRAM)[0][-1])
            deadline = ticks_add(sent, self.timeout_ms)
            while ticks_diff(deadline, ticks_ms()) > 0:
                try:
                    data = s.recv(48)
                except OSError:
                    data = None
                if data:
                    return _decode(data, ticks_diff(ticks_ms(), sent))
                await asyncio.sleep_ms(20)
            self.last_error = "no NTP answer from %s within %d ms" % (server, self.timeout_ms)
            return None
        except OSError as e:
            self.last_error = "NTP %s: %s" % (server, e)
            return None
        finally:
            s.close()

    async def sync_once(self):
        for server in self.servers:
            utc = await self.ntp(server)
            if utc is not None and self.accept(utc, "ntp " + server):
                self._last_ntp_ms = ticks_ms()
                return True
        log.warn("clock", "NTP failed: %s" % self.last_error)
        return False

    async def run(self, link_up=None):
        """Sync at start and every `every_s`; retry every minute while untrusted or failing."""
        if self._set_utc is None:
            return  # nothing to set: the board's clock is the reference
        while True:
            self.progress += 1
            ok = False
            if link_up is None or link_up():
                ok = await self.sync_once()
            await asyncio.sleep_ms(self.every_ms if ok else 60000)


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


def from_platform(utc, source="platform"):
    return clock().from_platform(utc, source)
