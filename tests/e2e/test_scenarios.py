"""Field scenarios end to end on the rig: commissioning a new site, a day of polling with faults, a week
offline then back-fill, a power cut during back-fill. Nothing lost, nothing duplicated at the
platform, every fault in the ledger (read through the console's `events`).

Time: a 15-minute period cannot pass faster than about 100x here. The boundary reading of a period
must lie within 2 minutes of the boundary (nengjian.values.intervals), and a meter is polled at most once a
second of real time (interval_s >= 1), so at speed S a reading comes every S simulated seconds. At
75x a period takes 12 s: the "day" runs 15-minute periods for two simulated hours across midnight
(the mechanics of a day - polling, values, faults, a reset, a date change - not its length). The
"week" is a week of 15-minute values the platform never acknowledged, written into the gateway's
store with the firmware's own Store before it boots (as after a week without a link), plus live
values produced while the platform is still down; then the platform comes back.
"""

import json
import time
from decimal import Decimal

import pytest
from mpyrun import run_mpy
from nengjian_host.common import paths
from simrig import cst_to_utc, readings_from_console, values_from_console

# Back-fill batches need more heap than the 256k default (an ESP32 without PSRAM) leaves the current
# firmware: at 256k delivery runs out of memory and falls back to batches of 6. The uplink's tests
# run at 512k for the same reason; its peak heap is bench/bench_backfill.py's business.
pytestmark = [pytest.mark.e2e, pytest.mark.sim_heap("512k")]

WEEK = 7 * 96  # 15-minute periods


def _keys(platform):
    return {(r["dataCode"], r["statDate"]) for r in platform.records()}


def _produced(dut) -> dict:
    """(code, statDate) -> value text from the gateway's console; a key produced twice with two
    different values fails here."""
    out = {}
    for code, date, value in values_from_console(dut.output()):
        assert out.setdefault((code, date), value) == value, "%s %s produced as %s and %s" % (
            code, date, out[(code, date)], value)
    return out


def _check_platform(platform, want: dict, max_resent: int = 0) -> None:
    """Every wanted key at the platform once, with its exact value; at most max_resent keys received
    twice (a batch in flight when the power went: the platform's natural key keeps one row)."""
    rows = platform.records()
    keys = [(r["dataCode"], r["statDate"]) for r in rows]
    assert len(keys) == len(set(keys)), "a key stored twice"
    got = dict(zip(keys, rows))
    missing = set(want) - set(got)
    assert not missing, "lost: %s" % sorted(missing)[:10]
    for key, value in want.items():
        assert Decimal(str(got[key]["dataValue"])) == Decimal(value), (key, got[key]["dataValue"], value)
    twice = [k for k in want if got[k]["receivedCount"] != 1]
    assert all(got[k]["receivedCount"] == 2 for k in twice), "a key received more than twice"
    assert len(twice) <= max_resent, "%d keys received twice" % len(twice)


def _all_delivered(dut, platform, base: dict, timeout: float, what: str) -> dict:
    """Wait until every key of base and every value the gateway has produced so far is at the platform;
    return that set. Produced and delivered are read at the same moment: a value produced after the
    condition held is still in flight and is not asked of the platform."""
    held = {}

    def done():
        want = dict(base)
        want.update(_produced(dut))
        if _keys(platform) >= set(want):
            held.update(want)
            return True
        return False

    dut.wait_for(done, timeout=timeout, what=what)
    return held


def _wait_durable(dut, what: str) -> None:
    """Wait until every record the gateway has stored so far is on flash (the store's durability window
    has passed for them): a reset or power cut after this loses none of them."""
    last = dut.status()["store"]["last_seq"]
    dut.wait_for(lambda: dut.status()["store"]["durable_seq"] >= last, timeout=60, what=what)


def _events(dut) -> list[tuple[str, str]]:
    return [(e["kind"], e["text"]) for e in dut.events(500)]


SEED = r"""
import json, os, board
from nengjian.core import records
from nengjian.store.store import Store
from nengjian.core.decimal import Decimal
P = json.loads(os.getenv("NJ_SEED"))
store = Store(board.mount_data() + "/store", P["dests"], segment_bytes=P["segment_kb"] * 1024,
              segments=P["segments"], flush_records=64)
store.open()
for k in range(P["periods"]):
    start = P["first"] + k * P["period"]
    for j in range(len(P["codes"])):
        m = 1000 + (k * 7 + j * 13) % 500
        store.append([records.VALUE, start + P["period"], P["codes"][j], 0, start, Decimal(m, -2), True, 4,
                      P["scopes"][j]])
store.flush()
store.close()
print("SEEDED", store.last_seq)
"""


def seed_offline_week(dut, cfg, before: int) -> dict:
    """Write WEEK periods of values ending just before `before` into the gateway's store, as a gateway
    that had no link for a week would hold them; returns (code, statDate) -> value text."""
    codes = [it["code"] for it in cfg["items"]]
    period = cfg["realtime_period_s"]
    first = before - WEEK * period
    p = {"dests": [d["name"] for d in cfg["destinations"]], "segment_kb": cfg["store"]["segment_kb"],
         "segments": cfg["store"]["segments"], "codes": codes, "scopes": [it["scope"] for it in cfg["items"]],
         "first": first, "period": period, "periods": WEEK}
    gwdir = dut.gateway.dir
    (gwdir / "config").mkdir(parents=True, exist_ok=True)
    out = run_mpy(SEED, env={"NJ_SEED": json.dumps(p), "NJ_SIM_DIR": str(gwdir), "NJ_PROFILES": str(paths.PROFILES)},
                  heap="512k", timeout=120)
    assert "SEEDED" in out.stdout
    from datetime import datetime, timedelta, timezone

    cst = timezone(timedelta(hours=8))
    return {(code, datetime.fromtimestamp(first + k * period, cst).strftime("%Y-%m-%d %H:%M:%S")):
            str(Decimal(1000 + (k * 7 + j * 13) % 500).scaleb(-2))
            for k in range(WEEK) for j, code in enumerate(codes)}


def _big_store(cfg):
    cfg["store"].update(segment_kb=32, segments=32)
    return cfg


# ---- commissioning
# flash_image: the gateway must be fresh from the factory (a blank data partition, no site config), which
# only the sim rig can see to and check.
@pytest.mark.needs("console", "files", "platform_faults", "flash_image")
def test_commissioning_a_new_site(dut, platform, tmp_path):
    # A gateway fresh from the factory: empty data partition, no site config.
    assert not dut.gateway.image_path.exists() and not dut.gateway.config_path.exists()
    dut.start(cfg=False)
    dut.expect(r"SAFE MODE: config: .*site\.json: cannot read", timeout=20)
    st = dut.status()
    assert st["mode"] == "safe" and "site.json" in st["safe_reason"] and st["meters"] == []
    # The installer writes the site config over the USB console (the path `nengjian provision` takes).
    cfg = dut.site()
    ans = dut.put_config(cfg)
    assert ans["applies"] == "within 5 s"
    dut.expect(r"config is valid now: starting", timeout=15)
    dut.expect(r"event\s+boot: started firmware", timeout=15)
    codes = {it["code"] for it in cfg["items"]}
    dut.wait_for(lambda: {c for c, _ in _keys(platform)} == codes, timeout=60, what="first values of every item")
    st = dut.status()
    assert st["mode"] == "run" and not st["alarms"] and st["last_upload"] > 0
    assert {m["id"] for m in st["meters"]} == {m["id"] for m in cfg["meters"]}
    assert json.loads(dut.read_file("config/site.json")) == cfg
    _check_platform(platform, {k: v for k, v in _produced(dut).items() if k in _keys(platform)})
    assert platform.devices() and len(platform.devices()) == 1


# ---- a day of polling with faults
@pytest.mark.slow
@pytest.mark.clock(speed=75, period=900, lead=30, start_cst="23:00")
@pytest.mark.needs("console", "meter_silence", "bus_crc", "bus_noise", "platform_faults", "reset", "fast_clock")
def test_a_day_of_polling_with_faults(rig, dut, bus, platform):
    cfg = dut.site()
    m2 = cfg["meters"][1]
    m2.update(timeout_ms=150, retries=0, backoff_s=2)  # a silent m2 must not hold the bus past m1's boundary
    dut.start(cfg)

    def values():
        return len(values_from_console(dut.output()))

    def wait_values(n, what):
        dut.wait_for(lambda: values() >= n, timeout=60, what=what)

    wait_values(2, "the first values")
    # Noise and a burst of CRC errors on the bus: polls fail, retries and the next polls recover.
    for _ in range(3):
        bus.noise()
        time.sleep(0.3)
    bus.crc_errors(2)
    dut.expect(r"meter m2 .*CRC", timeout=10)
    bus.crc_errors(2, False)
    # The platform answers HTTP 500 for a while, then is slow.
    platform.set_fault("http500")
    dut.expect(r"delivery failing", timeout=30)
    wait_values(4, "values while the platform fails")
    platform.set_fault("slow", delay_s=1.0)
    dut.expect(r"delivering again", timeout=30)
    # A meter goes silent for about a period.
    bus.silence(2)
    dut.expect(r"event\s+meter: meter m2 offline", timeout=20)
    time.sleep(rig.clock.host_seconds(900))
    bus.silence(2, False)
    dut.expect(r"meter m2 answers again", timeout=20)
    platform.set_fault("ok")
    # The board is reset (EN) right after a boundary, with the platform down so no batch is in flight.
    n = values()
    wait_values(n + 1, "a boundary before the reset")
    platform.set_fault("down")
    # Past the store's durability window so the boundary's records are on flash: a reset inside the
    # window loses them by design and the value is recomputed from the next stored reading
    # (docs/STORE.md), which this exact-value check would misread.
    _wait_durable(dut, "the boundary's records on flash")
    dut.reset()
    dut.expect(r"event\s+boot: started firmware", timeout=20)
    platform.set_fault("ok")
    n = values()
    wait_values(n + 4, "two more periods after the reset")

    produced = _produced(dut)
    dut.wait_for(lambda: _keys(platform) >= set(produced), timeout=60, what="every value at the platform")
    _check_platform(platform, produced)

    # Every value is the difference of the first readings of two consecutive periods, exactly.
    readings = readings_from_console(dut.output())
    meter_of = {it["code"]: it["meter"] for it in cfg["items"]}
    for (code, date), value in produced.items():
        start = cst_to_utc(date)
        series = readings[meter_of[code]]
        first = next(v for ts, v in series if start <= ts < start + 900)
        nxt = next(v for ts, v in series if start + 900 <= ts < start + 1800)
        assert Decimal(value) == Decimal(nxt) - Decimal(first), (code, date)
    # m1 was never silent: a value for every period from its first to its last, across midnight.
    starts = sorted(cst_to_utc(d) for c, d in produced if meter_of[c] == "m1")
    assert starts == list(range(starts[0], starts[-1] + 900, 900)) and len(starts) >= 6
    assert len({d[:10] for _c, d in produced}) == 2, "the run crosses midnight"
    # m2 has a gap where it was silent, and nowhere else: one run of missing periods. How many it spans
    # depends on how long the host took to see m2 offline and then answering (simulated time runs 75x).
    m2_starts = {cst_to_utc(d) for c, d in produced if meter_of[c] == "m2"}
    missing = sorted(set(starts) - m2_starts)
    assert missing and missing == list(range(missing[0], missing[-1] + 900, 900)), missing
    assert len(missing) < len(starts) - 2, "m2 must have values on both sides of its silence"

    ev = _events(dut)
    for kind, text in (("meter", "meter m2 offline"), ("meter", "meter m2 answers again"),
                       ("uplink", "delivery failing"), ("uplink", "delivering again")):
        assert any(k == kind and text in t for k, t in ev), (kind, text)
    assert sum(1 for k, _t in ev if k == "boot") == 2


# ---- a week offline, then back-fill
@pytest.mark.slow
@pytest.mark.clock(speed=75, period=900, lead=30)
@pytest.mark.needs("console", "platform_faults", "fast_clock", "flash_image")
def test_a_week_offline_then_backfill(rig, dut, platform):
    cfg = _big_store(dut.site())
    boundary = int(rig.clock.s0) + 30
    week = seed_offline_week(dut, cfg, boundary)
    platform.set_fault("down")
    dut.start(cfg)
    dut.expect(r"delivery failing", timeout=30)
    dut.wait_for(lambda: len(values_from_console(dut.output())) >= 4, timeout=60, what="live values while down")
    assert platform.records() == []
    st = dut.status()
    assert st["destinations"][0]["failing"] and st["store"]["backlog"]["city"] >= len(week) + 4
    assert any("city: delivery failing" in a for a in st["alarms"])

    platform.set_fault("ok")
    dut.expect(r"delivering again", timeout=60)
    want = _all_delivered(dut, platform, week, timeout=90, what="the week and the live values delivered")
    _check_platform(platform, want)
    dut.wait_for(lambda: dut.status()["store"]["backlog"]["city"] < 20, timeout=30, what="the backlog drained")
    ev = _events(dut)
    assert any(k == "uplink" and "delivery failing" in t for k, t in ev)
    assert any(k == "uplink" and "delivering again" in t for k, t in ev)


# ---- a power cut during back-fill
@pytest.mark.slow
@pytest.mark.clock(speed=75, period=900, lead=30)
@pytest.mark.needs("console", "power_cut", "platform_faults", "fast_clock", "flash_image")
def test_power_cut_during_backfill(rig, dut, platform):
    cfg = _big_store(dut.site())
    batch = cfg["destinations"][0]["batch"]
    boundary = int(rig.clock.s0) + 30
    week = seed_offline_week(dut, cfg, boundary)
    platform.set_fault("slow", delay_s=1.0)  # 50 values a second: the drain takes half a minute
    dut.start(cfg)
    dut.wait_for(lambda: len(platform.records()) >= 300, timeout=60, what="the back-fill under way")
    # Cut the power mid-drain, but not within the store's flush window of a fresh value (a value not
    # yet flushed may be lost by design: SPEC 7, store durability window).
    n = len(values_from_console(dut.output()))
    dut.wait_for(lambda: len(values_from_console(dut.output())) > n, timeout=30, what="a fresh value")
    _wait_durable(dut, "the fresh value on flash")
    at_cut = len(platform.records())
    assert at_cut < len(week), "the back-fill finished before the cut"
    live = len(_produced(dut))  # live values may have gone out ahead of the back-fill (the fresh lane)
    dut.power_cut()
    dut.expect(r"event\s+boot: started firmware", timeout=30)
    platform.set_fault("ok")
    want = _all_delivered(dut, platform, week, timeout=90, what="everything delivered after the cut")
    # Resent after the cut (harmless: the platform keeps one row per natural key): the batch in
    # flight, and live values acknowledged through the fresh lane ahead of the cursor, which the
    # gateway remembers in RAM only.
    _check_platform(platform, want, max_resent=batch + live)
    ev = _events(dut)
    assert sum(1 for k, _t in ev if k == "boot") == 2
    st = dut.status()
    assert st["mode"] == "run" and st["store"]["backlog"]["city"] < 20
