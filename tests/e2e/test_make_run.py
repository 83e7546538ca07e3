"""`make run` itself, as a new developer starts it: simulated meters, the reference platform and the real
firmware on the sim board, until the platform shows an accepted value; then Ctrl-C stops it all cleanly."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time

import pytest
from nengjian_host.common import paths

pytestmark = [pytest.mark.e2e]

ACCEPTED = re.compile(r"\[platform\] platform: accepted (\d+) record\(s\) from 91330000573973053F: "
                      r"00-00-0000-023300-11 \d{4}-\d\d-\d\d \d\d:\d\d:00 = \d")
HOLDS = re.compile(r"\[sim\] +stopped; the platform holds (\d+) value\(s\)")


def _read_until(proc, rx, out: list[str], timeout: float):
    """Lines of proc's stdout into `out` until one matches rx (None at the end of output or the bound)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            return None
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            out.append(line)
            m = rx.search(line)
            if m:
                return m
    return None


def test_make_run_shows_an_accepted_value_and_stops_on_ctrl_c(tmp_path):
    # -o: take the environment as installed (a test must not reinstall .venv); DURATION bounds a hung run.
    cmd = ["make", "--no-print-directory", "-C", str(paths.ROOT), "-o", ".venv/.installed", "run", "DURATION=120",
           "SIM_ARGS=--speed 12 --interval 1 --dir %s" % (tmp_path / "sim")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    out: list[str] = []
    try:
        m = _read_until(proc, ACCEPTED, out, timeout=110)
        assert m, "no accepted value shown:\n" + "\n".join(out[-40:])
        assert any(re.search(r"\[gateway\] .* poll\s+m1 at ", line) for line in out)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at the terminal: make and the sim alike
        held = _read_until(proc, HOLDS, out, timeout=60)
        assert held and int(held.group(1)) >= 1, "\n".join(out[-40:])
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = "\n".join(out)
    assert "Traceback" not in text, text[-3000:]
