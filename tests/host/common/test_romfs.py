"""The ROMFS image of the application: deterministic bytes, read back on the host, and mounted by the
real MicroPython unix port through vfs.VfsRom, which imports the package and finds the profiles in it."""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy
from nengjian_host.common import bundle, paths, romfs


@pytest.fixture(scope="module")
def sim_files():
    return bundle.collect(bundle.load_board("sim")).files


def test_same_files_give_the_same_bytes_whatever_their_order(sim_files):
    image = romfs.from_bundle(sim_files)
    assert romfs.from_bundle(dict(reversed(list(sim_files.items())))) == image
    back = romfs.read(image + b"\xff" * 4096)  # as read back from a partition larger than the image
    assert back == romfs.select_files(sim_files)
    assert "nengjian/app.mpy" in back and "profiles/meters/sim-energy.json" in back
    # The board module, main.py and the manifest stay on the app filesystem.
    assert not any(p.startswith(("lib/", "main.py", "board", "bundle.json")) for p in back)
    assert romfs.image_length(image + b"\xff" * 100) == len(image)


@pytest.mark.parametrize("path", ["../x", "a//b", "a/./b", "ä.mpy"])
def test_paths_that_cannot_be_in_an_image_are_refused(path):
    with pytest.raises(romfs.RomfsError):
        romfs.build({path: b"1"})


def test_a_bundle_without_the_package_is_refused():
    with pytest.raises(romfs.RomfsError, match="no compiled nengjian package"):
        romfs.from_bundle({"profiles/meters/x.json": b"{}"})


def test_partition_size_keeps_headroom_in_whole_erase_blocks():
    assert romfs.partition_size(255398) == 0x60000  # the esp32 image when the partitions came in
    assert romfs.partition_size(0x10000, headroom=1.0) == 0x10000


@pytest.mark.mpy
def test_the_image_mounts_and_the_package_imports_from_it_on_micropython(tmp_path, sim_files):
    image = tmp_path / "romfs.img"
    image.write_bytes(romfs.from_bundle(sim_files))
    # A profile only on the board's directory: found there once the image has none of that name.
    local = tmp_path / "profiles"
    local.mkdir()
    (local / "site-only.json").write_bytes((paths.PROFILES / "sim-energy.json").read_bytes())
    code = f"""
import gc, sys, vfs
with open({str(image)!r}, 'rb') as f:
    img = f.read()
vfs.mount(vfs.VfsRom(img), '/rom')
sys.path.insert(0, '/rom')
import nengjian.app
from nengjian.meters import profile
rom = profile.load('/nowhere', 'sim-energy')
here = profile.load({str(local)!r}, 'site-only')
print(nengjian.app.__file__, profile.__file__, sorted(rom['points']) == sorted(here['points']))
try:
    profile.load({str(local)!r}, 'absent')
except ValueError as e:
    print('refused', e)
"""
    out = run_mpy(code, heap="1m").stdout.split("\n")
    # MICROPYPATH also holds firmware/ (source): /rom leads sys.path, so the package comes from the image.
    assert out[0] == "/rom/nengjian/app.mpy /rom/nengjian/meters/profile.mpy True", out
    assert out[1].startswith("refused no profile 'absent' in %s" % local), out


@pytest.mark.mpy
def test_the_sim_board_mounts_the_image_named_by_nj_romfs(tmp_path):
    from nengjian_host.sim import build

    image = build.romfs_image(tmp_path / "sim-romfs.img")
    assert build.romfs_image(tmp_path / "again.img").read_bytes() == image.read_bytes()
    code = """
import sys
import board
import nengjian.app
print("%d|%s|%s" % (board.ROMFS_BYTES, sys.path[0], nengjian.app.__file__))
"""
    out = run_mpy(code, heap="1m", env={"NJ_ROMFS": str(image)}).stdout.strip().split("|")
    assert out == [str(image.stat().st_size), "/rom", "/rom/nengjian/app.mpy"]
    # Without NJ_ROMFS nothing is mounted and the board holds no image.
    out = run_mpy(code, heap="1m").stdout.strip().split("|")
    assert out[0] == "0" and out[1] != "/rom" and not out[2].startswith("/rom"), out


def test_bundle_writes_the_image_for_a_board_with_romfs_partitions(tmp_path):
    r = bundle.make("esp32_eth", tmp_path / "b")
    board = bundle.load_board("esp32_eth")
    image = (tmp_path / "b" / "romfs.bin").read_bytes()
    assert r["romfs"] == str(tmp_path / "b" / "romfs.bin") and r["romfs_bytes"] == len(image)
    assert len(image) <= board.part("romfs").size
    on_fs = bundle.read_lfs_image((tmp_path / "b" / "appfs.bin").read_bytes())
    assert romfs.read(image) == romfs.select_files(bundle.collect(board).files)
    # The package is in the image only; the board module, main.py and the profiles are on the app filesystem.
    assert not any(p.startswith("lib/nengjian/") for p in on_fs)
    assert {"main.py", "lib/board.mpy", "profiles/meters/sim-energy.json"} <= set(on_fs)
    assert json.loads(on_fs["bundle.json"])["board"] == "esp32_eth"
    assert bundle.make("sim", tmp_path / "s")["romfs"] is None  # the sim board's image is the launcher's
