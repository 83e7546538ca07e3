"""How much heap the gateway needs, on the sim board (MicroPython unix port, 64-bit host: objects
take about twice the room they take on an ESP32).

1. The make-run workload: two pymodbus meters, the reference platform, clock at 12x, until 4 interval
   values are accepted (or MemoryError, a crash, nothing accepted in time).
2. The full feature set: a Modbus bus and a DL/T 645 bus, the 4G modem as the only link (the
   simulated AT modem), two destinations (one plain, one SM4-ECB), update checks against a signed
   update channel on a static web server, and a crew's console `status` and `scan` while it runs. It
   works when both platforms accepted values, the channel was read, and both console commands answered;
   where the check found no heap for the channel's signature and restarted into it, only once the
   restarted gateway delivers again.
3. A simulated day of the full feature set (the RTC runs fast, DAY_SPEED x): the console's `status`
   at the end gives heap_free and heap_max_free, the largest block left (fragmentation).
4. What the code costs: the heap each module holds once imported (.mpy, as the sim board and an
   ESP32 loading from its filesystem hold it), and the total of the modules a full-feature gateway
   has loaded after that day, a quiet minute after the crew's last request (read from its REPL after
   a Ctrl-C stop).

The smallest heap is bisected in STEP_K steps between LOW_K and HIGH_K for each workload. Each
target is printed next to its figure (issue: ROMFS, an honest heap figure).

Each figure is taken twice (--mode both): with the package's .mpy files loaded into the heap, and
imported from the sim's ROMFS image (nengjian_host.sim.romfs_image, mounted at /rom as an ESP32 mounts
its romfs partition). The unix port reads that image into its heap; the sim launcher grows
-X heapsize by the image's size, and the module figures subtract it, so every ROMFS figure is the
heap the code gets, image not counted.

The largest free block is read twice: the status's heap_max_free (found by trying allocations) and
the console's `heap` (micropython.mem_info()'s "max free sz", in GC blocks of 32 bytes on the sim,
which needs no heap to answer), at the end of the day, right after the crew's requests and a quiet
minute later.

5. What the collection threshold (nengjian.app.GC_SHARE) costs in CPU (--only gc): the full feature set
   runs GC_MINUTES with the threshold and without it (NJ_GC_THRESHOLD=0: a collection only when the
   heap is full), from ROMFS, while a watcher task in the gateway samples gc.mem_alloc() every 5 ms:
   a drop of GC_DROP bytes or more is a collection (explicit ones included; two between samples count
   once; a smaller drop is a block freed in place, as a list or dict that grows frees its old one),
   a rise is allocation (a lower bound: what a collection between two samples took is not seen). Then, at the REPL the stopped gateway leaves, one gc.collect() on its heap is timed.
   Collections per hour x that time = the CPU share; the ESP32 estimate multiplies the collection's
   time by GC_ESP32_FACTOR (see there).

Usage: bench_heap.py [--only workload|full|day|modules|gc] [--mode both|mpy|romfs] [--day-speed N]
                     [--day-heap KIB] [--day-hours H]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests" / "e2e")]

from simrig import SimRig  # noqa: E402

# The heap budget the bisection searches (KiB of -X heapsize) and its resolution.
LOW_K, HIGH_K, STEP_K = 128, 512, 16
# Targets (sim terms; an ESP32 needs about half): issue "An honest heap figure".
TARGET_HEAP_K = 192
TARGET_CODE_B = 80 * 1024
TARGET_MAX_FREE_B = 8 * 1024
DAY_S = 86400
# A simulated day in 14.4 minutes: meters polled every second (real time) are read within the
# 2-minute tolerance of every period boundary (nengjian.values.intervals), so the day is a normal one.
DAY_SPEED = 100
FULL_PERIOD_S = 900  # 15-minute intervals, as a site reports them
DLT645_ADDRESS = "123456789012"
CONSOLE_QUIET_S = 65  # the console drops its commands after a quiet minute (nengjian.console.protocol)
BENCH_MODEM_TIMING = {"at_ms": 200, "boot_ms": 1500, "off_ms": 300, "pwrkey_on_ms": 60, "pwrkey_off_ms": 250,
                      "pwrkey_off_simcom_ms": 400, "guard_ms": 400, "reg_ms": 5000, "reg_poll_ms": 300}


def kib(k: int) -> str:
    return "%dk" % k


def esp32(b: int) -> str:
    return "%.0f KB" % (b / 2 / 1024)


def bisect(works, low_k: int = LOW_K, high_k: int = HIGH_K, step_k: int = STEP_K):
    """The smallest heap (KiB, a multiple of step_k) for which works(heap) holds, assuming more heap
    never hurts; None if even high_k fails. works prints its own line per try."""
    if not works(high_k):
        return None
    lo, hi = low_k - step_k, high_k  # lo fails (or is below the budget), hi works
    while hi - lo > step_k:
        mid = (lo + hi) // 2 // step_k * step_k
        if mid <= lo:
            mid = lo + step_k
        if works(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _say(heap_k: int, ok: bool, why: str, secs: float) -> None:
    print("  heap %5s: %s (%s; %.1f s)" % (kib(heap_k), "works" if ok else "FAILS", why, secs), flush=True)


# ---- 1. the make-run workload
def workload_trial(heap_k: int) -> bool:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        rig = SimRig(Path(d))
        try:
            gw = rig.gateway_process(heap=kib(heap_k))
            gw.romfs = ROMFS
            gw.start()
            while time.monotonic() - t0 < 40:
                if len(rig.platform.records()) >= 4:
                    gw.stop()
                    free = [int(x.split("heap_free=")[1].split()[0]) for x in gw.output().splitlines()
                            if "heap_free=" in x]
                    _say(heap_k, True, "ok" + (", heap_free at status %d B" % min(free) if free else ""),
                         time.monotonic() - t0)
                    return True
                if not gw.alive():
                    break
                time.sleep(0.2)
            gw.stop()
            out = gw.output()
            why = "MemoryError" if "MemoryError" in out else ("exited" if not gw.alive() else "no values in 40 s")
            _say(heap_k, False, why, time.monotonic() - t0)
            return False
        finally:
            rig.close()


# ---- 2. and 3. the full feature set
class FullRig:
    """Everything the full feature set talks to, on the host: a Modbus wire with two pymodbus meters,
    a DL/T 645 wire with one simulated meter, the simulated 4G modem, a plain and an SM4-ECB reference
    platform, and a static web server with a signed update channel (`nengjian ota publish`) that has a
release for another board only: every check downloads and verifies the channel, and fetches nothing)."""

    def __init__(self, tmp: Path, speed: float):
        from nengjian_host.sim.meters import Dlt645Meter, SimBus
        from nengjian_host.sim.meters.modbus_meters import SimMeter, SimModbusMeters
        from nengjian_host.sim.modem import SimModem
        from nengjian_host.sim.refplatform import RefPlatform
        from nengjian_host.sim.staticweb import StaticWeb
        from nengjian_host.sim.wire import PtyWire
        from nengjian_host.vendor import updates as host_ota

        self.tmp = tmp
        self.speed = speed
        self.t0 = time.time()
        self.s0 = float(int(self.t0) - int(self.t0) % FULL_PERIOD_S + FULL_PERIOD_S - 3)
        self.stack = ExitStack()
        s = self.stack
        try:
            self.modbus_wire = s.enter_context(PtyWire().start())
            s.enter_context(SimModbusMeters(self.modbus_wire.meters_path,
                                            [SimMeter(1, power_kw=600.0, energy_kwh=5000.0),
                                             SimMeter(2, power_kw=120.0, energy_kwh=10000.0)], speedup=speed).start())
            self.dlt_wire = s.enter_context(PtyWire().start())
            s.enter_context(SimBus(self.dlt_wire.meters_path, [Dlt645Meter(
                DLT645_ADDRESS, {0x00010000: "3210.50"}, rates={0x00010000: "%.4f" % (0.01 * speed)})]))
            self.plain = s.enter_context(RefPlatform(db_path=str(tmp / "plain.sqlite"), period_s=FULL_PERIOD_S,
                                                     clock=self.now))
            self.sm4 = s.enter_context(RefPlatform(db_path=str(tmp / "sm4.sqlite"), period_s=FULL_PERIOD_S,
                                                   clock=self.now, variant="sm4-ecb", valid_encoding="shandong"))
            self.ctl = tmp / "modem-pwrkey"
            self.modem = s.enter_context(SimModem(str(self.ctl), on_ms=50, off_ms=200, boot_s=0.3, guard_s=0.3))
            self.keys = tmp / "keys"
            self.keys.mkdir()
            host_ota.keygen(self.keys / "vendor.pem", self.keys / "vendor.pub.json", "bench-vendor")
            self.ota = s.enter_context(StaticWeb(self._publish_channel(tmp)))
        except BaseException:
            s.close()
            raise

    def checks(self) -> int:
        """Update checks the gateway made: reads of the channel file."""
        return sum(1 for p in self.ota.paths if p.startswith("/channel.njch"))

    def _publish_channel(self, tmp: Path) -> Path:
        from nengjian_host.vendor import channel
        from nengjian_host.vendor import updates as host_ota

        bundle = tmp / "other-board.njota"
        host_ota.build(bundle, self.keys / "vendor.pem", "9.9.9", ["esp32s3_4g"],
                       files=[("nengjian/__init__.py", b"")])
        channel.publish(tmp / "channel", self.keys / "vendor.pem", [bundle])
        return tmp / "channel"

    def now(self) -> float:
        return self.s0 + (time.time() - self.t0) * self.speed

    def site(self) -> dict:
        items = [{"code": "00-00-0000-023300-11", "meter": "m1", "point": "energy_kwh", "scope": 1, "min": 0,
                  "max": 10000000},
                 {"code": "01-00-0000-023300-11", "meter": "m2", "point": "energy_kwh", "scope": 2, "min": 0,
                  "max": 10000000},
                 {"code": "02-00-0000-023300-11", "meter": "e1", "point": "energy_kwh", "scope": 2}]
        return {
            "version": 1,
            "site": {"name": "bench full feature set", "gateway": "NJ-BENCH-1"},
            "enterprise": {"code": "91330000573973053F", "region": "441900"},
            "realtime_period_s": FULL_PERIOD_S,
            "buses": [{"name": "bus0", "port": "rs485_0"}, {"name": "bus1", "port": "rs485_1"}],
            "meters": [{"id": "m1", "bus": "bus0", "profile": "sim-energy", "address": 1, "interval_s": 1,
                        "timeout_ms": 300},
                       {"id": "m2", "bus": "bus0", "profile": "sim-energy", "address": 2, "interval_s": 1,
                        "timeout_ms": 300},
                       {"id": "e1", "bus": "bus1", "profile": "dlt645-2007-generic", "address": DLT645_ADDRESS,
                        "interval_s": 1, "timeout_ms": 600}],
            "items": items,
            "destinations": [
                {"name": "city", "profile": "ndrc-json", "url": self.plain.url + "/api/register", "batch": 50,
                 "timeout_ms": 5000},
                {"name": "prov", "profile": "ndrc-json", "url": self.sm4.url + "/api/register", "batch": 50,
                 "timeout_ms": 5000, "security": "sm4-ecb", "valid": "shandong"}],
            "store": {"flush_records": 8, "flush_s": 2, "segment_kb": 32, "segments": 16},
            "ota": {"url": self.ota.url + "/channel.njch", "check_s": 60, "insecure": True},
        }

    def gateway(self, heap_k: int, env: dict | None = None):
        import shutil

        from nengjian_host.sim.gateway import SimGateway

        gw = SimGateway(self.tmp / "gw", {0: self.modbus_wire.gateway_path, 1: self.dlt_wire.gateway_path},
                        heap=kib(heap_k), romfs=ROMFS,
                        env=dict({"NJ_CLOCK_SPEED": self.speed, "NJ_CLOCK_T0": repr(self.t0),
                                  "NJ_CLOCK_S0": repr(self.s0), "NJ_MODEM": self.modem.path,
                                  "NJ_MODEM_CTL": str(self.ctl), "NJ_LINKS": "modem",
                                  "NJ_MODEM_TIMING": json.dumps(BENCH_MODEM_TIMING)}, **(env or {})))
        gw.write_config(self.site())
        shutil.copy(self.keys / "vendor.pub.json", gw.dir / "config" / "ota_key.json")
        return gw

    def close(self):
        self.stack.close()


SCAN = {"addresses": [1, 2], "bauds": [9600], "parities": ["N"], "dlt645": False}


def console_checks(gw, timeout: float = 60) -> tuple[dict | None, str]:
    """A crew's `status` and `scan` on the running gateway: (the status answer, what failed or "")."""
    from nengjian_host.common.device import Console

    try:
        with Console(gw.port, timeout=timeout) as con:
            st = con.status()
            end = con.request("scan " + json.dumps(SCAN, separators=(",", ":")), timeout=timeout)[-1]
            if end.get("found") != 2:
                return st, "scan found %r of 2 meters" % end.get("found")
            return con.status(), ""
    except Exception as e:  # noqa: BLE001 - any failure is this heap's result
        return None, "console: %s" % e


# MicroPython's GC block (py/mpconfig.h MICROPY_BYTES_PER_GC_BLOCK: 4 machine words): 32 bytes on the
# 64-bit sim, 16 on an ESP32. micropython.mem_info() counts "max free sz" in these blocks (py/gc.c).
SIM_GC_BLOCK = 32


def heap_blocks(gw, timeout: float = 30) -> tuple[int | None, str]:
    """(the largest free block in bytes, from the console's `heap`: micropython.mem_info()'s "max free
    sz", read after a collection, nothing allocated to find it), or (None, why not). Unlike the
    status's heap_max_free (found by trying allocations) it needs no heap to answer, so a heap too
    fragmented for a `status` still gives its figure."""
    from nengjian_host.common.device import Console

    lines: list[str] = []
    try:
        with Console(gw.port, timeout=timeout, on_line=lines.append) as con:
            con.request("heap", timeout=timeout)
    except Exception as e:  # noqa: BLE001 - said in the figure's place
        return None, "console heap: %s" % e
    for line in reversed(lines):
        if "max free sz:" in line:
            return int(line.rsplit("max free sz:", 1)[1].split()[0]) * SIM_GC_BLOCK, ""
    return None, "no mem_info lines in the heap answer"


# The update check found no heap block for the channel's signature check and restarts into it
# (nengjian.ota.fetch): the restarted gateway must start and deliver again for the heap to do.
DEFERRED_CHECK = "no room in the heap for its signature check now"
STARTED = "boot: started firmware"


def full_trial(heap_k: int, limit_s: float = 150, env: dict | None = None) -> bool:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        rig = FullRig(Path(d), speed=60)
        gw = None
        try:
            gw = rig.gateway(heap_k, env).start()
            why = "no values in %.0f s" % limit_s
            checked = False
            deferred_at = None
            while time.monotonic() - t0 < limit_s:
                if not gw.alive():
                    why = "exited"
                    break
                if not checked and gw.output().count(" poll ") >= 3:
                    st, why = console_checks(gw)
                    if why:
                        break
                    checked = True
                got = (len(rig.plain.records()), len(rig.sm4.records()))
                out = gw.output()
                if DEFERRED_CHECK in out and deferred_at is None:
                    deferred_at = got  # the check restarts the gateway: it must start and deliver again
                done = rig.checks() and min(got) >= 2 and (
                    deferred_at is None and time.monotonic() - t0 > 30  # a late deferral shows by then
                    or deferred_at is not None and out.count(STARTED) >= 2 and min(got) > max(deferred_at))
                if checked and done:
                    gw.stop()
                    _say(heap_k, True, "ok, heap_free %s B, max free block %s B at the console status%s" % (
                        st.get("heap_free"), st.get("heap_max_free"),
                        "; update check deferred to a restart, which started" if deferred_at else ""),
                         time.monotonic() - t0)
                    return True
                time.sleep(0.3)
            gw.stop()
            out = gw.output()
            if "MemoryError" in out or "out of memory" in out:
                why = "MemoryError; " + why
            _say(heap_k, False, why, time.monotonic() - t0)
            return False
        finally:
            if gw is not None:
                gw.close()
            rig.close()


# ---- 5. what the collection threshold costs
GC_MINUTES = 4.0
GC_SPEED = 10  # the clock's speed in the gc run: uploads and update checks 10x as often as on a site
# One collection on the ESP32 against the sim: marking and sweeping are tight C loops over the heap's
# allocation table and the live objects (no bytecode), and an ESP32 heap of half the bytes holds the
# same objects in the same number of blocks (16-byte blocks against 32): the same work at a 240 MHz
# in-order core against this host's, about 15x on that reasoning; the bench's x30 rule for bytecode
# (bench_bus.ESP32_FACTOR) is taken as the upper bound.
GC_ESP32_FACTOR = 15
GC_ESP32_UPPER = 30
GC_WATCH_MAIN = """
import asyncio, gc, time
_GC = [0, 0, time.ticks_ms(), 0]  # collections seen, bytes allocated, ticks of the start, drops
async def _gc_watch():
    last = gc.mem_alloc()
    while True:
        await asyncio.sleep_ms(5)
        a = gc.mem_alloc()
        if a < last:
            _GC[3] += 1
            if last - a >= %d:
                _GC[0] += 1
        else:
            _GC[1] += a - last
        last = a
_run = asyncio.run
def _watched(main):
    async def both():
        asyncio.create_task(_gc_watch())
        return await main
    return _run(both())
asyncio.run = _watched
exec(open(%r).read())
"""
GC_DROP = 2048
GC_READ = ("print('GCWATCH', _GC[0], _GC[1], time.ticks_diff(time.ticks_ms(), _GC[2]), _GC[3], gc.threshold())\r"
           "import gc, time; gc.collect(); t = time.ticks_us()\r"
           "for _ in range(20): gc.collect()\r\r"
           "import board; print('GCTIME', time.ticks_diff(time.ticks_us(), t) / 20, gc.mem_alloc(), gc.mem_free(), "
           "board.ROMFS_BYTES)\r")


def gc_run(heap_k: int, threshold: bool, minutes: float) -> dict | None:
    """The full feature set for `minutes` with the app's threshold (or NJ_GC_THRESHOLD=0), watched:
    {"n": collections, "alloc": bytes, "ms": run time, "us": one collection, "used", "free"}."""
    import re

    from nengjian_host.sim import build as simbuild
    from nengjian_host.sim import romfs_image as sim_romfs

    with tempfile.TemporaryDirectory() as d:
        rig = FullRig(Path(d), speed=GC_SPEED)
        gw = None
        try:
            watch = Path(d) / "watch"
            watch.mkdir()
            (watch / "main.py").write_text(GC_WATCH_MAIN % (GC_DROP, str(simbuild.firmware_path() / "main.py")))
            gw = rig.gateway(heap_k, None if threshold else {"NJ_GC_THRESHOLD": "0"})
            gw.firmware = watch
            gw.romfs = sim_romfs()
            gw.start()
            end = time.monotonic() + minutes * 60
            while time.monotonic() < end:
                if not gw.alive():
                    print("  gateway exited:\n" + gw.output()[-1500:])
                    return None
                time.sleep(1)
            values = (len(rig.plain.records()), len(rig.sm4.records()))
            gw.write_console(b"\x03")
            gw.expect(r'Type "help\(\)" for more information', timeout=30)
            time.sleep(0.5)
            gw.write_console(GC_READ.encode())
            m = gw.expect(r"GCTIME ([0-9.]+) (\d+) (\d+) (\d+)", timeout=30)
            w = re.search(r"GCWATCH (\d+) (\d+) (\d+) (\d+) (-?\d+)", gw.output())
            if w is None:
                return None
            return {"n": int(w.group(1)), "alloc": int(w.group(2)), "ms": int(w.group(3)), "drops": int(w.group(4)),
                    "threshold": int(w.group(5)), "us": float(m.group(1)),
                    "used": int(m.group(2)), "free": int(m.group(3)), "image": int(m.group(4)), "values": values}
        finally:
            if gw is not None:
                gw.close()
            rig.close()


def gc_cost(heap_k: int, minutes: float = GC_MINUTES) -> None:
    print("collections and their CPU: the full feature set from ROMFS in %s, %.0f min each way, clock %dx "
          "(uploads and update checks %dx as often as on a site: an upper bound); counted since the last boot" % (
              kib(heap_k), minutes, GC_SPEED, GC_SPEED), flush=True)
    rows = []
    for on in (True, False):
        r = gc_run(heap_k, on, minutes)
        if r is None:
            print("  threshold %s: no figure (the run failed)" % ("on" if on else "off"))
            continue
        hours = r["ms"] / 3.6e6
        per_h = r["n"] / hours
        # The sim's collection also scans the ROMFS image held in its heap (conservative marking reads
        # every word of a live block); on the chip the image is in flash: scaled to the heap without it.
        us = r["us"] * (r["used"] - r["image"]) / max(1, r["used"])
        share = per_h * us / 3.6e9 * 100
        rows.append((on, per_h, share))
        print("  threshold %-8s: %5d collections in %.1f min = %5.0f/h (%d drops of the live heap in all); "
              "%5.0f kB/h allocated at least%s" % (
                  "%d B" % r["threshold"] if on else "off", r["n"], r["ms"] / 60000.0, per_h, r["drops"],
                  r["alloc"] / hours / 1000.0,
                  " (%.0f/h by allocation / threshold)" % (r["alloc"] / hours / r["threshold"]) if on and
                  r["threshold"] > 0 else ""), flush=True)
        print("      one collection %.0f us on the sim (%d B live, %d B of it the image), %.0f us without the "
              "image -> CPU %.3f %%; ESP32 (x%d, at most x%d): %.1f ms each, %.2f %% (at most %.2f %%); "
              "values %d + %d" % (r["us"], r["used"], r["image"], us, share, GC_ESP32_FACTOR, GC_ESP32_UPPER,
                                  us * GC_ESP32_FACTOR / 1000.0, share * GC_ESP32_FACTOR, share * GC_ESP32_UPPER,
                                  r["values"][0], r["values"][1]), flush=True)
    if len(rows) == 2:
        extra = rows[0][2] - rows[1][2]
        print("  the threshold's cost: %+.0f collections/h, %+.3f %% CPU on the sim, %+.2f %% on an ESP32 "
              "(at most %+.2f %%)" % (rows[0][1] - rows[1][1], extra, extra * GC_ESP32_FACTOR,
                                      extra * GC_ESP32_UPPER))


def loaded_modules(gw) -> list[str]:
    """Stop the application (Ctrl-C) and read, at the REPL it leaves, the modules it had loaded."""
    gw.write_console(b"\x03")
    gw.expect(r'Type "help\(\)" for more information', timeout=30)
    time.sleep(0.5)  # the prompt ends no line: give the REPL a moment to read
    gw.write_console(b"import gc, sys; gc.collect()\r")
    # One line per module: a full heap may have no block for the whole list joined.
    gw.write_console(b"for m in sys.modules: print('MODULE', m)\r\r")
    gw.write_console(b"print('MODULES END')\r")
    gw.expect(r"^MODULES END", timeout=30)
    return sorted(set(line.split()[1] for line in gw.output().splitlines()
                      if line.startswith("MODULE ") and len(line.split()) == 2))


def day_run(heap_k: int, speed: float, env: dict | None = None, day_s: float = DAY_S, got: dict | None = None):
    """A simulated day (day_s) of the full feature set in heap_k: (the console status at the end, the
    modules loaded then, what went wrong or ""). The crew's status and scan come at noon and at the
    end of the day. got (if given) receives the largest free block (heap_blocks) at the day's end
    ("before" the crew's status and scan), right "after" them, and a "quiet" minute later."""
    t0 = time.monotonic()
    got = {} if got is None else got
    with tempfile.TemporaryDirectory() as d:
        rig = FullRig(Path(d), speed=speed)
        gw = None
        try:
            gw = rig.gateway(heap_k, env).start()
            day_ends = t0 + day_s / speed
            mid_checked = False
            while time.monotonic() < day_ends:
                if not gw.alive():
                    return None, [], "gateway exited during the day:\n" + gw.output()[-1500:]
                if not mid_checked and time.monotonic() > t0 + day_s / speed / 2:
                    console_checks(gw)  # the crew's visit at noon leaves what it leaves in the heap
                    mid_checked = True
                time.sleep(1)
            # The running gateway's largest block before the crew's commands load, and after them.
            got["before"] = heap_blocks(gw)
            st, why = console_checks(gw)
            st = st if not why else None
            got["after"] = heap_blocks(gw)
            time.sleep(CONSOLE_QUIET_S)  # what stays loaded between crew visits
            got["quiet"] = heap_blocks(gw)
            try:
                mods = loaded_modules(gw)
            except TimeoutError as e:
                mods = []
                why = why or "modules not read at the REPL: %s" % str(e)[-300:]
            values = (len(rig.plain.records()), len(rig.sm4.records()))
            print("  %.0f s of simulated time in %.0f s at %s: %d and %d values accepted (plain, SM4), "
                  "%d update checks" % (day_s, time.monotonic() - t0, kib(heap_k), values[0], values[1],
                                        rig.checks()), flush=True)
            return st, mods, why
        finally:
            if gw is not None:
                gw.close()
            rig.close()


# ---- 4. what the code costs
# nengjian.app and, since the app imports the meters' code where it builds them, the Modbus poll path:
# together the core every gateway holds (the factory and profile loader are dropped after boot).
CORE = ["nengjian.app", "nengjian.meters.modbus_meter"]
MODULES = CORE + ["nengjian.console.commands", "nengjian.ota", "nengjian.ota.updater", "nengjian.ota.fetch",
           "nengjian.net.modem", "nengjian.net.cellular", "nengjian.values.tce", "nengjian.crypto.sm4",
           "nengjian.proto.cjt188", "nengjian.uplink.centerinfo", "nengjian.meters.scan", "nengjian.meters.refusals",
           "nengjian.system.clock"]
MODULE_COST = """
import gc
gc.collect()
start = gc.mem_alloc()
for m in %r:
    gc.collect(); b = gc.mem_alloc()
    __import__(m)
    gc.collect(); print("%%-34s %%7d" %% (m, gc.mem_alloc() - b))
gc.collect(); print("TOTAL %%d" %% (gc.mem_alloc() - start))
"""


def _micropython_env(extra: dict | None = None) -> dict:
    from nengjian_host.common import paths
    from nengjian_host.sim import build as simbuild

    return dict(os.environ, MICROPYPATH=os.pathsep.join([str(simbuild.firmware_path()), str(paths.BOARDS / "sim"),
                                                         ".frozen"]), **(extra or {}))


def import_cost(modules: list[str], rom: Path | None = None) -> tuple[list[tuple[str, int]], int]:
    """([(module, heap it added)], total) importing `modules` in order in a fresh 4 MB heap; with `rom`,
    the package imported from that ROMFS image (the sim board mounts it when `board` is imported; the
    image's own bytes, board.ROMFS_BYTES, are left out of every figure)."""
    from nengjian_host.common import paths

    code = MODULE_COST % modules
    heap = 4 * 1024 * 1024
    env = None
    if rom is not None:
        heap += rom.stat().st_size
        env = {"NJ_ROMFS": str(rom)}
        code = MODULE_COST_ROM % modules
    out = subprocess.run([paths.micropython_binary(), "-X", "heapsize=%d" % heap, "-c", code],
                         env=_micropython_env(env), capture_output=True, text=True, timeout=120)
    rows, total = [], -1
    for line in out.stdout.splitlines():
        if line.startswith("TOTAL "):
            total = int(line.split()[1])
        elif line.strip():
            name, n = line.split()
            rows.append((name, int(n)))
    if total < 0:
        raise RuntimeError(out.stderr.strip()[-800:])
    return rows, total


# As MODULE_COST, with `board` imported first (it mounts the image and puts /rom first on sys.path) and
# its cost, less the image, counted in the first module's line, as importing nengjian.app counts it.
MODULE_COST_ROM = """
import gc
gc.collect()
start = gc.mem_alloc()
import board
start += board.ROMFS_BYTES
first = True
for m in %r:
    gc.collect(); b = start if first else gc.mem_alloc()
    first = False
    __import__(m)
    gc.collect(); print("%%-34s %%7d" %% (m, gc.mem_alloc() - b))
gc.collect(); print("TOTAL %%d" %% (gc.mem_alloc() - start))
"""


def code_modules(loaded: list[str]) -> list[str]:
    """What of a gateway's sys.modules is the application's code (not the port's built-ins)."""
    return [m for m in loaded if m == "board" or m.startswith("nengjian") or m.startswith("asyncio")]


# ---- with ROMFS
ROMFS = False  # the trials' gateways import the package from the ROMFS image (main sets it per mode)


def romfs_image() -> tuple[Path | None, str]:
    """(the sim's ROMFS image of the compiled tree, "") or (None, why there is none). The sim board
    reads the image into its heap (the unix port cannot map a file); the sim launcher grows
    -X heapsize by the image's size, so every heap figure of this mode is what the code gets."""
    try:
        from nengjian_host.sim import romfs_image as build_image
    except ImportError:
        return None, "this checkout's sim board cannot mount a ROMFS image"
    try:
        return build_image(), ""
    except Exception as e:  # noqa: BLE001 - no image (mpremote missing...): said, not fatal
        return None, "no ROMFS image: %s" % e


def run_mode(only: set, day_speed: float, day_heap_k: int | None = None, day_s: float = DAY_S) -> dict:
    """The figures of one mode (ROMFS on or off, the module global): {"workload", "full", "day",
    "loaded"}."""
    got: dict = {}
    if "workload" in only:
        print("smallest heap for the make-run workload:", flush=True)
        k = bisect(workload_trial)
        got["workload"] = k
        print("smallest heap that runs the make-run workload: %s (about %s on an ESP32)" % (
            kib(k) if k else "none up to %s" % kib(HIGH_K), esp32(k * 1024) if k else "?"))
    full_k = None
    if "full" in only:
        print("smallest heap for the full feature set (Modbus + DL/T 645 bus, 4G modem, plain + SM4 "
              "destinations, update check, console status and scan):", flush=True)
        full_k = bisect(full_trial)
        got["full"] = full_k
        print("smallest heap that runs the full feature set: %s (about %s on an ESP32; target %s)" % (
            kib(full_k) if full_k else "none up to %s" % kib(HIGH_K), esp32(full_k * 1024) if full_k else "?",
            kib(TARGET_HEAP_K)), flush=True)
    if "day" in only:
        heap_k = day_heap_k or (max(full_k or 0, TARGET_HEAP_K) if "full" in only else HIGH_K)
        print("a simulated day of the full feature set (clock %gx) in %s:" % (day_speed, kib(heap_k)), flush=True)
        blocks: dict = {}
        st, got["loaded"], why = day_run(heap_k, day_speed, day_s=day_s, got=blocks)
        for when, text in (("before", "at the end of the day, before the crew's status and scan"),
                           ("after", "right after the crew's status and scan"),
                           ("quiet", "a quiet minute later (the console's commands dropped)")):
            b, bwhy = blocks.get(when) or (None, "not reached")
            print("largest free block %s (mem_info max free sz): %s (target %d B)" % (
                text, "%d B, about %s on an ESP32" % (b, esp32(b)) if b is not None else "not measured: " + bwhy,
                TARGET_MAX_FREE_B), flush=True)
        got["day_block"] = blocks.get("before", (None, ""))[0]
        if st is not None:
            mf = st.get("heap_max_free")
            got["day"] = mf
            print("status after the day: heap_max_free %s B of %s B free (about %s on an ESP32; target %d B)" % (
                mf, st.get("heap_free"), esp32(mf) if isinstance(mf, int) else "?", TARGET_MAX_FREE_B))
        else:
            print("status after the day: FAILED (%s)" % why)
    return got


def module_tables(loaded: list[str], rom: Path | None) -> None:
    rows, total = import_cost(MODULES)
    rom_rows, rom_total = import_cost(MODULES, rom) if rom is not None else ([], 0)
    rom_of = dict(rom_rows)
    print("heap held by the application's modules once imported (bytes, 64-bit host; each line adds what its")
    print("imports bring that the lines above did not; nengjian.app is the core every gateway loads):")
    print("%-34s %7s %7s" % ("", ".mpy", "ROMFS" if rom is not None else ""))
    for name, n in rows:
        print("%-34s %7d %7s" % (name, n, rom_of.get(name, "")))
    print("%-34s %7d %7s" % ("all", total, rom_total if rom is not None else ""))
    core = sum(n for name, n in rows if name in CORE)
    print("%-34s %7d %7s" % ("core (" + " + ".join(CORE) + ")", core,
                             sum(n for name, n in rom_rows if name in CORE) if rom is not None else ""))
    if not loaded:  # no day run: a short one (the console's status and scan, an update check)
        print("the modules a full-feature gateway loads (a short run with the console's status and scan):",
              flush=True)
        _st, loaded, _why = day_run(HIGH_K, 60, day_s=60 * 40)
    if loaded:
        mods = code_modules(loaded)
        _rows, ff = import_cost(mods)
        print("heap held by the %d modules a full-feature gateway had loaded (after the day, a quiet minute "
              "after the crew's last request): %d B (about %s on an ESP32; target %d B)" % (
                  len(mods), ff, esp32(ff), TARGET_CODE_B))
        if rom is not None:
            _rows, rff = import_cost(mods, rom)
            print("  the same from ROMFS: %d B (about %s on an ESP32)" % (rff, esp32(rff)))
        print("  " + " ".join(m.replace("nengjian.", "") for m in mods))


def main():
    global ROMFS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("workload", "full", "day", "modules", "gc"), action="append")
    ap.add_argument("--mode", choices=("both", "mpy", "romfs"), default="both",
                    help="the package from .mpy files (in the heap), from a ROMFS image, or both")
    ap.add_argument("--day-speed", type=float, default=DAY_SPEED)
    ap.add_argument("--day-heap", type=int, help="KiB of heap for the day (default: the full feature set's "
                                                 "smallest, at least %d)" % TARGET_HEAP_K)
    ap.add_argument("--day-hours", type=float, default=DAY_S / 3600,
                    help="simulated hours of the day run (shorter: a quicker look, not the figure)")
    ap.add_argument("--gc-heap", type=int, default=288, help="KiB of heap for the gc run (default 288)")
    ap.add_argument("--gc-minutes", type=float, default=GC_MINUTES)
    args = ap.parse_args()
    only = set(args.only or ("workload", "full", "day", "modules", "gc"))
    if only == {"gc"}:
        gc_cost(args.gc_heap, args.gc_minutes)
        return
    rom, why = romfs_image() if args.mode != "mpy" else (None, "not asked for (--mode mpy)")
    loaded: list[str] = []
    if args.mode != "romfs":
        print("== the package from .mpy files (its bytecode in the heap)", flush=True)
        loaded = run_mode(only, args.day_speed, args.day_heap, args.day_hours * 3600).get("loaded") or []
    if rom is not None:
        ROMFS = True
        print("== the package from the ROMFS image (%d bytes, mounted at /rom; not counted in any heap figure)"
              % rom.stat().st_size, flush=True)
        got = run_mode(only - {"modules"}, args.day_speed, args.day_heap, args.day_hours * 3600)
        loaded = loaded or got.get("loaded") or []
        ROMFS = False
    else:
        print("== with ROMFS: not measured (%s)" % why)
    if "modules" in only:
        module_tables(loaded, rom)
    if "gc" in only:
        gc_cost(args.gc_heap, args.gc_minutes)


if __name__ == "__main__":
    main()
