"""What a rig is and what it can do: the rig description file and the capability names tests ask for.

A rig file (tests/rigs/NAME.json) describes a desk rig; the sim rig needs none. docs/RIG.md explains
the wiring. Fields:

    name          a label for reports
    kind          "sim" or "serial"
    board         board directory name (boards/NAME), for reports
    dut           {"port": "sn:..."|"mac:..."|path, "baud": 115200,
                   "reset": "rts" | "console" | null, "boot_s": the longest a reset or power-on may
                   take until the application's first console line (default 20)}
    bus           {"port": "sn:..."|path of the USB-RS485 adapter, "baud": 9600,
                   "gateway_port": the gateway's port name for that bus, e.g. "rs485_0"}
    platform      {"bind": "0.0.0.0", "port": 8765, "url": "http://HOST-IP:8765" as the gateway reaches it}
    power         {"off": "shell command", "on": "shell command", "settle_s": 1}  (relay, uhubctl, ...)
    link          {"down": "shell command", "up": "shell command"}  (e.g. a managed switch port)
    capabilities  {"add": [...], "remove": [...]}  adjustments to what is derived from the above
    sim           {"heap": "320k"}  (serial rigs) the board is a sim gateway the rig boots (plugin.serialkit
                   SimBoard): dut.port is its USB console pty, bus.port the far end of its RS-485 wire, the
                   platform listens on platform.bind:port and the gateway is told its URL; no port or URL
                   is given (tests/rigs/sim-usb.json runs the serial backend in CI)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# capability -> what it means (shown in skip reasons)
CAPABILITIES = {
    "console": "the gateway's line console (status, events, files)",
    "files": "reading files off the gateway",
    "mpremote": "mpremote's raw REPL on the gateway's port",
    "reset": "resetting the gateway (EN pin through RTS, or the console's reset)",
    "power_cut": "cutting the gateway's power at a chosen moment (sim: SIGKILL; desk: a relay or USB power switch)",
    "meter_silence": "simulated meters that stop answering",
    "bus_noise": "noise bytes injected on the RS-485 bus",
    "bus_crc": "meter replies corrupted on the bus (CRC errors)",
    "bus_cut": "cutting the RS-485 wire",
    "platform_faults": "the reference platform's fault switch (down, slow, hang, HTTP 500, reject)",
    "link_loss": "taking the gateway's network link down",
    "fast_clock": "a gateway clock running faster than real time (a day in minutes)",
    "flash_image": "the data partition's image, read directly",
    "crash": "crashing the gateway on purpose, a panic or a watchdog reset (sim: the launcher kills the firmware "
             "and boots it with that reset cause)",
    "service_button": "holding the gateway's service button (sim: the NJ_BUTTON file; desk: a relay on BOOT)",
}

SIM_CAPS = set(CAPABILITIES)
SERIAL_BASE = {"console", "files", "mpremote", "meter_silence", "bus_noise", "bus_crc", "bus_cut", "platform_faults"}


class RigFileError(ValueError):
    pass


@dataclass
class RigSpec:
    name: str = "sim"
    kind: str = "sim"
    board: str = "sim"
    dut: dict = field(default_factory=dict)
    bus: dict = field(default_factory=dict)
    platform: dict = field(default_factory=dict)
    power: dict | None = None
    link: dict | None = None
    sim: dict | None = None
    caps: set = field(default_factory=set)
    source: str = "--rig sim"

    def has(self, cap: str) -> bool:
        return cap in self.caps

    def missing(self, needs) -> list[str]:
        unknown = [n for n in needs if n not in CAPABILITIES]
        if unknown:
            raise RigFileError("unknown capability %s in a needs() marker (known: %s)" % (
                ", ".join(unknown), ", ".join(sorted(CAPABILITIES))))
        return [n for n in needs if n not in self.caps]

    def describe(self) -> str:
        return "rig %s (%s, from %s): %s" % (self.name, self.kind, self.source, ", ".join(sorted(self.caps)))


def derive_caps(spec: RigSpec, adjust: dict | None = None) -> set:
    if spec.kind == "sim":
        caps = set(SIM_CAPS)
    else:
        caps = set(SERIAL_BASE)
        if (spec.dut or {}).get("reset"):
            caps.add("reset")
        if spec.power and spec.power.get("off") and spec.power.get("on"):
            caps.add("power_cut")
        if spec.link and spec.link.get("down") and spec.link.get("up"):
            caps.add("link_loss")
    adjust = adjust or {}
    for c in adjust.get("add", []):
        if c not in CAPABILITIES:
            raise RigFileError("unknown capability %r" % c)
        caps.add(c)
    for c in adjust.get("remove", []):
        caps.discard(c)
    return caps


def load_file(path: str | Path) -> RigSpec:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise RigFileError("rig file %s: %s" % (p, e)) from None
    except ValueError as e:
        raise RigFileError("rig file %s is not JSON: %s" % (p, e)) from None
    kind = data.get("kind")
    if kind not in ("sim", "serial"):
        raise RigFileError("rig file %s: kind must be \"sim\" or \"serial\"" % p)
    spec = RigSpec(name=data.get("name", p.stem), kind=kind, board=data.get("board", "sim" if kind == "sim" else "?"),
                   dut=data.get("dut") or {}, bus=data.get("bus") or {}, platform=data.get("platform") or {},
                   power=data.get("power"), link=data.get("link"), sim=data.get("sim"), source=str(p))
    if spec.sim is not None and (kind != "serial" or not isinstance(spec.sim, dict)):
        raise RigFileError("rig file %s: \"sim\" is an object, on a serial rig only" % p)
    if kind == "serial" and spec.sim is None:
        for what in ("dut", "bus"):
            if not getattr(spec, what).get("port"):
                raise RigFileError("rig file %s: %s.port is required for a serial rig" % (p, what))
        if not spec.platform.get("url"):
            raise RigFileError("rig file %s: platform.url (how the gateway reaches this host) is required" % p)
    spec.caps = derive_caps(spec, data.get("capabilities"))
    return spec


def from_options(rig: str, port: str | None, bus_port: str | None, platform_url: str | None) -> RigSpec:
    if rig == "sim":
        spec = RigSpec()
    else:
        if not port or not bus_port:
            raise RigFileError("--rig serial needs --port (the gateway's USB console) and --bus-port (the USB-RS485 "
                               "adapter on the gateway's bus), or a --rig-file")
        spec = RigSpec(name="serial", kind="serial", board="?", dut={"port": port, "reset": "console"},
                       bus={"port": bus_port, "baud": 9600, "gateway_port": "rs485_0"},
                       platform={"bind": "0.0.0.0", "port": 8765, "url": platform_url} if platform_url else {},
                       source="--rig serial --port %s --bus-port %s" % (port, bus_port))
    spec.caps = derive_caps(spec)
    return spec
