"""Simulated meters on a simulated RS-485 bus (CPython).

Owns the meter side of a bus for tests and the sim board: Dlt645Meter and Cjt188Meter answer
request bytes with respond(request) -> reply bytes or None (silence), and serve() runs any number
of them on one file descriptor (the master end of a pty whose other end the gateway opens), as
meters share one RS-485 pair:

    master, path = open_pty()
    thread, stop = start(master, [Dlt645Meter("123456789012", {0x00010000: "1234.56"})])
    ... the gateway opens `path` ...
    stop.set(); thread.join(); close_pty(master)

or, on a device path such as PtyWire.meters_path (the convention of the Modbus sim meters):

    with SimBus(wire.meters_path, [Cjt188Meter(0x10, "78330011223344", {"flow": "12.5"})]):
        ...

serve() collects bytes; as soon as they hold a complete frame of a protocol one of the meters
speaks, that frame goes to those meters and their replies are written (two replies at once is a
collision on a real bus, and here too they are simply concatenated). Bytes that never complete a
frame are dropped after `idle` seconds of silence, as a meter's receiver resets.
"""

from __future__ import annotations

import os
import select
import termios
import threading
import time
import tty

from .cjt188_meter import Cjt188Meter
from .dlt645_meter import Dlt645Meter

__all__ = ["Cjt188Meter", "Dlt645Meter", "SimBus", "close_pty", "open_pty", "serve", "start"]


def open_pty() -> tuple[int, str]:
    """A raw pty pair: (master fd for serve(), slave path for the gateway's UART). close_pty() ends it."""
    from nengjian_host.sim.ptys import open_raw_pty

    master, slave, path = open_raw_pty()
    # Keep a slave fd open: once every slave fd is closed, reads on the master fail with EIO (Linux),
    # and the gateway may open and close its end more than once.
    _slaves[master] = slave
    return master, path


def close_pty(master: int) -> None:
    for fd in (_slaves.pop(master, None), master):
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


_slaves: dict[int, int] = {}


def _next_frame(buf: bytes, meters):
    best_end, best_protocol = 0, None
    for m in meters:
        end = m.split(buf)
        if end and (not best_end or end < best_end):
            best_end, best_protocol = end, m.protocol
    return best_end, best_protocol


def serve(fd: int, meters, stop=None, idle: float = 0.2, reply_delay: float = 0.0, poll: float = 0.05) -> None:
    """Serve meters on fd until stop (a threading.Event) is set or the fd closes."""
    buf = b""
    last = time.monotonic()
    while stop is None or not stop.is_set():
        ready, _, _ = select.select([fd], [], [], poll)
        now = time.monotonic()
        if not ready:
            if buf and now - last > idle:
                buf = b""
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        last = now
        while True:
            end, protocol = _next_frame(buf, meters)
            if not end:
                break
            frame, buf = buf[:end], buf[end:]
            replies = [m.respond(frame) for m in meters if m.protocol == protocol]
            out = b"".join(r for r in replies if r)
            if out:
                if reply_delay:
                    time.sleep(reply_delay)
                os.write(fd, out)


def start(fd: int, meters, **kwargs) -> tuple[threading.Thread, threading.Event]:
    """serve() in a daemon thread; returns (thread, stop event)."""
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(fd, meters, stop), kwargs=kwargs, daemon=True)
    thread.start()
    return thread, stop


class SimBus:
    """Context manager: meters served on a device path (a pty end or a real serial port) in a thread."""

    def __init__(self, path: str, meters, **serve_kwargs):
        self.path = path
        self.meters = list(meters)
        self.serve_kwargs = serve_kwargs
        self._fd = -1
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    def __enter__(self) -> SimBus:
        self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(self._fd)
        except termios.error:
            pass  # not a tty (a FIFO or socket in tests)
        self._thread, self._stop = start(self._fd, self.meters, **self.serve_kwargs)
        return self

    def __exit__(self, *exc) -> None:
        if self._stop:
            self._stop.set()
        if self._thread:
            self._thread.join(2)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
