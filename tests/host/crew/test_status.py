"""`nengjian status` as a person reads it: which link carries the data, a standby link that is down."""

import io
import json

from nengjian_host.crew.status import render
from rich.console import Console


def _text(st: dict) -> str:
    out = Console(record=True, width=140, color_system=None, file=io.StringIO())
    render(st, console=out)
    return out.export_text()


def test_the_link_carrying_the_data_is_named():
    st = {"gateway_id": "NJ-1", "mode": "run",
          "links": [{"link": "eth", "kind": "ethernet", "up": False, "error": "carrier gone"},
                    {"link": "4g", "kind": "cellular", "up": True, "error": ""}],
          "network": {"active": "4g", "up": True, "stats": {}}}
    rows = {line.split()[1]: line for line in _text(st).splitlines() if line.startswith("│ ")}
    assert "carries the data" in rows["4g"] and "carries the data" not in rows["eth"]
    assert "down" in rows["eth"] and "error=carrier gone" in rows["eth"]


def test_a_point_the_meter_refuses_is_shown_beside_the_values():
    st = {"gateway_id": "NJ-1", "mode": "run", "time": 1700000000,
          "meters": [{"id": "e1", "bus": "bus0", "offline": False, "failures": 0, "last_ok": 1700000000,
                      "last_error": "", "values": {"energy_kwh": "1234.56"}, "stats": {"ok": 3, "failed": 0},
                      "unsupported": {"energy_reverse_kwh": "meter error 0x02 no_such_data"}}]}
    row = [line for line in _text(st).splitlines() if line.startswith("│ e1")][0]
    assert "energy_kwh=1234.56" in row and "unsupported: energy_reverse_kwh" in row and "ok" in row


def test_the_score_is_shown_per_destination_and_period_with_the_items_below_90_percent():
    item = [81, 97, None]
    ok = [97, 97, 0.0]
    day = {"period": "2026-12-01", "start": 1796054400, "accepted": 178, "due": 194, "on_time": 98,
           "completeness": 91.8, "timeliness": 55.1, "apart_max": 0.0, "misaligned": 0,
           "items": {"00-00-0000-023300-11": ok, "01-00-0000-023300-11": item}}
    month = dict(day, period="2026-12", apart_max=None)
    st = {"gateway_id": "NJ-1", "mode": "run", "time": 1796140800,
          "destinations": [{"name": "city", "failing": False, "backlog": 0, "last_ok": 0, "stats": {"sent": 1},
                            "quality": {"since": 0, "days": [day], "months": [month], "alarms": [], "too_old": 0}}]}
    rows = [line for line in _text(st).splitlines() if line.startswith("│ city") and "/194" in line]
    assert len(rows) == 2
    assert "2026-12-01" in rows[0] and "178/194" in rows[0] and "91.8 %" in rows[0] and "55.1 %" in rows[0]
    assert "01-00-0000-023300-11" in rows[0] and "00-00-0000-023300-11" not in rows[0]
    assert "2026-12" in rows[1]


def _scored(invalid):
    day = {"period": "2026-12-01", "start": 1796054400, "accepted": 90, "due": 97, "on_time": 90,
           "completeness": 92.8, "timeliness": 100.0, "apart_max": None, "misaligned": 0, "items": {}}
    quality = {"since": 0, "days": [day], "months": [dict(day, period="2026-12")], "alarms": [], "too_old": 0}
    if invalid is not None:
        quality["invalid"] = invalid
    return {"gateway_id": "NJ-1", "mode": "run", "time": 1796140800,
            "destinations": [{"name": "city", "failing": False, "backlog": 0, "last_ok": 0, "stats": {"sent": 1},
                              "quality": quality}]}


def test_the_values_sent_invalid_are_shown_with_the_score_in_both_languages_and_json(monkeypatch, capsys):
    """nengjian.uplink.quality counts a value sent as invalid (an estimate) apart: not accepted, in `invalid`."""
    from nengjian_host import cli
    from nengjian_host.common.messages import set_lang
    from nengjian_host.crew import status

    try:
        set_lang("zh")
        zh = _text(_scored(7))
    finally:
        set_lang("en")
    en = _text(_scored(7))
    assert "invalid" in en and "无效值" in zh
    rows = [line for line in en.split("data quality", 1)[1].splitlines() if line.startswith("│ city")]
    cells = [[c.strip() for c in r.split("│")[1:-1]] for r in rows]
    head = [line for line in en.split("data quality", 1)[1].splitlines() if line.startswith("┃ destination")][0]
    col = [c.strip() for c in head.split("┃")[1:-1]]
    at = col.index("invalid")
    assert [c[at] for c in cells] == ["7", ""], cells  # once per destination: a count since boot, not per period
    old = [line for line in _text(_scored(None)).split("data quality", 1)[1].splitlines() if line.startswith("│ city")][0]
    assert [c.strip() for c in old.split("│")[1:-1]][at] == "-"  # firmware that does not count them

    monkeypatch.setattr(status, "fetch", lambda *a, **k: ("/dev/ttyACM0", _scored(7)))
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["destinations"][0]["quality"]["invalid"] == 7


def test_the_largest_free_heap_block_is_shown_beside_the_free_heap():
    """Fragmentation: a gateway with 100 KiB free may have no block of 8 KiB for a TLS record."""
    st = {"gateway_id": "NJ-1", "mode": "run", "heap_free": 102400, "heap_max_free": 7168}
    assert "heap 100.0 KiB free (largest block 7.0 KiB)" in _text(st)
    assert "largest" not in _text({"gateway_id": "NJ-1", "mode": "run", "heap_free": 102400})  # older firmware


def test_refills_and_meter_clocks_are_shown_in_both_languages():
    from nengjian_host.common.messages import set_lang

    day = 1796054400  # 2026-12-01 00:00 CST
    st = {"gateway_id": "NJ-1", "mode": "run", "time": day + 86400 + 3600,
          "meters": [{"id": "e1", "bus": "bus0", "values": {}, "stats": {},
                      "memory": {"refills": 2, "refilled_at": day + 86400 + 600, "clock_offset_s": -3,
                                 "clock_checked_at": day + 86400 + 1200, "clock_set_day": day}},
                     {"id": "m2", "bus": "bus0", "values": {}, "stats": {},
                      "memory": {"refills": 0, "refilled_at": None, "clock_offset_s": None,
                                 "clock_checked_at": None, "clock_set_day": None}},
                     {"id": "p3", "bus": "bus1", "values": {}, "stats": {}}]}
    try:
        set_lang("en")
        en = _text(st)
        set_lang("zh")
        zh = _text(st)
    finally:
        set_lang("en")
    rows = [line for line in en.split("meter memory", 1)[1].splitlines() if line.startswith("│ ")]
    e1 = next(r for r in rows if r.startswith("│ e1"))
    cells = [c.strip() for c in e1.strip("│ ").split("│")]
    assert cells == ["e1", "2", "2026-12-02 00:10:00", "-3 s", "2026-12-02 00:20:00", "2026-12-01"], cells
    m2 = next(r for r in rows if r.startswith("│ m2"))
    assert m2.count("never") == 4, m2  # nothing refilled, its clock never read nor set
    assert not any(r.startswith("│ p3") for r in rows)  # no memory work: not listed
    assert "电表存储" in zh and "补抄" in zh and "从未" in zh and "-3 秒" in zh
    assert "meter memory" not in zh


def _safe_status(e) -> dict:
    """The status a gateway in safe mode answers for the ConfigError `e` (nengjian.app._config_why, through
    JSON as the console sends it)."""
    import json

    why = {"code": "config", "problems": getattr(e, "problems", None) or [str(e)],
           "codes": getattr(e, "codes", None) or [], "more": getattr(e, "more", 0)}
    return json.loads(json.dumps({"gateway_id": "NJ-1", "mode": "safe", "safe_reason": "config: %s" % e,
                                  "safe": why, "alarms": ["safe mode: config: %s" % e]}))


def _config_error(cfg):
    import pytest
    from nengjian import config as fw_config
    from nengjian.meters import profile
    from nengjian_host.common import paths

    with pytest.raises(fw_config.ConfigError) as e:
        fw_config.check(cfg, lambda n: profile.load(str(paths.PROFILES), n))
    return e.value


def test_the_safe_mode_reason_is_said_in_chinese_and_english():
    import re

    from nengjian_host.common import messages
    from nengjian_host.sim.gateway import demo_site

    cfg = demo_site("http://127.0.0.1:1/api/register")
    cfg["meters"][1]["bus"] = "bus9"
    cfg["meters"][0]["profile"] = "nowhere"
    st = _safe_status(_config_error(cfg))
    messages.set_lang("zh")
    try:
        text = _text(st)
    finally:
        messages.set_lang("en")
    lines = text.splitlines()
    zh = lines.index([x for x in lines if x.startswith("安全模式：站点配置不可用")][0])
    en = lines.index([x for x in lines if x.startswith("safe mode: the site config cannot be used")][0])
    assert zh < en, text  # the chosen language first, the English below it for the vendor's support
    assert "meters[1].bus：没有名为 'bus9' 的总线" in text and "meters[1].bus: no bus named 'bus9'" in text, text
    assert "没有仪表模板 'nowhere'" in text, text
    assert not any(re.search(r"[A-Za-z]{3,} [a-z]{3,}", x) for x in lines[zh:en] if "nengjian provision" not in x), text


def test_a_missing_config_and_a_dead_volume_are_said_in_chinese_too():
    from nengjian_host.common import messages
    from nengjian_host.crew.status import safe_texts

    missing = {"mode": "safe", "safe_reason": "config: /config/site.json: cannot read ([Errno 2] ENOENT)",
               "safe": {"code": "config", "problems": ["/config/site.json: cannot read ([Errno 2] ENOENT)"],
                        "codes": [], "more": 0}}
    assert [x.zh for x in safe_texts(missing)][1] == "  /config/site.json：读不了文件（[Errno 2] ENOENT）"
    volume = {"mode": "safe", "safe_reason": "data volume will not mount (x)", "safe": {"code": "volume",
                                                                                         "args": ["[Errno 19]"]}}
    assert safe_texts(volume)[0].zh.startswith("安全模式：数据分区无法挂载（[Errno 19]）")
    old = {"mode": "safe", "safe_reason": "config: something"}  # a gateway that gives no codes
    assert safe_texts(old)[0].zh == messages.MESSAGES["out.status.safe.other"][1].format(reason="config: something")


def test_the_last_errors_of_meters_and_destinations_are_said_in_chinese_by_their_codes():
    from nengjian_host.common.messages import set_lang

    st = {"gateway_id": "NJ-1", "mode": "run", "time": 1700000000,
          "meters": [{"id": "m2", "bus": "bus0", "offline": True, "failures": 4, "last_ok": 1700000000,
                      "last_error": "no reply", "last_error_code": "meter_error.timeout", "values": {},
                      "stats": {"ok": 3, "failed": 4}},
                     {"id": "m3", "bus": "bus0", "offline": False, "failures": 1, "last_ok": 1700000000,
                      "last_error": "incomplete reply (3 bytes)", "values": {}, "stats": {}}],  # an older gateway
          "destinations": [{"name": "prov", "failing": True, "last_ok": 0, "backlog": 4, "stats": {},
                            "last_error": "HTTP 503, unreadable answer: busy", "last_error_code": "dest_error"}]}
    try:
        set_lang("zh")
        zh = _text(st)
        set_lang("en")
        en = _text(st)
    finally:
        set_lang("en")
    rows = {line.split()[1]: line for line in zh.splitlines() if line.startswith("│ ")}
    assert "无应答" in rows["m2"] and "no reply" not in rows["m2"]
    assert "incomplete reply (3 bytes)" in rows["m3"]  # no code: as the gateway wrote it
    assert "HTTP 503，平台应答无法解读：busy" in rows["prov"]
    assert "no reply" in en and "HTTP 503, unreadable answer: busy" in en and "无应答" not in en
