"""The info channel end to end on the rig: a destination that opts in gets the gateway's data-gap
alarms (raised, then cleared) at centerInfoURL, and the platform's standard-coal coefficient from
centerInfoDownloadURL wins over the default and is kept in the ledger. The body format is ours
(SPEC 3.1 names the URLs only): see firmware/nengjian/uplink/centerinfo.py."""

import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sim_heap("512k")]

M2_CODE = "01-00-0000-023300-11"


def _seen(dut):
    return lambda pattern: re.search(pattern, dut.output()) is not None


def _alarms(platform):
    return [b["info"] for b in platform.center_infos() if b.get("infoType") == "alarm"]


@pytest.mark.clock(speed=75, period=900, lead=30)
@pytest.mark.needs("console", "meter_silence", "fast_clock")
def test_gap_alarm_and_platform_coefficient_through_the_info_channel(rig, dut, bus, platform):
    platform.service.coefficients = {"3300": "0.1230"}
    cfg = dut.site()
    cfg["destinations"][0].update(notices=["alarm"], coefficients=True)
    cfg["alarms"] = {"warn_s": 600, "alarm_s": 1200}  # 10 and 20 simulated minutes: 8 and 16 s here
    cfg["tce"] = {"decimals": 3}
    cfg["meters"][1].update(timeout_ms=150, retries=0, backoff_s=2)
    bus.silence(2)
    dut.start(cfg)
    seen = _seen(dut)
    rig.wait_for(lambda: seen(r"event\s+tce: platform coefficient for energy 3300: 0\.1230"), timeout=60,
                 what="the platform's coefficient in the ledger")
    rig.wait_for(lambda: seen(r"event\s+alarm: RAISED alarm %s" % M2_CODE), timeout=90, what="the alarm raised")
    rig.wait_for(lambda: any(a["dataCode"] == M2_CODE and a["state"] == "raised" for a in _alarms(platform)),
                 timeout=60, what="the alarm at the platform")
    raised = [a for a in _alarms(platform) if a["state"] == "raised"][0]
    assert raised["level"] == "alarm" and raised["gapHours"] >= 0 and len(raised["lastValid"]) == 19
    body = platform.center_infos()[0]
    assert body["deviceId"] == platform.devices()[0]["deviceId"] and body["enterpriseCode"] == cfg["enterprise"]["code"]
    bus.silence(2, False)
    dut.expect(r"event\s+alarm: CLEARED alarm %s" % M2_CODE, timeout=120)
    rig.wait_for(lambda: any(a["dataCode"] == M2_CODE and a["state"] == "cleared" for a in _alarms(platform)),
                 timeout=60, what="the cleared alarm at the platform")
    # The healthy item never raised anything, and the data kept flowing meanwhile.
    assert all(a["dataCode"] == M2_CODE for a in _alarms(platform))
    assert any(r["dataCode"] == "00-00-0000-023300-11" for r in platform.records())
