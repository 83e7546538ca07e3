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
