"""The firmware's HTTP client on MicroPython, at the sim heap, against a hostile server: thousands of
generated answers - valid, malformed, oversized, truncated, slow, over the wrong TLS, to the
unverified keepalive probe - and not one may end in anything but an answer or an HttpError (no
MemoryError, no other exception), nor may an unverified answer reach the clock.

One MicroPython process makes every request in turn, so each server port hands out its cases in
the order they were accepted (the probe's HEAD / names no case); a request's path is checked
against that order where there is one. The answers come from a fixed seed: a failure names the
case, and the same case comes back on the next run.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import struct
import threading
import time
from collections import Counter, defaultdict
from email.utils import formatdate

import pytest
from mpyrun import run_mpy
from simrig import make_pki

pytestmark = [pytest.mark.mpy, pytest.mark.slow]

SEED = 14
COUNT = 3000  # answers in all; the classes take their share of it below
LINE_MAX = 2048  # nengjian.net.http._LINE_MAX
BODY_MAX = 16384  # nengjian.net.http._BODY_MAX
SLOW_MS = 100  # the deadline of the "slow" cases only; every other case has 2 s and needs a fraction
# class -> share of COUNT. TLS handshakes cost MicroPython some 60 ms each: the classes that make
# them are kept small, the plain ones carry the numbers.
SHARES = {"valid": 0.14, "malformed": 0.30, "oversized": 0.22, "truncated": 0.13, "slow": 0.02,
          "wrong-tls": 0.08, "tls-hostile": 0.02, "unverified": 0.09}
# How the client reaches each case: (server port, client mode, slow). Modes: get (plain http or a
# verified TLS context built by nengjian.net.tls for a pinned CA), probe (http.reachable: HEAD,
# CERT_NONE over https), insecure (tls.build with insecure_self_signed: CERT_NONE).
ROUTES = [("plain", "get", False), ("plain", "get", True), ("srv", "get", False), ("rogue", "get", False),
          ("self", "get", False), ("raw", "get", False), ("plain", "probe", False), ("srv", "probe", False),
          ("rogue", "probe", False), ("rogue", "insecure", False), ("raw", "probe", False)]
VERIFIED = {i for i, (port, mode, _slow) in enumerate(ROUTES) if port != "plain" and mode == "get"}


# ---- answers ------------------------------------------------------------------------------------

def _date(rng):
    return formatdate(rng.randrange(1_800_000_000, 1_900_000_000), usegmt=True).encode()


def _json_value(rng, depth):
    k = rng.random()
    if depth >= 4 or k < 0.35:
        return rng.choice([0, -7, 3.25, 12345678901, True, None, "ok", "能源", 'a[{"b', "x\\\"]}", "", "0,1,2"])
    if k < 0.65:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(0, 6))]
    return {"k%d%s" % (i, rng.choice(["", "[", "{", ",", '"'])): _json_value(rng, depth + 1)
            for i in range(rng.randrange(0, 6))}


def _body(rng):
    if rng.random() < 0.7:
        return json.dumps({"responseCode": "0", "data": _json_value(rng, 1)}, ensure_ascii=rng.random() < 0.5).encode()
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3000)))


def _chunked(rng, body, ext=True):
    out, i = b"", 0
    while i < len(body):
        n = rng.randrange(1, 2000)
        size = b"%x" % len(body[i:i + n])
        out += (size.upper() if rng.random() < 0.5 else size) + (b";x=1" if ext and rng.random() < 0.2 else b"")
        out += b"\r\n" + body[i:i + n] + b"\r\n"
        i += n
    return out + b"0\r\n\r\n"


def _head(rng, status=200, extra=(), eol=b"\r\n"):
    lines = [b"HTTP/1.%d %d %s" % (rng.randrange(2), status, rng.choice([b"OK", b"", b"Whatever it is"]))]
    if rng.random() < 0.8:
        lines.append(b"Date: " + _date(rng))
    for _ in range(rng.randrange(0, 12)):
        lines.append(rng.choice([b"Server: nginx", b"Content-Type: application/json;charset=UTF-8",
                                 b"Set-Cookie: JSESSIONID=" + b"%032x" % rng.getrandbits(128) + b"; Path=/; HttpOnly",
                                 b"X-Pad: " + b"p" * rng.randrange(0, LINE_MAX - 100), b"Connection: close"]))
    lines += list(extra)
    return eol.join(lines) + eol + eol


def valid(rng):
    """(answer bytes, expected status, expected body): must come through whole."""
    status = rng.choice([200, 200, 200, 201, 202, 400, 401, 403, 404, 500, 502, 503])
    body = _body(rng)
    framing = rng.choice(["length", "length", "chunked", "eof"])
    eol = b"\n" if rng.random() < 0.1 else b"\r\n"
    if framing == "length":
        return _head(rng, status, [b"Content-Length: %d" % len(body)], eol) + body, status, body
    if framing == "chunked":
        return _head(rng, status, [b"Transfer-Encoding: chunked"], eol) + _chunked(rng, body), status, body
    return _head(rng, status, [], eol) + body, status, body


def malformed(rng):
    body = _body(rng)
    k = rng.randrange(7)
    if k == 0:  # the status line
        line = rng.choice([b"HTTP/1.1 2000 OK", b"HTTP/1.1 -20 OK", b"HTTP/1.1", b"HTTP/1.1 abc", b"",
                           b"HTTP/1.1 \xef\xbc\x92\xef\xbc\x90\xef\xbc\x90 OK", b"SSH-2.0-OpenSSH_9.6", b"\x00" * 40,
                           b"HTTP/1.1 99999999999999999999 OK", b"HTTP/1.1 +20 OK", b"HTTP/1.1 2_0 OK",
                           bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"")])
        return line + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    if k == 1:  # Content-Length
        cl = rng.choice([b"-1", b"-100000", b"+5", b"0x10", b"1_0", b"5 5", b"", b"\xef\xbc\x91\xef\xbc\x90", b"9" * 30,
                         b"1e3", b"12abc", b"4294967296", b" ", b"%d" % (len(body) + rng.randrange(1, 100))])
        extra = [b"Content-Length: " + cl]
        if rng.random() < 0.3:
            extra.append(b"Content-Length: %d" % len(body))
        return _head(rng, 200, extra) + body
    if k == 2:  # chunk sizes and chunk framing
        size = rng.choice([b"-1", b"-3", b"-100000", b"0x10", b"+10", b"1_0", b"", b"zz", b"f" * 20, b"fffffffe",
                           b"ffffffffffffffff", b"7fffffff", b" 5", b"5 5", b"\xef\xbc\x95", b"1" * 9])
        good = _chunked(rng, body[:100], ext=False)[:-5]
        return _head(rng, 200, [b"Transfer-Encoding: chunked"]) + good + size + b"\r\n" + b"x" * 50000
    if k == 3:  # chunk data not followed by CRLF, or lying about its size
        n = rng.randrange(1, 300)
        return (_head(rng, 200, [b"Transfer-Encoding: chunked"]) + b"%x\r\n" % n + b"y" * (n + rng.randrange(1, 9))
                + b"\r\n0\r\n\r\n")
    if k == 4:  # odd header lines
        odd = rng.choice([b"no colon at all", b": empty name", b" folded continuation", b"\x00\x01\x02: nul",
                          b"Date: Sun, 99 Foo 99999999 99:99:99 GMT", b"Date: \xff\xfe", b"Date:", b"Date: 1 2 3 4 5 6",
                          b"Transfer-Encoding: gzip, chunked", b"X: \r\r\r", b"Content-Length:"])
        return _head(rng, 200, [odd, b"Content-Length: %d" % len(body)]) + body
    if k == 5:  # bytes flipped, inserted or dropped anywhere in a valid answer
        data = bytearray(valid(rng)[0])
        for _ in range(rng.randrange(1, 8)):
            i = rng.randrange(len(data) + 1)
            op = rng.randrange(3)
            if op == 0 and i < len(data):
                data[i] = rng.randrange(256)
            elif op == 1:
                data[i:i] = bytes([rng.choice([10, 13, 0, 58, 32, 45, rng.randrange(256)])])
            elif i < len(data):
                del data[i]
        return bytes(data)
    return rng.choice([b"", b"\r\n", b"\n\n\n", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\n\r"])


def oversized(rng):
    k = rng.randrange(9)
    n = int(10 ** rng.uniform(3.4, 6))  # 2.5 kB to 1 MB
    if k == 0:  # a status line without end
        return b"HTTP/1.1 200 " + b"O" * n
    if k == 1:  # one header line without end, or with one far past LINE_MAX
        return b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * n + (b"\r\n\r\n" if rng.random() < 0.5 else b"")
    if k == 2:  # too many header lines
        return b"HTTP/1.1 200 OK\r\n" + b"X-H: 1\r\n" * rng.randrange(65, 30000) + b"\r\n"
    if k == 3:  # Content-Length past the cap, then as many bytes
        m = rng.randrange(BODY_MAX + 1, 200000)
        return _head(rng, 200, [b"Content-Length: %d" % m]) + b"z" * m
    if k == 4:  # chunks adding up past the cap
        return _head(rng, 200, [b"Transfer-Encoding: chunked"]) + (b"fff\r\n" + b"c" * 4095 + b"\r\n") * 60
    if k == 5:  # to the end of the connection, past the cap
        return _head(rng, 200) + b"e" * rng.randrange(BODY_MAX + 1, 200000)
    # JSON within the body cap that a parser cannot hold: nested, or too many values
    if k == 6:
        d = rng.randrange(17, 8000)
        doc = rng.choice([b"[", b'{"a":']) * d
    elif k == 7:
        doc = b"[" + b"{}," * rng.randrange(1100, 5400) + b"{}]"
    else:
        # brackets and commas in strings, under the limits: parsed (a scan that counted them would refuse)
        doc = b'[' + b'"[{\\"",' * rng.randrange(100, 900) + b"[" * 10 + b"]" * 10 + b"]"
    doc = doc[:BODY_MAX]
    return _head(rng, 200, [b"Content-Length: %d" % len(doc)]) + doc


def truncated(rng):
    data = valid(rng)[0]
    return data[:rng.randrange(len(data))]


def wrong_tls(rng):
    """What a port that should speak TLS sends instead (raw port) - or any answer (bad certificates)."""
    return rng.choice([
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        bytes(rng.randrange(256) for _ in range(rng.randrange(0, 5000))),
        b"\x16\x03\x03\xff\xff" + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3000))),  # huge record
        b"\x15\x03\x03\x00\x02\x02\x28",  # a fatal alert
        b"\x16\x03\x03\x00\x30\x02\x00\x00\x2c\x03\x03" + bytes(20),  # a ServerHello cut short
        b"",
    ])


CLASSES = {"valid": valid, "malformed": malformed, "oversized": oversized, "truncated": truncated,
           "slow": valid, "wrong-tls": wrong_tls, "tls-hostile": None, "unverified": None}


def route_of(rng, cls):
    names = {r: i for i, r in enumerate(ROUTES)}
    if cls == "slow":
        return names[("plain", "get", True)]
    if cls == "valid":
        return names[("srv", "get", False)] if rng.random() < 0.05 else names[("plain", "get", False)]
    if cls == "wrong-tls":
        return names[rng.choice([("raw", "get", False)] * 8 + [("rogue", "get", False), ("self", "get", False)])]
    if cls == "tls-hostile":
        return names[("srv", "get", False)]
    if cls == "unverified":
        return names[rng.choice([("plain", "probe", False)] * 6 + [("srv", "probe", False), ("rogue", "probe", False),
                                                                    ("rogue", "insecure", False), ("raw", "probe", False)])]
    return names[("plain", "get", False)]


def plan(seed=SEED, count=COUNT):
    """[(class, route index, actions, expected (status, body) or None)] in the order requested."""
    rng = random.Random(seed)
    classes = []
    for cls, share in SHARES.items():
        classes += [cls] * round(share * count)
    classes = (classes + ["malformed"] * count)[:count]
    rng.shuffle(classes)
    cases = []
    for cls in classes:
        route = route_of(rng, cls)
        expect = None
        if cls in ("valid", "slow"):
            data, status, body = valid(rng)
            expect = (status, body)
        elif cls in ("tls-hostile", "unverified"):
            data = rng.choice([lambda r: valid(r)[0], malformed, oversized, truncated])(rng)
        else:
            data = CLASSES[cls](rng)
        actions = [("send", data)]
        if cls == "slow":  # a drip that outlasts the deadline, or silence
            actions = ([("drip", data, 0.02)] if rng.random() < 0.6 else
                       [("send", data[:rng.randrange(len(data) + 1)]), ("sleep", 0.5)])
            expect = None
        elif cls == "valid" and rng.random() < 0.1:
            actions = [("drip", data, 0)]  # one byte per segment, at once: lines split across reads
        elif cls == "truncated" and rng.random() < 0.3:
            actions.append(("rst",))
        cases.append((cls, route, actions, expect))
    return cases


# ---- the server -----------------------------------------------------------------------------------

class Hostile:
    """One listening socket per kind of server; each hands out its cases in accept order."""

    def __init__(self, cases, pki):
        self.cases = cases
        self.mismatch = []
        self.errors = []
        self.ctx = {}
        for kind, cert in (("srv", "srv"), ("rogue", "rogue-srv"), ("self", "self")):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(pki / (cert + ".pem")), str(pki / (cert + ".key")))
            self.ctx[kind] = ctx
        self.ports = {}
        self.socks = []
        for kind in ("plain", "srv", "rogue", "self", "raw"):
            order = [i for i, c in enumerate(cases) if ROUTES[c[1]][0] == kind]
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            self.ports[kind] = s.getsockname()[1]
            self.socks.append(s)
            threading.Thread(target=self._accept, args=(s, kind, order), daemon=True).start()

    def _accept(self, s, kind, order):
        n = 0
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            index = order[n] if n < len(order) else None
            n += 1
            threading.Thread(target=self._serve, args=(conn, kind, index), daemon=True).start()

    def _serve(self, conn, kind, index):
        try:
            conn.settimeout(5)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if index is None:
                return
            _cls, _route, actions, _expect = self.cases[index]
            if kind == "raw":
                conn.recv(4096)  # the ClientHello, unanswered
            else:
                if kind != "plain":
                    conn = self.ctx[kind].wrap_socket(conn, server_side=True)
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    more = conn.recv(4096)
                    if not more:
                        return
                    head += more
                path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
                if path != b"/" and path != b"/f/%d" % index:
                    self.mismatch.append((index, path))
            for a in actions:
                if a[0] == "send":
                    conn.sendall(a[1])
                elif a[0] == "drip":
                    for i in range(len(a[1])):
                        conn.sendall(a[1][i:i + 1])
                        if a[2]:
                            time.sleep(a[2])
                elif a[0] == "sleep":
                    time.sleep(a[1])
                elif a[0] == "rst":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, ValueError):  # the client gave up on the answer: as intended
            pass
        except Exception as e:  # noqa: BLE001 - the server's own bug: the test reports it
            self.errors.append((index, repr(e)))
        finally:
            conn.close()

    def close(self):
        for s in self.socks:
            s.close()


CLIENT = r"""
import asyncio, gc, json
from nengjian.net import http
from nengjian.net import tls as tlsctx
PLAN = %r
ROUTES = %r
PORTS = %r
SLOW_MS = %d
verified = tlsctx.build({"ca": "ca.der"}, %r)[0]
insecure = tlsctx.build({"insecure_self_signed": True}, "")[0]
check = getattr(http, "check_json", None)
now = [0]
def date_hook(*a):
    print("D", now[0], a[0], a[1] if len(a) > 1 else "")
http.on_date = date_hook
async def one(i, route):
    port, mode, slow = ROUTES[route]
    timeout = SLOW_MS if slow else 2000
    url = "%%s://127.0.0.1:%%d/f/%%d" %% ("http" if port == "plain" else "https", PORTS[port], i)
    try:
        if mode == "probe":
            return "reach %%d" %% (await http.reachable(url, timeout))
        status, body = await http.request("GET", url, b"", None, timeout, insecure if mode == "insecure" else
                                          None if port == "plain" else verified)
    except http.HttpError as e:
        return "http %%s %%d" %% ("memory" if "memory" in str(e) else "-", e.timeout)
    except Exception as e:
        return "esc %%s %%s" %% (type(e).__name__, str(e)[:60].replace(" ", "_"))
    j = "-"
    if body[:1] in (b"{", b"["):
        try:
            if check is not None:
                check(body)
            json.loads(body)
            j = "p"
        except http.HttpError:
            j = "j"
        except ValueError:
            j = "v"
        except Exception as e:
            return "esc %%s json:%%s" %% (type(e).__name__, str(e)[:40].replace(" ", "_"))
    return "ok %%d %%d %%s %%s" %% (status, len(body), j, "%%08x" %% (sum(body) & 0xffffffff))
async def main():
    for i in range(len(PLAN)):
        now[0] = i
        gc.collect()
        print("R", i, await one(i, ord(PLAN[i]) - 97))
    gc.collect()
    print("END", gc.mem_free())
asyncio.run(main())
"""


def test_hostile_answers_end_in_an_answer_or_an_http_error(tmp_path):
    pki = make_pki(tmp_path / "pki")
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "ca.der").write_bytes((pki / "ca.der").read_bytes())
    cases = plan()
    server = Hostile(cases, pki)
    try:
        code = CLIENT % ("".join(chr(97 + c[1]) for c in cases), ROUTES, server.ports, SLOW_MS, str(cfg))
        proc = run_mpy(code, heap="288k", timeout=600, check=False)
    finally:
        server.close()
    results, dates = {}, []
    for line in proc.stdout.splitlines():
        parts = line.split(" ", 2)
        if parts[0] == "R":
            results[int(parts[1])] = parts[2]
        elif parts[0] == "D":
            dates.append((int(parts[1]), parts[2]))
    assert len(results) == len(cases), "the client stopped at case %d:\n%s\n%s" % (
        len(results), proc.stdout[-2000:], proc.stderr[-3000:])

    by_class = defaultdict(Counter)
    escapes = Counter()
    examples = {}
    wrong = []
    for i, (cls, _route, _actions, expect) in enumerate(cases):
        r = results[i].split()
        kind = {"esc": "esc " + r[1], "reach": "reach:" + r[-1], "http": "HttpError"}.get(r[0], r[0])
        if r[0] == "http":
            kind = "HttpError(memory)" if r[1] == "memory" else "HttpError(timeout)" if r[2] == "1" else kind
        if r[0] == "ok" and r[3] != "-":
            kind += "+json:" + {"p": "parsed", "j": "refused", "v": "not-json"}[r[3]]
        by_class[cls][kind] += 1
        if r[0] == "esc" or kind == "HttpError(memory)":
            where = "json.loads" if r[-1].startswith("json:") else "request"
            escapes["%s: %s from %s" % (cls, r[1] if r[0] == "esc" else kind, where)] += 1
            examples.setdefault(cls, (i, results[i]))
        if expect is not None:
            status, body = expect
            if r[:3] != ["ok", str(status), str(len(body))] or r[4] != "%08x" % (sum(body) & 0xFFFFFFFF):
                wrong.append((i, results[i], status, len(body)))
    print("\nhostile answers by class (seed %d, %d in all):" % (SEED, len(cases)))
    for cls in SHARES:
        print("  %-12s %5d  %s" % (cls, sum(by_class[cls].values()), dict(sorted(by_class[cls].items()))))
    print("  escapes: %d %s" % (sum(escapes.values()), dict(escapes.most_common())))
    unverified = [(i, ROUTES[cases[i][1]]) for i, _src in dates if cases[i][1] not in VERIFIED]
    print("  Date hook: %d call(s), %d of them for unverified answers" % (len(dates), len(unverified)))

    assert not escapes, "exceptions other than HttpError, by class and kind: %s; a case of each class: %s" % (
        dict(escapes), examples)
    assert not server.mismatch, server.mismatch[:5]
    assert not server.errors, server.errors[:5]
    assert not wrong, "valid answers not read whole (index, result, status, length): %s" % wrong[:5]
    # Only a verified TLS answer reaches the clock, and such answers do reach it.
    assert not unverified, "Date taken from unverified answers: %s" % unverified[:5]
    assert any(cases[i][1] in VERIFIED for i, _src in dates)
