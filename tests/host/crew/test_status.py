"""`nengjian status` as a person reads it: which link carries the data, a standby link that is down."""

import io

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
