"""A local SNTP server for the sim rig: the time source a site network offers the gateway (RFC 4330
server side, mode 4), telling the time of a clock the rig chooses plus `offset_s`.

The answer carries the request's transmit timestamp back as its originate timestamp (the gateway
takes no answer without it, nengjian.system.clock), stratum 2, and the clock's time as receive and
transmit timestamps. `offset_s` is what a test turns to make the server say the gateway's clock
drifted (a few seconds) or is far off (a step the gateway holds until a second source agrees);
`silent` stops it answering. `answers` counts the replies sent.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

NTP_DELTA = 2208988800  # 1900-01-01 to 1970-01-01


def _ntp_stamp(t: float) -> bytes:
    secs = int(t)
    frac = int((t - secs) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack(">II", secs + NTP_DELTA, frac)


class SimNtpServer:
    def __init__(self, clock=time.time, host: str = "127.0.0.1", port: int = 0, offset_s: float = 0.0):
        self.clock = clock
        self.offset_s = offset_s
        self.silent = False
        self.answers = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(0.2)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sim-ntp", daemon=True)

    @property
    def address(self) -> str:
        """What a site config's clock.ntp names: "host:port"."""
        return "%s:%d" % (self.host, self.port)

    def now(self) -> float:
        return self.clock() + self.offset_s

    def start(self) -> SimNtpServer:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.silent or len(data) < 48 or (data[0] & 7) != 3:
                continue  # not a client request
            t = self.now()
            reply = bytearray(48)
            reply[0] = (0 << 6) | (4 << 3) | 4  # LI 0 (no warning), version 4, mode 4 (server)
            reply[1] = 2  # stratum: synchronised to a primary source
            reply[2] = data[2]  # poll interval, as asked
            reply[3] = 0xEC  # precision 2^-20 s
            reply[12:16] = b"LOCL"
            reply[16:24] = _ntp_stamp(t)  # reference time
            reply[24:32] = data[40:48]  # originate = the client's transmit timestamp
            reply[32:40] = _ntp_stamp(t)  # receive
            reply[40:48] = _ntp_stamp(t)  # transmit
            try:
                self._sock.sendto(bytes(reply), addr)
            except OSError:
                continue
            with self._cond:
                self.answers += 1
                self._cond.notify_all()

    def wait_answers(self, n: int, timeout: float) -> bool:
        """Wait until `n` answers have been sent in all (a bound, not a measurement)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.answers < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        if self._thread.is_alive():
            self._thread.join(2)

    def __enter__(self) -> SimNtpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
