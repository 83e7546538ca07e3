"""A reference update server for signed bundles: what a vendor runs for gateways that fetch their
updates over the uplink (firmware/nengjian/ota/fetch.py defines the exchange).

    GET /offer?board=B&version=V   200 {"version", "url", "size"} when a bundle for board B other
                                   than V is published; else 204
    GET /bundles/<file>            the bundle bytes, with Content-Length

The server never signs anything: it hands out files `nengjian ota build` signed; the gateway checks
the signature before anything is switched. Tests publish and withdraw bundles while it runs and read
what was asked.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


class OtaServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.published: dict[str, tuple[str, Path]] = {}  # board -> (version, bundle file)
        self.requests: list[tuple[str, dict]] = []  # (path, query) in arrival order
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass

            def do_GET(self):
                u = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(u.query).items()}
                with server._lock:
                    server.requests.append((u.path, query))
                if u.path == "/offer":
                    self._offer(query)
                elif u.path.startswith("/bundles/"):
                    self._bundle(u.path[len("/bundles/"):])
                else:
                    self._send(404, b"no such path\n", "text/plain")

            def _offer(self, query):
                with server._lock:
                    pub = server.published.get(query.get("board", ""))
                if pub is None or pub[0] == query.get("version"):
                    self._send(204, b"", None)
                    return
                version, path = pub
                body = json.dumps({"version": version, "url": "/bundles/" + path.name,
                                   "size": path.stat().st_size}).encode()
                self._send(200, body, "application/json")

            def _bundle(self, name):
                with server._lock:
                    files = {p.name: p for _v, p in server.published.values()}
                path = files.get(name)
                if path is None:
                    self._send(404, b"no such bundle\n", "text/plain")
                    return
                self._send(200, path.read_bytes(), "application/octet-stream")

            def _send(self, status, body, ctype):
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="otaserver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return "http://%s:%d" % (host, port)

    def publish(self, board: str, version: str, bundle: Path) -> None:
        with self._lock:
            self.published[board] = (version, Path(bundle))

    def withdraw(self, board: str) -> None:
        with self._lock:
            self.published.pop(board, None)

    def start(self) -> OtaServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
