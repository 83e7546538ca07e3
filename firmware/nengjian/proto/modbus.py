"""Modbus RTU framing for a master: build requests, find and check replies.

Knows nothing of UARTs or timing; the bus layer asks a framer how many bytes are still due and the
driver asks `parse_reply` whether what arrived answers what it asked. Frames are built into a
caller's bytearray so the poll loop allocates nothing.

Functions: 01 read coils, 02 read discrete inputs, 03 read holding registers, 04 read input
registers, 06 write single register, 16 write multiple registers.

Errors, all typed (a parser never raises anything else on any input), in the tree of
nengjian.proto.errors:

    FrameError (errors.FrameError)    bytes that are not a usable reply
      CrcError(CheckError)            CRC wrong
      WrongUnit                       a reply from another slave than the one asked
      WrongFunction                   a reply to another function, or a bad byte count or echo
      Truncated                       fewer bytes than the frame announces
    ModbusException(MeterRefused)     the slave answered with an exception response (.code)

Resynchronisation: `locate` finds our reply in whatever arrived (line noise, a late reply of another
slave, our own echo on a transceiver that hears itself). A candidate starts with our unit id and our
function (or function | 80H); for reads its byte count must be the one we asked for. A complete
candidate with a bad CRC is passed over if a later candidate completes correctly, so noise that
happens to look like a frame start does not cost the real reply.
"""

from nengjian.proto.crc import crc16
from nengjian.proto.errors import CheckError, FrameError, MeterRefused

READ_COILS = 1
READ_DISCRETE = 2
READ_HOLDING = 3
READ_INPUT = 4
WRITE_SINGLE = 6
WRITE_MULTIPLE = 16

MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000
MAX_WRITE_REGISTERS = 123

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


class CrcError(CheckError):
    pass


class WrongUnit(FrameError):
    pass


class WrongFunction(FrameError):
    pass


class Truncated(FrameError):
    pass


class ModbusException(MeterRefused):
    """The meter answered with an exception response."""

    def __init__(self, code):
        super().__init__(code, "modbus exception %d (%s)" % (code, EXCEPTION_NAMES.get(code, "unknown")))


def _put_crc(buf, n):
    c = crc16(buf, 0, n)
    buf[n] = c & 0xFF
    buf[n + 1] = c >> 8
    return n + 2


def _check_unit(unit):
    if not 0 <= unit <= 247:
        raise ValueError("unit id %d out of 0..247" % unit)


def build_read(buf, unit, function, address, count):
    """Request for FC 1-4 into buf; returns the frame length (8)."""
    if function not in (1, 2, 3, 4):
        raise ValueError("not a read function: %d" % function)
    _check_unit(unit)
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
    """FC 06: one register (value 0..65535, or -32768..-1 sent as two's complement)."""
    _check_unit(unit)
    if not 0 <= address <= 0xFFFF or not -0x8000 <= value <= 0xFFFF:
        raise ValueError("address or value out of range")
    buf[0] = unit
    buf[1] = WRITE_SINGLE
    buf[2] = address >> 8
    buf[3] = address & 0xFF
    buf[4] = (value >> 8) & 0xFF
    buf[5] = value & 0xFF
    return _put_crc(buf, 6)


def build_write_multiple(buf, unit, address, values):
    """FC 16: consecutive registers from address; values are 16-bit words."""
    _check_unit(unit)
    count = len(values)
    if not 1 <= count <= MAX_WRITE_REGISTERS:
        raise ValueError("write of %d registers (1..%d)" % (count, MAX_WRITE_REGISTERS))
    if not 0 <= address <= 0xFFFF or address + count > 0x10000:
        raise ValueError("address out of range")
    buf[0] = unit
    buf[1] = WRITE_MULTIPLE
    buf[2] = address >> 8
    buf[3] = address & 0xFF
    buf[4] = 0
    buf[5] = count
    buf[6] = count * 2
    i = 7
    for v in values:
        if not -0x8000 <= v <= 0xFFFF:
            raise ValueError("register value out of range")
        buf[i] = (v >> 8) & 0xFF
        buf[i + 1] = v & 0xFF
        i += 2
    return _put_crc(buf, i)


def data_bytes(function, count):
    """Byte count field of a normal reply to a read of `count` registers or bits."""
    if function in (3, 4):
        return 2 * count
    return (count + 7) // 8


def reply_length(function, count):
    """Length of a normal reply to a request of `count` registers/bits (writes: 8)."""
    if function in (1, 2, 3, 4):
        return 5 + data_bytes(function, count)
    return 8


def _is_candidate(buf, i, n, unit, function, byte_count):
    if buf[i] != unit:
        return False
    if i + 1 >= n:
        return True
    fc = buf[i + 1]
    if fc == function | 0x80:
        return True
    if fc != function:
        return False
    if byte_count < 0 or i + 2 >= n:
        return True
    return buf[i + 2] == byte_count


def find_start(buf, n, unit, function, byte_count=-1, start=0):
    """Index of the first byte at or after start that can begin our reply, or n if none yet."""
    for i in range(start, n):
        if _is_candidate(buf, i, n, unit, function, byte_count):
            return i
    return n


def bytes_needed(buf, start, n, function):
    """How many more bytes complete the reply that begins at buf[start] (0 = complete)."""
    have = n - start
    if have < 2:
        return 5 - have
    if buf[start + 1] & 0x80:
        return max(0, 5 - have)
    if function in (1, 2, 3, 4):
        if have < 3:
            return 5 - have
        return max(0, 5 + buf[start + 2] - have)
    return max(0, 8 - have)


def _crc_ok(buf, start, end):
    return crc16(buf, start, end - 2) == buf[end - 2] | (buf[end - 1] << 8)


# locate's need when every complete candidate failed its CRC: not a reply yet. On a bus, noise or a
# stray frame that parses can come before the real reply, which may still be on its way; a Modbus
# master discards a corrupt frame and waits out its response timeout. The bus keeps reading until
# then, and only at the deadline hands the first candidate to parse_reply, which raises CrcError.
CHECK_FAILED = -1


def locate(buf, n, unit, function, byte_count=-1):
    """(start, need): where our reply begins in buf[:n] and how many bytes it still needs.

    need == 0 means a complete candidate whose CRC is right. need == CHECK_FAILED: complete
    candidates only with a bad CRC, start the first of them. start == n: nothing plausible yet.
    """
    found = [n]
    need = scan(buf, n, unit, function, byte_count, found)
    return found[0], need


def scan(buf, n, unit, function, byte_count, found):
    """locate() without a tuple, for the poll loop: returns need and puts start into found[0]
    (any mutable sequence the caller made once)."""
    first_bad = -1
    i = find_start(buf, n, unit, function, byte_count, 0)
    while i < n:
        need = bytes_needed(buf, i, n, function)
        if need > 0:
            found[0] = i
            return need
        end = i + (5 if buf[i + 1] & 0x80 else (5 + buf[i + 2] if function <= 4 else 8))
        if _crc_ok(buf, i, end):
            found[0] = i
            return 0
        if first_bad < 0:
            first_bad = i
        i = find_start(buf, n, unit, function, byte_count, i + 1)
    if first_bad >= 0:
        found[0] = first_bad
        return CHECK_FAILED
    found[0] = n
    return 5


def parse_reply(buf, start, n, unit, function, count=0, echo=None):
    """Check the reply in buf[start:n]; return (data_offset, data_len).

    For reads data is the register/bit bytes; for writes it is the 4 echoed bytes (address and
    value/quantity), compared with echo[2:6] (the request) when echo is given. Raises
    ModbusException for an exception reply and FrameError subclasses for anything malformed.
    """
    off = check_reply(buf, start, n, unit, function, count, echo)
    return off, (buf[start + 2] if function in (1, 2, 3, 4) else 4)


def check_reply(buf, start, n, unit, function, count=0, echo=None):
    """parse_reply() without a tuple, for the poll loop: the data offset (data_len is the byte
    count at buf[start + 2] for reads, 4 for writes)."""
    length = n - start
    if length < 5:
        raise Truncated("short reply (%d bytes)" % max(0, length))
    if buf[start] != unit:
        raise WrongUnit("reply from unit %d, asked %d" % (buf[start], unit))
    fc = buf[start + 1]
    if fc & 0x80:
        if not _crc_ok(buf, start, start + 5):
            raise CrcError("CRC error in exception reply")
        if fc & 0x7F != function:
            raise WrongFunction("exception for function %d, asked %d" % (fc & 0x7F, function))
        raise ModbusException(buf[start + 2])
    if fc != function:
        raise WrongFunction("reply function %d, asked %d" % (fc, function))
    if function in (1, 2, 3, 4):
        total = 5 + buf[start + 2]
    else:
        total = 8
    if length < total:
        raise Truncated("truncated reply (%d of %d bytes)" % (length, total))
    end = start + total
    if not _crc_ok(buf, start, end):
        raise CrcError("CRC error")
    if function in (1, 2, 3, 4):
        if count:
            want = data_bytes(function, count)
            if buf[start + 2] != want:
                raise WrongFunction("byte count %d, expected %d" % (buf[start + 2], want))
        return start + 3
    if echo is not None:
        for k in range(2, 6):
            if buf[start + k] != echo[k]:
                raise WrongFunction("write reply does not echo the request")
    return start + 2


def bit(buf, offset, index):
    """Bit `index` (0 = first coil/input asked) of a FC 01/02 reply whose data starts at offset."""
    return (buf[offset + (index >> 3)] >> (index & 7)) & 1


def diagnose(buf, n, unit, function):
    """After a timeout: a typed error for a well-formed frame that was not ours, else None.

    Tells an installer "unit 5 answered" or "unit 1 answered function 4" instead of "no reply".
    """
    for i in range(n - 4):
        fc = buf[i + 1]
        if fc & 0x80:
            total = 5
        elif fc in (1, 2, 3, 4):
            total = 5 + buf[i + 2]
        elif fc in (5, 6, 15, 16):
            total = 8
        else:
            continue
        if i + total > n or not _crc_ok(buf, i, i + total):
            continue
        if buf[i] != unit:
            return WrongUnit("reply from unit %d, asked %d" % (buf[i], unit))
        if fc & 0x7F != function:
            return WrongFunction("reply to function %d, asked %d" % (fc & 0x7F, function))
        return WrongFunction("reply of unexpected length")
    return None
