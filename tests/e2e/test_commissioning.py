"""`nengjian commission` on the sim, from an empty gateway folder: four meters on two buses (on bus0 two
Modbus meters of different profiles, on bus1 a DL/T 645-2007 meter and a CJ/T 188 heat meter), driven
by an answers file and the platform's codes CSV, until every destination accepted a value. The report
is checked against the reference platform's records. Wrong answers (a code that breaks the scope rule,
a meter that stops answering) get a clear message, an exit code, and lose nothing already done.
The report's first screen, as Chromium shows it, is docs/images/commission-report.png
(NJ_UPDATE_DOC_IMAGES=1 refreshes it, as test_status_page does status-page.png)."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest
from browser import refresh_doc_image, screenshot
from nengjian_host import cli
from nengjian_host.sim.gateway import demo_site
from nengjian_host.sim.meters import Cjt188Meter, Dlt645Meter, SimBus
from nengjian_host.sim.meters.modbus_meters import SimMeter, SimModbusMeters, SimSteamMeter
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.wire import PtyWire
from plugin.simkit import SimClock

pytestmark = [pytest.mark.e2e]

ELEC, STEAM_HEAT = "00-00-0000-023300-11", "00-00-0000-023200-11"
ELEC_645, HEAT_188 = "01-00-0000-023300-11", "02-00-0000-023200-11"
CSV_HEAD = "code,name,scope,meter,point\n"
CSV_ROWS = [f"{ELEC},全厂用电,1,m1,energy_kwh", f"{STEAM_HEAT},全厂蒸汽热量,1,s11,heat_mj",
            f"{ELEC_645},一号工序用电,2,e1,energy_kwh", f"{HEAT_188},二号工序热水热量,,h1,heat_kwh"]
# Scope 1 (whole plant) with process 01: the platform's rule refuses it.
BAD_SCOPE_ROW = f"{ELEC_645},一号工序用电,1,e1,energy_kwh"


class Site:
    """Two simulated buses, a platform and a fast clock; the answers file and codes CSV in `tmp`."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.clock = SimClock(speed=12, period=60)
        self.platform = RefPlatform(db_path=str(tmp / "platform.sqlite"), period_s=60, clock=self.clock.now,
                                    admin_port=0).start()
        self.wire0, self.wire1 = PtyWire().start(), PtyWire().start()
        self.modbus = SimModbusMeters(self.wire0.meters_path, [SimMeter(1), SimSteamMeter(11)], speedup=12).start()
        self.heat = Cjt188Meter(0x20, "20330011223344", {"heat": "5200.00", "flow": "830.50"}, only_meter=True)
        self.meters645 = [Dlt645Meter("123456789012", {0x00010000: "3210.50"}, rates={0x00010000: "0.5"},
                                      only_meter=True),
                          self.heat]
        self.bus1 = SimBus(self.wire1.meters_path, self.meters645).__enter__()
        self.codes(CSV_ROWS)
        cfg = demo_site(self.platform.url + "/api/register")
        self.answers = {
            "gateway": {"board": "sim", "usb_serial": "NJ0001", "mac": "24:0a:c4:00:00:01", "sim_dir": "gw"},
            "site": {"name": "东莞测试厂", "gateway": "NJ-DG-0001"},
            "enterprise": cfg["enterprise"],
            "realtime_period_s": 60, "interval_s": 1,
            "buses": [{"name": "bus0", "port": "rs485_0", "expect": 2,
                       "scan": {"addresses": [1, 12], "bauds": [9600], "parities": ["N"], "dlt645": False,
                                "cjt188": False}},
                      {"name": "bus1", "port": "rs485_1", "expect": 2,
                       "scan": {"modbus": False, "dlt645_bauds": [2400], "cjt188": True}}],
            "meters": [{"bus": "bus0", "address": 1, "profile": "sim-energy", "id": "m1"},
                       {"bus": "bus0", "address": 11, "profile": "spirax-tva-steam", "id": "s11"},
                       {"bus": "bus1", "address": "123456789012", "id": "e1"},
                       {"bus": "bus1", "address": "20330011223344", "id": "h1"}],
            "codes_csv": "codes.csv",
            "destinations": cfg["destinations"],
            "first_value_timeout_s": 150,
            "platform_records": {"url": self.platform.admin_url + "/admin/records",
                                 "token": self.platform.admin_token},
            "sim": {"buses": {"0": self.wire0.gateway_path, "1": self.wire1.gateway_path}, "env": self.clock.env(),
                    # four protocols' drivers and profiles, as tests/e2e/test_energy_kinds.py: 320k is too little
                    "heap": "512k"},
        }
        (tmp / "answers.json").write_text(json.dumps(self.answers, ensure_ascii=False))

    def codes(self, rows):
        (self.tmp / "codes.csv").write_text(CSV_HEAD + "\n".join(rows) + "\n", encoding="utf-8")

    def commission(self, *extra):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["commission", "--answers", str(self.tmp / "answers.json"),
                             "--work", str(self.tmp / "work"), *extra])
        return code, out.getvalue(), err.getvalue()

    def close(self):
        self.bus1.__exit__(None, None, None)
        self.modbus.stop()
        self.wire0.close()
        self.wire1.close()
        self.platform.close()


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv("NENGJIAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NENGJIAN_INVENTORY", str(tmp_path / "home" / "inv.sqlite"))
    monkeypatch.setenv("NENGJIAN_KEYSTORE", str(tmp_path / "home" / "keys"))
    s = Site(tmp_path)
    yield s
    s.close()


def _state(site):
    return json.loads((site.tmp / "work" / "commission-state.json").read_text())


def test_commission_four_meters_two_buses_report_matches_platform(site):
    # A wrong answer first: the CSV's row breaks the scope rule. Exit 2, the scan and meters are kept.
    site.codes(CSV_ROWS[:2] + [BAD_SCOPE_ROW] + CSV_ROWS[3:])
    code, out, err = site.commission("--json")
    doc = json.loads(out)
    assert code == 2 and doc["stage"] == "codes", out
    assert "row 4" in doc["error"] and "scope 1" in doc["error"] and "统计范围" in doc["error_zh"]
    st = _state(site)
    assert st["done"] == ["find", "scan", "identify"]
    assert not (site.tmp / "gw" / "config" / "site.json").exists()  # nothing went to the gateway

    # Corrected, the same command goes on from the codes: no bus is scanned again.
    site.codes(CSV_ROWS)
    code, out, err = site.commission()
    assert code == 0, err
    assert "[scan] done before (kept)" in err and "[identify] done before (kept)" in err
    st = _state(site)
    assert st["done"] == ["find", "scan", "identify", "codes", "config", "flash", "provision", "first_values",
                          "report"]
    meters = {m["id"]: m for m in st["results"]["identify"]}
    assert {m: (meters[m]["profile"], str(meters[m]["address"])) for m in meters} == {
        "m1": ("sim-energy", "1"), "s11": ("spirax-tva-steam", "11"),
        "e1": ("dlt645-2007-generic", "123456789012"), "h1": ("cjt188-heat", "20330011223344")}
    assert meters["h1"]["identified_by"].startswith("scan reply")  # CJ/T 188 told its kind itself
    items = {i["code"]: i["scope"] for i in st["results"]["codes"]}
    assert items == {ELEC: 1, STEAM_HEAT: 1, ELEC_645: 2, HEAT_188: 2}  # an empty scope: from the code

    # The report's first values are the platform's accepted records, value for value.
    records = site.platform.records()
    html = (site.tmp / "work" / "report.html").read_text(encoding="utf-8")
    first = st["results"]["first_values"]["platform_first"]
    assert set(first) == {ELEC, STEAM_HEAT, ELEC_645, HEAT_188}
    for c, v in first.items():
        match = [r for r in records if r["dataCode"] == c and r["statDate"] == v["stat_date"]]
        assert match and match[0]["dataValue"] == v["value"], (c, v)
        row = re.search(r"<tr><td>%s</td><td>[^<]*</td><td>%s</td><td>%s</td>" % (
            re.escape(c), re.escape(v["stat_date"]), re.escape(str(v["value"]))), html)
        assert row, c
    assert "重点用能单位" in html and "数据采集项" in html and "统计类型" in html
    assert "@font-face" in html and "base64," in html  # the CJK glyphs travel with the file
    assert "NJ0001" in html and "24:0a:c4:00:00:01" in html and st["results"]["first_values"]["status"]["firmware"] in html
    pdf = site.tmp / "work" / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    # The picture docs/INSTALLER.md shows: the report's first screen, as a laptop's browser opens it.
    shot = screenshot(site.tmp, (site.tmp / "work" / "report.html").as_uri(), "commission-report.png", 1000, 1300)
    assert shot.stat().st_size < 300_000  # kept in the repository
    refresh_doc_image(shot, "commission-report.png")
    # What was refused on the way is in the report: the scope rule's refusal of row 4.
    assert "run stopped at codes" in html and "统计范围 1" in html
    # The report is the gateway's first ledger entry.
    assert st["results"]["report"]["ledger"]["kind"] == "commission"


def test_meter_silent_mid_scan_keeps_the_other_bus(site):
    site.bus1.meters.remove(site.heat)  # the heat meter stops answering
    code, out, err = site.commission("--json")
    doc = json.loads(out)
    assert code == 1 and doc["stage"] == "scan", out
    assert "bus1: 1 meter(s) answered, 2 expected" in doc["error"] and "接线" in doc["error_zh"]
    st = _state(site)
    assert st["done"] == ["find"] and set(st["results"]["scan"]) == {"bus0"}  # bus0's finds kept
    before = sum(m.requests for m in site.modbus.meters.values())

    site.bus1.meters.append(site.heat)  # wired again
    code, out, err = site.commission("--json", "--until", "identify")
    assert code == 0, out
    assert sum(m.requests for m in site.modbus.meters.values()) == before  # bus0 not scanned again
    st = _state(site)
    assert st["done"] == ["find", "scan", "identify"] and len(st["results"]["identify"]) == 4
