"""The status page: a small read-only HTTP server on the LAN link, for a phone or laptop on the plant LAN.

Owns: the HTTP exchange (GET and HEAD of `/` and `/status.json`, nothing else), its bounds, and how
the console's status (nengjian.console.status.full, the same snapshot `nengjian status` shows) is
shown as a page, in Simplified Chinese first, then English. It knows nothing of buses or meters
beyond what that snapshot holds, and it changes nothing on the gateway.

Bounds, for an ESP32 without PSRAM on a LAN anyone can plug into:
- at most MAX_CONNECTIONS requests served at once; one more is answered 503 and closed at once;
- the request line and headers in one buffer of HEAD_MAX bytes: more is 431 and the connection
  closed (a request line alone that long: 414); a request with a body (this server takes none) 413;
- the whole head within HEAD_TIMEOUT_MS (a client that sends a byte now and then is cut off: 408),
  the whole answer within SEND_TIMEOUT_MS (a client that stops reading is dropped);
- the page's renderer (nengjian.console.pagehtml) is loaded only while someone looks at the page;
- the body is streamed in CHUNK-byte pieces as the snapshot is walked: no string of the page or of
  the JSON is ever built, so a request costs the snapshot plus a few small buffers.

No secrets: the snapshot holds none, and any key named like one (guard.SECRETS: pin, token, key ...)
is masked on the way out all the same, at any depth.

Every answer says `Connection: close`: one request per connection keeps the bound simple.
"""

import asyncio
import gc
import json
import sys

from nengjian.core import log
from nengjian.core.compat import const, ticks_diff, ticks_ms, unload

MAX_CONNECTIONS = const(2)
HEAD_MAX = const(1024)
HEAD_TIMEOUT_MS = const(5000)
SEND_TIMEOUT_MS = const(20000)
CHUNK = const(512)
LINGER_MS = const(200)
REFRESH_S = const(10)
# The page's renderer (nengjian.console.pagehtml, as much code again as this module) is loaded by the
# first request for the page and dropped after HTML_UNLOAD_MS without one: a page open in a browser
# (refreshed every REFRESH_S) keeps it, a gateway nobody looks at does not pay for it.
HTML = "nengjian.console.pagehtml"
HTML_UNLOAD_MS = const(60000)
# As nengjian.console.guard.SECRETS, as text (that module is loaded only for file requests).
SECRET_KEYS = ("pin", "secretKey", "secret", "token", "password", "key", "psk")
MASK = "***"

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            413: "Content Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large",
            503: "Service Unavailable"}


class StatusPage:
    """Serves snapshot() (a status dict, nengjian.console.status.full) as `/` and `/status.json`.

    items: the site config's data items ({"code", "meter", "point"}); an item's last value is its meter's
    last reading of the point, from the snapshot."""

    def __init__(self, snapshot, items=None, max_connections=MAX_CONNECTIONS, head_max=HEAD_MAX,
                 head_timeout_ms=HEAD_TIMEOUT_MS, send_timeout_ms=SEND_TIMEOUT_MS):
        self.snapshot = snapshot
        self.items = items or ()
        self.max_connections = max_connections
        self.head_max = head_max
        self.head_timeout_ms = head_timeout_ms
        self.send_timeout_ms = send_timeout_ms
        self.active = 0
        self.stats = {"served": 0, "refused": 0, "bad": 0, "timeouts": 0}
        self.server = None
        self.html_ms = 0

    def idle(self, after_ms=HTML_UNLOAD_MS):
        """Drop the page's renderer when nobody asked for the page for after_ms (run() asks)."""
        if self.active == 0 and HTML in sys.modules and ticks_diff(ticks_ms(), self.html_ms) > after_ms:
            unload(HTML)

    async def start(self, host, port):
        self.server = await asyncio.start_server(self.handle, host, port, backlog=MAX_CONNECTIONS)
        return self.server

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None

    async def handle(self, reader, writer):
        if self.active >= self.max_connections:
            self.stats["refused"] += 1
            try:
                await asyncio.wait_for_ms(self._plain(writer, 503, "busy"), 1000)
                await _linger(reader, bytearray(64))
            except Exception:  # noqa: BLE001 - a refused client's trouble is its own
                pass
            await _close(writer)
            return
        self.active += 1
        try:
            status = await self._read_head(reader)
            if isinstance(status, int):
                self.stats["bad"] += 1
                await asyncio.wait_for_ms(self._plain(writer, status, _REASONS[status]), 1000)
                await _linger(reader, bytearray(64))
            else:
                await asyncio.wait_for_ms(self._answer(writer, status[0], status[1]), self.send_timeout_ms)
                self.stats["served"] += 1
        except asyncio.TimeoutError:
            self.stats["timeouts"] += 1
        except Exception as e:  # noqa: BLE001 - no request may stop the server or the gateway
            log.warn("page", "request failed: %s %s" % (type(e).__name__, e))
        finally:
            self.active -= 1
            await _close(writer)
            gc.collect()

    # ---- request
    async def _read_head(self, reader):
        """(method, path), or the status code of the refusal (408 when the head took too long)."""
        try:
            return await asyncio.wait_for_ms(self._head(reader), self.head_timeout_ms)
        except asyncio.TimeoutError:
            self.stats["timeouts"] += 1
            return 408

    async def _head(self, reader):
        buf = bytearray(self.head_max)
        mv = memoryview(buf)
        n = 0
        first = -1  # end of the request line
        line = 0  # bytes in the current line, CR not counted
        while True:
            if n >= len(buf):
                return 431 if first >= 0 else 414
            got = await reader.readinto(mv[n:])
            if not got:
                return 400 if n else 408  # closed half way: nobody reads the answer anyway
            end = n + got
            while n < end:
                c = buf[n]
                n += 1
                if c == 10:
                    if first < 0:
                        first = n
                    elif line == 0:
                        return _request(buf, first, n)
                    line = 0
                elif c != 13:
                    line += 1

    # ---- answers
    async def _plain(self, writer, code, text):
        head = "HTTP/1.0 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n" % (
            code, _REASONS.get(code, "Bad Request"))
        if code == 405:
            head += "Allow: GET, HEAD\r\n"
        writer.write(("%s\r\n%d %s\n" % (head, code, text)).encode())
        await writer.drain()

    async def _answer(self, writer, method, path):
        q = path.find("?")
        if q >= 0:
            path = path[:q]
        if method not in ("GET", "HEAD"):
            return await self._plain(writer, 405, "read-only: GET or HEAD")
        if path in ("/", "/index.html"):
            kind = "text/html"
        elif path == "/status.json":
            kind = "application/json"
        else:
            return await self._plain(writer, 404, "not found: / or /status.json")
        out = Out(writer)
        await out.put("HTTP/1.0 200 OK\r\nContent-Type: %s; charset=utf-8\r\nCache-Control: no-store\r\n"
                      "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n" % kind)
        if method == "GET":
            st = self.snapshot()
            if kind == "text/html":
                gc.collect()
                from nengjian.console import pagehtml

                self.html_ms = ticks_ms()
                await pagehtml.html(out, st, item_values(st, self.items), SECRET_KEYS, MASK, REFRESH_S)
            else:
                await out.put("{")
                sep = ""
                for k in st:
                    await out.put('%s"%s":' % (sep, k))
                    await put_json(out, st[k], k)
                    sep = ","
                await out.put(',"items":')
                await put_json(out, item_values(st, self.items))
                await out.put("}")
        await out.flush()


def _request(buf, first, n):
    """(method, path) of a complete head, or 400/413."""
    try:
        words = bytes(buf[:first]).decode().split()
    except UnicodeError:
        return 400
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        return 400
    head = bytes(buf[first - 1:n]).lower()  # from the request line's LF: each header follows one
    for name in (b"\ncontent-length:", b"\ntransfer-encoding:"):
        i = head.find(name)
        if i >= 0:
            v = head[i + len(name):head.find(b"\n", i + 1)].strip()
            if v not in (b"0", b""):
                return 413
    return (words[0], words[1])


async def _linger(reader, buf):
    """Read what the client still sends, a little while (LINGER_MS) and a few buffers at most: a socket
    closed with unread input is reset, and a reset can make the client lose the answer sent just before."""
    try:
        for _ in range(8):
            if not await asyncio.wait_for_ms(reader.readinto(buf), LINGER_MS):
                return
    except Exception:  # noqa: BLE001 - timeout, reset: the client has had its answer
        pass


async def _close(writer):
    try:
        writer.close()
        await asyncio.wait_for_ms(writer.wait_closed(), 1000)
    except Exception:  # noqa: BLE001 - closing a socket the peer already dropped
        pass


class Out:
    """A body streamed in pieces of at most CHUNK bytes, each sent before the next is gathered."""

    def __init__(self, writer):
        self.writer = writer
        self.buf = bytearray(CHUNK)
        self.n = 0

    async def put(self, text):
        b = text.encode() if isinstance(text, str) else text
        if self.n + len(b) > CHUNK:
            await self.flush()
        if len(b) > CHUNK:  # one long value: sent as it is
            self.writer.write(b)
            await self.writer.drain()
            return
        self.buf[self.n:self.n + len(b)] = b
        self.n += len(b)

    async def flush(self):
        if self.n:
            self.writer.write(bytes(memoryview(self.buf)[:self.n]))
            self.n = 0
            await self.writer.drain()


async def put_json(out, v, key=None):
    """v as JSON, streamed; secret keys masked at any depth."""
    if key is not None and key in SECRET_KEYS:
        await out.put('"%s"' % MASK)
    elif isinstance(v, dict):
        await out.put("{")
        sep = ""
        for k in v:
            await out.put("%s%s:" % (sep, json.dumps(str(k))))
            await put_json(out, v[k], k)
            sep = ","
        await out.put("}")
    elif isinstance(v, (list, tuple)):
        await out.put("[")
        sep = ""
        for x in v:
            await out.put(sep)
            await put_json(out, x)
            sep = ","
        await out.put("]")
    else:
        try:
            await out.put(json.dumps(v))
        except TypeError:  # an object the snapshot should not hold: its text, never a failed page
            await out.put(json.dumps(str(v)))


def item_values(st, items):
    """[{"code", "meter", "point", "value"}]: each data item with its meter's last reading of its point."""
    by_meter = {}
    for m in st.get("meters") or ():
        by_meter[m["id"]] = m.get("values") or {}
    out = []
    for it in items:
        meter = it["meter"]
        out.append({"code": it["code"], "meter": meter, "point": it["point"],
                    "value": by_meter.get(meter, {}).get(it["point"])})
    return out


def lan_address(link, fallback):
    """The address to serve on: the LAN link's own (its NIC's DHCP or static address), None while it is
    down; fallback for a link without a NIC of its own (the sim's host network)."""
    if not link.is_up():
        return None
    nic = getattr(link, "nic", None)
    if nic is None:
        return fallback
    try:
        a = nic.ifconfig()[0]
    except (OSError, AttributeError, IndexError):
        return None
    return None if a == "0.0.0.0" else a


async def run(page, address, port, recheck_ms=5000):
    """Serve page at port on the address address() names (the LAN link's; None while it has none),
    until cancelled: a new address (DHCP, a cable moved) is served anew, a lost one closes the server.
    A port that cannot be had is told once and tried again at every recheck."""
    bound = None
    told = None
    try:
        while True:
            host = address()
            if host != bound:
                page.close()
                bound = None
                if host is not None:
                    try:
                        await page.start(host, port)
                        bound = host
                        told = None
                        log.info("page", "status page on http://%s:%d/" % (host, port))
                    except OSError as e:
                        if told != host:
                            log.warn("page", "status page not served on %s:%d: %s" % (host, port, e))
                            told = host
            page.idle()
            await asyncio.sleep_ms(recheck_ms)
    finally:
        page.close()
