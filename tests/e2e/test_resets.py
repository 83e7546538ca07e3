"""Resets on the rig, told apart by their cause: power cuts, however many and however close together,
never stop the gateway polling and storing; real crashes still bring crash-loop safe mode, which
polls and stores all the same (level 1), stops polling only once safe mode itself keeps crashing
(level 2), and leaves by itself after its hold. The ledger says which restart was which."""

import re

import pytest
from nengjian_host.crew import ledger
from simrig import values_from_console

pytestmark = [pytest.mark.e2e]

BOOT = r"event\s+boot: started firmware \S+ \(reset cause: (\S+), quick crashes: (\d+) of (\d+)\)"
SAFE = r"event\s+health: SAFE MODE"


def _booted_and_polled(dut) -> int:
    """Wait for this boot to start and poll; returns where its console lines begin."""
    dut.expect(r"event\s+boot: started firmware", timeout=30)
    mark = len(dut.lines)
    dut.expect(r"poll\s+m1 at", timeout=30)
    return mark


def _values_reach_the_platform(dut, platform, mark: int, what: str) -> None:
    """A value this boot produced (from its own polls, stored, then uploaded) is at the platform."""
    def arrived():
        produced = {(c, d) for c, d, _v in values_from_console("\n".join(dut.lines[mark:]))}
        return bool(produced & {(r["dataCode"], r["statDate"]) for r in platform.records()})

    dut.wait_for(arrived, timeout=60, what=what)


def _ledger(dut):
    recs = [[3, e["ts"], e["kind"], e["text"]] for e in dut.events(200)]
    return ledger.build(recs)


@pytest.mark.needs("console", "power_cut")
def test_a_storm_of_power_cuts_never_stops_polling_and_storing(dut, platform):
    # The field's case: the default crash limit (5), each run cut once it polls, long before healthy (600 s).
    dut.start()
    for _ in range(8):
        _booted_and_polled(dut)
        dut.power_cut()
    mark = _booted_and_polled(dut)
    _values_reach_the_platform(dut, platform, mark, "a value of the boot after eight power cuts at the platform")
    assert re.findall(BOOT, dut.output()) == [("power-on", "0", "5")] * 9
    # The ledger holds the boot events that reached flash (a cut within the store's flush window may
    # take the last one with it: by design).
    led = _ledger(dut)
    assert {(r["cause"], r["quick_crashes"]) for r in led["restarts"]} == {("power-on", 0)}
    st = dut.status()
    assert led["summary"]["safe_mode_entries"] == 0 and st["mode"] == "run" and "crash_loop" not in st


@pytest.mark.needs("console", "crash")
def test_a_crash_loop_still_enters_safe_mode_which_polls_and_stores_until_it_crashes_too(dut, platform):
    cfg = dut.site()
    cfg["health"] = {"crash_limit": 1}
    dut.start(cfg)
    _booted_and_polled(dut)
    dut.crash("watchdog")
    dut.expect(SAFE, timeout=30)
    mark = _booted_and_polled(dut)  # level 1: the meters are still polled ...
    _values_reach_the_platform(dut, platform, mark, "a value produced in crash-loop safe mode at the platform")
    st = dut.status()
    assert st["readings"] > 0 and st["crash_loop"] == 1  # ... and their readings stored
    assert "crash-loop safe mode, level 1" in st["alarms"]
    dut.crash("crash")  # safe mode crashed as well: the meters' path may be the fault
    m = dut.expect(SAFE + r" \(crash loop, level 2\): 2 quick crashes in a row \(last reset: crash\); "
                          r"safe mode crashed too: meters not polled", timeout=30)
    assert m
    assert dut.expect(BOOT, timeout=30).groups() == ("crash", "2", "1")
    assert re.findall(BOOT, dut.output()) == [("power-on", "0", "1"), ("watchdog", "1", "1"), ("crash", "2", "1")]
    led = _ledger(dut)  # the first run was cut short, its boot event perhaps with it; these two ran on
    assert [(r["cause"], r["quick_crashes"]) for r in led["restarts"]][-2:] == [("watchdog", 1), ("crash", 2)]
    (stretch,) = led["safe_modes"]
    assert stretch["level"] == 2 and stretch["open"]
    assert "level 1): 1 quick crashes in a row (last reset: watchdog); meters polled and stored" in stretch["start_text"]


HOLD_S = 30  # the schema's shortest hold


@pytest.mark.slow
@pytest.mark.needs("console", "crash")
def test_crash_loop_safe_mode_leaves_by_itself_after_its_hold_and_a_quick_crash_brings_it_back(dut, platform):
    cfg = dut.site()
    cfg["health"] = {"crash_limit": 1, "safe_hold_s": HOLD_S}
    dut.start(cfg)
    _booted_and_polled(dut)
    dut.crash("watchdog")
    dut.expect(SAFE + r" \(crash loop, level 1\)", timeout=30)
    _booted_and_polled(dut)
    dut.expect(r"event\s+health: leaving crash-loop safe mode for a normal start", timeout=HOLD_S + 30)
    # The board's own reset is no crash: a normal start (level 0), at the edge of the limit.
    assert dut.expect(BOOT, timeout=30).groups() == ("reset", "0", "1")
    dut.expect(r"poll\s+m1 at", timeout=30)
    dut.crash("watchdog")  # one more quick crash: safe mode again at once
    dut.expect(SAFE + r" \(crash loop, level 1\): 1 quick crashes in a row \(last reset: watchdog\)", timeout=30)
    _booted_and_polled(dut)
    assert [c for c, _q, _l in re.findall(BOOT, dut.output())] == ["power-on", "watchdog", "reset", "watchdog"]
    led = _ledger(dut)
    assert [(s["level"], s["open"]) for s in led["safe_modes"]] == [(1, False), (1, True)]
