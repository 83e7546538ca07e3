"""Store-to-platform delivery on MicroPython against reference platforms: several destinations from
their own cursors, back-fill with fresh values going out ahead, rejects to the ledger, back-off."""

from __future__ import annotations

import json

import drain_harness as H
import pytest
from mpyrun import run_mpy
from nengjian_host.sim.refplatform import RefPlatform

pytestmark = [pytest.mark.mpy]


def drain(**kw):
    p = H.params(**kw)
    proc = run_mpy(H.SCRIPT, env={"NJ_DRAIN": json.dumps(p)}, heap="512k", timeout=p["limit_s"] + 60)
    return H.result(proc.stdout), proc.stdout


def keys(platform):
    return {(r["dataCode"], r["statDate"]): r["receivedCount"] for r in platform.records()}


def test_one_platform_down_holds_back_nothing_but_itself(tmp_path):
    with RefPlatform(period_s=60) as a, RefPlatform(period_s=60) as b:
        a.set_fault("down")
        r, out = drain(dir=str(tmp_path), seed=600, live=8, live_ms=250, limit_s=6,
                       dests=[{"name": "a", "url": a.url + "/api/register", "batch": 50},
                              {"name": "b", "url": b.url + "/api/register", "batch": 50}])
        assert "b" in r["drained_ms"] and "a" not in r["drained_ms"]
        assert len(b.records()) == 608 and set(keys(b).values()) == {1}
        # b's live values went out right after they were produced, whatever a was doing.
        assert r["lags"]["b"][1] == 8 and r["lags"]["b"][0] < 1500, r["lags"]
        da = r["dests"]["a"]
        assert da["cursor"] == 0 and da["stats"]["failures"] >= 3
        assert da["backoff_ms"] == 2000  # grew to its cap
        assert sum(1 for e in r["events"] if e.startswith("uplink: a: delivery failing")) == 1
        # Back up: a drains from its own cursor, nothing lost, nothing twice.
        a.set_fault("ok")
        r2, _ = drain(dir=str(tmp_path), limit_s=20,
                      dests=[{"name": "a", "url": a.url + "/api/register", "batch": 50},
                             {"name": "b", "url": b.url + "/api/register", "batch": 50}])
        assert set(r2["drained_ms"]) == {"a", "b"}
        assert keys(a) == keys(b) and set(keys(a).values()) == {1}


def test_fresh_values_go_out_ahead_of_the_backfill(tmp_path):
    with RefPlatform(period_s=60, max_batch=20) as p:
        # A back-fill of 4000 values in batches of 20 at 50 ms an exchange takes 10 s or more; live
        # values produced meanwhile keep their time.
        p.set_fault("slow", delay_s=0.05)
        r, out = drain(dir=str(tmp_path), seed=4000, live=10, live_ms=300, limit_s=60,
                       dests=[{"name": "city", "url": p.url + "/api/register", "batch": 20}])
        d = r["dests"]["city"]
        assert "city" in r["drained_ms"], out[-2000:]
        assert d["stats"]["fresh"] >= 8, d
        assert r["lags"]["city"][1] == 10
        assert r["lags"]["city"][0] < 2000, r["lags"]  # the whole back-fill took far longer
        assert r["drained_ms"]["city"] > 3 * r["lags"]["city"][0]
        k = keys(p)
        assert len(k) == 4010 and set(k.values()) == {1}  # sent ahead, then passed over: never twice


def test_fresh_lane_off_means_oldest_first_only(tmp_path):
    with RefPlatform(period_s=60) as p:
        r, _ = drain(dir=str(tmp_path), seed=2000, live=5, live_ms=100, offer=False, limit_s=30,
                     dests=[{"name": "city", "url": p.url + "/api/register", "batch": 20}])
        assert r["dests"]["city"]["stats"]["fresh"] == 0
        assert len(keys(p)) == 2005 and set(keys(p).values()) == {1}


def test_rejected_record_goes_to_the_ledger_and_is_skipped(tmp_path):
    with RefPlatform(period_s=60) as p:
        p.set_fault("reject_code", data_code="03-00-0000-023300-11")
        r, _ = drain(dir=str(tmp_path), seed=64, items=8, limit_s=10,
                     dests=[{"name": "city", "url": p.url + "/api/register", "batch": 50}])
        assert "city" in r["drained_ms"]
        rejected = [e for e in r["events"] if e.startswith("rejected:")]
        assert len(rejected) == 8 and r["dests"]["city"]["stats"]["rejected"] == 8
        assert "03-00-0000-023300-11" in rejected[0] and "rejected by the platform (fault switch" in rejected[0]
        got = keys(p)
        assert len(got) == 56 and not any(c == "03-00-0000-023300-11" for c, _ in got)


def test_timeouts_shrink_the_batch(tmp_path):
    with RefPlatform(period_s=60) as p:
        p.set_fault("slow", delay_s=1.5)
        r, _ = drain(dir=str(tmp_path), seed=40, items=4, limit_s=4,
                     dests=[{"name": "city", "url": p.url + "/api/register", "batch": 40, "timeout_ms": 1000}])
        assert r["dests"]["city"]["size"] < 40
        assert r["dests"]["city"]["stats"]["failures"] >= 1


def test_out_of_memory_shrinks_the_batch_without_backing_off(tmp_path):
    with RefPlatform(period_s=60) as p:
        r, _ = drain(dir=str(tmp_path), seed=600, limit_s=20, oom_above=30, backoff_min_ms=5000,
                     dests=[{"name": "city", "url": p.url + "/api/register", "batch": 100}])
        d = r["dests"]["city"]
        assert "city" in r["drained_ms"] and r["drained_ms"]["city"] < 4000  # no 5 s back-off was taken
        assert d["size"] <= 30 and d["stats"]["sent"] == 600
        assert not any("delivery failing" in e for e in r["events"])
        assert len(keys(p)) == 600


BACKOFF = """
import asyncio, json
from nengjian.uplink import delivery, ndrc
class Prof:
    name = "x"
    async def ensure_session(self):
        return None
class Store:
    durable_seq = 0
d = delivery.Destination(Prof(), Store(), 10, lambda k, t, c=None: None, backoff_min_ms=100, backoff_max_ms=1600)
waits = []
for i in range(8):
    d.backoff_ms = min(d.backoff_max_ms, max(d.backoff_min_ms, d.backoff_ms * 2))
    samples = [d._jittered() for _ in range(200)]
    waits.append([d.backoff_ms, min(samples), max(samples)])
print("RESULT " + json.dumps(waits))
"""


def test_backoff_is_exponential_jittered_and_capped():
    waits = H.result(run_mpy(BACKOFF).stdout)
    assert [w[0] for w in waits] == [100, 200, 400, 800, 1600, 1600, 1600, 1600]
    for base, lo, hi in waits:
        assert base // 2 <= lo and hi <= base and hi - lo > base // 4  # spread within [b/2, b]


KINDS = """
import asyncio, json
from nengjian.uplink import delivery
from nengjian.uplink.result import OK, OUT_OF_MEMORY, RETRY, UNANSWERED, Result
class Prof:
    name = "x"
    def __init__(self, results):
        self.results = results
        self.sizes = []
    async def ensure_session(self):
        return None
    async def upload(self, batch, now):
        self.sizes.append(len(batch))
        return self.results.pop(0)
class Store:
    durable_seq = 100
    def read(self, name, limit, kinds, max_bytes=0, into=None):
        return [(i, None) for i in range(1, limit + 1)], limit
    def cursor(self, name):
        return 0
    def backlog(self, name):
        return 100
    def ack(self, name, last):
        pass
def run(size, results):
    p = Prof(results)
    d = delivery.Destination(p, Store(), size, lambda k, t, c=None: None, backoff_min_ms=10, backoff_max_ms=20)
    async def go():
        for _ in range(len(results)):
            await d._round()
    asyncio.run(go())
    return {"sizes": p.sizes, "size": d.size, "failures": d.stats["failures"], "failing": d.failing}
print("RESULT " + json.dumps({
    # the platform's words say "out of memory": still the platform's refusal, backed off from
    "platform_text": run(10, [Result(RETRY, "HTTP 500, responseCode 9: server out of memory")]),
    # the profile says OUT_OF_MEMORY, whatever its text: halved, retried at once, no back-off
    "oom": run(10, [Result(OUT_OF_MEMORY, "heap"), Result(OUT_OF_MEMORY, "")]),
    "oom_single": run(1, [Result(OUT_OF_MEMORY, "heap")]),
    # sent whole, its answer found no heap: the same batch again at once; halved only when it recurs
    "unanswered": run(10, [Result(UNANSWERED, "answer"), Result(OK)]),
    "unanswered_twice": run(10, [Result(UNANSWERED, "answer"), Result(UNANSWERED, "answer"), Result(OK)]),
}))
"""


def test_out_of_memory_is_told_by_the_result_kind_not_its_text():
    r = H.result(run_mpy(KINDS).stdout)
    assert r["platform_text"] == {"sizes": [10], "size": 10, "failures": 1, "failing": True}
    assert r["oom"] == {"sizes": [10, 5], "size": 2, "failures": 0, "failing": False}
    assert r["oom_single"] == {"sizes": [1], "size": 1, "failures": 1, "failing": True}  # nothing left to halve
    assert r["unanswered"] == {"sizes": [10, 10], "size": 10, "failures": 0, "failing": False}
    assert r["unanswered_twice"] == {"sizes": [10, 10, 5], "size": 5, "failures": 0, "failing": False}


IN_FLIGHT = """
import asyncio, gc, json
from nengjian.core import records
from nengjian.core.decimal import Decimal
from nengjian.store.store import Store
from nengjian.uplink import delivery
from nengjian.uplink.result import OK, Result


def value(i):
    return [records.VALUE, 1700000000 + 900 * i, "%%02d-00-0000-023300-11" %% (i %% 32), records.REALTIME,
            1700000000 + 900 * (i - 1), Decimal(123456 + i, -2), True, records.FIELD_INSTRUMENT, 2]


store = Store(%r, ["city"], segment_bytes=16384, segments=8)
store.open()
for i in range(110):
    store.append(value(i))
store.flush()
got = {"held": 0, "n": 0, "pass": 0, "one": 0, "base": 0, "cursor": 0}  # no dict growth inside a figure


class Prof:
    name = "city"

    async def ensure_session(self):
        return None

    async def upload(self, batch, now):
        gc.collect()
        got["held"] = gc.mem_alloc() - got["base"]
        got["n"] = len(batch)
        for i, (_seq, _rec) in enumerate(batch):  # one pass, as a profile measures or writes the body
            if i == len(batch) // 2:
                gc.collect()
                got["pass"] = gc.mem_alloc() - got["base"]
        return Result(OK)


d = delivery.Destination(Prof(), store, 50, lambda k, t, c=None: None)
asyncio.run(d._round())  # the first full batch: whatever a destination allocates once for one is there
store.read("city", 1, (records.VALUE,))  # the walk's hint for this reader exists before either figure
one = None
gc.collect()
a = gc.mem_alloc()
one = store.read("city", 1, (records.VALUE,))
gc.collect()
got["one"] = gc.mem_alloc() - a
one = None
gc.collect()
got["base"] = gc.mem_alloc()
asyncio.run(d._round())
got["cursor"] = store.cursor("city")
print("RESULT " + json.dumps(got))
"""


def test_a_batch_in_flight_holds_one_decoded_record_at_a_time(tmp_path):
    """The heap a batch of 50 takes while its upload runs, and within one pass over it, is a few decoded
    records' worth (the unit: one record read on its own, with its list and tuple), whatever the batch's
    size: a batch that held its records decoded all at once took 50 of them (16.6 KB on the 64-bit sim)."""
    r = H.result(run_mpy(IN_FLIGHT % str(tmp_path)).stdout)
    assert r["n"] == 50 and r["cursor"] == 100, r
    # While the upload runs: the round's and the upload's frames (about 3 records' worth), no records.
    assert r["held"] < 5 * r["one"], r
    # A pass adds the record it is at, decoded, and what iterates.
    assert r["pass"] - r["held"] < 2 * r["one"], r
