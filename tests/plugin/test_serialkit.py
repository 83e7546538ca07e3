"""The desk rig's serial backend (tests/plugin/serialkit.py) in CI: every end-to-end test written
against the rig fixtures runs through it, against a sim gateway whose USB console is a pty as a
USB-serial bridge's is (tests/rigs/sim-usb.json). What it cannot do skips with the rig's reason, as on
a desk rig without that switch."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# These must pass through the serial backend. Between them they run what a developer's desk rig runs
# first: the port opened by path with DTR and RTS released, shared by the kit's one reader (TeePort:
# lines for expect(), the bytes to the in-process console client, `nengjian status/visit/manual/
# console/scan` and mpremote through its pty), the console protocol on it (status, events, get, put,
# malformed requests), a reset through the console and the wait for the boot line, Ctrl-C to the REPL,
# the raw REPL and Ctrl-D back, the SerialBridge carrying every poll and a scan between the "adapter"
# and the simulated meters (a silenced meter too), and the platform at the URL the rig gives the
# gateway. Each boots its own sim gateway: some 30 s in all, about a minute on a loaded machine.
MUST_PASS = {
    "tests/e2e/test_console.py::test_status_events_and_cli_while_the_gateway_runs",
    "tests/e2e/test_console.py::test_bad_requests_get_errors_and_the_console_goes_on",
    "tests/e2e/test_console.py::test_put_is_all_or_nothing",
    "tests/e2e/test_console.py::test_ctrl_c_lets_mpremote_in_without_a_power_cycle",
    "tests/e2e/test_console.py::test_console_reset_and_piped_console",
    "tests/e2e/test_console.py::test_scan_through_the_running_gateway",
    "tests/e2e/test_crew_entries.py::test_visit_and_manual_entry",
}
_OUTCOME = re.compile(r"^(tests/\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", re.M)


@pytest.mark.timeout(600)
def test_the_rig_independent_e2e_tests_pass_through_the_serial_backend():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not an xdist worker's
    cmd = [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", "-o", "console_output_style=classic",
           "--rig-file=tests/rigs/sim-usb.json", "--rig-tests-only", "-m", "e2e", "tests"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=570)
    out = p.stdout + p.stderr
    outcomes = dict(_OUTCOME.findall(p.stdout))
    assert "rig sim-usb (serial, from tests/rigs/sim-usb.json)" in out, out[-3000:]
    bad = {t: o for t, o in outcomes.items() if o not in ("PASSED", "SKIPPED")}
    assert not bad and p.returncode == 0, out[-6000:]
    assert {t for t in MUST_PASS if outcomes.get(t) != "PASSED"} == set(), out[-6000:]
    # Where the serial backend falls short, the test says why (a desk rig reads the same).
    assert "rig sim-usb lacks fast_clock" in out and "rig sim-usb lacks flash_image" in out
    assert "rig sim-usb lacks power_cut" in out
