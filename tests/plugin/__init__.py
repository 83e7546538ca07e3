"""Hardware-in-the-loop pytest plugin: one test suite for the sim rig (CI) and a desk rig.

Fixtures (modelled on pytest-embedded's DUT: expect-style console access, pluggable backends):

    rig       what the rig is and can do: name, kind, caps, has(cap), speed, period, now(), wait_for()
    dut       the gateway: start(cfg), expect(pattern), output(), status(), events(n), read_file(path),
              put_config(cfg), reset(), power_cut(off_s), power_off()/power_on(), set_link(up), repl(), stop()
    bus       the RS-485 side where simulated meters attach: meters[unit], silence(unit), crc_errors(unit),
              noise(bytes), corrupt_replies(n), cut(on)
    platform  the reference platform (RefPlatform): set_fault(mode, ...), records(), stats()

Options:
    --rig sim                 (default) the firmware on the MicroPython unix port, ptys, fast clock
    --rig serial --port P --bus-port B [--platform-url URL]
    --rig-file tests/rigs/NAME.json   a described rig (docs/RIG.md); tests/rigs/sim-usb.json is the serial
                              backend on a sim gateway's USB pty (no hardware)
    --sim-heap 320k           MicroPython heap of the sim gateway
    --rig-tests-only          only the tests that use the rig fixtures (the serial backend in CI)

Markers:
    @pytest.mark.needs("power_cut", "bus_noise")   skipped, with the reason, where the rig lacks one
    @pytest.mark.clock(speed=75, period=900, lead=30, start_cst="23:00")
                                                   the sim clock: speed, period, seconds before the first
                                                   boundary, where the day starts (speed > 1 needs
                                                   "fast_clock")
    @pytest.mark.meters(units=(1, 2, 3), power_kw=(...))   the simulated meters on the bus
    @pytest.mark.sim_heap("512k")                  the sim gateway's heap (default --sim-heap)
"""

from __future__ import annotations

import os

import pytest

from plugin.rigspec import CAPABILITIES, RigFileError, from_options, load_file

DEFAULT_HEAP = "320k"
RIG_FIXTURES = ("rig", "dut", "bus", "platform")


def pytest_addoption(parser):
    g = parser.getgroup("nengjian rig", "hardware-in-the-loop rig (docs/RIG.md)")
    g.addoption("--rig", default="sim", choices=["sim", "serial"], help="rig to run on (default: sim)")
    g.addoption("--port", default=None, help="serial rig: the gateway's USB console (sn:..., mac:..., or a path)")
    g.addoption("--bus-port", default=None, help="serial rig: the USB-RS485 adapter on the gateway's bus")
    g.addoption("--platform-url", default=None, help="serial rig: the reference platform's URL as the gateway "
                                                    "reaches this host, e.g. http://192.168.7.1:8765")
    g.addoption("--rig-file", default=None, help="a rig description (tests/rigs/NAME.json)")
    g.addoption("--sim-heap", default=os.environ.get("NJ_SIM_HEAP", DEFAULT_HEAP),
                help="MicroPython heap of the sim gateway (default %s)" % DEFAULT_HEAP)
    g.addoption("--rig-echo", action="store_true", help="print the gateway's console lines as they come")
    g.addoption("--rig-tests-only", action="store_true",
                help="deselect the tests that use none of the rig fixtures (rig, dut, bus, platform): the ones "
                     "that build their own sim gateways run on the sim rig whatever --rig says")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*capabilities): the rig must offer these (%s); skipped with the "
                                       "reason otherwise" % ", ".join(sorted(CAPABILITIES)))
    config.addinivalue_line("markers", "clock(speed=12, period=60): the sim rig's clock")
    config.addinivalue_line("markers", "meters(units=(1, 2), power_kw=(600.0, 120.0)): simulated meters on the bus")
    config.addinivalue_line("markers", "sim_heap(size): the sim gateway's MicroPython heap for this test")
    try:
        if config.getoption("rig_file"):
            spec = load_file(config.getoption("rig_file"))
        else:
            spec = from_options(config.getoption("rig"), config.getoption("port"), config.getoption("bus_port"),
                                config.getoption("platform_url"))
    except RigFileError as e:
        raise pytest.UsageError(str(e)) from None
    # One gateway on one USB console: parallel workers would fight over the port (make test runs the
    # sim rig with -n; each sim worker starts its own gateways, as does a serial rig on a sim board).
    workers = getattr(config.option, "numprocesses", None)
    if spec.kind != "sim" and spec.sim is None and workers:
        raise pytest.UsageError("the %s rig is one physical gateway: run it without -n (PYTEST_WORKERS=0 with make, "
                                "or -n 0), not with %s parallel workers" % (spec.kind, workers))
    config._nj_rig = spec


def pytest_collection_modifyitems(config, items):
    if not config.getoption("rig_tests_only"):
        return
    keep, drop = [], []
    for item in items:
        uses = any(name in getattr(item, "fixturenames", ()) for name in RIG_FIXTURES)
        (keep if uses else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    spec = getattr(config, "_nj_rig", None)
    return [spec.describe()] if spec else []


def _needs(item) -> list[str]:
    needs: list[str] = []
    for mark in item.iter_markers("needs"):
        needs.extend(mark.args)
    clock = item.get_closest_marker("clock")
    if clock and clock.kwargs.get("speed", 12) != 1:
        needs.append("fast_clock")
    return list(dict.fromkeys(needs))  # each named once in a skip reason


def pytest_runtest_setup(item):
    spec = item.config._nj_rig
    if not any(name in item.fixturenames for name in RIG_FIXTURES) and \
            not item.get_closest_marker("needs"):
        return
    try:
        missing = spec.missing(_needs(item))
    except RigFileError as e:
        raise pytest.UsageError(str(e)) from None
    if missing:
        pytest.skip("rig %s lacks %s" % (spec.name, "; ".join("%s (%s)" % (m, CAPABILITIES[m]) for m in missing)))


@pytest.fixture
def rig(request, tmp_path):
    """The rig this test runs on; its bus, platform and dut start when a test first uses them."""
    spec = request.config._nj_rig
    echo = print if request.config.getoption("rig_echo") else None
    meters = request.node.get_closest_marker("meters")
    mkw = dict(meters.kwargs) if meters else {}
    if spec.kind == "sim":
        from plugin.simkit import SimClock, SimRigRuntime

        clock = request.node.get_closest_marker("clock")
        ckw = dict(clock.kwargs) if clock else {}
        start = _cst_today(ckw["start_cst"]) if ckw.get("start_cst") else None
        heap = request.node.get_closest_marker("sim_heap")
        r = SimRigRuntime(spec, tmp_path, SimClock(speed=ckw.get("speed", 12), period=ckw.get("period", 60),
                                                   lead=ckw.get("lead", 3), start=start),
                          heap.args[0] if heap else request.config.getoption("sim_heap"), echo=echo, **mkw)
    else:
        from plugin.serialkit import SerialRigRuntime

        r = SerialRigRuntime(spec, tmp_path, echo=echo, **mkw)
    yield r
    r.close()


def _cst_today(hhmm: str) -> float:
    """Today's HH:MM in China Standard Time, as UTC seconds (the sim clock may start there)."""
    import datetime as dt

    cst = dt.timezone(dt.timedelta(hours=8))
    h, m = (int(x) for x in hhmm.split(":"))
    return dt.datetime.now(cst).replace(hour=h, minute=m, second=0, microsecond=0).timestamp()


@pytest.fixture
def bus(rig):
    return rig.bus


@pytest.fixture
def platform(rig):
    return rig.platform


@pytest.fixture
def dut(rig, bus, platform):
    return rig.dut
