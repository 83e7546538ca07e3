"""Reads one DL/T 645-2007 or -1997 electricity meter through a Bus, one data identifier at a time.

The meter's address is its 12-digit number from the site config. Each wanted point names a DI; the
value bytes (after the DI echo, +33H removed) of the reply, and of its follow-up frames while the
reply says more (2007: C bit D5, requested with 12H and a frame sequence number), are collected in
one preallocated buffer and decoded as low-byte-first BCD. Field width, decimals and sign come from
the codec's DI table (nengjian.proto.dlt645.item/item97) unless the profile gives `bytes`,
`decimals`, `signed` and `byte_offset` (block DIs such as 0201FF00, three voltages in one reply).

Errors stay typed: an error reply raises dlt645.MeterErrorReply with its bits named; checksum,
address and DI mismatches raise the codec's FrameError subclasses. In read(), an error reply to one
DI refuses that DI only: its points are unsupported (nengjian.meters.poller.Unsupported: left out,
asked again every `unsupported_retry_s`) and the other DIs are read on. Every error bit counts, not
only "no such data": each one a meter sets for a read (other, unauthorised, wrong DI) is a fact of
that DI on that meter, and a meter that refuses every DI still fails its poll.

1997 meters: follow-up frames (A1H) are not requested *unsure how -1997 meters number them*; the
first frame's value is used.

Meter memory: a 2007 profile's `memory` (frozen data, meter clock) is kept in .memory; where the
site uses it, nengjian.meters.memwatch sets .watch (and .after, its coroutine): after each successful
read, watch.due() is asked and after() run when it says so, before the poller hands the reading on
(refilled boundary readings must reach the interval engine before the live one). Nothing of it is loaded for a meter without memory.

Preamble: FE bytes before each request (profile `preamble`, site meter `preamble`, default 4).
"""

import asyncio

from nengjian.bus.rs485 import Steps
from nengjian.core.decimal import put
from nengjian.meters.poller import Unsupported
from nengjian.proto import dlt645
from nengjian.proto.framefinder import FrameFinder

MAX_FOLLOW_UPS = 15
# One value buffer for every DL/T 645 meter: read() decodes it before its next await, so meters on
# other buses (other pollers) cannot overwrite it in between.
_VALUE = bytearray(240)


class Dlt645Meter:
    def __init__(self, cfg, prof, wanted, v1997=None):
        from nengjian.meters import profile as profiles  # construction only: dropped after boot (app)

        self.protocol = prof["protocol"]
        if v1997 is None:
            v1997 = self.protocol == "dlt645-1997"
        self.v1997 = v1997
        self.addr = dlt645.address_bytes(str(cfg["address"]))
        self.preamble = cfg.get("preamble", prof.get("preamble", 4))
        self.di_bytes = 2 if v1997 else 4
        self.func = dlt645.C97_READ if v1997 else dlt645.C_READ
        self.value = _VALUE
        self._finder = None
        self._finder_rx = None
        self._more = False
        self.unsupported = Unsupported(cfg)
        self.id = cfg.get("id")
        self.memory = None if v1997 else prof.get("memory")
        self.after = None  # set by nengjian.meters.memwatch: async after(bus, line, timeout_ms, gap_ms)
        self.watch = None  # and its memwatch.Watch: after() runs only when watch.due()
        ratio = cfg.get("ratio", 1)
        reads = {}
        for name in wanted:
            p = prof["points"][name]
            di = int(p["di"], 16)
            it = dlt645.item97(di) if v1997 else dlt645.item(di)
            nbytes = p.get("bytes", it[0] if it else 0)
            if not nbytes:
                raise ValueError("point %s: DI %s is not in the codec's table: give bytes" % (name, p["di"]))
            dec = p.get("decimals", it[1] if it else 0)
            signed = p.get("signed", it[2] if it else False)
            mult = p.get("multiplier", 1) * (ratio if p.get("ratio") else 1)
            reads.setdefault(di, []).append((name, p.get("byte_offset", 0), nbytes, signed, mult,
                                             profiles.offset_mantissa(p, -dec), -dec))
        self.reads = list(reads.items())
        # A reply's usual length (no preamble) per DI: the bus sleeps once for it
        self._expect = {}
        for di, points in self.reads:
            end = max(off + nbytes for _, off, nbytes, _, _, _, _ in points)
            self._expect[di] = dlt645.MIN_FRAME + self.di_bytes + end
        self._steps = _Read(self)

    def _ours(self, rx, s):
        if not rx[s + 8] & dlt645.DIR_BIT:
            return False  # our own request (echo) or another master's
        a = self.addr
        for i in range(6):
            if a[i] != dlt645.WILDCARD_BYTE and rx[s + 1 + i] != a[i]:
                return False
        return True

    def _bind(self, bus, expect):
        if self._finder is None or self._finder_rx is not bus.rx:
            self._finder = FrameFinder(bus.rx, dlt645.bytes_needed, dlt645.frame_start, self._ours,
                                       dlt645.MIN_FRAME)
            self._finder_rx = bus.rx
        self._finder.reset(expect)

    async def _exchange(self, bus, line, timeout_ms, gap_ms, tx_len, func, expect=0):
        self._bind(bus, expect)
        got = await bus.transact(line, tx_len, self._finder.frame, timeout_ms, gap_ms)
        buf, n = self._finder.view(bus.rx, got)
        c, d, length = dlt645.parse_reply(buf, n, self.addr, func)
        db = self.di_bytes
        if length < db:
            raise dlt645.UnexpectedReply("reply shorter than its DI")
        return buf, c, d, length

    def _check_di(self, buf, d, di):
        for k in range(self.di_bytes):
            if (buf[d + k] - dlt645.BIAS) & 0xFF != (di >> (8 * k)) & 0xFF:
                raise dlt645.UnexpectedReply("DI echo differs")

    def _copy(self, buf, src, count, total):
        if total + count > len(self.value):
            raise dlt645.FrameError("value longer than %d bytes" % len(self.value))
        v = self.value
        for k in range(count):
            v[total + k] = (buf[src + k] - dlt645.BIAS) & 0xFF
        return total + count

    def _begin_di(self, bus, line, timeout_ms, gap_ms, di):
        """Build the read of di and start the bus's transaction (bus.begin); the caller holds the lock."""
        if self.v1997:
            n = dlt645.build_read97(bus.tx, self.addr, di, self.preamble)
        else:
            n = dlt645.build_read(bus.tx, self.addr, di, self.preamble)
        self._bind(bus, self._expect.get(di, 0))
        return bus.begin(line, n, self._finder.frame, timeout_ms, gap_ms)

    def _first_frame(self, bus, di):
        """After the transaction's last step: the first reply's value bytes into self.value; returns
        their count. self._more: the meter has follow-up frames (2007)."""
        got = bus.end()
        finder = self._finder
        buf = finder.buffer(bus.rx)
        d = dlt645.check_reply(buf, finder.count(got), self.addr, self.func)
        length = buf[d - 1]
        db = self.di_bytes
        if length < db:
            raise dlt645.UnexpectedReply("reply shorter than its DI")
        self._check_di(buf, d, di)
        self._more = buf[d - 2] & dlt645.MORE_BIT and not self.v1997
        return self._copy(buf, d + db, length - db, 0)

    async def _follow_ups(self, bus, line, timeout_ms, gap_ms, di, total):
        db = self.di_bytes
        seq = 0
        c = dlt645.MORE_BIT
        while c & dlt645.MORE_BIT:
            seq += 1
            if seq > MAX_FOLLOW_UPS:
                raise dlt645.UnexpectedReply("more than %d follow-up frames" % MAX_FOLLOW_UPS)
            n = dlt645.build_read_next(bus.tx, self.addr, di, seq, self.preamble)
            buf, c, d, length = await self._exchange(bus, line, timeout_ms, gap_ms, n,
                                                     dlt645.C_READ_NEXT)
            self._check_di(buf, d, di)
            if length < db + 1 or (buf[d + length - 1] - dlt645.BIAS) & 0xFF != seq:
                raise dlt645.UnexpectedReply("follow-up frame %d out of sequence" % seq)
            total = self._copy(buf, d + db, length - db - 1, total)
        return total

    async def read_di(self, bus, line, timeout_ms, gap_ms, di):
        """Value bytes of one DI (plain, low byte first) into self.value; returns their count."""
        lock = bus.lock
        if not lock.take():
            await lock.acquire()
        try:
            wait = self._begin_di(bus, line, timeout_ms, gap_ms, di)
            while wait:
                await asyncio.sleep_ms(wait)
                wait = bus.step()
            total = self._first_frame(bus, di)
            if self._more:
                total = await self._follow_ups(bus, line, timeout_ms, gap_ms, di, total)
            return total
        finally:
            lock.release()

    def read(self, bus, line, timeout_ms, gap_ms, out):
        """Fill `out` (name -> Decimal) with the points of every DI the meter does not refuse.
        Awaited: the driver's reusable Steps (_Read), so a read makes no coroutine object."""
        return self._steps.run(bus, line, timeout_ms, gap_ms, out)

    def _decode(self, di, points, total, out):
        self.unsupported.answered(di, points)
        for name, off, nbytes, signed, mult, add, e in points:
            if off + nbytes > total:
                raise dlt645.UnexpectedReply("DI 0x%X: %d value bytes, point %s needs %d"
                                             % (di, total, name, off + nbytes))
            raw = dlt645.bcd_int(self.value, off, nbytes, signed, 0)
            put(out, name, raw * mult + add, e)

    async def time_sync(self, bus, line, t, gap_ms=0):
        """Broadcast time sync (08H) to every meter on the bus; meters do not answer."""
        async with bus.lock:
            n = dlt645.build_time_sync(bus.tx, t, self.preamble)
            await bus.send(line, n, gap_ms)


class _Read(Steps):
    """Dlt645Meter.read as the bus's steps: a unit is a (DI, points) of drv.reads; an error reply
    refuses that DI only (module doc)."""

    def first(self):
        self.drv.unsupported.begin()
        self.units = self.drv.reads

    def skip(self, unit):
        return self.drv.unsupported.skip(unit[0])

    def begin(self, unit):
        return self.drv._begin_di(self.bus, self.line, self.timeout_ms, self.gap_ms, unit[0])

    def reply(self, unit):
        drv = self.drv
        try:
            total = drv._first_frame(self.bus, unit[0])
        except dlt645.MeterErrorReply as err:
            drv.unsupported.refused(unit[0], unit[1], err)
            return
        if drv._more:  # follow-up frames, the lock still ours
            self.sub = drv._follow_ups(self.bus, self.line, self.timeout_ms, self.gap_ms, unit[0], total)
            return
        drv._decode(unit[0], unit[1], total, self.out)

    def resumed(self, unit):
        self.release()
        err = self.error
        if err is not None:
            if not isinstance(err, dlt645.MeterErrorReply):
                raise err
            self.drv.unsupported.refused(unit[0], unit[1], err)
            return
        self.drv._decode(unit[0], unit[1], self.value, self.out)

    def last(self):
        drv = self.drv
        drv.unsupported.end(self.out)
        w = drv.watch
        if w is not None:
            if w.due():  # the test first: no coroutine per read while nothing is due
                self.sub = w.after(self.bus, self.line, self.timeout_ms, self.gap_ms)
        elif drv.after is not None:
            self.sub = drv.after(self.bus, self.line, self.timeout_ms, self.gap_ms)
