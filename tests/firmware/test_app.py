"""The application's task set on MicroPython: one task's exception - a bug, a MemoryError, an error
the network layer let through - is written to the ledger and that task starts again after a
back-off; the gather of all tasks goes on. Cancellation, KeyboardInterrupt and SystemExit pass."""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy

pytestmark = [pytest.mark.mpy]

SCRIPT = r"""
import asyncio, json
from nengjian import app
from nengjian.net import http
app.RESTART_MS = 20  # the back-off, made short for the test (5 s on a gateway)
app.RESTART_MAX_MS = 80
events = []

class Task:
    # A poller, a destination or the link supervisor whose first run raises.
    def __init__(self, name, exc):
        self.name = name
        self.exc = exc
        self.runs = 0

    async def run(self):
        self.runs += 1
        if self.runs == 1:
            raise self.exc
        while True:
            await asyncio.sleep_ms(1000)

class Store:
    closed = False
    def close(self):
        self.closed = True

class Gateway:
    # What Gateway.run reads of the gateway.
    def __init__(self):
        self.pollers = [Task("bus", ValueError("a bug in a driver"))]
        self.destinations = [Task("p1", MemoryError())]
        self.net = Task("net", http.HttpError("an escaped network error"))
        self.clock = None
        self.ota_fetch = None
        self.status_page = None
        self.boot_guard = None
        self.store = Store()
        self.loops = 0
    def event(self, kind, text, code=None):
        events.append([kind, text])
    async def flush_loop(self):
        while True:
            self.loops += 1
            await asyncio.sleep_ms(5)
    async def status_loop(self):
        while True:
            await asyncio.sleep_ms(1000)
    def _watch(self, safe):
        return []

async def main():
    gw = Gateway()
    run = asyncio.create_task(app.Gateway.run(gw))
    ended = None
    for _ in range(2000):  # an upper bound on the wait, not a measurement
        await asyncio.sleep_ms(5)
        if run.done():
            try:
                await run
            except BaseException as e:
                ended = "%s: %s" % (type(e).__name__, e)
            break
        if gw.pollers[0].runs >= 2 and gw.destinations[0].runs >= 2 and gw.net.runs >= 2:
            break
    out = {"ended": ended, "runs": [gw.pollers[0].runs, gw.destinations[0].runs, gw.net.runs],
           "events": events, "flush_loop_ran": gw.loops > 0}
    if not run.done():
        before = gw.loops
        for _ in range(10):
            await asyncio.sleep_ms(5)
        out["still_running"] = gw.loops > before
        run.cancel()
        try:
            await run
        except asyncio.CancelledError:
            out["cancelled"] = True
        out["store_closed"] = gw.store.closed
    passed = {}
    kept = getattr(app, "kept", None)  # today's main has none: the first tests above say why
    for exc in (KeyboardInterrupt, SystemExit, asyncio.CancelledError) if kept else ():
        async def raiser():
            raise exc()
        try:
            await kept("k", raiser, lambda k, t, c=None: None)
            passed[exc.__name__] = "swallowed"
        except exc:
            passed[exc.__name__] = "passed"
    async def finishes():
        return 42
    out["returned"] = await kept("k", finishes, lambda k, t, c=None: None) if kept else None
    out["passed"] = passed
    print("RESULT " + json.dumps(out))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def result():
    proc = run_mpy(SCRIPT, heap="512k", timeout=120)
    return json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][0][7:])


def test_one_tasks_exception_does_not_end_the_gathered_tasks(result):
    assert result["ended"] is None  # today's main: the first exception ended Gateway.run
    assert result["runs"] == [2, 2, 2]  # each failed task started again
    assert result["still_running"] and result["flush_loop_ran"]


def test_each_failure_goes_to_the_ledger(result):
    texts = [t for k, t in result["events"] if k == "health"]
    assert len(texts) == 3, result["events"]
    for name, kind in (("bus0", "ValueError: a bug in a driver"), ("uplink:p1", "MemoryError"),
                       ("network", "HttpError: an escaped network error")):
        assert any(t.startswith("task %s failed (%s" % (name, kind)) and "restarted in" in t for t in texts), texts


def test_cancel_keyboard_interrupt_and_exit_pass(result):
    assert result["cancelled"] and result["store_closed"]
    assert result["passed"] == {"KeyboardInterrupt": "passed", "SystemExit": "passed", "CancelledError": "passed"}
    assert result["returned"] == 42


# ---- the collection threshold (app.GC_SHARE): what outlives a transaction stays packed low
THRESHOLD = r"""
import gc, sys
from nengjian import app
from nengjian.console import status
n = app._gc_threshold() if sys.argv[-1] == "on" else 0
kept = [None] * 300
for i in range(3000):
    t = [bytes(40) for _ in range(6)]  # a transaction's garbage
    if i %% 10 == 0:
        kept[i // 10] = bytearray(24)  # what outlives it: a value kept, a stat grown
    t = None
gc.collect()
print("RESULT %%d %%d %%d" %% (n, gc.mem_free() + gc.mem_alloc(), status.max_free_block()))
"""


def _threshold_run(mode):
    proc = run_mpy(THRESHOLD.replace("sys.argv[-1]", repr(mode)) % (), heap="384k", timeout=120)
    n, heap, block = (int(x) for x in proc.stdout.split("RESULT")[1].split())
    return n, heap, block


def test_the_collection_threshold_keeps_a_large_block():
    """Collected only when the heap is full, a loop's garbage pushes every allocation that outlives
    it across the whole heap, leaving holes; collected every heap/GC_SHARE bytes, they pack low."""
    n, heap, on = _threshold_run("on")
    _, _, off = _threshold_run("off")
    assert heap // 40 <= n <= heap // 30  # GC_SHARE of the heap (no ROMFS image in this one)
    assert on >= 8 * 1024 and on > 3 * off, (on, off)
