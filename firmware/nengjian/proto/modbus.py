"""Modbus RTU framing for a master: build requests, frame and check replies.

Knows nothing of UARTs or timing; the bus layer asks `bytes_needed` how long to keep reading and
`parse_reply` whether what arrived is the answer to what it asked. Frames are built into a caller's
bytearray so the poll loop allocates nothing.
"""

from nengjian.proto.crc import crc16

READ_COILS = 1
READ_DISCRETE = 2
READ_HOLDING = 3
READ_INPUT = 4
WRITE_SINGLE = 6
WRITE_MULTIPLE = 16

MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class FrameError(ValueError):
    """The bytes are not a valid reply to the request (CRC, length, wrong unit/function)."""


class CrcError(FrameError):
    pass


class ModbusException(Exception):
    """The meter answered with an exception response."""

    def __init__(self, code):
        super().__init__("modbus exception %d (%s)" % (code, EXCEPTION_NAMES.get(code, "unknown")))
        self.code = code


def _put_crc(buf, n):
    c = crc16(buf, 0, n)
    buf[n] = c & 0xFF
    buf[n + 1] = c >> 8
    return n + 2


def build_read(buf, unit, function, address, count):
    """Request for FC 1-4 into buf; returns the frame length (8)."""
    if function not in (1, 2, 3, 4):
        raise ValueError("not a read function: %d" % function)
    limit = MAX_READ_REGISTERS if function >= 3 else MAX_READ_BITS
    if not 1 <= count <= limit:
        raise ValueError("count %d out of 1..%d" % (count, limit))
    if not 0 <= address <= 0xFFFF or address + count > 0x10000:
        raise ValueError("address out of range")
    buf[0] = unit
    buf[1] = function
    buf[2] = address >> 8
    buf[3] = address & 0xFF
    buf[4] = count >> 8
    buf[5] = count & 0xFF
    return _put_crc(buf, 6)


def build_write_single(buf, unit, address, value):
    buf[0] = unit
    buf[1] = WRITE_SINGLE
    buf[2] = address >> 8
    buf[3] = address & 0xFF
    buf[4] = (value >> 8) & 0xFF
    buf[5] = value & 0xFF
    return _put_crc(buf, 6)


def build_write_multiple(buf, unit, address, values):
    count = len(values)
    if not 1 <= count <= 123:
        raise ValueError("write of %d registers (1..123)" % count)
    buf[0] = unit
    buf[1] = WRITE_MULTIPLE
    buf[2] = address >> 8
    buf[3] = address & 0xFF
    buf[4] = 0
    buf[5] = count
    buf[6] = count * 2
    i = 7
    for v in values:
        buf[i] = (v >> 8) & 0xFF
        buf[i + 1] = v & 0xFF
        i += 2
    return _put_crc(buf, i)


def reply_length(function, count):
    """Length of a normal reply to a request of `count` registers/bits."""
    if function in (3, 4):
        return 5 + 2 * count
    if function in (1, 2):
        return 5 + (count + 7) // 8
    return 8


def find_start(buf, n, unit, function):
    """Index of the first byte that can begin our reply (skips line noise), or n if none yet."""
    for i in range(n):
        if buf[i] == unit and (i + 1 == n or buf[i + 1] & 0x7F == function):
            return i
    return n


def bytes_needed(buf, start, n, function):
    """How many more bytes complete the reply that begins at buf[start] (0 = complete)."""
    have = n - start
    if have < 2:
        return 2 - have + 3
    if buf[start + 1] & 0x80:
        return max(0, 5 - have)
    if function in (1, 2, 3, 4):
        if have < 3:
            return 3 - have + 2
        return max(0, 5 + buf[start + 2] - have)
    return max(0, 8 - have)


def parse_reply(buf, start, n, unit, function, count=0):
    """Check the reply in buf[start:n]; return (data_offset, data_len).

    Raises ModbusException for an exception reply, FrameError for anything malformed.
    """
    length = n - start
    if length < 5:
        raise FrameError("short reply (%d bytes)" % length)
    if buf[start] != unit:
        raise FrameError("reply from unit %d, asked %d" % (buf[start], unit))
    fc = buf[start + 1]
    if fc & 0x80:
        if crc16(buf, start, start + 3) != buf[start + 3] | (buf[start + 4] << 8):
            raise CrcError("CRC error in exception reply")
        if fc & 0x7F != function:
            raise FrameError("exception for function %d, asked %d" % (fc & 0x7F, function))
        raise ModbusException(buf[start + 2])
    if fc != function:
        raise FrameError("reply function %d, asked %d" % (fc, function))
    if function in (1, 2, 3, 4):
        total = 5 + buf[start + 2]
    else:
        total = 8
    if length < total:
        raise FrameError("truncated reply (%d of %d bytes)" % (length, total))
    end = start + total
    if crc16(buf, start, end - 2) != buf[end - 2] | (buf[end - 1] << 8):
        raise CrcError("CRC error")
    if function in (1, 2, 3, 4):
        if count:
            want = 2 * count if function >= 3 else (count + 7) // 8
            if buf[start + 2] != want:
                raise FrameError("byte count %d, expected %d" % (buf[start + 2], want))
        return start + 3, buf[start + 2]
    return start + 2, 4
