"""Run firmware code on the MicroPython unix port (the sim board) from pytest.

Everything under firmware/ must run unchanged on MicroPython; these helpers start the real
`micropython` binary with the firmware and a board module on its import path, so a test proves
the code on MicroPython and not only on CPython.
"""

from __future__ import annotations

import os
import subprocess

# The checkout's layout and the binary are the host tools' (host/ is on sys.path: tests/conftest.py).
from nengjian_host.common.paths import BOARDS, FIRMWARE, ROOT, micropython_binary

__all__ = ["BOARDS", "FIRMWARE", "MPYLIB", "ROMFS_BOARD", "ROOT", "micropython_binary", "mpy_env", "run_mpy", "with_mpylib"]

# Test-side MicroPython modules (the power-cut sweep, stand-ins several tests share)
MPYLIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpylib")
ROMFS_BOARD = os.path.join(MPYLIB, "romfsboard")  # a stand-in `board` for the ROMFS update tests


def mpy_env(board: str = "sim", extra: dict | None = None) -> dict:
    env = dict(os.environ)
    # boards/common: modules the ESP32 boards share (board.json "shared"; lib/ on a gateway)
    env["MICROPYPATH"] = os.pathsep.join([str(FIRMWARE), str(BOARDS / board), str(BOARDS / "common"), ".frozen"])
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def with_mpylib(code: str) -> str:
    """`code` with tests/mpylib on its import path."""
    return "import sys\nsys.path.append(%r)\n" % MPYLIB + code


def run_mpy(code: str, *, heap: str = "512k", board: str = "sim", env: dict | None = None,
            timeout: float = 120, check: bool = True, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run `code` as a script on MicroPython; return the completed process (text output)."""
    cmd = [micropython_binary(), "-X", f"heapsize={heap}", "-c", code]
    proc = subprocess.run(cmd, env=mpy_env(board, env), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"micropython exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc
