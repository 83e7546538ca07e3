"""Meter clocks kept by broadcast time sync (firmware/nengjian/meters/meterclock.py), on MicroPython:
a sync only past the limit and within what a broadcast sets, never near midnight, at most once a day
per bus; each setting a ledger event."""

import json

import pytest
from mpyrun import run_mpy

pytestmark = pytest.mark.mpy

CODE = r"""
import asyncio, json
from nengjian.core import timeutil
from nengjian.meters import memwatch

NOON = timeutil.timestamp(2026, 12, 2, 4, 0)  # 12:00 CST
clock = [NOON]
timeutil.set_source(lambda: clock[0])


class Gw:
    items_by_point = {}
    def __init__(self):
        self.events = []
    def event(self, kind, text):
        self.events.append(text)


class Drv:
    def __init__(self, name, offset):
        self.id = name
        self.offset = offset
        self.memory = {"clock": {}}
        self.sent = []
        self.reads = 0
        self.value = bytearray(8)
    async def read_di(self, bus, line, timeout_ms, gap_ms, di):
        t = timeutil.civil(clock[0] + self.offset + timeutil.CST_OFFSET)
        f = [3, t[2], t[1], t[0] % 100] if di == 0x04000101 else [t[5], t[4], t[3]]
        if di == 0x04000101:
            self.reads += 1
        for k, v in enumerate(f):
            self.value[k] = int("%d" % v, 16)
        return len(f)
    async def time_sync(self, bus, line, t, gap_ms=0):
        self.sent.append(list(t))
        self.offset = 0


class Bus:
    name = "bus0"


def check(mc):
    asyncio.run(mc.after(None, None, 100, 0))


gw = Gw()
out = {}
a = Drv("a", 90)
mc_a = memwatch.Watch(gw, a, {}, "bus0", lambda: True)
b = Drv("b", -120)
mc_b = memwatch.Watch(gw, b, {}, "bus0", lambda: True)
c = Drv("c", 45)
mc_c = memwatch.Watch(gw, c, {}, "bus0", lambda: True)
far = Drv("far", 900)
mc_far = memwatch.Watch(gw, far, {}, "bus0", lambda: True)
# Near midnight nothing is read or sent
clock[0] = NOON + 12 * 3600 - 120  # 23:58
check(mc_a)
out["midnight"] = [a.reads, len(a.sent), mc_a.next_check - clock[0]]
clock[0] = NOON
mc_a.next_check = 0
check(mc_a)  # 90 s off: broadcast
check(mc_b)  # same bus, same day: not again
check(mc_c)  # within the limit: nothing
check(mc_far)  # beyond what a broadcast sets
out["sent"] = [len(a.sent), len(b.sent), len(c.sent), len(far.sent)]
clock[0] += 300
check(mc_a)  # read again: set
clock[0] = NOON + 86400
mc_b.next_check = 0
check(mc_b)  # the next day: its turn
out["next_day"] = len(b.sent)
out["events"] = gw.events
print(json.dumps(out))
"""


def test_broadcast_rules():
    got = json.loads(run_mpy(CODE, heap="256k").stdout.strip().splitlines()[-1])
    assert got["midnight"] == [0, 0, 600]  # not even read: put off 10 minutes
    assert got["sent"] == [1, 0, 0, 0]
    assert got["next_day"] == 1
    ev = got["events"]
    assert sum("broadcast time sync on bus bus0" in e for e in ev) == 2
    assert any(e.startswith("a: meter clock off by +90 s (limit 60 s): broadcast") for e in ev)
    assert any(e.startswith("b: meter clock off by -120 s: bus bus0 had its broadcast time sync today") for e in ev)
    assert any(e.startswith("far: meter clock off by +900 s, beyond what a broadcast") for e in ev)
    assert any(e == "a: meter clock set after the broadcast: +0 s" for e in ev)
    assert not any(e.startswith("c:") for e in ev)
