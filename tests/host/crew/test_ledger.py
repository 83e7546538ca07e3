"""The maintenance ledger: fault pairing, gaps per item, outages, visits, plots and the hand-over HTML.

Records are made here in the shapes the gateway stores (nengjian.core.records arrays, with the event texts
the firmware writes) and in the dict shape of the store decoder; the decoder itself is tested with
its own module.
"""

from __future__ import annotations

import base64
import json
import re

import pytest
from nengjian_host import cli
from nengjian_host.crew import ledger

T0 = 1_777_593_600  # 2026-05-01 00:00 UTC
P = 900
A = "00-00-0000-023300-11"
B = "01-00-0000-023300-11"


def values(code, start, end, skip=()):
    out = []
    t = start
    while t < end:
        if not any(a <= t < b for a, b in skip):
            out.append([2, t + P + 5, code, 0, t, "1.25", True, 4, 1])
        t += P
    return out


def ev(t, kind, text):
    return [3, t, kind, text]


@pytest.fixture
def records():
    end = T0 + 10 * 86400
    gap4d = (T0 + 2 * 86400, T0 + 6 * 86400)
    gap30h = (T0 + 7 * 86400, T0 + 7 * 86400 + 30 * 3600)
    gap2h = (T0 + 9 * 86400, T0 + 9 * 86400 + 7200)
    recs = values(A, T0, end, skip=(gap4d, gap30h, gap2h)) + values(B, T0, end)
    recs += [[1, T0 + i * 600, "m1", "energy_kwh", "%d.5" % (1000 + i), 0] for i in range(0, 1440, 12)]
    recs += [
        ev(T0 + 60, "boot", "started firmware 0.1.0"),
        ev(T0 + 3600, "visit", "crew Li: monthly inspection, photos taken"),
        ev(T0 + 2 * 86400, "meter", "meter m1 offline after 3 failed polls (timeout); retry every 300 s"),
        ev(T0 + 6 * 86400, "meter", "meter m1 answers again after 1152 failed polls"),
        ev(T0 + 5 * 86400, "uplink", "city: delivery failing: timeout"),
        ev(T0 + 5 * 86400 + 3600, "uplink", "city: delivering again after failures (timeout)"),
        ev(T0 + 8 * 86400, "uplink", "province: delivery failing: HTTP 503"),
        ev(T0 + 8 * 86400 + 10, "meter", "meter m2 answers again after 4 failed polls"),
        ev(T0 + 9 * 86400, "loss", "store full: dropped records 10..20 not yet acknowledged by every destination"),
        ev(T0 + 9 * 86400 + 5, "meter", "00-00-0000-023300-11: reading fell from 900 to 3 (meter replaced or reset): "
                                        "new baseline, consumption counted from the new reading on"),
    ]
    return recs


def test_faults_gaps_outages_visits(records):
    led = ledger.build(records, end=T0 + 10 * 86400)
    f = led["faults"]
    m1 = [x for x in f if x["subject"] == "m1"][0]
    assert m1["duration_s"] == 4 * 86400 and m1["over_24h"] and not m1["open"]
    m2 = [x for x in f if x["subject"] == "m2"][0]
    assert m2["started_before_data"] and m2["duration_s"] == 8 * 86400 + 10
    assert m2["duration"].startswith("at least 8d")
    outs = {x["subject"]: x for x in led["link_outages"]}
    assert outs["city"]["duration_s"] == 3600 and not outs["city"]["open"]
    assert outs["province"]["open"] and outs["province"]["duration_s"] == 2 * 86400
    gaps = [g for g in led["gaps"] if g["code"] == A]
    assert [g["duration_s"] for g in gaps] == [4 * 86400, 30 * 3600, 7200]
    assert [g["flag"] for g in gaps] == ["report (>= 3 days)", "fault (>= 24 h)", ""]
    assert gaps[0]["from"] == "2026-05-03 08:00" and gaps[0]["missing_values"] == 4 * 96
    assert led["reportable"] == gaps[:1]
    assert not [g for g in led["gaps"] if g["code"] == B]
    assert led["items"][B]["completeness"] == 1.0 and not led["items"][B]["below_90pct"]
    assert led["items"][A]["below_90pct"]
    assert led["summary"]["visits"] == 1 and not led["inspection"]["overdue"]
    assert led["summary"]["data_loss_events"] == 1 and led["summary"]["restarts"] == 1
    assert len(led["meter_changes"]) == 1
    assert led["summary"]["gaps_to_report"] == 1 and led["summary"]["faults_open"] == 0


def test_trailing_gap_and_overdue_inspection(records):
    led = ledger.build(records, end=T0 + 45 * 86400)
    tail = [g for g in led["gaps"] if g["code"] == B][-1]
    assert tail["why"] == "no value since" and tail["duration_s"] >= 35 * 86400 - P
    assert led["inspection"]["overdue"] and led["inspection"]["days_since"] > 30


def test_record_shapes_from_the_decoder():
    arrays = [[2, T0 + 905, A, 0, T0, "2.5", True, 4, 1], [3, T0 + 10, "visit", "crew"]]
    dicts = [{"seq": 1, "kind": "value", "fields": arrays[0][1:]},
             {"seq": 2, "kind": "EVENT", "ts": T0 + 10, "event": "visit", "text": "crew"},
             {"seq": 3, "kind": 2, "fields": {"ts": T0 + 1805, "dataCode": A, "statType": 0,
                                               "statStart": "2026-05-01T00:15:00+00:00", "dataValue": 1.5,
                                               "valid": True}}]
    a = [ledger.normalize(r) for r in arrays]
    d = [ledger.normalize(r) for r in dicts]
    assert a[0]["code"] == d[0]["code"] == d[2]["code"] == A
    assert d[2]["stat_start"] == T0 + 900 and d[2]["value"] == 1.5
    assert a[1]["event"] == d[1]["event"] == "visit"
    assert ledger.normalize({"seq": 9, "kind": "unknown"}) is None
    # storedump's shape for a value folded into history: no seq, no ts, Decimal value
    from decimal import Decimal

    h = ledger.normalize({"seq": None, "ring": "history", "kind": "VALUE", "segment": "h00.seg", "run_seq": 7,
                          "fields": {"ts": None, "code": A, "statType": 0, "statStart": T0, "value": Decimal("1.50"),
                                     "valid": True, "inputType": 4, "scope": 1}})
    assert h["ts"] == h["stat_start"] == T0 and h["value"] == 1.5


def test_html_report_is_self_contained(records, tmp_path, capsys):
    src = tmp_path / "pulled.jsonl"
    src.write_text("\n".join(json.dumps({"seq": i, "kind": r[0], "fields": r[1:]}) for i, r in enumerate(records)))
    html_path = tmp_path / "ledger.html"
    code = cli.main(["ledger", str(src), "--to", "2026-05-11 08:00", "--html", str(html_path), "--png-dir",
                     str(tmp_path / "png"), "--json", "--gateway", "NJ-SIM-1"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["summary"]["gaps_to_report"] == 1 and "_series" not in out
    page = html_path.read_text()
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", page)
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) >= 4
    assert all(base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "report each to the platform with cause and fix" in page and "NJ-SIM-1" in page
    assert (tmp_path / "png" / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert "<script" not in page


def test_restarts_say_why_and_crash_loop_safe_mode_is_a_stretch():
    """The texts nengjian.app writes (tests/e2e/test_resets.py puts the real ones through too)."""
    boot = "started firmware 0.2.0 (reset cause: %s, quick crashes: %d of 2)"
    safe1 = ("SAFE MODE (crash loop, level 1): 2 quick crashes in a row (last reset: crash); meters polled and "
             "stored; notices, coefficients, update server off; normal start in 3600 s")
    recs = [
        ev(T0, "boot", "started firmware 0.1.0"),  # older firmware named no cause
        ev(T0 + 60, "boot", boot % ("power-on", 0)),
        ev(T0 + 120, "boot", boot % ("brown-out", 0)),
        ev(T0 + 180, "boot", boot % ("watchdog", 1)),
        ev(T0 + 240, "health", safe1),
        ev(T0 + 240, "boot", boot % ("crash", 2)),
        ev(T0 + 300, "health", safe1.replace("last reset: crash", "last reset: power-on")),  # a power cut in it
        ev(T0 + 300, "boot", boot % ("power-on", 2)),
        ev(T0 + 3900, "health", "leaving crash-loop safe mode for a normal start"),
        ev(T0 + 3905, "boot", boot % ("reset", 1)),
        ev(T0 + 7200, "health", "SAFE MODE: 5 quick restarts in a row; meters not polled, console and uploads kept"),
    ]
    led = ledger.build(recs, end=T0 + 10800)
    assert [r["cause"] for r in led["restarts"]] == [None, "power-on", "brown-out", "watchdog", "crash", "power-on",
                                                     "reset"]
    assert [r["quick_crashes"] for r in led["restarts"]] == [None, 0, 0, 1, 2, 2, 1]
    why = {r["cause"]: r["why"] for r in led["restarts"]}
    assert why["power-on"] == "power cut or power-on / 断电或上电" and why["watchdog"] == "watchdog reset / 看门狗复位"
    assert why[None] == "not recorded / 未记录"
    assert led["summary"]["restarts_by_cause"] == {"not recorded": 1, "power-on": 2, "brown-out": 1, "watchdog": 1,
                                                   "crash": 1, "reset": 1}
    one, two = led["safe_modes"]
    assert (one["start_ts"], one["end_ts"], one["level"], one["duration_s"], one["open"]) == (
        T0 + 240, T0 + 3900, 1, 3660, False)
    assert "仍采集存储" in one["what"]
    assert (two["level"], two["open"], two["duration_s"]) == (2, True, 3600)  # older firmware: meters off
    assert led["summary"]["safe_mode_entries"] == 2
    page = ledger.to_html(led, {})
    assert "崩溃循环安全模式" in page and "看门狗复位" in page
    assert "程序崩溃或看门狗复位后重启 2 次（2 restart(s) after a crash or a watchdog reset）" in page
    assert "Crash-loop safe mode entered 2 time(s)" in page


def test_text_escaped_in_html(records):
    records.append(ev(T0 + 100, "visit", "<script>alert(1)</script>"))
    led = ledger.build(records)
    page = ledger.to_html(led, {})
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_no_data_is_bad_input(tmp_path, capsys):
    empty = tmp_path / "e.json"
    empty.write_text("[]")
    assert cli.main(["ledger", str(empty)]) == cli.EXIT_USAGE
    assert "no records" in capsys.readouterr().err
    assert cli.main(["ledger", str(tmp_path / "missing-dir")]) == cli.EXIT_USAGE
    assert cli.main(["ledger", str(empty), "--from", "May 1st"]) == cli.EXIT_USAGE


def test_points_a_meter_refuses_are_listed_with_their_stretch(records):
    # the texts of nengjian.meters.poller (tests/firmware/meters/test_refused_points.py checks them there)
    records += [
        ev(T0 + 7200, "point", "meter e1 point energy_reverse_kwh unsupported: meter error 0x02 no_such_data; "
                               "asked again every 3600 s"),
        ev(T0 + 7300, "point", "meter w1 point settle_volume_m3 unsupported: reply has no settle_flow; "
                               "checked in every reply"),
        ev(T0 + 86400, "point", "meter e1 point energy_reverse_kwh answers again"),
    ]
    led = ledger.build(records, end=T0 + 10 * 86400)
    got = [(p["meter"], p["point"], p["since"], p["until"], p["why"]) for p in led["unsupported_points"]]
    assert got == [("e1", "energy_reverse_kwh", "2026-05-01 10:00", "2026-05-02 08:00", "meter error 0x02 no_such_data"),
                   ("w1", "settle_volume_m3", "2026-05-01 10:01", None, "reply has no settle_flow")]
    assert led["summary"]["points_unsupported"] == 1
    assert not [f for f in led["faults"] if f["subject"] in ("e1", "w1")]  # a refused point is no meter fault
    page = ledger.to_html(led, {})
    assert "表计不支持的数据点" in page and "settle_volume_m3" in page and "1 meter point(s) refused" in page


def test_security_events_and_clock_steps_have_their_own_sections(records):
    recs = records + [
        ev(T0 + 100, "security", "city: the platform's centerDataURL (https://evil.example) refused: host evil.example "
                                 "is neither the destination's nor one of its hosts; no uploads until it names an "
                                 "allowed one, the data stay on the gateway"),
        ev(T0 + 200, "clock", "clock stepped by -42 s from ntp ntp.aliyun.com (2026-05-01T00:03:20Z)"),
    ]
    led = ledger.build(recs)
    assert [s["text"][:30] for s in led["security"]] == ["city: the platform's centerDat"]
    assert [(c["step_s"], c["source"], c["taken"]) for c in led["clock_steps"]] == [(-42, "ntp ntp.aliyun.com", True)]
    assert led["summary"]["security_events"] == 1 and led["summary"]["clock_steps"] == 1
    html = ledger.to_html(led, {})
    assert "安全事件" in html and "evil.example" in html and "-42 s" in html and "时钟校正" in html
    assert "1 security event(s)" in html


def test_the_gateways_score_alarms_are_listed_per_destination_item_and_day(records):
    # The texts nengjian.uplink.quality writes (tests/firmware/uplink/test_quality.py pins them there).
    recs = records + [
        ev(T0 + 86400 + 7200, "alarm", "QUALITY city 01-00-0000-023300-11 day 2026-05-01: completeness 83.5 % "
                                       "(81 of 97 values due), below 90 %"),
        ev(T0 + 86400 + 7300, "alarm", "QUALITY prov 00-00-0000-023300-11 day 2026-05-01: day value and the sum of "
                                       "its real-time values 9.4 % apart, above 5 %"),
        ev(T0 + 86400 + 7400, "alarm", "RAISED warning 00-00-0000-023300-11: no valid data for 24 h 0 min"),
    ]
    led = ledger.build(recs)
    got = [(q["destination"], q["code"], q["what"], q["when"]) for q in led["quality"]]
    assert got == [("city", B, "day", "2026-05-01"), ("prov", A, "day", "2026-05-01")]
    assert led["summary"]["quality_alarms"] == 2
    html = ledger.to_html(led, {})
    assert "网关数据质量告警" in html and "2 score alarm(s)" in html and "83.5 %" in html


def test_a_value_stored_as_invalid_is_not_complete_as_on_the_gateway():
    """nengjian.uplink.quality: a value sent as invalid (an estimate, a value out of range) is not one the
    platform counts; a valid resend of the same period later is."""
    end = T0 + 86400
    recs = values(A, T0, end)
    for r in recs[:20]:  # 20 of 96 periods estimated, sent as invalid
        r[6] = False
    recs.append([2, end + 60, A, 0, recs[0][4], "1.25", True, 4, 1])  # the first of them sent again, valid
    led = ledger.build(recs, end=end + P)
    item = led["items"][A]
    assert item["values"] == 96 and item["invalid"] == 20
    assert item["completeness"] == round(77 / 96, 4) and item["below_90pct"]
    assert not led["gaps"]  # a flagged estimate is data stored, not a gap (the gap rules as before)


def _score_slot(period, start, accepted, due, items):
    return {"period": period, "start": start, "accepted": accepted, "due": due, "on_time": accepted,
            "completeness": round(accepted * 1000 / due) / 10, "timeliness": 100.0, "apart_max": 0.4,
            "misaligned": 0, "items": items}


DAY_CST = T0 - 8 * 3600  # 2026-05-01 00:00 CST


def _pulled_with_score(tmp_path):
    """A pull's records beside its quality.json (what crew.pull.save_quality writes from the console status)."""
    day = DAY_CST
    recs = values(A, day, day + 86400) + values(B, day, day + 86400, skip=((day, day + 10 * P),))
    recs.append([2, day + 86400 + 60, A, 1, day, "120", True, 4, 1])  # A's day value
    for r in recs[:3]:
        r[6] = False  # three of A's stored as invalid estimates: not counted, here or on the gateway
    src = tmp_path / "records.jsonl"
    src.write_text("\n".join(json.dumps({"seq": i, "kind": r[0], "fields": r[1:]}) for i, r in enumerate(recs)))
    # What the gateway says: of A it has 92 of 97 (two valid values still in its backlog), of B 80 of 97.
    days = [_score_slot("2026-05-01", day, 172, 194, {A: [92, 97, 0.4], B: [80, 97, None]})]
    months = [_score_slot("2026-05", day, 172, 194, {A: [92, 97, None], B: [80, 97, None]})]
    (tmp_path / "quality.json").write_text(json.dumps({
        "gateway_id": "NJ-1", "gateway_time": day + 86400 + 3600,
        "destinations": [{"name": "city", "quality": {"since": day, "days": days, "months": months,
                                                      "alarms": [], "too_old": 0, "invalid": 3}}]}))
    return src


def test_the_gateways_own_score_from_the_pull_is_shown_beside_the_ledgers(tmp_path, capsys):
    """`nengjian pull` saves the console status's quality section (crew.pull.save_quality) beside the records;
    the report shows it per destination, next to what the pulled records hold for the same day and month."""
    src = _pulled_with_score(tmp_path)
    html_path = tmp_path / "ledger.html"
    code = cli.main(["ledger", str(src), "--html", str(html_path), "--no-pdf", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    city = out["gateway_score"]["destinations"][0]
    assert city["destination"] == "city" and city["invalid"] == 3
    items = {(x["what"], x["code"]): x for x in city["items"]}
    assert items[("day", A)]["stored"] == 94 and items[("day", A)]["not_accepted"] == 2  # 93 real-time + the day value
    assert items[("day", B)]["stored"] == 86 and items[("day", B)]["flag"]
    assert items[("month", A)]["stored"] == 94
    first = city["periods"][0]
    assert first["what"] == "day" and first["stored"] == 180 and first["not_accepted"] == 8
    assert out["summary"]["gateway_score_low"] == 1  # the month at 88.7 %
    page = html_path.read_text()
    assert "网关自身的数据质量评分" in page and "The gateway&#x27;s own score" in page
    assert "已存未接收（待补传）" in page and "数据采集项" in page and "172/194" in page
    assert "city 2026-05: 92/97 (94.8 %)" in page  # beside the ledger's own completeness of A
    assert "88.7 %" in page and "网关自身评分本月完整率低于 90 %" in page


def test_a_pull_without_the_gateways_score_says_so(records, tmp_path, capsys):
    src = tmp_path / "records.jsonl"
    src.write_text("\n".join(json.dumps({"seq": i, "kind": r[0], "fields": r[1:]}) for i, r in enumerate(records)))
    code = cli.main(["ledger", str(src), "--html", str(tmp_path / "l.html"), "--no-pdf", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["gateway_score"] is None
    assert "本次拉取的数据中没有" in (tmp_path / "l.html").read_text()


def test_the_gateways_own_score_is_in_the_pdf(tmp_path):
    from nengjian_host.common import cjkfont, pdf
    from pdftext import Pdf

    if pdf.chromium() is None or cjkfont.find() is None:
        pytest.skip("chromium or a CJK font is not installed (make browser)")
    html_path = tmp_path / "ledger.html"
    led = ledger.report(_pulled_with_score(tmp_path), html_path=html_path, pdf_path=tmp_path / "ledger.pdf")
    flat = Pdf(open(led["pdf"], "rb").read()).text().replace("\n", "")
    assert "网关自身的数据质量评分" in flat and "待补传" in flat and "172/194" in flat


# The restart, security and meter-change tables as the firmware writes their events (nengjian.appboot,
# nengjian.uplink.session with its code, nengjian.values.intervals).
LANG_EVENTS = [
    ev(T0 + 60, "boot", "started firmware 0.1.0"),
    ev(T0 + 120, "boot", "started firmware 0.2.0 (reset cause: watchdog, quick crashes: 1 of 2)"),
    [3, T0 + 180, "security", "city: the platform's centerDataURL (http://data.example) refused: not https; no uploads "
                              "until it names an allowed one, the data stay on the gateway", "uplink.field_refused"],
]
LANG_TABLES = {"restarts": ("重启", "Restarts", ["时间", "原因", "事件"], ["At", "Cause", "Event"]),
               "security": ("安全事件", "Security events", ["时间", "事件"], ["At", "Event"]),
               "changes": ("更换仪表与表计清零", "Meter replacements and resets", ["时间", "事件"], ["At", "Event"])}
CJK = re.compile(r"[\u4e00-\u9fff]")
WORDS = re.compile(r"[A-Za-z]{3,}")


def _sections(page: str) -> dict[str, str]:
    """heading -> the HTML up to the next heading."""
    return {re.sub(r"<[^>]+>", "", m.group(1)): m.group(2)
            for m in re.finditer(r"<h2>(.*?)</h2>(.*?)(?=<h2>|</body>)", page, re.S)}


def _cells(section: str, tag: str) -> list[str]:
    return [re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<%s>(.*?)</%s>" % (tag, tag), section, re.S)]


def _report(records, tmp_path, lang: str) -> str:
    src = tmp_path / "pulled.jsonl"
    src.write_text("\n".join(json.dumps({"seq": i, "kind": r[0], "fields": r[1:]})
                             for i, r in enumerate(records + LANG_EVENTS)))
    out = tmp_path / ("ledger-%s.html" % lang)
    assert cli.main(["--lang", lang, "ledger", str(src), "--to", "2026-05-11 08:00", "--html", str(out),
                     "--no-pdf"]) == 0
    return out.read_text(encoding="utf-8")


def test_a_chinese_report_says_every_heading_and_the_event_tables_in_chinese(records, tmp_path, capsys):
    page = _report(records, tmp_path, "zh")
    sections = _sections(page)
    english_only = [h for s in sections.values() for h in _cells(s, "th") if not CJK.search(h) and h != "SHA-256"]
    english_only += [h for h in sections if not CJK.search(h)]
    assert not english_only, english_only
    for zh, _en, heads, _en_heads in LANG_TABLES.values():
        table = sections[zh]
        assert _cells(table, "th") == heads
        texts = [c for c in _cells(table, "td") if not re.fullmatch(r"[0-9: -]+", c)]
        assert texts and all(CJK.search(c) for c in texts), texts
    restarts = _cells(sections["重启"], "td")
    assert "看门狗复位" in restarts and "固件 0.1.0 启动" in restarts
    assert not [c for c in restarts if "started firmware" in c or "watchdog" in c]
    assert "被拒绝：不是 https" in sections["安全事件"] and "refused" not in sections["安全事件"]
    assert "换表或仪表复位" in sections["更换仪表与表计清零"] and "reading fell" not in sections["更换仪表与表计清零"]
    assert "运维台账" in page.split("</h1>")[0] and "Maintenance ledger" not in page


def test_an_english_report_says_them_in_english(records, tmp_path, capsys):
    page = _report(records, tmp_path, "en")
    body = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    assert not CJK.search(body), CJK.findall(body)[:20]
    sections = _sections(page)
    for _zh, en, _heads, heads in LANG_TABLES.values():
        assert _cells(sections[en], "th") == heads
        assert all(WORDS.search(c) for c in _cells(sections[en], "td") if not re.fullmatch(r"[0-9: -]+", c))
    assert "watchdog reset" in sections["Restarts"] and "started firmware 0.1.0" in sections["Restarts"]


def test_without_lang_the_report_carries_both(records, tmp_path, capsys):
    src = tmp_path / "pulled.jsonl"
    src.write_text("\n".join(json.dumps({"seq": i, "kind": r[0], "fields": r[1:]})
                             for i, r in enumerate(records + LANG_EVENTS)))
    out = tmp_path / "ledger.html"
    assert cli.main(["ledger", str(src), "--html", str(out), "--no-pdf"]) == 0
    sections = _sections(out.read_text(encoding="utf-8"))
    restarts = sections["Restarts — 重启"]
    assert _cells(restarts, "th") == ["At / 时间", "Cause / 原因", "Event / 事件"]
    assert "started firmware 0.1.0" in restarts and "固件 0.1.0 启动" in restarts


# A console status as a gateway gives it when m1 stopped answering and the city platform answered 503.
STATUS = {"gateway_id": "NJ-1", "firmware": "0.3.0", "time": T0 + 10 * 86400, "meters": [
    {"id": "m1", "bus": "bus0", "offline": True, "failures": 3, "last_ok": T0 + 2 * 86400, "last_error": "no reply",
     "last_error_code": "meter_error.timeout", "values": {}},
    {"id": "m2", "bus": "bus0", "offline": False, "failures": 0, "last_ok": T0 + 10 * 86400 - 60, "last_error": ""}],
    "destinations": [{"name": "city", "failing": True, "backlog": 12, "last_ok": T0 + 9 * 86400,
                      "last_error": "HTTP 503, responseCode 5001: busy", "last_error_code": "dest_error.answer"}]}
AT_PULL = {"zh": ("拉取时的仪表与上传平台", ["仪表或上传平台", "名称", "状态", "最近读数或平台接收时间", "最近一次错误"],
                  [["仪表", "m1", "离线", "2026-05-03 08:00", "无应答"], ["仪表", "m2", "正常", "2026-05-11 07:59", ""],
                   ["上传平台", "city", "上传失败", "2026-05-10 08:00", "HTTP 503，平台返回码 5001：busy"]]),
           "en": ("Meters and destinations at the pull",
                  ["Meter or destination", "Name", "Status", "Last reading or acceptance", "Last error"],
                  [["meter", "m1", "offline", "2026-05-03 08:00", "no reply"], ["meter", "m2", "ok", "2026-05-11 07:59", ""],
                   ["destination", "city", "delivery failing", "2026-05-10 08:00", "HTTP 503, responseCode 5001: busy"]])}


def _rows(section: str) -> list[list[str]]:
    return [_cells(r, "td") for r in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S) if "<td>" in r]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_meters_and_destinations_at_the_pull_are_shown_with_their_last_errors(records, tmp_path, capsys, lang):
    """`nengjian pull` saves the status beside the records (crew.pull.save_status); the report lists each
    meter and destination with its last success and its last error, said in the report's language."""
    from nengjian_host.crew import pull

    pull.save_status(STATUS, tmp_path)
    heading, heads, rows = AT_PULL[lang]
    section = _sections(_report(records, tmp_path, lang))[heading]
    assert _cells(section, "th") == heads
    assert _rows(section) == rows
    assert section.count('class="flag"') == 2  # m1 offline, city failing


def test_a_pull_without_the_status_says_so(records, tmp_path, capsys):
    section = _sections(_report(records, tmp_path, "zh"))["拉取时的仪表与上传平台"]
    assert "本次拉取的数据中没有网关状态" in section and "<table>" not in section


def test_an_older_gateways_uncoded_events_read_in_chinese(records, tmp_path, capsys):
    """Texts firmware wrote before its events carried codes: a store that dropped records, a delivery
    back after failures, a crash-loop safe mode of the first kind. The crew's own visit text stays as typed."""
    old = [ev(T0 + 7200, "health", "SAFE MODE: 5 quick restarts in a row; meters not polled, console and uploads kept")]
    sections = _sections(_report(records + old, tmp_path, "zh"))
    events = _cells(sections["全部事件"], "td")
    assert "安全模式：连续 5 次快速重启；暂停采集，控制台和上传保留" in events
    assert "city：多次失败后恢复上传（无应答）" not in events  # the old text's error is its own word
    assert "city：多次失败后恢复上传（timeout）" in events
    assert "存储已满：已丢弃尚未被所有平台确认的记录 10..20" in events
    assert "存储已满：已丢弃尚未被所有平台确认的记录 10..20" in _cells(sections["数据丢失与存储修复"], "td")
    english = [c for c in events if WORDS.search(c) and not CJK.search(c)]
    assert english == [], english
    assert "crew Li: monthly inspection, photos taken" in _cells(sections["巡检记录"], "td")
