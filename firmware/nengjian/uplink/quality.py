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
- completeness = values accepted / values due.
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
missing), an item below COMPLETE_MIN % and a disagreement above AGREE_MAX % are each a ledger event
of kind "alarm" that names the destination, the item and the day (or month). The newest
ALARMS_KEPT texts stay in RAM for the console.

Heap: fixed when the destination is built, nothing per value: per item and destination about
(periods a day / 8 + 11) bytes per day slot and 15 per month slot; with 15-minute periods, 4 days
and 2 months, 122 bytes (16 items: 2 KB per destination), plus the module's code.

File: binary, the header, the tables as they lie in RAM, the header again (a torn file lacks the
trailer), replaced through nengjian.core.statefile after each accepted batch, before the delivery
cursor moves: a cut between the two makes the platform see the batch again, which the bits count
once. A file of another configuration (items, period) is not used: the score starts again, with
an event.
"""

import array
import struct

from nengjian.core import records, statefile, timeutil
from nengjian.core.compat import const
from nengjian.values.intervals import day_start, month_start, next_month

DAY_S = const(86400)
DAYS = const(4)  # day slots: today and the three days before
MONTHS = const(2)  # this month and the last
COMPLETE_MIN = 90  # per cent (SPEC 2)
AGREE_MAX = 5  # per cent (SPEC 2)
ALARMS_KEPT = const(8)
DETAIL_DAYS = const(2)  # the days shown item by item (a crew's status must stay small: 16 items, 2 destinations)
SETTLE_S = 3600

# flags, one byte per item-day and item-month
F_VALUE = const(1)  # the day (month) value accepted
F_ON_TIME = const(2)  # ... within one period of falling due
F_CHECKED = const(4)  # alarms checked
F_MISALIGNED = const(8)  # a day (month) value off its statistics time
F_MIS_DAYS = const(16)  # month: a misaligned day value in it

_HEAD = "<4sHIBBqI"
_MAGIC = b"NJQ1"
_ITEM_BYTES = (8, 1, 2, 4, 4, 1, 8, 2, 2, 2, 4, 4, 1)  # of each table, in _tables order (q B H f f B ...)


def _pct(num, den):
    return None if not den else round(num * 1000 / den) / 10


def _apart(a, b):
    """|a - b| in per cent of the larger magnitude."""
    m = max(abs(a), abs(b))
    return 0.0 if not m else round(abs(a - b) * 1000 / m) / 10


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
        self.since = 0
        self._crc = self._codes_crc()
        if not self.load():
            self.since = timeutil.now() if now is None else now
            self.save()

    # ---- identity of the configuration the tables were made for
    def _codes_crc(self):
        import binascii

        c = 0
        for code in self.codes:
            c = binascii.crc32(code.encode(), c)
        return c & 0xFFFFFFFF

    def _header(self):
        return struct.pack(_HEAD, _MAGIC, self.n, self.period, DAYS, MONTHS, self.since, self._crc)

    def first(self):
        """Start of the first period due: the first whole one after the gateway began to watch."""
        return timeutil.slot_start(self.since + self.period - 1, self.period)

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
        if keys[oldest]:
            self._check_day(oldest, None)  # what was not yet checked is checked before it goes
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
        if keys[oldest]:
            self._check_month(oldest, None)
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
    def _rt_due(self, lo, hi, now):
        """Real-time values due with statistics start in [lo, hi) by now."""
        a = max(lo, self.first())
        b = min(hi, timeutil.slot_start(now, self.period))  # a period that started before this one has ended
        return (b - a) // self.period if b > a else 0

    def _days_due(self, lo, hi, now):
        if not self.daily:
            return 0
        a = max(lo, day_start(self.first() + DAY_S - 1))
        b = min(hi, day_start(now))
        return (b - a) // DAY_S if b > a else 0

    def _bits(self, j):
        c = 0
        for at in range(j * self.bb, (j + 1) * self.bb):
            b = self.dbits[at]
            while b:
                b &= b - 1
                c += 1
        return c

    def day_item(self, k, i, now):
        """(accepted, due, on time, day against its real-time values in % or None) of slot k, item i."""
        d = self.dkey[k]
        j = k * self.n + i
        f = self.dflag[j]
        rt = self._bits(j)
        acc = rt + (1 if f & F_VALUE else 0)
        due = self._rt_due(d, d + DAY_S, now) + self._days_due(d, d + DAY_S, now)
        on = self.don[j] + (1 if f & F_ON_TIME else 0)
        apart = None
        if f & F_VALUE and rt == self.per_day:
            apart = _apart(self.dval[j], self.dsum[j])
        return acc, max(due, acc), on, apart

    def month_item(self, k, i, now):
        m = self.mkey[k]
        e = next_month(m)
        j = k * self.n + i
        f = self.mflag[j]
        acc = self.macc[j] + self.mdays[j] + (1 if f & F_VALUE else 0)
        due = self._rt_due(m, e, now) + self._days_due(m, e, now)
        if self.monthly and m >= day_start(self.first() + DAY_S - 1) and e <= now:
            due += 1
        on = self.mon[j] + (1 if f & F_ON_TIME else 0)
        apart = None
        if f & F_VALUE and self.daily and self.mdays[j] == (e - m) // DAY_S:
            apart = _apart(self.mval[j], self.msum[j])
        return acc, max(due, acc), on, apart

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
                if self.dkey[k] and now >= self.dkey[k] + DAY_S + self.settle_s:
                    changed = self._check_day(k, now) or changed
            for k in range(MONTHS):
                if self.mkey[k] and now >= next_month(self.mkey[k]) + self.settle_s:
                    changed = self._check_month(k, now) or changed
        if changed:
            self.save()

    def _check_day(self, k, now):
        if now is None:
            now = timeutil.now()
        d = self.dkey[k]
        if now < d + DAY_S:  # a day still running is not judged, even when its slot goes
            return False
        day = timeutil.cst_text(d)[:10]
        checked = False
        for i in range(self.n):
            j = k * self.n + i
            if self.dflag[j] & F_CHECKED:
                continue
            self.dflag[j] |= F_CHECKED
            checked = True
            acc, due, _on, apart = self.day_item(k, i, now)
            self._judge(self.codes[i], "day", day, acc, due, apart, "real-time values")
            if self.dflag[j] & F_MISALIGNED:
                self._alarm("%s day %s: day value's statistics time not within 1 min of 00:00" % (self.codes[i], day))
        return checked

    def _check_month(self, k, now):
        if now is None:
            now = timeutil.now()
        m = self.mkey[k]
        if now < next_month(m):
            return False
        month = timeutil.cst_text(m)[:7]
        checked = False
        for i in range(self.n):
            j = k * self.n + i
            if self.mflag[j] & F_CHECKED:
                continue
            self.mflag[j] |= F_CHECKED
            checked = True
            acc, due, _on, apart = self.month_item(k, i, now)
            self._judge(self.codes[i], "month", month, acc, due, apart, "day values")
            if self.mflag[j] & F_MISALIGNED:
                self._alarm("%s month %s: month value's statistics time not within 1 day of the 1st" % (
                    self.codes[i], month))
        return checked

    def _judge(self, code, what, when, acc, due, apart, parts):
        if due and acc * 100 < COMPLETE_MIN * due:
            self._alarm("%s %s %s: completeness %s %% (%d of %d values due), below %d %%" % (
                code, what, when, _pct(acc, due), acc, due, COMPLETE_MIN))
        if apart is not None and apart > AGREE_MAX:
            self._alarm("%s %s %s: %s value and the sum of its %s %s %% apart, above %d %%" % (
                code, what, when, what, parts, apart, AGREE_MAX))

    def _alarm(self, text):
        text = "QUALITY %s %s" % (self.name, text)
        if len(self.alarms) >= ALARMS_KEPT:
            self.alarms.pop(0)
        self.alarms.append(text)
        self._event("alarm", text)

    # ---- what the console and the heartbeat show
    def report(self, now=None):
        """The console's figures (the key names are an interface: `nengjian status`, the status page):
        {"since", "days": [slot, newest first], "months": [slot], "alarms": [text], "too_old"}, a slot
        {"period": "YYYY-MM-DD" or "YYYY-MM", "start", "accepted", "due", "on_time", "completeness",
        "timeliness", "apart_max" (figures in %, None where nothing is due or compared), "misaligned",
        "items": {code: [accepted, due, apart %]}} - items only for the DETAIL_DAYS newest days and the
        newest month, {} for the others."""
        now = timeutil.now() if now is None else now
        days = []
        for k in self._newest(self.dkey):
            days.append(self._slot(k, now, self.dkey[k], 10, self.day_item, self.dflag, len(days) < DETAIL_DAYS))
        months = []
        for k in self._newest(self.mkey):
            months.append(self._slot(k, now, self.mkey[k], 7, self.month_item, self.mflag, not months))
        return {"since": self.since, "days": days, "months": months, "alarms": self.alarms,
                "too_old": self.too_old}

    @staticmethod
    def _newest(keys):
        out = []
        for k in range(len(keys)):
            if keys[k]:
                out.append(k)
        out.sort(key=lambda k: -keys[k])
        return out

    def _slot(self, k, now, start, width, item, flags, detail):
        acc_t = due_t = on_t = mis = 0
        worst = None
        items = {}
        for i in range(self.n):
            acc, due, on, apart = item(k, i, now)
            acc_t += acc
            due_t += due
            on_t += on
            if flags[k * self.n + i] & (F_MISALIGNED | F_MIS_DAYS):
                mis += 1
            if apart is not None and (worst is None or apart > worst):
                worst = apart
            if detail:
                items[self.codes[i]] = [acc, due, apart]
        return {"period": timeutil.cst_text(start)[:width], "start": start, "accepted": acc_t, "due": due_t,
                "on_time": on_t, "completeness": _pct(acc_t, due_t), "timeliness": _pct(on_t, acc_t),
                "apart_max": worst, "misaligned": mis, "items": items}

    def beat(self, now=None):
        """(completeness, timeliness) of this month so far, in %, for the heartbeat."""
        now = timeutil.now() if now is None else now
        k = self._month(month_start(now), False)
        if k < 0:
            return None, None
        acc_t = due_t = on_t = 0
        for i in range(self.n):
            acc, due, on, _apart = self.month_item(k, i, now)
            acc_t += acc
            due_t += due
            on_t += on
        return _pct(acc_t, due_t), _pct(on_t, acc_t)

    # ---- the file
    def save(self):
        def write(f):
            f.write(self._header())
            for t in self._tables:
                f.write(t)
            f.write(self._header())

        self._dirty = False
        return statefile.replace(self.path, write, "wb", lambda why: self._event(
            "store", "quality score of %s not saved: %s" % (self.name, why)))

    def load(self):
        """Take the saved tables (or a complete NAME.new a cut left); False: start afresh."""
        for path in (self.path, self.path + statefile.NEW):
            why = self._read(path)
            if why is None:
                return True
            if why != "missing":
                self._event("store", "quality score of %s in %s not used (%s): counting again from now" % (
                    self.name, path, why))
                return False
        return False

    def _read(self, path):
        try:
            f = open(path, "rb")
        except OSError:
            return "missing"
        try:
            size = struct.calcsize(_HEAD)
            head = f.read(size)
            if len(head) != size:
                return "torn"
            magic, n, period, days, months, since, crc = struct.unpack(_HEAD, head)
            if magic != _MAGIC or n != self.n or period != self.period or days != DAYS or months != MONTHS:
                return "another configuration"
            if crc != self._crc:
                return "other data items"
            for t, width in zip(self._tables, _ITEM_BYTES):
                if f.readinto(t) != len(t) * width:
                    return self._clear()
            if f.read(size) != head:
                return self._clear()
            self.since = since
            return None
        except (OSError, ValueError) as e:
            self._clear()
            return "unreadable: %s" % e
        finally:
            f.close()

    def _clear(self):
        """Forget what a torn file left half read into the tables."""
        for t in self._tables:
            for j in range(len(t)):
                t[j] = 0
        return "torn"
