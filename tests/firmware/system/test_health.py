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
    sup = health.Supervisor(wdt, lambda k, t, c=None: events.append((k, t)), healthy_s=healthy_s, ticks=clock,
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
    hb = health.Heartbeat(900, lambda k, t, c=None: events.append((k, t)), health.standard_sources(sup, lambda: snap))
    got = []
    hb.subscribe(got.append)
    d = hb.beat()
    assert events == [("heartbeat", "uptime_s=3723 heap_free=51234 flash_free=1048576 backlog.city=3 "
                                    "backlog.prov=120 link.cat1=up rssi.cat1=-71 link.eth=down")]
    assert got == [d] and d["backlog.prov"] == 120 and d["flash_free"] == 1048576


def test_a_heartbeat_without_a_data_volume_leaves_flash_free_out():
    sup, *_ = rig()
    hb = health.Heartbeat(900, lambda k, t, c=None: None, health.standard_sources(
        sup, lambda: {"heap_free": 1, "flash": None, "destinations": [], "backlog": [], "links": []}))
    assert sorted(hb.beat()) == ["heap_free", "uptime_s"]


def test_a_broken_probe_does_not_silence_the_heartbeat():
    events = []
    hb = health.Heartbeat(60, lambda k, t, c=None: events.append(t), [("a", lambda: 1), ("b", lambda: 1 // 0)])
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
    g.planned()  # the app's restart
    g = health.BootGuard(path, limit=5)
    assert g.boot(health.RESET) == 5 and not g.crash_loop and g.level() == 0  # a normal start, at the edge
    g = health.BootGuard(path, limit=5)
    assert g.boot(health.WATCHDOG) == 6 and g.crash_loop  # one more quick crash: safe mode again at once
    g.clear()
    g = health.BootGuard(path, limit=5)
    assert g.boot() == 1 and not g.crash_loop


def test_torn_boot_counter_counts_as_a_crash(tmp_path):
    path = tmp_path / "boots"
    path.write_text("\x00\x00")
    assert health.BootGuard(str(path)).boot() == 2
    path.write_text("\x00\x00")
    g = health.BootGuard(str(path))
    assert g.boot(health.POWER_ON) == 2 and g.quick == 1  # after a power cut too


def boots(path, causes, limit=5):
    """[(count, quick, level)] of one boot per cause, each run ending unhealthy."""
    out = []
    for cause in causes:
        g = health.BootGuard(path, limit)
        n = g.boot(cause)
        out.append((n, g.quick, g.level()))
    return out


def test_power_cuts_however_many_are_never_a_crash_loop(tmp_path):
    path = str(tmp_path / "boots")
    for cause in (health.POWER_ON, health.BROWN_OUT, health.SOFT_REBOOT):
        assert boots(path, [cause] * 40) == [(1, 0, 0)] * 40, cause


def test_crashes_watchdog_resets_and_unknown_causes_count_and_a_power_cut_forgets_none(tmp_path):
    path = str(tmp_path / "boots")
    got = boots(path, [health.POWER_ON, health.WATCHDOG, health.CRASH, health.POWER_ON, health.BROWN_OUT,
                       health.RESET, health.UNKNOWN, health.POWER_ON])
    assert [q for _n, q, _l in got] == [0, 1, 2, 2, 2, 3, 4, 4]
    assert [lv for _n, _q, lv in got] == [0] * 8
    assert boots(path, [health.WATCHDOG])[0] == (6, 5, 1)  # the fifth quick crash: a crash loop
    # Safe mode crashing as often again: level 2; power cuts in safe mode keep the level, add nothing.
    assert [lv for _n, _q, lv in boots(path, [health.CRASH] * 4 + [health.POWER_ON, health.CRASH])] == [
        1, 1, 1, 1, 1, 2]
    assert boots(path, [health.POWER_ON] * 3) == [(11, 10, 2)] * 3


def test_a_planned_reset_counts_nothing_and_a_healthy_run_clears(tmp_path):
    path = str(tmp_path / "boots")
    g = health.BootGuard(path, 2)
    g.boot(health.POWER_ON)
    g.planned()  # an update installed: the board resets on purpose
    g = health.BootGuard(path, 2)
    assert g.boot(health.RESET) == 1
    g.clear()
    g.planned()  # after a healthy run there is nothing to take back
    assert [q for _n, q, _l in boots(path, [health.RESET, health.WATCHDOG])] == [0, 1]


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
sup = health.Supervisor(Wdt(), lambda k, t, c=None: ev.append(t), healthy_s=0.3)
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


@pytest.mark.mpy
def test_boot_guard_with_the_sim_boards_reset_cause_on_micropython(tmp_path):
    """The launcher's word (NJ_RESET_CAUSE) through board.reset_cause() into the guard, boot by boot."""
    code = r"""
import board
from nengjian.system import health
g = health.BootGuard(%r, limit=2)
cause = board.reset_cause()
print(cause, g.boot(cause), g.level())
""" % str(tmp_path / "boots")

    def boot(cause):
        return run_mpy(code, heap="256k", env={"NJ_RESET_CAUSE": cause}).stdout.split()

    assert boot("") == ["power-on", "1", "0"]  # no launcher: a process just started was just powered on
    assert [boot(c) for c in ("power-on", "brown-out", "soft-reboot")] == [
        ["power-on", "1", "0"], ["brown-out", "1", "0"], ["soft-reboot", "1", "0"]]
    assert [boot(c) for c in ("watchdog", "crash", "power-on", "no-such-cause")] == [
        ["watchdog", "2", "0"], ["crash", "3", "1"], ["power-on", "3", "1"], ["unknown", "4", "1"]]


@pytest.mark.mpy
def test_a_step_that_raises_does_not_end_the_supervisor_on_micropython():
    code = r"""
import asyncio, json
from nengjian.system import health
class Wdt:
    feeds = 0
    def feed(self):
        Wdt.feeds += 1
calls = [0]
def progress():  # a task's progress function with a bug for three steps
    calls[0] += 1
    if 2 <= calls[0] <= 4:
        raise ValueError("progress probe broke")
    return calls[0]
ev = []
sup = health.Supervisor(Wdt(), lambda k, t, c=None: ev.append(t), healthy_s=1000)
sup.register("a", progress, 10)
async def main():
    t = asyncio.create_task(sup.run(5))
    for _ in range(2000):  # an upper bound on the wait, not a measurement
        await asyncio.sleep_ms(5)
        if Wdt.feeds >= 3 or t.done():
            break
    return t.done()
ended = asyncio.run(main())
print(json.dumps([ended, Wdt.feeds, ev]))
"""
    ended, feeds, ev = json.loads(run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])
    assert not ended and feeds >= 3  # today's main: the first failing step ended the feeder
    assert ev == ["supervisor step failed (ValueError: progress probe broke)"]  # once per reason
