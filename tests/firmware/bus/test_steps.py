"""A driver's read awaited as its reusable Steps (nengjian.bus.rs485), on MicroPython: the paths
around the bus's steps that a coroutine would have handled by itself.

- a read cancelled while its request is on the wire releases the direction pin and the bus lock,
  and the next read on the bus answers;
- a read that finds the bus lock held waits for it, and answers;
- two reads of one driver at the same time each get their own Steps;
- a reply that fails its check releases the lock for the next read.
"""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy, with_mpylib

pytestmark = [pytest.mark.mpy]

SCRIPT = r"""
import asyncio, json
from nengjian.bus.rs485 import Bus, Line
from nengjian.meters import dlt645_meter, modbus_meter
from instantport import InstantPort, dlt645_reply, modbus_reply

def emit(**kw):
    print('@' + json.dumps(kw))

def modbus_drv():
    prof = {"id": "b", "protocol": "modbus-rtu", "max_registers": 125,
            "points": {"p": {"fc": 3, "address": 0, "type": "u16"}}}
    return modbus_meter.ModbusMeter({"address": 1}, prof, ["p"])

def texts(out):
    return {k: v.text() for k, v in out.items()}

async def cancelled_on_the_wire():
    port = InstantPort(modbus_reply)
    bus = Bus("b", port)
    drv = modbus_drv()
    slow = Line(1200, 8, "N", 1)  # 8 request bytes: some 67 ms with DE driven
    t = asyncio.create_task(drv.read(bus, slow, 1000, 0, {}))
    for _ in range(2000):  # until the request is on the wire (after the silence), DE driven
        if port.de_on:
            break
        await asyncio.sleep_ms(1)
    de_during = port.de_on
    t.cancel()
    try:
        await t
        how = "finished"
    except asyncio.CancelledError:
        how = "cancelled"
    emit(case="cancel", how=how, de_during=de_during, de_after=port.de_on, locked=bus.lock.locked())
    out = {}
    await asyncio.wait_for(drv.read(bus, Line(9600, 8, "N", 1), 1000, 0, out), 2)
    emit(case="cancel_next", out=texts(out))

async def lock_held():
    bus = Bus("b", InstantPort(modbus_reply))
    drv = modbus_drv()
    await bus.lock.acquire()
    out = {}
    t = asyncio.create_task(drv.read(bus, Line(9600, 8, "N", 1), 1000, 0, out))
    await asyncio.sleep_ms(30)
    before = len(out)
    bus.lock.release()
    await asyncio.wait_for(t, 2)
    emit(case="lock", before=before, out=texts(out), locked=bus.lock.locked())

async def two_at_once():
    bus = Bus("b", InstantPort(dlt645_reply))
    prof = {"id": "b", "protocol": "dlt645-2007", "points": {"e": {"di": "00010000"}}}
    drv = dlt645_meter.Dlt645Meter({"address": "123456789012"}, prof, ["e"])
    line = Line(9600, 8, "E", 1)
    a = {}
    b = {}
    ta = asyncio.create_task(drv.read(bus, line, 1000, 0, a))
    tb = asyncio.create_task(drv.read(bus, line, 1000, 0, b))
    ra = await asyncio.wait_for(ta, 2)
    rb = await asyncio.wait_for(tb, 2)
    emit(case="two", a=texts(a), b=texts(b), results=[ra is a, rb is b])

def bad_crc(req, out):
    n = modbus_reply(req, out)
    out[n - 1] ^= 0xFF
    return n

async def failed_check():
    port = InstantPort(bad_crc)
    bus = Bus("b", port)
    drv = modbus_drv()
    try:
        await asyncio.wait_for(drv.read(bus, Line(9600, 8, "N", 1), 100, 0, {}), 2)
        err = None
    except Exception as e:
        err = type(e).__name__
    emit(case="crc", err=err, locked=bus.lock.locked(), de=port.de_on)
    port.reply = modbus_reply
    out = {}
    await asyncio.wait_for(drv.read(bus, Line(9600, 8, "N", 1), 1000, 0, out), 2)
    emit(case="crc_next", out=texts(out))

async def main():
    await cancelled_on_the_wire()
    await lock_held()
    await two_at_once()
    await failed_check()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def cases():
    out = run_mpy(with_mpylib(SCRIPT), heap="320k").stdout
    return {c["case"]: c for c in (json.loads(line[1:]) for line in out.splitlines() if line.startswith("@"))}


def test_a_read_cancelled_on_the_wire_releases_the_pin_and_the_bus(cases):
    c = cases["cancel"]
    assert c["how"] == "cancelled" and c["de_during"] == 1, c
    assert c["de_after"] == 0, c  # the meter's reply would collide with our own driver
    assert c["locked"] is False, c
    assert cases["cancel_next"]["out"] == {"p": "1799"}, cases["cancel_next"]


def test_a_read_waits_for_the_bus_lock(cases):
    c = cases["lock"]
    assert c["before"] == 0 and c["out"] == {"p": "1799"} and c["locked"] is False, c


def test_two_reads_of_one_driver_at_once_each_answer(cases):
    c = cases["two"]
    assert c["a"] == {"e": "1234.56"} and c["b"] == {"e": "1234.56"}, c
    assert c["results"] == [True, True], c


def test_a_failed_check_releases_the_bus(cases):
    c = cases["crc"]
    assert c["err"] == "CrcError" and c["locked"] is False and c["de"] == 0, c
    assert cases["crc_next"]["out"] == {"p": "1799"}, cases["crc_next"]
