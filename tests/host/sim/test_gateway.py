"""The sim launcher (host/nengjian_host/sim/gateway.py) as the board's hardware: its USB console stops
the firmware with Ctrl-C the way the ESP32's does, at a point where the firmware can go on."""

import pytest
from nengjian_host.common import paths
from nengjian_host.sim.gateway import SimGateway

pytestmark = pytest.mark.mpy

# The firmware's own console reader beside a task that does little but collect garbage: a Ctrl-C
# that the unix port raised from a SIGINT handler would land inside the collector, which then never
# unlocks the heap (every later allocation fails: "heap is locked"), as the gateway's "stopped from
# the console" log line did in board.utc_now.
CHURN = r'''
import asyncio, gc, time
import board
from nengjian.console import protocol as console

junk = [[i] for i in range(200000)]  # each collection takes milliseconds


async def churn():
    n = 0
    while True:
        gc.collect()
        n += 1
        if n == 20:
            print("CHURNING")
        await asyncio.sleep_ms(0)


async def main():
    console.start(board, "test")
    await churn()


try:
    asyncio.run(main())
except KeyboardInterrupt:
    now = time.time()  # a float: the first allocation after Ctrl-C
    print("STOPPED, heap usable:", now > 0)
'''

STOPS = 3


def test_ctrl_c_on_the_console_never_lands_inside_the_garbage_collector(tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "main.py").write_text(CHURN)
    (fw / "nengjian").symlink_to(paths.FIRMWARE / "nengjian")  # from source: the console reader is the same
    gw = SimGateway(tmp_path / "gw", heap="32m")
    gw.firmware = fw
    try:
        for _ in range(STOPS):
            gw.start()
            gw.expect("CHURNING", timeout=60)
            gw.stop()
            gw.expect(r"STOPPED, heap usable: True", timeout=1)
    except TimeoutError as e:
        raise AssertionError("a Ctrl-C did not stop the firmware cleanly:\n%s" % gw.output()[-2000:]) from e
    finally:
        gw.close()
    out = gw.output()
    assert "heap is locked" not in out and "Traceback" not in out and "FATAL" not in out, out[-2000:]
