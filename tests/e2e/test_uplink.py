"""Uplink on the sim rig (real firmware, pymodbus meters, reference platforms, clock x12):

- two destinations from their own cursors: one down while a day of values piles up for it, the
  other receives every live value within a bounded lag and never notices; the first then catches
  up, oldest first, nothing lost, nothing twice;
- each platform fault mode (http500, hang, reset, slow, down, reject_code) and the acknowledgement-
  lost variants (store_first=True): nothing lost; nothing duplicated unless an answer was lost, and
  then still stored once.

A day of 1-minute periods cannot be produced by meters polled once a real second within minutes
(the interval engine needs a reading within a fifth of a period of each boundary), so the day the
down platform missed is written into the gateway's store before boot, as the gateway itself would
have stored it (same Store class, same segments), with the other destination's cursor past it.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from decimal import Decimal
from unittest import mock

import pytest
from mpyrun import run_mpy
from nengjian_host.common import paths
from nengjian_host.sim.refplatform import RefPlatform
from simrig import PERIOD, SPEED, SimRig, cst_to_utc, values_from_console

pytestmark = [pytest.mark.e2e]

# The application's modules compile from source on the unix port; 512k leaves room for that (the
# uplink's own peak heap is measured by bench/bench_backfill.py).
HEAP = "512k"
LAG_BOUND_S = 120  # sim seconds from the end of a period to the value at the platform (2 periods)


class UplinkRig(SimRig):
    """SimRig with a second reference platform ("province") beside the first ("city")."""

    def __init__(self, tmp_path, **kw):
        SimRig.__init__(self, tmp_path, **kw)
        self.platform2 = RefPlatform(db_path=str(tmp_path / "platform2.sqlite"), period_s=PERIOD,
                                     clock=self.now).start()

    def site(self, two=True, **kw):
        cfg = SimRig.site(self, **kw)
        if two:
            cfg["destinations"].append({"name": "province", "profile": "ndrc-json",
                                        "url": self.platform2.url + "/api/register", "batch": 100,
                                        "timeout_ms": 5000})
        return cfg

    def close(self):
        SimRig.close(self)
        self.platform2.close()


SEED = """
import json, os, board
from nengjian.core import records
from nengjian.store.store import Store
from nengjian.core.decimal import Decimal
P = json.loads(os.getenv("NJ_SEED"))
store = Store(board.mount_data() + "/store", P["names"], segment_bytes=P["segment_kb"] * 1024,
              segments=P["segments"], flush_records=64)
store.open()
for i in range(P["n"]):
    k = i % len(P["codes"])
    start = P["start"] + (i // len(P["codes"])) * P["period"]
    store.append([records.VALUE, start + P["period"], P["codes"][k], 0, start, Decimal(1000 + i % 89, -2), True, 4,
                  1 if k == 0 else 2])
store.flush()
for name in P["acked"]:
    store.ack(name, store.durable_seq)
print("SEEDED", store.last_seq)
store.close()
"""


def seed_store(rig, cfg, n_periods, acked):
    codes = [it["code"] for it in cfg["items"]]
    start = int(rig.s0) - int(rig.s0) % PERIOD - (n_periods + 1) * PERIOD
    p = {"names": [d["name"] for d in cfg["destinations"]], "segment_kb": cfg["store"]["segment_kb"],
         "segments": cfg["store"]["segments"], "codes": codes, "start": start, "period": PERIOD,
         "n": n_periods * len(codes), "acked": acked}
    gwdir = rig.tmp / "gw"
    (gwdir / "config").mkdir(parents=True, exist_ok=True)
    run_mpy(SEED, env={"NJ_SEED": json.dumps(p), "NJ_SIM_DIR": str(gwdir), "NJ_PROFILES": str(paths.PROFILES)},
            heap="512k", timeout=120)
    return {(c, _cst(start + i * PERIOD)) for i in range(n_periods) for c in codes}


def _cst(ts):
    from datetime import datetime, timedelta, timezone

    return datetime.fromtimestamp(ts, timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")


def lags(platform, produced):
    """Sim seconds from each produced value's period end to its first reception."""
    got = {(r["dataCode"], r["statDate"]): r for r in platform.records()}
    out = []
    for code, date, _v in produced:
        r = got.get((code, date))
        if r is not None:
            out.append(cst_to_utc(r["firstReceivedAt"]) - (cst_to_utc(date) + PERIOD))
    return out


@pytest.fixture
def urig(tmp_path):
    r = UplinkRig(tmp_path)
    yield r
    r.close()


def test_two_destinations_one_down_for_a_day(urig):
    rig = urig
    cfg = rig.site()
    day = seed_store(rig, cfg, 1440, acked=["city"])  # a day of 1-minute values the province never got
    rig.platform2.set_fault("down")
    gw = rig.gateway_process(cfg, heap=HEAP).start()
    gw.expect(r"province: delivery failing", timeout=30)
    # Five periods with the province down: the city gets each value as it is produced.
    rig.wait_for(lambda: len(values_from_console(gw.output())) >= 10, timeout=60, what="10 live values")
    live = values_from_console(gw.output())
    rig.wait_for(lambda: {(c, d) for c, d, _ in live} <= {(r["dataCode"], r["statDate"]) for r in rig.platform.records()},
                 timeout=30, what="live values at the city")
    assert rig.platform2.records() == []
    city_lag_down = max(lags(rig.platform, live))
    # The province comes back: it drains its day oldest first while the city keeps its pace.
    rig.platform2.set_fault("ok")
    t_back = time.monotonic()
    t_back_sim = rig.now()
    m = gw.expect(r"^(\S+) .*province: delivering again", timeout=60)
    # The console stamps lines with the gateway's (simulated) UTC clock.
    back_sim = int(datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())

    def province_complete():
        have = {(r["dataCode"], r["statDate"]) for r in rig.platform2.records()}
        return day <= have and {(c, d) for c, d, _ in values_from_console(gw.output())} <= have

    rig.wait_for(province_complete, timeout=90, what="the province's day and the live values")
    catch_up_s = time.monotonic() - t_back

    def since_back():
        return [v for v in values_from_console(gw.output()) if cst_to_utc(v[1]) + PERIOD >= back_sim]

    rig.wait_for(lambda: len(since_back()) >= 4 and province_complete(), timeout=60,
                 what="two more periods at the province")
    produced = values_from_console(gw.output())
    # Let the city take what was produced during the catch-up, then compare.
    rig.wait_for(lambda: {(c, d) for c, d, _ in produced} <= {(r["dataCode"], r["statDate"]) for r in rig.platform.records()},
                 timeout=30, what="every live value at the city")
    gw.stop()
    city = {(r["dataCode"], r["statDate"]): r for r in rig.platform.records()}
    prov = {(r["dataCode"], r["statDate"]): r for r in rig.platform2.records()}
    assert all(r["receivedCount"] == 1 for r in city.values())
    assert all(r["receivedCount"] == 1 for r in prov.values())
    assert len(prov) == len(day) + len({(c, d) for c, d, _ in produced})
    for code, date, value in produced:
        assert Decimal(str(city[(code, date)]["dataValue"])) == Decimal(value)
        assert Decimal(str(prov[(code, date)]["dataValue"])) == Decimal(value)
    city_lag = max(lags(rig.platform, produced))
    assert city_lag <= LAG_BOUND_S, (city_lag, city_lag_down)
    # Values produced once the province answered again: on time although its day was still draining.
    during = since_back()
    prov_lag = max(lags(rig.platform2, during))
    assert prov_lag <= LAG_BOUND_S, prov_lag
    print("city lag max %d sim-s (%d while the province was down); province back %.1f s after the platform; "
          "day (%d values) and live values all there %.1f s after; province lag for %d values produced since: "
          "max %d sim-s" % (city_lag, city_lag_down, back_sim - t_back_sim, len(day), catch_up_s, len(during), prov_lag))
    # The province's back-fill went oldest first: its day arrived before (or with) the live values.
    first_day = max(cst_to_utc(prov[k]["firstReceivedAt"]) for k in day)
    assert all(cst_to_utc(prov[(c, d)]["firstReceivedAt"]) >= first_day - PERIOD for c, d, _ in live)


def _hit(platform, mode, n=1):
    return platform.stats()["faultHits"].get(mode, 0) >= n


# hang: max_s below the gateway's 5 s timeout, so no held request is processed after the gateway gave up
# on it (that would be a lost acknowledgement, tested separately below).
FAULTS = [("http500", {}), ("reset", {}), ("hang", {"max_s": 3}), ("slow", {"delay_s": 2.0}), ("down", {})]


def test_each_fault_mode_loses_nothing_and_duplicates_nothing(urig):
    rig = urig
    gw = rig.gateway_process(rig.site(two=False), heap=HEAP).start()
    rig.wait_for(lambda: len(rig.platform.records()) >= 2, timeout=60, what="first values")
    for mode, params in FAULTS:
        before = rig.platform.stats()["faultHits"].get(mode, 0)
        rig.platform.set_fault(mode, **params)
        rig.wait_for(lambda m=mode, b=before: _hit(rig.platform, m, b + 2), timeout=60, what="two hits of " + mode)
        rig.platform.set_fault("ok")
        if mode != "slow":
            gw.expect(r"city: delivering again", timeout=60)
    produced = values_from_console(gw.output())
    rig.wait_for(lambda: {(c, d) for c, d, _ in produced} <= {(r["dataCode"], r["statDate"]) for r in rig.platform.records()},
                 timeout=60, what="every produced value")
    gw.stop()
    got = {(r["dataCode"], r["statDate"]): r for r in rig.platform.records()}
    assert {(c, d) for c, d, _ in produced} == set(got)  # nothing lost, nothing invented
    assert all(r["receivedCount"] == 1 for r in got.values()), [r for r in got.values() if r["receivedCount"] != 1]
    for code, date, value in produced:
        assert Decimal(str(got[(code, date)]["dataValue"])) == Decimal(value)
    out = gw.output()
    assert "Traceback" not in out
    for needle in ("HTTP 500", "ECONNRESET", "connection closed by the server"):
        assert needle in out, needle


def test_lost_acknowledgements_store_each_value_once(urig):
    rig = urig
    gw = rig.gateway_process(rig.site(two=False), heap=HEAP).start()
    rig.wait_for(lambda: len(rig.platform.records()) >= 2, timeout=60, what="first values")
    for mode, params in (("http500", {}), ("reset", {}), ("hang", {"max_s": 30})):
        before = rig.platform.stats()["faultHits"].get(mode, 0)
        rig.platform.set_fault(mode, store_first=True, **params)
        rig.wait_for(lambda m=mode, b=before: _hit(rig.platform, m, b + 2), timeout=60, what="two hits of " + mode)
        rig.platform.set_fault("ok")
        gw.expect(r"city: delivering again", timeout=60)
    produced = values_from_console(gw.output())
    rig.wait_for(lambda: {(c, d) for c, d, _ in produced} <= {(r["dataCode"], r["statDate"]) for r in rig.platform.records()},
                 timeout=60, what="every produced value")
    gw.stop()
    rows = rig.platform.records()
    got = {(r["dataCode"], r["statDate"]): r for r in rows}
    assert len(rows) == len(got) == len({(c, d) for c, d, _ in produced})  # stored once each
    assert any(r["receivedCount"] > 1 for r in rows)  # answers were lost, so some were resent
    for code, date, value in produced:
        assert Decimal(str(got[(code, date)]["dataValue"])) == Decimal(value)


def test_rejected_values_go_to_the_ledger_and_the_rest_flows(urig):
    rig = urig
    gw = rig.gateway_process(rig.site(two=False), heap=HEAP).start()
    rig.wait_for(lambda: len(rig.platform.records()) >= 2, timeout=60, what="first values")
    rig.platform.set_fault("reject_code", data_code="01-00-0000-023300-11")
    m = gw.expect(r"event\s+rejected: city refused 01-00-0000-023300-11 (\S+ \S+) \(record \d+\): (.*)", timeout=60)
    assert "rejected by the platform (fault switch reject_code)" in m.group(2)
    rejected_date = m.group(1)
    rig.platform.set_fault("ok")
    produced = values_from_console(gw.output())
    rig.wait_for(lambda: len({(c, d) for c, d, _ in values_from_console(gw.output())}) >= len(produced) + 2,
                 timeout=60, what="more values after the reject")
    produced = values_from_console(gw.output())
    expect = {(c, d) for c, d, _ in produced} - {("01-00-0000-023300-11", rejected_date)}
    rig.wait_for(lambda: expect <= {(r["dataCode"], r["statDate"]) for r in rig.platform.records()},
                 timeout=60, what="everything but the rejected value")
    gw.stop()
    got = {(r["dataCode"], r["statDate"]) for r in rig.platform.records()}
    assert ("01-00-0000-023300-11", rejected_date) not in got  # skipped, not retried forever
    assert all(r["receivedCount"] == 1 for r in rig.platform.records())
    assert SPEED == 12


def _status_text(port: str) -> tuple[int, str]:
    """`nengjian status --port PORT` as printed for a person (wide enough not to wrap)."""
    import contextlib
    import io

    from nengjian_host import cli

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), mock.patch.dict(os.environ, {"COLUMNS": "160"}):
        code = cli.main(["status", "--port", port])
    return code, buf.getvalue()


def test_values_over_4g_survive_failover_and_a_dropped_call(urig, tmp_path):
    """Ethernet (the host link) first; unplugged, the gateway fails over to the simulated 4G modem,
    which drops its call once: re-dialled, and every value still arrives once."""
    from nengjian_host.sim.modem import SimModem

    rig = urig
    ctl, eth = tmp_path / "pwrkey", tmp_path / "eth"
    eth.write_text("up")
    timing = {"at_ms": 200, "boot_ms": 1500, "off_ms": 300, "pwrkey_on_ms": 60, "pwrkey_off_ms": 250,
              "pwrkey_off_simcom_ms": 400, "guard_ms": 400, "reg_ms": 5000, "reg_poll_ms": 300}
    with SimModem(str(ctl), on_ms=50, off_ms=200, boot_s=0.3, guard_s=0.3) as modem:
        gw = rig.gateway_process(rig.site(two=False), heap=HEAP)
        gw.extra_env.update({"NJ_MODEM": modem.path, "NJ_MODEM_CTL": str(ctl), "NJ_LINKS": "host,modem",
                             "NJ_ETH_CTL": str(eth), "NJ_MODEM_TIMING": json.dumps(timing)})
        gw.start()
        gw.expect(r"link: using host \(ethernet\)", timeout=30)
        rig.wait_for(lambda: len(rig.platform.records()) >= 2, timeout=60, what="values over Ethernet")
        eth.write_text("down")
        gw.expect(r"link: host lost: carrier gone", timeout=30)
        gw.expect(r"link: using 4g \(cellular\), signal -69 dBm", timeout=60)
        n = len(rig.platform.records())
        rig.wait_for(lambda: len(rig.platform.records()) >= n + 2, timeout=60, what="values over 4G")
        modem.drop_call()
        gw.expect(r"4g lost: carrier gone", timeout=30)
        gw.expect(r"link: using 4g", timeout=60)
        n = len(rig.platform.records())
        rig.wait_for(lambda: len(rig.platform.records()) >= n + 2, timeout=60, what="values after re-dial")
        # What an installer sees on site: 4G carries the data, Ethernet is down, the modem's story.
        code, shown = _status_text(gw.port)
        assert code == 0, shown
        rows = {line.split()[1]: line for line in shown.splitlines() if line.startswith("│ ")}
        assert "carries the data" in rows["4g"] and "down" in rows["host"], shown
        assert "-69 dBm, excellent (CSQ 22)" in shown and "2 dialled, 0 refused" in shown, shown
        gw.stop()
        assert modem.dials == 2
    produced = values_from_console(gw.output())
    got = {(r["dataCode"], r["statDate"]): r for r in rig.platform.records()}
    assert {(c, d) for c, d, _ in produced} <= set(got)
    assert all(r["receivedCount"] == 1 for r in got.values())
