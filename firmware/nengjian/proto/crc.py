"""CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), table-driven, no allocation per call."""

from array import array


def _make_table():
    t = array("H", [0] * 256)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    return t


_TABLE = _make_table()


def crc16(buf, start=0, end=None):
    """CRC over buf[start:end]; on the wire the low byte goes first."""
    if end is None:
        end = len(buf)
    t = _TABLE
    c = 0xFFFF
    for i in range(start, end):
        c = (c >> 8) ^ t[(c ^ buf[i]) & 0xFF]
    return c
