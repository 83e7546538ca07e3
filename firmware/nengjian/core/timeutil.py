"""Gateway time: UTC seconds since 1970 inside, China Standard Time (UTC+8, no DST) on the wire.

MicroPython ports disagree on the epoch (2000 on older ESP32 builds, 1970 on the unix port);
everything here converts to the 1970 epoch once, so stored records mean the same on every board.
"""

import time

CST_OFFSET = 8 * 3600
_EPOCH_SHIFT = 0 if time.gmtime(0)[0] == 1970 else 946684800


_source = None


def set_source(fn):
    """Take UTC seconds from fn() instead of the RTC (the board's clock, a test's clock)."""
    global _source
    _source = fn


def now():
    """UTC seconds since 1970-01-01 (int)."""
    if _source is not None:
        return int(_source())
    return int(time.time()) + _EPOCH_SHIFT


def civil(ts):
    """(year, month, day, hour, minute, second) of UTC seconds `ts`."""
    return time.gmtime(ts - _EPOCH_SHIFT)[:6]


def timestamp(y, mo, d, h=0, mi=0, s=0):
    """UTC seconds of a UTC civil time."""
    return int(time.mktime((y, mo, d, h, mi, s, 0, 0))) + _EPOCH_SHIFT


def cst_text(ts):
    """'yyyy-MM-dd HH:mm:ss' in China Standard Time, as the platforms want it."""
    t = civil(ts + CST_OFFSET)
    return "%04d-%02d-%02d %02d:%02d:%02d" % t


def iso_utc(ts):
    t = civil(ts)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % t


def slot_start(ts, period_s):
    """Start of the statistics period holding ts, aligned on CST boundaries.

    Periods up to a day divide 86400 and CST is a whole 8 h from UTC, so aligning the CST
    timestamp and shifting back is exact.
    """
    local = ts + CST_OFFSET
    return local - local % period_s - CST_OFFSET
