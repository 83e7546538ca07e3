"""What signed updates cost a running gateway between checks (firmware/nengjian/ota/resident.py): the
application wires them up as it does at boot (nengjian.appboot.start_updater), an update check runs, and
afterwards none of the modules a check needs is loaded and the heap is back where it was, but for the
names the check interned (MicroPython keeps those for the rest of the run). On MicroPython, the sim
board, the package imported as the gateway imports it; bench/bench_heap.py has the gateway's figures."""

import json

import pytest
from mpyrun import run_mpy
from nengjian_host.vendor import channel as host_channel
from nengjian_host.vendor import updates as host_ota

pytestmark = pytest.mark.mpy

JOB = ["nengjian.ota.updater", "nengjian.ota.fetch", "nengjian.ota.channel"]

CHECKS = r"""
import asyncio, gc, json, sys
import board
from nengjian.net import http
from nengjian import app, appboot

with open(%r, "rb") as f:
    CHANNEL = f.read()


async def request(method, url, body=b"", headers=None, timeout_ms=0, ssl=None, max_body=16384, into=None):
    held.append(gc.mem_alloc())  # during the check: what it holds while it runs
    into.write(CHANNEL)
    return 200, b""


http.request = request


class Gw:
    safe = 0
    updater = None
    ota_fetch = None

    def event(self, kind, text, code=None):
        pass

    def restart(self):
        raise AssertionError("no restart: the check has room")


async def noop():
    pass


asyncio.run(noop())  # the loop's own first allocations are not the check's
gw = Gw()
held = []
cfg = {"ota": {"window_s": 1800, "max_boots": 2, "url": "http://upd/nj/channel.njch", "check_s": 60,
               "insecure": True}}
gc.collect()
start = gc.mem_alloc()
appboot.start_updater(gw, cfg, app.VERSION)
after = []
for _ in range(3):
    try:
        asyncio.run(gw.ota_fetch.check())
    except Exception as e:  # the channel has no release for the sim board: NotOffered
        assert "no release for board sim" in str(e), str(e)
    gc.collect()
    after.append(gc.mem_alloc() - start)
print(json.dumps({"loaded": [m for m in sys.modules if m.startswith("nengjian.ota")],
                  "held": [h - start for h in held], "after": after}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A gateway's directory with the vendor key, and a signed channel with no release for this board."""
    d = tmp_path_factory.mktemp("resident")
    (d / "config").mkdir()
    host_ota.keygen(d / "vendor.pem", d / "vendor.pub.json", "test-vendor")
    (d / "config" / "ota_key.json").write_bytes((d / "vendor.pub.json").read_bytes())
    bundle = d / "other.njota"
    host_ota.build(bundle, d / "vendor.pem", "9.9.9", ["esp32s3_4g"], files=[("nengjian/__init__.py", b"")])
    host_channel.publish(d / "channel", d / "vendor.pem", [bundle])
    return d


def test_an_update_check_leaves_no_module_loaded_and_gives_its_heap_back(site):
    out = run_mpy(CHECKS % str(site / "channel" / "channel.njch"), heap="4M", env={"NJ_SIM_DIR": str(site)})
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert [m for m in JOB if m in got["loaded"]] == []
    held, after = got["held"], got["after"]
    # The first check interns the names of its modules (kept for the run); the checks after it
    # give back all they took, to within a collection's noise.
    assert abs(after[2] - after[1]) <= 256, after
    # What stays between checks is the resident part and those names: a fraction of what a check
    # holds while it runs (with the modules loaded for good it was that much, for the gateway's life).
    assert after[0] * 2 < held[0], (after, held)
