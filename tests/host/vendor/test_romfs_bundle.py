"""`nengjian ota build` for a board that runs its package from ROMFS (board.json "romfs"): the bundle
carries one signed file, romfs.img, the image of the version's compiled package and the profiles."""

from __future__ import annotations

import json

import pytest
from nengjian_host.common import paths, romfs
from nengjian_host.vendor import updates


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    d = tmp_path_factory.mktemp("romfs-key")
    updates.keygen(d / "v.pem", d / "v.pub.json", "v", bits=1024)
    return d


def test_a_bundle_for_a_romfs_board_carries_the_image_of_the_stamped_package_and_profiles(key, tmp_path):
    out = tmp_path / "eth.njota"
    man = updates.build(out, key / "v.pem", "0.9.1", ["esp32_eth"], mpy=True)
    assert [f[0] for f in man["files"]] == ["romfs.img"]
    data = out.read_bytes()
    assert updates.verify(data, json.loads((key / "v.pub.json").read_text())) == []
    _man, _sig, files = updates.read(data)
    image = romfs.read(files[0][1])
    assert b"0.9.1" in image["nengjian/app.mpy"]
    assert {"profiles/meters/" + p.name for p in paths.PROFILES.glob("*.json")} <= set(image)


def test_the_sim_gets_package_files_unless_asked_and_a_mix_of_boards_gets_package_files(key, tmp_path):
    files = [("nengjian/__init__.py", b""), ("nengjian/app.py", b'VERSION = "1.0.0"\n')]
    plain = updates.build(tmp_path / "sim.njota", key / "v.pem", "1.0.0", ["sim"], files=files)
    assert [f[0] for f in plain["files"]] == ["nengjian/__init__.py", "nengjian/app.py"]
    rom = updates.build(tmp_path / "simrom.njota", key / "v.pem", "1.0.0", ["sim"], files=files, romfs=True)
    assert [f[0] for f in rom["files"]] == ["romfs.img"]
    assert updates.board_romfs(["esp32_eth", "esp32s3_4g"]) is True
    assert updates.board_romfs(["sim", "esp32s3_4g"]) is False
