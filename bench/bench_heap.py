"""Smallest MicroPython heap the gateway runs in, doing what `make run` does.

For each heap size the real firmware runs on the sim rig (two pymodbus meters, the reference
platform, clock at 12x) until 4 interval values are accepted by the platform, or it fails
(MemoryError, crash, or nothing accepted in time). Prints one line per size and the smallest that
worked. On a 64-bit host objects take about twice the room they take on an ESP32.

Then what the code itself costs: the heap the application's modules (.mpy, as the sim board and
an ESP32 without frozen modules load them) hold once imported, the largest first. Code loaded from
the filesystem lives in the heap; frozen into the firmware image it would stay in flash.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests" / "e2e")]

from simrig import SimRig  # noqa: E402

SIZES = ["128k", "192k", "224k", "256k", "288k", "320k"]


def trial(heap: str) -> tuple[bool, str, float]:
    with tempfile.TemporaryDirectory() as d:
        rig = SimRig(Path(d))
        try:
            gw = rig.gateway_process(heap=heap).start()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 40:
                if len(rig.platform.records()) >= 4:
                    gw.stop()
                    out = gw.output()
                    free = [int(x.split("heap_free=")[1].split()[0]) for x in out.splitlines() if "heap_free=" in x]
                    return True, "ok" + (f", heap_free at status {min(free)} B" if free else ""), time.monotonic() - t0
                if not gw.alive():
                    break
                time.sleep(0.2)
            gw.stop()
            out = gw.output()
            reason = "MemoryError" if "MemoryError" in out else ("exited" if not gw.alive() else "no values in 40 s")
            return False, reason, time.monotonic() - t0
        finally:
            rig.close()


MODULES = ["nengjian.app", "nengjian.console.commands", "nengjian.ota", "nengjian.ota.updater", "nengjian.ota.fetch", "nengjian.net.modem",
           "nengjian.net.cellular", "nengjian.values.tce", "nengjian.crypto.sm4", "nengjian.proto.cjt188",
           "nengjian.uplink.centerinfo", "nengjian.meters.scan", "nengjian.meters.refusals", "nengjian.system.clock"]
MODULE_COST = """
import gc
gc.collect()
start = gc.mem_alloc()
for m in %r:
    gc.collect(); b = gc.mem_alloc()
    __import__(m)
    gc.collect(); print("%%-28s %%7d" %% (m, gc.mem_alloc() - b))
gc.collect(); print("all                          %%7d" %% (gc.mem_alloc() - start))
"""


def module_cost() -> None:
    from nengjian_host.common import paths
    from nengjian_host.sim import build as simbuild

    env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(simbuild.firmware_path()), str(paths.BOARDS / "sim"),
                                                          ".frozen"]))
    out = subprocess.run([paths.micropython_binary(), "-X", "heapsize=4m", "-c", MODULE_COST % MODULES],
                         env=env, capture_output=True, text=True, timeout=60)
    print("heap held by the application's modules once imported (bytes, 64-bit host; each line adds what its")
    print("imports bring that the lines above did not; nengjian.app is the core every gateway loads):")
    print(out.stdout.rstrip() or out.stderr.strip()[-500:])


def main():
    smallest = None
    for heap in SIZES:
        ok, why, secs = trial(heap)
        print(f"heap {heap:>5}: {'works' if ok else 'FAILS'} ({why}; {secs:.1f} s)", flush=True)
        if ok and smallest is None:
            smallest = heap
        if ok:
            break
    print(f"smallest heap that runs the make-run workload: {smallest or 'none tried'}")
    module_cost()


if __name__ == "__main__":
    main()
