"""Manual entries: quantities without an online meter (coal or oil deliveries, a tank dip), typed in
on the host CLI by the crew and passed to the gateway through the console.

Owns: checking an entry (data-item code and its scope rule, a day / month / year period that starts
exactly on its CST boundary and has begun, an exact non-negative decimal) and storing it as a VALUE
with inputType 5 (manual entry) plus a ledger event saying what was entered. Delivery uploads it
like any other value; the platform's natural key (code, statType, statDate) means a corrected
entry for the same period replaces the first one there.

Real-time values are never entered by hand (SPEC 2: everything not entered by hand goes up as
real-time data), so statType 0 is refused. The console owns who may call `enter` (a colleague's
module); `check` is the same validation without a store, for the host to refuse a typo before it
reaches the gateway.
"""

from nengjian.core import identity, records, timeutil
from nengjian.core.decimal import Decimal

MAX_AGE_S = 400 * 86400  # a period that ended longer ago is taken for a typo in the year
MAX_DIGITS = 15
MAX_DECIMALS = 6


class ManualError(ValueError):
    pass


def parse_decimal(text, max_decimals=MAX_DECIMALS):
    """Exact Decimal of plain decimal text ('35.20', '-1', '0.5'); ValueError if it is anything else
    (exponents, inner spaces, more than 15 digits or `max_decimals` decimals, nan)."""
    if not isinstance(text, str):
        raise ValueError("expected text, got %r" % (text,))
    s = text.strip()
    neg = s.startswith("-")
    if neg or s.startswith("+"):
        s = s[1:]
    whole, dot, frac = s.partition(".")
    if not (whole or frac) or (whole and not whole.isdigit()) or (frac and not frac.isdigit()):
        raise ValueError("%r is not a decimal number (digits, one optional point)" % text)
    if dot and not frac:
        raise ValueError("%r: digits are missing after the decimal point" % text)
    if len(frac) > max_decimals:
        raise ValueError("%r has more than %d decimals" % (text, max_decimals))
    digits = (whole + frac).lstrip("0") or "0"
    if len(digits) > MAX_DIGITS:
        raise ValueError("%r has more than %d digits" % (text, MAX_DIGITS))
    m = int(whole + frac) if whole + frac else 0
    return Decimal(-m if neg else m, -len(frac))


def cst_timestamp(y, mo, d, h=0, mi=0, s=0):
    """UTC seconds of a China Standard Time civil time (no mktime: its time zone differs by port)."""
    yy = y - (1 if mo <= 2 else 0)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + h * 3600 + mi * 60 + s - timeutil.CST_OFFSET


def parse_start(stat_type, start):
    """UTC seconds of a period start given as UTC seconds or as CST text: 'yyyy', 'yyyy-MM',
    'yyyy-MM-dd' or 'yyyy-MM-dd HH:mm:ss' (what the platform's statDate looks like)."""
    if isinstance(start, int) and not isinstance(start, bool):
        return start
    if not isinstance(start, str):
        raise ManualError("period start: expected a date text or UTC seconds, got %r" % (start,))
    text = start.strip()
    date, _, clock = text.partition(" ")
    parts = date.split("-")
    try:
        if not 1 <= len(parts) <= 3 or len(parts[0]) != 4 or any(not p.isdigit() for p in parts):
            raise ValueError
        y = int(parts[0])
        mo = int(parts[1]) if len(parts) > 1 else 1
        d = int(parts[2]) if len(parts) > 2 else 1
        h = mi = s = 0
        if clock:
            hms = clock.split(":")
            if len(hms) != 3 or any(not p.isdigit() for p in hms):
                raise ValueError
            h, mi, s = int(hms[0]), int(hms[1]), int(hms[2])
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
            raise ValueError
    except ValueError:
        raise ManualError("period start %r: write yyyy-MM-dd (day), yyyy-MM (month) or yyyy (year), CST" % text)
    ts = cst_timestamp(y, mo, d, h, mi, s)
    if timeutil.civil(ts + timeutil.CST_OFFSET)[:3] != (y, mo, d):
        raise ManualError("period start %r: no such date" % text)
    return ts


def check(code, stat_type, stat_start, value_text, scope, now=None):
    """(period start in UTC seconds, Decimal) of a valid entry; ManualError saying what is wrong."""
    problem = identity.data_code_problem(code, scope)
    if problem:
        raise ManualError("code %s: %s" % (code, identity.text(problem)))
    if stat_type == records.REALTIME:
        raise ManualError("real-time values come from meters; enter a day (1), month (2) or year (3) value")
    if stat_type not in (records.DAY, records.MONTH, records.YEAR):
        raise ManualError("statType %r: must be 1 (day), 2 (month) or 3 (year)" % (stat_type,))
    start = parse_start(stat_type, stat_start)
    y, mo, d, h, mi, s = timeutil.civil(start + timeutil.CST_OFFSET)
    if h or mi or s:
        raise ManualError("period start %s: must be 00:00:00 CST" % timeutil.cst_text(start))
    if stat_type == records.MONTH and d != 1:
        raise ManualError("month value: period start %s is not the 1st of a month" % timeutil.cst_text(start))
    if stat_type == records.YEAR and (mo, d) != (1, 1):
        raise ManualError("year value: period start %s is not 1 January" % timeutil.cst_text(start))
    if now is None:
        now = timeutil.now()
    if start > now:
        raise ManualError("period starting %s has not begun yet" % timeutil.cst_text(start))
    if stat_type == records.DAY:
        end = start + 86400
    elif stat_type == records.MONTH:
        end = cst_timestamp(y + mo // 12, mo % 12 + 1, 1)
    else:
        end = cst_timestamp(y + 1, 1, 1)
    if now - end > MAX_AGE_S:
        raise ManualError("period starting %s ended more than %d days ago: a typo in the year?"
                          % (timeutil.cst_text(start), MAX_AGE_S // 86400))
    try:
        value = parse_decimal(value_text)
    except ValueError as e:
        raise ManualError("value: %s" % e)
    if value.mantissa < 0:
        raise ManualError("value %s: a quantity cannot be negative" % value_text)
    return start, value


def enter(store, code, stat_type, stat_start, value_text, scope, now=None, observe=None, who=""):
    """Check and store a manual entry; returns (seq, VALUE record). ManualError if it is refused.

    `observe` (optional) is called with the record (tce sums, alarms); `who` goes into the ledger.
    """
    if now is None:
        now = timeutil.now()
    start, value = check(code, stat_type, stat_start, value_text, scope, now)
    rec = [records.VALUE, now, code, stat_type, start, value, True, records.MANUAL, scope]
    seq = store.append(rec)
    text = "entered %s %s %s = %s (scope %d)" % (code, _STAT[stat_type], timeutil.cst_text(start), value.text(), scope)
    if who:
        text += " by " + who
    store.append([records.EVENT, now, "manual", text, "manual"])
    if observe is not None:
        observe(rec)
    return seq, rec


_STAT = {records.DAY: "day", records.MONTH: "month", records.YEAR: "year"}
