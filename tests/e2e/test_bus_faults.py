"""A whole gateway on a mixed RS-485 bus: Modbus meters (pymodbus), a DL/T 645-2007 meter and a
CJ/T 188 water meter (host simulators) on one pair at different line settings, plus a pulse input.
Faults on one Modbus meter (exception code, wrong slave id, too slow, truncated replies, noise) are
typed in the log, and the other meters keep being polled throughout. The host side of the bus scan
runs the firmware's scan against the same bus.

Sim rig only: the second drop on the wire, the pulse pin file and the slow/truncating Modbus meter
are simulator features.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
from nengjian_host.install import scan as host_scan
from nengjian_host.sim.meters import Cjt188Meter, Dlt645Meter
from plugin.simkit import ExtraDrop

pytestmark = [pytest.mark.e2e]

POLL = re.compile(r" poll\s+(\S+) at \S+: (.*)$")


def polls(text: str) -> list[tuple[str, dict]]:
    out = []
    for line in text.splitlines():
        m = POLL.search(line)
        if m:
            out.append((m.group(1), dict(kv.split("=") for kv in m.group(2).split())))
    return out


def count(gw, meter: str) -> int:
    return sum(1 for mid, _ in polls(gw.output()) if mid == meter)


def mixed_site(rig) -> dict:
    cfg = rig.site(units=(1, 2), interval_s=1)
    m1, m2 = cfg["meters"]
    m2.update({"timeout_ms": 250, "retries": 0, "fail_limit": 100})
    cfg["meters"] += [
        {"id": "e1", "bus": "bus0", "profile": "dlt645-2007-generic", "address": "123456789012",
         "interval_s": 1, "timeout_ms": 600},
        {"id": "w1", "bus": "bus0", "profile": "cjt188-water", "address": "78330011223344",
         "interval_s": 2, "timeout_ms": 600},
        {"id": "g1", "bus": "bus0", "profile": "pulse-gas", "address": "0", "interval_s": 1,
         "pulse": {"start": "100.00", "debounce_ms": 20, "persist_s": 5}},
    ]
    cfg["items"] += [
        {"code": "02-00-0000-023300-11", "meter": "e1", "point": "energy_kwh", "scope": 2},
        {"code": "02-00-0000-023300-30", "meter": "e1", "point": "voltage_a", "scope": 2},
        {"code": "03-00-0000-031000-11", "meter": "w1", "point": "volume_m3", "scope": 2},
        {"code": "00-00-0000-011500-11", "meter": "g1", "point": "volume_m3", "scope": 1},
    ]
    return cfg


@pytest.fixture
def sim_rig(rig):
    if rig.spec.kind != "sim":
        pytest.skip("needs the sim rig's simulated DL/T 645 / CJ/T 188 meters and pulse pin")
    return rig


def test_mixed_bus_faults_keep_the_other_meters_polled(sim_rig, tmp_path):
    rig = sim_rig
    pin = tmp_path / "pulse0"
    pin.write_bytes(b"")
    drop = ExtraDrop(rig.wire, [
        Dlt645Meter("123456789012", {0x00010000: "3210.50", 0x02010100: "231.4"}, rates={0x00010000: "0.5"}),
        Cjt188Meter(0x10, "78330011223344", {"flow": "17.25"})])
    try:
        # Three protocols plus pulse inputs: on the sim the compiled code sits in the heap (on an
        # ESP32 it is frozen in flash), so this site needs more heap than the Modbus-only default.
        gw = rig.gateway_process(mixed_site(rig))
        gw.heap = "384k"
        gw.extra_env["NJ_PULSE0"] = str(pin)
        gw.start()
        for mid in ("m1", "m2", "e1", "w1", "g1"):
            gw.expect(r" poll\s+%s at " % mid, timeout=60)
        seen = dict(polls(gw.output()))
        assert seen["e1"]["voltage_a"] == "231.4" and seen["w1"]["volume_m3"] == "17.25"
        assert seen["g1"]["volume_m3"] == "100.00"

        # three gas pulses, one of them with contact bounce: one timeline, holds between the levels
        with open(pin, "ab") as f:
            f.write(b"0-1-0101010-1010101-0-1-")
        rig.wait_for(lambda: any(mid == "g1" and v["volume_m3"] == "100.03" for mid, v in polls(gw.output())),
                     timeout=30, what="three pulses counted")

        m2 = rig.meters.meters[2]
        faults = [("exception", 2, r"meter m2 .*modbus exception 2"),
                  ("reply_unit", 9, r"meter m2 .*reply from unit 9, asked 2"),
                  ("delay_s", 0.5, r"meter m2 .*no reply"),
                  ("truncate", 3, r"meter m2 .*incomplete reply")]
        for attr, value, pattern in faults:
            before = {mid: count(gw, mid) for mid in ("m1", "e1")}
            setattr(m2, attr, value)
            gw.expect(pattern, timeout=30)
            gw.expect(pattern, timeout=30)  # and again: the fault persists, the bus goes on
            rig.wait_for(lambda b=before: all(count(gw, mid) >= b[mid] + 3 for mid in b), timeout=30,
                         what="m1 and e1 polled while m2 fails with %s" % attr)
            setattr(m2, attr, type(value)(0))
            gw.expect(r" poll\s+m2 at ", timeout=30)

        # noise bursts on the wire: everything keeps being read
        before = {mid: count(gw, mid) for mid in ("m1", "m2", "e1", "w1")}
        for _ in range(20):
            rig.wire.inject_noise(b"\x00\xff\x01\x03\x68\x16\xaa\x55\xfe")
            time.sleep(0.1)
        rig.wait_for(lambda: all(count(gw, mid) >= before[mid] + 2 for mid in before), timeout=40,
                     what="every meter polled after the noise")
        gw.stop()
        text = gw.output()
        assert "Traceback" not in text and "driver error" not in text
        energies = [v["energy_kwh"] for mid, v in polls(text) if mid == "e1"]
        assert Decimal(energies[0]) >= Decimal("3210.50") and Decimal(energies[-1]) > Decimal(energies[0])
    finally:
        drop.close()


def test_host_scan_finds_the_meters_through_the_sim_gateway(sim_rig):
    rig = sim_rig
    rig.meters.meters[2].exception = 2  # an exception reply still means "a meter is there"
    drop = ExtraDrop(rig.wire, [Dlt645Meter("123456789012", {0x00010000: "1"}, only_meter=True)])
    events = []
    try:
        transport = host_scan.SimTransport({0: rig.wire.gateway_path}, heap="288k")
        res = host_scan.run_on(transport, {"addresses": [1, 4], "bauds": [9600], "parities": ["N"],
                                           "dlt645_bauds": [2400]}, lambda k, p: events.append(k), timeout=120)
    finally:
        drop.close()
    assert not res.errors, res
    got = {(f["protocol"], f["address"]) for f in res.finds if f["ok"]}
    assert got == {("modbus-rtu", 1), ("modbus-rtu", 2), ("dlt645-2007", "123456789012")}
    assert res.done["found"] == 3 and "progress" in events
    meters = host_scan.site_meters(res.finds)
    assert [(m["id"], m["profile"], m["line"]["baud"], m["line"]["parity"]) for m in meters] == [
        ("m1", "CHOOSE-A-PROFILE", 9600, "N"), ("m2", "CHOOSE-A-PROFILE", 9600, "N"),
        ("e9012", "dlt645-2007-generic", 2400, "E")]
    table = host_scan.table(res.finds)
    assert "modbus exception 2 (illegal data address)" in table and "123456789012" in table


@pytest.mark.sim_heap("384k")
@pytest.mark.needs("console")
def test_a_meter_that_refuses_one_point_loses_that_point_only(sim_rig, dut, bus, platform):
    """Modbus m1 lacks its power register (exception 02 to the block read and to that register
    alone), DL/T 645 e1 answers "no such data" for reverse energy, CJ/T 188 w1's reply ends before the
    settlement-day flow: each keeps its other points at the platform and stays online, the refused
    point shows as unsupported in the status and in the events. w2 answers only with abnormal
    replies: it is offline."""
    bus.meters[1].refuse = {2}
    cfg = dut.site()
    cfg["meters"] += [
        {"id": "e1", "bus": "bus0", "profile": "dlt645-2007-generic", "address": "123456789012",
         "interval_s": 1, "timeout_ms": 600, "unsupported_retry_s": 600},
        {"id": "w1", "bus": "bus0", "profile": "cjt188-water", "address": "78330011223344",
         "interval_s": 1, "timeout_ms": 600},
        {"id": "w2", "bus": "bus0", "profile": "cjt188-water", "address": "78330011220000",
         "interval_s": 2, "timeout_ms": 600},
    ]
    kept = {"00-00-0000-023300-11": "m1", "02-00-0000-023300-11": "e1", "03-00-0000-031000-11": "w1"}
    cfg["items"] += [
        {"code": "00-00-0000-023300-30", "meter": "m1", "point": "power_kw", "scope": 1},
        {"code": "02-00-0000-023300-11", "meter": "e1", "point": "energy_kwh", "scope": 2},
        {"code": "02-00-0000-023300-12", "meter": "e1", "point": "energy_reverse_kwh", "scope": 2},
        {"code": "03-00-0000-031000-11", "meter": "w1", "point": "volume_m3", "scope": 2},
        {"code": "03-00-0000-031000-12", "meter": "w1", "point": "settle_volume_m3", "scope": 2},
        {"code": "03-00-0000-031000-13", "meter": "w2", "point": "volume_m3", "scope": 2},
    ]
    drop = ExtraDrop(sim_rig.wire, [
        Dlt645Meter("123456789012", {0x00010000: "3210.50", 0x00020000: "1.25"}, refuse={0x00020000}),
        Cjt188Meter(0x10, "78330011223344", {"flow": "17.25", "settle_flow": "15.00"}, cut_after="flow"),
        Cjt188Meter(0x10, "78330011220000", {"flow": "3.00"}, abnormal=True)])
    try:
        dut.start(cfg)

        def values_of(code):
            return [r for r in platform.records() if r["dataCode"] == code]

        # two periods of values each for the points these meters do answer
        dut.wait_for(lambda: all(len(values_of(c)) >= 2 for c in kept), timeout=90,
                     what="values of m1, e1 and w1 at the platform")
        dut.expect(r"event\s+meter: meter w2 offline", timeout=30)
        st = dut.status()
        meters = {m["id"]: m for m in st["meters"]}
        assert meters["m1"]["unsupported"] == {"power_kw": "modbus exception 2 (illegal data address)"}
        assert meters["e1"]["unsupported"] == {"energy_reverse_kwh": "meter error 0x02 no_such_data"}
        assert meters["w1"]["unsupported"] == {"settle_volume_m3": "reply has no settle_flow"}
        for mid in ("m1", "e1", "w1", "m2"):
            assert not meters[mid]["offline"] and meters[mid]["failures"] == 0, meters[mid]
        assert meters["m1"]["values"]["energy_kwh"] and "power_kw" not in meters["m1"]["values"]
        assert meters["e1"]["values"] == {"energy_kwh": meters["e1"]["values"]["energy_kwh"]}
        assert meters["w1"]["values"] == {"volume_m3": "17.25"}
        assert meters["w2"]["offline"] and meters["w2"]["unsupported"] == {}
        assert not any("offline" in a and "w2" not in a for a in st["alarms"]), st["alarms"]
        points = sorted(e["text"] for e in dut.events(50) if e["kind"] == "point")
        assert [t.split(":")[0] for t in points] == ["meter e1 point energy_reverse_kwh unsupported",
                                                      "meter m1 point power_kw unsupported",
                                                      "meter w1 point settle_volume_m3 unsupported"]
        assert points[0].endswith("asked again every 600 s") and points[1].endswith("every 3600 s")
        # nothing of a refused point reaches the platform
        for code in ("00-00-0000-023300-30", "02-00-0000-023300-12", "03-00-0000-031000-12"):
            assert all(not r["valid"] for r in values_of(code)), values_of(code)
        assert "Traceback" not in dut.output()
    finally:
        dut.stop()  # before the drop goes: the wire still hands it requests while the gateway polls
        drop.close()
