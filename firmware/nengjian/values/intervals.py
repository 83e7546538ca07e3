"""Turns cumulative readings into the platform's values: real-time (one per period), day and month.

Owns: the per-item counter arithmetic (rollover, meter replacement, a one-off bad reading), the
boundary readings, the values derived from them, and the small state file that lets a reboot
mid-day or mid-month still give the right day and month values.

The counter
-----------
Each item keeps an adjusted cumulative A = reading + offset (exact integers in units of the
reading's last digit), which only ever grows:
- rollover: the point's `rollover` (profile, or the item's override) is the largest value the
  counter shows, e.g. 99999999.99; the modulus is that plus one unit of the last digit. A reading
  below the previous one is a rollover when the wrapped difference (reading + modulus - previous)
  is at most 1 % of the modulus: the modulus is added to the offset, with an event.
- any other drop is a meter replaced or reset: new baseline (the offset keeps A where it was, so
  what the old meter counted up to its last reading and what the new one counts from its first
  are both kept, and the unmetered minutes of the swap count nothing), with an event giving both
  readings. If the very next reading is back at or above the old meter's value, the low reading
  was a glitch (a meter answering 0 while it restarts): the drop is undone, with an event.
- the same timestamp twice (a duplicate poll) is ignored; the same value twice counts zero.

Boundaries and values
---------------------
The boundary reading of a period is the first reading taken in it, if it lies within
`tolerance` of the boundary (a fifth of the period, at most 2 minutes): a gateway that starts, or
a meter that comes back, in the middle of a period gives no value for that partial period rather
than a wrong one. A value exists only between two known boundary readings exactly one period
apart: real-time value of period k = A(boundary k+1) - A(boundary k); the day value of day D
(statType 1, statDate D 00:00:00 CST) = A(first slot of D+1) - A(first slot of D); the month
value (statType 2, statDate the 1st 00:00:00 CST) likewise between first slots of consecutive
months. Real-time periods divide a day, so day and month starts are period boundaries.

Missing boundary reading: nothing is invented unless the item says `estimate: true`. Then a
boundary with no reading within tolerance, but readings on both sides at most
`intervals.estimate_max_gap_s` apart, gets A by linear interpolation between those two readings.
Our choice: a value that rests on an estimated boundary goes up with valid = false (the one
quality flag every platform's wire format has), unless the site sets `intervals.estimated_valid`
(a platform that scores invalid values as missing); either way each estimate is a ledger event
naming the boundaries and the two readings, so an estimate is never silent.

Refilled boundary readings: a DL/T 645 meter's frozen reading taken back after a gap
(nengjian.meters.refill) is fed like a reading at its boundary, with quality records.REFILLED. A
value between refilled (or refilled and measured) boundaries is exact and valid, and its VALUE
carries records.REFILLED; one that rests on an estimated boundary is an estimate whatever else it
rests on. Boundary quality (bt/best, ds/dest, ms/mest): 0 measured, True estimated, REFILLED.

Clock: a reading stamped before the previous one (the clock went back) keeps the counter
arithmetic (the meter did not go back) but drops every boundary after the new time; boundaries
before it stay (a small NTP correction costs nothing). Nothing is ever counted twice: per statType
each item remembers the last period start it emitted and the A that value ended at; a value is
emitted only for a later period and only from a boundary at or above that A (else an event says
why not). So values of one statType cover disjoint stretches of the counter and no period is sent
twice, whatever the clock did; the price of a clock that ran a day ahead and was put back is no
values until it is past the periods it sent while ahead. A forward jump is a gap: no values for periods without boundary readings (estimates only
within the gap limit).

Values in range: an item's min/max apply to one real-time period; a day or month value is checked
against them times the number of periods it spans. A value outside goes up as invalid, with an
event.

Reboot (our choice: a state file plus the store)
------------------------------------------------
`resume(store, path)` loads `path` (a nengjian.core.statefile: JSON, replaced atomically, at most once a
period, after the store is flushed so the state is never ahead of the data), then replays the
READINGs stored after the state was written through the same code, quietly, matching the VALUEs
already stored: values the replay derives that the store lacks (a power cut between a reading and
its value) are emitted then. The state holds per item the counter, the last reading, the last
boundary, the day and month anchors and what was emitted; so a month value survives any number of
reboots, which a scan of recent records could not give. Without a state file (first boot) the last
5000 records are replayed.
"""

from nengjian.core import records, statefile, timeutil
from nengjian.core.compat import const, unload
from nengjian.core.decimal import Decimal

_DAY_S = const(86400)
_CST = const(28800)  # timeutil.CST_OFFSET, as a constant the compiler folds
_STATE_VERSION = const(1)  # of the state file

# ItemState fields written to the state file, in this order.
_SAVED = ("meter", "point", "e", "t", "raw", "off", "bt", "ba", "best", "ds", "da", "dest", "ms", "ma", "mest",
          "done", "upto", "gp", "goff")


def day_start(ts):
    """Start (UTC seconds) of the CST day holding ts."""
    return timeutil.slot_start(ts, _DAY_S)


def month_start(ts):
    """Start (UTC seconds) of the CST month holding ts."""
    d = day_start(ts)
    return d - (timeutil.civil(d + _CST)[2] - 1) * _DAY_S


def next_month(ms):
    return month_start(ms + 32 * _DAY_S)


def is_month_start(ts):
    return (ts + _CST) % _DAY_S == 0 and timeutil.civil(ts + _CST)[2] == 1


def modulus(rollover, exponent):
    """Counter modulus in units of 10**exponent for a `rollover` (largest value shown).

    A float from JSON may have lost digits (ESP32 floats are 32-bit: 99999999.99 reads as 1e8), so a
    result within a millionth of a power of ten or two snaps to it; a string is exact.
    """
    if isinstance(rollover, str):
        from nengjian.values import manual

        d = manual.parse_decimal(rollover)
        k = d.exponent - exponent
        return (d.mantissa * 10 ** k if k >= 0 else d.mantissa // 10 ** -k) + 1
    x = rollover * 10.0 ** -exponent + 1
    n = int(x + 0.5)
    for base in (10, 2):
        p = 1
        while p < n * 2:
            if abs(x - p) <= x * 1e-6:
                return p
            p *= base
    return n


class ItemState:
    __slots__ = ("code", "scope", "lo", "hi", "estimate", "rollover", "mod",
                 "meter", "point", "e", "t", "raw", "off", "bt", "ba", "best", "ds", "da", "dest",
                 "ms", "ma", "mest", "done", "upto", "gp", "goff")

    def __init__(self, item):
        self.code = item["code"]
        self.scope = item["scope"]
        self.lo = item.get("min")
        self.hi = item.get("max")
        self.estimate = bool(item.get("estimate"))
        self.rollover = item.get("_rollover", item.get("rollover"))
        self.meter = item.get("meter")
        self.point = item.get("point")
        self.mod = 0
        self.e = None  # exponent of every mantissa below
        self.t = None  # last reading: time, raw mantissa; A = raw + off
        self.raw = 0
        self.off = 0
        self.bt = None  # last known boundary, its A, estimated?
        self.ba = 0
        self.best = False
        self.ds = None  # day anchor (start of the current CST day), its A, estimated?
        self.da = 0
        self.dest = False
        self.ms = None  # month anchor
        self.ma = 0
        self.mest = False
        # Per statType (real-time, day, month): the last period start emitted, and the A its value
        # ended at: a value is sent only for a later period and only from an A at or above that, so
        # whatever the clock does no period is sent twice and no consumption is counted twice.
        self.done = [0, 0, 0]
        self.upto = [0, 0, 0]
        self.gp = None  # raw before a drop, while the next reading decides replaced or glitch
        self.goff = 0


class Intervals:
    def __init__(self, items, period_s, emit, event, opts=None):
        opts = opts or {}
        self.period = period_s
        self.tolerance = min(period_s // 5, 120)
        self.daily = opts.get("daily", True)
        self.monthly = opts.get("monthly", True)
        self.max_gap = opts.get("estimate_max_gap_s", 7200)
        self.estimated_valid = opts.get("estimated_valid", False)
        self.states = [ItemState(it) for it in items]
        self.by_point = {}
        for i, st in enumerate(self.states):
            self.by_point.setdefault((st.meter, st.point), []).append(i)
        self._emit = emit
        self._event = event
        self._quiet = False  # replaying: no events; values go to _pending
        self._pending = None
        self._store = None
        self._path = None
        self._save_after = 0
        self._dirty = False
        self.saves = 0
        self._dup_noted = -_DAY_S
        self._back_noted = -_DAY_S

    # ---- ledger and output
    def _note(self, kind, text, code=None):
        if not self._quiet:
            self._event(kind, text, code)

    def _value(self, st, stat, start, a0, a1, q, ts, periods):
        if start <= st.done[stat]:
            return self._already(st, stat, start, "comes after one for %s already sent" % timeutil.cst_text(
                st.done[stat]))
        if a0 < st.upto[stat]:
            # Only after the clock went back past a boundary it had already closed a value at.
            return self._already(st, stat, start, "would count again consumption already sent")
        st.done[stat] = start
        st.upto[stat] = a1
        delta = a1 - a0
        d = Decimal(delta, st.e)
        est = q is True or q == 1
        valid = self.estimated_valid if est else True
        x = delta * 10.0 ** st.e
        if (st.lo is not None and x < st.lo * periods) or (st.hi is not None and x > st.hi * periods):
            valid = False
            self._note("range", "%s: %s value %s for %s outside %s..%s: sent as invalid" % (
                st.code, _STAT_NAMES[stat], d.text(), timeutil.cst_text(start), _times(st.lo, periods),
                _times(st.hi, periods)), "interval.range")
        rec = [records.VALUE, ts, st.code, stat, start, d, valid, records.FIELD_INSTRUMENT, st.scope]
        if q == records.REFILLED:
            rec.append(records.REFILLED)
        if self._pending is not None:
            self._pending[(st.code, stat, start)] = rec
        elif not self._quiet:
            self._emit(rec)

    def _already(self, st, stat, start, why):
        # One note per hour of periods gone over again, not one per item and period.
        if self._dup_noted <= start < self._dup_noted + 3600:
            return
        self._dup_noted = start
        self._note("clock", "%s: %s value for %s %s: not sent (the clock went back)" % (
            st.code, _STAT_NAMES[stat], timeutil.cst_text(start), why), "interval.clock_back")

    # ---- readings
    def feed(self, index, ts, value, q=0):
        """One reading (exact Decimal) of item `index` taken at UTC seconds ts (q: records.REFILLED for a
        meter's frozen reading at boundary ts)."""
        st = self.states[index]
        m = value.mantissa
        if st.e is None:
            st.e = value.exponent
            st.mod = modulus(st.rollover, st.e) if st.rollover else 0
        elif value.exponent != st.e:
            m = self._align(st, value.exponent, m)
        t1 = st.t
        if t1 is not None:
            if ts == t1:
                return  # the same poll twice
            if ts < t1:
                if self._quiet:
                    return  # replay: already part of the saved state
                self._clock_back(st, ts)
                t1 = None
        a1 = st.raw + st.off
        a2 = self._count(st, m, st.t is not None)
        st.t = ts
        self._boundaries(st, t1, a1, ts, a2, q)
        if self._store is not None and not self._quiet and self._dirty and ts >= self._save_after:
            self.save()

    def _count(self, st, m, have_last):
        """Adjusted cumulative of raw reading m (updates the offset on rollover or replacement)."""
        if not have_last:
            st.raw = m
            return m + st.off
        p = st.raw
        before = p + st.off
        if st.gp is not None:
            if m >= st.gp:
                self._note("meter", "%s: reading %s is back above %s: the low reading before it was a glitch, "
                           "not a new meter" % (st.code, _txt(m, st.e), _txt(st.gp, st.e)), "interval.glitch")
                st.off = st.goff
            st.gp = None
        if m < p:
            wrapped = m + st.mod - p
            if st.mod and 0 <= wrapped <= st.mod // 100:
                st.gp = p
                st.goff = st.off
                st.off += st.mod
                self._note("rollover", "%s: counter wrapped from %s to %s: added %s" % (
                    st.code, _txt(p, st.e), _txt(m, st.e), _txt(st.mod, st.e)), "interval.wrapped")
            else:
                st.gp = p
                st.goff = st.off
                st.off += p - m
                self._note("meter", "%s: reading fell from %s to %s (meter replaced or reset): new baseline, "
                           "consumption counted from the new reading on" % (st.code, _txt(p, st.e), _txt(m, st.e)), "interval.new_baseline")
        st.raw = m
        a = m + st.off
        if a < before:
            # Only after an undone rollover glitch: keep A from ever going down.
            st.off += before - a
            a = before
        return a

    def _clock_back(self, st, ts):
        if abs(ts - self._back_noted) > 600:
            self._back_noted = ts
            self._note("clock", "%s: reading at %s is before the previous one at %s: boundaries after it dropped, "
                       "no period is sent twice" % (st.code, timeutil.cst_text(ts), timeutil.cst_text(st.t)), "interval.reading_back")
        if st.bt is not None and st.bt > ts:
            st.bt = None
        if st.ds is not None and st.ds > ts:
            st.ds = None
        if st.ms is not None and st.ms > ts:
            st.ms = None

    def _boundaries(self, st, t1, a1, t2, a2, q=0):
        P = self.period
        s2 = timeutil.slot_start(t2, P)
        if t1 is not None:
            s1 = timeutil.slot_start(t1, P)
            if s2 == s1:
                return
            b = s1 + P
        else:
            b = s2
        measured = t2 - s2 <= self.tolerance
        last_unknown = s2 if not measured else s2 - P
        if st.estimate and t1 is not None and t2 - t1 <= self.max_gap and b <= last_unknown:
            slots = timeutil.cst_text(b)
            if b != last_unknown:
                slots = "%s .. %s" % (slots, timeutil.cst_text(last_unknown))
            said = (st.code, self.tolerance, slots, timeutil.cst_text(t1), timeutil.cst_text(t2))
            if self.estimated_valid:
                self._note("estimate", "%s: no reading within %d s of %s: estimated between readings %s and %s"
                           % said, "interval.estimated")
            else:
                self._note("estimate", "%s: no reading within %d s of %s: estimated between readings %s and %s "
                           "(values sent as invalid)" % said, "interval.estimated_invalid")
            span = t2 - t1
            while b <= last_unknown:
                num = (a2 - a1) * (b - t1)
                self._anchor(st, b, a1 + (2 * num + span) // (2 * span), True, t2)
                b += P
        elif t1 is not None and b <= last_unknown:
            n = (last_unknown - b) // P + 1
            self._note("gap", "%s: no reading within %d s of %s%s: %d boundary reading(s) missing, no value for "
                       "the periods around them" % (st.code, self.tolerance, timeutil.cst_text(b),
                                                    "" if n == 1 else " .. %s" % timeutil.cst_text(last_unknown), n), "interval.gap")
        if measured and not (t1 is None and st.bt == s2):
            # (after the clock went back into a period already anchored, the earlier reading stays)
            self._anchor(st, s2, a2, q, t2)

    def _anchor(self, st, b, a, est, ts):
        # est: the boundary's quality (0 measured, True estimated, records.REFILLED)
        P = self.period
        if st.bt is not None and b == st.bt + P:
            self._value(st, records.REALTIME, st.bt, st.ba, a, _worse(est, st.best), ts, 1)
        st.bt = b
        st.ba = a
        st.best = est
        self._dirty = True
        if (b + _CST) % _DAY_S:
            return
        if self.daily:
            if st.ds is not None and b == st.ds + _DAY_S:
                self._value(st, records.DAY, st.ds, st.da, a, _worse(est, st.dest), ts, _DAY_S // P)
            st.ds = b
            st.da = a
            st.dest = est
        if self.monthly and is_month_start(b):
            if st.ms is not None and b == next_month(st.ms):
                self._value(st, records.MONTH, st.ms, st.ma, a, _worse(est, st.mest), ts, (b - st.ms) // P)
            st.ms = b
            st.ma = a
            st.mest = est

    def _align(self, st, e, m):
        """Bring a reading of another resolution onto the item's (exactly, the finer one wins)."""
        self._note("meter", "%s: reading resolution changed from 1e%d to 1e%d" % (st.code, st.e, e), "interval.resolution")
        if e > st.e:
            return m * 10 ** (e - st.e)
        k = 10 ** (st.e - e)
        for name in ("raw", "off", "ba", "da", "ma", "goff", "mod"):
            setattr(st, name, getattr(st, name) * k)
        st.upto = [x * k for x in st.upto]
        if st.gp is not None:
            st.gp *= k
        st.e = e
        return m

    # ---- what the console and tce ask
    def day_progress(self, index):
        """(day start, consumption so far today as a Decimal) of item `index`, or None if unknown."""
        st = self.states[index]
        if st.ds is None or st.t is None or day_start(st.t) != st.ds:
            return None
        return st.ds, Decimal(st.raw + st.off - st.da, st.e)

    # ---- reboot
    def resume(self, store, path):
        """Load the state file and replay the store after it (see the module doc); then keep the state
        file up to date. Returns how many items have a known counter. Boot-only code: it lives in
        nengjian.values.intervalboot, dropped once it has run."""
        from nengjian.values import intervalboot

        try:
            return intervalboot.resume(self, store, path, _SAVED, _STATE_VERSION, modulus)
        finally:
            unload("nengjian.values.intervalboot")

    def save(self):
        """Write the state file (store flushed first, so the state never runs ahead of the data)."""
        store = self._store
        store.flush()
        items = {}
        for st in self.states:
            if st.t is not None:
                items[st.code] = [getattr(st, name) for name in _SAVED]
        # streamed by statefile: the text of 256 items is never one string in RAM
        statefile.save(self._path, {"period": self.period, "seq": store.last_seq, "items": items}, _STATE_VERSION,
                       lambda why: self._note("store", "interval state not saved (%s): a reboot replays more "
                                                       "records" % why, "interval.not_saved"))
        self._dirty = False
        now_slot = timeutil.slot_start(max(st.t or 0 for st in self.states), self.period)
        self._save_after = now_slot + self.period + self.tolerance
        self.saves += 1


_STAT_NAMES = ("real-time", "day", "month")  # by statType: records.REALTIME, DAY, MONTH


def _worse(q1, q2):
    """Quality of a value between boundaries of qualities q1 and q2: an estimate wins, then a refill."""
    if q1 is True or q1 == 1 or q2 is True or q2 == 1:
        return True
    return records.REFILLED if q1 or q2 else 0


def _times(x, n):
    return "-" if x is None else x * n


def _txt(m, e):
    return Decimal(m, e).text()
