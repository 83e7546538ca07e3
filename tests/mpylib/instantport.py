"""Stand-in meters on MicroPython for the bus and driver tests: a port that answers each request at
once, and the replies of a Modbus, a DL/T 645 and a CJ/T 188 meter.

InstantPort makes the count of allocations independent of timing (tests/firmware/bus): the whole
reply is readable right after the request, written into a buffer made once, so the meter's side
allocates nothing. It keeps the direction pin's last state (.de_on).
"""

from nengjian.proto.crc import crc16


class InstantPort:
    # a meter that answers every request at once; reply(request, out) -> length, written into a
    # buffer made once, so that the meter's side allocates nothing either
    def __init__(self, reply):
        self.reply = reply
        self.out = bytearray(64)
        self.pending = 0
        self.de_on = 0

    def configure(self, *a):
        pass

    def de(self, on):
        self.de_on = on

    def write(self, buf):
        self.pending = self.reply(buf, self.out)
        return len(buf)

    def txdone(self):
        return True

    def readinto(self, buf):
        k = self.pending
        p = self.out
        for i in range(k):
            buf[i] = p[i]
        self.pending = 0
        return k


def modbus_reply(req, out):
    count = req[5]
    out[0] = req[0]
    out[1] = req[1]
    out[2] = 2 * count
    for i in range(2 * count):
        out[3 + i] = 7
    n = 3 + 2 * count
    c = crc16(out, 0, n)
    out[n] = c & 0xFF
    out[n + 1] = c >> 8
    return n + 2


def _reply68(req, out, head, code, echo, data):
    """A 68H frame after two FE: the request's first `head` bytes (68, address...), `code`, the
    length, `echo` bytes of the request's data (DI, SER) and `data`, its checksum and 16H."""
    s = 0
    while req[s] != 0x68:
        s += 1
    out[0] = 0xFE
    out[1] = 0xFE
    for i in range(head):
        out[2 + i] = req[s + i]
    p = 2 + head
    out[p] = code
    out[p + 1] = echo + len(data)
    for i in range(echo):
        out[p + 2 + i] = req[s + head + 2 + i]
    q = p + 2 + echo
    for i in range(len(data)):
        out[q + i] = data[i]
    end = q + len(data)
    cs = 0
    for i in range(2, end):
        cs += out[i]
    out[end] = cs & 0xFF
    out[end + 1] = 0x16
    return end + 2


# DL/T 645-2007 read of 00010000H: 1234.56 kWh (+33H on the wire)
DLT_DATA = bytes([0x33 + 0x56, 0x33 + 0x34, 0x33 + 0x12, 0x33])
# 901FH of a cold water meter after DI and SER: flow 1234.56 m3 (2CH), settlement flow, real time, status
CJT_DATA = bytes.fromhex("563412002c000000002c000012011225200000")


def dlt645_reply(req, out):
    return _reply68(req, out, 8, 0x91, 4, DLT_DATA)  # 68 A0..A5 68; the DI echoed


def cjt188_reply(req, out):
    return _reply68(req, out, 9, 0x81, 3, CJT_DATA)  # 68 T A0..A6; DI and SER echoed
