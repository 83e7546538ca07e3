"""Heap allocated by a meter transaction, on MicroPython: the poll loop's bytes per reading.

A port that answers at once (the whole reply readable right after the request) makes the count of
allocations independent of timing, so it can be asserted: every transaction allocates the
Decimal of its reading and nothing else the bus or codec could avoid. Figures are the 64-bit sim's
(objects take about half the room on an ESP32).
"""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy

pytestmark = [pytest.mark.mpy]

SCRIPT = r"""
import asyncio, gc, json
from nengjian.bus.rs485 import Bus, Line
from nengjian.meters import dlt645_meter, modbus_meter
from nengjian.proto.crc import crc16

class InstantPort:
    # a meter that answers every request at once; reply(request, out) -> length, written into a
    # buffer made once, so that the meter's side allocates nothing either
    def __init__(self, reply):
        self.reply = reply
        self.out = bytearray(64)
        self.pending = 0
    def configure(self, *a):
        pass
    def de(self, on):
        pass
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

def dlt645_reply(req, out):
    s = 0
    while req[s] != 0x68:
        s += 1
    out[0] = 0xFE
    out[1] = 0xFE
    for i in range(8):  # 68 A0..A5 68
        out[2 + i] = req[s + i]
    out[10] = 0x91
    out[11] = 8
    for i in range(4):  # the DI, echoed
        out[12 + i] = req[s + 10 + i]
    out[16] = 0x33 + 0x56
    out[17] = 0x33 + 0x34
    out[18] = 0x33 + 0x12
    out[19] = 0x33
    cs = 0
    for i in range(2, 20):
        cs += out[i]
    out[20] = cs & 0xFF
    out[21] = 0x16
    return 22

def modbus_meter_of(npoints):
    # points 200 registers apart: one block (one transaction) each
    points = {}
    for i in range(npoints):
        points["p%d" % i] = {"fc": 3, "address": 200 * i, "type": "u16"}
    prof = {"id": "b", "protocol": "modbus-rtu", "max_registers": 125, "points": points}
    return modbus_meter.ModbusMeter({"address": 1}, prof, sorted(points)), Line(9600, 8, "N", 1), modbus_reply

def dlt645_meter_of(npoints):
    dis = ("00010000", "00020000", "00010100", "00010200")
    points = {}
    for i in range(npoints):
        points["e%d" % i] = {"di": dis[i]}
    prof = {"id": "b", "protocol": "dlt645-2007", "points": points}
    return (dlt645_meter.Dlt645Meter({"address": "123456789012"}, prof, sorted(points)),
            Line(9600, 8, "E", 1), dlt645_reply)

async def allocated(drv, line, reply, reads):
    bus = Bus("b", InstantPort(reply))
    out = {}
    for _ in range(3):  # warm up: line settings, first-use imports
        await drv.read(bus, line, 1000, 0, out)
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for _ in range(reads):
        await drv.read(bus, line, 1000, 0, out)
    a1 = gc.mem_alloc()
    gc.enable()
    assert bus.stats["timeouts"] == 0 and len(out) == len(drv_points(drv)), (bus.stats, out)
    return (a1 - a0) // reads

def drv_points(drv):
    if hasattr(drv, "blocks"):
        return [p for b in drv.blocks for p in b.points]
    return [p for _, pts in drv.reads for p in pts]

async def main():
    res = {}
    for kind, make in (("modbus", modbus_meter_of), ("dlt645", dlt645_meter_of)):
        one = await allocated(*make(1), 10)
        four = await allocated(*make(4), 10)
        res[kind] = {"read": one, "per_transaction": (four - one) // 3}
    print("RESULT " + json.dumps(res))

asyncio.run(main())
"""


def _figures():
    out = run_mpy(SCRIPT, heap="320k").stdout
    return json.loads(out.split("RESULT ", 1)[1])


def test_a_transaction_allocates_its_reading_and_nothing_more():
    figures = _figures()
    for kind in ("modbus", "dlt645"):
        f = figures[kind]
        # Each further transaction of a read: its reading's Decimal (64 B here), nothing else.
        assert f["per_transaction"] <= 256, figures
        # A read of one transaction: that, and the driver's read coroutine the poller makes.
        assert f["read"] <= 512, figures
