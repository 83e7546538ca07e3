"""Benchmark of the RS-485 stage: firmware CPU time per meter transaction against wire time.

    .venv/bin/python bench/bench_bus.py      # re-runs itself on the sim board's MicroPython
    .venv/bin/micropython -X heapsize=256k bench/bench_bus.py   (MICROPYPATH=firmware:boards/sim:.frozen)

Runs the firmware's own drivers (ModbusMeter.read, Dlt645Meter.read: build, Bus.transact with its
silences and DE handling, framing, parsing, decoding to exact Decimals) against an in-process
responder port that hands out a prebuilt reply at wire pace (one character per character time
after the request), so the bus's read loop wakes as it would on a UART. CPU time is the
process's (time.clock() on the unix port: sleeping costs nothing), divided by the number of
transactions, and set against the wire time of the same request and reply at 9,600 and 2,400 baud
(Modbus 8N1: 10 bits a character; DL/T 645 8E1: 11). Goal: CPU under 5 % of wire time. Heap
allocated per transaction is measured outside the timed loops (gc.mem_alloc scans the heap).
Figures are for this PC; an ESP32-S3 runs MicroPython roughly 20-50x slower, which the printed
"ESP32 estimate" column applies (x30) for orientation only.
"""

import sys

if sys.implementation.name != "micropython":
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    mpy = os.path.join(os.path.dirname(sys.executable), "micropython")
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([os.path.join(root, "firmware"),
                                                        os.path.join(root, "boards", "sim"), ".frozen"]))
    sys.exit(subprocess.call([mpy, "-X", "heapsize=256k", os.path.abspath(__file__)], env=env, cwd=root))

import asyncio  # noqa: E402
import gc  # noqa: E402
import time  # noqa: E402

from nengjian.bus.rs485 import Bus, Line, char_us  # noqa: E402
from nengjian.meters import dlt645_meter, modbus_meter  # noqa: E402
from nengjian.proto import dlt645, regvalue  # noqa: E402
from nengjian.proto.crc import crc16  # noqa: E402

ESP32_FACTOR = 30


class WirePort:
    """A meter at the end of a wire: after a request, the reply's characters become readable one
    character time apart (plus a short turnaround), like a UART receiving them."""

    TURNAROUND_US = 1000

    def __init__(self):
        self.reply = b""
        self._mv = memoryview(b"")
        self.char = 1000
        self.t0 = 0
        self.pos = 0

    def configure(self, baud, bits, parity, stop):
        self.char = char_us(baud, bits, parity, stop)

    def de(self, on):
        pass

    def write(self, buf):
        # the reply starts after the request's last character and the meter's turnaround
        self.t0 = time.ticks_add(time.ticks_us(), len(buf) * self.char + self.TURNAROUND_US)
        self.pos = 0
        return len(buf)

    def txdone(self):
        return True

    def readinto(self, buf):
        dt = time.ticks_diff(time.ticks_us(), self.t0)
        if dt <= 0:
            return 0
        have = min(len(self.reply), dt // self.char)
        k = min(have - self.pos, len(buf))
        if k <= 0:
            return 0
        buf[:k] = self._mv[self.pos:self.pos + k]
        self.pos += k
        return k

    def set_reply(self, reply):
        self.reply = reply
        self._mv = memoryview(reply)


def modbus_reply(unit, regs):
    data = bytearray([unit, 3, 2 * len(regs)])
    for r in regs:
        data.append(r >> 8)
        data.append(r & 0xFF)
    c = crc16(data)
    data.append(c & 0xFF)
    data.append(c >> 8)
    return bytes(data)


def modbus_case(nregs):
    points = {}
    for i in range(0, nregs, 2):
        points["p%d" % i] = {"fc": 3, "address": i, "type": "u32", "decimals": 2}
    prof = {"id": "b", "protocol": "modbus-rtu", "max_registers": 125, "points": points}
    drv = modbus_meter.ModbusMeter({"address": 1}, prof, sorted(points))
    raw = regvalue.encode(12345678, "u32") * (nregs // 2)
    regs = [(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)]
    return drv, modbus_reply(1, regs), 8


def dlt645_case():
    prof = {"id": "b", "protocol": "dlt645-2007", "points": {"e": {"di": "00010000"}}}
    drv = dlt645_meter.Dlt645Meter({"address": "123456789012"}, prof, ["e"])
    plain = bytes([0x00, 0x00, 0x01, 0x00, 0x56, 0x34, 0x12, 0x00])
    wire = bytes.fromhex("129078563412")
    body = bytearray([0x68]) + wire + bytearray([0x68, 0x91, len(plain)]) + bytearray((b + 0x33) & 0xFF for b in plain)
    reply = b"\xfe\xfe\xfe\xfe" + bytes(body) + bytes([sum(body) & 0xFF, 0x16])
    tx = bytearray(64)
    req_len = dlt645.build_read(tx, "123456789012", 0x00010000, True)
    return drv, reply, req_len


async def loop(drv, bus, line, n, out):
    for _ in range(n):
        await drv.read(bus, line, 1000, 0, out)


def measure(drv, reply, line, n):
    port = WirePort()
    port.set_reply(reply)
    bus = Bus("bench", port)
    out = {}
    asyncio.run(loop(drv, bus, line, 3, out))  # warm up: first switch of line settings, imports
    gc.collect()
    c0 = time.clock()
    w0 = time.ticks_ms()
    asyncio.run(loop(drv, bus, line, n, out))
    cpu = (time.clock() - c0) / n
    wall = time.ticks_diff(time.ticks_ms(), w0) / n
    gc.collect()
    a0 = gc.mem_alloc()
    asyncio.run(loop(drv, bus, line, 10, out))
    alloc = (gc.mem_alloc() - a0) / 10
    assert bus.stats["timeouts"] == 0, bus.stats
    return cpu, wall, alloc


def main():
    print("RS-485 stage benchmark on", sys.implementation.name, ".".join(str(x) for x in sys.implementation.version[:3]),
          sys.platform)
    print("%-34s %6s %9s %9s %9s %7s %9s %11s" % ("transaction", "baud", "wire ms", "wall ms", "cpu us",
                                                     "cpu %", "alloc B", "ESP32 est %"))
    cases = []
    for nregs, counts in ((2, (300, 100)), (60, (50, 20))):
        drv, reply, req = modbus_case(nregs)
        cases.append(("Modbus FC03 %d registers" % nregs, drv, reply, req, "N", counts))
    drv, reply, req = dlt645_case()
    cases.append(("DL/T 645-2007 read energy", drv, reply, req, "E", (120, 50)))
    worst = 0.0
    for name, drv, reply, req, parity, counts in cases:
        for baud, n in zip((9600, 2400), counts):
            line = Line(baud, 8, parity, 1)
            wire_ms = (req + len(reply)) * line.char_us / 1000.0
            cpu, wall, alloc = measure(drv, reply, line, n)
            pct = 100.0 * cpu / (wire_ms / 1000.0)
            worst = max(worst, pct)
            print("%-34s %6d %9.1f %9.1f %9.0f %7.2f %9.0f %11.1f" % (
                name, baud, wire_ms, wall, cpu * 1e6, pct, alloc, pct * ESP32_FACTOR))
    print("worst CPU share of wire time on this host: %.2f %% (goal < 5 %%)" % worst)


main()
