"""Which module holds how much of the code heap, on the sim board (MicroPython unix port, 64-bit host:
an ESP32 holds about half).

bench_heap's module figures charge each import with everything it brings in; this one charges each
module only with its own objects (module, classes, functions, constants) and the names it is the first
to intern: the modules are imported leaves first, in the order of their module-level imports (read
from the firmware's sources), so when a module is imported everything it imports at load time is
already there. The qstr pools grow in chunks, so the module that happens to cross a chunk's end would
be charged the whole chunk: each module is charged instead its new names times the pools' average
cost per name at the end (the column "names"; "objects" is the rest). A package's __init__ is charged
to its first submodule imported when the two import each other. The list is the modules a full-feature gateway had loaded (bench_heap's short run with
the console's status and scan and an update check), or --modules.

The ESP32 boards' own modules (boards/<name>/board.py and the boards/common modules its board.json
shares) are bundled as .mpy in /lib, outside ROMFS, so their bytecode sits in the chip's heap; they
are measured apart, compiled with mpy-cross and imported on the unix port with empty stand-ins for
`esp32` and `network` (what tests/boards does): the shared modules first, then the board's own.

Usage: bench_modules.py [--mode romfs|mpy] [--top N] [--modules a,b,...] [--boards-only]
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]

import bench_heap  # noqa: E402

FIRMWARE = ROOT / "firmware"


def source_of(mod: str) -> Path | None:
    base = FIRMWARE.joinpath(*mod.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


def load_time_imports(mod: str) -> list[str]:
    """The modules `mod` imports when it loads (imports inside functions run later, so not these)."""
    src = source_of(mod)
    if src is None:
        return []
    out = []
    pkg = mod if src.name == "__init__.py" else mod.rpartition(".")[0]

    def walk(nodes):
        for n in nodes:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(n, ast.Import):
                out.extend(a.name for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - n.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                out.append(base)
                out.extend(base + "." + a.name for a in n.names if source_of(base + "." + a.name))
            if isinstance(n, ast.ClassDef):
                walk(n.body)
            else:
                walk(ast.iter_child_nodes(n))

    walk(ast.parse(src.read_text()).body)
    return out


def leaves_first(mods: list[str]) -> list[str]:
    """mods ordered so a module's parent packages and load-time imports come before it."""
    want = set(mods)
    order: list[str] = []
    seen: set[str] = set()

    def visit(m: str) -> None:
        if m in seen:
            return
        seen.add(m)
        parts = m.split(".")
        for i in range(1, len(parts)):
            visit(".".join(parts[:i]))
        for d in load_time_imports(m):
            if d in want or source_of(d):
                visit(d)
        order.append(m)

    for m in sorted(want):
        visit(m)
    return [m for m in order if m in want or m == "nengjian"]


# Each import: its heap delta and the qstr pools' figures after it (micropython.qstr_info prints them).
_START = """
import gc, micropython
gc.collect()
start = gc.mem_alloc()
micropython.qstr_info()
"""
_EACH = """
for m in %r:
    gc.collect(); b = gc.mem_alloc()
    __import__(m)
    gc.collect(); print("MOD", m, gc.mem_alloc() - b)
    micropython.qstr_info()
gc.collect(); print("TOTAL %%d" %% (gc.mem_alloc() - start))
"""
OWN_COST = _START + """
import board
gc.collect(); print("MOD board", gc.mem_alloc() - start - board.ROMFS_BYTES)
micropython.qstr_info()
start += board.ROMFS_BYTES
""" + _EACH + """
import sys
for m in %r:
    gc.collect(); b = gc.mem_alloc()
    try:
        __import__(m)
    except ImportError:
        continue
    sys.modules.pop(m, None)
    p, _, leaf = m.rpartition(".")
    if p in sys.modules and leaf in sys.modules[p].__dict__:
        delattr(sys.modules[p], leaf)
    gc.collect(); print("COLD", m, gc.mem_alloc() - b)
"""
# The cold modules a gateway runs at boot (loaded for the call, dropped after): what stays of them is
# the names they were the first to intern, held for the run (a name is never freed).
BOOT_COLD = ("nengjian.appboot", "nengjian.store.cold", "nengjian.values.intervalboot")
QSTR = re.compile(r"n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)")


COLD_LEFT: list[tuple[str, int]] = []  # (cold module, bytes left once it was dropped): own_cost fills it


def own_cost(order: list[str], rom: Path | None) -> tuple[list[tuple[str, int, int, int]], int]:
    """([(module, own bytes, objects, names)], total of the imports, board's image left out)."""
    from nengjian_host.common import paths

    heap = 4 * 1024 * 1024 + (rom.stat().st_size if rom else 0)
    env = {"NJ_ROMFS": str(rom)} if rom else None
    out = subprocess.run([paths.micropython_binary(), "-X", "heapsize=%d" % heap, "-c",
                          OWN_COST % ([m for m in order if m != "board"], list(BOOT_COLD))],
                         env=bench_heap._micropython_env(env), capture_output=True, text=True, timeout=120)
    return _rows(out)


def _rows(out: subprocess.CompletedProcess[str]) -> tuple[list[tuple[str, int, int, int]], int]:
    """(module, own bytes, objects, names) for each MOD line of a cost run's output, and its TOTAL (COLD
    lines to COLD_LEFT). A module's names are the qstrs it added at the run's mean bytes per qstr."""
    steps, total, q = [], -1, []
    for line in out.stdout.splitlines():
        m = QSTR.search(line)
        if m:
            q.append((int(m.group(1)), int(m.group(3))))
        elif line.startswith("MOD "):
            steps.append((line.split()[1], int(line.split()[2])))
        elif line.startswith("TOTAL "):
            total = int(line.split()[1])
        elif line.startswith("COLD "):
            COLD_LEFT.append((line.split()[1], int(line.split()[2])))
    if total < 0 or len(q) != len(steps) + 1:
        raise RuntimeError(out.stderr.strip()[-800:])
    per_name = (q[-1][1] - q[0][1]) / max(1, q[-1][0] - q[0][0])
    rows = []
    for i, (mod, n) in enumerate(steps):
        names = round((q[i + 1][0] - q[i][0]) * per_name)
        objs = n - (q[i + 1][1] - q[i][1])
        rows.append((mod, objs + names, objs, names))
    return rows, total


ESP32_BOARDS = ("esp32_eth", "esp32s3_4g")
BOARD_COST = _START + _EACH


def board_cost(name: str) -> tuple[list[tuple[str, int, int, int]], int]:
    """As own_cost, for an ESP32 board's modules compiled to .mpy."""
    import json
    import tempfile

    from nengjian_host.common import bundle, paths

    spec = json.loads((paths.BOARDS / name / "board.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for mod in ("esp32", "network"):  # the unix port has machine, not these
            (d / (mod + ".py")).write_text("")
        srcs = [(paths.BOARDS / name / "board.py", "board")]
        srcs += [(paths.BOARDS / "common" / f, f[:-3]) for f in spec.get("shared", ())]
        for src, mod in srcs:
            (d / (mod + ".mpy")).write_bytes(bundle.compile_module(src, mod + ".py", None))
        # the shared modules first (board imports them as it loads), then board; a cold module is
        # loaded for a call and dropped (esp32_common._cold), so it holds nothing once the board runs
        order = [mod for _src, mod in srcs[1:] if not mod.endswith("_cold")] + ["board"]
        out = subprocess.run([paths.micropython_binary(), "-X", "heapsize=1m", "-c", BOARD_COST % order],
                             env=dict(bench_heap._micropython_env(), MICROPYPATH=str(d)), capture_output=True,
                             text=True, timeout=120)
    return _rows(out)


def print_boards() -> None:
    print("the ESP32 boards' modules (.mpy in /lib, bytecode in the heap; bytes, 64-bit host, ESP32 about half):")
    print("  %-34s %7s %7s %7s" % ("", "own", "objects", "names"))
    for name in ESP32_BOARDS:
        rows, total = board_cost(name)
        for mod, n, objs, names in rows:
            print("  %-34s %7d %7d %7d" % ("%s: %s" % (name, mod), n, objs, names))
        print("  %-34s %7d (about %s on an ESP32)" % ("%s: all" % name, total, bench_heap.esp32(total)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("romfs", "mpy"), default="romfs")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--modules", help="comma-separated; default: what a full-feature gateway loads")
    ap.add_argument("--boards-only", action="store_true", help="only the ESP32 boards' modules")
    args = ap.parse_args()
    print_boards()
    if args.boards_only:
        return
    rom = None
    if args.mode == "romfs":
        rom, why = bench_heap.romfs_image()
        if rom is None:
            raise SystemExit(why)
    if args.modules:
        mods = args.modules.split(",")
    else:
        print("the modules a full-feature gateway loads (a short run with the console's status and scan):",
              flush=True)
        _st, loaded, why = bench_heap.day_run(bench_heap.HIGH_K, 60, day_s=60 * 40)
        mods = bench_heap.code_modules(loaded)
        if not mods:
            raise SystemExit("no modules read from the gateway: %s" % why)
    # board comes first (in ROMFS mode it mounts the image; its line leaves the image out)
    order = leaves_first([m for m in mods if m != "board"])
    rows, total = own_cost(order, rom)
    print("code heap of the %d modules, each module's own (%s, bytes, 64-bit host; ESP32 about half):"
          % (len(rows), "ROMFS" if rom else ".mpy"))
    print("  %-34s %7s %7s %7s" % ("", "own", "objects", "names"))
    for name, n, objs, names in sorted(rows, key=lambda r: -r[1])[: args.top]:
        print("  %-34s %7d %7d %7d" % (name, n, objs, names))
    print("  %-34s %7d (about %s on an ESP32; target %d B)" % ("all", total, bench_heap.esp32(total),
                                                                 bench_heap.TARGET_CODE_B))
    left = sum(n for _m, n in COLD_LEFT)
    print("  %-34s %7d (%s: the names they intern stay; with them %d B, about %s on an ESP32)"
          % ("left by boot-time cold modules", left, ", ".join(m for m, _n in COLD_LEFT), total + left,
             bench_heap.esp32(total + left)))
    print("  modules: " + ",".join(mods))


if __name__ == "__main__":
    main()
