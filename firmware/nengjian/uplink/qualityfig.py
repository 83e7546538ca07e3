"""The quality score's figures, alarms and file reading (nengjian.uplink.quality): the code the score
needs only when it is asked (a crew's status, a heartbeat), when a day or month has settled, and at
boot. The quality module imports this at those moments and drops it after (compat.unload): the
always-loaded part keeps only the tables and what feeds them. Functions of a quality.Quality `q`.
"""

import struct

from nengjian.core import statefile, timeutil
from nengjian.core.compat import const
from nengjian.uplink.qualitylayout import (
    DAY_S,
    DAYS,
    F_CHECKED,
    F_MIS_DAYS,
    F_MISALIGNED,
    F_ON_TIME,
    F_VALUE,
    HEAD,
    ITEM_BYTES,
    MAGIC,
    MONTHS,
)
from nengjian.values.intervals import day_start, month_start, next_month

COMPLETE_MIN = 90  # per cent (SPEC 2)
AGREE_MAX = 5  # per cent (SPEC 2)
ALARMS_KEPT = const(8)
DETAIL_DAYS = const(2)  # the days shown item by item (a crew's status must stay small: 16 items, 2 destinations)


def _pct(num, den):
    return None if not den else round(num * 1000 / den) / 10


def _apart(a, b):
    """|a - b| in per cent of the larger magnitude."""
    m = max(abs(a), abs(b))
    return 0.0 if not m else round(abs(a - b) * 1000 / m) / 10


def codes_crc(q):
    import binascii

    c = 0
    for code in q.codes:
        c = binascii.crc32(code.encode(), c)
    return c & 0xFFFFFFFF


def _rt_due(q, lo, hi, now):
    """Real-time values due with statistics start in [lo, hi) by now."""
    a = max(lo, q.first())
    b = min(hi, timeutil.slot_start(now, q.period))  # a period that started before this one has ended
    return (b - a) // q.period if b > a else 0


def _days_due(q, lo, hi, now):
    if not q.daily:
        return 0
    a = max(lo, day_start(q.first() + DAY_S - 1))
    b = min(hi, day_start(now))
    return (b - a) // DAY_S if b > a else 0


def _bits(q, j):
    c = 0
    for at in range(j * q.bb, (j + 1) * q.bb):
        b = q.dbits[at]
        while b:
            b &= b - 1
            c += 1
    return c


def day_item(q, k, i, now):
    """(accepted, due, on time, day against its real-time values in % or None) of slot k, item i."""
    d = q.dkey[k]
    j = k * q.n + i
    f = q.dflag[j]
    rt = _bits(q, j)
    acc = rt + (1 if f & F_VALUE else 0)
    due = _rt_due(q, d, d + DAY_S, now) + _days_due(q, d, d + DAY_S, now)
    on = q.don[j] + (1 if f & F_ON_TIME else 0)
    apart = None
    if f & F_VALUE and rt == q.per_day:
        apart = _apart(q.dval[j], q.dsum[j])
    return acc, max(due, acc), on, apart


def month_item(q, k, i, now):
    m = q.mkey[k]
    e = next_month(m)
    j = k * q.n + i
    f = q.mflag[j]
    acc = q.macc[j] + q.mdays[j] + (1 if f & F_VALUE else 0)
    due = _rt_due(q, m, e, now) + _days_due(q, m, e, now)
    if q.monthly and m >= day_start(q.first() + DAY_S - 1) and e <= now:
        due += 1
    on = q.mon[j] + (1 if f & F_ON_TIME else 0)
    apart = None
    if f & F_VALUE and q.daily and q.mdays[j] == (e - m) // DAY_S:
        apart = _apart(q.mval[j], q.msum[j])
    return acc, max(due, acc), on, apart


def check_day(q, k, now):
    if now is None:
        now = timeutil.now()
    d = q.dkey[k]
    if now < d + DAY_S:  # a day still running is not judged, even when its slot goes
        return False
    day = timeutil.cst_text(d)[:10]
    checked = False
    for i in range(q.n):
        j = k * q.n + i
        if q.dflag[j] & F_CHECKED:
            continue
        q.dflag[j] |= F_CHECKED
        checked = True
        acc, due, _on, apart = day_item(q, k, i, now)
        _judge(q, q.codes[i], "day", day, acc, due, apart, "real-time values")
        if q.dflag[j] & F_MISALIGNED:
            _alarm(q, "%s day %s: day value's statistics time not within 1 min of 00:00" % (q.codes[i], day))
    return checked


def check_month(q, k, now):
    if now is None:
        now = timeutil.now()
    m = q.mkey[k]
    if now < next_month(m):
        return False
    month = timeutil.cst_text(m)[:7]
    checked = False
    for i in range(q.n):
        j = k * q.n + i
        if q.mflag[j] & F_CHECKED:
            continue
        q.mflag[j] |= F_CHECKED
        checked = True
        acc, due, _on, apart = month_item(q, k, i, now)
        _judge(q, q.codes[i], "month", month, acc, due, apart, "day values")
        if q.mflag[j] & F_MISALIGNED:
            _alarm(q, "%s month %s: month value's statistics time not within 1 day of the 1st" % (
                q.codes[i], month))
    return checked


def _judge(q, code, what, when, acc, due, apart, parts):
    if due and acc * 100 < COMPLETE_MIN * due:
        _alarm(q, "%s %s %s: completeness %s %% (%d of %d values due), below %d %%" % (
            code, what, when, _pct(acc, due), acc, due, COMPLETE_MIN))
    if apart is not None and apart > AGREE_MAX:
        _alarm(q, "%s %s %s: %s value and the sum of its %s %s %% apart, above %d %%" % (
            code, what, when, what, parts, apart, AGREE_MAX))


def _alarm(q, text):
    text = "QUALITY %s %s" % (q.name, text)
    if len(q.alarms) >= ALARMS_KEPT:
        q.alarms.pop(0)
    q.alarms.append(text)
    q._event("alarm", text, "quality")


def report(q, now=None):
    """The console's figures (the key names are an interface: `nengjian status`, the status page):
    {"since", "days": [slot, newest first], "months": [slot], "alarms": [text], "too_old", "invalid"
    (both counted since boot)}, a slot
    {"period": "YYYY-MM-DD" or "YYYY-MM", "start", "accepted", "due", "on_time", "completeness",
    "timeliness", "apart_max" (figures in %, None where nothing is due or compared), "misaligned",
    "items": {code: [accepted, due, apart %]}} - items only for the DETAIL_DAYS newest days and the
    newest month, {} for the others."""
    now = timeutil.now() if now is None else now
    days = []
    for k in _newest(q.dkey):
        days.append(_slot(q, k, now, q.dkey[k], 10, day_item, q.dflag, len(days) < DETAIL_DAYS))
    months = []
    for k in _newest(q.mkey):
        months.append(_slot(q, k, now, q.mkey[k], 7, month_item, q.mflag, not months))
    return {"since": q.since, "days": days, "months": months, "alarms": q.alarms,
            "too_old": q.too_old, "invalid": q.invalid}


def _newest(keys):
    out = []
    for k in range(len(keys)):
        if keys[k]:
            out.append(k)
    out.sort(key=lambda k: -keys[k])
    return out


def _slot(q, k, now, start, width, item, flags, detail):
    acc_t = due_t = on_t = mis = 0
    worst = None
    items = {}
    for i in range(q.n):
        acc, due, on, apart = item(q, k, i, now)
        acc_t += acc
        due_t += due
        on_t += on
        if flags[k * q.n + i] & (F_MISALIGNED | F_MIS_DAYS):
            mis += 1
        if apart is not None and (worst is None or apart > worst):
            worst = apart
        if detail:
            items[q.codes[i]] = [acc, due, apart]
    return {"period": timeutil.cst_text(start)[:width], "start": start, "accepted": acc_t, "due": due_t,
            "on_time": on_t, "completeness": _pct(acc_t, due_t), "timeliness": _pct(on_t, acc_t),
            "apart_max": worst, "misaligned": mis, "items": items}


def beat(q, now=None):
    """(completeness, timeliness) of this month so far, in %, for the heartbeat."""
    now = timeutil.now() if now is None else now
    k = q._month(month_start(now), False)
    if k < 0:
        return None, None
    acc_t = due_t = on_t = 0
    for i in range(q.n):
        acc, due, on, _apart = month_item(q, k, i, now)
        acc_t += acc
        due_t += due
        on_t += on
    return _pct(acc_t, due_t), _pct(on_t, acc_t)


def load(q):
    """Take the saved tables (or a complete NAME.new a cut left); False: start afresh."""
    for path in (q.path, q.path + statefile.NEW):
        why = _read(q, path)
        if why is None:
            return True
        if why != "missing":
            q._event("store", "quality score of %s in %s not used (%s): counting again from now" % (
                q.name, path, why), "uplink.quality_unused")
            return False
    return False


def _read(q, path):
    try:
        f = open(path, "rb")
    except OSError:
        return "missing"
    try:
        size = struct.calcsize(HEAD)
        head = f.read(size)
        if len(head) != size:
            return "torn"
        magic, n, period, days, months, since, crc = struct.unpack(HEAD, head)
        if magic != MAGIC or n != q.n or period != q.period or days != DAYS or months != MONTHS:
            return "another configuration"
        if crc != q._crc:
            return "other data items"
        for t, width in zip(q._tables, ITEM_BYTES):
            if f.readinto(t) != len(t) * width:
                return _clear(q)
        if f.read(size) != head:
            return _clear(q)
        q.since = since
        return None
    except (OSError, ValueError) as e:
        _clear(q)
        return "unreadable: %s" % e
    finally:
        f.close()


def _clear(q):
    """Forget what a torn file left half read into the tables."""
    for t in q._tables:
        for j in range(len(t)):
            t[j] = 0
    return "torn"
