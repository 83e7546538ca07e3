"""Modbus meter clocks kept by an FC 16 write (firmware/nengjian/meters/modbusclock.py), on MicroPython:
a write only past the limit, only with a trusted gateway clock, never near midnight, at most once a
day per meter, never to a clock the profile marks read-only; each setting a ledger event with the
offset before and after it; both register formats round-trip."""

import json

import pytest
from mpyrun import run_mpy, with_mpylib

pytestmark = pytest.mark.mpy

CODE = r"""
import asyncio, json
from clockrig import NOON, Gw, clock
from nengjian.core import timeutil
from nengjian.meters import memwatch, modbusclock


class Drv:
    protocol = "modbus-rtu"
    def __init__(self, name, offset, fmt="u16x6", writable=True, short_year=False):
        self.id = name
        self.offset = offset
        self.memory = {"clock": {"register": 64, "format": fmt, "writable": writable}}
        self.short_year = short_year
        self.reads = 0
        self.writes = []
    async def read_raw(self, bus, line, timeout_ms, gap_ms, fc, address, count):
        assert fc == 3 and address == 64
        self.reads += 1
        t = timeutil.civil(clock[0] + self.offset + timeutil.CST_OFFSET)
        return modbusclock.encode(self.memory["clock"]["format"], t, self.short_year)
    async def write_registers(self, bus, line, timeout_ms, gap_ms, address, values):
        self.writes.append(list(values))
        t = modbusclock.decode(self.memory["clock"]["format"], values)
        self.offset = timeutil.timestamp(*t) - timeutil.CST_OFFSET - clock[0]


def watch(drv, trusted=True, limit=None):
    cfg = {} if limit is None else {"clock_max_drift_s": limit}
    return memwatch.Watch(gw, drv, cfg, "bus0", lambda: trusted)


def check(w):
    if w.due():
        asyncio.run(w.after(None, None, 100, 0))


gw = Gw()
out = {}
fast = Drv("fast", 180)
w_fast = watch(fast)
check(w_fast)  # 3 minutes fast: written, read back
out["fast"] = [fast.reads, list(fast.writes), fast.offset, w_fast.due()]
import gc
gc.collect()
before = gc.mem_alloc()
for _ in range(200):  # what every read asks while no check is due
    w_fast.due()
out["due_alloc"] = gc.mem_alloc() - before
fast.offset = 170  # drifts again the same day
w_fast.next_check = 0
check(w_fast)
out["fast_again"] = [len(fast.writes), fast.offset]
clock[0] = NOON + 86400  # the next day: its turn again
w_fast.next_check = 0
check(w_fast)
out["fast_next_day"] = [len(fast.writes), fast.offset]
clock[0] = NOON

slow = Drv("slow", -30)
check(watch(slow))  # within the limit
out["slow"] = [slow.reads, len(slow.writes)]

untrusted = Drv("untrusted", 600)
check(watch(untrusted, trusted=False))
out["untrusted"] = [untrusted.reads, len(untrusted.writes)]

late = Drv("late", 300)
w_late = watch(late)
clock[0] = NOON + 12 * 3600 - 120  # 23:58 CST
check(w_late)
out["midnight"] = [late.reads, len(late.writes), w_late.next_check - clock[0]]
clock[0] = NOON + 12 * 3600 - 600  # 23:50 CST, the meter at 23:55: its own midnight is near
w_late.next_check = 0
check(w_late)
out["meter_midnight"] = [late.reads, len(late.writes), w_late.next_check - clock[0]]
clock[0] = NOON + 12 * 3600 - 400  # 23:53:20, the meter at 00:00:20 tomorrow (+7 min): not across midnight
far_day = Drv("across", 420)
w_across = watch(far_day)
w_across.near_midnight = lambda ts: False  # the day rule alone
check(w_across)
out["across"] = [far_day.reads, len(far_day.writes)]
clock[0] = NOON

ro = Drv("readonly", 200, writable=False)
check(watch(ro))
out["readonly"] = [ro.reads, len(ro.writes)]

off = Drv("off", 200)
check(watch(off, limit=0))  # clock_max_drift_s 0: never checked
out["off"] = [off.reads, len(off.writes)]

bcd = Drv("bcd", -3600 * 5, fmt="bcd-yymmddhhmmss")
check(watch(bcd))
out["bcd"] = [bcd.writes, bcd.offset]
two = Drv("two", 120, short_year=True)
check(watch(two))
out["two_digit_year"] = two.writes
out["bcd_codec"] = modbusclock.encode("bcd-yymmddhhmmss", (2026, 12, 2, 12, 34, 56))
out["events"] = gw.events
print(json.dumps(out))
"""


def test_write_rules_and_events():
    got = json.loads(run_mpy(with_mpylib(CODE), heap="256k").stdout.strip().splitlines()[-1])
    # 12:00 CST: the meter's registers set to the gateway's time, then read again
    assert got["fast"] == [2, [[2026, 12, 2, 12, 0, 0]], 0, False]
    assert got["due_alloc"] == 0  # the test after each read allocates nothing
    assert got["fast_again"] == [1, 170]  # once a day
    assert got["fast_next_day"] == [2, 0]
    assert got["slow"] == [1, 0]
    assert got["untrusted"] == [0, 0]
    assert got["midnight"] == [0, 0, 600]  # not even read: put off 10 minutes
    assert got["meter_midnight"] == [1, 0, 600]
    assert got["across"] == [1, 0]
    assert got["readonly"] == [1, 0]
    assert got["off"] == [0, 0]
    assert got["bcd"] == [[[0x2612, 0x0212, 0x0000]], 0]
    assert got["two_digit_year"] == [[26, 12, 2, 12, 0, 0]]
    assert got["bcd_codec"] == [0x2612, 0x0212, 0x3456]
    ev = got["events"]
    assert ("meterclock: fast: meter clock off by +180 s (limit 60 s): written 2026-12-02 12:00:00 by FC 16 "
            "at register 64, read back +0 s: set") in ev
    assert "meterclock: fast: meter clock off by +170 s: set once today already, next write tomorrow" in ev
    assert sum(e.startswith("meterclock: fast: meter clock off by") and "written" in e for e in ev) == 2
    assert any(e.startswith("meterclock: readonly: meter clock off by +200 s (limit 60 s); its profile") for e in ev)
    assert any(e.startswith("meterclock: bcd: meter clock off by -18000 s") and "set" in e for e in ev)
    assert not any(e.startswith(("meterclock: slow", "meterclock: untrusted", "meterclock: late",
                                 "meterclock: across", "meterclock: off")) for e in ev)


def test_the_profile_clock_key_is_checked():
    import copy

    import jsonschema
    from nengjian.config import schemas
    from nengjian.meters import profile
    from nengjian_host.common.paths import PROFILES

    prof = json.loads((PROFILES / "sim-energy-clock.json").read_text())
    profile.check(copy.deepcopy(prof))
    no_format = copy.deepcopy(prof)
    del no_format["clock"]["format"]
    with pytest.raises(ValueError, match="clock: register and format needed"):
        profile.check(no_format)
    dlt = json.loads((PROFILES / "dlt645-2007-generic.json").read_text())
    dlt["clock"] = prof["clock"]
    with pytest.raises(ValueError, match="clock: Modbus RTU only"):
        profile.check(dlt)
    bad = copy.deepcopy(prof)
    bad["clock"]["format"] = "unix-seconds"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schemas.PROFILE).validate(bad)


# One boot of a gateway whose bus0 has one Modbus meter 180 s fast: memwatch.attach as the app calls it,
# then one clock check DAY days after NOON. What the data dir holds is what survives the restart.
BOOT = r"""
import asyncio
from clockrig import boot, clock, report
from nengjian.core import timeutil
from nengjian.meters import modbusclock


class Drv:
    protocol = "modbus-rtu"
    def __init__(self):
        self.id = "m1"
        self.memory = {"clock": {"register": 64, "format": "u16x6", "writable": True}}
        self.writes = 0
        self.watch = None
    async def read_raw(self, bus, line, timeout_ms, gap_ms, fc, address, count):
        # the meter keeps 180 s fast across restarts: only the writes tell
        return modbusclock.encode("u16x6", timeutil.civil(clock[0] + 180 + timeutil.CST_OFFSET))
    async def write_registers(self, bus, line, timeout_ms, gap_ms, address, values):
        self.writes += 1


drv = Drv()
gw = boot(drv, DATA, DAY)
if drv.watch.due():
    asyncio.run(drv.watch.after(None, None, 100, 0))
report(gw, writes=drv.writes)
"""


def _boot(data, day):
    code = "DATA = %r\nDAY = %d\n" % (str(data), day) + BOOT
    return json.loads(run_mpy(with_mpylib(code), heap="256k").stdout.strip().splitlines()[-1])


def test_a_restart_does_not_write_a_modbus_meter_clock_a_second_time_the_same_day(tmp_path):
    """At most one write per meter per CST day, as for a DL/T 645 broadcast: the day of the meter's last
    write is on flash (meterclock.json, beside the buses' broadcast days), so a gateway restarted the same
    day writes no second time, and says so in the ledger; the next day it writes again."""
    first = _boot(tmp_path, 0)
    assert first["writes"] == 1, first
    again = _boot(tmp_path, 0)  # restarted at the same time of the same day
    assert again["writes"] == 0, again
    assert json.loads((tmp_path / "meterclock.json").read_text())["meters"] == {"m1": first["day"]}
    assert "meterclock: m1: meter clock off by +180 s: set once today already, next write tomorrow" in again["events"]
    assert again["status"]["clock_set_day"] == again["day"]  # the console's view of it after the restart
    assert _boot(tmp_path, 1)["writes"] == 1  # the next day
    assert _boot(tmp_path, 1)["writes"] == 0
