"""The commissioning flow's own rules, without a gateway: the codes CSV and the scope rule, the answers
and the questions, the resumable state, and the report (its embedded font and its fallback)."""

from __future__ import annotations

import json

import pytest
from nengjian_host import cli
from nengjian_host.install import commission, commission_report
from nengjian_host.install.commission import CommissionError, Context, State

MODBUS_FIND = {"protocol": "modbus-rtu", "address": 3, "baud": 9600, "bits": 8, "parity": "N", "stop": 1,
               "ok": True, "reply": "register 0 = 0000", "hex": ""}
METERS = [{"id": "m3", "bus": "bus0", "profile": "sim-energy", "address": 3, "protocol": "modbus-rtu",
           "line": {"baud": 9600, "bits": 8, "parity": "N", "stop": 1}}]


def ctx(tmp_path, answers=None, ask=None):
    return Context(answers=answers or {}, work=tmp_path / "work", base=tmp_path, ask=ask)


def write_csv(tmp_path, *rows, head="code,name,scope,meter,point"):
    (tmp_path / "codes.csv").write_text("\ufeff" + head + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.mark.parametrize("code,scope", [("00-00-0000-023300-11", 1), ("01-00-0000-023300-11", 2),
                                        ("01-02-0000-023300-11", 3), ("01-02-0003-023300-11", 4)])
def test_scope_from_the_code(code, scope):
    assert commission.scope_of(code) == scope


def test_codes_csv_as_the_platform_issues_it(tmp_path):
    write_csv(tmp_path, "00-00-0000-023300-11,全厂用电,1,m3,energy_kwh", "01-00-0000-023300-11,一号工序,,,")
    rows = commission.read_codes(tmp_path / "codes.csv")
    assert [(r["code"], r["scope"], r["meter"]) for r in rows] == [
        ("00-00-0000-023300-11", 1, "m3"), ("01-00-0000-023300-11", None, "")]
    write_csv(tmp_path, "x", head="编码")
    with pytest.raises(CommissionError) as e:
        commission.read_codes(tmp_path / "codes.csv")
    assert e.value.exit_code == cli.EXIT_USAGE and "code,name,scope,meter,point" in str(e.value)


def test_a_code_that_breaks_the_scope_rule_is_refused_by_row(tmp_path):
    write_csv(tmp_path, "00-00-0000-023300-11,全厂用电,1,m3,energy_kwh", "01-00-0000-023300-11,工序,1,m3,energy_kwh")
    with pytest.raises(CommissionError) as e:
        commission.stage_codes(ctx(tmp_path, {"codes_csv": "codes.csv"}), State(tmp_path), METERS)
    assert e.value.exit_code == cli.EXIT_USAGE and e.value.stage == "codes"
    assert "row 3" in str(e.value) and "scope 1 (whole plant) needs process 00" in str(e.value)
    assert "第 3 行" in e.value.zh


def test_codes_map_from_answers_or_the_installer_and_skip_is_refused(tmp_path):
    (tmp_path / "work").mkdir()
    write_csv(tmp_path, "00-00-0000-023300-11,全厂用电,,,", "01-00-0000-023300-11,工序,,,")
    asked = []

    def ask(zh, en, default):
        asked.append(en)
        return "skip"

    st = State(tmp_path / "work")
    items = commission.stage_codes(ctx(tmp_path, {"codes_csv": "codes.csv",
                                                  "map": {"00-00-0000-023300-11": "m3.energy_kwh"}}, ask), st, METERS)
    assert [(i["code"], i["meter"], i["point"], i["scope"]) for i in items] == [
        ("00-00-0000-023300-11", "m3", "energy_kwh", 1)]
    assert len(asked) == 1 and "01-00-0000-023300-11" in asked[0]
    assert st.doc["refused"][0]["what"] == "01-00-0000-023300-11"


def test_a_point_the_profile_lacks_is_refused(tmp_path):
    write_csv(tmp_path, "00-00-0000-023300-11,全厂用电,1,m3,heat_mj")
    with pytest.raises(CommissionError) as e:
        commission.stage_codes(ctx(tmp_path, {"codes_csv": "codes.csv"}), State(tmp_path), METERS)
    assert "has no point 'heat_mj'" in str(e.value)


def test_modbus_meter_profile_is_asked_and_checked(tmp_path):
    meters = commission.stage_identify(ctx(tmp_path, ask=lambda zh, en, d: "sim-energy"), State(tmp_path),
                                       {"bus0": [MODBUS_FIND]})
    assert meters[0]["profile"] == "sim-energy" and meters[0]["id"] == "m3"
    with pytest.raises(CommissionError) as e:
        commission.stage_identify(ctx(tmp_path, ask=lambda zh, en, d: "no-such-meter"), State(tmp_path),
                                  {"bus0": [MODBUS_FIND]})
    assert e.value.exit_code == cli.EXIT_USAGE and "no profile 'no-such-meter'" in str(e.value)
    with pytest.raises(CommissionError) as e:  # scripted: a missing answer names its key
        commission.stage_identify(ctx(tmp_path), State(tmp_path), {"bus0": [MODBUS_FIND]})
    assert "meters[bus0 3].profile" in str(e.value)


def test_gateway_by_serial_or_mac_never_a_tty_name(tmp_path):
    gw = {"board": "sim", "usb_serial": "NJ0001", "mac": "24:0a:c4:00:00:01", "sim_dir": "gw", "port": "/dev/ttyUSB0"}
    with pytest.raises(CommissionError) as e:
        commission.stage_find(ctx(tmp_path, {"gateway": gw}), State(tmp_path))
    assert e.value.exit_code == cli.EXIT_USAGE and "USB serial number or MAC" in str(e.value)
    gw.pop("port")
    found = commission.stage_find(ctx(tmp_path, {"gateway": gw}), State(tmp_path))
    assert found["mac"] == "24:0a:c4:00:00:01" and (tmp_path / "gw").is_dir()


def test_rerun_goes_on_from_the_stage_that_failed(tmp_path, capsys):
    answers = {"gateway": {"board": "sim", "usb_serial": "NJ0001", "mac": "240ac4000001x", "sim_dir": "gw"}}
    (tmp_path / "a.json").write_text(json.dumps(answers))
    argv = ["commission", "--answers", str(tmp_path / "a.json"), "--work", str(tmp_path / "work"), "--json"]
    assert cli.main(argv) == cli.EXIT_USAGE  # a MAC written wrong
    doc = json.loads(capsys.readouterr().out)
    assert doc["stage"] == "find" and "24:0a:c4" in doc["error_zh"]
    answers["gateway"]["mac"] = "24:0a:c4:00:00:01"
    (tmp_path / "a.json").write_text(json.dumps(answers))
    assert cli.main(argv + ["--until", "find"]) == cli.EXIT_OK
    st = json.loads((tmp_path / "work" / commission.STATE_FILE).read_text())
    assert st["done"] == ["find"] and st["refused"][0]["what"] == "run stopped at find"
    # The next run starts after `find`: a stage done is not asked again (the answers lost the gateway).
    (tmp_path / "a.json").write_text(json.dumps({}))
    assert cli.main(argv + ["--until", "identify"]) == cli.EXIT_USAGE
    doc = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert doc["stage"] == "scan"


def _state(tmp_path):
    cfg = tmp_path / "site.json"
    cfg.write_text(json.dumps({"site": {"name": "东莞测试厂", "gateway": "NJ-1"},
                               "enterprise": {"code": "91330000573973053F", "region": "441900"}}))
    return {"done": [], "refused": [{"stage": "codes", "what": "01-00-0000-023300-11", "why": "skip",
                                     "why_zh": "不由本网关采集"}],
            "results": {"find": {"usb_serial": "NJ0001", "mac": "24:0a:c4:00:00:01", "board": "sim"},
                        "identify": METERS, "config": {"path": str(cfg)},
                        "codes": [{"code": "00-00-0000-023300-11", "name": "全厂用电", "meter": "m3",
                                   "point": "energy_kwh", "scope": 1, "unit": "kWh"}],
                        "first_values": {"status": {"firmware": "0.1.0", "destinations": [], "links": []},
                                         "platform_first": {"00-00-0000-023300-11": {
                                             "value": 1.25, "stat_date": "2026-12-02 10:00:00", "stat_type": 0,
                                             "valid": True}}}}}


def test_report_embeds_the_glyphs_it_uses(tmp_path, monkeypatch):
    if commission_report.find_cjk_font() is None:
        pytest.skip("no CJK font on this machine (Debian: fonts-noto-cjk, `make browser`)")
    monkeypatch.setattr(commission_report, "print_pdf", lambda h, p: "not printed in this test")
    rep = commission_report.write(tmp_path, _state(tmp_path), {"kind": "commission", "seq": 7})
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "@font-face" in html and "data:font/otf;base64," in html and "子集" in html
    assert "东莞测试厂" in html and "全厂用电" in html and "1.25" in html and "实时 real-time" in html
    assert "不由本网关采集" in html and rep["pdf"] is None and rep["pdf_problem"]
    assert len(html) < 400_000  # a subset, not the 18 MB collection
    # Every Chinese character on the page has its glyph in the embedded subset.
    import base64
    import io
    import re

    from fontTools.ttLib import TTFont

    data = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)\)", html).group(1))
    cmap = TTFont(io.BytesIO(data)).getBestCmap()
    text = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    missing = {ch for ch in text if "\u4e00" <= ch <= "\u9fff" and ord(ch) not in cmap}
    assert not missing, missing


def test_report_without_a_cjk_font_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(commission_report, "find_cjk_font", lambda: None)
    monkeypatch.setattr(commission_report, "print_pdf", lambda h, p: "not printed in this test")
    commission_report.write(tmp_path, _state(tmp_path), {"kind": "visit", "seq": 7})
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "@font-face" not in html and "no CJK font" in html and "全厂用电" in html


# ---- what `nengjian provision` takes, from the answers or the installer
@pytest.fixture
def homes(tmp_path, monkeypatch):
    monkeypatch.setenv("NENGJIAN_INVENTORY", str(tmp_path / "home" / "inv.sqlite"))
    monkeypatch.setenv("NENGJIAN_KEYSTORE", str(tmp_path / "home" / "keys"))
    monkeypatch.setenv("NENGJIAN_CACHE", str(tmp_path / "cache"))


def _up_to_flash(tmp_path):
    """A work folder whose stages before `provision` are done: a sim gateway folder and its site config."""
    from nengjian_host.sim.gateway import demo_site

    (tmp_path / "work").mkdir()
    cfg = tmp_path / "work" / "site.json"
    cfg.write_text(json.dumps(demo_site("http://127.0.0.1:9/api")))
    st = State(tmp_path / "work")
    st.doc["done"] = ["find", "scan", "identify", "codes", "config", "flash"]
    st.put("find", {"board": "sim", "usb_serial": "NJ0001", "mac": "24:0a:c4:00:00:01",
                    "sim_dir": str(tmp_path / "gw"), "port": None})
    st.put("config", {"path": str(cfg)})


def _credentials(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from test_provision import _ca

    (tmp_path / "pki").mkdir()
    ca = _ca()[1].public_bytes(serialization.Encoding.PEM)
    (tmp_path / "pki" / "ca.pem").write_bytes(ca)
    assert cli.main(["ota", "keygen", "--id", "vendor-t", "--out", str(tmp_path / "keys")]) == 0
    return ca, (tmp_path / "keys" / "vendor-t.pub.json").read_bytes()


def test_the_answers_credentials_reach_the_provisioned_gateway(tmp_path, homes):
    ca, pub = _credentials(tmp_path)
    _up_to_flash(tmp_path)
    answers = {"credentials": {"ca": "pki/ca.pem", "ota_key": "keys/vendor-t.pub.json"}}
    doc = commission.run(ctx(tmp_path, answers), until="provision")
    assert doc["done"][-1] == "provision" and doc["results"]["provision"]["ok"]
    assert (tmp_path / "gw" / "config" / "ca.pem").read_bytes() == ca
    assert (tmp_path / "gw" / "config" / "ota_key.json").read_bytes() == pub
    assert doc["results"]["provision"]["credentials"]["ca"] == str(tmp_path / "pki" / "ca.pem")


def test_a_private_update_key_in_the_answers_is_refused_as_provision_refuses_it(tmp_path, homes):
    _credentials(tmp_path)
    _up_to_flash(tmp_path)
    with pytest.raises(CommissionError) as e:
        commission.run(ctx(tmp_path, {"credentials": {"ota_key": "keys/vendor-t.pem"}}), until="provision")
    assert e.value.stage == "provision" and "never the private" in str(e.value) and "私钥" in e.value.zh
    assert not (tmp_path / "gw" / "config").exists()
    with pytest.raises(CommissionError) as e:  # a file that is not there: named, relative to the answers file
        commission.run(ctx(tmp_path, {"credentials": {"ca": "pki/nothere.pem"}}), until="provision")
    assert "credentials.ca: cannot read %s" % (tmp_path / "pki" / "nothere.pem") in str(e.value)


def test_the_installer_is_asked_each_credential_and_enter_skips(tmp_path, homes):
    ca, _pub = _credentials(tmp_path)
    _up_to_flash(tmp_path)
    asked = []

    def ask(zh, en, default):
        asked.append(en)
        return "pki/ca.pem" if "CA certificate" in en else ""

    commission.run(ctx(tmp_path, ask=ask), until="provision")
    assert len(asked) == 3 and "Enter" in asked[1] and "mutual TLS" in asked[1]
    assert (tmp_path / "gw" / "config" / "ca.pem").read_bytes() == ca
    assert not (tmp_path / "gw" / "config" / "ota_key.json").exists()


# ---- the firmware: a file relative to the answers file, or a cached version
def test_firmware_by_path_or_by_cached_version(tmp_path, homes):
    import fakefw
    from nengjian_host.common import bundle
    from nengjian_host.install import flash

    board = bundle.load_board("esp32s3_4g")
    (tmp_path / "fw").mkdir()
    given = fakefw.micropython_bin(tmp_path / "fw" / "mp.bin", "esp32s3", "8MB", "v1.29.0")
    assert commission.firmware_file(ctx(tmp_path, {"firmware": "fw/mp.bin"}), board) == str(given)
    flash.resolve_firmware(str(given), board)  # `nengjian flash --firmware` caches what it is given
    assert commission.firmware_file(ctx(tmp_path, {"firmware": "1.29.0"}), board).startswith(
        str(tmp_path / "cache" / "firmware" / "esp32s3"))
    assert commission.firmware_file(ctx(tmp_path, {"firmware": "v1.29.0"}), board) is not None
    with pytest.raises(CommissionError) as e:
        commission.firmware_file(ctx(tmp_path, {"firmware": "fw/other.bin"}), board)
    assert e.value.stage == "flash" and e.value.exit_code == cli.EXIT_USAGE
    assert "relative to the answers file" in str(e.value) and str(tmp_path / "fw" / "other.bin") in str(e.value)
    assert "mp.bin" in str(e.value) and "相对于应答文件" in e.value.zh


# ---- interactive: the board the gateway says, the enterprise and destinations field by field
def test_the_board_defaults_to_the_one_the_gateway_reports(tmp_path, monkeypatch):
    gw = {"usb_serial": "NJ0001", "mac": "24:0a:c4:00:00:01"}
    monkeypatch.setattr(commission, "_find_port", lambda serial, mac: "/dev/ttyACM7")
    monkeypatch.setattr(commission, "reported_board", lambda port: "esp32_eth")
    questions = []

    def ask(zh, en, default):
        questions.append((en, default))
        return ""

    found = commission.stage_find(ctx(tmp_path, {"gateway": gw}, ask), State(tmp_path))
    assert found["board"] == "esp32_eth" and found["port"] == "/dev/ttyACM7"
    assert questions == [("the gateway's board (esp32_eth, esp32s3_4g, sim)", "esp32_eth")]


def test_an_unknown_board_is_asked_from_the_list_without_a_default(tmp_path, monkeypatch):
    gw = {"usb_serial": "NJ0001", "mac": "24:0a:c4:00:00:01", "sim_dir": "gw"}
    monkeypatch.setattr(commission, "_find_port", lambda serial, mac: None)
    with pytest.raises(CommissionError) as e:  # Enter: no default to fall back on
        commission.stage_find(ctx(tmp_path, {"gateway": gw}, lambda zh, en, d: ""), State(tmp_path))
    assert "gateway.board" in str(e.value)
    answers = iter(["esp33", "sim"])
    asked = []

    def ask(zh, en, default):
        asked.append(en)
        return next(answers)

    assert commission.stage_find(ctx(tmp_path, {"gateway": gw}, ask), State(tmp_path))["board"] == "sim"
    assert asked[1].startswith("no board 'esp33': pick one of esp32_eth, esp32s3_4g, sim; try again")


def test_enterprise_and_destination_asked_field_by_field_with_the_validators_checks(tmp_path):
    replies = iter(["91330000573973053A", "91330000573973053F", "4419", "441900",  # enterprise
                    "", "", "ftp://platform.example/api", "https://platform.example/api", "", ""])  # destination
    asked = []

    def ask(zh, en, default):
        asked.append((zh, en))
        return next(replies)

    c = ctx(tmp_path, ask=ask)
    assert commission.ask_enterprise(c) == {"code": "91330000573973053F", "region": "441900"}
    assert "check character is 'A', expected 'F'" in asked[1][1] and "校验" in asked[1][0]
    assert asked[3][1].startswith("enterprise.region: '4419' is shorter than 6")
    assert commission.ask_destinations(c) == [{"name": "city", "profile": "ndrc-json",
                                              "url": "https://platform.example/api", "ca": "ca.pem"}]
    assert "must start with http:// or https://" in asked[7][1] and "应以 http://" in asked[7][0]
    with pytest.raises(CommissionError) as e:  # scripted: a wrong field in the file names itself
        commission.ask_enterprise(ctx(tmp_path, {"enterprise": {"code": "91330000573973053A"}}))
    assert "enterprise.code" in str(e.value)


def test_the_identified_by_column_is_in_chinese_and_english(tmp_path, monkeypatch):
    """How each meter was identified reads like the rest of the report: Chinese, then English, the meter's
    scan reply said in Chinese too (the HTML is what the PDF prints)."""
    import re

    monkeypatch.setattr(commission_report, "print_pdf", lambda h, p: "not printed in this test")
    state = _state(tmp_path)
    state["results"]["identify"] = [
        dict(METERS[0], identified_by="answer"),
        dict(METERS[0], id="d1", protocol="dlt645-2007", address="000000001234", profile="dlt645-energy",
             identified_by="scan reply (read address answered)"),
        dict(METERS[0], id="w1", protocol="cjt188", address="00000000000017", profile="cjt188-water",
             identified_by="scan reply (meter type 0x10)")]
    commission_report.write(tmp_path, state, {"kind": "commission", "seq": 7})
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    rows = {r.split("</td>")[0][len("<td>"):]: r for r in re.findall(r"<tr>(<td>.*?)</tr>", page)}
    cell = {m: re.findall(r"<td>(.*?)</td>", rows[m])[5] for m in ("m3", "d1", "w1")}
    assert cell["m3"] == "安装人员指定 / the installer&#x27;s answer", cell
    assert cell["d1"] == "扫描应答（读通信地址有应答） / scan reply (read address answered)", cell
    assert cell["w1"] == "扫描应答（表计类型 0x10） / scan reply (meter type 0x10)", cell
