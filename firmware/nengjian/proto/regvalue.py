"""Decode numbers from Modbus register bytes: u16..u64, s16..s64, float32/64 in any word order,
and scale them to exact decimal mantissas.

Word orders name where the big-endian bytes A B C D (E F G H) stand on the wire: ABCD is big-endian,
CDAB swaps 16-bit words, BADC swaps bytes inside words, DCBA is little-endian. For 64-bit values the
same rule applies to the four words.
"""

import struct

from nengjian.proto.errors import FrameError

SIZES = {"u16": 2, "s16": 2, "u32": 4, "s32": 4, "f32": 4, "u64": 8, "s64": 8, "f64": 8}
_FORMATS = {"u16": ">H", "s16": ">h", "u32": ">I", "s32": ">i", "f32": ">f", "u64": ">Q", "s64": ">q", "f64": ">d"}
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")

_scratch = bytearray(8)


def registers(type_name):
    return SIZES[type_name] // 2


def decode(buf, offset, type_name, order="ABCD"):
    """Value of type_name at buf[offset:], read in the given word order."""
    size = SIZES[type_name]
    if order == "ABCD" and type_name[0] != "f":
        # big-endian integers by arithmetic: struct.unpack_from would make a tuple per value
        v = 0
        for i in range(offset, offset + size):
            v = (v << 8) | buf[i]
        if type_name[0] == "s" and v >> (8 * size - 1):
            v -= 1 << (8 * size)
        return v
    s = _scratch
    if order == "ABCD" or size == 2 and order in ("CDAB",):
        for i in range(size):
            s[i] = buf[offset + i]
    elif order == "DCBA" or size == 2 and order == "BADC":
        for i in range(size):
            s[i] = buf[offset + size - 1 - i]
    elif order == "CDAB":
        words = size // 2
        for w in range(words):
            src = offset + 2 * (words - 1 - w)
            s[2 * w] = buf[src]
            s[2 * w + 1] = buf[src + 1]
    elif order == "BADC":
        for i in range(0, size, 2):
            s[i] = buf[offset + i + 1]
            s[i + 1] = buf[offset + i]
    else:
        raise ValueError("unknown word order " + order)
    if type_name[0] != "f":
        v = 0
        for i in range(size):
            v = (v << 8) | s[i]
        if type_name[0] == "s" and v >> (8 * size - 1):
            v -= 1 << (8 * size)
        return v
    return struct.unpack_from(_FORMATS[type_name], s, 0)[0]


def encode(value, type_name, order="ABCD"):
    """Bytes for value as a meter would send them (used by simulators and tests)."""
    size = SIZES[type_name]
    raw = struct.pack(_FORMATS[type_name], value)
    if order == "ABCD" or size == 2 and order == "CDAB":
        return raw
    if order == "DCBA" or size == 2 and order == "BADC":
        return bytes(reversed(raw))
    if order == "CDAB":
        words = [raw[i:i + 2] for i in range(0, size, 2)]
        return b"".join(reversed(words))
    if order == "BADC":
        return bytes(raw[i ^ 1] for i in range(size))
    raise ValueError("unknown word order " + order)


def mantissa(v, k):
    """v * 10**k as an integer (the mantissa of a Decimal whose exponent is the point's).

    Integers are exact for k >= 0 and rounded half away from zero for k < 0; floats (float32 holds
    about 7 significant digits) are rounded to the nearest integer. Raises FrameError (a ValueError)
    for NaN or infinity: a meter that sends them has no reading to give, as with a frame not to trust.
    """
    if isinstance(v, float):
        if v != v or v - v != 0.0:
            raise FrameError("meter sent a non-finite float")
        return int(round(v * 10 ** k))
    if k >= 0:
        return v * 10 ** k
    d = 10 ** -k
    if v >= 0:
        return (v + d // 2) // d
    return -((-v + d // 2) // d)
