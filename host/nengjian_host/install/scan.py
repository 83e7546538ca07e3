"""`nengjian scan`: find the meters on a gateway's RS-485 port and print what to paste into the
site config.

The scan itself runs on the gateway (firmware nengjian.meters.scan: it owns the bus timing); this
module sends it there through a transport, collects the JSON lines it prints, and turns the finds
into a table and a `meters` array. A transport is anything with

    exec_lines(code: str, timeout: float) -> iterator of output lines

so the USB console (mpremote exec on the gateway's console) plugs in with `run_on(transport, ...)`.
For now the one transport is SimTransport: the firmware on the sim board (the MicroPython unix port
with MICROPYPATH = the firmware as nengjian_host.sim.build compiles it, and boards/sim/), its RS-485
ports wired to pty paths.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field

from nengjian_host.common import messages, paths

# Profiles to suggest per protocol; Modbus meters cannot say what they are: the installer chooses.
PROFILE_HINT = {
    "dlt645-2007": "dlt645-2007-generic",
    "dlt645-1997": "dlt645-1997-generic",
    "cjt188": "cjt188-water",
    "modbus-rtu": "CHOOSE-A-PROFILE",
}
CJT188_TYPES = {0x10: "cjt188-water", 0x11: "cjt188-water", 0x12: "cjt188-water", 0x13: "cjt188-water",
                0x20: "cjt188-heat", 0x21: "cjt188-heat", 0x30: "cjt188-gas"}


class SimTransport:
    """Runs firmware code on the sim board in a fresh MicroPython process."""

    def __init__(self, buses: dict[int, str], heap: str = "288k", env: dict | None = None):
        self.buses = buses
        self.heap = heap
        self.extra_env = env or {}

    def env(self) -> dict:
        from nengjian_host.sim import (
            build as simbuild,  # the firmware as the sim gateway runs it (compiled .mpy)
        )

        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([str(simbuild.firmware_path()), str(paths.BOARDS / "sim"), ".frozen"])
        env.setdefault("NJ_PROFILES", str(paths.PROFILES))
        for n, path in self.buses.items():
            env["NJ_BUS%d" % n] = path
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    def exec_lines(self, code: str, timeout: float = 600):
        cmd = [paths.micropython_binary(), "-X", "heapsize=" + self.heap, "-c", code]
        proc = subprocess.Popen(cmd, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, bufsize=1)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                yield line.rstrip("\n")
            proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        if proc.returncode:
            yield json.dumps({"error": "micropython exited with code %d" % proc.returncode})


@dataclass
class ScanResult:
    finds: list[dict] = field(default_factory=list)
    done: dict | None = None
    errors: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # console lines that are not scan output


def scan_code(options: dict) -> str:
    """The code the gateway runs: the firmware's scan entry with the options as JSON."""
    return "from nengjian.meters import scan\nscan.main(%r)\n" % json.dumps(options)


def run_on(transport, options: dict, on_event=None, timeout: float = 3600) -> ScanResult:
    """Run the scan through `transport`; on_event(kind, payload) sees finds and progress live."""
    res = ScanResult()
    for line in transport.exec_lines(scan_code(options), timeout):
        try:
            msg = json.loads(line)
        except ValueError:
            res.other.append(line)
            continue
        if not isinstance(msg, dict) or len(msg) != 1:
            res.other.append(line)
            continue
        kind, payload = next(iter(msg.items()))
        if kind == "find":
            res.finds.append(payload)
        elif kind == "done":
            res.done = payload
        elif kind == "error":
            res.errors.append(payload)
        if on_event:
            on_event(kind, payload)
    if res.done is None and not res.errors:
        res.errors.append(messages.msg("scan.unfinished"))
    return res


def _line_text(f: dict) -> str:
    return "%d %d%s%d" % (f["baud"], f["bits"], f["parity"], f["stop"])


def table(finds: list[dict]) -> str:
    """The finds as a table in the chosen language (a meter's reply said back from the gateway's English)."""
    from nengjian_host.common import siteconfig
    from nengjian_host.common.messages import get_lang, t

    zh = get_lang() == "zh"
    rows = [tuple(t("out.scan.col." + c) for c in ("protocol", "address", "line", "answer"))]
    for f in finds:
        mark = "" if f["ok"] else "?? "
        reply = siteconfig.said_back(f["reply"], "scanreply.")
        rows.append((f["protocol"], "-" if f["address"] is None else str(f["address"]), _line_text(f),
                     mark + (reply.zh if zh else str(reply))))
    from rich.cells import cell_len  # a Chinese character takes two columns of a terminal

    widths = [max(cell_len(r[i]) for r in rows) for i in range(3)]
    out = []
    for i, r in enumerate(rows):
        out.append("  ".join(r[k] + " " * (widths[k] - cell_len(r[k])) for k in range(3)) + "  " + r[3])
        if i == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(out)


def _profile_for(f: dict) -> str:
    if f["protocol"] == "cjt188":
        try:
            t = int(f["reply"].rsplit("0x", 1)[1], 16)
            return CJT188_TYPES.get(t, "cjt188-water")
        except (IndexError, ValueError):
            pass
    return PROFILE_HINT[f["protocol"]]


def site_meters(finds: list[dict], bus: str = "bus0", interval_s: int = 60) -> list[dict]:
    """A `meters` array for the site config: one entry per meter that answered cleanly.

    Modbus meters get profile CHOOSE-A-PROFILE: `nengjian check-config` refuses it until the
    installer names the meter's profile.
    """
    meters = []
    used = set()
    for f in finds:
        if not f["ok"] or f["address"] is None:
            continue
        addr = f["address"]
        profile = _profile_for(f)
        prefix = {"cjt188-gas": "g", "cjt188-heat": "h", "cjt188-water": "w"}.get(profile)
        prefix = prefix or {"modbus-rtu": "m", "dlt645-2007": "e", "dlt645-1997": "e"}[f["protocol"]]
        mid = "%s%s" % (prefix, addr if isinstance(addr, int) else str(addr)[-4:])
        while mid in used:
            mid += "x"
        used.add(mid)
        meters.append({"id": mid, "bus": bus, "profile": profile, "address": addr,
                       "interval_s": interval_s,
                       "line": {"baud": f["baud"], "bits": f["bits"], "parity": f["parity"], "stop": f["stop"]}})
    return meters


def format_meters(meters: list[dict]) -> str:
    """The meters array, one meter per line: easy to paste into site.json and to edit there."""
    return "[\n" + ",\n".join("  " + json.dumps(m) for m in meters) + "\n]"


def sim_transport(port: str, sim_bus: str, heap: str = "288k") -> SimTransport:
    """The transport to a simulated gateway whose RS-485 `port` (rs485_N) is wired to the pty `sim_bus`."""
    port_no = int(port.rsplit("_", 1)[1]) if port.startswith("rs485_") else 0
    return SimTransport({port_no: sim_bus}, heap=heap)


def result_lines(res: ScanResult, port: str, bus_name: str = "bus0") -> list[str]:
    """What a scan found, for a person: the table and the `meters` array to paste into the site config."""
    from nengjian_host.common.messages import t

    if not res.finds:
        return [t("out.scan.nothing", port=port)]
    return [table(res.finds), "", t("out.scan.meters"), format_meters(site_meters(res.finds, bus_name))]
