"""The status page's HTTP server (firmware/nengjian/console/page.py) on MicroPython: what it answers, that
no secret leaves it, and its bounds: an oversized head is 431 and closed, a connection beyond the limit
is refused while the others are served, and a client that drips its head is cut off. Server and
clients run in one MicroPython process on loopback; every wait ends on an event (EOF, an answer), the
timeouts are upper bounds that fail a hung server."""

import json
import socket

import pytest
from mpyrun import run_mpy

pytestmark = pytest.mark.mpy

PRELUDE = r"""
import asyncio, json, os
from nengjian.console import page

PORT = int(os.getenv("NJ_TEST_PORT"))
ST = {"t": "status", "site": "东莞 <plant>", "gateway_id": "sim-1", "mode": "run", "time": 1700000000,
      "meters": [{"id": "m1", "bus": "bus0", "offline": False, "failures": 0, "last_ok": 1700000000,
                  "last_error": "", "values": {"energy_kwh": "5000.12"}},
                 {"id": "m2", "bus": "bus0", "offline": True, "failures": 3, "last_ok": 0,
                  "last_error": "<script>alert(1)</script>", "values": {}}],
      "destinations": [{"name": "city", "backlog": 4, "last_ok": 1700000000, "failing": False,
                        "last_error": "", "stats": {"token": "TOKEN-SECRET-1", "sent": 9},
                        "quality": {"month": {"complete_pct": 97}}}],
      "alarms": ["meter m2 offline: no reply", "warning: E1 without valid data for 25 h", "store x: today"],
      "alarm_codes": ["meter_offline", "gap", "store"],
      "links": [{"link": "4g", "kind": "cellular", "state": "up", "up": True, "rssi": -71,
                 "pin": "4711", "apn": "cmnet"}],
      "network": {"active": "4g", "up": True}, "quality": {"complete_pct": 99, "password": "PW-SECRET-2"}}
ITEMS = [{"code": "00-00-0000-023300-11", "meter": "m1", "point": "energy_kwh"}]

async def exchange(req, chunks=None):
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    if req:
        w.write(req)
        await w.drain()
    out = b""
    while True:
        try:
            b = await r.read(256)
        except OSError:  # reset after the answer: closed all the same
            break
        if not b:
            break
        out += b
    w.close()
    return out

def code(answer):
    return int(answer.split(b" ", 2)[1]) if answer else None

# A page served on PORT with these limits, and a client that has sent it a request line
async def started(**limits):
    p = page.StatusPage(lambda: ST, ITEMS, **limits)
    await p.start("127.0.0.1", PORT)
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    w.write(b"GET / HTTP/1.1\r\n")
    return p, r, w
"""


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _run(body: str, timeout=60):
    return run_mpy(PRELUDE + body, heap="320k", env={"NJ_TEST_PORT": _port()}, timeout=timeout).stdout


def test_page_and_json_show_the_status_and_no_secret():
    out = _run(r"""
async def main():
    p = page.StatusPage(lambda: ST, ITEMS)
    await p.start("127.0.0.1", PORT)
    html = await exchange(b"GET / HTTP/1.1\r\nHost: gw\r\nUser-Agent: test\r\n\r\n")
    js = await exchange(b"GET /status.json?x=1 HTTP/1.1\r\nHost: gw\r\n\r\n")
    head = await exchange(b"HEAD / HTTP/1.0\r\n\r\n")
    codes = []
    for r in (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"GET /config/site.json HTTP/1.1\r\n\r\n",
              b"GET / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", b"nonsense\r\n\r\n"):
        codes.append(code(await exchange(r)))
    import sys
    loaded = page.HTML in sys.modules
    p.idle(-1)  # nobody looked for longer than that: the renderer goes
    print(json.dumps({"html": html.decode(), "json": js.decode(), "head": head.decode(), "codes": codes,
                      "renderer": [loaded, page.HTML in sys.modules]}))
asyncio.run(main())
""")
    got = json.loads(out.strip().splitlines()[-1])
    html, js, head = got["html"], got["json"], got["head"]
    assert html.startswith("HTTP/1.0 200 OK\r\n") and "text/html; charset=utf-8" in html
    assert "电表 Meters" in html and 'data-meter="m1"' in html and "energy_kwh=5000.12" in html
    assert 'data-item="00-00-0000-023300-11"' in html and '<td class="backlog">4</td>' in html
    assert "东莞 &lt;plant&gt;" in html and "<script>" not in html  # every value escaped
    assert '<h3 data-quality="city">' in html and "<th>complete_pct</th><td>97</td>" in html  # as it comes
    assert "complete_pct" in html and "meter m2 offline" in html and 'http-equiv="refresh"' in html
    assert '<li class="bad" data-code="meter_offline"><b>电表离线（无应答）</b> meter m2 offline: no reply</li>' in html
    assert '<b>数据采集项无有效数据（预警）</b> warning: E1 without valid data for 25 h</li>' in html
    assert '<b>存储故障</b> store x: today</li>' in html  # a word inside another is none
    body = json.loads(js.split("\r\n\r\n", 1)[1])
    assert body["meters"][0]["values"] == {"energy_kwh": "5000.12"} and body["destinations"][0]["backlog"] == 4
    assert body["items"] == [{"code": "00-00-0000-023300-11", "meter": "m1", "point": "energy_kwh",
                              "value": "5000.12"}]
    assert body["quality"]["complete_pct"] == 99 and body["links"][0]["apn"] == "cmnet"
    for secret in ("TOKEN-SECRET-1", "PW-SECRET-2", "4711"):
        assert secret not in html and secret not in js
    assert head.endswith("\r\n\r\n") and "<html" not in head  # HEAD: the head alone
    assert got["codes"] == [405, 404, 413, 400]
    assert got["renderer"] == [True, False]  # loaded for the page, dropped when nobody looks


def test_an_oversized_head_is_431_and_the_connection_closed():
    out = _run(r"""
async def main():
    p, r, w = await started(head_max=1024)
    pad = b"X-Pad: " + b"a" * 90 + b"\r\n"
    answer = b""
    sent = 0
    # Headers go on and on, never ending: the server must answer and close long before 64 KB.
    while sent < 65536:
        try:
            w.write(pad)
            await w.drain()
        except OSError:
            break
        sent += len(pad)
        try:
            b = await asyncio.wait_for_ms(r.read(256), 5)
        except asyncio.TimeoutError:
            continue
        except OSError:
            break
        answer += b
        break
    while True:
        try:
            b = await asyncio.wait_for_ms(r.read(256), 20000)
        except OSError:  # reset after the answer: closed
            break
        if not b:
            break
        answer += b
    long_line = await exchange(b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\n\r\n")
    ok = await exchange(b"GET / HTTP/1.0\r\n\r\n")
    print(code(answer), sent < 65536, code(long_line), code(ok), p.active)
asyncio.run(main())
""")
    assert out.split() == ["431", "True", "414", "200", "0"]


def test_a_connection_beyond_the_limit_is_refused_and_the_others_are_served():
    out = _run(r"""
async def main():
    p = page.StatusPage(lambda: ST, ITEMS, max_connections=2)
    await p.start("127.0.0.1", PORT)
    held = []
    for i in range(2):  # two clients connect and are slow to ask
        r, w = await asyncio.open_connection("127.0.0.1", PORT)
        w.write(b"GET / HTTP/1.1\r\n")
        await w.drain()
        held.append((r, w))
    while p.active < 2:  # both taken by the server
        await asyncio.sleep_ms(5)
    third = await exchange(b"GET / HTTP/1.0\r\n\r\n")
    answers = []
    for r, w in held:  # the two go on and are served in full
        w.write(b"Host: gw\r\n\r\n")
        await w.drain()
        a = b""
        while True:
            b = await r.read(256)
            if not b:
                break
            a += b
        answers.append(code(a))
        w.close()
    print(code(third), answers, p.stats["refused"], code(await exchange(b"GET / HTTP/1.0\r\n\r\n")))
asyncio.run(main())
""")
    assert out.strip() == "503 [200, 200] 1 200"


def test_a_client_that_drips_its_head_is_cut_off():
    out = _run(r"""
async def main():
    p, r, w = await started(head_timeout_ms=500)
    answer = b""
    closed = False
    # One header byte every 50 ms, never the blank line: each read is quick, the head never ends.
    for i in range(2000):
        try:
            w.write(b"X")
            await w.drain()
        except OSError:
            closed = True
            break
        try:
            b = await asyncio.wait_for_ms(r.read(256), 50)
        except asyncio.TimeoutError:
            continue
        except OSError:  # reset after the answer
            b = b""
        answer += b
        if not b:
            closed = True
            break
    print(code(answer), closed, p.stats["timeouts"], p.active)
asyncio.run(main())
""", timeout=120)
    assert out.split() == ["408", "True", "1", "0"]


def test_served_by_default_on_ethernet_off_on_4g_only_and_imported_only_when_served():
    """nengjian.app._start_status_page: the site's status_page over the board's links and STATUS_PORT."""
    out = run_mpy(r"""
import sys
from nengjian import app

class Link:
    def __init__(self, kind):
        self.kind = kind

class Gw:
    def __init__(self, kinds, pc=None, safe=0):
        self.links = [Link(k) for k in kinds]
        self.cfg = {"items": [], "status_page": pc} if pc is not None else {"items": []}
        self.safe = safe
        self.status_page = None

for kinds, pc, safe in ((["cellular"], None, 0), (["cellular"], {"enabled": True}, 0),
                        (["ethernet", "cellular"], {"enabled": False}, 0), (["ethernet"], None, 1),
                        (["ethernet", "cellular"], None, 0), (["cellular", "ethernet"], {"port": 8081}, 0)):
    gw = Gw(kinds, pc, safe)
    before = "nengjian.console.page" in sys.modules
    app._start_status_page(gw, None)
    print(gw.status_page is not None, before, "nengjian.console.page" in sys.modules)
""", heap="2m", env={"NJ_STATUS_PORT": "8080"}).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith(("True", "False"))]
    assert rows == [["False", "False", "False"], ["False", "False", "False"], ["False", "False", "False"],
                    ["False", "False", "False"], ["True", "False", "True"], ["True", "True", "True"]]
