"""Meter profiles shipped in profiles/meters: every one loads, passes the gateway's own checks and
the full `jsonschema` validator, names its source, and gives a read plan (Modbus) or a driver
(DL/T 645, CJ/T 188, pulse) for all of its points."""

import copy
import json

import jsonschema
import pytest
from mpyrun import run_mpy
from nengjian.config import schema, schemas
from nengjian.meters import cjt188_meter, dlt645_meter, profile, pulse
from nengjian.proto import regvalue
from nengjian_host.common.paths import PROFILES

PROFILE_DIR = PROFILES
NAMES = sorted(p.stem for p in PROFILE_DIR.glob("*.json"))
REQUIRED = ["chint-dtsu666", "acrel-adl400", "acrel-dtsd1352", "eastron-sdm630", "dlt645-2007-generic",
            "dlt645-1997-generic", "cjt188-water", "cjt188-gas", "cjt188-heat", "vortex-gas-totaliser"]
VALIDATOR = jsonschema.Draft202012Validator(schemas.PROFILE)


def test_schemas_are_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schemas.PROFILE)
    jsonschema.Draft202012Validator.check_schema(schemas.SITE)


def test_the_promised_profiles_are_shipped():
    assert set(REQUIRED) <= set(NAMES)
    assert any(json.loads((PROFILE_DIR / f"{n}.json").read_text())["protocol"] == "pulse" for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_profile_loads_validates_and_plans(name):
    raw = json.loads((PROFILE_DIR / f"{name}.json").read_text())
    VALIDATOR.validate(raw)  # the full validator agrees with the gateway's subset
    prof = profile.load(str(PROFILE_DIR), name)
    assert prof["id"] == name
    assert prof.get("source"), "a profile names where its register map comes from"
    names = sorted(prof["points"])
    proto = prof["protocol"]
    if proto == "modbus-rtu":
        blocks = profile.plan_modbus(prof, names, ratio=40)
        limit = prof.get("max_registers", 60)
        planned = [p[0] for b in blocks for p in b.points]
        assert sorted(planned) == names
        for b in blocks:
            assert 1 <= b.count <= (2000 if b.fc in (1, 2) else limit)
        # one read per block is what a poll costs
        assert len(blocks) <= len(names)
    elif proto.startswith("dlt645"):
        drv = dlt645_meter.Dlt645Meter({"address": "123456789012"}, prof, names)
        assert sum(len(p) for _, p in drv.reads) == len(names)
        for _di, points in drv.reads:
            for _, off, nbytes, _, _, _, _ in points:
                assert nbytes >= 1 and off >= 0
    elif proto == "cjt188":
        drv = cjt188_meter.Cjt188Meter({"address": "12345678901234"}, prof, names)
        assert len(drv.points) == len(names)
        for p in prof["points"].values():
            if "unit" in p and cjt188_meter.FIELDS[p["field"]][1]:
                assert p["unit"] in cjt188_meter.UNITS
    elif proto == "pulse":
        assert prof["pulse"]["per_unit"] >= 1
        assert {p["field"] for p in prof["points"].values()} <= {"total", "pulses"}
    else:
        pytest.fail("unknown protocol " + proto)


# Profiles built from manuals or register lists that leave facts open say which, in the words
# "*unsure*", so an installer knows what to check against the meter's display.
UNSURE = ["spirax-tva-steam", "coriolis-oil-flowmeter", "cjt188-water", "cjt188-gas", "cjt188-heat"]


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("sim-")])
def test_profile_says_where_it_comes_from_and_what_is_unsure(name):
    raw = json.loads((PROFILE_DIR / f"{name}.json").read_text())
    assert len(raw.get("source", "")) >= 20, "a profile names the document its map comes from"
    if name in UNSURE:
        assert "*unsure*" in raw["note"] or "*unsure*" in raw["source"]


def test_modbus_profiles_do_not_overlap_points():
    for name in NAMES:
        prof = profile.load(str(PROFILE_DIR), name)
        if prof["protocol"] != "modbus-rtu":
            continue
        used = {}
        for pname, p in prof["points"].items():
            n = 1 if p["type"] == "bit" else regvalue.registers(p["type"])
            for r in range(p["address"], p["address"] + n):
                key = (p["fc"], r)
                assert key not in used, "%s: %s and %s share register %d" % (name, pname, used[key], r)
                used[key] = pname


BAD = [
    ({"points": {}}, "points"),
    ({"protocol": "bacnet"}, "protocol"),
    ({"points": {"e": {"fc": 3, "address": 0, "type": "u32", "order": "ADCB"}}}, "order"),
    ({"points": {"e": {"fc": 5, "address": 0, "type": "u16"}}}, "fc"),
    ({"points": {"e": {"fc": 3, "address": 70000, "type": "u16"}}}, "address"),
    ({"points": {"e": {"fc": 3, "address": 0, "type": "u16", "colour": "red"}}}, "colour"),
    ({"points": {"e": {"fc": 3, "address": 0, "type": "u16", "decimals": 12}}}, "decimals"),
    ({"line": {"baud": 1234}}, "baud"),
    ({"protocol": "dlt645-2007", "points": {"e": {"di": "0001000G"}}}, "di"),
]


@pytest.mark.parametrize("change,where", BAD)
def test_both_validators_reject_bad_profiles(change, where):
    base = {"id": "t", "protocol": "modbus-rtu", "points": {"e": {"fc": 3, "address": 0, "type": "u16"}}}
    prof = copy.deepcopy(base)
    prof.update(change)
    with pytest.raises(ValueError) as e:
        profile.check(prof)
    assert where in str(e.value)
    if where != "points":  # an empty points object is the gateway's own rule
        assert not VALIDATOR.is_valid(prof)


def test_protocol_rules_beyond_the_schema():
    for prof in (
        {"id": "t", "protocol": "dlt645-2007", "points": {"e": {"di": "9010"}}},  # 1997 DI in 2007
        {"id": "t", "protocol": "dlt645-1997", "points": {"e": {"di": "00010000"}}},
        {"id": "t", "protocol": "cjt188", "points": {"e": {"field": "total"}}},
        {"id": "t", "protocol": "pulse", "points": {"e": {"field": "flow"}}},
        {"id": "t", "protocol": "modbus-rtu", "points": {"e": {"fc": 3, "type": "u16"}}},
    ):
        assert VALIDATOR.is_valid(prof)
        with pytest.raises(ValueError):
            profile.check(prof)
    with pytest.raises(ValueError):  # a DI outside the codec's table needs its width
        dlt645_meter.Dlt645Meter({"address": "1"}, {"id": "t", "protocol": "dlt645-2007",
                                                    "points": {"e": {"di": "04000101"}}}, ["e"])


def test_site_schema_accepts_the_new_meter_fields():
    site = json.loads(json.dumps({
        "version": 1, "enterprise": {"code": "91330000573973053F", "region": "441900"},
        "buses": [{"name": "b", "port": "rs485_0"}],
        "meters": [{"id": "e1", "bus": "b", "profile": "dlt645-2007-generic", "address": "123456789012",
                    "preamble": 0, "ratio": 40, "line": {"baud": 2400, "parity": "E"}},
                   {"id": "g1", "bus": "b", "profile": "pulse-gas", "address": "0",
                    "pulse": {"per_unit": 100, "start": "1234.56", "persist_s": 30, "persist_pulses": 10,
                              "debounce_ms": 30, "edge": "falling", "decimals": 2}}],
        "items": [{"code": "00-00-0000-023300-11", "meter": "e1", "point": "energy_kwh", "scope": 1}],
        "destinations": [{"name": "c", "profile": "ndrc-json", "url": "http://x/api"}]}))
    jsonschema.validate(site, schemas.SITE)
    schema.validate(site, schemas.SITE)
    site["meters"][1]["pulse"]["bogus"] = 1
    assert not jsonschema.Draft202012Validator(schemas.SITE).is_valid(site)
    with pytest.raises(schema.SchemaError):
        schema.validate(site, schemas.SITE)


def test_pulse_value_is_exact():
    assert pulse.pulse_value(12345, 100, 2, 0).text() == "123.45"
    assert pulse.pulse_value(7, 3200, 5, 0).text() == "0.00219"  # 7 / 3200 = 0.0021875 -> rounded
    assert pulse.pulse_value(32, 3200, 5, 100000).text() == "1.01000"
    assert profile.parse_decimal("-12.05") == (-1205, -2)
    assert profile.parse_decimal(7) == (7, 0)
    with pytest.raises(ValueError):
        profile.parse_decimal("1.2.3")


@pytest.mark.mpy
def test_every_profile_loads_on_micropython():
    code = """
import os
from nengjian.meters import profile
from nengjian.meters import dlt645_meter, cjt188_meter
names = sorted(f[:-5] for f in os.listdir('%s') if f.endswith('.json'))
for n in names:
    p = profile.load('%s', n)
    pts = sorted(p['points'])
    if p['protocol'] == 'modbus-rtu':
        blocks = profile.plan_modbus(p, pts)
        print(n, 'modbus', len(blocks))
    elif p['protocol'].startswith('dlt645'):
        d = dlt645_meter.Dlt645Meter({'address': '1'}, p, pts)
        print(n, p['protocol'], len(d.reads))
    elif p['protocol'] == 'cjt188':
        cjt188_meter.Cjt188Meter({'address': '1'}, p, pts)
        print(n, 'cjt188', len(pts))
    else:
        print(n, p['protocol'], len(pts))
""" % (PROFILE_DIR, PROFILE_DIR)
    lines = run_mpy(code, heap="512k").stdout.split("\n")
    assert [x.split()[0] for x in lines if x] == NAMES


@pytest.mark.mpy
def test_factory_builds_a_driver_per_protocol_and_names_config_errors(tmp_path):
    code = r"""
import json
from nengjian import config
from nengjian.meters import factory, profile
class Board:
    NAME = 'test'
    DATA_MOUNT = '%(tmp)s'
    def rs485_ports(self):
        return {'rs485_0': lambda: object()}
    def pulse_inputs(self):
        import board
        return {'pulse_0': lambda: board.SimPin('%(tmp)s/pin0')}
    def clock_trusted(self):
        return True
def site(meters, items):
    return {'version': 1, 'enterprise': {'code': '91330000573973053F', 'region': '441900'},
            'buses': [{'name': 'b', 'port': 'rs485_0'}], 'meters': meters, 'items': items,
            'destinations': [{'name': 'c', 'profile': 'ndrc-json', 'url': 'http://x/api'}]}
M = [{'id': 'm', 'bus': 'b', 'profile': 'acrel-adl400', 'address': 3, 'ratio': 40},
     {'id': 'e', 'bus': 'b', 'profile': 'dlt645-2007-generic', 'address': '123456789012'},
     {'id': 'o', 'bus': 'b', 'profile': 'dlt645-1997-generic', 'address': '000000000003'},
     {'id': 'w', 'bus': 'b', 'profile': 'cjt188-heat', 'address': '12345678901234'},
     {'id': 'g', 'bus': 'b', 'profile': 'pulse-gas', 'address': '0'}]
I = [{'code': '0%%d-00-0000-023300-11' %% i, 'meter': m['id'], 'point': p, 'scope': 2}
     for i, (m, p) in enumerate(zip(M, ['energy_kwh', 'energy_kwh', 'energy_kwh', 'heat_kwh', 'volume_m3']))]
load = lambda n: profile.load('%(profiles)s', n)
cfg = config.check(json.loads(json.dumps(site(M, I))), load)
pollers = factory.build_pollers(cfg, Board(), None, None)
print([(m.id, type(m.driver).__name__, m.line.baud, m.line.parity) for m in pollers[0].meters])
print(pollers[0].meters[0].driver.blocks[0].points[0][6])
for bad in ({'address': '1234567890123'}, {'profile': 'pulse-gas', 'address': '7'}):
    m = dict(M[1]); m.update(bad)
    try:
        cfg = config.check(json.loads(json.dumps(site([m], [dict(I[1], meter='e', point=('volume_m3' if bad.get('profile') else 'energy_kwh'))]))), load)
        factory.build_pollers(cfg, Board(), None, None)
        print('no error')
    except config.ConfigError as e:
        print('ConfigError', e)
""" % {"tmp": tmp_path, "profiles": PROFILE_DIR}
    out = run_mpy(code, heap="512k").stdout.splitlines()
    assert out[0] == ("[('m', 'ModbusMeter', 9600, 'N'), ('e', 'Dlt645Meter', 2400, 'E'), ('o', 'Dlt645Meter', 1200, 'E'), "
                      "('w', 'Cjt188Meter', 2400, 'E'), ('g', 'PulseMeter', 9600, 'N')]")
    assert out[1] == "40"  # the site's CT x PT ratio reaches the secondary-side energy register
    assert out[2].startswith("ConfigError meters: meter e (profile dlt645-2007-generic): address longer than 12")
    assert out[3].startswith("ConfigError meters: meter e (profile pulse-gas): board test has no pulse input pulse_7")
