"""A plain static web server over one directory, for the tests and the bench: http.server's
SimpleHTTPRequestHandler (what `python -m http.server` runs) in a thread. It knows nothing of
Nengjian: it stands for whatever web server or object store a vendor serves the update channel from
(`nengjian ota publish` writes the directory). Keeps the paths asked, in arrival order, and counts the
downloads a gateway broke off (one that runs out of heap mid-body closes its socket: an event the
tests may expect, not a server fault to print a traceback for)."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    broken_off = 0

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            self.broken_off += 1
            return
        super().handle_error(request, client_address)


class StaticWeb:
    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0):
        self.paths: list[str] = []
        asked = self.paths

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(directory), **kw)

            def log_request(self, code="-", size="-"):
                asked.append(self.path)

            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass

        self._server = _Server((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="staticweb", daemon=True)

    @property
    def broken_off(self) -> int:
        """Downloads the client closed before the body was sent."""
        return self._server.broken_off

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return "http://%s:%d" % (host, port)

    def start(self) -> StaticWeb:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StaticWeb:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
