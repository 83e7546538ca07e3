"""Putting a signed update bundle on a running gateway over its USB console (`nengjian ota push`,
`nengjian ota state`).

Owns: the console exchange of a push (`ota SIZE SHA256`, then `+BASE64` lines; the gateway stores
the bundle, checks it with its own vendor key and installs it into the spare slot), the reset, the
wait until the gateway answers again and what it then runs (the new version on trial: it confirms
itself once healthy, or rolls back), and the gateway's update state. Before a byte is sent, what the
gateway would refuse anyway is refused here, in both languages (UpdateRefused): an install while a
version is on trial, a bundle older than the gateway's minimum that is not a signed downgrade; the
gateway's own refusals of the same say so in Chinese too. The bundle itself - format, signature,
build - is the vendor's: nengjian_host.vendor.updates.
"""

from __future__ import annotations

import base64
import hashlib
import time

from nengjian_host.common.device import DeviceError
from nengjian_host.common.messages import msg

PUSH_CHUNK = 720  # bytes per `+BASE64` line: 960 characters, inside the console's 1024-byte lines

ON_TRIAL_ZH = ("网关上的版本 %s 正在试运行：要等它确认正常（health.healthy_s）或回退之后才能再装更新；"
               "现在装会让网关没有已确认的版本可以回退。用 `nengjian ota state` 查看")
OLDER_ZH = ("更新包版本 %s 比网关接受的最低版本 %s 旧，网关拒绝降级；确需降级，要用 "
            "`nengjian ota build --replaces-down-to` 签名的降级包")


class UpdateRefused(DeviceError):
    """The gateway does not take this bundle now; `zh` says why in Chinese (output.fail shows both)."""

    def __init__(self, message: str, zh: str):
        super().__init__(message)
        self.zh = zh


def preflight(con, man: dict) -> dict:
    """The gateway's update state, once it is clear it would take the bundle whose manifest is `man`;
    UpdateRefused (nothing sent) while a version is on trial, or when the bundle is older than the
    gateway's minimum and not a signed downgrade (replaces_down_to)."""
    from nengjian_host.vendor.updates import version_key

    st = con.request("ota")[-1]
    if st.get("state") == "trial":
        raise UpdateRefused(
            "version %s is on trial on the gateway (boot %s of %s): an install now would leave it no confirmed "
            "version to return to; push again once it is confirmed healthy or rolled back (`nengjian ota state`)"
            % (st.get("version"), st.get("boots"), st.get("max_boots")), ON_TRIAL_ZH % st.get("version"))
    low = st.get("min_version")
    have, floor = version_key(man.get("version")), version_key(low)
    if man.get("replaces_down_to") is None and have is not None and floor is not None and have < floor:
        raise UpdateRefused(
            "bundle version %s is older than the gateway's minimum %s: gateways refuse downgrades unless the bundle "
            "is signed as one (`nengjian ota build --replaces-down-to`)" % (man.get("version"), low),
            OLDER_ZH % (man.get("version"), low))
    return st


def refusal_zh(text: str) -> str | None:
    """The Chinese for a refusal the gateway gave (nengjian.ota.updater's texts), if it is one of these."""
    import re

    m = re.search(r"version (\S+) is on trial", text)
    if m:
        return ON_TRIAL_ZH % m.group(1)
    m = re.search(r"version (\S+) is older than the minimum (\S+?):", text)
    if m:
        return OLDER_ZH % (m.group(1), m.group(2))
    return None


def push(con, data: bytes, progress=None, install_timeout: float = 120.0) -> dict:
    """Send a bundle over a gateway's console (nengjian_host.common.device.Console). The gateway stores it,
    then verifies and installs it into its spare slot as the last line arrives. Returns the gateway's
    answer ({"installed": version, "slot", "state": "trial", "files", "verify_ms"}, or {"deferred":
    true} when its heap had no room for the check: that runs at the reset); DeviceError with the
    gateway's reason if it refuses (nothing is switched then)."""
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
        raise DeviceError(msg("update.not_confirmed", answer=end))
    return end


def install(con, data: bytes, reset: bool = True) -> dict:
    """preflight(), push(), then reset the gateway so it starts the new version on trial (without
    `reset`, it starts it at the next reset)."""
    from nengjian_host.vendor.updates import describe

    preflight(con, describe(data))
    try:
        ans = push(con, data)
    except DeviceError as e:
        zh = refusal_zh(str(e))
        if zh is None or isinstance(e, UpdateRefused):
            raise
        raise UpdateRefused(str(e), zh) from None
    if reset:
        con.reset()
    return ans


def installed_text(version: str, ans: dict):
    """What push()'s answer means, for a person (a messages.Text: English, and Chinese beside it)."""
    from nengjian_host.common.messages import msg

    if ans.get("deferred"):  # the gateway's heap had no room for the check: it runs at the reset
        return msg("out.ota.sent", version=version)
    return msg("out.ota.installed", version=version, slot=ans.get("slot"), files=ans.get("files", 0),
               ms=ans.get("verify_ms"))


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
