"""The link supervisor on MicroPython with scripted links: preference order, failover and failback,
carrier loss, the application-level keepalive finding a dead link that still looks up, power-cycling
after repeated failed bring-ups, and every change in the ledger."""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy

pytestmark = [pytest.mark.mpy]

SCRIPT = r"""
import asyncio, json, time
from nengjian.net import links, failover as supervisor
T0 = time.ticks_ms()
events = []
def ev(kind, text, code=None):
    events.append([time.ticks_diff(time.ticks_ms(), T0), kind, text])

class Fake(links.Link):
    def __init__(self, name, kind):
        links.Link.__init__(self)
        self.name, self.kind = name, kind
        self.ok = True
        self.carrier = True
        self.cycles = 0
        self.max_batch = 100 if kind == "cellular" else 0
    async def up(self):
        await asyncio.sleep_ms(5)
        if self.ok:
            self.state = links.UP
            self.ups += 1
            self.failures = 0
            self.carrier = True
            return True
        self.state = links.FAILED
        self.failures += 1
        self.last_error = "scripted failure"
        return False
    def is_up(self):
        return self.state == links.UP and self.carrier
    async def power_cycle(self):
        self.cycles += 1
        await self.down()
    def rssi(self):
        return -83 if self.kind == "cellular" else None

eth = Fake("eth", "ethernet")
lte = Fake("4g", "cellular")
alive = [True]
async def probe():
    return alive[0]
sup = supervisor.Supervisor([eth, lte], ev, keepalive_s=1, probe_failures=2, probe_retry_s=0, failback_s=1,
                            retry_s=0, check_ms=20, power_cycle_after=3, probe=probe)
changes = []
sup.on_change.append(lambda link: changes.append(link.name if link else None))
marks = {}

async def until(cond, ms=5000):
    t = time.ticks_ms()
    while not cond() and time.ticks_diff(time.ticks_ms(), t) < ms:
        await sup.step()
    return cond()

async def main():
    await until(lambda: sup.active is eth)
    marks["first"] = sup.active.name
    marks["cap_eth"] = sup.batch_cap()
    eth.carrier = False       # cable pulled
    eth.ok = False
    await until(lambda: sup.active is lte)
    marks["failover"] = sup.active.name
    marks["cap_4g"] = sup.batch_cap()
    eth.ok = True             # cable back: failback after failback_s
    await until(lambda: sup.active is eth)
    marks["failback"] = sup.active.name
    marks["lte_after_failback"] = lte.state
    t = time.ticks_ms()       # the path dies without losing carrier: only the keepalive can tell
    alive[0] = False
    eth.ok = False
    lte.ok = False
    await until(lambda: sup.active is None)
    marks["dead_found_ms"] = time.ticks_diff(time.ticks_ms(), t)
    await until(lambda: eth.cycles >= 1 and lte.cycles >= 1, 10000)
    marks["cycles"] = [eth.cycles, lte.cycles, eth.failures, lte.failures]
    lte.ok = True
    alive[0] = True
    await until(lambda: sup.is_up())
    marks["recovered"] = sup.active.name
    marks["status"] = sup.status()["active"]

asyncio.run(main())
print("RESULT " + json.dumps({"marks": marks, "events": events, "changes": changes, "stats": sup.stats}))
"""


@pytest.fixture(scope="module")
def run():
    proc = run_mpy(SCRIPT, timeout=60)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError(proc.stdout + proc.stderr)


def texts(run):
    return [e[2] for e in run["events"] if e[1] == "link"]


def test_preference_failover_failback(run):
    m = run["marks"]
    assert m["first"] == "eth" and m["failover"] == "4g" and m["failback"] == "eth"
    assert m["cap_eth"] == 0 and m["cap_4g"] == 100  # uploads are sized for the link
    assert m["lte_after_failback"] == "down"  # the 4G session is released once Ethernet is back
    t = texts(run)
    assert "using eth (ethernet)" in t
    assert "eth lost: carrier gone" in t
    assert "using 4g (cellular), signal -83 dBm" in t  # RSSI goes to the ledger with the link state
    assert "back on eth (ethernet); 4g released" in t
    assert run["changes"][:4] == ["eth", None, "4g", "eth"]


def test_keepalive_finds_a_dead_link_quickly(run):
    m = run["marks"]
    # keepalive 1 s, then 2 failed probes: found within about keepalive + check interval
    assert m["dead_found_ms"] < 2500
    assert "eth lost: no answer to 2 keepalive probe(s)" in texts(run)
    assert run["stats"]["probe_failures"] >= 2


def test_power_cycle_after_repeated_failures_then_recovery(run):
    m = run["marks"]
    eth_cycles, lte_cycles, _ef, _lf = m["cycles"]
    assert eth_cycles >= 1 and lte_cycles >= 1
    t = texts(run)
    assert "4g: 3 failed bring-ups in a row: power-cycling" in t
    assert "4g will not come up: scripted failure" in t  # the first failure is logged, not every one
    assert sum(1 for x in t if x.startswith("4g will not come up")) == 1
    assert m["recovered"] == "4g" and m["status"] == "4g"


def test_the_crews_ledger_pairs_the_supervisors_own_events(run):
    """The host ledger's link-fault rules read the texts this supervisor writes: each loss or failed
    bring-up opens a fault for that link, its next use closes it, and choosing a link at boot is no
    fault at all."""
    from nengjian_host.crew import ledger

    t0 = 1_777_593_600
    records = [[3, t0 + ms, kind, text] for ms, kind, text in run["events"]]
    end = t0 + run["events"][-1][0] + 1
    faults = [f for f in ledger.build(records, end=end)["link_outages"] if f["category"] == "link down"]
    got = [(f["subject"], f["start_text"], f["end_text"]) for f in faults]
    assert got == [
        ("eth", "eth lost: carrier gone", "back on eth (ethernet); 4g released"),
        ("eth", "eth lost: no answer to 2 keepalive probe(s)", None),  # still down when the run ends
        ("4g", "4g will not come up: scripted failure", "using 4g (cellular), signal -83 dBm"),
    ], got
    assert not any(f["started_before_data"] for f in faults)
