"""Refill from a DL/T 645-2007 meter's own memory: after a gap in the gateway's readings, the boundary
readings it missed are taken from the meter's frozen data.

Owns: planning which missed boundaries a meter's freezes cover (plan), reading and checking them,
and handing them to the gateway as readings of quality records.REFILLED. Loaded only while a
refill runs (nengjian.meters.memwatch).

When: after a driver's read, before the poller hands the live reading on, memwatch.Watch sees
whether the last reading of the meter's refilled point (the interval engine's, so a boot after a
power cut sees the reading from before the cut) is followed by at least one period boundary with no
reading within tolerance (nengjian.values.intervals); if so run() refills the gap once, then the
live reading follows. A first reading ever is no gap: nothing before it is asked for.

Which freeze (profile `memory`, SPEC section 5, *fairly sure* for the DIs):
- a day boundary (00:00 CST): the daily freeze (日冻结) if within its depth;
- a boundary on the hourly freeze's interval (整点冻结; interval_s 3600, or 900/1800 on a meter set
  so): the hourly freeze if within its depth; also a day boundary the daily depth no longer holds;
- a month boundary neither holds: the settlement value N months back (assumed to settle on the 1st
  00:00 *unsure*: a meter's settlement day is programmable). It has no freeze time to read back,
  so N comes from the meter clock's month; nothing else checks it.
Other boundaries (the quarter hours of a 15-minute site whose meter freezes hourly) stay missing,
or estimated where the item says so, between refilled and measured ones: today's rule.

Checks before a frozen value is used: the meter clock is read first (date and time DIs) and must
be within the interval engine's tolerance of the gateway's (a freeze is taken by the meter's clock:
a meter 10 minutes off froze 10 minutes off the boundary); the N-th freeze is found by counting
back from the meter clock, and the freeze time read back must be the boundary itself, to the
minute, or that freeze is not used (public samples disagree on DI0 numbering; a meter that was
off itself skipped freezes). Each refill is one ledger event (`refill`) naming the meter, the
boundaries and the freezes used; every freeze not used is an event too.
"""

from nengjian.core import records, timeutil
from nengjian.core.decimal import Decimal
from nengjian.meters.meterclock import read_clock_offset
from nengjian.proto import dlt645, dlt645_frozen

DAY_S = 86400
CST = timeutil.CST_OFFSET
HOURLY = 0
DAILY = 1
SETTLEMENT = 2
KIND_NAMES = ("hourly", "daily", "settlement")
HOURLY_DEPTH = 24  # *unsure*: varies by model; the profile says
DAILY_DEPTH = 62
SETTLEMENT_DEPTH = 12


def _month_index(ts):
    y, m = timeutil.civil(ts + CST)[:2]
    return y * 12 + m - 1


def freeze_for(b, meter_now, mem):
    """(kind, n) of the freeze that holds boundary b (UTC seconds) for a meter whose clock reads
    meter_now (UTC seconds, as the meter's local time taken as CST), or None."""
    local = b + CST
    daily = mem.get("daily")
    hourly = mem.get("hourly")
    if local % DAY_S == 0 and daily:
        latest = timeutil.slot_start(meter_now, DAY_S)
        n = (latest - b) // DAY_S + 1
        if 1 <= n <= daily.get("depth", DAILY_DEPTH):
            return DAILY, n
    if hourly:
        step = hourly.get("interval_s", 3600)
        if local % step == 0:
            latest = timeutil.slot_start(meter_now, step)
            n = (latest - b) // step + 1
            if 1 <= n <= hourly.get("depth", HOURLY_DEPTH):
                return HOURLY, n
    settle = mem.get("settlement")
    if settle and local % DAY_S == 0 and timeutil.civil(local)[2] == 1:
        n = _month_index(meter_now) - _month_index(b) + 1
        if 1 <= n <= settle.get("depth", SETTLEMENT_DEPTH) and meter_now >= b:
            return SETTLEMENT, n
    return None


def missed(last_ts, now, period, tolerance):
    """(first, last) boundaries missed after a reading at last_ts, for a reading now; first > last: none."""
    s_now = timeutil.slot_start(now, period)
    last = s_now if now - s_now > tolerance else s_now - period
    return timeutil.slot_start(last_ts, period) + period, last


def plan(last_ts, now, period, tolerance, mem, meter_offset):
    """[(boundary, kind, n)] oldest first: the missed boundaries the meter's freezes hold."""
    first, last = missed(last_ts, now, period, tolerance)
    out = []
    b = first
    while b <= last:
        f = freeze_for(b, now + meter_offset, mem)
        if f is not None:
            out.append((b, f[0], f[1]))
        b += period
    return out


def boundary_minute(b):
    """(year, month, day, hour, minute) of boundary b in CST: what its freeze time must read."""
    return tuple(timeutil.civil(b + CST)[:5])


def _scale(drv, point):
    """(multiplier, offset mantissa) of the live point, or None: frozen energies are XXXXXX.XX kWh, so
    a point read at another resolution is not refilled (its values would not be the live ones')."""
    for _di, points in drv.reads:
        for p in points:
            if p[0] == point and p[6] == -dlt645_frozen.ENERGY_DECIMALS:
                return p[4], p[5]
    return None


async def run(watch, bus, line, timeout_ms, gap_ms, t, now):
    """Refill the gap after the reading at t (watch: a nengjian.meters.memwatch.Watch). Never raises:
    a refill's trouble must not cost the live reading; it is a ledger event."""
    try:
        await _refill(watch, bus, line, timeout_ms, gap_ms, t, now)
    except Exception as e:  # noqa: BLE001 - see above
        watch.gw.event("refill", "%s: frozen readings not taken (%s: %s): the gap stays as it is" % (
            watch.drv.id, type(e).__name__, e), "refill.not_taken")


async def _refill(watch, bus, line, timeout_ms, gap_ms, t, now):
    gw = watch.gw
    drv = watch.drv
    mem = watch.mem
    scale = _scale(drv, watch.point)
    if scale is None:
        gw.event("refill", "%s: memory.point %s is no XXXXXX.XX kWh point read here: not refilled" % (
            drv.id, watch.point), "refill.no_point")
        return
    iv = gw.intervals
    offset = await read_clock_offset(drv, bus, line, timeout_ms, gap_ms, mem.get("clock") or {})
    if abs(offset) > iv.tolerance:
        gw.event("refill", "%s: meter clock off by %d s (more than %d s): its freezes were not taken at "
                           "the boundaries, none used" % (drv.id, offset, iv.tolerance), "refill.clock_off")
        return
    got = []
    counts = [0, 0, 0]
    for b, kind, n in plan(t, now, iv.period, iv.tolerance, mem, offset):
        raw = await _take(gw, drv, mem, bus, line, timeout_ms, gap_ms, b, kind, n)
        if raw is not None:
            got.append((b, Decimal(raw * scale[0] + scale[1], -dlt645_frozen.ENERGY_DECIMALS)))
            counts[kind] += 1
    for b, value in got:  # oldest first: the values they close are uploaded in order
        gw.store.append([records.READING, b, drv.id, watch.point, value, records.REFILLED])
        for index in watch.items:
            iv.feed(index, b, value, records.REFILLED)
    watch.refills += 1
    watch.refilled_at = now
    first, last = missed(t, now, iv.period, iv.tolerance)
    gw.event("refill", "%s: %d of %d missed boundary reading(s) %s .. %s refilled from the meter's frozen "
                       "data (%d hourly, %d daily, %d settlement; meter clock %+d s)" % (
                           drv.id, len(got), (last - first) // iv.period + 1, timeutil.cst_text(first),
                           timeutil.cst_text(last), counts[HOURLY], counts[DAILY], counts[SETTLEMENT], offset), "refill.done")


async def _take(gw, drv, mem, bus, line, timeout_ms, gap_ms, b, kind, n):
    """The raw frozen total (XXXXXX.XX) of boundary b, or None if it is not usable."""
    spec = mem[KIND_NAMES[kind]]
    try:
        if kind != SETTLEMENT:
            count = await drv.read_di(bus, line, timeout_ms, gap_ms, dlt645_frozen.frozen_di(int(spec["time_di"], 16), n))
            if count < dlt645_frozen.FREEZE_TIME_BYTES:
                raise dlt645.UnexpectedReply("freeze time length %d" % count)
            at = dlt645_frozen.decode_freeze_time(drv.value)
            if at != boundary_minute(b):
                gw.event("refill", "%s: %s freeze %d reads %04d-%02d-%02d %02d:%02d, not %s: not used" % (
                    drv.id, KIND_NAMES[kind], n, at[0], at[1], at[2], at[3], at[4], timeutil.cst_text(b)[:16]), "refill.freeze_time")
                return None
        count = await drv.read_di(bus, line, timeout_ms, gap_ms, dlt645_frozen.frozen_di(int(spec["energy_di"], 16), n))
        if count < dlt645_frozen.ENERGY_BYTES:
            raise dlt645.UnexpectedReply("frozen energy length %d" % count)
        return dlt645_frozen.decode_frozen_energy(drv.value)
    except (dlt645.MeterErrorReply, dlt645.FrameError, ValueError) as e:
        gw.event("refill", "%s: %s freeze %d for %s not read (%s): not used" % (
            drv.id, KIND_NAMES[kind], n, timeutil.cst_text(b), e), "refill.freeze_unread")
        return None
