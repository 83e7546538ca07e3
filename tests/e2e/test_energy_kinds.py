"""Every energy kind the regulation names (oil, coal, electricity, natural gas, heat) from one site to the
platform, with the day's comprehensive energy in tce.

One gateway, two RS-485 buses: on bus0 a Modbus energy meter, a DL/T 645-2007 meter and a CJ/T 188 heat
meter; on bus1 a steam flow totaliser (mass and heat), an oil flowmeter (volume, mass from its density)
and a vortex gas totaliser, all Modbus; raw coal by a crew's manual day entry. A day value needs
readings at two midnights 24 h apart, and a boundary reading must lie within 2 min of its boundary with
a meter polled at most once a real second, so a fast clock cannot pass a whole day here: the gateway
runs across the midnight that opens day D, is switched off, and is switched on again just before the
midnight that closes it (the simulated clock moved on by a day, as after a day without power). Its
state file keeps D's first boundary. At the platform: every real-time value, exactly the difference of
the gateway's boundary readings; each whole-plant day value for D, exactly; and the comprehensive value
of D in tce with the GB/T 2589 coefficients (values/tce.py), coal included.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from nengjian_host.sim.meters import Cjt188Meter, Dlt645Meter
from nengjian_host.sim.meters.modbus_meters import (
    SimModbusMeters,
    SimOilMeter,
    SimSteamMeter,
    SimVortexGasMeter,
)
from nengjian_host.sim.wire import PtyWire
from plugin.simkit import ExtraDrop
from simrig import cst_to_utc, nengjian, values_from_console

pytestmark = [pytest.mark.e2e, pytest.mark.sim_heap("512k")]

CST = timezone(timedelta(hours=8))
PERIOD = 60
ELEC, ELEC_645 = "00-00-0000-023300-11", "01-00-0000-023300-11"
GAS = "00-00-0000-011500-11"
HEAT_STEAM, HEAT_WATER = "00-00-0000-023200-11", "02-00-0000-023200-11"
# Steam has no energy code in SPEC 3.3 (the platform issues the site's codes): its mass goes up as a
# process item of energy-carrying media, its heat as the whole plant's heat.
STEAM_MASS = "03-00-0000-033200-11"
OIL, OIL_VOLUME = "00-00-0000-022200-11", "04-00-0000-022200-11"
COAL = "00-00-0000-010100-11"
COMP = "00-00-0000-010000-11"
# kgce per unit of each whole-plant item's values (GB/T 2589-2020 reference values, SPEC 4)
KGCE = {ELEC: Decimal("0.1229"), GAS: Decimal("1.2143"), HEAT_STEAM: Decimal("0.03412"),
        OIL: Decimal("1.4286") * 1000, COAL: Decimal("0.7143") * 1000}
COAL_T = "12.500"

POLL = re.compile(r" poll\s+(\S+) at (\S+): (.*)$")


def _polls(text: str) -> dict[str, list[tuple[int, dict]]]:
    out: dict[str, list[tuple[int, dict]]] = {}
    for line in text.splitlines():
        m = POLL.search(line)
        if m:
            ts = int(datetime.strptime(m.group(2), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
            out.setdefault(m.group(1), []).append((ts, dict(kv.split("=") for kv in m.group(3).split())))
    return out


def _boundary(series, start: int, point: str) -> Decimal:
    """The boundary reading of the period starting at `start`: the first reading in it."""
    return next(Decimal(v[point]) for ts, v in series if start <= ts < start + PERIOD and point in v)


def _site(dut) -> dict:
    cfg = dut.site(units=(1,), interval_s=1)
    cfg["buses"].append({"name": "bus1", "port": "rs485_1"})
    cfg["meters"] += [
        {"id": "e1", "bus": "bus0", "profile": "dlt645-2007-generic", "address": "123456789012",
         "interval_s": 1, "timeout_ms": 600},
        {"id": "h1", "bus": "bus0", "profile": "cjt188-heat", "address": "20330011223344",
         "interval_s": 1, "timeout_ms": 600},
        {"id": "s1", "bus": "bus1", "profile": "spirax-tva-steam", "address": 11, "interval_s": 1, "timeout_ms": 300},
        {"id": "o1", "bus": "bus1", "profile": "coriolis-oil-flowmeter", "address": 12, "interval_s": 1,
         "timeout_ms": 300},
        {"id": "g1", "bus": "bus1", "profile": "vortex-gas-totaliser", "address": 13, "interval_s": 1,
         "timeout_ms": 300},
    ]
    cfg["items"] = [
        {"code": ELEC, "meter": "m1", "point": "energy_kwh", "scope": 1},
        {"code": ELEC_645, "meter": "e1", "point": "energy_kwh", "scope": 2},
        {"code": GAS, "meter": "g1", "point": "volume_nm3", "scope": 1},
        {"code": HEAT_STEAM, "meter": "s1", "point": "heat_mj", "scope": 1},
        {"code": HEAT_WATER, "meter": "h1", "point": "heat_kwh", "scope": 2},
        {"code": STEAM_MASS, "meter": "s1", "point": "mass_t", "scope": 2},
        {"code": OIL, "meter": "o1", "point": "mass_t", "scope": 1},
        {"code": OIL_VOLUME, "meter": "o1", "point": "volume_m3", "scope": 2},
    ]
    cfg["tce"] = {"item": COMP, "units": {"0100": "t"}, "decimals": 6}  # 1 gce: each coefficient shows
    return cfg


def _set_clock(rig, dut, sim_utc: float) -> None:
    """Simulated time is `sim_utc` now, for the meters, the platform and the gateway's next boot."""
    rig.clock.s0 = float(sim_utc)
    rig.clock.t0 = time.time()
    dut.gateway.extra_env.update({k: str(v) for k, v in rig.clock.env().items()})


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d")


@pytest.mark.clock(speed=12, period=PERIOD)
@pytest.mark.needs("console", "power_cut", "fast_clock")
def test_five_energy_kinds_reach_the_platform_with_the_days_tce(rig, dut, bus, platform):
    if rig.spec.kind != "sim":
        pytest.skip("needs the sim rig's second bus, its simulated meters and its clock")
    wire1 = PtyWire().start()
    bus1 = SimModbusMeters(wire1.meters_path, [SimSteamMeter(11), SimOilMeter(12), SimVortexGasMeter(13)],
                           speedup=rig.speed).start()
    drop = ExtraDrop(bus.wire, [
        Dlt645Meter("123456789012", {0x00010000: "3210.50"}, rates={0x00010000: "0.5"}),
        Cjt188Meter(0x20, "20330011223344", {"heat": "5200.00", "flow": "830.50"}, rates={"heat": "0.8"})])
    try:
        cfg = _site(dut)
        dut.gateway.buses[1] = wire1.gateway_path
        # Day D is yesterday (CST): a crew may enter a day's coal only once the day has begun on the
        # laptop's clock too. The simulated clock starts 2 minutes before D.
        day_start = cst_to_utc(_day(time.time() - 86400) + " 00:00:00")
        day = _day(day_start)
        _set_clock(rig, dut, day_start - 120 - 3)
        dut.start(cfg)

        # Run 1: across the midnight that opens D, until each item has a value of a period of D.
        def values_of_day(d):
            return {c for c, date, _v in values_from_console(dut.output()) if date.startswith(d)}

        metered = {it["code"] for it in cfg["items"]}
        dut.wait_for(lambda: values_of_day(day) >= metered, timeout=90, what="a value of every item on day D")
        dut.wait_for(lambda: dut.status()["store"]["durable_seq"] >= dut.status()["store"]["last_seq"],
                     timeout=60, what="the store on flash")
        # What the gateway had made before the cut: a value the platform accepted just before it may
        # come again after power-on, as its acknowledgement may not have reached flash (at least once).
        before_cut = {(c, d) for c, d, _v in values_from_console(dut.output())}
        dut.power_off()

        # A day later, 2 minutes before the midnight that closes D: power on again.
        _set_clock(rig, dut, day_start + 86400 - 120 - 3)
        dut.power_on()
        next_day = _day(day_start + 86400)
        dut.wait_for(lambda: values_of_day(next_day) >= metered, timeout=90, what="a value of every item on D+1")
        code, out = nengjian("manual", "--port", dut.port, "--code", COAL, "--period", "day", "--start", day,
                         "--value", COAL_T, "--who", "Li Wei")
        assert code == 0, out

        # The comprehensive value of D: every whole-plant day value times its coefficient, coal included.
        def comprehensive():
            rows = {(r["dataCode"], r["statType"], r["statDate"]): r for r in platform.records()}
            return rows.get((COMP, 1, day + " 00:00:00")), rows

        def with_coal():
            comp, rows = comprehensive()
            if comp is None or (COAL, 1, day + " 00:00:00") not in rows:
                return False
            total = sum(Decimal(str(rows[(c, 1, day + " 00:00:00")]["dataValue"])) * k for c, k in KGCE.items()
                        if (c, 1, day + " 00:00:00") in rows)
            return Decimal(str(comp["dataValue"])) == (total / 1000).quantize(Decimal("0.000001"), ROUND_HALF_UP)

        dut.wait_for(with_coal, timeout=90, what="the day's comprehensive energy in tce, coal included")
        produced = {(c, d): v for c, d, v in values_from_console(dut.output())}
        dut.wait_for(lambda: {(r["dataCode"], r["statDate"]) for r in platform.records()} >= set(produced),
                     timeout=60, what="every produced value at the platform")
        dut.stop()
    finally:
        drop.close()
        bus1.stop()
        wire1.close()

    rows = platform.records()
    polls = _polls(dut.output())
    meter_point = {it["code"]: (it["meter"], it["point"]) for it in cfg["items"]}
    day_rows = {r["dataCode"]: r for r in rows if r["statType"] == 1 and r["statDate"] == day + " 00:00:00"}
    # every whole-plant kind's day value of D, exactly the difference of its two midnight readings
    for code in (ELEC, GAS, HEAT_STEAM, OIL):
        meter, point = meter_point[code]
        want = _boundary(polls[meter], day_start + 86400, point) - _boundary(polls[meter], day_start, point)
        assert Decimal(str(day_rows[code]["dataValue"])) == want, (code, day_rows[code], want)
        assert day_rows[code]["inputType"] == 4 and day_rows[code]["valid"] is True
    assert day_rows[COAL]["inputType"] == 5 and Decimal(str(day_rows[COAL]["dataValue"])) == Decimal(COAL_T)
    assert day_rows[COMP]["valid"] is True and day_rows[COMP]["scope"] == 1
    # every real-time value, exactly the difference of the boundary readings of its period and the next
    realtime = [r for r in rows if r["statType"] == 0]
    assert {r["dataCode"] for r in realtime} == set(meter_point)
    for r in realtime:
        meter, point = meter_point[r["dataCode"]]
        start = cst_to_utc(r["statDate"])
        want = _boundary(polls[meter], start + PERIOD, point) - _boundary(polls[meter], start, point)
        assert Decimal(str(r["dataValue"])) == want, (r, want)
        resent_after_cut = (r["dataCode"], r["statDate"]) in before_cut
        assert r["receivedCount"] == 1 or (resent_after_cut and r["receivedCount"] == 2), r
    # physically plausible: oil mass is its volume times the meter's density (860 kg/m3)
    vol = {r["statDate"]: Decimal(str(r["dataValue"])) for r in realtime if r["dataCode"] == OIL_VOLUME}
    for r in realtime:
        if r["dataCode"] == OIL and r["statDate"] in vol:
            assert abs(Decimal(str(r["dataValue"])) - vol[r["statDate"]] * Decimal("0.86")) <= Decimal("0.002"), r
    assert "Traceback" not in dut.output()
