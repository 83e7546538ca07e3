"""Keeps DL/T 645-2007 meters' clocks: a meter's clock is read at boot and once a day, and a bus whose
meter drifted past the site's limit gets a broadcast time sync (08H to 99..99).

Owns reading a meter's clock (also for nengjian.meters.refill), the rules for sending a broadcast,
and their ledger events (`meterclock`). The schedule and the state live in the meter's
nengjian.meters.memwatch.Watch; this module is loaded only while a check runs.

The limit (site meter `clock_max_drift_s`, default 60 s, memwatch.DEFAULT_MAX_DRIFT_S): the
platforms score the statistics time of daily data within 1 minute of 00:00 (SPEC section 2) and a
meter takes its daily freeze by its own clock. Within it nothing is sent (a broadcast costs the
bus its one chance of the day).

Rules of the broadcast (SPEC section 5, *fairly sure*): a meter accepts it at most once a day, not
within 5 minutes of midnight, and only for small deviations (commonly <= 5 min):
- at most one broadcast per bus per CST day (a broadcast sets every meter on the bus, so the day's
  one is the bus's, whichever meter asked); the day is saved before the broadcast is sent
  (memwatch.Watch.mark_synced, a small state file in the data dir), so a restart does not send a second;
- never while the gateway's or the meter's clock is within memwatch.MIDNIGHT_GUARD_S of 00:00 (the
  check is put off 10 minutes), nor when the two are on different days: no meter is moved across
  midnight;
- a meter off by more than BROADCAST_MAX_S is not sent one (it would ignore it): a ledger event
  says a programmed time write (14H, with password) is needed. This firmware never writes a
  meter's password-protected registers.
Each broadcast is a ledger event naming the meter that asked, its offset and the time sent; the
clock is read again RECHECK_S later and that result is an event too (a crew sees a meter that did
not take it).
"""

from nengjian.core import timeutil
from nengjian.proto import dlt645, dlt645_frozen

BROADCAST_MAX_S = 300  # *fairly sure*: larger errors need a programmed write
DAY_S = 86400
RETRY_S = 600
RECHECK_S = 300
CST = timeutil.CST_OFFSET


async def read_clock_offset(drv, bus, line, timeout_ms, gap_ms, clock):
    """Meter clock minus gateway clock, in seconds (the meter's local time taken as CST)."""
    n = await drv.read_di(bus, line, timeout_ms, gap_ms, int(clock.get("date_di", "04000101"), 16))
    if n < 4:
        raise dlt645.UnexpectedReply("meter date length %d" % n)
    date = bytes(drv.value[:4])
    n = await drv.read_di(bus, line, timeout_ms, gap_ms, int(clock.get("time_di", "04000102"), 16))
    if n < 3:
        raise dlt645.UnexpectedReply("meter time length %d" % n)
    t = dlt645_frozen.decode_clock(date, drv.value)
    return timeutil.timestamp(t[0], t[1], t[2], t[3], t[4], t[5]) - CST - timeutil.now()


async def check(w, bus, line, timeout_ms, gap_ms):
    """Read the meter clock of Watch w; send the bus a broadcast time sync where the rules allow."""
    drv = w.drv
    now = timeutil.now()
    try:
        offset = await read_clock_offset(drv, bus, line, timeout_ms, gap_ms, w.mem["clock"])
    except Exception as e:  # noqa: BLE001 - a clock check's trouble must not cost the live reading
        w.clock_read(now, None, e)
        return
    w.clock_read(now, offset)
    if w.sent_at:
        w.sent_at = 0
        w.gw.event("meterclock", "%s: meter clock %s after the broadcast: %+d s" % (
            drv.id, "set" if abs(offset) <= w.clock_limit else "NOT set", offset), "meterclock.after_broadcast")
        return
    if abs(offset) <= w.clock_limit:
        return
    if abs(offset) > BROADCAST_MAX_S:
        w.gw.event("meterclock", "%s: meter clock off by %+d s, beyond what a broadcast time sync sets (%d s): "
                                 "needs a programmed time write (14H, with password)" % (drv.id, offset, BROADCAST_MAX_S), "meterclock.beyond_broadcast")
        return
    now = timeutil.now()
    meter_now = now + offset
    day = timeutil.slot_start(now, DAY_S)
    if w.near_midnight(meter_now) or timeutil.slot_start(meter_now, DAY_S) != day:
        w.next_check = now + RETRY_S
        return
    if w.synced_day.get(w.bus_name) == day:
        w.gw.event("meterclock", "%s: meter clock off by %+d s: bus %s had its broadcast time sync today, next "
                                 "one tomorrow" % (drv.id, offset, w.bus_name), "meterclock.broadcast_done")
        return
    w.mark_synced(day)
    now = timeutil.now()
    await drv.time_sync(bus, line, timeutil.civil(now + CST), gap_ms)
    w.sent_at = now
    w.next_check = now + RECHECK_S
    w.gw.event("meterclock", "%s: meter clock off by %+d s (limit %d s): broadcast time sync on bus %s, sent %s" % (
        drv.id, offset, w.clock_limit, w.bus_name, timeutil.cst_text(now)), "meterclock.broadcast")
