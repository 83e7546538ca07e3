"""Standard-coal equivalent (firmware/nengjian/values/tce.py): coefficients and their precedence, units,
the site's day total, the comprehensive-energy value, and the same on MicroPython."""

import json
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mpyrun import run_mpy
from nengjian.core import records
from nengjian.core.decimal import Decimal
from nengjian.values import tce
from nengjian.values.manual import cst_timestamp

ELEC = "00-00-0000-023300-11"
GAS = "00-00-0000-011500-11"
HEAT = "00-00-0000-023200-11"
ELEC_OUT = "00-00-0000-023300-30"
PROC = "01-00-0000-023300-11"
COAL = "00-00-0000-010100-11"
COMP = "00-00-0000-010000-11"
DAY1 = cst_timestamp(2024, 3, 1)


def site(tce_cfg=None, heat_unit="GJ"):
    profiles = {"e": {"points": {"kwh": {"unit": "kWh"}}}, "g": {"points": {"m3": {"unit": "m3"}}},
                "h": {"points": {"gj": {"unit": heat_unit}}}}
    return {
        "meters": [{"id": "me", "profile": "e"}, {"id": "mg", "profile": "g"}, {"id": "mh", "profile": "h"}],
        "items": [{"code": ELEC, "meter": "me", "point": "kwh", "scope": 1},
                  {"code": GAS, "meter": "mg", "point": "m3", "scope": 1},
                  {"code": HEAT, "meter": "mh", "point": "gj", "scope": 1},
                  {"code": PROC, "meter": "me", "point": "kwh", "scope": 2}],
        "_profiles": profiles,
        "tce": tce_cfg if tce_cfg is not None else {"item": COMP},
    }


def day_value(code, value, start=DAY1, scope=1, valid=True, inp=records.FIELD_INSTRUMENT, ts=None):
    return [records.VALUE, ts or start + 86400 + 60, code, records.DAY, start, value, valid, inp, scope]


def test_defaults_are_the_spec_reference_values():
    t = tce.Tce(site())
    assert t.coefficient("3300") == (Decimal(1229, -4), "GB/T 2589")
    assert t.coefficient("3200")[0] == Decimal(3412, -5)
    assert t.coefficient("0100")[0] == Decimal(7143, -4)
    assert t.coefficient("1500")[0] == Decimal(12143, -4)
    assert t.coefficient("2100")[0] == Decimal(14571, -4)
    assert t.coefficient("9900") == (None, None)


def test_site_coefficient_beats_default_and_platform_beats_both():
    t = tce.Tce(site({"coefficients": {"3300": 0.404, "1500": "1.3300"}}))
    assert t.coefficient("3300") == (Decimal(404, -3), "site")
    assert t.coefficient("1500") == (Decimal(13300, -4), "site")
    t.set_platform("3300", "0.1230")
    assert t.coefficient("3300") == (Decimal(1230, -4), "platform")


def test_units_convert_to_the_coefficient_base():
    t = tce.Tce(site())
    assert t.factor(HEAT) == Decimal(3412 * 1000, -5)  # GJ meter, coefficient per MJ
    t2 = tce.Tce(site(heat_unit="kWh"))
    assert t2.factor(HEAT) is None  # a heat item in kWh does not convert: not priced
    t3 = tce.Tce(site({"units": {"0100": "t"}}))
    assert t3.factor(COAL) == Decimal(7143 * 1000, -4)  # manual coal entered in tonnes


def test_what_counts_towards_the_site_total():
    t = tce.Tce(site())
    assert t.sign(ELEC, 1) == 1
    assert t.sign(PROC, 2) == 0  # a part of the whole plant: would count twice
    assert t.sign(ELEC_OUT, 1) == -1  # supplied outside
    assert t.sign(COMP, 1) == 0
    assert t.sign("00-00-0000-043300-11", 1) == 0  # non-energy products
    assert tce.Tce(site({"outputs": "ignore"})).sign(ELEC_OUT, 1) == 0


def test_comprehensive_day_value_when_every_item_is_in():
    out = []
    t = tce.Tce(site(), out.append, lambda k, x, c=None: None)
    t.observe(day_value(ELEC, Decimal(1000000, -2)))  # 10000.00 kWh -> 1229 kgce
    t.observe(day_value(PROC, Decimal(500000, -2), scope=2))
    t.observe(day_value(GAS, Decimal(2000, 0)))  # 2000 m3 -> 2428.6 kgce
    assert out == []
    t.observe(day_value(HEAT, Decimal(10, 0)))  # 10 GJ -> 341.2 kgce
    assert len(out) == 1
    r = out[0]
    assert r[2] == COMP and r[3] == records.DAY and r[4] == DAY1 and r[6] is True and r[8] == 1
    assert r[5] == Decimal(39988, -4)  # 3.9988 tce
    total = t.day_total(DAY1)
    assert total["complete"] and D(total["kgce"].text()) == D("3998.8")


def test_incomplete_day_goes_up_invalid_after_the_grace_and_late_values_revise_it():
    out, events = [], []
    t = tce.Tce(site(), out.append, lambda k, x, c=None: events.append(x))
    t.observe(day_value(ELEC, Decimal(1000000, -2)))
    t.tick(DAY1 + 86400 + tce.DAY_GRACE_S - 1)
    assert out == []
    t.tick(DAY1 + 86400 + tce.DAY_GRACE_S)
    assert [(r[5].text(), r[6]) for r in out] == [("1.2290", False)]
    assert GAS in events[-1] and HEAT in events[-1]
    t.observe(day_value(GAS, Decimal(2000, 0), ts=DAY1 + 2 * 86400))
    t.observe(day_value(HEAT, Decimal(10, 0), ts=DAY1 + 2 * 86400))
    assert [(r[5].text(), r[6]) for r in out][-1] == ("3.9988", True)
    assert "revised" in events[-1]


def test_manual_coal_counts_in_its_unit():
    out = []
    t = tce.Tce(site({"item": COMP, "units": {"0100": "t"}}), out.append, lambda k, x, c=None: None)
    for code, v in ((ELEC, Decimal(0, 0)), (GAS, Decimal(0, 0)), (HEAT, Decimal(0, 0))):
        t.observe(day_value(code, v))
    t.observe(day_value(COAL, Decimal(352, -1), inp=records.MANUAL))  # 35.2 t raw coal
    assert out[-1][5] == Decimal(251434, -4)  # 35.2 * 714.3 kgce = 25143.36 kgce -> 25.1434 tce


def test_state_survives_a_reboot(tmp_path):
    path = str(tmp_path / "tce.json")
    out = []
    t = tce.Tce(site(), out.append, lambda k, x, c=None: None, path)
    t.observe(day_value(ELEC, Decimal(1000000, -2)))
    t.observe(day_value(GAS, Decimal(2000, 0)))
    t = tce.Tce(site(), out.append, lambda k, x, c=None: None, path)
    t.observe(day_value(HEAT, Decimal(10, 0)))
    assert [r[5].text() for r in out] == ["3.9988"]


def test_torn_state_file_starts_the_open_totals_again_with_an_event(tmp_path):
    path = tmp_path / "tce.json"
    out, events = [], []
    t = tce.Tce(site(), out.append, lambda k, x, c=None: events.append((k, x)), str(path))
    t.observe(day_value(ELEC, Decimal(1000000, -2)))
    whole = path.read_text()
    assert whole.startswith('{"v": 1, ')
    path.write_text(whole[:-3])
    t = tce.Tce(site(), out.append, lambda k, x, c=None: events.append((k, x)), str(path))
    assert [k for k, _x in events] == ["tce"] and events[0][1].startswith("state unreadable (")
    assert "open totals start again" in events[0][1]
    assert t.sums == {} and t.sent == {}
    for code, v in ((ELEC, Decimal(1000000, -2)), (GAS, Decimal(2000, 0)), (HEAT, Decimal(10, 0))):
        t.observe(day_value(code, v))
    assert [r[5].text() for r in out] == ["3.9988"]


def test_state_files_of_older_firmware_still_load(tmp_path):
    path = tmp_path / "tce.json"
    k = "%d:%d" % (records.DAY, DAY1)
    path.write_text(json.dumps({"v": 1, "sums": {k: {ELEC: [1000000, -2, True], GAS: [2000, 0, True]}},
                                "sent": {}}))
    out, events = [], []
    t = tce.Tce(site(), out.append, lambda k, x, c=None: events.append(x), str(path))
    t.observe(day_value(HEAT, Decimal(10, 0)))
    assert [r[5].text() for r in out] == ["3.9988"] and events == []


def test_platform_coefficient_survives_a_restart_and_wins(tmp_path):
    path = str(tmp_path / "tce.json")
    cfg = site({"item": COMP, "coefficients": {"3300": "0.404"}})
    events = []
    t = tce.Tce(cfg, None, lambda k, x, c=None: events.append((k, x)), path)
    t.set_platform("3300", "0.1230")
    t.set_platform("3300", "0.123")  # the same value again: no event, no write
    t.set_platform("1500", 1.33)
    assert [k for k, _x in events] == ["tce", "tce"]
    assert events[0][1] == "platform coefficient for energy 3300: 0.1230 kgce/kWh (was 0.404, site)"
    assert events[1][1] == "platform coefficient for energy 1500: 1.33 kgce/m3 (was 1.2143, GB/T 2589)"
    t2 = tce.Tce(cfg, None, lambda k, x, c=None: events.append((k, x)), path)  # a restart
    assert t2.coefficient("3300") == (Decimal(1230, -4), "platform")
    assert t2.coefficient("1500") == (Decimal(133, -2), "platform")
    assert len(events) == 2
    t2.set_platform("3300", "0.1230")  # told again after the restart: nothing new
    assert len(events) == 2
    t2.set_platform("3300", "0.1231")  # changed
    assert events[-1] == ("tce", "platform coefficient for energy 3300: 0.1231 kgce/kWh (was 0.1230, platform)")
    assert tce.Tce(cfg, None, None, path).coefficient("3300") == (Decimal(1231, -4), "platform")


def test_a_platform_coefficient_makes_an_unpriced_item_expected(tmp_path):
    other = "00-00-0000-014000-11"  # an energy code with no reference value
    cfg = site()
    cfg["items"].append({"code": other, "meter": "mg", "point": "m3", "scope": 1})
    t = tce.Tce(cfg, None, None, str(tmp_path / "tce.json"))
    assert other not in t.expected  # no coefficient: a total does not wait for it
    t.set_platform("4000", "2")
    assert other in t.expected
    assert other in tce.Tce(cfg, None, None, str(tmp_path / "tce.json")).expected  # after a restart too


@given(st.decimals(min_value=0, max_value=10 ** 9, places=3, allow_nan=False), st.integers(0, 6))
def test_rounding_is_exact_half_up(x, places):
    d = Decimal(int(x.scaleb(3)), -3)
    r = tce.round_to(d, places)
    want = x.quantize(D(1).scaleb(-places), rounding="ROUND_HALF_UP")
    assert D(r.text()) == want


def test_config_floats_become_exact_decimals():
    assert tce.dec(0.1229) == Decimal(1229, -4)
    assert tce.dec(1e-05).text() == "0.000010000"
    assert tce.dec(3) == Decimal(3, 0)
    with pytest.raises(ValueError):
        tce.dec("1e3")


@pytest.mark.mpy
def test_day_total_on_micropython_equals_cpython():
    code = r"""
import json
from nengjian.core import records
from nengjian.values import tce
from nengjian.core.decimal import Decimal
cfg = json.loads(%r)
out = []
t = tce.Tce(cfg, out.append, lambda k, x, c=None: None)
t.set_platform("1500", 1.3300)
for code, m, e in (("%s", 1234567, -2), ("%s", 2000, 0), ("%s", 105, -1)):
    t.observe([records.VALUE, %d, code, records.DAY, %d, Decimal(m, e), True, 4, 1])
print(json.dumps([out[0][5].text(), t.day_total(%d)["kgce"].text()]))
""" % (json.dumps({k: v for k, v in site().items()}), ELEC, GAS, HEAT, DAY1 + 86460, DAY1, DAY1)
    got = json.loads(run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])
    # 12345.67 kWh * 0.1229 + 2000 m3 * 1.33 + 10.5 GJ * 34.12 = 1517.282843 + 2660 + 358.26
    assert got == ["4.5355", "4535.542843"]


def _site(**extra):
    from nengjian_host.sim.gateway import demo_site

    cfg = demo_site("http://127.0.0.1:1/api/register")
    cfg.update(extra)
    return cfg


def test_config_accepts_a_tce_section():
    from nengjian_host.common import siteconfig

    cfg = _site(tce={"coefficients": {"3300": 0.1229, "0300": "0.9714"}, "units": {"0100": "t"}, "item": COMP,
                     "decimals": 3})
    assert siteconfig.check(cfg) == []


@pytest.mark.parametrize("tce_cfg, why", [
    ({"coefficients": {"33": 0.1}}, "4-digit"),
    ({"coefficients": {"3300": 0}}, "above 0"),
    ({"coefficients": {"3300": "abc"}}, "above 0"),
    ({"units": {"0100": "kWh"}}, "does not convert"),
    ({"item": "00-00-0000-013300-11"}, "energy code 0000"),
    ({"item": "01-00-0000-010000-11"}, "process 00"),
    ({"item": "00-00-0000-023300-11"}, "metered item"),
    ({"outputs": "keep"}, "outputs"),
])
def test_config_refuses_bad_tce_settings(tce_cfg, why):
    from nengjian_host.common import siteconfig

    problems = siteconfig.check(_site(tce=tce_cfg))
    assert problems and why in problems[0], problems
