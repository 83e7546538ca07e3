"""Safe mode for a bad config (nengjian.appboot) on MicroPython: what it holds for the console's status
and the status page stays the same past KEPT problems, however many the config has; the status counts
the rest, and the laptop says how many more there are in Chinese and in English."""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy

pytestmark = [pytest.mark.mpy]

KEPT = 8  # the problems safe mode promises to hold at most (nengjian.appboot.SAFE_KEPT)

SCRIPT = r"""
import asyncio, gc, json
import board
from nengjian import appboot
from nengjian.console import protocol

class Console:
    # Stands for nengjian.console.protocol's console: what safe mode hands it, and when.
    def __init__(self):
        self.entered = asyncio.Event()
        self.reason = self.why = None

    def safe(self, reason, why=None):
        self.reason, self.why = reason, why
        if reason is not None:
            self.entered.set()

class App:
    # What appboot.start asks of nengjian.app before a config is valid.
    _guard = None
    VERSION = "0-test"

    def _unmount(self, data):
        import vfs
        vfs.umount(data)

class Reread:
    # Safe mode's 5 s between reads of the config, made a wait for the test's word.
    now = asyncio.Event()

    @staticmethod
    async def sleep_ms(ms):
        await Reread.now.wait()
        Reread.now.clear()

appboot.asyncio = Reread
con = Console()
protocol._console = con
app = App()

def put(name):
    with open(name) as f, open(board.CONFIG_DIR + "/site.json", "w") as g:
        g.write(f.read())

async def held():
    put("first.json")
    con.entered = asyncio.Event()
    task = asyncio.create_task(appboot.start(app, None))
    await asyncio.wait_for_ms(con.entered.wait(), 60000)
    if NEXT:  # the config sent again, with other problems, and read again in safe mode
        put("next.json")
        con.entered = asyncio.Event()
        Reread.now.set()
        await asyncio.wait_for_ms(con.entered.wait(), 60000)
    for _ in range(4):  # on into safe mode's wait for the next read of the config
        await asyncio.sleep_ms(0)
    gc.collect()
    gc.collect()
    alloc = gc.mem_alloc()
    why = con.why
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    con.reason = con.why = None
    return alloc, why

async def main():
    await held()  # the first start formats the volume and loads the checks: the second one is measured
    alloc, why = await held()
    print("RESULT " + json.dumps({"alloc": alloc, "why": why, "kept": getattr(appboot, "SAFE_KEPT", None)}))

asyncio.run(main())
"""


def _site(problems: int, bus: str = "b9") -> dict:
    """A site config with `problems` problems alike (a meter on a bus the site has not)."""
    from nengjian_host.sim.gateway import demo_site

    cfg = demo_site("http://127.0.0.1:1/api/register")
    cfg["meters"] += [{"id": "x%03d" % i, "bus": bus, "profile": "sim-energy", "address": 100 + i}
                      for i in range(problems)]
    return cfg


def _safe_mode(tmp_path, problems: int, reread: bool = False) -> dict:
    """What safe mode holds for a config of `problems` problems: the heap allocated and the status's
    "safe". reread: the gateway went into safe mode for another config (one problem) and reads this one
    in safe mode, as after a provision."""
    from nengjian_host.common import paths

    sim = tmp_path / ("p%d%s" % (problems, "r" if reread else ""))
    (sim / "config").mkdir(parents=True)
    (sim / ("next.json" if reread else "first.json")).write_text(json.dumps(_site(problems)))
    if reread:
        (sim / "first.json").write_text(json.dumps(_site(1, "b8")))  # a reason of its own: said again
    proc = run_mpy(SCRIPT.replace("NEXT", repr(reread)), heap="512k", cwd=str(sim),
                   env={"NJ_SIM_DIR": sim, "NJ_DATA_KB": 256, "NJ_PROFILES": paths.PROFILES})
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, proc.stdout + proc.stderr
    return json.loads(line[0][len("RESULT "):])


@pytest.mark.parametrize("reread", [False, True], ids=["at-start", "read-again-in-safe-mode"])
def test_safe_mode_holds_no_more_past_the_kept_problems(tmp_path, reread):
    from nengjian.config import validate

    many = validate.LIMIT + 10  # past what the checks name in full, too
    one, kept, full = (_safe_mode(tmp_path, n, reread) for n in (1, KEPT, many))
    assert kept["why"]["problems"] and len(kept["why"]["problems"]) == KEPT, kept["why"]
    per_problem = (kept["alloc"] - one["alloc"]) / (KEPT - 1)
    # Past KEPT, a problem is only counted: the heap held may not grow by even one more problem's worth.
    assert full["alloc"] - kept["alloc"] <= per_problem, (one["alloc"], kept["alloc"], full["alloc"], per_problem)
    why = full["why"]
    assert len(why["problems"]) == KEPT and len(why["codes"]) == 2 * KEPT, why
    assert why["more"] == many - KEPT, why
    assert why["problems"][0] == "meters[2].bus: no bus named 'b9'" and why["codes"][:2] == ["no_bus", ["b9"]]
    assert full["kept"] == KEPT


def test_the_laptop_says_how_many_more_in_both_languages(tmp_path):
    from nengjian_host.crew.status import safe_texts

    many = 30
    why = _safe_mode(tmp_path, many)["why"]
    lines = safe_texts({"mode": "safe", "safe_reason": "config: ...", "safe": why})
    assert len(lines) == 1 + KEPT + 1, [str(x) for x in lines]
    assert "没有名为 'b9' 的总线" in lines[1].zh
    rest = many - KEPT
    assert "另有 %d 处问题" % rest in lines[-1].zh and "nengjian check-config" in lines[-1].zh, lines[-1].zh
    assert "and %d more problems" % rest in str(lines[-1]) and "check-config" in str(lines[-1]), str(lines[-1])
