"""CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), table-driven, no allocation per call.

On MicroPython the loop is viper code (compiled to the board's machine code: the bundle passes
`mpy_march`, xtensawin on the ESP32 boards); CPython, which imports the codecs for the property
tests, runs the same table loop in Python.
"""

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

try:
    import micropython

    _NATIVE = True
except ImportError:  # CPython
    _NATIVE = False

if _NATIVE:

    @micropython.viper
    def _crc(buf, start: int, end: int, table) -> int:
        t = ptr16(table)  # noqa: F821  (viper's pointer casts)
        b = ptr8(buf)  # noqa: F821
        c = 0xFFFF
        i = start
        while i < end:
            c = (c >> 8) ^ t[(c ^ b[i]) & 0xFF]
            i += 1
        return c

else:

    def _crc(buf, start, end, table):
        c = 0xFFFF
        for i in range(start, end):
            c = (c >> 8) ^ table[(c ^ buf[i]) & 0xFF]
        return c


def crc16(buf, start=0, end=None):
    """CRC over buf[start:end]; on the wire the low byte goes first."""
    if end is None:
        end = len(buf)
    if start < 0 or end > len(buf):
        # the viper loop reads memory without bounds checks: refuse what the Python loop would
        raise IndexError("CRC range outside the buffer")
    return _crc(buf, start, end, _TABLE)
