"""What the sim and desk kits (simkit, serialkit) share.

RigBase: the `rig` fixture's name, caps and has(), from the rig's spec.
DutBase: wait_for, and the calls that go through the gateway's console (status, events, read_file,
put_config). A DUT kind supplies console() and output(), and stopped() where it can see the
gateway stop.
"""

from __future__ import annotations

import json
import time

from nengjian_host.common.device import Console


class RigBase:
    spec = None  # the RigSpec (plugin.rigspec) the kind is built from

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def caps(self) -> set:
        return self.spec.caps

    def has(self, cap: str) -> bool:
        return cap in self.spec.caps


class DutBase:
    poll_s = 0.5  # how often wait_for asks again

    def console(self) -> Console:
        raise NotImplementedError

    def output(self) -> str:
        raise NotImplementedError

    def stopped(self) -> bool:
        """True once the gateway is known to have stopped, so wait_for need not run out its time;
        a kind that cannot see that answers False."""
        return False

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.stopped():
                raise AssertionError("gateway stopped while waiting for %s:\n%s" % (what, self.output()[-3000:]))
            time.sleep(self.poll_s)
        raise AssertionError("timed out waiting for %s\n%s" % (what, self.output()[-3000:]))

    def status(self) -> dict:
        return self.console().status()

    def events(self, n: int = 50) -> list[dict]:
        return self.console().events(n)

    def read_file(self, path: str) -> bytes:
        got = self.console().get(path)
        if got is None:
            raise FileNotFoundError(path)
        return got

    def put_config(self, cfg: dict) -> dict:
        return self.console().put("config/site.json", json.dumps(cfg, indent=1).encode()) or {}
