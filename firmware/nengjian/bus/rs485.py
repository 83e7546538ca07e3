"""One owner per half-duplex RS-485 port: line settings, direction pin, silence, timeouts.

Every meter on a port goes through one Bus, one transaction at a time (an asyncio.Lock), so several
meters share a bus without colliding. A transaction is: switch line settings if the meter's differ,
keep the inter-frame silence (3.5 characters, 1.75 ms above 19,200 baud, or the meter's own
inter-request delay if longer), drop stale bytes, drive DE, send, release DE when the UART has
shifted the last bit out, then read until the protocol's framer says the reply is whole or the
meter's timeout passes. The framer is a protocol's `bytes_needed`-style function, so the bus waits
for exactly as many characters as are still due instead of polling blindly.

A port is any object with configure(baud, bits, parity, stop), de(on), write(buf), txdone(),
readinto(buf) -> count (0 when nothing is there, never blocking): the sim board's PtyPort, or
rs485_uart.UartPort on an ESP32.

Errors: BusTimeout, under BusError (the bus layer's base). What a reply's bytes mean is the codecs'
business (nengjian.proto.errors).
"""

import asyncio

from nengjian.core.compat import ticks_add, ticks_diff, ticks_ms

TXDONE_LIMIT_MS = 50


class BusError(Exception):
    """What the bus itself can raise: the transport failed, whatever the meter's protocol."""


class BusTimeout(BusError):
    """No complete reply within the meter's timeout (n = bytes that did arrive)."""

    def __init__(self, n):
        super().__init__("no reply" if n == 0 else "incomplete reply (%d bytes)" % n)
        self.received = n


def char_bits(bits, parity, stop):
    return 1 + bits + (0 if parity == "N" else 1) + stop


def char_us(baud, bits=8, parity="N", stop=1):
    return char_bits(bits, parity, stop) * 1000000 // baud


def silence_us(baud, bits=8, parity="N", stop=1):
    """Modbus t3.5: 3.5 character times, fixed at 1750 us above 19,200 baud."""
    if baud > 19200:
        return 1750
    return char_us(baud, bits, parity, stop) * 7 // 2


class Line:
    """Line settings of one meter (switched between transactions)."""

    __slots__ = ("baud", "bits", "parity", "stop", "char_us", "silence_ms")

    def __init__(self, baud=9600, bits=8, parity="N", stop=1):
        if parity not in ("N", "E", "O"):
            raise ValueError("parity must be N, E or O")
        self.baud = baud
        self.bits = bits
        self.parity = parity
        self.stop = stop
        self.char_us = char_us(baud, bits, parity, stop)
        self.silence_ms = (silence_us(baud, bits, parity, stop) + 999) // 1000

    def same(self, other):
        return (other is not None and self.baud == other.baud and self.parity == other.parity
                and self.bits == other.bits and self.stop == other.stop)

    def wire_ms(self, nbytes):
        return (nbytes * self.char_us + 999) // 1000

    def describe(self):
        return "%d %d%s%d" % (self.baud, self.bits, self.parity, self.stop)


class Bus:
    def __init__(self, name, port, buffer_size=256):
        self.name = name
        self.port = port
        self.lock = asyncio.Lock()
        self.tx = bytearray(buffer_size)
        self.rx = bytearray(buffer_size)
        self._txv = memoryview(self.tx)
        self._rxv = memoryview(self.rx)
        self._line = None
        self._idle_since = ticks_ms()
        self.stats = {"transactions": 0, "timeouts": 0, "noise_bytes": 0, "line_switches": 0,
                      "rx_bytes": 0}

    async def _send(self, line, tx_len, gap_ms):
        port = self.port
        if not line.same(self._line):
            port.configure(line.baud, line.bits, line.parity, line.stop)
            self._line = line
            self.stats["line_switches"] += 1
        wait = max(line.silence_ms, gap_ms) - ticks_diff(ticks_ms(), self._idle_since)
        if wait > 0:
            await asyncio.sleep_ms(wait)
        stale = port.readinto(self.rx)
        while stale:
            # Unsolicited frames, late replies or noise: drop them so they cannot pass for our reply.
            self.stats["noise_bytes"] += stale
            stale = port.readinto(self.rx)
        port.de(1)
        port.write(self._txv[:tx_len])
        # Sleep through most of the frame, then watch the shift register: DE must drop right after
        # the last stop bit, or the meter's first reply bytes collide with our own driver.
        wire = line.wire_ms(tx_len)
        if wire > 1:
            await asyncio.sleep_ms(wire - 1)
        t0 = ticks_ms()
        while not port.txdone():
            if ticks_diff(ticks_ms(), t0) > TXDONE_LIMIT_MS:
                break
        port.de(0)

    async def transact(self, line, tx_len, framer, timeout_ms, gap_ms=0):
        """Send self.tx[:tx_len], return the number of reply bytes in self.rx.

        framer(rx, n) -> bytes still needed: 0 when whole; a negative value when what arrived is
        complete but failed its check (noise or a stray frame may come before the real reply), so
        the bus goes on reading and returns it only at the deadline, for the parser to report.
        Raises BusTimeout. The caller must hold self.lock for the whole exchange (and its parsing
        of self.rx).
        """
        await self._send(line, tx_len, gap_ms)
        self.stats["transactions"] += 1
        port = self.port
        deadline = ticks_add(ticks_ms(), timeout_ms)
        n = 0
        rx = self.rx
        size = len(rx)
        need = _need(framer, rx, 0)
        while True:
            if n < size:
                got = port.readinto(self._rxv[n:])
                if got:
                    n += got
                    need = _need(framer, rx, n)
                    if need == 0:
                        return self._received(n)
            left = ticks_diff(deadline, ticks_ms())
            if left <= 0 or n >= size:
                break
            # A failed candidate waits for more bytes at the pace of the shortest frame.
            await asyncio.sleep_ms(max(1, min(left, line.wire_ms(need if need > 0 else 5))))
        if need < 0:
            return self._received(n)
        self._idle_since = ticks_ms()
        self.stats["timeouts"] += 1
        self.stats["rx_bytes"] += n
        raise BusTimeout(n)

    def _received(self, n):
        self._idle_since = ticks_ms()
        self.stats["rx_bytes"] += n
        return n

    async def send(self, line, tx_len, gap_ms=0):
        """A frame that gets no reply (a broadcast time sync): the same silences, no reading."""
        await self._send(line, tx_len, gap_ms)
        self._idle_since = ticks_ms()


def _need(framer, rx, n):
    # A framer that cannot make sense of the bytes says "complete": the parser then names the error.
    try:
        return framer(rx, n)
    except ValueError:
        return 0
