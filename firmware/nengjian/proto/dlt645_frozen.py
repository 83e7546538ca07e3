"""DL/T 645-2007 frozen data, meter clock and broadcast time sync: the fields of a meter's memory.

Owns the frozen-data and clock DIs and their value fields; frames and replies are the codec's
(nengjian.proto.dlt645: build_read, read_raw, build_time_sync). Apart from it so that a DL/T 645
site pays heap for this only while it refills a gap or checks a meter clock
(nengjian.meters.refill, nengjian.meters.meterclock); nothing of transport.

SPEC section 5, *fairly sure*: DI3 = 05 frozen data, DI2 04 hourly freeze (整点冻结) / 06 daily
freeze (日冻结), DI1 00 the freeze time (YYMMDDhhmm, 5 bytes) / 01 forward active energy (the daily
one a block: total, then each tariff, 4 bytes XXXXXX.XX each), DI0 = N, the N-th most recent.
Settlement values: 00 01 00 N (N months back). Public samples disagree on how DI0 counts, so the
DI of the most recent freeze is profile data and frozen_di() counts back from it. Meter clock:
04 00 01 01 date and weekday (YYMMDDWW), 04 00 01 02 time (hhmmss). Like every multi-byte field,
each goes low byte first: a freeze time is mm hh DD MM YY on the wire, a date WW DD MM YY, a time
ss mm hh.
"""

from nengjian.core.compat import const
from nengjian.proto.dlt645 import MAX_DATA, UnexpectedReply, bcd_int, build_read, read_raw

DI_CLOCK_DATE = const(0x04000101)  # YYMMDDWW
DI_CLOCK_TIME = const(0x04000102)  # hhmmss
FREEZE_TIME_BYTES = const(5)
ENERGY_BYTES = const(4)
ENERGY_DECIMALS = const(2)


def frozen_di(latest_di, n):
    """DI of the n-th most recent freeze (n = 1: latest_di itself); ValueError past DI0 FF."""
    d0 = (latest_di & 0xFF) + n - 1
    if n < 1 or d0 > 0xFF:
        raise ValueError("freeze %d out of DI0 range" % n)
    return (latest_di & 0xFFFFFF00) | d0


def build_read_frozen(out, addr, latest_di, n, preamble=True):
    """Read request for the n-th most recent freeze of the kind whose latest is latest_di."""
    return build_read(out, addr, frozen_di(latest_di, n), preamble)


def _bcd_byte(v, off):
    return bcd_int(v, off, 1, False, 0)


def decode_freeze_time(value, off=0):
    """(year, month, day, hour, minute) of a plain freeze time field (mm hh DD MM YY, low byte first).

    BCDError for a non-decimal nibble, UnexpectedReply for a field that is no date (a meter that has
    not frozen yet answers zeros or FF)."""
    t = (2000 + _bcd_byte(value, off + 4), _bcd_byte(value, off + 3), _bcd_byte(value, off + 2),
         _bcd_byte(value, off + 1), _bcd_byte(value, off))
    if not (1 <= t[1] <= 12 and 1 <= t[2] <= 31 and t[3] <= 23 and t[4] <= 59):
        raise UnexpectedReply("freeze time is no date")
    return t


def decode_frozen_energy(value, off=0):
    """Exact raw total (decimals ENERGY_DECIMALS) of a plain frozen-energy field or block (total first)."""
    return bcd_int(value, off, ENERGY_BYTES, False, 0)


def decode_clock(date_value, time_value, date_off=0, time_off=0):
    """(year, month, day, hour, minute, second) of the meter clock: plain date WW DD MM YY and time
    ss mm hh fields (low byte first) as read from DI_CLOCK_DATE and DI_CLOCK_TIME."""
    t = (2000 + _bcd_byte(date_value, date_off + 3), _bcd_byte(date_value, date_off + 2),
         _bcd_byte(date_value, date_off + 1), _bcd_byte(time_value, time_off + 2),
         _bcd_byte(time_value, time_off + 1), _bcd_byte(time_value, time_off))
    if not (1 <= t[1] <= 12 and 1 <= t[2] <= 31 and t[3] <= 23 and t[4] <= 59 and t[5] <= 59):
        raise UnexpectedReply("meter clock is no date")
    return t


def parse_freeze_time(buf, n, addr, di):
    """Whole reply to a freeze-time read -> (year, month, day, hour, minute)."""
    v = bytearray(FREEZE_TIME_BYTES)
    if read_raw(buf, n, addr, di, v) != FREEZE_TIME_BYTES:
        raise UnexpectedReply("freeze time length")
    return decode_freeze_time(v)


def parse_frozen_energy(buf, n, addr, di):
    """Whole reply to a frozen-energy read (a total or a block) -> (raw, decimals)."""
    v = bytearray(MAX_DATA)
    count = read_raw(buf, n, addr, di, v)
    if count < ENERGY_BYTES or count % ENERGY_BYTES:
        raise UnexpectedReply("frozen energy length %d" % count)
    return decode_frozen_energy(v), ENERGY_DECIMALS


def parse_clock(date_buf, date_n, time_buf, time_n, addr):
    """Whole replies to the date and time reads -> (year, month, day, hour, minute, second)."""
    dv = bytearray(4)
    tv = bytearray(3)
    if read_raw(date_buf, date_n, addr, DI_CLOCK_DATE, dv) != 4 or read_raw(time_buf, time_n, addr,
                                                                            DI_CLOCK_TIME, tv) != 3:
        raise UnexpectedReply("meter clock length")
    return decode_clock(dv, tv)
