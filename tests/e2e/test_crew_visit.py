"""A crew's visit on the sim, as the ledger must show it: two site photos whose hashes land in the
gateway's ledger, a meter whose calibration falls due in 10 days and a performance check beyond the
meter's class - both alarms in the console's status - then a pull and the ledger report a crew
hands to the DRC, which verifies the photos and lists the calibration, the check and the alarms."""

import datetime as dt
import io
import json
from contextlib import redirect_stdout
from decimal import Decimal

import pytest
from nengjian_host import cli

pytestmark = [pytest.mark.e2e]
CST = dt.timezone(dt.timedelta(hours=8))


def _cli(*argv):
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = cli.main(list(argv))
    return code, buf.getvalue()


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
        code, out = _cli("status", "--port", dut.port, "--json")
        assert code == 0, out
        return json.loads(out)

    def alarm(word):
        return [a for a in status()["alarms"] if word in a]

    dut.wait_for(lambda: alarm("calibration due"), timeout=60, what="the calibration alarm in the status")
    assert ("in 10 day(s)" in alarm("calibration due")[0] and due in alarm("calibration due")[0])

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
    code, out = _cli("visit", "--port", dut.port, "--who", "Li Wei", "--done", "fuse replaced", "--out", str(pulled),
                     *photos, "--check", "m1", "energy_kwh", str(shown), "--json", "meters", "read")
    assert code == 0, out
    ans = json.loads(out)
    assert len(ans["photos"]) == 2 and ans["checks"][0]["beyond"], ans
    assert alarm("beyond class 1"), status()["alarms"]
    kinds = [e["kind"] for e in dut.events(20)]
    assert kinds.count("photo") == 2 and "check" in kinds

    code, out = _cli("pull", "--port", dut.port, "--out", str(pulled), "--json")
    assert code == 0, out
    pull_dir = json.loads(out)["dir"]
    html = tmp_path / "ledger.html"
    code, out = _cli("ledger", pull_dir, "--html", str(html), "--json")
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
