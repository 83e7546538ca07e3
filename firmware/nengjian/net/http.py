"""A small HTTP/1.1 client on asyncio streams: one request per connection, every wait bounded.

Enough for the platforms' JSON POSTs: Content-Length or chunked bodies, a cap on response size,
TLS through an ssl context the caller builds (certificate pinning is the profile's business).

One deadline covers the whole exchange (connect, TLS handshake, send, headers, body), so a server
that drips a byte every few seconds cannot hold a destination for longer than `timeout_ms`.
Host names are resolved once and cached: MicroPython's getaddrinfo blocks the whole event loop,
so it must not run for every request (and a DNS outage then falls back to the last good address).
Every transport failure - refused, reset, timeout, TLS alert, malformed answer - is an HttpError,
which the caller treats as retryable. NetError, defined here, is the net layer's one base: HttpError
and nengjian.net.tls.TlsSetupError (a destination's certificate files unusable) derive from it.

An answer is untrusted input (the keepalive probe does not even verify the server), so every size
in it is bounded before anything is allocated for it, and each limit is an HttpError that says
which (the constants below): a line (status, header or chunk size) of at most 2 KB read through one
small buffer (asyncio's readline has no limit), at most 64 header lines, Content-Length and chunk
sizes as 1 to 9 plain digits within the body cap (`max_body`, 16 KB by default). JSON bodies are
checked by `check_json` (size, nesting depth, number of values) before the caller parses them:
MicroPython's json.loads runs out of memory on 8,000 nested brackets well inside the body cap.

Two module-level hooks serve the link supervisor and the clock: `last_answer_ms` (ticks of the
last complete HTTP answer from any server: proof the link carries data, so no keepalive probe is
needed) and `on_date(utc_seconds, source)`, called with a response's Date header only when the
request went over TLS whose context has `verify_mode == CERT_REQUIRED` (as nengjian.net.tls.build
makes it for a pinned CA): such a handshake completes only with a server whose certificate chains
to the pinned CA and names the URL's host. Plain http, `insecure_self_signed` and the probe
(CERT_NONE) never reach the clock. `source` names the host ("Date header of HOST").
"""

import asyncio
import socket

from nengjian.core.compat import const, ticks_diff, ticks_ms

_LINE_MAX = const(2048)  # bytes of one status, header or chunk-size line, its line end included
_HEADERS_MAX = const(64)  # header lines of one answer
_BODY_MAX = const(16384)  # default cap on a body kept in RAM (request's max_body)
_JSON_DEPTH = const(16)  # nesting of arrays and objects in a JSON body (the platforms' need 4)
_JSON_VALUES = const(1024)  # arrays, objects and comma-separated values in a JSON body
_DIGITS_MAX = const(9)  # a Content-Length or chunk size: never a long integer on the heap
_BUF = const(512)  # the answer's read buffer: most header lines fit, longer ones are gathered
_ECONNREFUSED = const(111)
_ECONNRESET = const(104)
_DNS_TTL_MS = const(3600000)  # a cached address serves this long
_SEND_CHUNK = const(1460)  # bytes handed to the socket at a time: one TCP segment, never a copy of the body
_DOWNLOAD_CHUNK = const(512)  # one buffer per download, filled again and again: no allocation per segment

last_answer_ms = None  # ticks_ms() of the last complete answer, None before the first
on_date = None  # callable(utc_seconds, source) or None: see the module's docstring

_dns = {}  # host -> (ip, ticks resolved)


class NetError(Exception):
    """Anything the net layer raises on purpose (the HTTP client here, TLS set-up in nengjian.net.tls)."""


class HttpError(NetError):
    """Transport-level failure (connect, timeout, reset, TLS, malformed response): always retryable.

    `errno` is the OS error number when there was one (refused, reset, unreachable)."""

    def __init__(self, msg, errno=None, timeout=False):
        super().__init__(msg)
        self.errno = errno
        self.timeout = timeout


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else None


def split_url(url):
    """(scheme, host, port, path) of an http(s) URL."""
    if url.startswith("https://"):
        scheme, rest, port = "https", url[8:], 443
    elif url.startswith("http://"):
        scheme, rest, port = "http", url[7:], 80
    else:
        raise ValueError("not an http(s) URL: " + url)
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    if ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        port = int(p)
    else:
        host = hostport
    return scheme, host, port, path


def resolve(host):
    """The IPv4 address text of host; cached for an hour; the stale entry if DNS fails now."""
    parts = host.split(".")
    if len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts):
        return host  # an IPv4 address already
    hit = _dns.get(host)
    if hit and ticks_diff(ticks_ms(), hit[1]) < _DNS_TTL_MS:
        return hit[0]
    try:
        ai = socket.getaddrinfo(host, 80, 0, socket.SOCK_STREAM)
        ip = None
        for entry in ai:
            if entry[0] == socket.AF_INET:
                addr = entry[-1]
                ip = addr[0] if isinstance(addr, tuple) else "%d.%d.%d.%d" % tuple(addr[4:8])
                break
        if ip is None:
            raise OSError("no IPv4 address")
    except OSError as e:
        if hit:
            return hit[0]
        raise HttpError("cannot resolve %s: %s" % (host, e))
    _dns[host] = (ip, ticks_ms())
    return ip


def forget_dns():
    """Drop cached addresses (a new link may use other DNS servers or routes)."""
    _dns.clear()


class _Answer:
    """An answer's bytes through one small buffer: lines are cut from it (asyncio's Stream.readline
    gathers a line of any length), one longer than the buffer is gathered up to _LINE_MAX and no
    further, and what the head's reads brought of the body waits here for the body's reader. The
    buffer is the caller's when it lends one (request's `buf`): reading an answer then needs no
    block of its own size, which a heap full of the batch just sent may not have left."""

    __slots__ = ("_r", "_buf", "_mv", "_i", "_n", "_cap")

    def __init__(self, reader, buf=None):
        self._r = reader
        self._buf = bytearray(_BUF) if buf is None else buf
        self._mv = memoryview(self._buf)
        self._cap = len(self._buf)
        self._i = self._n = 0  # the unread bytes are _buf[_i:_n]

    async def line(self):
        part = b""
        while True:
            end = self._buf.find(b"\n", self._i, self._n)
            if end >= 0:
                part += self._mv[self._i:end + 1]
                self._i = end + 1
                if len(part) > _LINE_MAX:
                    break
                return part
            if self._i == self._n:
                self._i = self._n = 0
            elif self._n == self._cap:  # the buffer ends in this line's start: kept aside, the buffer refilled
                part += self._mv[self._i:]
                self._i = self._n = 0
            if len(part) + self._n - self._i >= _LINE_MAX:
                break
            n = None
            while n is None:  # a TLS socket with part of a record only gives None
                n = await self._r.readinto(self._mv[self._n:])
            if not n:
                raise HttpError("connection closed by the server")
            self._n += n
        raise HttpError("line of more than %d bytes" % _LINE_MAX)

    def take(self, n):
        """Up to n of the bytes read already (a memoryview), consumed."""
        k = min(n, self._n - self._i)
        self._i += k
        return self._mv[self._i - k:self._i]

    async def exactly(self, n):
        if self._i == self._n:
            self._i = self._n = 0
        end = self._i + n
        if end <= self._cap:
            # Gathered in the buffer behind what was read already: one allocation, the bytes returned.
            while self._n < end:
                k = None
                while k is None:  # TLS: part of a record only
                    k = await self._r.readinto(self._mv[self._n:end])
                if not k:
                    raise EOFError("connection closed with %d of %d bytes to go" % (end - self._n, n))
                self._n += k
            return bytes(self.take(n))
        got = bytes(self.take(n))
        return got if len(got) == n else got + await self._r.readexactly(n - len(got))


async def connect(host, port, ssl, timeout_ms):
    """(reader, writer) of a TCP (or TLS, when ssl is a context) connection; HttpError if not."""
    ip = resolve(host)
    try:
        if ssl is None:
            return await asyncio.wait_for_ms(asyncio.open_connection(ip, port), timeout_ms)
        return await asyncio.wait_for_ms(asyncio.open_connection(ip, port, ssl, host), timeout_ms)
    except asyncio.TimeoutError:
        raise HttpError("connect to %s:%d timed out after %d ms" % (host, port, timeout_ms), None, True)
    except OSError as e:
        raise HttpError("connect to %s:%d failed: %s" % (host, port, e), _errno(e))


async def reachable(url, timeout_ms=10000):
    """True if the URL's host answers a HEAD request, or refuses the connection, within timeout_ms.

    The link supervisor's keepalive: any HTTP answer (even an error status) or a TCP refusal or
    reset proves the path (link, routing, DNS) carries data; only silence, an unreachable network
    or a DNS failure count as dead. A platform that misbehaves is the destination's business.
    The server is not verified (CERT_NONE): its answer is read under request's limits like any
    other, and nothing in it is used (its Date never reaches on_date).
    """
    scheme, host, port, _path = split_url(url)
    base = "%s://%s:%d/" % (scheme, host, port)
    try:
        await request("HEAD", base, b"", None, timeout_ms, _probe_ssl() if scheme == "https" else None)
        return True
    except HttpError as e:
        return e.errno in (_ECONNREFUSED, _ECONNRESET)


_probe_ctx = None


def _probe_ssl():
    # The probe only needs to see a TLS server answer; it sends nothing secret.
    global _probe_ctx
    if _probe_ctx is None:
        import ssl

        _probe_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _probe_ctx.verify_mode = ssl.CERT_NONE
    return _probe_ctx


_MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec"  # one str constant (in flash), not 12 interned names


def parse_http_date(value):
    """UTC seconds of an RFC 7231 IMF-fixdate ('Sun, 06 Nov 1994 08:49:37 GMT'), or None."""
    try:
        parts = value.split()
        if len(parts) != 6 or parts[5] != "GMT":
            return None
        m = _MONTHS.find(parts[2])
        if len(parts[2]) != 3 or m % 3:  # not found: -1
            return None
        day, month, year = int(parts[1]), m // 3 + 1, int(parts[3])
        h, mi, s = [int(x) for x in parts[4].split(":")]
    except (ValueError, IndexError):
        return None
    if not (1 <= day <= 31 and 1970 <= year < 2100 and 0 <= h < 24 and 0 <= mi < 60 and 0 <= s < 61):
        return None
    from nengjian.core import timeutil

    return timeutil.timestamp(year, month, day, h, mi, s)


async def _download(reader, into, length, total=None):
    # Through one small buffer: reading a fresh bytes object per TCP segment churns the heap while the
    # uplink and the poll loop run beside it, and on a fragmented heap one such read can fail.
    buf = bytearray(_DOWNLOAD_CHUNK)
    mv = memoryview(buf)
    left = length
    while left:
        n = await reader.readinto(mv[:min(_DOWNLOAD_CHUNK, left)])  # MicroPython's Stream
        if n is None:  # TLS: part of a record only, nothing to hand over yet
            continue
        if not n:
            raise EOFError("connection closed with %d of %d bytes to go" % (left, total or length))
        into.write(mv[:n])
        left -= n


# ssl.CERT_REQUIRED and tls.CERT_REQUIRED alike; CERT_OPTIONAL (1) lets a bad chain pass.
_CERT_REQUIRED = const(2)


def _size(text, base):
    """A Content-Length (base 10) or chunk size (base 16) of 1 to _DIGITS_MAX plain digits; HttpError
    otherwise (int() alone would take a sign, "0x", "_", spaces and any length)."""
    if 0 < len(text) <= _DIGITS_MAX and not (text.lower().strip(b"0123456789abcdef") if base == 16 else
                                             not text.isdigit()):
        return int(text, base)
    raise HttpError("bad %s %r" % ("chunk size" if base == 16 else "Content-Length", text[:20]))


async def _answer(reader, method, into, max_body, verified, host, buf):
    """(status, body) of the answer on reader, under every limit; its Date to on_date if `verified`.
    Request's second half, a coroutine of its own: each call needs its frame in one piece, and two
    half-size frames find room in a fragmented heap where one would not."""
    ans = _Answer(reader, buf)
    status_line = await ans.line()
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise HttpError("not an HTTP response: %r" % status_line[:40])
    status = int(parts[1])
    length = -1
    chunked = False
    date = None
    for _ in range(_HEADERS_MAX + 1):  # and the empty line that ends them
        line = await ans.line()
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            n = _size(value.strip(), 10)  # the cap applies where a body is kept: not to HEAD
            if length >= 0 and n != length:
                raise HttpError("two different Content-Length headers")
            length = n
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"date":
            date = value.strip()
    else:
        raise HttpError("more than %d header lines" % _HEADERS_MAX)
    if into is not None and status == 200:
        if chunked or length < 0:
            raise HttpError("a download needs a Content-Length")
        held = ans.take(length)
        if len(held):
            into.write(held)
        await _download(reader, into, length - len(held), length)
        data = b""
    elif method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        data = b""
    elif chunked:
        data = b""
        while True:
            size = _size((await ans.line()).split(b";")[0].strip(), 16)
            if size == 0:
                break
            if size > max_body - len(data):
                raise HttpError("response too large")
            chunk = await ans.exactly(size + 2)
            if chunk[-2:] != b"\r\n":
                raise HttpError("chunk without CRLF")
            data += chunk[:-2]
    elif length > max_body:
        raise HttpError("response of %d bytes is too large" % length)
    elif length >= 0:
        data = await ans.exactly(length) if length else b""
    else:
        data = bytes(ans.take(max_body + 1))
        while len(data) <= max_body:
            more = await reader.read(max_body + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) > max_body:
            raise HttpError("response too large")
    if verified and date is not None and on_date is not None:
        try:
            utc = parse_http_date(date.decode())
            if utc:
                on_date(utc, "Date header of " + host)
        except Exception as e:  # a bad Date or the clock's trouble must not fail the answer
            from nengjian.core import log

            log.warn("http", "Date header of %s not used: %r" % (host, e))
    return status, data


async def request(method, url, body=b"", headers=None, timeout_ms=15000, ssl=None, max_body=_BODY_MAX, length=None,
                  into=None, buf=None):
    """Send one request; return (status, body bytes). Raises HttpError on any transport failure.

    `body` is bytes; or a list/tuple of byte strings sent one after the other; or, with `length`
    (the total in bytes, for Content-Length), any iterable of byte strings - a generator that encodes
    one record at a time streams a batch of any size in the heap of one record. A profile can thus
    hand over its records without joining them into one large allocation (on a fragmented heap a
    20 kB bytearray can fail with 300 kB free).

    With `into` (a file opened for writing), a 200 answer's body of any size is written there as it
    arrives (it must carry Content-Length) and the body returned is empty: downloads.

    With `buf` (a bytearray the caller keeps, idle once the body is sent: the profile's body buffer),
    the answer is read through it; without, through one of _BUF bytes allocated per answer. The
    returned body is bytes of its own either way."""
    scheme, host, port, path = split_url(url)
    if scheme == "https" and ssl is None:
        raise HttpError("https needs a TLS context")
    if length is not None:
        parts, size = body, length
    else:
        parts = body if isinstance(body, (list, tuple)) else (body,)
        size = 0
        for p in parts:
            size += len(p)
    try:
        # One timeout over the whole exchange: a wait_for around each read cost a task and a timeout
        # (some 1 KB on the heap) per read, and a dripping server made one per byte.
        return await asyncio.wait_for_ms(_exchange(scheme, host, port, path, method, parts, size, headers,
                                                   timeout_ms, ssl, max_body, into, buf), timeout_ms)
    except asyncio.TimeoutError:
        raise HttpError("no complete answer within %d ms" % timeout_ms, None, True)
    except OSError as e:
        raise HttpError("network error: %s" % e, _errno(e))
    except (ValueError, EOFError, IndexError) as e:
        raise HttpError("malformed response: %s" % e)


async def _exchange(scheme, host, port, path, method, parts, size, headers, timeout_ms, ssl, max_body, into, buf):
    # request's work under its one deadline (request's wait_for cancels it here, at whatever it awaits)
    global last_answer_ms
    writer = None
    try:
        reader, writer = await connect(host, port, ssl if scheme == "https" else None, timeout_ms)
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else "%s:%d" % (host, port)
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n" % (
            method, path, host_header, size)
        if headers:
            for k, v in headers.items():
                head += "%s: %s\r\n" % (k, v)
        writer.write(head.encode() + b"\r\n")
        await writer.drain()
        sent = 0
        for p in parts:
            if p:
                sent += len(p)
                if sent > size:
                    raise HttpError("body longer than its announced %d bytes" % size)
                # In slices through a memoryview: a partial socket write then copies at most one
                # slice into the stream's buffer, never the whole (possibly 20 kB) body.
                mv = memoryview(p)
                for i in range(0, len(mv), _SEND_CHUNK):
                    writer.write(mv[i:i + _SEND_CHUNK])
                    await writer.drain()
                mv = None
        if sent != size:
            raise HttpError("body of %d bytes, %d announced" % (sent, size))
        # Only a handshake under CERT_REQUIRED proved the server (its Date may reach the clock): tls.build
        # sets it for a pinned CA, and mbedtls then fails every handshake without a chain to it (with no
        # CA at all, too). The probe's and insecure_self_signed's contexts are CERT_NONE; http has none.
        status, data = await _answer(reader, method, into, max_body, scheme == "https" and
                                     getattr(ssl, "verify_mode", None) == _CERT_REQUIRED, host, buf)
        last_answer_ms = ticks_ms()
        return status, data
    finally:
        if writer is not None:
            try:
                writer.close()
                await asyncio.wait_for_ms(writer.wait_closed(), 1000)
            except Exception:
                pass


def check_json(data, max_size=_BODY_MAX, max_depth=_JSON_DEPTH, max_values=_JSON_VALUES):
    """HttpError unless a JSON body (bytes) is small enough to parse: at most max_size bytes, arrays and
    objects nested at most max_depth deep, at most max_values arrays, objects and comma-separated
    values. Call it before json.loads on an answer: MicroPython's parser needs heap per level and
    per value (8,000 nested brackets exhaust it; 16 KB of `{},` takes some 160 KB), and fails with
    MemoryError or RuntimeError. Brackets and commas inside strings do not count."""
    if len(data) > max_size:
        raise HttpError("JSON of %d bytes is too large" % len(data))
    opens = data.count(b"[") + data.count(b"{")
    if opens <= max_depth and opens + data.count(b",") < max_values:
        return  # the common answer: too few brackets to matter, strings or not
    depth = values = 0
    in_str = esc = False
    for c in data:
        if in_str:
            if esc:
                esc = False
            elif c == 92:  # backslash
                esc = True
            elif c == 34:  # quote
                in_str = False
        elif c == 34:
            in_str = True
        elif c == 93 or c == 125:  # ] }
            depth -= 1
        elif c == 91 or c == 123 or c == 44:  # [ { ,
            if c != 44:
                depth += 1
                if depth > max_depth:
                    raise HttpError("JSON nested deeper than %d" % max_depth)
            values += 1
            if values >= max_values:
                raise HttpError("JSON of more than %d values" % max_values)
