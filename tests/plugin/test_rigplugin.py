"""The rig plugin itself: options, rig files, and tests skipped with a reason where a rig lacks what
they need (never silently). Runs inner pytest sessions (pytester); no hardware needed."""

import json
from pathlib import Path

import pytest

from plugin.rigspec import CAPABILITIES, RigFileError, load_file

RIGS = Path(__file__).resolve().parents[1] / "rigs"

INNER = '''
import pytest

@pytest.mark.needs("power_cut")
def test_cut(rig):
    assert rig.has("power_cut")

@pytest.mark.clock(speed=75, period=900)
def test_fast(rig):
    pass

@pytest.mark.needs("console", "bus_noise")
def test_console_only():
    pass

def test_plain():
    pass
'''


def _inner(pytester, *args):
    pytester.makeconftest('pytest_plugins = ["plugin"]\n')
    pytester.makepyfile(test_inner=INNER)
    return pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider", *args)


def test_a_desk_rig_without_power_switch_skips_with_the_reason(pytester, tmp_path):
    spec = json.loads((RIGS / "desk-esp32s3-4g-minimal.json").read_text())
    f = tmp_path / "rig.json"
    f.write_text(json.dumps(spec))
    res = _inner(pytester, "--rig-file=%s" % f, "-k", "cut or fast or console_only or plain")
    res.assert_outcomes(passed=2, skipped=2)
    out = res.stdout.str()
    assert "rig desk-esp32s3-4g-minimal lacks power_cut (%s)" % CAPABILITIES["power_cut"] in out
    assert "lacks fast_clock" in out
    assert "rig desk-esp32s3-4g-minimal (serial" in out  # the header names the rig and what it offers


def test_the_sim_rig_offers_everything(pytester):
    res = _inner(pytester, "-k", "console_only or plain")
    res.assert_outcomes(passed=2)
    assert "rig sim (sim, from --rig sim)" in res.stdout.str()


def test_bad_rig_options_are_usage_errors(pytester, tmp_path):
    res = _inner(pytester, "--rig", "serial")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "--rig serial needs --port" in res.stderr.str()
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "serial", "dut": {"port": "sn:1"}}')
    res = _inner(pytester, "--rig-file=%s" % bad)
    assert res.ret == pytest.ExitCode.USAGE_ERROR and "bus.port is required" in res.stderr.str()
    # One physical gateway: parallel workers would share its console.
    res = _inner(pytester, "-n", "2", "--rig-file=%s" % (RIGS / "desk-esp32-eth.json"))
    assert res.ret == pytest.ExitCode.USAGE_ERROR and "one physical gateway" in res.stderr.str()


def test_rig_files_in_the_repository_load():
    sim = load_file(RIGS / "sim.json")
    assert sim.caps == set(CAPABILITIES)
    desk = load_file(RIGS / "desk-esp32-eth.json")
    assert {"power_cut", "reset", "console", "bus_noise"} <= desk.caps
    assert "fast_clock" not in desk.caps and "link_loss" not in desk.caps
    with pytest.raises(RigFileError, match="unknown capability"):
        desk.missing(["teleport"])
    # The serial backend on a sim gateway: no ports or URL to give, what a serial rig derives from its fields.
    usb = load_file(RIGS / "sim-usb.json")
    assert usb.kind == "serial" and usb.sim == {"heap": "320k"} and {"console", "reset", "mpremote"} <= usb.caps
    assert not {"fast_clock", "flash_image", "power_cut", "link_loss"} & usb.caps


def test_a_sim_section_belongs_to_a_serial_rig(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "sim", "sim": {"heap": "288k"}}')
    with pytest.raises(RigFileError, match="on a serial rig only"):
        load_file(bad)
