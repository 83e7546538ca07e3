"""Benchmark: drain a 3-day backlog from the sim board's store to a local reference platform.

    .venv/bin/python bench/bench_backfill.py            # both data sets, batch 100
    .venv/bin/python bench/bench_backfill.py --quick    # the 15-minute set only
    .venv/bin/python bench/bench_backfill.py --batch 50 --heap 256k

32 meters (items) for 3 days: 15-minute data = 9,216 values, 1-minute data = 138,240 values. The
backlog is written into the store on the sim board's littlefs data image by one MicroPython process
(the same Store class the gateway uses), then a second process - the one measured, started with
-X heapsize=HEAP - drains it through the real delivery code and the ndrc-json profile to a
RefPlatform on localhost (HTTP, so TLS cost is not in the figures).

Figures printed: drain time and values/s; live heap after imports (base) and its peak during the
drain (gc.collect() + gc.mem_alloc() once per upload, right before the request, when the decoded
batch and the encoded body are both alive), and peak minus base = the drain's working set; then the
smallest -X heapsize that completes a short drain (bisection). The firmware runs compiled, imported
from the sim's ROMFS image as gateways run it (the 15-minute set also from the .mpy files, --mode;
--source: from .py). On a 64-bit host MicroPython objects take about twice what
they take on an ESP32, and on the ESP32 the modules are frozen into flash, so their bytecode does not
sit in the heap there: the working set is the figure to hold against 64 KiB. An ESP32 estimate of the drain time is the
sim's x30, the factor bench_bus.py uses (MicroPython runs some 20-50x slower on the chip).
Nothing is asserted about speed; the platform's record count is checked: nothing lost, and nothing
received twice but what the gateway had to send again without its acknowledgement (SPEC 3.4).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "firmware" / "uplink"), str(ROOT / "host")]

import drain_harness as H  # noqa: E402
from mpyrun import micropython_binary, mpy_env  # noqa: E402
from nengjian_host.sim import build as simbuild  # noqa: E402
from nengjian_host.sim.refplatform import RefPlatform  # noqa: E402

ITEMS = 32
DAYS = 3
ESP32_FACTOR = 30
SETS = [("15-min", 900), ("1-min", 60)]


SOURCE = False  # --source: run the firmware from .py instead of the .mpy the sim board runs
ROM: list = [None]  # the ROMFS image of the compiled package while a run imports from it (as gateways do)

# With ROMFS, `board` is imported first: it mounts the image at /rom and puts it first on sys.path,
# as the ESP32 firmware mounts its romfs partition before main.py; the image's bytes (read into the
# heap on the unix port, in flash on the chip) are then left out of the heap figures.
ROM_PRELUDE = "import board\nprint('ROMFS_BYTES %d' % board.ROMFS_BYTES)\n"


def _kib(heap: str) -> int:
    h = heap.lower()
    return int(h[:-1]) * (1024 if h.endswith("k") else 1024 * 1024) if h[-1] in "km" else int(h)


def run(code_params: dict, sim_dir: Path, heap: str, data_kb: int, timeout: float, rom: Path | None = None):
    env = mpy_env("sim", {"NJ_DRAIN": json.dumps(code_params), "NJ_SIM_DIR": str(sim_dir),
                          "NJ_DATA_KB": str(data_kb)})
    if not SOURCE:
        # As the sim board (and the ESP32, frozen) runs it: compiled, so the heap holds data, not
        # the compiler's work and the bytecode of every module.
        env["MICROPYPATH"] = os.pathsep.join([str(simbuild.firmware_path()), str(ROOT / "boards" / "sim"), ".frozen"])
    script = H.SCRIPT
    if rom is not None:
        env["NJ_ROMFS"] = str(rom)
        heap = str(_kib(heap) + rom.stat().st_size)  # the image's room on top, as the sim launcher gives it
        script = ROM_PRELUDE + script
    cmd = [micropython_binary(), "-X", "heapsize=" + heap, "-c", script]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def rom_bytes(stdout: str) -> int:
    for line in stdout.splitlines():
        if line.startswith("ROMFS_BYTES "):
            return int(line.split()[1])
    return 0


def seed(sim_dir: Path, period: int, n: int, data_kb: int, segments: int):
    p = H.params(dests=[{"name": "city", "url": "http://127.0.0.1:9/", "batch": 1}], items=ITEMS,
                 period=period, seed=n, seed_only=True, segments=segments)
    t = time.monotonic()
    proc = run(p, sim_dir, "2m", data_kb, 3600)
    if proc.returncode != 0:
        raise SystemExit("seeding failed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
    return time.monotonic() - t


def drain(sim_dir: Path, platform: RefPlatform, period: int, batch: int, heap: str, data_kb: int,
          segments: int, limit_s: int):
    p = H.params(dests=[{"name": "city", "url": platform.url + "/api/register", "batch": batch,
                         "timeout_ms": 30000}],
                 items=ITEMS, period=period, limit_s=limit_s, segments=segments)
    t = time.monotonic()
    proc = run(p, sim_dir, heap, data_kb, limit_s + 120, ROM[0])
    wall = time.monotonic() - t
    try:
        return H.result(proc.stdout), wall, proc
    except AssertionError:
        return None, wall, proc


def one_set(name: str, period: int, batch: int, heap: str, work: Path):
    n = ITEMS * DAYS * 86400 // period
    data_kb = max(4096, (n * 72 // 1024) * 3 // 2 // 4 * 4)
    segments = min(256, max(16, data_kb // 64 * 3 // 4))
    sim_dir = work / name
    sim_dir.mkdir(parents=True)
    seed_s = seed(sim_dir, period, n, data_kb, segments)
    with RefPlatform(db_path=str(work / (name + ".sqlite")), period_s=period) as platform:
        r, wall, proc = drain(sim_dir, platform, period, batch, heap, data_kb, segments, 1800)
        if r is None or "city" not in r["drained_ms"]:
            print("  %s: drain did not finish:\n%s\n%s" % (name, proc.stdout[-1500:], proc.stderr[-1500:]))
            return None
        stats = platform.stats()
    ms = r["drained_ms"]["city"]
    image = rom_bytes(proc.stdout)
    base, peak = r["base_heap"] - image, r["peak_heap"] - image
    print("%-7s %7d values  seed %5.1f s  drain %7.1f s  %6.0f values/s  uploads %5d  base heap %6d B  "
          "peak %6d B  working set %6d B (%.1f KiB)  platform keys %d, repeats %d" % (
              name, n, seed_s, ms / 1000.0, n * 1000.0 / ms, r["uploads"], base, peak,
              peak - base, (peak - base) / 1024.0, stats["keys"], stats["duplicates"]))
    # A repeat is allowed where the gateway never got the acknowledgement (SPEC 3.4: the natural key
    # makes a re-upload after a lost acknowledgement harmless), e.g. a MemoryError while the reply
    # was read: the same batch is sent again (uplink.delivery, UNANSWERED). A value the gateway saw
    # acknowledged and sent again would be a firmware bug. Receptions the gateway did not see acknowledged:
    unacked = stats["recordsAccepted"] - r["dests"]["city"]["stats"]["sent"]
    ooms = proc.stdout.count("batch size now")  # halved: out of memory (or a timeout) while sending
    resent = proc.stdout.count("sending the same batch again")  # the answer found no heap
    if stats["duplicates"] or ooms or resent:
        print("        repeats: %d value(s) received again, %d received without the gateway seeing the "
              "acknowledgement; %d batch(es) halved, %d resent whole for want of heap to read the answer" % (
                  stats["duplicates"], unacked, ooms, resent))
    # The sim's drain time x ESP32_FACTOR: MicroPython runs some 20-50x slower on an ESP32 than here
    # (bench_bus.py uses the same factor). Orientation only: the ESP32's littlefs flash and its
    # network link are not in it.
    print("        ESP32 estimate: drain %.0f s (x%d the sim's %.1f s; target for the 15-minute set: under 300 s)" % (
        ms / 1000.0 * ESP32_FACTOR, ESP32_FACTOR, ms / 1000.0))
    if stats["keys"] != n or stats["duplicates"] > unacked:
        print("  !! expected %d keys and no repeat of an acknowledged value" % n)
    return r


def smallest_heap(batch: int, work: Path):
    """Bisect -X heapsize (KiB) for a 2,000-value drain with this batch size."""
    sim_dir = work / "bisect"
    sim_dir.mkdir(parents=True)
    seed(sim_dir, 60, 2000, 4096, 16)
    lo, hi = 64, 512
    while hi - lo > 8:
        mid = (lo + hi) // 2
        fresh = work / ("bisect-%d" % mid)
        shutil.copytree(sim_dir, fresh)
        with RefPlatform(period_s=60) as platform:
            r, _wall, _proc = drain(fresh, platform, 60, batch, "%dk" % mid, 4096, 16, 120)
            ok = r is not None and "city" in r["drained_ms"] and platform.stats()["keys"] == 2000
            if ok:
                ok = not any("MemoryError" in e for e in r["events"])
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--heap", default="256k")
    ap.add_argument("--quick", action="store_true", help="15-minute data only, no bisection")
    ap.add_argument("--source", action="store_true", help="run the firmware from source, not compiled .mpy")
    ap.add_argument("--mode", choices=("both", "romfs", "mpy"), default="both",
                    help="the package from the ROMFS image as gateways run it (both: the 15-minute set also "
                         "from .mpy files, the rest from ROMFS)")
    args = ap.parse_args(argv)
    global SOURCE
    SOURCE = args.source
    rom = None
    if args.mode != "mpy" and not SOURCE:
        from nengjian_host.sim import romfs_image

        rom = romfs_image()
    work = Path(tempfile.mkdtemp(prefix="nj-bench-backfill-"))
    try:
        print("3-day backlog, %d items, batch %d, -X heapsize=%s (MicroPython unix port, 64-bit, firmware %s)" % (
            ITEMS, args.batch, args.heap, "from source" if SOURCE else "compiled .mpy"))
        for i, (name, period) in enumerate(SETS[:1] if args.quick else SETS):
            modes = [rom] if rom is not None else [None]
            if rom is not None and args.mode == "both" and i == 0:
                modes.append(None)
            for m in modes:
                ROM[0] = m
                print("-- %s: the package from %s" % (
                    name, "the ROMFS image (%d B, mounted at /rom; not in the heap figures)" % m.stat().st_size
                    if m is not None else ("source" if SOURCE else ".mpy files")))
                one_set(name + ("" if m is None else "-rom"), period, args.batch, args.heap, work)
        ROM[0] = None
        if not args.quick:
            print("smallest -X heapsize completing a drain with batch %d (.mpy files): %d KiB" % (
                args.batch, smallest_heap(args.batch, work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
