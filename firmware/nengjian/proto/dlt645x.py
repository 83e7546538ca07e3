"""The DL/T 645 codec's functions that no gateway path calls, kept out of nengjian.proto.dlt645 so that
a gateway does not hold them: a frame of any control code (build_frame), whole-reply parsers with
the DI table's scaling (parse_read, parse_read97) and the display value of a raw reading. The
drivers take the same steps on their own buffers (dlt645.check_reply, item, bcd_int); tests, tools
and property tests use these. The wire format is dlt645's (its module doc).
"""

from nengjian.proto import dlt645 as dl
from nengjian.proto import frame68


def build_frame(out, addr, ctrl, data=b"", preamble=True):
    """Any frame: data given plain (the +33H is added here). Returns the frame length."""
    s = dl._head(out, addr, ctrl, len(data), preamble)
    p = s + 10
    for b in data:
        out[p] = (b + dl.BIAS) & 0xFF
        p += 1
    return frame68.tail(out, s, p)


def _read(buf, n, addr, di, seq, it, func, di_bytes):
    if it is None:
        raise ValueError("DI 0x%X not in the table: use read_raw" % di)
    c, d, length = dl.parse_reply(buf, n, addr, func)
    dl._check_di(buf, d, length, di, di_bytes)
    size = it[0]
    if length != di_bytes + size + (1 if seq >= 0 else 0):
        raise dl.UnexpectedReply("length %d for DI 0x%X" % (length, di))
    if seq >= 0 and (buf[d + di_bytes + size] - dl.BIAS) & 0xFF != seq & 0xFF:
        raise dl.UnexpectedReply("sequence differs")
    raw = dl.bcd_int(buf, d + di_bytes, size, it[2], dl.BIAS)
    return raw, it[1], bool(c & dl.MORE_BIT)


def parse_read(buf, n, addr, di, seq=-1):
    """2007 read reply (91H/B1H; with seq >= 0 the 12H follow-up reply) -> (raw, decimals, more)."""
    return _read(buf, n, addr, di, seq, dl.item(di), dl.C_READ if seq < 0 else dl.C_READ_NEXT, 4)


def parse_read97(buf, n, addr, di):
    """1997 read reply (81H/A1H) of a 2-byte DI -> (raw, decimals, more)."""
    return _read(buf, n, addr, di, -1, dl.item97(di), dl.C97_READ, 2)


def scaled(raw, decimals):
    """Display value of an exact raw reading (float; 32-bit on ESP32)."""
    return raw if decimals == 0 else raw / (10 ** decimals)
