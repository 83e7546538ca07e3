"""Keeps the clocks of Modbus meters whose profile names their time registers (profile `clock`): the
meter's clock is read at boot and once a day, and a meter that drifted past the site's limit gets
its time written with FC 16 (write multiple registers), then read back.

Owns the formats of those registers and the rules for writing them, and their ledger events
(`meterclock`, as nengjian.meters.meterclock for DL/T 645). The schedule and the state live in the
meter's nengjian.meters.memwatch.Watch; this module is loaded only while a check runs.

Formats (profile clock.format; the meter's local time, taken as CST as for DL/T 645):
- "u16x6": six registers, binary: year, month, day, hour, minute, second. A year below 100 is
  read as 20YY and written back in the meter's own style (two digits if it gave two).
- "bcd-yymmddhhmmss": three registers of two BCD bytes each, high byte first: YY MM, DD hh, mm ss.

SPEC section 5 names FC 16 "for time set" but says nothing of when a Modbus meter may be set. We
follow the DL/T 645 rules, so that a meter's daily figures behave the same whatever its protocol
*our choice*:
- only past the site meter's `clock_max_drift_s` (memwatch.DEFAULT_MAX_DRIFT_S), and only while
  the gateway's clock is trusted (memwatch.Watch.after);
- at most one write per meter per CST day; the day is saved before the write is made
  (memwatch.Watch.mark_set, beside the DL/T 645 broadcast days in memwatch.SYNC_FILE), so a restart
  does not write a second time that day;
- never while the gateway's or the meter's clock is within memwatch.MIDNIGHT_GUARD_S of 00:00
  (the check is put off RETRY_S), nor while the two are on different days: no meter is moved
  across midnight, which would repeat or skip its day. A meter a whole day or more off is set
  anyway: its day figures are already wrong, and waiting would never end;
- a profile whose clock is not `writable` is only read: a drift past the limit is an event that
  asks for the clock to be set on site.
A programmed write has no 5-minute ceiling as a broadcast has. Each write is one ledger event with
the offset before and the offset read back after it.
"""

from nengjian.core import timeutil

DAY_S = 86400
RETRY_S = 600
CST = timeutil.CST_OFFSET
REGISTERS = {"u16x6": 6, "bcd-yymmddhhmmss": 3}


def _bcd(b):
    return (b >> 4) * 10 + (b & 0x0F)


def _to_bcd(v):
    return ((v // 10) << 4) | (v % 10)


def decode(fmt, regs):
    """(year, month, day, hour, minute, second) of the registers as read."""
    if fmt == "u16x6":
        y = regs[0]
        t = (y + 2000 if y < 100 else y, regs[1], regs[2], regs[3], regs[4], regs[5])
    else:
        b = []
        for r in regs[:3]:
            b.append(_bcd(r >> 8))
            b.append(_bcd(r & 0xFF))
        t = (2000 + b[0], b[1], b[2], b[3], b[4], b[5])
    if not (1 <= t[1] <= 12 and 1 <= t[2] <= 31 and t[3] < 24 and t[4] < 60 and t[5] < 60):
        raise ValueError("not a time: %r" % (t,))
    return t


def encode(fmt, t, short_year=False):
    """The registers that hold civil time t in fmt (short_year: u16x6 with a two-digit year)."""
    if fmt == "u16x6":
        return [t[0] % 100 if short_year else t[0], t[1], t[2], t[3], t[4], t[5]]
    v = (t[0] % 100, t[1], t[2], t[3], t[4], t[5])
    return [(_to_bcd(v[i]) << 8) | _to_bcd(v[i + 1]) for i in (0, 2, 4)]


async def read_offset(drv, bus, line, timeout_ms, gap_ms, clock):
    """(meter clock minus gateway clock in seconds, whether the meter gave a two-digit year)."""
    fmt = clock["format"]
    regs = await drv.read_raw(bus, line, timeout_ms, gap_ms, clock.get("fc", 3), clock["register"], REGISTERS[fmt])
    t = decode(fmt, regs)
    return timeutil.timestamp(t[0], t[1], t[2], t[3], t[4], t[5]) - CST - timeutil.now(), regs[0] < 100


async def check(w, bus, line, timeout_ms, gap_ms):
    """Read the meter clock of Watch w; write the meter's time where the rules allow."""
    drv = w.drv
    clock = w.mem["clock"]
    now = timeutil.now()
    try:
        offset, short_year = await read_offset(drv, bus, line, timeout_ms, gap_ms, clock)
    except Exception as e:  # noqa: BLE001 - a clock check's trouble must not cost the live reading
        w.clock_read(now, None, e)
        return
    w.clock_read(now, offset)
    if abs(offset) <= w.clock_limit:
        return
    if not clock.get("writable"):
        w.gw.event("meterclock", "%s: meter clock off by %+d s (limit %d s); its profile does not let the "
                                 "gateway write it: set it on site" % (drv.id, offset, w.clock_limit), "meterclock.not_writable")
        return
    now = timeutil.now()
    meter_now = now + offset
    day = timeutil.slot_start(now, DAY_S)
    if w.near_midnight(meter_now) or (timeutil.slot_start(meter_now, DAY_S) != day and abs(offset) < DAY_S):
        w.next_check = now + RETRY_S
        return
    if w.set_day == day:
        w.gw.event("meterclock", "%s: meter clock off by %+d s: set once today already, next write "
                                 "tomorrow" % (drv.id, offset), "meterclock.written_today")
        return
    w.mark_set(day)
    now = timeutil.now()
    try:
        await drv.write_registers(bus, line, timeout_ms, gap_ms, clock["register"],
                                  encode(clock["format"], timeutil.civil(now + CST), short_year))
        after, _ = await read_offset(drv, bus, line, timeout_ms, gap_ms, clock)
    except Exception as e:  # noqa: BLE001 - as above; the day's one write is spent
        w.gw.event("meterclock", "%s: meter clock off by %+d s (limit %d s): write of register %d failed "
                                 "(%s: %s)" % (drv.id, offset, w.clock_limit, clock["register"], type(e).__name__, e), "meterclock.write_failed")
        return
    w.offset = after
    w.gw.event("meterclock", "%s: meter clock off by %+d s (limit %d s): written %s by FC 16 at register %d, "
                             "read back %+d s: %s" % (drv.id, offset, w.clock_limit, timeutil.cst_text(now),
                                                      clock["register"], after,
                                                      "set" if abs(after) <= w.clock_limit else "NOT set"), "meterclock.written")
