"""Turns cumulative readings into real-time interval values, one per data item and period.

The value of period k is the reading at the start of period k+1 minus the reading at the start of
period k; the reading "at the start" is the first one taken in that period (polls run every minute
or so, so it lies within one poll interval of the boundary). Only consecutive periods give a value:
across a gap nothing is invented (estimation is an explicit, flagged operation, not done here),
the baseline restarts and an event is recorded. A reading lower than the baseline (meter replaced
or reset) restarts the baseline too, with an event.
"""

from nengjian import records, timeutil
from nengjian.store.cbor import Decimal


class ItemState:
    __slots__ = ("slot", "base", "code", "scope", "lo", "hi")

    def __init__(self, item):
        self.slot = -1
        self.base = None
        self.code = item["code"]
        self.scope = item["scope"]
        self.lo = item.get("min")
        self.hi = item.get("max")


class Intervals:
    def __init__(self, items, period_s, emit, event):
        self.period = period_s
        self.states = [ItemState(it) for it in items]
        self._emit = emit
        self._event = event

    def restore(self, index, slot, base):
        """Resume after a reboot from the first reading of the newest period (see app)."""
        st = self.states[index]
        st.slot = slot
        st.base = base

    def feed(self, index, ts, value):
        st = self.states[index]
        slot = timeutil.slot_start(ts, self.period)
        if st.base is None or slot < st.slot:
            if st.base is not None:
                self._event("clock", "%s: reading at %s is before period %s: baseline restarted"
                            % (st.code, timeutil.cst_text(ts), timeutil.cst_text(st.slot)))
            st.slot = slot
            st.base = value
            return
        if slot == st.slot:
            return
        if value.exponent != st.base.exponent:
            st.slot = slot
            st.base = value
            self._event("meter", "%s: resolution changed: baseline restarted" % st.code)
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
        st.slot = slot
        st.base = value
