"""A dead meter is put aside for its `backoff_s` while the live meter on the same bus keeps its schedule,
then tried again, and read again once it answers (SPEC 7 "Dead meters")."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.e2e]

M1_POLL = re.compile(r" poll\s+m1 at ")
M2_TRY = re.compile(r"meter m2 \(bus0 addr 2\): ")  # every failed attempt at m2 logs this line
M2_OFFLINE = re.compile(r"event\s+meter: meter m2 offline after 2 failed polls .*retry every 6 s")
BACKOFF_S = 6
INTERVAL_S = 1


def _index(lines, rx, start=0):
    return next((i for i in range(start, len(lines)) if rx.search(lines[i])), None)


def test_dead_meter_is_skipped_during_backoff_while_the_other_keeps_its_schedule(rig, dut, bus, platform):
    if rig.spec.kind != "sim":
        pytest.skip("reads the poll schedule from the sim gateway's log")
    bus.silence(2)
    cfg = dut.site(interval_s=INTERVAL_S)
    cfg["meters"][1].update({"fail_limit": 2, "retries": 0, "timeout_ms": 300, "backoff_s": BACKOFF_S})
    dut.start(cfg)
    dut.expect(M2_OFFLINE.pattern, timeout=60)
    # the one attempt after the back-off (m2 is still silent): the window between is the back-off
    dut.expect(M2_TRY.pattern, timeout=60)
    lines = list(dut.lines)
    offline = _index(lines, M2_OFFLINE)
    retry = _index(lines, M2_TRY, offline + 1)
    assert offline is not None and retry is not None
    window = lines[offline + 1:retry]
    m1_polls = sum(1 for line in window if M1_POLL.search(line))
    # m1 is due every second: over a 6 s back-off it is polled about six times, and never waits for
    # m2's timeouts; without the back-off m2 would be tried (and time out) after every m1 poll.
    assert m1_polls >= BACKOFF_S // (2 * INTERVAL_S), "\n".join(window)
    assert not any(M2_TRY.search(line) for line in window)
    before = sum(1 for line in lines if M1_POLL.search(line))

    # After the retry the meter is put aside again; once it answers it is read and reported again.
    bus.silence(2, False)
    dut.expect(r"event\s+meter: meter m2 answers again after \d+ failed polls", timeout=60)
    dut.expect(r" poll\s+m2 at \S+: energy_kwh=", timeout=30)
    assert sum(1 for line in dut.lines if M1_POLL.search(line)) > before
    rig.wait_for(lambda: any(r["dataCode"] == "01-00-0000-023300-11" for r in platform.records()),
                 timeout=90, what="m2's values at the platform after it answers again")
    dut.stop()
    assert "Traceback" not in dut.output()
