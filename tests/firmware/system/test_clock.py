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
            reply[24:32] = data[40:48]  # originate = the client's transmit timestamp (RFC 5905)
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
c = clocksync.ClockSync(set_utc, False, lambda k, t, c=None: events.append(k + ": " + t), servers=P["servers"], timeout_ms=500)
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


# --- NTP answers are checked, large steps need two sources (a fake UDP socket plays the servers) -----

EVIL = TRUE_TIME + 3600

RULE_SCRIPT = r"""
import asyncio, json, struct
import socket as real
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
PLAN = P["plan"]  # port -> [[kind, utc]]: the datagrams that come back to a request sent to it


class FakeUdp:
    def __init__(self, *args):
        self.q = []

    def setblocking(self, flag):
        pass

    def sendto(self, pkt, addr):
        port = addr[2] * 256 + addr[3]
        for kind, utc in PLAN.get(str(port), ()):
            r = bytearray(48)
            r[0] = 0x24  # LI 0, version 4, mode 4 (server)
            r[1] = 2
            r[24:32] = bytes(8) if kind == "wrong_origin" else pkt[40:48]
            struct.pack_into(">II", r, 40, utc + 2208988800, 0)
            src = addr
            if kind == "spoofed":
                src = real.getaddrinfo("127.0.0.9", port, 0, real.SOCK_DGRAM)[0][-1]
            elif kind == "other_port":
                src = real.getaddrinfo("127.0.0.1", port + 1, 0, real.SOCK_DGRAM)[0][-1]
            self.q.append((bytes(r), src))

    def recvfrom(self, n):
        if not self.q:
            raise OSError(11)
        return self.q.pop(0)

    def recv(self, n):
        return self.recvfrom(n)[0]

    def close(self):
        pass


class FakeSocketModule:
    pass


fs = FakeSocketModule()
fs.AF_INET = real.AF_INET
fs.SOCK_DGRAM = real.SOCK_DGRAM
fs.socket = FakeUdp
fs.getaddrinfo = real.getaddrinfo
clocksync.socket = fs
kw = {"timeout_ms": 300}
if "max_step_s" in P:
    kw["max_step_s"] = P["max_step_s"]
c = clocksync.ClockSync(set_utc, P["trusted"], lambda k, t, c=None: events.append(k + ": " + t), **kw)
steps = []
async def main():
    for op in P["ops"]:
        n = len(events)
        if op[0] == "ntp":
            c.servers = ["127.0.0.1:%%d" %% p for p in op[1]]
            r = await c.sync_once()
        else:
            r = c.from_platform(op[1])
        steps.append({"taken": r, "trusted": c.trusted(), "clock": fake[0], "events": events[n:],
                      "error": c.last_error})
asyncio.run(main())
print("RESULT " + json.dumps({"steps": steps, "sets": sets}))
"""


def rule(ops, plan, trusted=True, rtc=TRUE_TIME, **kw):
    p = dict(kw, ops=ops, plan={str(k): v for k, v in plan.items()}, trusted=trusted, rtc=rtc)
    proc = run_mpy(RULE_SCRIPT % json.dumps(p), timeout=30)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError(proc.stdout + proc.stderr)


def test_ntp_answers_from_another_address_or_without_our_timestamp_are_ignored():
    forged = [["spoofed", EVIL], ["other_port", EVIL], ["wrong_origin", EVIL]]
    r = rule([["ntp", [1123]]], {1123: forged + [["good", TRUE_TIME]]}, trusted=False, rtc=946684800)
    step = r["steps"][0]
    # The forged datagrams came first; the server's own answer still set the clock, and only it.
    assert step["taken"] and step["trusted"] and step["clock"] == TRUE_TIME, step
    assert r["sets"] == [TRUE_TIME]
    r = rule([["ntp", [1123]]], {1123: forged}, trusted=False, rtc=946684800)
    step = r["steps"][0]
    assert not step["taken"] and not step["trusted"] and r["sets"] == []
    assert "was ignored" in step["error"], step


def test_a_large_step_needs_two_sources_that_agree_and_every_step_is_an_event():
    a, b, far_ahead, far_behind, near = 1001, 1002, 1003, 1004, 1005
    plan = {a: [["good", EVIL]], b: [["good", EVIL + 4]], far_ahead: [["good", EVIL + 4 + 7200]],
            far_behind: [["good", EVIL + 4 - 7200]], near: [["good", EVIL + 4 + 100]]}
    r = rule([["ntp", [a]], ["ntp", [a]], ["ntp", [a, b]], ["ntp", [far_ahead, far_behind]], ["ntp", [near]]], plan)
    alone, again, agreed, disagree, small = r["steps"]
    # One server an hour off: held, one ledger line for the claim, the clock untouched.
    assert not alone["taken"] and alone["clock"] == TRUE_TIME and alone["trusted"]
    assert len(alone["events"]) == 1 and alone["events"][0].startswith(
        "clock: clock not stepped: ntp 127.0.0.1:1001 puts the clock +3600 s off, more than clock.max_step_s (300 s)")
    assert not again["taken"] and again["events"] == []  # the same claim again fills no ledger
    # A second server within agree_s of it: the step is taken, both named, with its size.
    assert agreed["taken"] and agreed["clock"] == EVIL + 4
    assert agreed["events"] == ["clock: clock stepped by +3604 s from ntp 127.0.0.1:1002 + ntp 127.0.0.1:1001 "
                                "(%s)" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EVIL + 4))]
    # Two servers far off but not agreeing with each other: nothing moves.
    assert not disagree["taken"] and disagree["clock"] == EVIL + 4 and len(disagree["events"]) == 2
    # A step below the limit needs one source; it is an event too.
    assert small["taken"] and small["clock"] == EVIL + 104
    assert small["events"][0].startswith("clock: clock stepped by +100 s from ntp 127.0.0.1:1005 (")
    assert r["sets"] == [EVIL + 4, EVIL + 104]


def test_the_step_limit_is_configurable():
    r = rule([["ntp", [1001]], ["ntp", [1002]]], {1001: [["good", TRUE_TIME + 100]], 1002: [["good", TRUE_TIME + 50]]},
             max_step_s=60)
    assert not r["steps"][0]["taken"] and r["steps"][1]["taken"] and r["sets"] == [TRUE_TIME + 50]


def test_a_platform_date_confirms_a_large_ntp_step_but_never_makes_one_alone():
    a, b = 1001, 1002
    boot = 946684800 + 100  # no RTC: the first sync is a huge step, and one verified source may make it
    r = rule([["ntp", [a]], ["date", TRUE_TIME + 1000], ["date", TRUE_TIME + 30], ["ntp", [b]]],
             {a: [["good", TRUE_TIME]], b: [["good", TRUE_TIME + 1002]]}, trusted=False, rtc=boot)
    first, date_far, date_near, confirmed = r["steps"]
    assert first["taken"] and first["trusted"] and first["clock"] == TRUE_TIME
    assert first["events"][0].startswith("clock: clock trusted from ntp 127.0.0.1:1001 (2026-01-01T00:00:00Z, "
                                         "step +%d s)" % (TRUE_TIME - boot))
    assert not date_far["taken"] and date_far["clock"] == TRUE_TIME
    assert date_far["events"][0].startswith("clock: clock not stepped: Date header puts the clock +1000 s off")
    assert not date_near["taken"] and date_near["events"] == []  # NTP answered lately: it keeps the clock
    assert confirmed["taken"] and confirmed["clock"] == TRUE_TIME + 1002
    assert confirmed["events"][0].startswith("clock: clock stepped by +1002 s from ntp 127.0.0.1:1002 + Date header")


def test_the_clock_section_of_the_site_config():
    from nengjian import config as fw_config
    from nengjian_host.common import siteconfig
    from nengjian_host.sim.gateway import demo_site

    def load(name):
        return siteconfig.fw_profile.load(str(siteconfig.paths.PROFILES), name)

    cfg = fw_config.check(demo_site("http://127.0.0.1:1/api/register"), load)
    assert cfg["clock"] == {"max_step_s": 300, "agree_s": 10}
    for bad in ({"max_step_s": 1}, {"agree_s": 0}, {"agree_s": 10, "extra": 1}):
        site = demo_site("http://127.0.0.1:1/api/register")
        site["clock"] = bad
        with pytest.raises(fw_config.ConfigError, match="clock"):
            fw_config.check(site, load)
        assert siteconfig.check(site)  # the host's jsonschema agrees


def test_the_ledger_lists_every_step_with_its_size_and_source():
    """The firmware's real clock events, through the crew's ledger (nengjian ledger)."""
    from nengjian_host.crew import ledger

    a, b = 1001, 1002
    r = rule([["ntp", [a]], ["ntp", [a]], ["ntp", [a, b]]], {a: [["good", TRUE_TIME]], b: [["good", EVIL]]},
             trusted=False, rtc=946684800 + 100)
    texts = [e.split(": ", 1)[1] for s in r["steps"] for e in s["events"]]
    recs = [[3, TRUE_TIME + i, "clock", t] for i, t in enumerate(texts)] + [[3, TRUE_TIME + 99, "boot", "started"]]
    led = ledger.build(recs)
    rows = [(c["step_s"], c["source"], c["taken"]) for c in led["clock_steps"]]
    assert rows == [(TRUE_TIME - 946684800 - 100, "ntp 127.0.0.1:1001", True)]  # the first sync after boot
    r = rule([["ntp", [b]], ["ntp", [a, b]]], {a: [["good", EVIL + 3]], b: [["good", EVIL]]})
    texts = [e.split(": ", 1)[1] for s in r["steps"] for e in s["events"]]
    led = ledger.build([[3, TRUE_TIME + i, "clock", t] for i, t in enumerate(texts)])
    rows = [(c["step_s"], c["source"], c["taken"]) for c in led["clock_steps"]]
    assert rows == [(3600, "ntp 127.0.0.1:1002", False), (3603, "ntp 127.0.0.1:1001 + ntp 127.0.0.1:1002", True)]
    assert led["summary"]["clock_steps"] == 1 and led["summary"]["clock_refused"] == 1
    html = ledger.to_html(led, {})
    assert "时钟校正" in html and "+1h 00m" in html and "ntp 127.0.0.1:1001 + ntp 127.0.0.1:1002" in html
    assert "clock step(s) of more than 300 s" in html and "时钟跳变超过 300 秒" in html


def test_the_app_starts_the_clock_with_the_site_config_and_wires_the_date_hook():
    code = """
import board
from nengjian import app
from nengjian.net import http
from nengjian.system import clock as clocksync
board.set_utc = lambda t: None  # a board that can set its clock (the ESP32s); the sim has none
class Gw:
    cfg = {"clock": {"max_step_s": 60, "agree_s": 3}}
    clock = None
    def event(self, kind, text, code=None):
        pass
gw = Gw()
app._start_clock(gw)
print(gw.clock.max_step_s, gw.clock.agree_s, gw.clock.trusted(), http.on_date is clocksync.from_platform)
"""
    assert run_mpy(code, heap="512k").stdout.split()[-4:] == ["60", "3", "False", "True"]


def test_an_untrusted_clock_asks_the_platform_when_ntp_fails_and_stops_once_trusted():
    # No upload goes before the clock is trusted, so on a site whose network blocks NTP only this
    # request brings a Date header; the retry comes within every_s when that is shorter than a minute.
    silent = NtpServer("silent")
    code = """
import asyncio
from nengjian.system import clock as clocksync
from nengjian.core import timeutil
fake = [946684800 + 100]
timeutil.set_source(lambda: fake[0])
def set_utc(t):
    fake[0] = t
c = clocksync.ClockSync(set_utc, False, None, servers=["127.0.0.1:%d"], timeout_ms=200, every_s=1)
asked = []
async def ask():
    asked.append(c.trusted())
    c.from_platform(%d, "Date header of p")
c.ask_platform = ask
async def main():
    task = asyncio.create_task(c.run())
    while c.progress < 3:
        await asyncio.sleep_ms(20)
    task.cancel()
asyncio.run(main())
print("RESULT", asked, c.trusted(), c.source, fake[0] == %d)
""" % (silent.port, TRUE_TIME, TRUE_TIME)
    try:
        out = run_mpy(code, timeout=60).stdout
    finally:
        silent.close()
    assert out.split("RESULT", 1)[1].split() == ["[False]", "True", "Date", "header", "of", "p", "True"], out
