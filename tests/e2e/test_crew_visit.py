"""A crew's visit on the sim, as the ledger must show it: two site photos whose hashes land in the
gateway's ledger, a meter whose calibration falls due in 10 days and a performance check beyond the
meter's class - both alarms in the console's status - then a pull and the ledger report a crew
hands to the DRC, which verifies the photos and lists the calibration, the check and the alarms."""

import datetime as dt
import hashlib
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from nengjian_host.common import private
from simrig import nengjian

pytestmark = [pytest.mark.e2e]
CST = dt.timezone(dt.timedelta(hours=8))


def _status(dut):
    code, out = nengjian("status", "--port", dut.port, "--json")
    assert code == 0, out
    return json.loads(out)


def _alarms(dut, word):
    return [a for a in _status(dut)["alarms"] if word in a]


def _png(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.needs("console")
def test_visit_photos_calibration_and_check(dut, rig, tmp_path):
    due = (dt.datetime.fromtimestamp(rig.now(), CST) + dt.timedelta(days=10)).date().isoformat()
    site = dut.site()
    site["meters"][0].update({"class": "1", "calibration": {"certificate": "DG-2020-0042", "date": "2020-12-01",
                                                            "due": due}})
    dut.start(site)
    dut.expect(r"poll\s+m1 at", timeout=30)

    def status():
        return _status(dut)

    def alarm(word):
        return _alarms(dut, word)

    dut.wait_for(lambda: alarm("calibration due"), timeout=60, what="the calibration alarm in the status")
    text = alarm("calibration due")[0]
    # Ten days from the day the test began, or nine if the site's midnight (16:00 UTC) fell since.
    today = dt.datetime.fromtimestamp(rig.now(), CST).date()
    days = {10, (dt.date.fromisoformat(due) - today).days}
    assert due in text and any("in %d day(s)" % n in text for n in days), text

    def reading():
        m1 = [m for m in status()["meters"] if m["id"] == "m1"][0]
        return m1["values"].get("energy_kwh")

    dut.wait_for(reading, timeout=30, what="a reading of m1")
    shown = Decimal(reading()) * 2 + 100  # far beyond class 1
    photos = []
    for name, color in (("cabinet.png", "red"), ("meter-m1.png", "blue")):
        (tmp_path / name).write_bytes(_png(color))
        photos += ["--photo", str(tmp_path / name)]
    pulled = tmp_path / "pulled"
    code, out = nengjian("visit", "--port", dut.port, "--who", "Li Wei", "--done", "fuse replaced", "--out", str(pulled),
                     *photos, "--check", "m1", "energy_kwh", str(shown), "--json", "meters", "read")
    assert code == 0, out
    ans = json.loads(out)
    assert len(ans["photos"]) == 2 and ans["checks"][0]["beyond"], ans
    assert alarm("beyond class 1"), status()["alarms"]
    kinds = [e["kind"] for e in dut.events(20)]
    assert kinds.count("photo") == 2 and "check" in kinds

    code, out = nengjian("pull", "--port", dut.port, "--out", str(pulled), "--json")
    assert code == 0, out
    pull_dir = json.loads(out)["dir"]
    html = tmp_path / "ledger.html"
    code, out = nengjian("ledger", pull_dir, "--html", str(html), "--json")
    assert code == 0, out
    led = json.loads(out)
    assert [p["status"].split(" ")[0] for p in led["photos"]] == ["verified", "verified"]
    assert led["visits"][-1]["visit_id"] == ans["visit"] and "fuse replaced" in led["visits"][-1]["text"]
    cal = [c for c in led["calibrations"] if c["meter"] == "m1"][0]
    assert cal["due"] == due and cal["flag"] and cal["status"].startswith("due within 30 days")
    assert led["checks"][-1]["flag"] and led["checks"][-1]["displayed"] == str(shown)
    assert any(a["text"].startswith("CALIBRATION DUE m1") for a in led["metrology_alarms"])
    assert any(a["text"].startswith("CHECK m1 energy_kwh beyond class 1") for a in led["metrology_alarms"])
    page = html.read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") == 2 and "DG-2020-0042" in page and "超出准确度等级" in page

    # The meters' and destinations' state as the console status gave it, saved by the pull (no secret in
    # it) and listed in the report.
    manifest = json.loads((Path(pull_dir) / "manifest.json").read_text())
    blob = (Path(pull_dir) / manifest["status"]["file"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == manifest["status"]["sha256"]
    saved = json.loads(blob)
    assert {m["id"] for m in saved["meters"]} == {m["id"] for m in site["meters"]}
    assert [d["name"] for d in saved["destinations"]] == [d["name"] for d in site["destinations"]]
    assert not [k for k in private.SECRET_FIELDS if ('"%s":' % k) in blob.decode()]
    assert [u["name"] for u in led["at_pull"]["units"]][:1] == ["m1"] and "拉取时的仪表与上传平台" in page
    zh = tmp_path / "ledger-zh.html"
    code, out = nengjian("--lang", "zh", "ledger", pull_dir, "--html", str(zh), "--no-pdf")
    assert code == 0, out
    page = zh.read_text(encoding="utf-8")
    table = page.split("<h2>拉取时的仪表与上传平台</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<td>仪表</td><td>m1</td><td>正常</td>" in table and "<td>上传平台</td><td>city</td>" in table
    events = page.split("<h2>全部事件</h2>", 1)[1].split("<h2>", 1)[0]
    cells = [re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<td>(.*?)</td>", events, re.S)]
    english = [c for c in cells if re.search(r"[A-Za-z]{3,}", c) and not re.search(r"[\u4e00-\u9fff]", c)]
    assert english == [], english  # every event the sim gateway wrote reads in Chinese


@pytest.mark.needs("console")
def test_a_new_calibration_at_a_visit_clears_the_expired_alarm(dut, rig, tmp_path):
    """m1's calibration expired 5 days ago: an alarm. The crew records the new certificate at a visit;
    the gateway writes it into its ledger and its site config, the alarm clears at once, and the
    ledger report of the next pull lists the new record as valid."""
    today = dt.datetime.fromtimestamp(rig.now(), CST).date()
    expired, done, due = (today - dt.timedelta(days=5)).isoformat(), (today - dt.timedelta(days=1)).isoformat(), \
        (today + dt.timedelta(days=6 * 365)).isoformat()
    site = dut.site()
    site["meters"][0].update({"class": "1", "calibration": {"certificate": "DG-2020-0042", "date": "2020-12-01",
                                                            "due": expired}})
    dut.start(site)
    dut.wait_for(lambda: _alarms(dut, "calibration expired"), timeout=60, what="the expired calibration alarm")
    assert expired in _alarms(dut, "calibration expired")[0]

    from nengjian_host.common.device import DeviceError

    before = dut.read_file("config/site.json")
    con = dut.console()
    for req, why in (({"meter": "m9", "certificate": "X", "date": done, "due": due}, "no meter 'm9'"),
                     ({"meter": "m1", "certificate": "X", "date": due, "due": done}, "is not after"),
                     ({"meter": "m1", "certificate": "", "date": done, "due": due}, "certificate"),
                     ({"meter": "m1", "date": done}, "calibrate wants JSON")):
        with pytest.raises(DeviceError, match=why):  # the console refuses what skipped the laptop's checks
            con.request("calibrate " + json.dumps(req))
    assert dut.read_file("config/site.json") == before and _alarms(dut, "calibration expired")
    code, out = nengjian("visit", "--port", dut.port, "--who", "Li Wei", "--calibration", "m9", "DG-2026-0107", done,
                     due, "--json", "meter", "m1", "recalibrated")
    assert code == 2 and "no meter m9" in json.loads(out)["error"], out  # refused before anything is sent
    early = tmp_path / "early"  # the crew pulled first, as the guide says: the visit brings that copy up to date
    code, out = nengjian("pull", "--port", dut.port, "--out", str(early), "--json")
    assert code == 0, out
    early_dir = Path(json.loads(out)["dir"])
    code, out = nengjian("visit", "--port", dut.port, "--who", "Li Wei", "--calibration", "m1", "DG-2026-0107", done,
                     due, "--out", str(early), "--json", "meter", "m1", "recalibrated")
    assert code == 0, out
    ans = json.loads(out)
    assert ans["calibrations"][0]["calibration"] == {"certificate": "DG-2026-0107", "date": done, "due": due}
    assert ans["pull"] == str(early_dir), ans
    early_site = json.loads((early_dir / "config" / "site.json").read_text())
    assert early_site["meters"][0]["calibration"] == {"certificate": "DG-2026-0107", "date": done, "due": due}
    assert ans["calibrations"][0]["alarm"] is None, ans
    assert not [a for a in _status(dut)["alarms"] if "calibration" in a], _status(dut)["alarms"]
    texts = [(e["kind"], e["text"]) for e in dut.events(20)]
    assert ("calibration", "meter m1 calibrated %s, due %s (certificate DG-2026-0107) [visit %s] by Li Wei" % (
        done, due, ans["visit"])) in texts, texts
    assert any(k == "alarm" and t.startswith("CLEARED CALIBRATION m1") for k, t in texts), texts

    pulled = tmp_path / "pulled"
    code, out = nengjian("pull", "--port", dut.port, "--out", str(pulled), "--json")
    assert code == 0, out
    pull_dir = json.loads(out)["dir"]
    code, out = nengjian("check-config", str(Path(pull_dir) / "config" / "site.json"))
    assert code == 0, out  # the config the gateway rewrote is one it will boot with
    code, out = nengjian("ledger", pull_dir, "--html", str(tmp_path / "ledger.html"), "--no-pdf", "--json")
    assert code == 0, out
    led = json.loads(out)
    cal = [c for c in led["calibrations"] if c["meter"] == "m1"][0]
    assert (cal["certificate"], cal["date"], cal["due"], cal["flag"]) == ("DG-2026-0107", done, due, False), cal
    rec = led["calibration_records"][-1]
    assert (rec["meter"], rec["certificate"], rec["due"], rec["visit_id"]) == ("m1", "DG-2026-0107", due, ans["visit"])
    assert [a["text"].split(":")[0] for a in led["metrology_alarms"]][-2:] == ["CALIBRATION EXPIRED m1",
                                                                                "CLEARED CALIBRATION m1"]
    assert "DG-2026-0107" in (tmp_path / "ledger.html").read_text(encoding="utf-8")
