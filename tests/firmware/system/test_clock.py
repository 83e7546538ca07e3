"""nengjian.system.clock on MicroPython: SNTP against a local server (good, silent, kiss-of-death), the
trust flag readings wait for, RTC steps, and the platform's time as a fallback that NTP outranks."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest
from mpyrun import run_mpy

pytestmark = [pytest.mark.mpy]

NTP_DELTA = 2208988800
TRUE_TIME = 1767225600  # 2026-01-01T00:00:00Z


class NtpServer:
    def __init__(self, mode="good"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.mode = mode
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(512)
            except OSError:
                return
            if self.mode == "silent" or len(data) < 48:
                continue
            stratum = 0 if self.mode == "kod" else 2
            reply = bytearray(48)
            reply[0] = (0 << 6) | (4 << 3) | 4  # LI 0, version 4, mode 4 (server)
            reply[1] = stratum
            struct.pack_into(">II", reply, 40, TRUE_TIME + NTP_DELTA, 0x80000000)
            self.sock.sendto(bytes(reply), addr)

    def close(self):
        self.sock.close()


SCRIPT = """
import asyncio, json
from nengjian.system import clock as clocksync
from nengjian.core import timeutil
P = json.loads(%r)
fake = [P["rtc"]]
timeutil.set_source(lambda: fake[0])
sets = []
def set_utc(t):
    sets.append(t)
    fake[0] = t
events = []
c = clocksync.ClockSync(set_utc, False, lambda k, t: events.append(k + ": " + t), servers=P["servers"], timeout_ms=500)
out = {"trusted_before": c.trusted()}
async def main():
    out["platform_first"] = c.from_platform(P["platform"], "platform city")
    out["after_platform"] = [c.trusted(), c.source, fake[0]]
    out["sync"] = await c.sync_once()
    out["ntp_error"] = c.last_error
    out["after_ntp"] = [c.trusted(), c.source, fake[0]]
    out["platform_after_ntp"] = c.from_platform(P["platform"] + 1000, "platform city")
    out["implausible"] = c.accept(1000, "bad")
asyncio.run(main())
out["sets"] = sets
out["events"] = events
out["error"] = c.last_error
# the sim board: its clock is the reference, trusted at boot, never set from here
sim = clocksync.ClockSync(None, True)
out["sim"] = [sim.trusted(), sim.from_platform(P["platform"], "x")]
print("RESULT " + json.dumps(out))
"""


def run(servers, rtc=946684800 + 100, platform=TRUE_TIME - 30):
    p = {"servers": servers, "rtc": rtc, "platform": platform}
    proc = run_mpy(SCRIPT % json.dumps(p), timeout=30)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError(proc.stdout + proc.stderr)


def test_ntp_sets_and_trusts_the_clock_and_outranks_the_platform():
    srv = NtpServer("good")
    try:
        r = run(["127.0.0.1:%d" % srv.port])
    finally:
        srv.close()
    assert r["trusted_before"] is False
    # Before any NTP answer a platform's time is taken (and trusted) ...
    assert r["platform_first"] is True and r["after_platform"] == [True, "platform city", TRUE_TIME - 30]
    # ... NTP then corrects it ...
    assert r["sync"] is True
    trusted, source, now = r["after_ntp"]
    assert trusted and source.startswith("ntp 127.0.0.1") and abs(now - TRUE_TIME) <= 1
    # ... and a platform's time no longer moves a clock NTP keeps.
    assert r["platform_after_ntp"] is False
    assert r["implausible"] is False
    assert r["sets"][0] == TRUE_TIME - 30 and abs(r["sets"][1] - TRUE_TIME) <= 1
    assert any(e.startswith("clock: clock trusted from platform city") for e in r["events"])
    assert any(e.startswith("clock: clock stepped by") for e in r["events"])
    assert r["sim"] == [True, False]


@pytest.mark.parametrize("mode,needle", [("silent", "no NTP answer"), ("kod", "")])
def test_bad_ntp_answers_leave_the_clock_alone(mode, needle):
    srv = NtpServer(mode)
    try:
        t = time.monotonic()
        r = run(["127.0.0.1:%d" % srv.port], platform=100)  # an implausible platform time too
        assert time.monotonic() - t < 10
    finally:
        srv.close()
    assert r["platform_first"] is False and r["sync"] is False
    assert r["after_ntp"][0] is False and r["sets"] == []
    assert needle in r["ntp_error"]
