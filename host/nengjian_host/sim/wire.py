"""A simulated RS-485 wire between two ptys, with fault injection.

The firmware opens one pty (`gateway_path`), the simulated meters the other (`meters_path`); a
thread copies bytes between the two master ends. Because every byte crosses this wire, tests can
inject what a real bus does: noise bytes, a corrupted byte, or a cut wire (nothing passes).
"""

from __future__ import annotations

import os
import select
import threading

from nengjian_host.sim.ptys import PtyDevice, open_raw_pty


class PtyWire(PtyDevice):
    thread_name = "pty-wire"

    def __init__(self):
        self._gw_master, self._gw_slave, self.gateway_path = open_raw_pty()
        self._m_master, self._m_slave, self.meters_path = open_raw_pty()
        super().__init__(self._gw_master, self._gw_slave, self._m_master, self._m_slave)
        self._lock = threading.Lock()
        self.cut = False
        self.corrupt_next_reply = 0  # flip a bit in the next N meter->gateway chunks
        self.bytes_to_meters = 0
        self.bytes_to_gateway = 0
        self.tap = None  # optional callable(direction, bytes) for tests

    def inject_noise(self, data: bytes, to: str = "gateway") -> None:
        """Put bytes on the wire as if a stray device or EMI produced them."""
        with self._lock:
            os.write(self._gw_master if to == "gateway" else self._m_master, data)

    def _run(self):
        poller = select.poll()
        poller.register(self._gw_master, select.POLLIN)
        poller.register(self._m_master, select.POLLIN)
        while not self._stop.is_set():
            for fd, _ev in poller.poll(100):
                try:
                    data = os.read(fd, 512)
                except OSError:
                    continue
                with self._lock:
                    if self.cut:
                        continue
                    if fd == self._gw_master:
                        self.bytes_to_meters += len(data)
                        if self.tap:
                            self.tap("to_meters", data)
                        os.write(self._m_master, data)
                    else:
                        if self.corrupt_next_reply:
                            self.corrupt_next_reply -= 1
                            data = bytes([data[0] ^ 0x01]) + data[1:] if len(data) < 3 else (
                                data[:2] + bytes([data[2] ^ 0x10]) + data[3:])
                        self.bytes_to_gateway += len(data)
                        if self.tap:
                            self.tap("to_gateway", data)
                        os.write(self._gw_master, data)
