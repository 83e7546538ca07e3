"""The firmware's HTTP client on MicroPython against servers that misbehave the ways networks do:
every wait bounded by one deadline, every failure an HttpError (with errno / timeout flags the
delivery and the link supervisor act on), every limit on an answer an HttpError, Date headers
handed to the clock from verified servers only. test_http_fuzz.py adds thousands of generated
answers."""

from __future__ import annotations

import calendar
import json
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from mpyrun import run_mpy

pytestmark = [pytest.mark.mpy]

OK_BODY = b'{"responseCode":"0"}'


def _respond(conn, behaviour):
    conn.settimeout(10)
    if behaviour == "not-tls":  # a plain server where the gateway expects TLS
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = conn.recv(4096)
        if not chunk:  # the client gave up mid-body: a recv of nothing forever would spin this thread
            return
        rest += chunk
    date = b"Date: Tue, 25 Nov 2025 16:41:07 GMT\r\n"
    if behaviour == "ok":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + date + b"Content-Length: %d\r\n\r\n" % len(OK_BODY) + OK_BODY)
    elif behaviour == "echo":
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(rest) + rest)
    elif behaviour == "head":
        conn.sendall(b"HTTP/1.1 501 Unsupported method\r\nContent-Length: 500\r\n\r\n")
    elif behaviour == "chunked":
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    elif behaviour == "eof":
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
    elif behaviour == "drip":
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100:
            conn.sendall(bytes([b]))
            time.sleep(0.1)
    elif behaviour == "hang":
        time.sleep(5)
    elif behaviour == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif behaviour == "garbage":
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    elif behaviour == "huge":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 1000)
    elif behaviour == "huge-eof":
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 40000)
    elif behaviour == "bulk":  # a download: far larger than any answer the client keeps in RAM
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n" + bytes(range(250)) * 200)
    elif behaviour == "truncated":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")


class Server:
    def __init__(self, behaviour):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.requests = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            _respond(conn, self.behaviour)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


CLIENT = """
import asyncio, json, ssl, time
from nengjian.net import http
CASES = json.loads(%r)
dates = []
http.on_date = lambda *a: dates.append(a[0])
async def one(c):
    t = time.ticks_ms()
    out = {}
    try:
        if c.get("probe"):
            out["reachable"] = await http.reachable(c["url"], c.get("timeout", 2000))
        else:
            ctx = None
            if c.get("tls"):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.verify_mode = ssl.CERT_NONE
            body, length = c.get("body", "x").encode(), None
            if c.get("stream"):  # a generator of chunks with the total announced
                data, n = body, c["stream"]
                body = (data[i:i + n] for i in range(0, len(data), n))
                length = len(data) + c.get("lie", 0)
            into = open(c["into"], "wb") if c.get("into") else None
            try:
                status, body = await http.request(c.get("method", "POST"), c["url"], body,
                                                  {"Content-Type": "application/json"}, c.get("timeout", 2000),
                                                  ssl=ctx, max_body=c.get("max_body", 16384), length=length,
                                                  into=into)
            finally:
                if into is not None:
                    into.close()
            out["status"] = status
            out["body"] = body.decode()
    except http.HttpError as e:
        out["error"] = str(e)
        out["errno"] = e.errno
        out["timeout"] = e.timeout
    out["ms"] = time.ticks_diff(time.ticks_ms(), t)
    return out
async def main():
    res = {}
    for name, c in CASES.items():
        res[name] = await one(c)
    res["dates"] = dates
    res["parsed"] = [http.parse_http_date(t) for t in ("Sun, 06 Nov 1994 08:49:37 GMT",
                                                       "Sunday, 06-Nov-94 08:49:37 GMT", "garbage")]
    print("RESULT " + json.dumps(res))
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    behaviours = ["ok", "echo", "head", "chunked", "eof", "drip", "hang", "reset", "garbage", "huge", "huge-eof",
                  "truncated", "not-tls", "bulk"]
    servers = {b: Server(b) for b in behaviours}
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there: connection refused
    cases = {b: {"url": "http://127.0.0.1:%d/api/data" % s.port} for b, s in servers.items()}
    cases["echo"]["body"] = "\u80fd\u6e90" * 3000  # 18 kB of UTF-8 out, echoed back
    cases["echo"]["max_body"] = 32768
    cases["drip"]["timeout"] = 1500
    cases["hang"]["timeout"] = 800
    cases["refused"] = {"url": "http://127.0.0.1:%d/" % dead_port}
    cases["stream"] = {"url": cases["echo"]["url"], "body": "r" * 20000, "stream": 170, "max_body": 32768}
    cases["stream_short"] = {"url": cases["echo"]["url"], "body": "r" * 1000, "stream": 170, "lie": 5}
    cases["stream_long"] = {"url": cases["echo"]["url"], "body": "r" * 1000, "stream": 170, "lie": -5}
    cases["not-tls"] = {"url": "https://127.0.0.1:%d/" % servers["not-tls"].port, "tls": True}
    cases["head"]["method"] = "HEAD"
    cases["probe_ok"] = {"url": "http://127.0.0.1:%d/api/register" % servers["head"].port, "probe": True}
    cases["probe_refused"] = {"url": "http://127.0.0.1:%d/" % dead_port, "probe": True}
    cases["probe_silent"] = {"url": "http://127.0.0.1:%d/" % servers["hang"].port, "probe": True, "timeout": 500}
    cases["by_name"] = {"url": "http://localhost:%d/x" % servers["ok"].port}
    cases["not_https_ctx"] = {"url": "https://127.0.0.1:%d/" % servers["ok"].port}
    for name, server in (("bulk", "bulk"), ("truncated", "truncated"), ("chunked", "chunked")):
        cases["into_" + name] = {"url": cases[server]["url"], "method": "GET", "body": "",
                                 "into": str(tmp_path_factory.mktemp("dl") / (name + ".bin"))}
    downloads = {k: c["into"] for k, c in cases.items() if "into" in c}
    proc = run_mpy(CLIENT % json.dumps(cases), timeout=60, heap="1024k")  # the results JSON holds 18 kB echoes
    for s in servers.values():
        s.close()
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            for k, path in downloads.items():
                res[k]["file"] = Path(path).read_bytes()
            return res
    raise AssertionError(proc.stdout + proc.stderr)


def test_ok_answer_and_no_date_from_plain_http(results):
    assert results["ok"]["status"] == 200 and results["ok"]["body"] == OK_BODY.decode()
    assert results["dates"] == []  # anyone on the path may write a plain answer's Date: see test_date_*


def test_large_utf8_body_goes_out_whole(results):
    assert results["echo"]["status"] == 201 and results["echo"]["body"] == "\u80fd\u6e90" * 3000


def test_streamed_body(results):
    assert results["stream"]["status"] == 201 and results["stream"]["body"] == "r" * 20000
    assert "1000 bytes, 1005 announced" in results["stream_short"]["error"]
    assert "longer than its announced 995 bytes" in results["stream_long"]["error"]


def test_head_has_no_body(results):
    assert results["head"]["status"] == 501 and results["head"]["body"] == ""


def test_chunked_and_read_to_eof(results):
    assert results["chunked"]["body"] == "hello world"
    assert results["eof"]["body"] == "until the end"


def test_one_deadline_for_the_whole_exchange(results):
    # A server that drips a byte every 100 ms (10 s of header) never lets a per-read timeout fire;
    # only the deadline can end it as a timeout (without one it would end in an EOF error). Durations
    # are not asserted: they belong to benchmarks, and a loaded CI machine stretches them.
    r = results["drip"]
    assert r["timeout"] is True and "within 1500 ms" in r["error"]
    r = results["hang"]  # silent for 5 s, then closes: a timeout only through the 800 ms deadline
    assert r["timeout"] is True and "within 800 ms" in r["error"]


@pytest.mark.parametrize("case,needle,errno", [
    ("reset", "ECONNRESET", 104),
    ("refused", "ECONNREFUSED", 111),
    ("garbage", "not an HTTP response", None),
    ("huge", "too large", None),
    ("huge-eof", "too large", None),
    ("truncated", "", None),
    ("not_https_ctx", "TLS context", None),
])
def test_failures_are_http_errors(results, case, needle, errno):
    r = results[case]
    assert "error" in r, r
    assert needle in r["error"]
    assert r["errno"] == errno and r["timeout"] is False


def test_tls_failure_is_an_http_error(results):
    r = results["not-tls"]
    assert "error" in r and r["timeout"] is False, r


def test_keepalive_probe(results):
    assert results["probe_ok"]["reachable"] is True  # any HTTP answer proves the path
    assert results["probe_refused"]["reachable"] is True  # so does a refusal from the host
    assert results["probe_silent"]["reachable"] is False  # silence does not


def test_names_resolve_once(results):
    assert results["by_name"]["status"] == 200


def test_split_url_and_http_date():
    from nengjian.net import http

    assert http.split_url("https://a.example:8443/api/x?y=1") == ("https", "a.example", 8443, "/api/x?y=1")
    assert http.split_url("http://10.0.0.1") == ("http", "10.0.0.1", 80, "/")
    with pytest.raises(ValueError):
        http.split_url("ftp://x/")



def test_http_date(results):
    assert results["parsed"] == [784111777, None, None]


def test_a_download_streams_into_a_file_and_a_short_one_is_an_error(results):
    r = results["into_bulk"]
    assert r["status"] == 200 and r["body"] == "" and r["file"] == bytes(range(250)) * 200  # 50 kB, max_body 16 kB
    r = results["into_truncated"]
    assert "connection closed with 90 of 100 bytes to go" in r["error"] and r["file"] == b"only ten b"
    assert "needs a Content-Length" in results["into_chunked"]["error"]


# ---- every limit an HttpError, at the sim heap ----------------------------------------------------

def _head(*lines):
    return b"HTTP/1.1 200 OK\r\n" + b"".join(x + b"\r\n" for x in lines) + b"\r\n"


def _chunked(*sizes):
    return _head(b"Transfer-Encoding: chunked") + b"5\r\nhello\r\n" + b"".join(s + b"\r\n" for s in sizes) + b"x" * 60000


LIMITS = {  # name: (the whole answer, text of the HttpError)
    "line_without_end": (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 600000, "line of more than 2048 bytes"),
    "status_line_without_end": (b"HTTP/1.1 200 " + b"O" * 600000, "line of more than 2048 bytes"),
    "long_line": (_head(b"X-Long: " + b"a" * 2100), "line of more than 2048 bytes"),
    # within the limits: a line longer than the read buffer, many lines split across reads
    "line_of_2040": (_head(b"X-Long: " + b"a" * 2030, b"Content-Length: 5") + b"hello", "answer 200, 5 bytes"),
    "headers_64": (_head(*[b"X-H: " + b"h" * 300] * 63, b"Content-Length: 5") + b"hello", "answer 200, 5 bytes"),
    "header_count": (_head(*[b"X-H: 1"] * 65), "more than 64 header lines"),
    "status_word": (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP response"),
    "chunk_negative": (_chunked(b"-3"), "bad chunk size b'-3'"),
    "chunk_negative_large": (_chunked(b"-100000"), "bad chunk size"),
    "chunk_0x": (_chunked(b"0x10"), "bad chunk size b'0x10'"),
    "chunk_underscore": (_chunked(b"1_0"), "bad chunk size"),
    "chunk_long": (_chunked(b"f" * 20), "bad chunk size"),
    "chunk_past_cap": (_chunked(b"fffffff"), "too large"),
    "chunk_sum_past_cap": (_head(b"Transfer-Encoding: chunked") + (b"1000\r\n" + b"c" * 4096 + b"\r\n") * 5,
                           "too large"),
    "chunk_without_crlf": (_head(b"Transfer-Encoding: chunked") + b"5\r\nhello!!0\r\n\r\n", "chunk without CRLF"),
    "length_negative": (_head(b"Content-Length: -5") + b"x" * 60000, "bad Content-Length b'-5'"),
    "length_plus": (_head(b"Content-Length: +5") + b"hello", "bad Content-Length"),
    "length_long": (_head(b"Content-Length: " + b"9" * 30), "bad Content-Length"),
    "length_twice": (_head(b"Content-Length: 5", b"Content-Length: 6") + b"hello!", "two different Content-Length"),
    "length_past_cap": (_head(b"Content-Length: 100000") + b"x" * 100000, "too large"),
    "eof_past_cap": (_head() + b"e" * 100000, "too large"),
}
JSON_CASES = {  # name: (body, text of the HttpError or None when it parses)
    "deep": (b"[" * 8000, "nested deeper than 16"),
    "deep_objects": (b'{"a":' * 3000, "nested deeper than 16"),
    "values": (b"[" + b"{}," * 4000 + b"{}]", "more than 1024 values"),
    "size": (b'"' + b"s" * 17000 + b'"', "too large"),
    "depth_16": (b"[" * 16 + b"]" * 16, None),
    "brackets_in_strings": (b"[" + b'"[{\\",",' * 900 + b'"x"]', None),
    "platform_answer": (b'{"responseCode":"0","data":[{"energyCode":"0100","convertRation":"0.1229"}]}', None),
}

LIMITS_CLIENT = r"""
import asyncio, gc, json
from nengjian.net import http
PORTS = %r
JSON = %r
async def main():
    out = {}
    for name, port in PORTS.items():
        gc.collect()
        try:
            status, body = await http.request("GET", "http://127.0.0.1:%%d/" %% port, b"", None, 5000)
            out[name] = "answer %%d, %%d bytes" %% (status, len(body))
        except http.HttpError as e:
            out[name] = "HttpError: %%s" %% e
        except Exception as e:
            out[name] = "%%s: %%s" %% (type(e).__name__, e)
    for name, body in JSON.items():
        gc.collect()
        body = body.encode("latin-1") if isinstance(body, str) else body
        try:
            http.check_json(body)
            json.loads(body)
            out["json_" + name] = None
        except http.HttpError as e:
            out["json_" + name] = "HttpError: %%s" %% e
        except Exception as e:
            out["json_" + name] = "%%s: %%s" %% (type(e).__name__, e)
    print("RESULT " + json.dumps(out))
asyncio.run(main())
"""


class Canned(Server):
    """A server that reads the request and sends one fixed answer, then closes."""

    def __init__(self, answer):
        self.answer = answer
        super().__init__("canned")

    def _one(self, conn):
        try:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(4096)
                if not more:
                    return
                data += more
            conn.sendall(self.answer)
        except OSError:
            pass
        finally:
            conn.close()


@pytest.fixture(scope="module")
def limits():
    servers = {name: Canned(answer) for name, (answer, _needle) in LIMITS.items()}
    try:
        code = LIMITS_CLIENT % ({k: s.port for k, s in servers.items()},
                                {k: b.decode("latin-1") for k, (b, _n) in JSON_CASES.items()})
        proc = run_mpy(code, heap="288k", timeout=120)
    finally:
        for s in servers.values():
            s.close()
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError(proc.stdout + proc.stderr)


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_every_limit_on_an_answer_is_an_http_error(limits, name):
    needle = LIMITS[name][1]
    if needle.startswith("answer "):
        assert limits[name] == needle
    else:
        assert limits[name].startswith("HttpError: ") and needle in limits[name], limits[name]


@pytest.mark.parametrize("name", sorted(JSON_CASES))
def test_json_is_checked_for_size_depth_and_values_before_parsing(limits, name):
    needle = JSON_CASES[name][1]
    got = limits["json_" + name]
    if needle is None:
        assert got is None
    else:
        assert got is not None and got.startswith("HttpError: ") and needle in got, got


# ---- the clock takes a Date only from a verified server --------------------------------------------

DATE_CLIENT = r"""
import asyncio, json
from nengjian.net import http
from nengjian.net import tls as tlsctx
dates = []
def hook(*a):
    dates.append([now[0]] + list(a))
    if now[0] == "verified_hook_fails":
        raise OSError(5)  # the board's RTC refused: the answer itself stands
now = [None]
http.on_date = hook
verified = tlsctx.build({"ca": "ca.der"}, %r)[0]
insecure = tlsctx.build({"insecure_self_signed": True}, "")[0]
TLS, BAD, PLAIN = %r
async def main():
    out = {}
    for name, url, ctx in (("verified", TLS, verified), ("verified_bad_date", BAD, verified),
                           ("verified_hook_fails", TLS, verified), ("insecure", TLS, insecure),
                           ("plain", PLAIN, None), ("probe", TLS, None)):
        now[0] = name
        try:
            if name == "probe":
                out[name] = await http.reachable(url, 5000)
            else:
                out[name] = (await http.request("GET", url, b"", None, 5000, ctx))[0]
        except Exception as e:
            out[name] = "%%s: %%s" %% (type(e).__name__, e)
    out["dates"] = dates
    print("RESULT " + json.dumps(out))
asyncio.run(main())
"""


class TlsCanned(Canned):
    def __init__(self, answer, pki):
        import ssl

        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(pki / "srv.pem"), str(pki / "srv.key"))
        super().__init__(answer)

    def _one(self, conn):
        try:
            conn.settimeout(10)
            conn = self.ctx.wrap_socket(conn, server_side=True)
        except OSError:
            conn.close()
            return
        super()._one(conn)


def test_date_reaches_the_clock_only_from_a_verified_server(tmp_path):
    from simrig import make_pki

    pki = make_pki(tmp_path / "pki")
    (tmp_path / "ca.der").write_bytes((pki / "ca.der").read_bytes())
    answer = b"HTTP/1.1 200 OK\r\nDate: Tue, 25 Nov 2025 16:41:07 GMT\r\nContent-Length: 2\r\n\r\nok"
    tls, bad = TlsCanned(answer, pki), TlsCanned(answer.replace(b"25 Nov", b"99 Nov"), pki)
    plain = Canned(answer)
    try:
        urls = ["https://127.0.0.1:%d/x" % tls.port, "https://127.0.0.1:%d/x" % bad.port,
                "http://127.0.0.1:%d/x" % plain.port]
        proc = run_mpy(DATE_CLIENT % (str(tmp_path), urls), heap="288k", timeout=120)
    finally:
        for s in (tls, bad, plain):
            s.close()
    res = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][0][7:])
    # Every request is answered; the probe sees the server.
    assert [res[k] for k in ("verified", "verified_bad_date", "verified_hook_fails", "insecure", "plain")] == [200] * 5
    assert res["probe"] is True
    utc = calendar.timegm((2025, 11, 25, 16, 41, 7))
    # Only the answers over the verified context reach the hook, with the host as the source; an
    # impossible date (99 Nov) is not passed on, and a hook that raises does not fail the request.
    assert res["dates"] == [["verified", utc, "Date header of 127.0.0.1"],
                            ["verified_hook_fails", utc, "Date header of 127.0.0.1"]]


# A platform's answer to an upload on a stand-in connection that hands it over `step` bytes a read.
ANSWER_CONN = r"""
import asyncio, gc, json
from nengjian.net import http
BODY = b'{"responseCode":"0","responseMessage":"ok","accepted":100}'
ANS = (b"HTTP/1.1 200 OK\r\nServer: BaseHTTP/0.6 Python/3.12\r\nDate: Tue, 25 Nov 2025 16:41:07 GMT\r\n"
       b"Content-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY
SRC = memoryview(ANS)
class Conn:
    def __init__(self, step=4096):
        self.step = step
        self.pos = 0
        self.reads = 0
    async def readinto(self, mv):
        n = min(len(mv), len(ANS) - self.pos, self.step)
        mv[:n] = SRC[self.pos:self.pos + n]
        self.pos += n
        self.reads += 1
        return n
    def write(self, b):
        pass
    async def drain(self):
        pass
    def close(self):
        pass
    async def wait_closed(self):
        pass
"""


# An answer read through a buffer the caller lends (the profile's body buffer, idle once the body is
# out): on a heap full of the batch just sent, the 512-byte block of the client's own buffer was
# what failed, and the batch the platform had was sent again, halved.
LENT_BUFFER = ANSWER_CONN + r"""
def once(buf):
    r = Conn()
    got = []
    async def go():
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        status, data = await http._answer(r, "POST", None, 16384, False, "p", buf)
        got.append(gc.mem_alloc() - a)
        gc.enable()
        assert status == 200 and data == BODY, (status, data)
    asyncio.run(go())
    return got[0]
buf = bytearray(2048)
once(buf); once(None)
print("RESULT " + json.dumps({"lent": once(buf), "own": once(None)}))
"""


def test_an_answer_read_through_a_lent_buffer_allocates_no_buffer_of_its_own():
    out = run_mpy(LENT_BUFFER, heap="256k").stdout
    got = json.loads(out.split("RESULT ", 1)[1])
    assert got["own"] - got["lent"] >= 512, got  # bytes allocated reading one answer, collector off


# A request whose answer arrives a few bytes at a time (a slow link, TLS records split): the request's
# one deadline costs the same however many reads the answer takes. A wait_for around each read cost a
# task and a timeout per read, about 1 KB on the sim heap.
PER_READ = ANSWER_CONN + r"""
conn = [None]
async def fake_connect(host, port, ssl, timeout_ms):
    return conn[0], conn[0]
http.connect = fake_connect
buf = bytearray(1024)
def once(step):
    c = conn[0] = Conn(step)
    got = []
    async def go():
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        status, data = await http.request("POST", "http://127.0.0.1:8080/x", b"{}", None, 60000, buf=buf)
        got.append(gc.mem_alloc() - a)
        gc.enable()
        assert status == 200 and data == BODY, (status, data)
    asyncio.run(go())
    return got[0], c.reads
once(4096); once(8)
print("RESULT " + json.dumps({"whole": once(4096), "drip": once(8)}))
"""


def test_the_reads_of_one_answer_share_the_request_s_one_deadline():
    got = json.loads(run_mpy(PER_READ, heap="256k").stdout.split("RESULT ", 1)[1])
    (whole, whole_reads), (drip, drip_reads) = got["whole"], got["drip"]
    assert drip_reads > whole_reads + 20, got
    # what is left per read is the reader's own coroutine: no wrapper of the client's
    assert (drip - whole) / (drip_reads - whole_reads) < 256, got
