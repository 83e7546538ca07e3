"""Watches the DL/T 645-2007 meters whose profile has `memory` (frozen data, meter clock) for work
their memory can do, and loads the module that does it only while it runs: nengjian.meters.refill
after a gap in the gateway's readings, nengjian.meters.meterclock when a meter's clock is due a
check (at boot, then daily). Both are dropped again afterwards (compat.unload): a gap or a clock
check is rare, the heap is not. This module holds only the per-meter state and the cheap tests
run after every read.

Modbus meters whose profile names clock registers (profile `clock`) are watched the same way, for
their clock only: the check is nengjian.meters.modbusclock (a programmed FC 16 write to that meter,
not a broadcast), on the same schedule and under the same limit and midnight rule.

Loaded by nengjian.app only where such a meter is configured. Site meter keys: `refill` (default
true) and `clock_max_drift_s` (default DEFAULT_MAX_DRIFT_S; 0 never sets the meter's clock).
"""

from nengjian.core import statefile, timeutil
from nengjian.core.compat import unload

# Why 60 s: the platforms score the statistics time of daily data within 1 minute of 00:00 (SPEC
# section 2), and a meter takes its daily freeze by its own clock.
DEFAULT_MAX_DRIFT_S = 60
MIDNIGHT_GUARD_S = 300 + 60  # SPEC: no broadcast within 5 minutes of midnight; plus a minute of drift
DAY_S = 86400
RETRY_S = 600

synced_day = {}  # bus name -> CST day start of its last broadcast time sync (it sets the whole bus)
set_days = {}  # Modbus meter id -> CST day start of its last clock write (nengjian.meters.modbusclock)
# Where both are kept (attach: the data dir's SYNC_FILE), so that a restart neither sends a bus a second
# broadcast nor writes a Modbus meter's clock a second time the same day; None: RAM only.
SYNC_FILE = "meterclock.json"
_sync_path = [None]


def near_midnight(ts):
    s = (ts + timeutil.CST_OFFSET) % DAY_S
    return s < MIDNIGHT_GUARD_S or s > DAY_S - MIDNIGHT_GUARD_S


def missed(last_ts, now, period, tolerance):
    """(first, last) boundaries missed after a reading at last_ts, for a reading now; first > last: none.
    (nengjian.meters.refill.missed, kept here too so that the test after each read needs no refill.)"""
    s_now = timeutil.slot_start(now, period)
    last = s_now if now - s_now > tolerance else s_now - period
    return timeutil.slot_start(last_ts, period) + period, last


def load_synced(path):
    """Take up the broadcast days kept at path. A file that cannot be used (statefile logs why) or an
    entry that is no day counts as no broadcast yet: at worst one more, which a meter that took one
    today ignores."""
    _sync_path[0] = path
    doc = statefile.load(path, 1)
    buses = doc.get("buses") if doc is not None else None
    if isinstance(buses, dict):
        for name in buses:
            if isinstance(buses[name], int):
                synced_day[name] = buses[name]
    meters = doc.get("meters") if doc is not None else None
    if isinstance(meters, dict):
        for name in meters:
            if isinstance(meters[name], int):
                set_days[name] = meters[name]


def _save_days():
    if _sync_path[0] is not None:
        statefile.save(_sync_path[0], {"buses": synced_day, "meters": set_days}, 1)


class Watch:
    """One meter's memory work; its driver runs after() after each successful read, before the poller
    hands the reading on (refilled readings must reach the interval engine before the live one)."""

    def __init__(self, gw, drv, cfg, bus_name, trusted):
        self.gw = gw
        self.drv = drv
        self.mem = drv.memory
        self.trusted = trusted
        self.bus_name = bus_name
        self.point = self.mem.get("point")
        has_freezes = self.mem.get("hourly") or self.mem.get("daily") or self.mem.get("settlement")
        self.items = gw.items_by_point.get((drv.id, self.point), ()) if (
            cfg.get("refill", True) and has_freezes) else ()
        self.clock_limit = cfg.get("clock_max_drift_s", DEFAULT_MAX_DRIFT_S) if "clock" in self.mem else 0
        self.synced_day = synced_day  # shared by every Watch (meterclock writes it)
        self.near_midnight = near_midnight
        self.next_check = 0  # meter clock: at the first read, then daily
        self.sent_at = 0  # a broadcast this meter asked for, checked again
        self.set_day = set_days.get(drv.id, 0)  # Modbus: CST day start of its last clock write (one a day)
        self.offset = None  # meter clock minus gateway clock at the last check (s)
        self.checked_at = 0  # when that offset was read
        self.refills = 0
        self.refilled_at = 0  # the last refill's time

    def clock_read(self, now, offset, error=None):
        """A clock check's reading (meterclock, modbusclock): the offset, next check in a day; or, with
        error, a ledger event and another try in RETRY_S."""
        if error is not None:
            self.next_check = now + RETRY_S
            self.gw.event("meterclock", "%s: meter clock not read (%s: %s)" % (self.drv.id, type(error).__name__,
                                                                              error), "meterclock.not_read")
            return
        self.offset = offset
        self.checked_at = now
        self.next_check = now + DAY_S

    def mark_synced(self, day):
        """Record this meter's bus's broadcast of `day` (a CST day start) before it is sent (meterclock): a
        cut after the save costs at most that day's broadcast, never a second one. A failed save is
        logged (statefile); RAM still holds it."""
        synced_day[self.bus_name] = day
        _save_days()

    def mark_set(self, day):
        """Record this Modbus meter's clock write of `day` (a CST day start) before it is made
        (modbusclock), kept as mark_synced keeps a broadcast: a restart the same day writes no second."""
        self.set_day = day
        set_days[self.drv.id] = day
        _save_days()

    def status(self):
        """This meter's memory work for the console's `status` (nengjian.console.status), from what
        refill, meterclock and modbusclock leave here: none of them is loaded for it. clock_set_day: the
        CST day start of the last setting (DL/T 645: its bus's broadcast, which sets every meter on it)."""
        modbus = getattr(self.drv, "protocol", None) == "modbus-rtu"
        return {"refills": self.refills, "refilled_at": self.refilled_at or None,
                "clock_offset_s": self.offset, "clock_checked_at": self.checked_at or None,
                "clock_set_day": (self.set_day if modbus else self.synced_day.get(self.bus_name)) or None}

    def _last(self):
        # the time of this meter's last reading (its first item's), None before one
        return self.gw.intervals.states[self.items[0]].t if self.items else None

    def gap(self, now):
        """The last reading before a gap, or None when no boundary was missed since it."""
        t = self._last()
        if t is None:
            return None
        iv = self.gw.intervals
        first, last = missed(t, now, iv.period, iv.tolerance)
        return t if first <= last else None

    def due(self):
        """Whether after() has work: a boundary missed since the last reading, or a clock check due,
        with the gateway's clock trusted. Cheap, and allocates nothing (asked after every read: a
        meter that feeds items would otherwise make an after() coroutine every poll)."""
        now = timeutil.now()
        if not (self.clock_limit and now >= self.next_check or self._missed(now)):
            return False
        return bool(self.trusted())

    def _missed(self, now):
        # gap(now) is not None, without missed()'s tuple
        t = self._last()
        if t is None:
            return False
        iv = self.gw.intervals
        period = iv.period
        s_now = timeutil.slot_start(now, period)
        last = s_now if now - s_now > iv.tolerance else s_now - period
        return timeutil.slot_start(t, period) + period <= last

    async def after(self, bus, line, timeout_ms, gap_ms):
        now = timeutil.now()
        t = self.gap(now)
        if t is not None and self.trusted():
            from nengjian.meters import refill

            try:
                await refill.run(self, bus, line, timeout_ms, gap_ms, t, now)
            finally:
                unload("nengjian.meters.refill")
                unload("nengjian.meters.meterclock")
                unload("nengjian.proto.dlt645_frozen")  # the frozen-data fields go with their users
        if self.clock_limit and now >= self.next_check and self.trusted():
            if near_midnight(now):
                self.next_check = now + RETRY_S
                return
            if getattr(self.drv, "protocol", None) == "modbus-rtu":
                from nengjian.meters import modbusclock

                try:
                    await modbusclock.check(self, bus, line, timeout_ms, gap_ms)
                finally:
                    unload("nengjian.meters.modbusclock")
                return
            from nengjian.meters import meterclock

            try:
                await meterclock.check(self, bus, line, timeout_ms, gap_ms)
            finally:
                unload("nengjian.meters.meterclock")
                unload("nengjian.proto.dlt645_frozen")


def attach(gw, trusted):
    """A Watch for each driver with `memory` that has work to do: the driver's `watch` (it asks
    watch.due() before it runs watch.after()), and a DL/T 645 driver's `after`; gw.watches: meter id ->
    Watch, for the console's status."""
    gw.watches = {}
    loaded = False
    for p in gw.pollers:
        for pm in p.meters:
            drv = pm.driver
            if getattr(drv, "memory", None):
                if not loaded and "clock" in drv.memory and pm.cfg.get("clock_max_drift_s", DEFAULT_MAX_DRIFT_S):
                    load_synced(gw.data_dir + "/" + SYNC_FILE)  # before the Watch, which takes its day
                    loaded = True
                w = Watch(gw, drv, pm.cfg, p.bus.name, trusted)
                if w.items or w.clock_limit:
                    gw.watches[drv.id] = w
                    drv.watch = w
                    if getattr(drv, "protocol", None) != "modbus-rtu":
                        drv.after = w.after
