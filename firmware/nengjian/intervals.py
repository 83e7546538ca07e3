"""Turns cumulative readings into real-time interval values, one per data item and period.

The value of period k is the reading at the start of period k+1 minus the reading at the start of
period k; the reading "at the start" is the first one taken in that period, and it counts only if
it lies within `tolerance` of the boundary (a fifth of the period, at most 2 minutes): a gateway
that starts, or a meter that comes back, in the middle of a period gives no value for that
partial period rather than a wrong one. Only consecutive periods give a value:
across a gap nothing is invented (estimation is an explicit, flagged operation, not done here),
the baseline restarts and an event is recorded. A reading lower than the baseline (meter replaced
or reset) restarts the baseline too, with an event.
"""

from nengjian import records, timeutil
from nengjian.store.cbor import Decimal


class ItemState:
    __slots__ = ("slot", "base", "on_boundary", "code", "scope", "lo", "hi")

    def __init__(self, item):
        self.slot = -1
        self.base = None
        self.on_boundary = False
        self.code = item["code"]
        self.scope = item["scope"]
        self.lo = item.get("min")
        self.hi = item.get("max")


class Intervals:
    def __init__(self, items, period_s, emit, event):
        self.period = period_s
        self.tolerance = min(period_s // 5, 120)
        self.states = [ItemState(it) for it in items]
        self._emit = emit
        self._event = event

    def restore(self, index, ts, base):
        """Resume after a reboot from the first reading of the newest period (see app)."""
        self._rebase(self.states[index], ts, base)

    def _rebase(self, st, ts, value):
        st.slot = timeutil.slot_start(ts, self.period)
        st.base = value
        st.on_boundary = ts - st.slot <= self.tolerance

    def feed(self, index, ts, value):
        st = self.states[index]
        slot = timeutil.slot_start(ts, self.period)
        if st.base is None or slot < st.slot:
            if st.base is not None:
                self._event("clock", "%s: reading at %s is before period %s: baseline restarted"
                            % (st.code, timeutil.cst_text(ts), timeutil.cst_text(st.slot)))
            self._rebase(st, ts, value)
            return
        if slot == st.slot:
            return
        if value.exponent != st.base.exponent:
            self._rebase(st, ts, value)
            self._event("meter", "%s: resolution changed: baseline restarted" % st.code)
            return
        if not st.on_boundary:
            # The baseline was taken late in its period: that period's value is unknown.
            self._rebase(st, ts, value)
            return
        delta = value.mantissa - st.base.mantissa
        if slot != st.slot + self.period:
            self._event("gap", "%s: no reading from %s to %s: %d period(s) without a value"
                        % (st.code, timeutil.cst_text(st.slot + self.period), timeutil.cst_text(slot),
                           (slot - st.slot) // self.period - 1))
        elif delta < 0:
            self._event("meter", "%s: reading fell from %s to %s (meter replaced or reset): baseline restarted"
                        % (st.code, st.base.text(), value.text()))
        else:
            d = Decimal(delta, value.exponent)
            valid = True
            if st.lo is not None and delta * 10 ** value.exponent < st.lo:
                valid = False
            if st.hi is not None and delta * 10 ** value.exponent > st.hi:
                valid = False
            if not valid:
                self._event("range", "%s: value %s for %s outside %s..%s: sent as invalid"
                            % (st.code, d.text(), timeutil.cst_text(st.slot), st.lo, st.hi))
            self._emit([records.VALUE, ts, st.code, records.REALTIME, st.slot, d, valid,
                        records.FIELD_INSTRUMENT, st.scope])
        self._rebase(st, ts, value)
