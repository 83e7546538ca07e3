"""Signed updates on the sim board in ROMFS mode (the package runs from an image mounted at /rom, as
on the ESP32 boards): a crew pushes a bundle carrying romfs.img, the gateway streams it into the
spare slot's ROMFS store, the board module copies it into its romfs partition at the next boot, and
the version that then starts is the image's; a version that crashes at import is rolled back after
ota.max_boots boots and the image that ran before is copied back and runs again.

Directory-slot updates (the sim's default) are tests/e2e/test_ota_sim.py's."""

from __future__ import annotations

import json
import re

import pytest
from nengjian_host.common import bundle as app_bundle
from nengjian_host.common import romfs
from nengjian_host.vendor import updates as host_ota
from otarig import BOOTED, crashing_files, ledger_texts, ota_cli, start, vendor_key

pytestmark = [pytest.mark.e2e, pytest.mark.sim_heap("352k")]

NEW = "0.2.0-rom"
CRASH = "0.3.0-romcrash"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("ota-romfs")
    vendor_key(d)
    march = app_bundle.load_board("sim").mpy_march
    good = host_ota.collect(mpy=True, march=march, version=NEW)
    man = host_ota.build(d / "good.njota", d / "vendor.pem", NEW, ["sim"], files=good, mpy=True, romfs=True)
    assert [f[0] for f in man["files"]] == [host_ota.ROMFS_FILE]
    crash = crashing_files(d, march, CRASH)
    host_ota.build(d / "crash.njota", d / "vendor.pem", CRASH, ["sim"], files=crash, mpy=True, romfs=True)
    return d


def _image_holds(path, version) -> bool:
    """Whether the ROMFS image in partition file `path` is the package of `version` (its app.mpy
    carries the version string)."""
    files = romfs.read(path.read_bytes())
    return version.encode() in files["nengjian/app.mpy"]


@pytest.mark.needs("console", "reset")
def test_romfs_update_is_copied_in_at_boot_runs_from_rom_and_is_confirmed(dut, bundles):
    builtin, app_dir = start(dut, bundles, romfs=True)
    gw = dut.gateway.dir
    assert builtin != NEW and _image_holds(gw / "romfs.img", builtin)

    code, out, err = ota_cli("push", str(bundles / "good.njota"), "--port", dut.port, "--json")
    assert code == 0, out + err
    assert dut.expect(BOOTED, timeout=120).group(1) == NEW
    # The image went into store a and from there into romfs; the slot keeps only what proves it.
    assert sorted(p.name for p in (app_dir / "a").iterdir()) == ["MANIFEST.json", "MANIFEST.sig"]
    assert _image_holds(gw / "romfs_a.img", NEW) and _image_holds(gw / "romfs.img", NEW)
    assert json.loads((app_dir / "romfs.json").read_text())["holds"] == "a"
    assert "romfs: now holds the image of update store a" in dut.output()
    dut.expect(r"event\s+ota: version %s confirmed healthy" % re.escape(NEW), timeout=120)
    texts = ledger_texts(dut)
    assert ("ota", "trial boot 1 of 2: %s from slot a" % NEW) in texts
    assert not any("rolled back" in t or "update refused" in t for _k, t in texts)
    # Kept across a reset, with no copy: romfs already holds it.
    boots = dut.gateway.boots
    dut.reset()
    assert dut.expect(BOOTED, timeout=60).group(1) == NEW
    assert dut.gateway.boots == boots + 1


@pytest.mark.needs("console", "reset")
def test_romfs_version_crashing_at_import_is_rolled_back_and_the_old_image_runs(dut, bundles):
    builtin, app_dir = start(dut, bundles, romfs=True, max_boots=2)
    gw = dut.gateway.dir
    code, out, err = ota_cli("push", str(bundles / "crash.njota"), "--port", dut.port, "--json")
    # Installed, but after the resets the gateway came back with the version before it.
    assert code == 1, out + err
    doc = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert doc["installed"]["installed"] == CRASH and doc["status"]["firmware"] == builtin
    assert dut.expect(BOOTED, timeout=60).group(1) == builtin
    # The first boot, the copy of the trial's image, two trial boots that crash at import, the
    # rollback's reset, the copy of the built-in image back, the rolled-back boot.
    assert dut.gateway.boots == 7
    assert dut.output().count("update on trial failed to start: resetting") == 2
    assert "app of %s breaks at import" % CRASH in dut.output()
    # The built-in image (store b) was copied back into romfs after the rollback.
    assert _image_holds(gw / "romfs_a.img", CRASH) and _image_holds(gw / "romfs.img", builtin)
    assert json.loads((app_dir / "romfs.json").read_text())["holds"] == "b"
    assert "romfs: now holds the image of update store b" in dut.output()
    texts = [t for k, t in ledger_texts(dut) if k == "ota"]
    assert any(t.startswith("rolled back from %s to built-in: not healthy after 2 boot(s)" % CRASH)
               for t in texts), texts
    state = dut.console().request("ota")[-1]
    assert state["active"] == "" and state["state"] == "confirmed" and state["running"] == builtin
