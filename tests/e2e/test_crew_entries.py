"""A crew's entries through the console of a running gateway: an inspection visit lands in the
gateway's ledger, a manual coal delivery is stored and reaches the platform as input type 5."""


import pytest
from simrig import nengjian

pytestmark = [pytest.mark.e2e]


@pytest.mark.needs("console")
def test_visit_and_manual_entry(dut, platform):
    dut.start(dut.site())
    dut.expect(r"poll\s+m1 at", timeout=30)

    code, out = nengjian("visit", "--port", dut.port, "--who", "Li Wei", "meters", "read,", "cabinet", "cleaned")
    assert code == 0, out
    assert any(e["kind"] == "visit" and "Li Wei: meters read, cabinet cleaned" in e["text"] for e in dut.events(10))

    code, out = nengjian("manual", "--port", dut.port, "--code", "00-00-0000-010100-11", "--period", "day",
                     "--start", "2026-11-20", "--value", "35.20", "--who", "Li Wei")
    assert code == 0, out

    def arrived():
        return [r for r in platform.records() if r["dataCode"] == "00-00-0000-010100-11"]

    dut.wait_for(lambda: arrived(), timeout=60, what="the manual entry at the platform")
    row = arrived()[0]
    assert row["inputType"] == 5 and row["statType"] == 1 and row["statDate"] == "2026-11-20 00:00:00"
    assert abs(row["dataValue"] - 35.20) < 1e-9

    # Refused entries never reach the gateway: a real-time manual value, a misaligned month.
    code, _ = nengjian("manual", "--port", dut.port, "--code", "00-00-0000-010100-11", "--period", "month",
                   "--start", "2026-11-20", "--value", "1")
    assert code == 2
    code, _ = nengjian("visit", "--port", dut.port, "--who", "x", " ")
    assert code == 2
