"""`nengjian visit` with photos and performance checks, and the ledger report that proves them: each
photo's SHA-256 is in the gateway's ledger with its visit, the report checks the files kept with the
pulled data against it (verified, altered, missing), lists calibrations with their due dates and
checks with their differences, and embeds a CJK font so its Chinese renders anywhere."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import warnings
from contextlib import redirect_stdout

import pytest
from nengjian_host import cli
from nengjian_host.common import cjkfont
from nengjian_host.crew import entries, ledger

T0 = 1_796_169_600  # 2026-12-02 00:00 UTC
A = "00-00-0000-023300-11"


def png(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "PNG")
    return buf.getvalue()


class FakeConsole:
    def __init__(self):
        self.sent = []

    def request(self, command):
        self.sent.append(command)
        if command == "status":
            return [{"gateway_id": "NJ-SIM-1"}]
        if command.startswith("check "):
            req = json.loads(command[6:])
            return [{"meter": req["meter"], "point": req["point"], "displayed": req["displayed"], "gateway": "100",
                     "difference": "+5", "allowed": "2", "class": "1", "beyond": True, "seq": 9}]
        return [{"recorded": True, "seq": 7}]


def test_visit_keeps_the_photos_and_records_their_hashes(tmp_path):
    a, b = tmp_path / "cabinet.png", tmp_path / "meter m1.png"
    a.write_bytes(png("red"))
    b.write_bytes(png("blue"))
    con = FakeConsole()
    ans = entries.record_visit(con, "Li Wei", "meters read", "fuse replaced", [str(a), str(b)],
                               [("m1", "energy_kwh", "105.0")], tmp_path / "pulled")
    visit = json.loads(con.sent[1][len("visit "):])
    assert visit["who"] == "Li Wei" and visit["done"] == "fuse replaced" and visit["id"] == ans["visit"]
    assert visit["photos"] == [[hashlib.sha256(a.read_bytes()).hexdigest(), "cabinet.png"],
                               [hashlib.sha256(b.read_bytes()).hexdigest(), "meter_m1.png"]]
    kept = tmp_path / "pulled" / "photos" / "NJ-SIM-1" / ans["visit"]
    assert (kept / "meter_m1.png").read_bytes() == b.read_bytes()
    assert json.loads((kept / "visit.json").read_text())["photos"][0]["name"] == "cabinet.png"
    assert json.loads(con.sent[2][len("check "):]) == {"meter": "m1", "point": "energy_kwh", "displayed": "105.0",
                                                        "who": "Li Wei"}
    assert ans["checks"][0]["beyond"]


@pytest.mark.parametrize("photos, checks, why", [(["nope.jpg"], [], "no such file"),
                                                 ([], [("m1", "energy_kwh", "12,5")], "not a meter display")])
def test_bad_input_sends_nothing(tmp_path, photos, checks, why):
    con = FakeConsole()
    with pytest.raises(entries.EntryError, match=why):
        entries.record_visit(con, "Li Wei", "meters read", "", [str(tmp_path / p) for p in photos], checks,
                             tmp_path)
    assert con.sent == []


def test_a_visit_too_long_for_one_console_line_is_refused(tmp_path):
    photos = [{"name": "photo-%02d-%s.jpg" % (i, "x" * 40), "sha256": "0" * 64} for i in range(8)]
    with pytest.raises(entries.EntryError, match="second visit"):
        entries.visit_request("V1", "Li Wei", "meters read", "", photos)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def pulled(tmp_path):
    """A pull directory with the records a visit leaves in the gateway's ledger, its site config, and the
    photos `nengjian visit --out` kept beside it: one intact, one altered since, one gone."""
    photos = {"cabinet.png": png("red"), "meter_m1.png": png("blue"), "panel.png": png("green")}
    vid = "V20261202-100000"
    recs = [[2, T0 + i * 900 + 5, A, 0, T0 + i * 900, "1.25", True, 4, 1] for i in range(40)]
    recs += [[3, T0 + 3600, "commission", "commissioned by Zhang San: 2 meters, 2 items accepted"],
             [3, T0 + 7200, "visit", "Li Wei: meters read; done: fuse replaced [visit %s, 3 photo(s)]" % vid]]
    recs += [[3, T0 + 7200, "photo", "visit %s photo %s %s" % (vid, sha(d), n)] for n, d in photos.items()]
    recs += [[3, T0 + 7300, "check", "m1 energy_kwh: displayed 10250, gateway 10000 (2026-12-02 10:01:35, 5 s "
                                     "before), difference +250, allowed 101 (class 1: 1 % of reading + 1 digit 1): "
                                     "BEYOND CLASS; by Li Wei"],
             [3, T0 + 7300, "alarm", "CHECK m1 energy_kwh beyond class 1: difference +250, allowed 101"],
             [3, T0 + 7400, "alarm", "CALIBRATION DUE m1: meter m1 calibration due on 2026-12-20, in 18 day(s) "
                                     "(certificate DG-0042)"]]
    d = tmp_path / "pulled" / "NJ-SIM-1-20261202T030000Z"
    (d / "config").mkdir(parents=True)
    (d / "records.json").write_text(json.dumps({"records": recs}))
    (d / "config" / "site.json").write_text(json.dumps({"meters": [
        {"id": "m1", "class": "1", "calibration": {"certificate": "DG-0042", "date": "2020-12-20", "due": "2026-12-20"}},
        {"id": "m2", "class": "0.5S", "calibration": {"certificate": "DG-0043", "date": "2020-11-01", "due": "2026-11-01"}},
        {"id": "m3", "calibration": {"certificate": "DG-0044", "date": "2025-06-01", "due": "2031-06-01"}}]}))
    kept = tmp_path / "pulled" / "photos" / "NJ-SIM-1" / vid
    kept.mkdir(parents=True)
    (kept / "cabinet.png").write_bytes(photos["cabinet.png"])
    (kept / "meter_m1.png").write_bytes(png("black"))  # altered after the visit
    return d


def test_ledger_shows_visits_photos_calibrations_and_checks(pulled, tmp_path):
    out = tmp_path / "ledger.html"
    led = ledger.report(pulled / "records.json", html_path=out)
    st = {p["name"]: p["status"] for p in led["photos"]}
    assert st["cabinet.png"].startswith("verified") and st["meter_m1.png"].startswith("ALTERED")
    assert st["panel.png"].startswith("MISSING") and led["summary"]["photos_flagged"] == 2
    assert led["visits"][0]["visit_id"] == "V20261202-100000" and led["visits"][0]["text"].endswith("fuse replaced")
    cal = {c["meter"]: c for c in led["calibrations"]}
    assert cal["m1"]["flag"] and cal["m1"]["status"].startswith("due within 30 days")
    assert cal["m2"]["status"].startswith("expired") and not cal["m3"]["flag"]
    assert led["checks"][0]["difference"] == "+250" and led["checks"][0]["flag"]
    assert led["summary"]["checks_beyond_class"] == 1 and led["summary"]["metrology_alarms"] == 2
    assert led["commissioning"][0]["text"].startswith("commissioned by")
    json.dumps(ledger.public(led))  # the --json output carries no thumbnail bytes
    page = out.read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") == 1  # the one verified photo, as a thumbnail
    for text in ("现场图片", "计量器具检定", "DG-0042", "2026-12-20", "超出准确度等级", "照片缺失", "照片已被改动",
                 "调试投运", "commissioned by Zhang San", "1 of 3"):
        assert text in page, text


def cjk_chars(text: str) -> set[str]:
    return {c for c in text if 0x3000 <= ord(c) <= 0x9fff or 0xff00 <= ord(c) <= 0xffef}


def embedded_font(page: str):
    from fontTools.ttLib import TTFont

    m = re.search(r"@font-face\{font-family:(\w+);src:url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", page)
    assert m, "no CJK font embedded in the report"
    import base64

    return m[1], TTFont(io.BytesIO(base64.b64decode(m[2])))


needs_font = pytest.mark.skipif(cjkfont.find() is None, reason="no CJK font on this machine (make browser)")


@needs_font
def test_html_embeds_a_cjk_subset_that_covers_every_chinese_character(pulled, tmp_path):
    out = tmp_path / "ledger.html"
    ledger.report(pulled / "records.json", html_path=out, title="运维台账 NJ-SIM-1")
    page = out.read_text(encoding="utf-8")
    family, font = embedded_font(page)
    assert "font-family:%s" % family in page.split("</style>")[0].split("}", 1)[1]  # the body uses it
    cmap = font.getBestCmap()
    wanted = cjk_chars(page)
    assert {"运", "维", "台", "账", "检", "定"} <= wanted
    assert not [c for c in wanted if ord(c) not in cmap]
    assert len(page) < 2_000_000  # a subset, not the 16 MB face


@needs_font
def test_plot_titles_in_chinese_use_the_cjk_font(pulled, monkeypatch):
    """The plots' Chinese titles are drawn with a font that has their glyphs (matplotlib's DejaVu
    would draw boxes): every title with Chinese resolves to a font file whose cmap covers it."""
    import matplotlib

    matplotlib.use("Agg")
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    seen = []
    real = Figure.savefig

    def spy(fig, *a, **kw):
        for ax in fig.axes:
            t = ax.title
            if cjk_chars(t.get_text()):
                seen.append((t.get_text(), font_manager.findfont(t.get_fontproperties(), fallback_to_default=False)))
        return real(fig, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of each glyph missing from the font
        led = ledger.report(pulled / "records.json")
        ledger.plots(led)
    assert seen, "no plot has a Chinese title"
    assert any("运维台账" in text for text, _f in seen)
    for text, path in seen:
        cmap = TTFont(path, fontNumber=0).getBestCmap()
        assert all(ord(c) in cmap for c in text if ord(c) > 126), (text, path)


def test_without_a_cjk_font_the_report_is_written_with_a_warning(pulled, tmp_path, monkeypatch):
    monkeypatch.setenv("NJ_CJK_FONT", "")
    cjkfont.find.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            ledger.report(pulled / "records.json", html_path=tmp_path / "l.html")
        assert any(issubclass(x.category, cjkfont.NoCJKFont) for x in w)
        assert "@font-face" not in (tmp_path / "l.html").read_text(encoding="utf-8")
    finally:
        monkeypatch.delenv("NJ_CJK_FONT")
        cjkfont.find.cache_clear()


# ---- the ledger report as a PDF (common.pdf through headless Chromium): the document handed to the DRC
@pytest.fixture
def chromium_present():
    from nengjian_host.common import pdf

    if pdf.chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: CI installs it (make browser)")
        pytest.skip("chromium is not installed (make browser)")


def _cli(*argv):
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue()


@needs_font
def test_ledger_writes_a_pdf_with_its_chinese_title_meters_photos_and_plots(pulled, tmp_path, chromium_present):
    from pdftext import Pdf

    html = tmp_path / "report" / "report.html"
    html.parent.mkdir()
    code, out = _cli("ledger", pulled / "records.json", "--html", html, "--title", "运维台账 NJ-SIM-1", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["pdf"] == str(html.with_suffix(".pdf"))
    pdf = Pdf(html.with_suffix(".pdf").read_bytes())
    text = pdf.text()
    assert len(pdf.pages()) >= 2, len(pdf.pages())  # a dozen sections: never one page
    assert "运维台账 NJ-SIM-1 — 能耗在线监测端设备运维台账" in text
    for meter, certificate in (("m1", "DG-0042"), ("m2", "DG-0043"), ("m3", "DG-0044")):
        assert meter in text and certificate in text, meter
    flat = text.replace("\n", "")  # table cells wrap lines
    assert "计量器具检定" in flat and "照片已被改动" in flat and "超出准确度等级" in flat
    assert any("CJK" in f for f in pdf.font_families()), pdf.font_families()  # the Chinese in a CJK face
    led = ledger.report(pulled / "records.json")
    assert pdf.images() >= 1 + len(ledger.plots(led))  # the verified photo's thumbnail and every plot


def test_without_chromium_the_html_is_written_and_the_error_names_the_fix(pulled, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NJ_CHROMIUM", "")
    html = tmp_path / "report.html"
    code, _out = _cli("ledger", pulled / "records.json", "--html", html)
    err = capsys.readouterr().err
    assert code == 1 and "apt-get install chromium" in err and "--no-pdf" in err and "Chromium" in err, err
    assert "本机没有 Chromium" in err
    assert "运维台账" in html.read_text(encoding="utf-8") and not html.with_suffix(".pdf").exists()
    code, _out = _cli("ledger", pulled / "records.json", "--html", html, "--no-pdf")
    assert code == 0 and not html.with_suffix(".pdf").exists()


# ---- --calibration: a meter's new 检定 certificate, checked before anything is sent
TODAY = dt.date(2026, 12, 2)


@pytest.mark.parametrize("cal, key", [
    (("m1", "DG-7", "2026-12-03", "2032-12-01"), "err.visit.cal_future"),
    (("m1", "DG-7", "2026-11-28", "2026-11-28"), "err.visit.cal_order"),
    (("m1", "DG-7", "2026-11-28", "2025-11-28"), "err.visit.cal_order"),
    (("m1", "DG-7", "28.11.2026", "2032-11-28"), "err.visit.cal_bad_date"),
    (("m1", "DG-7", "2026-11-28", "2032-02-30"), "err.visit.cal_bad_due"),
    (("m1", " ", "2026-11-28", "2032-11-28"), "err.visit.cal_certificate"),
    (("m1", "D" * 41, "2026-11-28", "2032-11-28"), "err.visit.cal_certificate"),
])
def test_a_calibration_that_cannot_be_right_is_refused_in_both_languages(cal, key):
    con = FakeConsole()
    with pytest.raises(entries.CalibrationError) as e:
        entries.record_visit(con, "Li Wei", "meter m1 recalibrated", calibrations=[cal],
                             now=dt.datetime(2026, 12, 2, 10, 0, tzinfo=entries.CST))
    assert e.value.text.key == key and re.search(r"[\u4e00-\u9fff]", e.value.text.zh), e.value.text
    assert con.sent == []


class GatewayWithMeters(FakeConsole):
    def request(self, command):
        if command == "status":
            self.sent.append(command)
            return [{"gateway_id": "NJ-SIM-1", "meters": [{"id": "m1"}, {"id": "m2"}]}]
        if command.startswith("calibrate "):
            self.sent.append(command)
            req = json.loads(command[len("calibrate "):])
            return [{"recorded": True, "seq": 12, "meter": req["meter"], "alarm": None,
                     "calibration": {k: req[k] for k in ("certificate", "date", "due")}}]
        return super().request(command)


def test_a_calibration_goes_to_the_gateway_with_its_visit_and_a_meter_it_lacks_is_refused_first():
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=entries.CST)
    con = GatewayWithMeters()
    with pytest.raises(entries.CalibrationError, match="no meter m9") as e:
        entries.record_visit(con, "Li Wei", "recalibrated", calibrations=[("m9", "DG-7", "2026-11-28", "2032-11-28")],
                             now=now)
    assert "m1, m2" in str(e.value) and "没有表计 m9" in e.value.text.zh
    assert con.sent == ["status"]  # asked which meters it has; nothing recorded
    with pytest.raises(entries.CalibrationError, match="twice"):
        entries.record_visit(con, "Li Wei", "recalibrated", calibrations=[("m1", "A", "2026-11-28", "2032-11-28"),
                                                                          ("m1", "B", "2026-11-28", "2032-11-28")])
    con = GatewayWithMeters()
    ans = entries.record_visit(con, "Li Wei", "recalibrated", calibrations=[("m2", "DG-7", "2026-12-02", "2032-12-01")],
                               now=now)
    assert [c.split(" ", 1)[0] for c in con.sent] == ["status", "visit", "calibrate"]
    assert json.loads(con.sent[2][len("calibrate "):]) == {"meter": "m2", "certificate": "DG-7", "date": "2026-12-02",
                                                            "due": "2032-12-01", "who": "Li Wei", "visit": ans["visit"]}
    assert ans["calibrations"][0]["calibration"]["due"] == "2032-12-01"


def test_the_ledger_lists_the_calibrations_recorded_at_visits(pulled, tmp_path):
    recs = json.loads((pulled / "records.json").read_text())["records"]
    recs.append([3, T0 + 7500, "calibration", "meter m2 calibrated 2026-12-01, due 2032-11-30 (certificate DG-2026-9) "
                                              "[visit V20261202-100000] by Li Wei"])
    (pulled / "records.json").write_text(json.dumps({"records": recs}))
    led = ledger.report(pulled / "records.json", html_path=tmp_path / "l.html")
    assert led["calibration_records"] == [{"meter": "m2", "date": "2026-12-01", "due": "2032-11-30",
                                           "certificate": "DG-2026-9", "visit_id": "V20261202-100000",
                                           "who": "Li Wei", "at": "2026-12-02 10:05", "ts": T0 + 7500}]
    assert led["summary"]["calibrations_recorded"] == 1
    page = (tmp_path / "l.html").read_text(encoding="utf-8")
    assert "巡检时录入的检定" in page and "DG-2026-9" in page


class GatewayWithConfig(GatewayWithMeters):
    """A gateway that serves its site config to a pull and rewrites it on `calibrate`, as the firmware's
    console does (nengjian.console.commands._calibrate)."""

    port = "sim:test"
    PATH = "/config/site.json"

    def __init__(self):
        super().__init__()
        self.site = {"destinations": [{"name": "p", "pin": "1234"}], "meters": [
            {"id": "m1", "calibration": {"certificate": "DG-0042", "date": "2020-12-20", "due": "2026-12-20"}},
            {"id": "m2"}]}

    def _bytes(self) -> bytes:
        return json.dumps(self.site).encode()

    def request(self, command, timeout=None):
        import base64
        import binascii

        data = self._bytes()
        if command == "files":
            return [{"t": "file", "path": self.PATH, "kind": "config", "size": len(data)}, {"gateway_id": "NJ-SIM-1"}]
        if command.startswith("get "):
            _cmd, _path, off, n = command.split()
            chunk = data[int(off):int(off) + int(n)]
            return [{"t": "data", "off": int(off), "n": len(chunk), "crc": binascii.crc32(chunk) & 0xFFFFFFFF,
                     "b64": base64.b64encode(chunk).decode()}, {"n": len(chunk), "size": len(data)}]
        if command.startswith("sha256 "):
            return [{"sha256": sha(data), "n": len(data)}]
        ans = super().request(command)
        if command.startswith("calibrate "):
            req = json.loads(command[len("calibrate "):])
            for m in self.site["meters"]:
                if m["id"] == req["meter"]:
                    m["calibration"] = ans[-1]["calibration"]
        return ans

    def status(self):
        return self.request("status")[-1]

    def files(self):
        ans = self.request("files")
        return ans[:-1], ans[-1]

    def get_range(self, path, offset, length):
        from nengjian_host.common.device import Console

        return Console.get_range(self, path, offset, length)

    def sha256_of(self, path, length=None):
        end = self.request("sha256 " + path)[-1]
        return end["sha256"], end["n"]


def _through(monkeypatch, con) -> None:
    """`nengjian visit` talks to `con` instead of a gateway on a port."""
    from nengjian_host.common import output
    from nengjian_host.crew import commands

    monkeypatch.setattr(commands, "on_gateway", lambda args, work, refused="": (output.EXIT_OK, work(con)))


def test_a_calibration_brings_the_laptops_pulled_site_config_up_to_date(tmp_path, monkeypatch):
    """The crew pulled first (the guide says so); after `visit --calibration` the newest pull of that
    gateway under --out holds the config as the gateway rewrote it, secrets still blanked, and its
    manifest names the new copy, so check-config and the ledger read what the gateway boots with."""
    from nengjian_host.crew import pull

    con = GatewayWithConfig()
    out = tmp_path / "pulled"
    old = pull.pull_console(con, out, progress=False, decode=False)
    later = pull.pull_console(con, out, progress=False, decode=False)
    other = out / "NJ-SIM-10-20990101T000000Z"  # another gateway's pull, named alike: left alone
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"gateway_id": "NJ-SIM-10", "pulled_at": "2099-01-01T00:00:00Z"}))
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=entries.CST)
    ans = entries.record_visit(con, "Li Wei", "m1 recalibrated", out=out, now=now,
                               calibrations=[("m1", "DG-2026-0107", "2026-12-01", "2032-11-30")])
    assert ans["pull"] == str(later)
    site = json.loads((later / "config" / "site.json").read_text())
    assert site["meters"][0]["calibration"] == {"certificate": "DG-2026-0107", "date": "2026-12-01",
                                                "due": "2032-11-30"}
    assert site["destinations"][0]["pin"] == "<redacted>"
    entry = [f for f in json.loads((later / "manifest.json").read_text())["files"] if f["kind"] == "config"][0]
    assert entry["sha256"] == sha((later / "config" / "site.json").read_bytes())
    assert entry["gateway_sha256"] == sha(con._bytes())
    assert json.loads((old / "config" / "site.json").read_text())["meters"][0]["calibration"]["certificate"] == \
        "DG-0042"  # an older pull stays the record of what it copied then

    _through(monkeypatch, con)
    code, text = _cli("--lang", "en", "visit", "--port", "x", "--who", "Li Wei", "--out", out, "--calibration", "m2",
                      "DG-9", "2026-12-01", "2032-11-30", "m2 recalibrated")
    assert code == 0 and str(later) in text, text
    assert json.loads((later / "config" / "site.json").read_text())["meters"][1]["calibration"]["certificate"] == \
        "DG-9"


def test_a_calibration_without_a_pull_says_to_pull_again(tmp_path, monkeypatch):
    con = GatewayWithConfig()
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=entries.CST)
    ans = entries.record_visit(con, "Li Wei", "m1 recalibrated", out=tmp_path / "empty", now=now,
                               calibrations=[("m1", "DG-2026-0107", "2026-12-01", "2032-11-30")])
    assert ans["pull"] is None
    _through(monkeypatch, con)
    code, text = _cli("--lang", "zh", "visit", "--port", "x", "--who", "Li Wei", "--calibration", "m2", "DG-9",
                      "2026-12-01", "2032-11-30", "m2 recalibrated")
    assert code == 0 and "nengjian pull" in text and "拉取" in text, text
