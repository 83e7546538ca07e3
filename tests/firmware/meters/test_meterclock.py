"""Meter clocks kept by broadcast time sync (firmware/nengjian/meters/meterclock.py), on MicroPython:
a sync only past the limit and within what a broadcast sets, never near midnight, at most once a day
per bus; each setting a ledger event."""

import json

import pytest
from mpyrun import run_mpy, with_mpylib

pytestmark = pytest.mark.mpy

CODE = r"""
import asyncio, json
from clockrig import NOON, Gw, clock
from nengjian.core import timeutil
from nengjian.meters import memwatch


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


class Silent(Drv):
    async def read_di(self, bus, line, timeout_ms, gap_ms, di):
        raise OSError(110)


silent = Silent("silent", 0)
mc_silent = memwatch.Watch(gw, silent, {}, "bus0", lambda: True)
check(mc_silent)
out["silent"] = [mc_silent.next_check - clock[0], mc_silent.offset, len(silent.sent)]
out["events"] = gw.events
print(json.dumps(out))
"""


def test_broadcast_rules():
    got = json.loads(run_mpy(with_mpylib(CODE), heap="256k").stdout.strip().splitlines()[-1])
    assert got["midnight"] == [0, 0, 600]  # not even read: put off 10 minutes
    assert got["sent"] == [1, 0, 0, 0]
    assert got["next_day"] == 1
    ev = got["events"]
    assert sum("broadcast time sync on bus bus0" in e for e in ev) == 2
    assert any(e.startswith("meterclock: a: meter clock off by +90 s (limit 60 s): broadcast") for e in ev)
    assert any(e.startswith("meterclock: b: meter clock off by -120 s: bus bus0 had its broadcast time sync today")
               for e in ev)
    assert any(e.startswith("meterclock: far: meter clock off by +900 s, beyond what a broadcast") for e in ev)
    assert any(e == "meterclock: a: meter clock set after the broadcast: +0 s" for e in ev)
    assert not any(e.startswith("meterclock: c:") for e in ev)
    assert got["silent"] == [600, None, 0]  # not read: tried again in 10 minutes
    assert any(e.startswith("meterclock: silent: meter clock not read (OSError: ") for e in ev)


def test_no_broadcast_when_the_meters_own_clock_is_near_midnight():
    """Never across midnight: the gateway's clock is outside the midnight guard, but the meter's, 200 s off,
    is within it (00:04:40 after a 00:08 gateway, 23:56:20 before a 23:53 one): the meter is read, nothing
    is sent, the check comes again in 10 minutes; once both are clear of midnight the broadcast goes."""
    body = CODE.split("gw = Gw()")[0] + r"""
gw = Gw()
out = []
for at, offset in ((NOON + 12 * 3600 + 480, -200), (NOON + 12 * 3600 - 420, 200)):
    clock[0] = at
    d = Drv("d%d" % len(out), offset)
    w = memwatch.Watch(gw, d, {}, "bus%d" % len(out), lambda: True)
    check(w)
    out.append([d.reads, len(d.sent), w.next_check - clock[0]])
    clock[0] = at + 600 + 3600  # an hour later the meter is clear of midnight too
    check(w)
    out.append([d.reads, len(d.sent)])
print(json.dumps({"out": out, "events": gw.events}))
"""
    got = json.loads(run_mpy(with_mpylib(body), heap="256k").stdout.strip().splitlines()[-1])
    assert got["out"] == [[1, 0, 600], [2, 1], [1, 0, 600], [2, 1]], got
    assert sum("broadcast time sync" in e for e in got["events"]) == 2


# One boot of a gateway whose bus0 has one DL/T 645 meter 90 s fast: memwatch.attach as the app
# calls it, then one clock check at DAY days after NOON. What the file says is what survives a restart.
BOOT = r"""
import asyncio
from clockrig import boot, clock, report


class Drv:
    def __init__(self):
        self.id = "m1"
        self.memory = {"clock": {}}
        self.value = bytearray(8)
        self.sent = 0
        self.after = None
    async def read_di(self, bus, line, timeout_ms, gap_ms, di):
        from nengjian.core import timeutil
        t = timeutil.civil(clock[0] + 90 + timeutil.CST_OFFSET)
        f = [3, t[2], t[1], t[0] % 100] if di == 0x04000101 else [t[5], t[4], t[3]]
        for k, v in enumerate(f):
            self.value[k] = int("%d" % v, 16)
        return len(f)
    async def time_sync(self, bus, line, t, gap_ms=0):
        self.sent += 1


drv = Drv()
gw = boot(drv, DATA, DAY)
asyncio.run(drv.after(None, None, 100, 0))
report(gw, sent=drv.sent)
"""


def _boot(data, day):
    code = "DATA = %r\nDAY = %d\n" % (str(data), day) + BOOT
    return json.loads(run_mpy(with_mpylib(code), heap="256k").stdout.strip().splitlines()[-1])


def test_a_restart_does_not_send_a_second_broadcast_the_same_day(tmp_path):
    """SPEC section 5: a meter takes a broadcast time sync at most once a day. The day of the bus's last
    one is on flash, so a gateway restarted the same day does not send another; the next day it does."""
    assert _boot(tmp_path, 0)["sent"] == 1
    again = _boot(tmp_path, 0)  # restarted at the same time of the same day
    assert again["sent"] == 0, again
    assert any("bus bus0 had its broadcast time sync today" in e for e in again["events"]), again
    # The console's view of it (nengjian.console.status): the offset read, the day the bus was set
    st = again["status"]
    assert (st["clock_set_day"], st["clock_offset_s"], st["refills"]) == (again["day"], 90, 0), st
    assert _boot(tmp_path, 1)["sent"] == 1  # the next day
    assert _boot(tmp_path, 1)["sent"] == 0


@pytest.mark.parametrize("content", ['{"v": 1, "buses": [3]}', '{"v": 1, "buses": {"bus0": "x"}}', '{"v": 1, "bu',
                                     "[]"], ids=["list", "not-a-day", "torn", "not-an-object"])
def test_an_unusable_broadcast_day_file_is_no_broadcast_day(tmp_path, content):
    """A file the gateway cannot use (torn, another shape) counts as no broadcast yet: the clock is still
    kept, and the file is written again whole."""
    (tmp_path / "meterclock.json").write_text(content)
    assert _boot(tmp_path, 0)["sent"] == 1
    assert _boot(tmp_path, 0)["sent"] == 0
