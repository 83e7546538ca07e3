"""The sim rig: runs the real firmware on the MicroPython unix port as a gateway process.

`SimGateway` lays out a gateway directory (config/site.json, data.img), starts
`micropython firmware/main.py` with the `sim` board on its path and the RS-485 ptys in its
environment, and collects its console lines. Tests use `expect()` the way pytest-embedded's DUT
does; `kill()` is a power cut (SIGKILL: no flush, no close), `stop()` a clean Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from nengjian_host import paths

DEFAULT_HEAP = "256k"


def demo_site(platform_url: str, units=(1, 2), period_s: int = 60, interval_s: int = 5,
              enterprise: str = "91330000573973053F", region: str = "441900") -> dict:
    """A site config for simulated meters on bus rs485_0 and one reference platform."""
    meters = []
    items = []
    for i, unit in enumerate(units):
        mid = "m%d" % unit
        meters.append({"id": mid, "bus": "bus0", "profile": "sim-energy", "address": unit,
                       "interval_s": interval_s, "timeout_ms": 300})
        # The first meter is the whole-plant incomer (scope 1); the others feed processes 01, 02, ...
        code, scope = ("00-00-0000-023300-11", 1) if i == 0 else ("%02d-00-0000-023300-11" % i, 2)
        items.append({"code": code, "meter": mid, "point": "energy_kwh", "scope": scope, "min": 0, "max": 100000})
    return {
        "version": 1,
        "site": {"name": "sim site", "gateway": "NJ-SIM-1"},
        "enterprise": {"code": enterprise, "region": region},
        "realtime_period_s": period_s,
        "buses": [{"name": "bus0", "port": "rs485_0"}],
        "meters": meters,
        "items": items,
        "destinations": [{"name": "city", "profile": "ndrc-json", "url": platform_url, "batch": 50,
                          "timeout_ms": 5000}],
        "store": {"flush_records": 8, "flush_s": 2, "segment_kb": 32, "segments": 16},
    }


class SimGateway:
    def __init__(self, workdir: str | Path, buses: dict[int, str] | None = None, heap: str = DEFAULT_HEAP,
                 env: dict | None = None, echo=None, data_kb: int = 4096):
        self.dir = Path(workdir)
        self.buses = buses or {}
        self.heap = heap
        self.extra_env = env or {}
        self.echo = echo
        self.data_kb = data_kb
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._seen = 0
        (self.dir / "config").mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.dir / "config" / "site.json"

    @property
    def image_path(self) -> Path:
        return self.dir / "data.img"

    def write_config(self, cfg: dict | str) -> None:
        text = cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)

    def env(self) -> dict:
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([str(paths.FIRMWARE), str(paths.BOARDS / "sim"), ".frozen"])
        env["NJ_SIM_DIR"] = str(self.dir)
        env["NJ_PROFILES"] = str(paths.PROFILES)
        env["NJ_DATA_KB"] = str(self.data_kb)
        for n, path in self.buses.items():
            env["NJ_BUS%d" % n] = path
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    def start(self) -> SimGateway:
        cmd = [paths.micropython_binary(), "-X", "heapsize=" + self.heap, str(paths.FIRMWARE / "main.py")]
        self.proc = subprocess.Popen(cmd, env=self.env(), cwd=str(self.dir), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self):
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
            if self.echo:
                self.echo(line)

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match:
        """Wait for a console line matching `pattern` after the last one expected."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(self._seen, len(self.lines)):
                    m = rx.search(self.lines[i])
                    if m:
                        self._seen = i + 1
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc and self.proc.poll() is not None and not self._reader_alive()):
                    tail = "\n".join(self.lines[-30:])
                    raise TimeoutError(f"no line matching {pattern!r} within {timeout} s; last lines:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def _reader_alive(self) -> bool:
        return bool(self._reader and self._reader.is_alive())

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Power cut: SIGKILL, nothing flushed or closed."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._reader:
            self._reader.join(5)

    def stop(self, timeout: float = 10) -> int | None:
        """Clean stop, like Ctrl-C on the console."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._reader:
            self._reader.join(5)
        return self.proc.returncode if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
