"""The host side of the power-cut sweep (tests/mpylib/cutsweep.py): run one part on MicroPython, read
its COUNT/NOCUT/FAIL/DONE lines, and check that the part covered its share of the cut points."""

from __future__ import annotations

import re
import subprocess

from mpyrun import micropython_binary, mpy_env, with_mpylib


class Sweep:
    def __init__(self, text: str):
        self.text = text
        count = re.search(r"COUNT W=(\d+).*", text)
        done = re.search(r"DONE covered=(\d+) fails=(\d+)", text)
        assert count and "NOCUT ok" in text and done, text[-3000:]
        self.writes = int(count.group(1))
        self.count_line = count.group(0)
        self.covered = int(done.group(1))
        self.fails = int(done.group(2))
        self.failures = [ln for ln in text.splitlines() if ln.startswith("FAIL")]

    def assert_clean(self, part: int, parts: int) -> None:
        """Every cut point of this part (n % parts == part) was replayed, and none failed its checks."""
        want = sum(1 for n in range(1, self.writes + 1) if n % parts == part)
        assert self.covered == want, (self.covered, self.writes)
        assert self.fails == 0 and not self.failures, "\n".join(self.failures[:20])


def run_sweep(settings: dict, harness: str, heap: str, timeout: float) -> Sweep:
    """Run `harness` (a MicroPython script ending in a cutsweep.run call) with `settings` as globals."""
    head = "".join("%s = %r\n" % kv for kv in settings.items())
    proc = subprocess.run([micropython_binary(), "-X", "heapsize=" + heap, "-c", with_mpylib(head + harness)],
                          env=mpy_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return Sweep(proc.stdout)
