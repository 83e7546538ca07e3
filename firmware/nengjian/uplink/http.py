"""A small HTTP/1.1 client on asyncio streams: one request per connection, every wait bounded.

Enough for the platforms' JSON POSTs: Content-Length or chunked bodies, a cap on response size,
TLS through an ssl context the caller builds (certificate pinning is the profile's business).
"""

import asyncio


class HttpError(Exception):
    """Transport-level failure (connect, timeout, reset, malformed response): always retryable."""


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


async def _readline(reader, timeout_ms):
    line = await asyncio.wait_for_ms(reader.readline(), timeout_ms)
    if not line:
        raise HttpError("connection closed by the server")
    return line


async def request(method, url, body=b"", headers=None, timeout_ms=15000, ssl=None, max_body=16384):
    """Send one request; return (status, body bytes). Raises HttpError on any transport failure."""
    scheme, host, port, path = split_url(url)
    if scheme == "https" and ssl is None:
        raise HttpError("https needs a TLS context")
    writer = None
    try:
        try:
            reader, writer = await asyncio.wait_for_ms(
                asyncio.open_connection(host, port, ssl=ssl if scheme == "https" else None), timeout_ms)
        except asyncio.TimeoutError:
            raise HttpError("connect timeout after %d ms" % timeout_ms)
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else "%s:%d" % (host, port)
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n" % (
            method, path, host_header, len(body))
        if headers:
            for k, v in headers.items():
                head += "%s: %s\r\n" % (k, v)
        writer.write(head.encode() + b"\r\n")
        if body:
            writer.write(body)
        await asyncio.wait_for_ms(writer.drain(), timeout_ms)
        status_line = await _readline(reader, timeout_ms)
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise HttpError("not an HTTP response: %r" % status_line[:40])
        status = int(parts[1])
        length = -1
        chunked = False
        while True:
            line = await _readline(reader, timeout_ms)
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if length > max_body:
            raise HttpError("response of %d bytes is too large" % length)
        if chunked:
            data = b""
            while True:
                size = int((await _readline(reader, timeout_ms)).split(b";")[0].strip(), 16)
                if size == 0:
                    break
                if len(data) + size > max_body:
                    raise HttpError("response too large")
                data += await asyncio.wait_for_ms(reader.readexactly(size + 2), timeout_ms)
                data = data[:-2]
        elif length >= 0:
            data = await asyncio.wait_for_ms(reader.readexactly(length), timeout_ms) if length else b""
        else:
            data = await asyncio.wait_for_ms(reader.read(max_body), timeout_ms)
        return status, data
    except asyncio.TimeoutError:
        raise HttpError("no answer within %d ms" % timeout_ms)
    except OSError as e:
        raise HttpError("network error: %s" % e)
    except (ValueError, EOFError) as e:
        raise HttpError("malformed response: %s" % e)
    finally:
        if writer is not None:
            try:
                writer.close()
                await asyncio.wait_for_ms(writer.wait_closed(), 1000)
            except Exception:
                pass
