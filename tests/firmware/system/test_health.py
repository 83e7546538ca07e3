"""Health (firmware/nengjian/system/health.py): the watchdog is fed only while every task moves, healthy is
told once, the heartbeat carries what the crew and platform need, crash loops start safe mode; on
MicroPython with a controllable tick clock (a simulated month) and with real asyncio tasks."""

import json

import pytest
from mpyrun import run_mpy
from nengjian.system import health


class Wdt:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class Task:
    def __init__(self):
        self.progress = 0


class Clock:
    def __init__(self):
        self.ms = 0

    def __call__(self):
        return self.ms


def rig(healthy_s=600):
    clock = Clock()
    wdt = Wdt()
    events = []
    flushed = []
    sup = health.Supervisor(wdt, lambda k, t: events.append((k, t)), healthy_s=healthy_s, ticks=clock,
                            before_reset=lambda: flushed.append(clock.ms))
    return sup, wdt, clock, events, flushed


def test_fed_while_every_task_moves_and_not_once_one_is_stuck():
    sup, wdt, clock, events, flushed = rig()
    poller, dest = Task(), Task()
    sup.register("poller", poller, 60)
    sup.register("dest", lambda: dest.progress, 360)
    for s in range(1, 300):
        clock.ms = s * 1000
        poller.progress += 1
        if s % 100 == 0:
            dest.progress += 1
        assert sup.step()
    # The poller hangs (a driver stuck in a blocking read): 60 s later the watchdog goes hungry.
    fed = wdt.feeds
    for s in range(300, 420):
        clock.ms = s * 1000
        dest.progress += 1
        sup.step()
    assert wdt.feeds == fed + 60
    assert sup.stalled() == ["poller"]
    assert flushed == [360000]  # the store was flushed before the reset
    assert events[-1] == ("health", "task poller made no progress for 61 s: watchdog no longer fed")
    # (a board without a real watchdog) it moves again: fed again, and said so
    clock.ms = 421000
    poller.progress += 1
    assert sup.step() and events[-1] == ("health", "task poller moves again")


def test_healthy_is_told_once_after_a_clean_stretch():
    sup, wdt, clock, events, _ = rig(healthy_s=600)
    t = Task()
    sup.register("t", t, 30)
    calls = []
    sup.on_healthy(lambda: calls.append(clock.ms))
    for s in range(1, 100):
        clock.ms = s * 1000
        t.progress += 1
        sup.step()
    for s in range(100, 140):  # stuck for 40 s: the clean stretch starts again afterwards
        clock.ms = s * 1000
        sup.step()
    for s in range(140, 2000):
        clock.ms = s * 1000
        t.progress += 1
        sup.step()
    assert calls == [139000 + 600000]  # 600 s after the last step that found it stuck
    late = []
    sup.on_healthy(lambda: late.append(1))
    assert late == [1]


def test_uptime_survives_tick_wraparound():
    sup, wdt, clock, events, _ = rig()
    period = 1 << 30  # MicroPython's ticks_ms wraps every 2**30 ms (12.4 days)
    t = Task()
    sup.register("t", t, 30)
    ms = 0
    for _ in range(30 * 24 * 360):  # a month in 10 s steps
        ms = (ms + 10000) % period
        clock.ms = ms
        t.progress += 1
        sup.step()
    assert sup.uptime_ms == 30 * 86400 * 1000


class Named:
    def __init__(self, name):
        self.name = name


def test_heartbeat_carries_uptime_heap_flash_backlog_link_rssi():
    """Its fields picked from one status snapshot (the shape of nengjian.console.status.beat; that
    module's tests take it from a stand-in gateway)."""
    sup, *_ = rig()
    sup.uptime_ms = 3723000
    snap = {"heap_free": 51234, "flash": {"size": 4194304, "free": 1048576},
            "destinations": [Named("city"), Named("prov")], "backlog": [3, 120],
            "links": [{"link": "cat1", "up": True, "rssi": -71}, {"link": "eth", "up": False}]}
    events = []
    hb = health.Heartbeat(900, lambda k, t: events.append((k, t)), health.standard_sources(sup, lambda: snap))
    got = []
    hb.subscribe(got.append)
    d = hb.beat()
    assert events == [("heartbeat", "uptime_s=3723 heap_free=51234 flash_free=1048576 backlog.city=3 "
                                    "backlog.prov=120 link.cat1=up rssi.cat1=-71 link.eth=down")]
    assert got == [d] and d["backlog.prov"] == 120 and d["flash_free"] == 1048576


def test_a_heartbeat_without_a_data_volume_leaves_flash_free_out():
    sup, *_ = rig()
    hb = health.Heartbeat(900, lambda k, t: None, health.standard_sources(
        sup, lambda: {"heap_free": 1, "flash": None, "destinations": [], "backlog": [], "links": []}))
    assert sorted(hb.beat()) == ["heap_free", "uptime_s"]


def test_a_broken_probe_does_not_silence_the_heartbeat():
    events = []
    hb = health.Heartbeat(60, lambda k, t: events.append(t), [("a", lambda: 1), ("b", lambda: 1 // 0)])
    hb.beat()
    assert events == ["a=1 b=error:ZeroDivisionError"]


def test_boot_guard_detects_a_crash_loop_and_clears_when_healthy(tmp_path):
    path = str(tmp_path / "boots")
    for n in range(1, 6):
        g = health.BootGuard(path, limit=5)
        assert g.boot() == n and not g.crash_loop
    g = health.BootGuard(path, limit=5)
    assert g.boot() == 6 and g.crash_loop  # the sixth quick boot: safe mode
    g.retry_normal()  # after the safe-mode hold
    g = health.BootGuard(path, limit=5)
    assert g.boot() == 6 and g.crash_loop  # one more quick crash: safe mode again at once
    g.clear()
    g = health.BootGuard(path, limit=5)
    assert g.boot() == 1 and not g.crash_loop


def test_torn_boot_counter_counts_as_a_crash(tmp_path):
    path = tmp_path / "boots"
    path.write_text("\x00\x00")
    assert health.BootGuard(str(path)).boot() == 2


def test_boot_counter_of_older_firmware_reads_and_ours_reads_back(tmp_path, capsys):
    path = tmp_path / "boots"
    path.write_text("3\n")  # as older firmware wrote it
    assert health.BootGuard(str(path)).boot() == 4
    assert int(path.read_text().strip() or "0") == 4  # older firmware (a rollback) reads ours
    (tmp_path / "boots.new").write_text("9")  # a save cut before its rename: the committed count wins
    assert health.BootGuard(str(path)).boot() == 5
    path.write_text('{"v": 1')
    assert health.BootGuard(str(path)).boot() == 2  # torn: one quick crash, and said so
    assert "boot counter %s unreadable" % path in capsys.readouterr().out


@pytest.mark.mpy
def test_supervisor_with_real_tasks_on_micropython(tmp_path):
    code = r"""
import asyncio, json
from nengjian.system import health
class Wdt:
    feeds = 0
    def feed(self):
        Wdt.feeds += 1
class T:
    progress = 0
a, b = T(), T()
ev = []
sup = health.Supervisor(Wdt(), lambda k, t: ev.append(t), healthy_s=0.3)
sup.register("a", a, 0.2)
sup.register("b", b, 0.2)
g = health.BootGuard(%r, limit=3)
n = g.boot()
sup.on_healthy(g.clear)
async def mover(t, stop_ms):
    left = stop_ms
    while True:
        await asyncio.sleep_ms(10)
        if left is None or left > 0:
            t.progress += 1
            left = None if left is None else left - 10
async def main():
    asyncio.create_task(mover(a, None))
    asyncio.create_task(mover(b, 600))  # b hangs after 0.6 s
    asyncio.create_task(sup.run(20))
    await asyncio.sleep_ms(500)
    fed_at_half = Wdt.feeds
    await asyncio.sleep_ms(700)
    return fed_at_half
half = asyncio.run(main())
print(json.dumps([n, half, Wdt.feeds, sup.healthy, sup.stalled(), ev, health.BootGuard(%r).boot()]))
""" % (str(tmp_path / "boots"), str(tmp_path / "boots"))
    n, half, feeds, healthy, stalled, ev, next_boot = json.loads(
        run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])
    assert n == 1 and healthy and stalled == ["b"] and next_boot == 1
    assert half >= 15  # fed about every 20 ms while both moved
    assert feeds < half + 25  # and not for long once b stopped (0.6 s + 0.2 s of 1.2 s)
    assert ev[0].startswith("healthy") and ev[-1].startswith("task b made no progress")


@pytest.mark.mpy
def test_a_simulated_month_of_supervision_on_micropython():
    code = r"""
import json
from time import ticks_add
from nengjian.system import health
class Wdt:
    feeds = 0
    def feed(self):
        Wdt.feeds += 1
ms = [ticks_add(0, -86400000)]  # a day before this port's tick counter wraps
class T:
    progress = 0
t = T()
sup = health.Supervisor(Wdt(), None, healthy_s=600, ticks=lambda: ms[0])
sup.register("t", t, 120)
for i in range(30 * 24 * 360):  # a month in 10 s steps
    ms[0] = ticks_add(ms[0], 10000)
    if not (86400 <= i < 86400 + 30):  # one five-minute hang in the middle
        t.progress += 1
    sup.step()
print(json.dumps([sup.uptime_ms, Wdt.feeds, sup.healthy]))
"""
    uptime, feeds, healthy = json.loads(run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])
    assert uptime == 30 * 86400 * 1000
    assert feeds == 30 * 24 * 360 - 18 and healthy  # hungry from 120 s into the hang to its end
