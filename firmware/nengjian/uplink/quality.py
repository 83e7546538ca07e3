"""The data-quality score a destination's platform gives this site, kept on the gateway.

Owns: per destination and data item, for the newest DAYS days and MONTHS months, what the platform
accepted (one bit per real-time period of a day, so a value sent twice counts once), how much of
it on time, the sum of the accepted real-time values, the accepted day value, the sum of the
accepted day values and the month value; the figures made of them; the alarms they raise; and
their file, so that a power cut loses none of it.

The figures (SPEC 2: what the platforms score):
- due: each item owes one real-time value per period, one day value per day and one month value
  per month (where `intervals.daily` / `monthly` are on), from the first whole period after the
  gateway began to watch (`since`, kept in the file). A value falls due when its period ends. Due
  is counted from the clock, not fed value by value: a gateway that was off still owed the values
  of that time, as the platform sees it, and nothing is spent per value.
- completeness = values accepted / values due. A value sent as invalid (valid false: an estimate,
  unless the site sets `intervals.estimated_valid`, or a value outside its item's range) is not a
  value accepted: it is counted in `invalid` and fills no period, so a valid resend of it later
  still counts (our reading of SPEC 2, which counts values uploaded, beside the platforms' own
  validity score: a platform that takes an invalid value has no figure for that period).
- timeliness = values accepted within one period of falling due / values accepted. The period of a
  real-time value is the real-time period; of a day or month value, a day (SPEC does not say; our
  reading: where a platform assigns an upload slot the day value goes out hours after its end by
  design, and a month-long window would mean nothing).
- day vs real-time: |day value - sum of the day's real-time values| / the larger of the two; month
  vs days likewise over its day values. Compared only when all of them were accepted: a day that
  lacks values is the completeness figure's business, not a disagreement.
- alignment: day values whose statistics time is more than 60 s from 00:00 CST, month values more
  than a day from the 1st (SPEC 2), counted as misaligned. The gateway's own times are exact; the
  check guards the arithmetic and what the crew enters by hand.

Alarms: once a day or month has settled (`settle_s` after its end, and only while the destination
has nothing left to send, so a held day value or a back-fill still on its way is not counted
missing), an item below COMPLETE_MIN % (qualityfig) and a disagreement above AGREE_MAX % are each a ledger event
of kind "alarm" that names the destination, the item and the day (or month). The newest
ALARMS_KEPT texts stay in RAM for the console.

Heap: fixed when the destination is built, nothing per value: per item and destination about
(periods a day / 8 + 11) bytes per day slot and 15 per month slot; with 15-minute periods, 4 days
and 2 months, 122 bytes (16 items: 2 KB per destination), plus the module's code. Only the tables
and what feeds them stay loaded: the figures, the alarms and reading the file are
nengjian.uplink.qualityfig, loaded while a status or heartbeat asks, a settled day or month is judged,
or the score starts, and dropped after.

File: binary, the header, the tables as they lie in RAM, the header again (a torn file lacks the
trailer), replaced through nengjian.core.statefile after each accepted batch, before the delivery
cursor moves: a cut between the two makes the platform see the batch again, which the bits count
once. A file of another configuration (items, period) is not used: the score starts again, with
an event.
"""

import array
import struct

from nengjian.core import records, statefile, timeutil
from nengjian.core.compat import unload
from nengjian.uplink.qualitylayout import (
    DAY_S,
    DAYS,
    F_CHECKED,
    F_MIS_DAYS,
    F_MISALIGNED,
    F_ON_TIME,
    F_VALUE,
    HEAD,
    MAGIC,
    MONTHS,
)
from nengjian.values.intervals import day_start, month_start, next_month

SETTLE_S = 3600


# The figures, alarms and file reading: loaded only while they run (see qualityfig).
FIG = "nengjian.uplink.qualityfig"


def _fig():
    from nengjian.uplink import qualityfig

    return qualityfig


def _float(v):
    return v.mantissa * 10.0 ** v.exponent


class Quality:
    def __init__(self, name, codes, period_s, path, event, daily=True, monthly=True, settle_s=SETTLE_S, now=None):
        self.name = name
        self.codes = list(codes)
        n = self.n = len(self.codes)
        self.period = period_s
        self.path = path
        self._event = event
        self.daily = daily
        self.monthly = monthly
        self.settle_s = settle_s
        self.index = {}
        for i, c in enumerate(self.codes):
            self.index[c] = i
        self.per_day = DAY_S // period_s
        self.bb = (self.per_day + 7) // 8
        self.dkey = array.array("q", [0] * DAYS)
        self.dbits = bytearray(DAYS * n * self.bb)
        self.don = array.array("H", [0] * (DAYS * n))  # real-time values on time
        self.dsum = array.array("f", [0.0] * (DAYS * n))
        self.dval = array.array("f", [0.0] * (DAYS * n))
        self.dflag = bytearray(DAYS * n)
        self.mkey = array.array("q", [0] * MONTHS)
        self.macc = array.array("H", [0] * (MONTHS * n))  # real-time values accepted
        self.mdays = array.array("H", [0] * (MONTHS * n))  # day values accepted
        self.mon = array.array("H", [0] * (MONTHS * n))  # of both, on time
        self.msum = array.array("f", [0.0] * (MONTHS * n))
        self.mval = array.array("f", [0.0] * (MONTHS * n))
        self.mflag = bytearray(MONTHS * n)
        self._tables = (self.dkey, self.dbits, self.don, self.dsum, self.dval, self.dflag,
                        self.mkey, self.macc, self.mdays, self.mon, self.msum, self.mval,
                        self.mflag)  # type: tuple  # arrays and bytearrays: each has len() and the buffer protocol
        self._dirty = False
        self.alarms = []  # the newest alarm texts
        self.too_old = 0  # accepted values of days no longer kept: not in the score
        self.invalid = 0  # values accepted since boot that were sent as invalid: not in the score (see above)
        self.since = 0
        fig = _fig()
        try:
            self._crc = fig.codes_crc(self)
            loaded = fig.load(self)
        finally:
            unload(FIG)
        if not loaded:
            self.since = timeutil.now() if now is None else now
            self.save()

    # ---- identity of the configuration the tables were made for
    def _header(self):
        return struct.pack(HEAD, MAGIC, self.n, self.period, DAYS, MONTHS, self.since, self._crc)

    def first(self):
        """Start of the first period due: the first one whose boundary reading the gateway could take
        after it began to watch. The interval engine takes a reading up to its tolerance (a fifth of
        the period, at most 2 minutes) after a boundary as that boundary's, so a gateway that began
        that little late still owes, and makes, that period's value."""
        late = min(self.period // 5, 120)
        return timeutil.slot_start(self.since - late + self.period - 1, self.period)

    # ---- slots
    def _day(self, d, create=True):
        keys = self.dkey
        oldest = 0
        for k in range(DAYS):
            if keys[k] == d:
                return k
            if keys[k] < keys[oldest]:
                oldest = k
        if not create or (keys[oldest] and d < keys[oldest]):
            return -1
        if keys[oldest] and self._open(self.dflag, oldest):
            self._checked(0, oldest, None)  # what was not yet checked is checked before it goes
        n = self.n
        bb = self.bb
        for j in range(oldest * n, oldest * n + n):
            self.don[j] = 0
            self.dsum[j] = 0.0
            self.dval[j] = 0.0
            self.dflag[j] = 0
        for j in range(oldest * n * bb, (oldest + 1) * n * bb):
            self.dbits[j] = 0
        keys[oldest] = d
        self._dirty = True
        return oldest

    def _month(self, m, create=True):
        keys = self.mkey
        oldest = 0
        for k in range(MONTHS):
            if keys[k] == m:
                return k
            if keys[k] < keys[oldest]:
                oldest = k
        if not create or (keys[oldest] and m < keys[oldest]):
            return -1
        if keys[oldest] and self._open(self.mflag, oldest):
            self._checked(1, oldest, None)
        for j in range(oldest * self.n, oldest * self.n + self.n):
            self.macc[j] = 0
            self.mdays[j] = 0
            self.mon[j] = 0
            self.msum[j] = 0.0
            self.mval[j] = 0.0
            self.mflag[j] = 0
        keys[oldest] = m
        self._dirty = True
        return oldest

    # ---- fed by the destination's delivery
    def accepted(self, batch, now):
        """The platform accepted batch ([(seq, VALUE record)]) at UTC seconds now. Saved at once."""
        taken = 0
        for _seq, rec in batch:
            if self._take(rec, now):
                taken += 1
        if taken:
            self.save()
        return taken

    def _take(self, rec, now):
        i = self.index.get(rec[records.V_CODE])
        if i is None:
            return False
        if not rec[records.V_VALID]:
            # An estimate flagged invalid is the gateway saying it has no measured figure: completeness
            # counts the values the platform can use, so this one stays due.
            self.invalid += 1
            return False
        stat = rec[records.V_STAT_TYPE]
        start = rec[records.V_STAT_START]
        n = self.n
        if stat == records.REALTIME:
            d = day_start(start)
            k = self._day(d)
            if k < 0:
                self.too_old += 1
                return False
            j = k * n + i
            p = (start - d) // self.period
            at = j * self.bb + (p >> 3)
            bit = 1 << (p & 7)
            if self.dbits[at] & bit:
                return False
            self.dbits[at] |= bit
            self.dsum[j] += _float(rec[records.V_VALUE])
            on = now <= start + 2 * self.period
            if on:
                self.don[j] += 1
            mk = self._month(month_start(start))
            if mk >= 0:
                self.macc[mk * n + i] += 1
                if on:
                    self.mon[mk * n + i] += 1
            return True
        if stat == records.DAY:
            d = day_start(start + 60)  # a statistics time just before midnight belongs to the next day
            mis = abs(start - d) > 60
            k = self._day(d)
            if k < 0:
                self.too_old += 1
                return False
            j = k * n + i
            if self.dflag[j] & F_VALUE:
                return False
            on = now <= d + 2 * DAY_S
            self.dflag[j] |= F_VALUE | (F_ON_TIME if on else 0) | (F_MISALIGNED if mis else 0)
            x = _float(rec[records.V_VALUE])
            self.dval[j] = x
            mk = self._month(month_start(d))
            if mk >= 0:
                j = mk * n + i
                self.mdays[j] += 1
                self.msum[j] += x
                if on:
                    self.mon[j] += 1
                if mis:
                    self.mflag[j] |= F_MIS_DAYS
            return True
        if stat == records.MONTH:
            m = month_start(start + DAY_S)
            mis = abs(start - m) > DAY_S
            mk = self._month(m)
            if mk < 0:
                self.too_old += 1
                return False
            j = mk * n + i
            if self.mflag[j] & F_VALUE:
                return False
            on = now <= next_month(m) + DAY_S
            self.mflag[j] |= F_VALUE | (F_ON_TIME if on else 0) | (F_MISALIGNED if mis else 0)
            self.mval[j] = _float(rec[records.V_VALUE])
            return True
        return False

    # ---- figures
    # ---- alarms
    def tick(self, now, caught_up=True):
        """Roll today's slots in and check what has settled (the app's status beat, clock trusted)."""
        if now < self.first():
            return
        self._day(day_start(now))
        self._month(month_start(now))
        changed = self._dirty
        if caught_up:
            for k in range(DAYS):
                if self.dkey[k] and now >= self.dkey[k] + DAY_S + self.settle_s and self._open(self.dflag, k):
                    changed = self._checked(0, k, now) or changed
            for k in range(MONTHS):
                if self.mkey[k] and now >= next_month(self.mkey[k]) + self.settle_s and self._open(self.mflag, k):
                    changed = self._checked(1, k, now) or changed
        if changed:
            self.save()

    def _open(self, flags, k):
        """Whether an item of slot k has not been checked yet: only then is the figures' code loaded."""
        for j in range(k * self.n, k * self.n + self.n):
            if not flags[j] & F_CHECKED:
                return True
        return False

    def _checked(self, month, k, now):
        fig = _fig()
        try:
            return (fig.check_month if month else fig.check_day)(self, k, now)
        finally:
            unload(FIG)

    # ---- what the console and the heartbeat show (qualityfig: the keys and figures)
    def report(self, now=None):
        fig = _fig()
        try:
            return fig.report(self, now)
        finally:
            unload(FIG)

    def beat(self, now=None):
        """(completeness, timeliness) of this month so far, in %, for the heartbeat."""
        fig = _fig()
        try:
            return fig.beat(self, now)
        finally:
            unload(FIG)

    # ---- the file
    def save(self):
        def write(f):
            f.write(self._header())
            for t in self._tables:
                f.write(t)
            f.write(self._header())

        self._dirty = False
        return statefile.replace(self.path, write, "wb", lambda why: self._event(
            "store", "quality score of %s not saved: %s" % (self.name, why), "uplink.quality_not_saved"))

