"""Meter to platform on the real firmware: readings from pymodbus meters arrive at the reference
platform as interval values with the right numbers and times; faults on the way lose nothing."""

from decimal import Decimal

import pytest
from simrig import PERIOD, cst_to_utc, readings_from_console, values_from_console

# Written against the sim rig (SimRig API, clock x12): skipped with the reason on a desk rig.
pytestmark = [pytest.mark.e2e, pytest.mark.needs("fast_clock", "flash_image")]

CODE_TO_METER = {"00-00-0000-023300-11": "m1", "01-00-0000-023300-11": "m2"}


def _enough(rig, per_item=3):
    rows = rig.platform.records()
    return all(sum(1 for r in rows if r["dataCode"] == c) >= per_item for c in CODE_TO_METER)


def test_values_arrive_with_right_numbers_and_times(rig):
    gw = rig.gateway_process().start()
    rig.wait_for(lambda: _enough(rig), timeout=90, what="3 values per item at the platform")
    gw.stop()
    readings = readings_from_console(gw.output())
    rows = rig.platform.records()
    assert rows, "platform holds nothing"
    for row in rows:
        meter = CODE_TO_METER[row["dataCode"]]
        start = cst_to_utc(row["statDate"])
        assert start % PERIOD == 0
        series = readings[meter]
        first = next((ts, v) for ts, v in series if start <= ts < start + PERIOD)
        nxt = next((ts, v) for ts, v in series if start + PERIOD <= ts < start + 2 * PERIOD)
        # The value is the difference of the first readings of consecutive periods, exactly.
        assert Decimal(str(row["dataValue"])) == Decimal(nxt[1]) - Decimal(first[1]), row
        assert first[0] - start <= PERIOD // 5, "baseline not taken at the period start"
        assert row["statType"] == 0 and row["inputType"] == 4 and row["valid"] is True
        assert row["scope"] == (1 if meter == "m1" else 2)
        assert cst_to_utc(row["uploadDate"]) >= start + PERIOD
        assert row["receivedCount"] == 1
        # Physically right: 600 kW and 120 kW for a minute are 10 kWh and 2 kWh (poll timing jitter aside).
        expected = {"m1": 10.0, "m2": 2.0}[meter]
        assert abs(row["dataValue"] - expected) < 0.35 * expected, row


def test_platform_down_then_back_loses_nothing(rig):
    rig.platform.set_fault("down")
    gw = rig.gateway_process().start()
    rig.wait_for(lambda: len(values_from_console(gw.output())) >= 4, timeout=90, what="4 values produced")
    assert rig.platform.records() == []
    gw.expect(r"delivery failing", timeout=30)
    rig.platform.set_fault("ok")
    gw.expect(r"delivering again", timeout=120)
    produced = values_from_console(gw.output())
    rig.wait_for(lambda: {(r["dataCode"], r["statDate"]) for r in rig.platform.records()}
                 >= {(c, d) for c, d, _ in produced}, timeout=60, what="every produced value at the platform")
    got = {(r["dataCode"], r["statDate"]): r for r in rig.platform.records()}
    for code, date, value in produced:
        assert Decimal(str(got[(code, date)]["dataValue"])) == Decimal(value)


def test_silent_and_corrupt_meter_do_not_stop_the_other(rig):
    rig.meters.meters[2].silent = True
    cfg = rig.site()
    cfg["meters"][1]["backoff_s"] = 3
    gw = rig.gateway_process(cfg).start()
    gw.expect(r"meter m2 .*no reply", timeout=30)
    gw.expect(r"event\s+meter: meter m2 offline after 3 failed polls", timeout=30)
    rig.wait_for(lambda: any(r["dataCode"] == "00-00-0000-023300-11" for r in rig.platform.records()),
                 timeout=90, what="m1 values while m2 is silent")
    rig.meters.meters[2].silent = False
    rig.meters.meters[2].bad_crc = True
    gw.expect(r"meter m2 .*CRC error", timeout=60)
    rig.meters.meters[2].bad_crc = False
    gw.expect(r"meter m2 answers again", timeout=60)
    gw.stop()
    assert "Traceback" not in gw.output()


def test_bad_config_starts_safe_mode_then_recovers(rig):
    cfg = rig.site()
    cfg["meters"][0]["address"] = 300
    gw = rig.gateway_process(cfg).start()
    gw.expect(r"SAFE MODE: config: meters\[0\]\.address", timeout=20)
    assert gw.alive()
    gw.write_config("{ not json")
    gw.expect(r"SAFE MODE: config: .*not valid JSON", timeout=90)
    gw.write_config(rig.site())
    gw.expect(r"config is valid now", timeout=30)
    gw.expect(r"poll\s+m1 at", timeout=30)
    assert gw.alive()
