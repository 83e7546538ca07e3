"""A MicroPython script (as text) that runs the real store and delivery against reference platforms.

Used by tests/firmware/uplink/test_delivery.py and bench/bench_backfill.py. Parameters come as JSON in
the environment variable NJ_DRAIN (see DEFAULTS); the script prints progress lines and one final
`RESULT {json}` line. It can seed a backlog of VALUE records into the store, produce live values
while delivering (offered to the destinations' fresh lane when `offer`), and measures per live value
the lag from append to acknowledgement, the time to drain, and the live heap at each upload
(gc.collect() + mem_alloc() once per batch, right before the request: decoded batch and body are
both alive then, which is the drain's peak).
"""

from __future__ import annotations

import json
import re

DEFAULTS = {
    "dir": None,  # store directory on the host (VfsPosix), or None to mount the sim board's data image
    "dests": [],  # [{"name", "url", "batch", "timeout_ms", "acked": bool}]
    "items": 32,
    "period": 60,
    "seed": 0,  # backlog values to write before delivering
    "seed_only": False,  # write the backlog and stop (bench: seed and drain in separate processes)
    "live": 0,  # live values to produce while delivering ...
    "live_ms": 500,  # ... one every live_ms
    "offer": True,  # offer live values to the fresh lane (the app's _emit_value hook)
    "limit_s": 60,
    "heap_every": 1,  # sample the live heap at every Nth upload (0 = never)
    "segment_kb": 64,
    "segments": 64,
    "backoff_min_ms": 200,
    "backoff_max_ms": 2000,
    "oom_above": 0,  # pretend batches larger than this run out of memory while encoding
}

SCRIPT = r"""
import asyncio, gc, json, os, time
from nengjian.core import records, timeutil
from nengjian.store.store import Store
from nengjian.core.decimal import Decimal
from nengjian.uplink import delivery, ndrc

P = json.loads(os.getenv("NJ_DRAIN"))
ENT = {"code": "91330000573973053F", "region": "441900"}
if P["dir"]:
    root = P["dir"]
else:
    import board
    root = board.mount_data() + "/store"
names = [d["name"] for d in P["dests"]]
store = Store(root, names, segment_bytes=P["segment_kb"] * 1024, segments=P["segments"],
              flush_records=64, flush_ms=200)
store.open()
period = P["period"]
items = P["items"]
codes = ["00-00-0000-023300-11"] + ["%02d-00-0000-023300-11" % i for i in range(1, items)]
now0 = timeutil.now()
aligned = timeutil.slot_start(now0, period)

def value(code, start, mant, scope):
    return [records.VALUE, start + period, code, records.REALTIME, start, Decimal(mant, -2), True,
            records.FIELD_INSTRUMENT, scope]

if P["seed"]:
    n = P["seed"]
    periods = (n + items - 1) // items
    base = aligned - (periods + 2) * period
    t = time.ticks_ms()
    for i in range(n):
        k = i % items
        store.append(value(codes[k], base + (i // items) * period, 1000 + i % 997, 1 if k == 0 else 2))
        if i % 4096 == 4095:
            gc.collect()
    store.flush()
    print("SEEDED %d values in %d ms, last seq %d" % (n, time.ticks_diff(time.ticks_ms(), t), store.last_seq))
for d in P["dests"]:
    if d.get("acked"):
        store.ack(d["name"], store.durable_seq)
if P["seed_only"]:
    store.close()
    raise SystemExit

events = []
def ev(kind, text, code=None):
    if len(events) < 20:
        events.append("%s: %s" % (kind, text))
    print("EVENT %s: %s" % (kind, text))

appended = {}  # live seq -> ticks appended
lags = {}  # dest -> [max lag ms, count]
heap = {"peak": 0, "samples": 0, "uploads": 0}

class Measured(ndrc.NdrcJson):
    async def upload(self, batch, now):
        heap["uploads"] += 1
        if P["heap_every"] and heap["uploads"] % P["heap_every"] == 0:
            gc.collect()
            a = gc.mem_alloc()
            heap["samples"] += 1
            if a > heap["peak"]:
                heap["peak"] = a
        if P["oom_above"] and len(batch) > P["oom_above"]:
            return ndrc.Result(ndrc.OUT_OF_MEMORY, "heap too small for %d record(s)" % len(batch))
        r = await ndrc.NdrcJson.upload(self, batch, now)
        if r.kind == ndrc.OK:
            t = time.ticks_ms()
            lag = lags.setdefault(self.name, [0, 0])
            # The seqs alone: a cursor-lane batch (nengjian.store.batch) would decode each record to
            # give the pair, work of this measurement's and not the gateway's.
            for i in range(len(batch)):
                seq = batch.seq(i) if hasattr(batch, "seq") else batch[i][0]
                a = appended.get(seq)
                if a is not None:
                    lag[0] = max(lag[0], time.ticks_diff(t, a))
                    lag[1] += 1
        return r

dests = []
for d in P["dests"]:
    cfg = {"name": d["name"], "profile": "ndrc-json", "url": d["url"], "batch": d["batch"],
           "timeout_ms": d.get("timeout_ms", 3000), "valid": "json"}
    prof = Measured(cfg, ENT, root)
    dests.append(delivery.Destination(prof, store, d["batch"], ev, None,
                                      backoff_min_ms=P["backoff_min_ms"], backoff_max_ms=P["backoff_max_ms"]))

live_done = [P["live"] == 0]

async def producer():
    for k in range(P["live"]):
        await asyncio.sleep_ms(P["live_ms"])
        rec = value("00-00-0000-011500-11", aligned - (k + 1) * period, 500 + k, 1)
        seq = store.append(rec)
        appended[seq] = time.ticks_ms()
        store.flush()
        for d in dests:
            if P["offer"]:
                d.offer(seq, rec)
            d.wake.set()
    live_done[0] = True

async def main():
    gc.collect()
    base_heap = gc.mem_alloc()
    tasks = [asyncio.create_task(d.run()) for d in dests]
    tasks.append(asyncio.create_task(producer()))
    t0 = time.ticks_ms()
    drained = {}
    while time.ticks_diff(time.ticks_ms(), t0) < P["limit_s"] * 1000:
        await asyncio.sleep_ms(100)
        for d in dests:
            if d.name not in drained and live_done[0] and store.cursor(d.name) >= store.durable_seq:
                drained[d.name] = time.ticks_diff(time.ticks_ms(), t0)
                print("DRAINED %s in %d ms" % (d.name, drained[d.name]))
        if len(drained) == len(dests):
            break
    for t in tasks:
        t.cancel()
    await asyncio.sleep_ms(10)
    out = {"drained_ms": drained, "base_heap": base_heap, "peak_heap": heap["peak"],
           "heap_samples": heap["samples"], "uploads": heap["uploads"], "lags": lags, "events": events,
           "last_seq": store.last_seq,
           "dests": {d.name: {"cursor": store.cursor(d.name), "stats": d.stats, "size": d.size,
                              "backoff_ms": d.backoff_ms} for d in dests}}
    print("RESULT " + json.dumps(out))

asyncio.run(main())
store.close()
"""


def params(**kw) -> dict:
    p = dict(DEFAULTS)
    p.update(kw)
    return p


def result(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError("no RESULT line in:\n" + stdout[-4000:])


def seeded_ms(stdout: str) -> int | None:
    m = re.search(r"SEEDED \d+ values in (\d+) ms", stdout)
    return int(m.group(1)) if m else None
