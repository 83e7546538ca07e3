"""The platform's score kept on the gateway, end to end on the rig, across a midnight: the console's
quality figures match the platform's own records, a destination below 90 % for an item is an alarm
naming the item and the day, a day value waits for the platform's upload slot (uploadTime from the
register answer) while real-time values keep flowing, and the heartbeat reaches a platform that takes
it, carrying the score (the heartbeat body is ours: nengjian.uplink.centerinfo; SPEC 3.1 names only
the URL)."""

import datetime as dt
import json
import re

import pytest
from simrig import nengjian

pytestmark = [pytest.mark.e2e]

M1_CODE = "00-00-0000-023300-11"
M2_CODE = "01-00-0000-023300-11"
COAL = "00-00-0000-010100-11"
SLOT = "00:20:00"
CST = dt.timezone(dt.timedelta(hours=8))


def _platform_counts(platform):
    """(code, CST day) -> real-time values the platform holds; and (code, CST day) -> day values."""
    rt, day = {}, {}
    for r in platform.records():
        key = (r["dataCode"], r["statDate"][:10])
        box = rt if r["statType"] == 0 else day if r["statType"] == 1 else None
        if box is not None:
            box[key] = box.get(key, 0) + 1
    return rt, day


def _quality(st):
    return [d for d in st["destinations"] if d["name"] == "city"][0]["quality"]


@pytest.mark.slow
@pytest.mark.clock(speed=75, period=900, lead=30, start_cst="23:00")
@pytest.mark.needs("console", "meter_silence", "fast_clock")
def test_score_alarm_upload_slot_and_heartbeat_at_the_platform(rig, dut, bus, platform, tmp_path, monkeypatch):
    platform.service.upload_time = SLOT
    cfg = dut.site()
    cfg["destinations"][0].update(upload_slot=True, notices=["heartbeat"])
    cfg["health"] = {"heartbeat_s": 60}
    cfg["quality"] = {"settle_s": 300}
    cfg["meters"][1].update(timeout_ms=150, retries=0, backoff_s=2)
    bus.silence(2)  # m2 gives nothing all along: its item is below 90 % every day
    dut.start(cfg)
    dut.expect(r"registered, deviceId \w+, upload slot %s" % SLOT, timeout=60)
    day_text = dt.datetime.fromtimestamp(dut.status()["time"], CST).strftime("%Y-%m-%d")
    code, out = nengjian("manual", "--port", dut.port, "--code", COAL, "--period", "day", "--start", day_text,
                     "--value", "12.50", "--who", "Li Wei")
    assert code == 0, out

    # The day value waits for the slot (by the platform's own clock); real-time values flowed meanwhile.
    rig.wait_for(lambda: any(r["dataCode"] == COAL for r in platform.records()), timeout=200,
                 what="the day value at the upload slot")
    row = [r for r in platform.records() if r["dataCode"] == COAL][0]
    slot_time = "%s %s" % (_next_day(day_text), SLOT)
    assert row["statType"] == 1 and row["firstReceivedAt"] >= slot_time, (row, slot_time)
    early = [r for r in platform.records() if r["statType"] == 0 and r["firstReceivedAt"] < slot_time]
    assert len(early) >= 2, "real-time values kept flowing before the slot"

    # The day that closed at midnight is judged: m2's item is named with the day, m1's is not.
    want = r"event\s+alarm: QUALITY city %s day %s: completeness 0\.0 %% \(0 of \d+ values due\), below 90 %%" % (
        M2_CODE, day_text)
    dut.expect(want, timeout=150)
    st = dut.status()
    assert any(a.startswith("QUALITY city %s day %s" % (M2_CODE, day_text)) for a in st["alarms"]), st["alarms"]
    assert not any(M1_CODE in a for a in st["alarms"] if a.startswith("QUALITY")), st["alarms"]

    # The score in the console against the platform's own records, per item and day.
    def agrees():
        q = _quality(dut.status())
        rt, _day = _platform_counts(platform)
        for d in q["days"]:
            for code, (accepted, _due, _apart) in d["items"].items():
                have = rt.get((code, d["period"]), 0)
                day_value = 1 if _day.get((code, d["period"])) else 0
                if accepted != have + day_value:
                    return False
        return True

    rig.wait_for(agrees, timeout=60, what="the console's score matching the platform's records")
    q = _quality(dut.status())
    closed = [d for d in q["days"] if d["period"] == day_text][0]
    m1_accepted, m1_due, _ = closed["items"][M1_CODE]
    assert m1_accepted >= 3 and m1_accepted == m1_due, closed
    assert closed["items"][M2_CODE][:2] == [0, m1_due]
    assert q["months"] and q["months"][0]["due"] >= 2 * m1_due

    # The same score in `nengjian status` (its quality table: the closed day, m2's item below 90 %) and the
    # alarm in the ledger report of a pull.
    monkeypatch.setenv("COLUMNS", "220")  # one table row per line
    code, out = nengjian("status", "--port", dut.port)
    assert code == 0, out
    row = [line for line in out.split("data quality", 1)[-1].splitlines() if line.startswith("│ city")
           and " %s " % day_text in line]
    assert row and M2_CODE in row[0] and "%d/" % closed["accepted"] in row[0], out
    assert "invalid" in out.split("data quality", 1)[-1]  # the values sent invalid since boot, a column
    code, out = nengjian("pull", "--port", dut.port, "--out", str(tmp_path / "pulled"), "--json")
    assert code == 0, out
    code, out = nengjian("ledger", json.loads(out)["dir"], "--html", str(tmp_path / "ledger.html"), "--no-pdf",
                         "--json")
    assert code == 0, out
    led = json.loads(out)
    assert ("city", M2_CODE, "day", day_text) in [(a["destination"], a["code"], a["what"], a["when"])
                                                  for a in led["quality"]], led["quality"]
    # The gateway's own figures, saved by the pull from the console, beside what the pulled records hold.
    city = [d for d in led["gateway_score"]["destinations"] if d["destination"] == "city"][0]
    assert city["invalid"] == _quality(dut.status())["invalid"]
    items = {(x["what"], x["period"], x["code"]): x for x in city["items"]}
    m1, m2 = items[("day", day_text, M1_CODE)], items[("day", day_text, M2_CODE)]
    assert m1["gateway"] == "%d/%d" % (m1_accepted, m1_due) and m1["stored"] == m1_accepted, m1
    assert m2["accepted"] == m2["stored"] == 0 and m2["flag"], m2
    page = (tmp_path / "ledger.html").read_text()
    assert "网关自身的数据质量评分" in page and "%d/%d" % (m1_accepted, m1_due) in page

    # A heartbeat accepted by a platform that takes it, carrying the month's score.
    rig.wait_for(lambda: [b for b in platform.center_infos() if b.get("infoType") == "heartbeat"], timeout=150,
                 what="a heartbeat at the platform")
    beat = [b for b in platform.center_infos() if b.get("infoType") == "heartbeat"][-1]
    assert beat["deviceId"] == platform.devices()[0]["deviceId"]
    assert "uptime_s" in beat["info"] and "complete.city" in beat["info"], beat
    assert 0 <= beat["info"]["complete.city"] <= 100
    assert re.search(r"heartbeat notice accepted", dut.output())


def _next_day(day_text):
    return (dt.date.fromisoformat(day_text) + dt.timedelta(days=1)).isoformat()
