"""Heap allocated by a meter transaction, on MicroPython: the poll loop's bytes per reading.

A port that answers at once (the whole reply readable right after the request) makes the count of
allocations independent of timing, so it can be asserted: after its first read a meter's
transactions allocate nothing (its readings' Decimals are refreshed in place, core.decimal.put, and
the driver's read is awaited as its reusable nengjian.bus.rs485.Steps, no coroutine). Figures are the 64-bit sim's
(objects take about half the room on an ESP32).
"""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy, with_mpylib

pytestmark = [pytest.mark.mpy]

SCRIPT = r"""
import asyncio, gc, json
from nengjian.bus.rs485 import Bus, Line
from nengjian.meters import cjt188_meter, dlt645_meter, modbus_meter
from instantport import InstantPort, cjt188_reply, dlt645_reply, modbus_reply

def cjt188_meter_of(npoints):
    fields = ("flow", "settle_flow")
    points = {}
    for i in range(npoints):
        points["f%d" % i] = {"field": fields[i]}
    prof = {"id": "b", "protocol": "cjt188", "meter_type": "cold_water", "points": points}
    return (cjt188_meter.Cjt188Meter({"address": "78330011223344"}, prof, sorted(points)),
            Line(9600, 8, "E", 1), cjt188_reply)

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
    if hasattr(drv, "points"):
        return drv.points
    if hasattr(drv, "blocks"):
        return [p for b in drv.blocks for p in b.points]
    return [p for _, pts in drv.reads for p in pts]

def watched_dlt645_meter():
    # A meter whose memory feeds an item (refill) and whose last reading is now: nothing missed,
    # so after each read memwatch's due() says no, without a coroutine for after().
    from nengjian.core import timeutil
    from nengjian.meters import memwatch

    class State:
        t = timeutil.now()

    class Intervals:
        period = 900
        tolerance = 60
        states = {0: State()}

    class Gateway:
        items_by_point = {("m1", "e0"): (0,)}
        intervals = Intervals()

    prof = {"id": "b", "protocol": "dlt645-2007", "points": {"e0": {"di": "00010000"}},
            "memory": {"point": "e0", "hourly": {"depth": 24}}}
    drv = dlt645_meter.Dlt645Meter({"id": "m1", "address": "123456789012"}, prof, ["e0"])
    w = memwatch.Watch(Gateway(), drv, {"clock_max_drift_s": 0}, "b", lambda: True)
    assert w.items and not w.due()
    drv.watch = w
    drv.after = w.after  # as memwatch.attach sets them
    return drv, Line(9600, 8, "E", 1), dlt645_reply

async def main():
    res = {}
    res["dlt645_watched"] = await allocated(*watched_dlt645_meter(), 10)
    for kind, make in (("modbus", modbus_meter_of), ("dlt645", dlt645_meter_of)):
        one = await allocated(*make(1), 10)
        four = await allocated(*make(4), 10)
        res[kind] = {"read": one, "per_transaction": (four - one) // 3}
    # one 901FH transaction a read: a further point is a further reading of the same frame
    one = await allocated(*cjt188_meter_of(1), 10)
    two = await allocated(*cjt188_meter_of(2), 10)
    res["cjt188"] = {"read": one, "per_reading": two - one}
    print("RESULT " + json.dumps(res))

asyncio.run(main())
"""


def _figures():
    out = run_mpy(with_mpylib(SCRIPT), heap="320k").stdout
    return json.loads(out.split("RESULT ", 1)[1])


# timeutil.now() on the sim: time.time()'s float (32 B on the 64-bit sim)
NOW_B = 32


def test_a_transaction_allocates_nothing():
    figures = _figures()
    for kind in ("modbus", "dlt645"):
        f = figures[kind]
        # Each further transaction of a read: its reading's Decimal is refreshed in place.
        assert f["per_transaction"] == 0, figures
        # A read of one transaction: the same; the driver's read is its reusable Steps, no coroutine.
        assert f["read"] == 0, figures
    f = figures["cjt188"]
    assert f["per_reading"] == 0, figures
    # the Reading is refilled in place; the meter's clock is decoded only when asked (no tuple)
    assert f["read"] == 0, figures
    # a DL/T 645 meter with memory work: the test after each read makes no coroutine, only the
    # clock's reading (timeutil.now(): a float here, a long int on an ESP32)
    assert figures["dlt645_watched"] <= NOW_B, figures
