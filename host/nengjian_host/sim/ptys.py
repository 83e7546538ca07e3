"""Ptys for the sim rig's stand-ins of serial hardware (the RS-485 wire, the AT modem, the USB console).

Not named `pty`: that would shadow the standard library's module for a script run from this folder.
"""

from __future__ import annotations

import os
import threading
import tty
from typing import TypeVar


def open_raw_pty(raw_master: bool = False) -> tuple[int, int, str]:
    """A new pty pair, the slave end raw (8-bit clean: no echo, no line editing, no CR/LF mapping):
    (master fd, slave fd, the slave's path, which the firmware opens). `raw_master`: the master end
    raw as well."""
    master, slave = os.openpty()
    tty.setraw(slave)
    if raw_master:
        tty.setraw(master)
    return master, slave, os.ttyname(slave)


def close_fds(fds: list[int]) -> None:
    """Close the fds in `fds` (one already closed is passed over) and empty the list: a second call
    closes nothing (by then the numbers may belong to files opened since)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


_D = TypeVar("_D", bound="PtyDevice")


class PtyDevice:
    """A simulated device on ptys: a daemon thread runs `_run` from start() until close(), which
    stops it (`_stop` is set) and closes the fds in `_fds`. A context manager: start on entry,
    close on exit."""

    thread_name = "pty-device"

    def __init__(self, *fds: int):
        self._fds = list(fds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self: _D) -> _D:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        close_fds(self._fds)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
