"""DL/T 645-2007 and DL/T 645-1997 codec: request frames into caller buffers, replies parsed.

Owns the electricity-meter wire format and nothing of transport (no UART, no asyncio). Also owns the
errors of the 68H meter codecs, in the tree of nengjian.proto.errors (cjt188 re-exports them;
IncompleteFrame and ChecksumError are defined in frame68, which does the 68H framing for both
codecs, and re-exported here with FrameError):

    FrameError (errors.FrameError)  bytes that are not a usable reply
      IncompleteFrame               more bytes are needed (bytes_needed() > 0)
      ChecksumError(CheckError)     CS byte wrong
      AddressMismatch               reply from another meter than the one asked
      UnexpectedReply               wrong direction, function, DI echo, length or sequence
      BCDError                      a value field holds a non-decimal nibble
    MeterErrorReply(MeterRefused)   a well-formed abnormal reply; .code, .names, .control

Frame (both editions): [FE x0..4] 68 A0..A5 68 C L DATA CS 16. Address: 6 BCD bytes, lowest first,
so meter "123456789012" is 12 90 78 56 34 12 on the wire. Every DATA byte carries +33H. CS is the
sum mod 256 from the first 68 to the last data byte. C: D7 direction (1 = from meter), D6 abnormal
reply, D5 follow-up frames, D4..D0 function.

2007 functions: 11H read (DI3..DI0 sent DI0 first), 12H read follow-up (DI + SEQ; its reply data is
DI, value, SEQ), 13H read address (reply data = the 6 address bytes), 08H broadcast time sync.
1997 functions: 01H read (2-byte DI, DI0 first), reply 81H (A1H with follow-up), error C1H.

Broadcast time sync (08H, both editions) carries YYMMDDhhmmss, and like every multi-byte item it is
sent low byte first: ss mm hh DD MM YY, each +33H, to 99 99 99 99 99 99, no reply. *fairly sure*:
SPEC does not give the order; the standard's general rule (low byte first) and public code whose
time-sync call takes (ss, mm, hh, DD, MM, YY) agree.

Values: parse_read*() (nengjian.proto.dlt645x: no gateway path parses a whole reply so; the
drivers work on check_reply, item and bcd_int, the same steps) return (raw, decimals, more): raw is the exact scaled integer
(123456 with decimals 2 = 1234.56 kWh). ESP32 MicroPython floats are 32-bit (7 digits), which
cannot hold 999999.99 kWh exactly, so keep raw integers for accounting; decode_bcd() gives a float
for display. DI table (2007; SPEC section 5 is the reference, several public samples have wrong DIs):
  00 DI2 DI1 DI0  energy XXXXXX.XX kWh, 4 bytes; DI2 00..0A (00 combined active, 01 forward, 02
                  reverse, 03/04 combined reactive, 05..08 quadrants, 09/0A apparent), DI1 tariff
                  00..3F, DI0 00 current or 01..0C settlements back. Combined (DI2 00, 03, 04) has a
                  sign bit *fairly sure*; the others are unsigned.
  02 01 0p 00     phase p voltage XXX.X V, 2 bytes
  02 02 0p 00     phase p current XXX.XXX A, 3 bytes, sign bit
  02 03/04/05 0p 00  active/reactive/apparent power XX.XXXX (kW, kvar, kVA), 3 bytes, sign bit
                  (p = 0 total, 1..3 phases)
  02 06 0p 00     power factor X.XXX, 2 bytes, sign bit
  02 80 00 02     grid frequency XX.XX Hz, 2 bytes *fairly sure*
A sign bit is the top bit of the most significant (last sent) byte. Other DIs (blocks with FF, event
records) go through read_raw().
1997 table: 9010 forward active total, 9011..9014 tariffs, 9020..9024 reverse (XXXXXX.XX kWh,
4 bytes) *sure for 9010*; B611..B613 voltage XXX V (2 bytes), B621..B623 current XX.XX A (2 bytes),
B630..B633 active power XX.XXXX kW (3 bytes), B650..B653 power factor X.XXX (2 bytes) *fairly sure*.

Error byte: 2007 bit0 other, 1 no such data, 2 password/unauthorised, 3 baud cannot change, 4 year
zones, 5 day periods, 6 tariffs (SPEC). 1997 bit0 illegal data, 1 wrong DI, 2 wrong password,
4..6 as 2007 *fairly sure*.

Framing and resynchronisation: a frame starts at the first 68H whose companion 68H sits 7 bytes later
(or is not received yet); everything before it (FE preamble, line noise) is skipped. bytes_needed()
tells the bus how many more bytes that frame needs (a lower bound until L has arrived), 0 once it is
complete, and raises FrameError when it cannot fit the caller's buffer (frame68 does this for both
codecs, with this codec's offsets).

Addresses are given as a string of up to 12 digits (zero-padded on the left; "AA" pairs are the
wildcard) or as 6 wire-order bytes; pre-encode with address_bytes() once to avoid per-call work.
"""

from nengjian.core.compat import const
from nengjian.proto import frame68
from nengjian.proto.errors import FrameError, MeterRefused
from nengjian.proto.frame68 import (  # noqa: F401  (re-exported: one error hierarchy)
    ChecksumError,
    IncompleteFrame,
    checksum,
)

START = const(0x68)
END = const(0x16)
PREAMBLE_BYTE = const(0xFE)
BIAS = const(0x33)
MIN_FRAME = const(12)  # 68 A*6 68 C L CS 16
_LEN_OFF = const(9)  # L, counted from the first 68
_PAIR_OFF = const(7)  # the second 68
MAX_DATA = const(255)

DIR_BIT = const(0x80)
ERROR_BIT = const(0x40)
MORE_BIT = const(0x20)
FUNC_MASK = const(0x1F)

_C_TIME_SYNC = const(0x08)
C_READ = const(0x11)
C_READ_NEXT = const(0x12)
C_READ_ADDR = const(0x13)
C97_READ = const(0x01)
_C97_READ_NEXT = const(0x02)

ADDR_WILDCARD = "AAAAAAAAAAAA"
ADDR_BROADCAST = "999999999999"
WILDCARD_BYTE = const(0xAA)

_DI_COMBINED_ACTIVE = const(0x00000000)
DI_FORWARD_ACTIVE = const(0x00010000)
_DI_REVERSE_ACTIVE = const(0x00020000)
_DI_VOLTAGE_A = const(0x02010100)
_DI_CURRENT_A = const(0x02020100)
_DI_ACTIVE_POWER = const(0x02030000)
_DI_POWER_FACTOR = const(0x02060000)
_DI_FREQUENCY = const(0x02800002)
DI97_FORWARD_ACTIVE = const(0x9010)
_DI97_REVERSE_ACTIVE = const(0x9020)
_DI97_VOLTAGE_A = const(0xB611)

ERROR_NAMES = ("other", "no_such_data", "unauthorised", "baud_unchangeable",
               "too_many_year_zones", "too_many_day_periods", "too_many_tariffs", "reserved7")
ERROR_NAMES_97 = ("illegal_data", "wrong_di", "wrong_password", "reserved3",
                  "too_many_year_zones", "too_many_day_periods", "too_many_tariffs", "reserved7")


class AddressMismatch(FrameError):
    pass


class UnexpectedReply(FrameError):
    pass


class BCDError(FrameError):
    pass


class MeterErrorReply(MeterRefused):
    """The meter understood the request and refused it (D1H / C1H / CJ/T 188 abnormal reply)."""

    def __init__(self, code, names, control=0):
        super().__init__(code, "meter error 0x%02X %s" % (code, "|".join(names)))
        self.names = names
        self.control = control


def error_names(code, v1997=False):
    """Names of the bits set in an error byte, lowest bit first (a tuple; empty for 0)."""
    table = ERROR_NAMES_97 if v1997 else ERROR_NAMES
    out = []
    for bit in range(8):
        if code & (1 << bit):
            out.append(table[bit])
    return tuple(out)


# ---- BCD -------------------------------------------------------------------------------------

def bcd_int(buf, off=0, nbytes=-1, signed=False, bias=0):
    """Exact integer of a low-byte-first BCD field (bias 33H for wire bytes; sign = top bit)."""
    if nbytes < 0:
        nbytes = len(buf) - off
    v = 0
    neg = False
    i = off + nbytes - 1
    while i >= off:
        b = (buf[i] - bias) & 0xFF
        if signed and i == off + nbytes - 1 and b & 0x80:
            neg = True
            b &= 0x7F
        hi = b >> 4
        lo = b & 0x0F
        if hi > 9 or lo > 9:
            raise BCDError("not BCD: 0x%02X" % b)
        v = v * 100 + hi * 10 + lo
        i -= 1
    return -v if neg else v


def decode_bcd(buf, decimals=0, signed=False):
    """Value of a low-byte-first BCD field without bias: int if decimals == 0, else float."""
    raw = bcd_int(buf, 0, len(buf), signed, 0)
    if decimals == 0:
        return raw
    return raw / (10 ** decimals)


def encode_bcd(out, off, raw, nbytes, signed=False, bias=0):
    """Write integer raw as nbytes of low-byte-first BCD (+bias); ValueError if it does not fit."""
    neg = raw < 0
    if neg and not signed:
        raise ValueError("negative value for unsigned field")
    v = -raw if neg else raw
    for k in range(nbytes):
        d = v % 100
        v //= 100
        b = ((d // 10) << 4) | (d % 10)
        if k == nbytes - 1:
            if v or (signed and b & 0x80):
                raise ValueError("value does not fit %d BCD bytes" % nbytes)
            if neg:
                b |= 0x80
        out[off + k] = (b + bias) & 0xFF
    return off + nbytes


# ---- addresses -------------------------------------------------------------------------------

def _nibble(s, k):
    if k < 0:
        return 0
    c = ord(s[k])
    if 48 <= c <= 57:
        return c - 48
    if c == 65 or c == 97:  # 'A' / 'a': only inside an AA wildcard pair
        return 10
    raise ValueError("bad address digit")


def address_byte(addr, i):
    """Wire byte A<i> of an address given as a digit string (A0 = last two digits) or as bytes."""
    if isinstance(addr, str):
        j = len(addr) - 2 * i
        hi = _nibble(addr, j - 2)
        lo = _nibble(addr, j - 1)
        if (hi == 10) != (lo == 10):
            raise ValueError("bad address pair")
        return (hi << 4) | lo
    return addr[i]


def _check_address(addr, nbytes):
    if isinstance(addr, str):
        if len(addr) > 2 * nbytes:
            raise ValueError("address longer than %d digits" % (2 * nbytes))
        for i in range(nbytes):
            address_byte(addr, i)
    elif len(addr) != nbytes:
        raise ValueError("address must be %d bytes" % nbytes)


def address_bytes(addr, nbytes=6):
    """Wire-order bytes of an address string (do it once per meter, at configuration)."""
    _check_address(addr, nbytes)
    out = bytearray(nbytes)
    for i in range(nbytes):
        out[i] = address_byte(addr, i)
    return bytes(out)


def decode_address(buf, off=0, nbytes=6):
    """Address string (A5..A0, 12 hex digits, upper case) of wire-order bytes at off."""
    s = ""
    for i in range(nbytes - 1, -1, -1):
        s += "%02X" % buf[off + i]
    return s


# ---- building --------------------------------------------------------------------------------

def _head(out, addr, ctrl, length, preamble):
    _check_address(addr, 6)
    p = 0
    # preamble: True for the usual 4 FE bytes, a count, or False/None/0 for none
    for _ in range(4 if preamble is True else int(preamble or 0)):
        out[p] = PREAMBLE_BYTE
        p += 1
    out[p] = START
    for i in range(6):
        out[p + 1 + i] = address_byte(addr, i)
    out[p + 7] = START
    out[p + 8] = ctrl
    out[p + 9] = length
    return p


def _put_di(out, p, di, nbytes):
    for k in range(nbytes):
        out[p + k] = ((di >> (8 * k)) + BIAS) & 0xFF
    return p + nbytes


def build_read(out, addr, di, preamble=True):
    """2007 read data (11H) of 4-byte DI (e.g. 0x00010000) into out; returns the length."""
    s = _head(out, addr, C_READ, 4, preamble)
    return frame68.tail(out, s, _put_di(out, s + 10, di, 4))


def build_read_next(out, addr, di, seq, preamble=True):
    """2007 read follow-up (12H): DI and the frame sequence number SEQ."""
    s = _head(out, addr, C_READ_NEXT, 5, preamble)
    p = _put_di(out, s + 10, di, 4)
    out[p] = (seq + BIAS) & 0xFF
    return frame68.tail(out, s, p + 1)


def build_read_address(out, preamble=True):
    """2007 read address (13H) to the AA wildcard: only valid with a single meter on the bus."""
    s = _head(out, ADDR_WILDCARD, C_READ_ADDR, 0, preamble)
    return frame68.tail(out, s, s + 10)


def build_time_sync(out, t, preamble=True):
    """Broadcast time sync (08H, 2007 and 1997) from t = (year, month, mday, hour, minute, second, ...).

    Data ss mm hh DD MM YY (low byte first), to 99..99; meters do not reply.
    """
    year, month, mday, hour, minute, second = t[0], t[1], t[2], t[3], t[4], t[5]
    if not (1 <= month <= 12 and 1 <= mday <= 31 and 0 <= hour <= 23 and 0 <= minute <= 59
            and 0 <= second <= 59 and year >= 0):
        raise ValueError("bad time")
    s = _head(out, ADDR_BROADCAST, _C_TIME_SYNC, 6, preamble)
    p = s + 10
    for v in (second, minute, hour, mday, month, year % 100):
        encode_bcd(out, p, v, 1, False, BIAS)
        p += 1
    return frame68.tail(out, s, p)


def build_read97(out, addr, di, preamble=True):
    """1997 read data (01H) of 2-byte DI (e.g. 0x9010), DI0 first."""
    s = _head(out, addr, C97_READ, 2, preamble)
    return frame68.tail(out, s, _put_di(out, s + 10, di, 2))


# ---- framing ---------------------------------------------------------------------------------

def frame_start(buf, n=-1):
    """Index of the first plausible frame start in buf[:n], or n when there is none (all noise)."""
    return frame68.frame_start(buf, n, _LEN_OFF, _PAIR_OFF)


def bytes_needed(buf, n=-1):
    """More bytes needed to complete the frame in buf[:n] (0 = complete). FrameError if it cannot fit."""
    return frame68.bytes_needed(buf, n, _LEN_OFF, _PAIR_OFF)


def parse_reply(buf, n, addr, func):
    """Validate a complete reply to function func from addr (None: any; AA bytes match any).

    n is the count of valid bytes in buf (None: all). Returns (control, data_offset, data_length);
    data bytes are still +33H. Raises the typed errors above; an abnormal reply raises
    MeterErrorReply with the error byte decoded (1997 names for functions below 11H except 08H).
    """
    d = check_reply(buf, n, addr, func)
    return buf[d - 2], d, buf[d - 1]


def check_reply(buf, n, addr, func):
    """parse_reply() without a tuple, for the poll loop: the data offset d (control at d - 2, data
    length at d - 1)."""
    s = frame68.check_start(buf, n, _LEN_OFF, _PAIR_OFF)
    length = buf[s + _LEN_OFF]
    c = buf[s + 8]
    if not c & DIR_BIT:
        raise UnexpectedReply("frame from a master")
    if addr is not None:
        for i in range(6):
            want = address_byte(addr, i)
            if want != WILDCARD_BYTE and buf[s + 1 + i] != want:
                raise AddressMismatch("reply from " + decode_address(buf, s + 1))
    if c & FUNC_MASK != func:
        raise UnexpectedReply("control 0x%02X" % c)
    d = s + 10
    if c & ERROR_BIT:
        if length < 1:
            raise UnexpectedReply("abnormal reply without error byte")
        code = (buf[d] - BIAS) & 0xFF
        raise MeterErrorReply(code, error_names(code, func < C_READ and func != _C_TIME_SYNC), c)
    return d


def _check_di(buf, d, length, di, nbytes):
    if length < nbytes:
        raise UnexpectedReply("reply shorter than its DI")
    for k in range(nbytes):
        if (buf[d + k] - BIAS) & 0xFF != (di >> (8 * k)) & 0xFF:
            raise UnexpectedReply("DI echo differs")


def item(di):
    """(nbytes, decimals, signed) of a 2007 DI in the table, or None."""
    d3 = (di >> 24) & 0xFF
    d2 = (di >> 16) & 0xFF
    d1 = (di >> 8) & 0xFF
    d0 = di & 0xFF
    if d3 == 0x00:
        if d2 <= 0x0A and d1 <= 0x3F and d0 <= 0x0C:
            return (4, 2, d2 == 0x00 or d2 == 0x03 or d2 == 0x04)
        return None
    if d3 != 0x02:
        return None
    if d2 == 0x80:
        return (2, 2, False) if d1 == 0x00 and d0 == 0x02 else None
    if d0 != 0x00:
        return None
    if d2 == 0x01 and 1 <= d1 <= 3:
        return (2, 1, False)
    if d2 == 0x02 and 1 <= d1 <= 3:
        return (3, 3, True)
    if 0x03 <= d2 <= 0x05 and d1 <= 3:
        return (3, 4, True)
    if d2 == 0x06 and d1 <= 3:
        return (2, 3, True)
    return None


def item97(di):
    """(nbytes, decimals, signed) of a 1997 DI in the table, or None."""
    if 0x9010 <= di <= 0x9014 or 0x9020 <= di <= 0x9024:
        return (4, 2, False)
    if 0xB611 <= di <= 0xB613:
        return (2, 0, False)
    if 0xB621 <= di <= 0xB623:
        return (2, 2, False)
    if 0xB630 <= di <= 0xB633:
        return (3, 4, False)
    if 0xB650 <= di <= 0xB653:
        return (2, 3, False)
    return None


def read_raw(buf, n, addr, di, out, seq=-1, v1997=False):
    """Any DI: copy the reply's value bytes (after the DI, +33H removed) into out; returns count."""
    di_bytes = 2 if v1997 else 4
    func = (C97_READ if v1997 else C_READ) if seq < 0 else (_C97_READ_NEXT if v1997 else C_READ_NEXT)
    _, d, length = parse_reply(buf, n, addr, func)
    _check_di(buf, d, length, di, di_bytes)
    count = length - di_bytes - (1 if seq >= 0 else 0)
    if count < 0:
        raise UnexpectedReply("reply too short")
    if count > len(out):
        raise FrameError("value longer than the output buffer")
    for k in range(count):
        out[k] = (buf[d + di_bytes + k] - BIAS) & 0xFF
    return count


def parse_address_reply(buf, n=-1, addr=ADDR_WILDCARD):
    """2007 read-address reply (93H) -> the meter's 12-digit address string."""
    _, d, length = parse_reply(buf, n, addr, C_READ_ADDR)
    if length != 6:
        raise UnexpectedReply("address reply length %d" % length)
    for i in range(6):
        if (buf[d + i] - BIAS) & 0xFF != buf[d - 9 + i]:
            raise UnexpectedReply("address in data differs from header")
    return decode_address(buf, d - 9)
