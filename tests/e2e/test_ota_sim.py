"""Signed updates end to end on the sim board: a crew pushes a bundle over the console
(`nengjian ota push`), the gateway checks it with its own vendor key, installs it into a slot under
its APP_DIR, resets, runs it on trial, confirms it once healthy and keeps it across restarts. A bundle
signed by another key switches nothing; a version that crashes at import is rolled back after
ota.max_boots boots, with the reason in the ledger.

The built-in package is the .mpy tree simbuild compiles (source with NJ_SIM_SOURCE=1); the bundles
carry .mpy compiled for the sim (x64) by host/nengjian_host/vendor/updates.py."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from nengjian_host.common import bundle as app_bundle
from nengjian_host.common import paths
from nengjian_host.sim.staticweb import StaticWeb
from nengjian_host.vendor import updates as host_ota
from otarig import BOOTED, boots_by_kind, crashing_files, ledger_texts, ota_cli, start, vendor_key

# 352k, one step above the sim tests' default 320k: a push is checked at once only when the heap has
# a contiguous block for the signature check, and with less the gateway defers it to the reset
# (the designed path when memory is short: tests/firmware/console/test_commands_ota.py). These tests
# follow the update itself; heap figures are bench/bench_heap.py's.
pytestmark = [pytest.mark.e2e, pytest.mark.sim_heap("352k")]

NEW = "0.2.0-sim"
OLDER = "0.1.5"  # signed by the vendor, older than NEW: refused once NEW is confirmed
CRASH = "0.3.0-crash"
STRICT = "0.4.0-strict"
NOMOUNT = "0.5.0-nomount"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("ota")
    vendor_key(d)
    host_ota.keygen(d / "other.pem", d / "other.pub.json", "not-the-vendor")
    march = app_bundle.load_board("sim").mpy_march
    good = host_ota.collect(mpy=True, march=march, version=NEW)
    host_ota.build(d / "good.njota", d / "vendor.pem", NEW, ["sim"], files=good, mpy=True)
    host_ota.build(d / "rogue.njota", d / "other.pem", NEW, ["sim"], files=good, mpy=True)
    host_ota.build(d / "older.njota", d / "vendor.pem", OLDER, ["sim"], files=good, mpy=True)
    crash = crashing_files(d, march, CRASH)
    host_ota.build(d / "crash.njota", d / "vendor.pem", CRASH, ["sim"], files=crash, mpy=True)
    # A version whose site schema wants a section this site's config does not have.
    schemas = (paths.FIRMWARE / "nengjian" / "config" / "schemas.py").read_text()
    top = '"required": ["version", "enterprise", "buses", "meters", "items", "destinations"'
    assert top in schemas
    src = d / "schemas.py"
    src.write_text(schemas.replace(top, top + ', "site_survey"', 1))
    strict_schemas = app_bundle.compile_module(src, "nengjian/config/schemas.py", None)
    strict = [(p, strict_schemas if p == "nengjian/config/schemas.mpy" else b)
              for p, b in host_ota.collect(mpy=True, march=march, version=STRICT)]
    host_ota.build(d / "strict.njota", d / "vendor.pem", STRICT, ["sim"], files=strict, mpy=True)
    # A version that cannot mount the data volume (say, a littlefs built with other block settings).
    src = d / "volume.py"
    src.write_text("def mount(dev, mount_point, format_if_blank=True):\n    raise OSError(5)\n")
    broken_volume = app_bundle.compile_module(src, "nengjian/store/volume.py", None)
    nomount = [(p, broken_volume if p == "nengjian/store/volume.mpy" else b)
               for p, b in host_ota.collect(mpy=True, march=march, version=NOMOUNT)]
    assert any(p == "nengjian/store/volume.mpy" for p, _b in nomount)
    host_ota.build(d / "nomount.njota", d / "vendor.pem", NOMOUNT, ["sim"], files=nomount, mpy=True)
    return d


def _json(out: str) -> dict:
    """The CLI's JSON line (with --rig-echo the gateway's console lines print in between)."""
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


@pytest.mark.needs("console", "reset")
def test_pushed_update_runs_on_trial_confirms_when_healthy_and_stays(dut, bundles):
    builtin, app_dir = start(dut, bundles)
    assert builtin != NEW
    state = dut.console().request("ota")[-1]
    assert state["active"] == "" and state["running"] == builtin

    code, out, err = ota_cli("push", str(bundles / "good.njota"), "--port", dut.port, "--json")
    assert code == 0, out + err
    doc = _json(out)
    assert doc.get("installed", {}).get("installed") == NEW and doc["installed"]["slot"] == "a", doc
    assert doc["status"]["firmware"] == NEW
    assert doc["ota"]["state"] == "trial" and doc["ota"]["boots"] == 1 and doc["ota"]["version"] == NEW
    assert (app_dir / "a" / "nengjian" / "app.mpy").exists()
    assert dut.expect(BOOTED, timeout=30).group(1) == NEW

    dut.expect(r"event\s+ota: version %s confirmed healthy" % re.escape(NEW), timeout=120)
    texts = ledger_texts(dut)
    assert any(k == "boot" and t.startswith("started firmware %s (" % builtin) for k, t in texts)
    assert any(k == "ota" and t.startswith("installed %s in slot a" % NEW) for k, t in texts)
    assert ("ota", "trial boot 1 of 2: %s from slot a" % NEW) in texts
    assert any(k == "boot" and t.startswith("started firmware %s (" % NEW) for k, t in texts)
    assert not any("rolled back" in t or "update refused" in t for _k, t in texts)

    # The confirm is kept: another reset boots the same version, not on trial, nothing counted.
    boots = dut.gateway.boots
    dut.reset()
    assert dut.expect(BOOTED, timeout=60).group(1) == NEW
    assert dut.gateway.boots == boots + 1
    code, out, err = ota_cli("state", "--port", dut.port)
    assert code == 0, err
    state = _json(out)
    assert (state["active"], state["version"], state["state"], state["boots"], state["running"]) == (
        "a", NEW, "confirmed", 0, NEW)
    assert state["previous_version"] is None  # the built-in package before it
    texts = ledger_texts(dut)
    assert [t for _k, t in texts if t.startswith("trial boot")] == ["trial boot 1 of 2: %s from slot a" % NEW]

    # Anti-rollback: NEW is the gateway's minimum now; an older bundle, correctly signed, is refused.
    assert state["min_version"] == NEW
    code, out, err = ota_cli("push", str(bundles / "older.njota"), "--port", dut.port)
    assert code == 1, out + err
    assert "bundle version %s is older than the gateway's minimum %s" % (OLDER, NEW) in err
    assert "降级" in err  # and in Chinese
    state = dut.console().request("ota")[-1]
    assert (state["active"], state["version"], state["state"]) == ("a", NEW, "confirmed")
    assert not (app_dir / "b").exists()


# The last release in the flat layout (before firmware/nengjian/ was grouped by stage). Its gateways
# keep that built-in package and their main.py; an update must still boot on them.
FLAT_LAYOUT_RELEASE = "f94f8c8"


def _flat_layout_builtin(tmp_path) -> Path:
    """The built-in package of a gateway flashed with FLAT_LAYOUT_RELEASE, compiled to .mpy as the sim
    board runs it (main.py beside nengjian/)."""
    if not (paths.ROOT / ".git").exists():
        pytest.skip("needs the repository's history (git checkout) for the flat-layout release")
    src = tmp_path / "flat-src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(paths.ROOT), "archive", FLAT_LAYOUT_RELEASE, "firmware"],
                             capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(src, filter="data")
    out = tmp_path / "flat-mpy"
    for f in (src / "firmware").rglob("*.py"):
        rel = f.relative_to(src / "firmware")
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel.as_posix() == "main.py":
            dest.write_bytes(f.read_bytes())
            continue
        native = app_bundle.needs_native(f.read_text())
        dest.with_suffix(".mpy").write_bytes(app_bundle.compile_module(f, rel.as_posix(), "x64" if native else None))
    assert (out / "main.py").read_bytes() == (paths.FIRMWARE / "main.py").read_bytes(), "main.py changed"
    assert (out / "nengjian" / "ota.mpy").exists() and not (out / "nengjian" / "core").exists()
    return out


@pytest.mark.needs("console", "reset")
def test_a_bundle_in_the_new_layout_boots_on_a_gateway_of_the_flat_layout(dut, bundles, tmp_path):
    """A gateway in the field: today's main.py and the flat-layout package as its built-in. Its own
    updater installs a bundle of this tree (packages by stage), boots it on trial and confirms it."""
    if dut.kind != "sim":
        pytest.skip("the bundles are built for the sim board")
    dut.gateway.firmware = _flat_layout_builtin(tmp_path)
    builtin, app_dir = start(dut, bundles)
    assert builtin != NEW
    code, out, err = ota_cli("push", str(bundles / "good.njota"), "--port", dut.port, "--json")
    assert code == 0, out + err
    assert _json(out)["installed"]["installed"] == NEW
    assert (app_dir / "a" / "nengjian" / "core" / "log.mpy").exists()
    assert dut.expect(BOOTED, timeout=60).group(1) == NEW
    dut.expect(r"event\s+ota: version %s confirmed healthy" % re.escape(NEW), timeout=120)
    assert ("ota", "trial boot 1 of 2: %s from slot a" % NEW) in ledger_texts(dut)


@pytest.mark.needs("console")
def test_bundle_signed_with_another_key_switches_nothing(dut, bundles):
    builtin, app_dir = start(dut, bundles)
    code, out, err = ota_cli("push", str(bundles / "rogue.njota"), "--port", dut.port)
    assert code == 1, out + err
    assert "signature does not verify with vendor key test-vendor" in err
    state = dut.console().request("ota")[-1]
    assert state["active"] == "" and state["state"] == "confirmed" and state["running"] == builtin
    assert not (app_dir / "a").exists() and not (app_dir / "b").exists()
    assert not (app_dir / "incoming.njota.new").exists()
    assert any(k == "ota" and "update refused: signature does not verify" in t for k, t in ledger_texts(dut))
    # Never reset: the gateway went on running the built-in package.
    assert dut.gateway.boots == 1 and dut.alive()
    assert dut.status()["firmware"] == builtin


@pytest.mark.needs("console", "reset")
def test_version_crashing_at_import_is_rolled_back_after_max_boots(dut, bundles):
    builtin, app_dir = start(dut, bundles, max_boots=2)
    code, out, err = ota_cli("push", str(bundles / "crash.njota"), "--port", dut.port, "--json")
    # Installed, but after the reset the gateway came back with the version before it.
    assert code == 1, out + err
    doc = _json(out)
    assert doc["installed"]["installed"] == CRASH and doc["status"]["firmware"] == builtin
    assert doc["ota"]["active"] == "" and doc["ota"]["state"] == "confirmed"
    assert dut.expect(BOOTED, timeout=30).group(1) == builtin
    # The first boot, two trial boots that crash at import, the rolled-back boot.
    assert dut.gateway.boots == 4
    assert dut.output().count("update on trial failed to start: resetting") == 2
    assert "app of %s breaks at import" % CRASH in dut.output()

    texts = [t for k, t in ledger_texts(dut) if k == "ota"]
    why = "RuntimeError: app of %s breaks at import" % CRASH
    assert "%s failed to start on trial boot 1: %s" % (CRASH, why) in texts
    assert "%s failed to start on trial boot 2: %s" % (CRASH, why) in texts
    assert ("rolled back from %s to built-in: not healthy after 2 boot(s); it failed to start: %s"
            % (CRASH, why)) in texts
    state = dut.console().request("ota")[-1]
    assert state["running"] == builtin and state["failure"] is None


@pytest.mark.needs("console", "reset")
@pytest.mark.parametrize("version,bundle,why", [
    (STRICT, "strict.njota", "TrialStartFailed: config: "),
    (NOMOUNT, "nomount.njota", "TrialStartFailed: data volume will not mount ("),
], ids=["refuses-config", "cannot-mount-data"])
def test_version_that_cannot_start_normally_is_rolled_back_not_left_in_safe_mode(dut, bundles, version, bundle, why):
    """Safe mode waits for a crew to fix the config or the flash; a version on trial that refuses a
    config the site has been running with, or cannot mount the data volume the version before it
    mounted, is what is wrong, so it fails its trial instead of sitting there."""
    builtin, _app_dir = start(dut, bundles, max_boots=2)
    code, out, err = ota_cli("push", str(bundles / bundle), "--port", dut.port, "--json")
    assert code == 1, out + err  # installed, then the gateway came back with the version before it
    assert dut.expect(BOOTED, timeout=60).group(1) == builtin
    assert dut.output().count("update on trial failed to start: resetting") == 2
    texts = [t for k, t in ledger_texts(dut) if k == "ota"]
    failures = [t for t in texts if t.startswith("%s failed to start on trial boot" % version)]
    assert len(failures) == 2 and all(why in t for t in failures), texts
    if version == STRICT:
        assert all("site_survey" in t for t in failures)
    assert any(t.startswith("rolled back from %s to built-in" % version) for t in texts)
    assert dut.console().request("ota")[-1]["running"] == builtin
    assert "SAFE MODE" not in dut.output()


# More heap than the push tests: the fetch downloads and parses beside polling and uploads; at 352k this
# tree leaves it some 40 kB free in blocks of at most 4 kB (bench/bench_heap.py has the figures).
@pytest.mark.sim_heap("416k")
@pytest.mark.needs("console", "reset")
def test_update_fetched_from_a_static_channel_runs_on_trial(dut, bundles, tmp_path):
    """Over the uplink instead of USB: the vendor publishes a signed channel directory
    (`nengjian ota publish`), a plain static web server serves it; the gateway reads the channel,
    verifies it, downloads its board's bundle, checks size and hash, and restarts; the bundle is
    checked at that boot, in a fresh heap, and switched in on trial. A bundle signed by another key
    (published by mistake) is refused there and nothing is switched, and that version is not
    downloaded again until the boot after (tests/firmware/ota/test_fetch.py)."""
    site = tmp_path / "www"

    def publish(bundle, *more):
        code, out, err = ota_cli("publish", "--key", str(bundles / "vendor.pem"), "--bundle", str(bundles / bundle),
                                  "--out", str(site), "--json", *more)
        assert code == 0, out + err
        return _json(out)

    # Upper bounds: where the running heap has no room for the channel's signature check, a restart into
    # the check at boot and the link coming up again come first.
    received = r"event\s+ota: bundle %s received: verified and installed at the restart" % re.escape(NEW)
    # The vendor's mistake: a bundle signed with another key (publish refuses it unless told to trust that key).
    code, out, err = ota_cli("publish", "--key", str(bundles / "vendor.pem"), "--bundle", str(bundles / "rogue.njota"),
                              "--out", str(site))
    assert code == 2 and "gateways would refuse it" in err and "更新通道没有发布" in err
    assert not site.exists()
    doc = publish("rogue.njota", "--trust", str(bundles / "other.pub.json"))
    assert doc["manifest"]["boards"]["sim"]["bundle"] == "bundles/rogue.njota" and doc["manifest"]["key"] == "test-vendor"
    with StaticWeb(site) as server:
        # A plain static server is plain http: allowed only as the config says so, and said at every start.
        builtin, app_dir = start(dut, bundles, url=server.url + "/channel.njch", check_s=60, insecure=True)
        dut.expect(received, timeout=300)
        dut.expect(r"event\s+ota: update refused: signature does not verify", timeout=120)
        assert [p for p in server.paths if p != "/channel.njch"] == ["/bundles/rogue.njota"]
        assert dut.status()["firmware"] == builtin
        starts, fresh = boots_by_kind(dut)
        assert not (app_dir / "a").exists() and starts == 2 + fresh  # the first and the refused check's
        publish("good.njota")  # the vendor fixes it, same version number, a bundle of its own name
        code, out, err = ota_cli("verify", str(site), "--pub", str(bundles / "vendor.pub.json"))
        assert code == 0, out + err
        # The refused version is not fetched again in this boot: a restart clears that.
        dut.reset()
        assert dut.expect(BOOTED, timeout=60).group(1) == builtin
        dut.expect(received, timeout=300)
        assert dut.expect(BOOTED, timeout=60).group(1) == NEW
        state = dut.console().request("ota")[-1]
        assert (state["active"], state["version"], state["state"]) == ("a", NEW, "trial")
        downloads = [p for p in server.paths if p.startswith("/bundles/")]
        assert downloads == ["/bundles/rogue.njota", "/bundles/good.njota"]
        assert set(server.paths) == {"/channel.njch", "/bundles/rogue.njota", "/bundles/good.njota"}
        texts = [t for k, t in ledger_texts(dut) if k == "ota"]
        assert any(t.startswith("installed %s in slot a" % NEW) for t in texts)
        assert "trial boot 1 of 2: %s from slot a" % NEW in texts
        # every start of the application said so: the first, the restart into the refused check, the
        # reset, the restart into NEW, and one more for each restart into the channel's check at boot
        # (where the running heap had no room for it), whose own boot resets before the application
        starts, fresh = boots_by_kind(dut)
        assert fresh == sum(1 for _k, t in ledger_texts(dut, 200) if "checked at the restart" in t)
        assert dut.output().count("security: update server: INSECURE: ") == starts == 4 + fresh


@pytest.mark.needs("console")
def test_a_tampered_channel_on_the_static_server_fetches_and_installs_nothing(dut, bundles, tmp_path):
    site = tmp_path / "www"
    code, out, err = ota_cli("publish", "--key", str(bundles / "vendor.pem"), "--bundle", str(bundles / "good.njota"),
                              "--out", str(site))
    assert code == 0, out + err
    data = bytearray((site / "channel.njch").read_bytes())
    at = data.index(b'"rollout"') if b'"rollout"' in data else data.index(b'"version":"')
    data[at + 1] ^= 0x20  # one bit of the signed manifest
    (site / "channel.njch").write_bytes(bytes(data))
    with StaticWeb(site) as server:
        builtin, app_dir = start(dut, bundles, url=server.url + "/channel.njch", check_s=60, insecure=True)
        # Refused by the check in the running heap, or (no room there) by the check at the restart.
        dut.expect(r"update check failed: ChannelSignatureError: channel (signature does not verify|refused at boot)",
                   timeout=120)
        assert set(server.paths) == {"/channel.njch"}  # no bundle asked for
        starts, fresh = boots_by_kind(dut)
        assert fresh <= 1 and starts == 1 + fresh and dut.status()["firmware"] == builtin
        assert not (app_dir / "a").exists() and not (app_dir / "incoming.njota").exists()
