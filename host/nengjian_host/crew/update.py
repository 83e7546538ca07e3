"""Putting a signed update bundle on a running gateway over its USB console (`nengjian ota push`,
`nengjian ota state`).

Owns: the console exchange of a push (`ota SIZE SHA256`, then `+BASE64` lines; the gateway stores
the bundle, checks it with its own vendor key and installs it into the spare slot), the reset, the
wait until the gateway answers again and what it then runs (the new version on trial: it confirms
itself once healthy, or rolls back), and the gateway's update state. The bundle itself - format,
signature, build - is the vendor's: nengjian_host.vendor.updates.
"""

from __future__ import annotations

import base64
import hashlib
import time

PUSH_CHUNK = 720  # bytes per `+BASE64` line: 960 characters, inside the console's 1024-byte lines


def push(con, data: bytes, progress=None, install_timeout: float = 120.0) -> dict:
    """Send a bundle over a gateway's console (nengjian_host.common.device.Console). The gateway stores it,
    then verifies and installs it into its spare slot as the last line arrives. Returns the gateway's
    answer ({"installed": version, "slot", "state": "trial", "files", "verify_ms"}, or {"deferred":
    true} when its heap had no room for the check: that runs at the reset); DeviceError with the
    gateway's reason if it refuses (nothing is switched then)."""
    from nengjian_host.common.device import DeviceError

    con.request("ota %d %s" % (len(data), hashlib.sha256(data).hexdigest()))
    end: dict = {}
    for off in range(0, len(data), PUSH_CHUNK):
        chunk = data[off:off + PUSH_CHUNK]
        last = off + len(chunk) >= len(data)
        # The last line waits for the signature check and the install (flash writes on a board).
        end = con.request("+" + base64.b64encode(chunk).decode(),
                          timeout=max(con.timeout, install_timeout) if last else None)[-1]
        if progress is not None:
            progress(off + len(chunk), len(data))
    if not end.get("installed") and not end.get("deferred"):
        raise DeviceError("the gateway did not confirm the install (answer %s)" % end)
    return end


def install(con, data: bytes, reset: bool = True) -> dict:
    """push(), then reset the gateway so it starts the new version on trial (without `reset`, it
    starts it at the next reset)."""
    ans = push(con, data)
    if reset:
        con.reset()
    return ans


def installed_text(version: str, ans: dict) -> str:
    """What push()'s answer means, for a person."""
    if ans.get("deferred"):  # the gateway's heap had no room for the check: it runs at the reset
        return "sent %s; the gateway checks and installs it at the reset" % version
    return "installed %s in slot %s (%d files, signature checked in %s ms)" % (
        version, ans.get("slot"), ans.get("files", 0), ans.get("verify_ms"))


def wait_running(port_spec: str | None, baud: int = 115200, timeout: float = 90.0,
                 settle: float = 1.0) -> tuple[dict, dict] | None:
    """After a reset: (status, ota state) once the gateway's application answers again, or None."""
    from nengjian_host.common.device import Console, DeviceError, DeviceGone, PortNotFound, resolve_port

    time.sleep(settle)  # the reset comes a moment after its answer: do not ask the old run
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            port = resolve_port(port_spec)  # a native-USB board's port goes away while it resets
            with Console(port, baud=baud, timeout=3) as con:
                st = con.status()
                if st.get("mode") == "run":
                    return st, con.request("ota")[-1]
        except (PortNotFound, DeviceGone, DeviceError, OSError):
            pass
        time.sleep(1)
    return None


def state(con) -> dict:
    """The gateway's update state (running version, slot, trial or confirmed, boots), without the
    console protocol's own keys."""
    st = con.request("ota")[-1]
    for k in ("id", "end", "ok"):
        st.pop(k, None)
    return st
