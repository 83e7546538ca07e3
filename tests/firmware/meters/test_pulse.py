"""Pulse inputs (firmware/nengjian/meters/pulse.py): debounce, persistence across reboots and power
cuts, and the pulse meter driven through the sim board's file-backed pin on MicroPython."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpyrun import micropython_binary, mpy_env, run_mpy
from nengjian.meters import pulse
from nengjian_host.common.paths import PROFILES

# ---- debounce (CPython) ----------------------------------------------------------------------

def feed(counter, events):
    for t, level in events:
        counter.edge(t, level)
    counter.settle(events[-1][0] + 10_000 if events else 10_000)


def test_clean_pulses_count_on_the_active_edge():
    c = pulse.PulseCounter("p", debounce_ms=20, active=0)
    feed(c, [(100, 0), (200, 1), (300, 0), (400, 1)])
    assert c.count == 2
    r = pulse.PulseCounter("p", debounce_ms=20, active=1, level=0)
    feed(r, [(100, 1), (200, 0), (300, 1)])
    assert r.count == 2


def test_bounces_shorter_than_debounce_are_dropped():
    c = pulse.PulseCounter("p", debounce_ms=20)
    # press with contact bounce, release with bounce
    feed(c, [(100, 0), (101, 1), (103, 0), (104, 1), (106, 0), (300, 1), (302, 0), (305, 1)])
    assert c.count == 1 and c.bounces >= 5
    # a spike shorter than the debounce is not a pulse
    c2 = pulse.PulseCounter("p", debounce_ms=20)
    feed(c2, [(100, 0), (105, 1)])
    assert c2.count == 0


def test_settle_commits_the_last_edge_only_when_stable():
    c = pulse.PulseCounter("p", debounce_ms=20)
    c.edge(1000, 0)
    c.settle(1010)
    assert c.count == 0
    c.settle(1020)
    assert c.count == 1
    c.settle(5000)
    assert c.count == 1


@st.composite
def pulse_trains(draw):
    debounce = draw(st.integers(1, 50))
    t = 0
    level = 1
    events = []
    pulses = 0
    for _ in range(draw(st.integers(0, 30))):
        t += draw(st.integers(debounce + 1, 10 * debounce + 5))
        target = 1 - level
        # a bounce train: toggles all within the debounce window, ending at the target level
        k = draw(st.integers(0, 4))
        span = draw(st.integers(0, debounce - 1)) if k else 0
        times = sorted(draw(st.lists(st.integers(0, span), min_size=k, max_size=k))) if k else []
        lv = target
        events.append((t, lv))
        for dt in times:
            lv = 1 - lv
            events.append((t + dt, lv))
        if lv != target:
            events.append((t + span, target))
        t += span
        level = target
        if target == 0:
            pulses += 1
    return debounce, events, pulses


@settings(max_examples=500)
@given(pulse_trains())
def test_any_bouncy_train_counts_each_real_pulse_once(train):
    debounce, events, pulses = train
    c = pulse.PulseCounter("p", debounce_ms=debounce)
    for t, level in events:
        c.edge(t, level)
        c.settle(t)  # the service task may run at any time in between
    c.settle((events[-1][0] if events else 0) + debounce)
    assert c.count == pulses


# ---- persistence (CPython, on a host directory) ----------------------------------------------

@pytest.mark.mpy
def test_the_pin_handler_allocates_nothing():
    """A pin interrupt may run with the heap locked (a hard IRQ on the ESP32 boards): what the pin calls
    on an edge must not allocate, on MicroPython."""
    code = r"""
import micropython
from nengjian.meters import pulse
class Pin:
    def __init__(self):
        self.level = 1
    def value(self):
        return self.level
pin = Pin()
c = pulse.PulseCounter("p", debounce_ms=0, active=0)
handler = c._irq
res = "ok"
micropython.heap_lock()
try:
    for i in range(200):
        pin.level = i & 1
        handler(pin)
except MemoryError:
    res = "allocated"
micropython.heap_unlock()
print(res, c.count)
"""
    res, count = run_mpy(code, heap="64k").stdout.split()
    assert res == "ok" and int(count) == 100  # the 100 falling edges, each committed by the edge after it


def test_store_persists_by_count_time_and_stop(tmp_path):
    path = str(tmp_path / "pulse.json")
    pulse._stores.clear()
    s = pulse.store_for(path)
    a = s.counter("pulse_0", persist_s=60, persist_pulses=3)
    b = s.counter("pulse_1")
    now = 0
    assert not s.service(now)
    a.count = 2
    assert not s.service(now)  # two new pulses, one minute not over: not yet
    a.count = 3
    assert s.service(now)  # three new pulses: written
    assert json.load(open(path))["counts"] == {"pulse_0": 3, "pulse_1": 0}
    b.count = 1
    s._last = 0
    assert not s.service(59_000)
    assert s.service(60_001)  # a minute with new pulses: written
    assert s.writes == 2 and not os.path.exists(path + ".tmp")
    b.count = 2
    pulse.stop_all()  # a clean stop writes whatever is new
    assert json.load(open(path))["counts"] == {"pulse_0": 3, "pulse_1": 2}
    # reboot: counts come back; an input no longer configured keeps its count in the file
    pulse._stores.clear()
    s2 = pulse.store_for(path)
    assert s2.counter("pulse_1").count == 2
    s2.counters["pulse_1"].count = 5
    s2.persist()
    assert json.load(open(path))["counts"] == {"pulse_0": 3, "pulse_1": 5}
    pulse._stores.clear()


def test_a_torn_file_falls_back_to_a_complete_new_one(tmp_path):
    path = str(tmp_path / "pulse.json")
    with open(path + ".new", "w") as f:  # a save whose rename a power cut stopped
        f.write(json.dumps({"v": 1, "counts": {"pulse_0": 41}}))
    with open(path, "w") as f:
        f.write('{"v": 1, "coun')
    assert pulse.PulseStore(path).counter("pulse_0").count == 41
    assert json.load(open(path))["counts"] == {"pulse_0": 41} and not os.path.exists(path + ".new")


def test_the_temporary_file_of_older_firmware_is_read_once(tmp_path):
    path = str(tmp_path / "pulse.json")
    with open(path + ".tmp", "w") as f:  # older firmware: a first save cut before its rename
        f.write(json.dumps({"v": 1, "counts": {"pulse_0": 41}}))
    assert pulse.PulseStore(path).counter("pulse_0").count == 41
    assert json.load(open(path))["counts"] == {"pulse_0": 41} and not os.path.exists(path + ".tmp")
    with open(path + ".tmp", "w") as f:  # beside a readable pulse.json: removed unread
        f.write(json.dumps({"v": 1, "counts": {"pulse_0": 7}}))
    assert pulse.PulseStore(path).counter("pulse_0").count == 41 and not os.path.exists(path + ".tmp")


def test_a_torn_file_alone_counts_from_zero_and_says_so(tmp_path, capsys):
    path = str(tmp_path / "pulse.json")
    with open(path, "w") as f:
        f.write('{"v": 1, "counts": {"pulse_0": 4')
    s = pulse.PulseStore(path)
    c = s.counter("pulse_0")
    assert c.count == 0 and not s.dirty()
    out = capsys.readouterr().out
    assert "pulse" in out and path + " unreadable (not complete JSON" in out and "counting from zero" in out
    c.count = 3
    assert s.persist() and json.load(open(path)) == {"v": 1, "counts": {"pulse_0": 3}}


def test_a_failed_write_is_logged_and_retried_later(tmp_path, capsys):
    path = str(tmp_path / "gone" / "pulse.json")
    s = pulse.PulseStore(path)
    c = s.counter("pulse_0", persist_pulses=1)
    c.count = 1
    assert not s.service(0) and s.writes == 0 and s.dirty()
    assert "cannot persist counts to " + path in capsys.readouterr().out
    os.mkdir(str(tmp_path / "gone"))
    assert s.service(1) and s.writes == 1 and not s.dirty()


# ---- the pulse meter on MicroPython, driven through the sim board's pin ----------------------

SCRIPT = r"""
import asyncio, os, sys
import board
from nengjian.meters import pulse, profile
board.mount_data()
prof = profile.load(os.getenv('NJ_PROFILES'), 'pulse-gas')
cfg = {'address': '0', 'pulse': {'start': '1000.00', 'persist_s': 3600, 'persist_pulses': PERSIST_PULSES,
                                 'debounce_ms': 25}}
m = pulse.PulseMeter(cfg, prof, ['volume_m3', 'pulses'], board)
_persist = m.store.persist
def persist():
    _persist()
    print('persisted', m.counter.count)
m.store.persist = persist
async def watch():
    seen = m.counter.count
    while True:
        await asyncio.sleep_ms(10)
        if m.counter.count != seen:
            seen = m.counter.count
            print('count', seen)
async def main():
    asyncio.create_task(m.background())
    asyncio.create_task(watch())
    print('ready', m.counter.count)
    while True:
        try:
            os.stat(os.getenv('NJ_STOP'))
            break
        except OSError:
            await asyncio.sleep_ms(20)
    await asyncio.sleep_ms(100)
    v = await m.read(None, None, 0, 0, {})
    print('values', v['pulses'].text(), v['volume_m3'].text(), 'bounces', m.counter.bounces)
asyncio.run(main())
CLEAN_STOP
"""


class PulseRig:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.pin = tmp_path / "pin0"
        self.stop = tmp_path / "stop"
        self.pin.write_bytes(b"")
        self.proc = None

    def start(self, persist_pulses=100, clean_stop=True):
        if self.stop.exists():
            self.stop.unlink()
        code = SCRIPT.replace("PERSIST_PULSES", str(persist_pulses)).replace(
            "CLEAN_STOP", "pulse.stop_all()" if clean_stop else "")
        env = mpy_env("sim", {"NJ_SIM_DIR": self.dir, "NJ_PULSE0": self.pin, "NJ_STOP": self.stop,
                              "NJ_DATA_KB": 256, "NJ_PROFILES": PROFILES})
        self.proc = subprocess.Popen([micropython_binary(), "-X", "heapsize=512k", "-c", code], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = []
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), line + self.proc.stdout.read()
        self.lines.append(line.strip())
        return int(line.split()[1])

    def level(self, chars: str):
        """Levels at one instant, then a hold: the pin's timeline, read whenever the gateway gets to it."""
        with open(self.pin, "ab") as f:
            f.write(chars.encode() + b"-")

    def wait_count(self, n: int):
        """Read the gateway's lines until it has counted n pulses (events, not a guess at its speed)."""
        while True:
            line = self.proc.stdout.readline()
            assert line, "the gateway ended before counting %d pulses: %s" % (n, self.lines[-5:])
            self.lines.append(line.strip())
            if line.startswith("count ") and int(line.split()[1]) >= n:
                return

    def pulses(self, n, bouncy=False):
        for _ in range(n):
            self.level("0101010" if bouncy else "0")  # written at once: one instant of bounce
            self.level("1010101" if bouncy else "1")

    def finish(self):
        self.stop.write_text("stop")
        out, _ = self.proc.communicate(timeout=30)
        self.lines += out.strip().splitlines()
        return self.lines

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        out, _ = self.proc.communicate(timeout=30)
        self.lines += out.strip().splitlines()
        return self.lines


@pytest.mark.mpy
def test_pulse_meter_counts_debounces_and_survives_a_reboot(tmp_path):
    rig = PulseRig(tmp_path)
    assert rig.start(persist_pulses=100) == 0
    rig.pulses(4)
    rig.pulses(3, bouncy=True)
    rig.wait_count(7)
    lines = rig.finish()
    values = [x for x in lines if x.startswith("values")][0].split()
    assert values[1:3] == ["7", "1000.07"]  # 0.01 m3 per pulse on top of the index 1000.00
    assert int(values[4]) > 0  # the bounces were seen and dropped
    assert lines[-1] == "persisted 7"  # written on the clean stop
    # reboot: the count comes back and keeps growing
    assert rig.start() == 7
    rig.pulses(2)
    rig.wait_count(9)
    lines = rig.finish()
    assert "values 9 1000.09" in " ".join(lines)


@pytest.mark.mpy
def test_power_cut_loses_only_what_was_not_persisted(tmp_path):
    rig = PulseRig(tmp_path)
    assert rig.start(persist_pulses=3) == 0
    rig.pulses(8)
    rig.wait_count(8)
    lines = rig.kill()  # a power cut: no stop, no atexit
    persisted = [int(x.split()[1]) for x in lines if x.startswith("persisted")]
    assert persisted == [3, 6]
    # what was persisted comes back; the two pulses since the last write are what the cut cost
    assert rig.start(persist_pulses=1) == 6
    rig.pulses(2)
    rig.wait_count(8)
    lines = rig.kill()
    assert [int(x.split()[1]) for x in lines if x.startswith("persisted")] == [7, 8]
    assert rig.start() == 8  # with persist_pulses 1 nothing is lost
    rig.finish()


@pytest.mark.mpy
def test_exit_without_explicit_stop_still_persists(tmp_path):
    rig = PulseRig(tmp_path)
    rig.start(persist_pulses=100, clean_stop=False)
    rig.pulses(2)
    rig.wait_count(2)
    lines = rig.finish()
    assert lines[-1] == "persisted 2"  # sys.atexit on the unix port
    assert rig.start() == 2
    rig.finish()
