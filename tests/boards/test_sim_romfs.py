"""The sim board's ROMFS: the image in the gateway's directory is its `romfs` partition, romfs_a.img and
romfs_b.img its stores; importing the board switches to the store the update pointer chose (a copy,
then a reset), and the next boot runs the package from the new image."""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy
from nengjian_host.common import bundle, romfs
from nengjian_host.sim.gateway import RESET_LINE

pytestmark = pytest.mark.mpy

PROBE = """
import sys
import board
try:
    from nengjian import romslot
    which = romslot.WHICH
except ImportError:
    which = 'flashed'
import nengjian.app
print('|'.join([which, nengjian.app.__file__, str(board.ROMFS_BYTES)]))
"""


def _blocks(image: bytes) -> bytes:
    return image + b"\xff" * (-len(image) % 4096)


def test_importing_the_board_switches_romfs_to_the_chosen_store_and_resets(tmp_path):
    files = romfs.select_files(bundle.collect(bundle.load_board("sim")).files)
    flashed = romfs.build(files)
    update = romfs.build({**files, "nengjian/romslot.py": b"WHICH = 'a'\n"})
    gw = tmp_path / "gw"
    (gw / "app").mkdir(parents=True)
    # As partitions hold them: whole 4 KiB blocks, erased after the image
    (gw / "romfs.img").write_bytes(_blocks(flashed))
    (gw / "romfs_b.img").write_bytes(_blocks(flashed))
    (gw / "romfs_a.img").write_bytes(_blocks(update))
    env = {"NJ_SIM_DIR": str(gw), "NJ_ROMFS": str(gw / "romfs.img")}
    # No update chosen: nothing is copied, the flashed image runs.
    out = run_mpy(PROBE, heap="1m", env=env, cwd=str(gw)).stdout.strip().splitlines()[-1]
    assert out == "flashed|/rom/nengjian/app.mpy|%d" % len(flashed)
    (gw / "app" / "current").write_text(json.dumps({"active": "a", "state": "trial", "boots": 0}))
    first = run_mpy(PROBE, heap="1m", env=env, cwd=str(gw), check=False)
    assert RESET_LINE in first.stdout and "now holds the image of update store a" in first.stdout, first.stdout
    assert (gw / "romfs.img").read_bytes()[:len(update)] == update
    assert json.loads((gw / "app" / "romfs.json").read_text())["holds"] == "a"
    # The boot after the reset runs the package of the new image, with no copy.
    second = run_mpy(PROBE, heap="1m", env=env, cwd=str(gw))
    assert RESET_LINE not in second.stdout
    assert second.stdout.strip().splitlines()[-1] == "a|/rom/nengjian/app.mpy|%d" % len(update)
