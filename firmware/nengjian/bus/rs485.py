"""One owner per half-duplex RS-485 port: line settings, direction pin, silence, timeouts.

Every meter on a port goes through one Bus, one transaction at a time (an asyncio.Lock), so several
meters share a bus without colliding. A transaction is: switch line settings if the meter's differ,
keep the inter-frame silence (3.5 characters, 1.75 ms above 19,200 baud, or the meter's own
inter-request delay if longer), drop stale bytes, drive DE, send, release DE when the UART has
shifted the last bit out, then read until the protocol's framer says the reply is whole or the
meter's timeout passes. The framer is a protocol's `bytes_needed`-style function, so the bus waits
for exactly as many characters as are still due instead of polling blindly. Each wake-up costs the
scheduler's work (on an ESP32 more than the reply's parsing), so the first wait after the request
also covers how late the meter's replies come (its turnaround and preamble, learned per Line): a
transaction is then three wake-ups, the silence, the request's wire time and the whole reply.

A port is any object with configure(baud, bits, parity, stop), de(on), write(buf), txdone(),
readinto(buf) -> count (0 when nothing is there, never blocking): the sim board's PtyPort, or
rs485_uart.UartPort on an ESP32.

Nothing is allocated per transaction: the lock is taken without a coroutine when free
(BusLock.take), a transaction is steps a driver runs between asyncio.sleep_ms calls (Bus.begin),
the request's memoryview is kept while its length repeats, and later pieces of a reply are read
into a shared chunk and copied in by viper code (a Python loop where there is no viper: CPython).

Errors: BusTimeout, under BusError (the bus layer's base). What a reply's bytes mean is the codecs'
business (nengjian.proto.errors).
"""

import asyncio

from nengjian.core.compat import const, ticks_add, ticks_diff, ticks_ms

_TXDONE_LIMIT_MS = const(50)

# Where a reply's later pieces are read before they are copied into the bus's rx (shared: a piece
# is copied before the next await, so buses on other tasks cannot meet in it).
_chunk = bytearray(256)

try:
    import micropython

    _NATIVE = True
except ImportError:  # CPython imports the bus for the tests' constants
    _NATIVE = False

if _NATIVE:

    @micropython.viper
    def _copy(dst, at: int, src, count: int):
        d = ptr8(dst)  # noqa: F821  (viper's pointer cast)
        s = ptr8(src)  # noqa: F821
        i = 0
        while i < count:
            d[at + i] = s[i]
            i += 1

else:

    def _copy(dst, at, src, count):
        for i in range(count):
            dst[at + i] = src[i]


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

    __slots__ = ("baud", "bits", "parity", "stop", "char_us", "silence_ms", "late_ms", "calm")

    def __init__(self, baud=9600, bits=8, parity="N", stop=1):
        if parity not in ("N", "E", "O"):
            raise ValueError("parity must be N, E or O")
        self.baud = baud
        self.bits = bits
        self.parity = parity
        self.stop = stop
        self.char_us = char_us(baud, bits, parity, stop)
        self.silence_ms = (silence_us(baud, bits, parity, stop) + 999) // 1000
        # How much later than its expected length's wire time this meter's reply is whole (its
        # turnaround, and preamble bytes the expected length leaves out), learned by the Bus: the
        # first wait after the request covers it, so a reply is usually read in one wake-up.
        self.late_ms = 0
        self.calm = 0  # replies in a row found whole at the first wake-up (late_ms decays)

    def same(self, other):
        return (other is not None and self.baud == other.baud and self.parity == other.parity
                and self.bits == other.bits and self.stop == other.stop)

    def wire_ms(self, nbytes):
        return (nbytes * self.char_us + 999) // 1000


# Phases of a transaction, as Bus.begin()/step() walk them
_IDLE = const(0)
_SILENCE = const(1)  # keeping the inter-frame silence
_SENDING = const(2)  # the request is on the wire, DE driven
_READING = const(3)  # waiting for the reply
_DONE = const(4)


class BusLock(asyncio.Lock):
    """The bus's asyncio.Lock, with take(): acquire() without a coroutine when the lock is free.

    Every meter transaction takes the lock, and on a bus polled by one task it is nearly always
    free; acquire() would still make a coroutine object each time. take() relies on MicroPython's
    Lock: `state` 0 means nobody holds it and nobody has been handed it (a task woken by
    release() finds `state` set to itself, so take() cannot jump that queue).
    """

    def take(self):
        if self.state == 0:
            self.state = 1
            return True
        return False


class Bus:
    def __init__(self, name, port, buffer_size=256):
        global _chunk
        self.name = name
        self.port = port
        self.lock = BusLock()
        self.tx = bytearray(buffer_size)
        self.rx = bytearray(buffer_size)
        self._txv = memoryview(self.tx)
        self._tx_view = self._txv  # the request as the port writes it, remade only when its length changes
        self._line = None
        self._idle_since = ticks_ms()
        if len(_chunk) < buffer_size:
            _chunk = bytearray(buffer_size)
        self.stats = {"transactions": 0, "timeouts": 0, "noise_bytes": 0, "line_switches": 0,
                      "rx_bytes": 0}
        # the transaction under way (begin/step/end)
        self._phase = _IDLE
        self._tline = None
        self._tx_len = 0
        self._framer = None
        self._timeout = 0
        self._deadline = 0
        self._n = 0
        self._need = 0
        self._complete = False
        self._released_at = 0
        self._expect_ms = 0  # wire time of the length the framer first asked for
        self._wakes = 0  # _receive calls after DE was released (0: the one at release)

    # A transaction is a small state machine, so that a driver's read can run it with nothing but
    # asyncio.sleep_ms between the steps (a coroutine per transaction would cost a few hundred
    # bytes of heap every time). transact() is the same as one coroutine:
    #
    #     wait = bus.begin(line, tx_len, framer, timeout_ms, gap_ms)
    #     while wait:
    #         await asyncio.sleep_ms(wait)
    #         wait = bus.step()
    #     got = bus.end()
    #
    # begin() and step() return the milliseconds to sleep before the next step(), 0 when the
    # transaction is over; every wait is bounded by the silence, the request's wire time, or the
    # meter's timeout.

    def begin(self, line, tx_len, framer, timeout_ms, gap_ms=0):
        """Start sending self.tx[:tx_len]; framer None: no reply is read (a broadcast)."""
        if not line.same(self._line):
            self.port.configure(line.baud, line.bits, line.parity, line.stop)
            self._line = line
            self.stats["line_switches"] += 1
        self._tline = line
        self._tx_len = tx_len
        self._framer = framer
        self._timeout = timeout_ms
        wait = max(line.silence_ms, gap_ms) - ticks_diff(ticks_ms(), self._idle_since)
        if wait > 0:
            self._phase = _SILENCE
            return wait
        return self._transmit()

    def step(self):
        phase = self._phase
        if phase == _READING:
            return self._receive()
        if phase == _SENDING:
            return self._released()
        if phase == _SILENCE:
            return self._transmit()
        return 0

    def end(self):
        """The number of reply bytes in self.rx; raises BusTimeout."""
        self._phase = _IDLE
        n = self._n
        if self._framer is None:
            return 0
        if self._complete or self._need < 0:
            self._idle_since = ticks_ms()
            self.stats["rx_bytes"] += n
            return n
        self._idle_since = ticks_ms()
        self.stats["timeouts"] += 1
        self.stats["rx_bytes"] += n
        raise BusTimeout(n)

    def _transmit(self):
        port = self.port
        rx = self.rx
        stale = port.readinto(rx)
        while stale:
            # Unsolicited frames, late replies or noise: drop them so they cannot pass for our reply.
            self.stats["noise_bytes"] += stale
            stale = port.readinto(rx)
        tx_len = self._tx_len
        view = self._tx_view
        if len(view) != tx_len:
            view = self._tx_view = self._txv[:tx_len]
        port.de(1)
        port.write(view)
        self._phase = _SENDING
        # Sleep through most of the frame, then watch the shift register: DE must drop right after
        # the last stop bit, or the meter's first reply bytes collide with our own driver.
        wire = self._tline.wire_ms(tx_len)
        if wire > 1:
            return wire - 1
        return self._released()

    def _released(self):
        port = self.port
        t0 = ticks_ms()
        while not port.txdone():
            if ticks_diff(ticks_ms(), t0) > _TXDONE_LIMIT_MS:
                break
        port.de(0)
        self._n = 0
        self._complete = False
        if self._framer is None:
            self._need = 0
            self._idle_since = ticks_ms()
            self._phase = _DONE
            return 0
        self.stats["transactions"] += 1
        now = ticks_ms()
        self._released_at = now
        self._deadline = ticks_add(now, self._timeout)
        need = self._need = _need(self._framer, self.rx, 0)
        self._expect_ms = self._tline.wire_ms(need if need > 0 else 5)
        self._wakes = 0
        self._phase = _READING
        return self._receive()

    def _receive(self):
        rx = self.rx
        size = len(rx)
        n = self._n
        need = self._need
        wakes = self._wakes
        self._wakes = wakes + 1
        if n < size:
            if n == 0:
                got = self.port.readinto(rx)
            else:
                # After the first piece: read into the shared chunk and copy behind what is there
                # (a memoryview of rx[n:] would be a new object for every piece). Bytes beyond rx
                # are line noise for the stats, as a reply cannot be longer than the buffer.
                got = self.port.readinto(_chunk)
                if got > size - n:
                    self.stats["noise_bytes"] += got - (size - n)
                    got = size - n
                if got:
                    _copy(rx, n, _chunk, got)
            if got:
                n += got
                self._n = n
                need = self._need = _need(self._framer, rx, n)
                if need == 0:
                    self._complete = True
                    self._phase = _DONE
                    if wakes == 1:
                        self._calm()
                    else:
                        self._late(0)  # whole by now, not at the wake-up before
                    return 0
                if need > 0:
                    self._late(need)
        left = ticks_diff(self._deadline, ticks_ms())
        if left <= 0 or n >= size:
            self._phase = _DONE
            return 0
        line = self._tline
        if not wakes:
            return max(1, min(left, self._expect_ms + line.late_ms))
        # A failed candidate waits for more bytes at the pace of the shortest frame.
        return max(1, min(left, line.wire_ms(need if need > 0 else 5)))

    def _late(self, need):
        # A reply still arriving will be whole in about `need` characters (need 0: it is whole
        # now): that, against the expected length's wire time, is how late this meter's replies are.
        line = self._tline
        late = ticks_diff(ticks_ms(), self._released_at) + line.wire_ms(need) - self._expect_ms
        line.late_ms = 0 if late < 0 else (late if late < self._timeout else self._timeout)
        line.calm = 0

    def _calm(self):
        # Whole at the first wake-up: the allowance may be more than the meter needs now (a slow
        # reply once). Shrink it now and then; a reply found short sets it afresh.
        line = self._tline
        if line.late_ms:
            line.calm += 1
            if line.calm >= 8:
                line.calm = 0
                line.late_ms -= 1

    async def transact(self, line, tx_len, framer, timeout_ms, gap_ms=0):
        """Send self.tx[:tx_len], return the number of reply bytes in self.rx.

        framer(rx, n) -> bytes still needed: 0 when whole; a negative value when what arrived is
        complete but failed its check (noise or a stray frame may come before the real reply), so
        the bus goes on reading and returns it only at the deadline, for the parser to report.
        Raises BusTimeout. The caller must hold self.lock for the whole exchange (and its parsing
        of self.rx). The meter drivers' read paths run the same steps inline (see begin()).
        """
        wait = self.begin(line, tx_len, framer, timeout_ms, gap_ms)
        while wait:
            await asyncio.sleep_ms(wait)
            wait = self.step()
        return self.end()

    def abort(self):
        """The transaction given up half-way (its task cancelled): DE released, begin() starts afresh."""
        if self._phase == _SENDING:
            self.port.de(0)
        self._phase = _IDLE

    async def send(self, line, tx_len, gap_ms=0):
        """A frame that gets no reply (a broadcast time sync): the same silences, no reading."""
        wait = self.begin(line, tx_len, None, 0, gap_ms)
        while wait:
            await asyncio.sleep_ms(wait)
            wait = self.step()
        self.end()


def _need(framer, rx, n):
    # A framer that cannot make sense of the bytes says "complete": the parser then names the error.
    try:
        return framer(rx, n)
    except ValueError:
        return 0


# Phases of a driver's read (Steps)
_R_NEXT = const(1)  # the next unit (Modbus block, DL/T 645 DI, CJ/T 188 frame), or the end
_R_LOCK = const(2)  # the bus lock is ours: build and begin the unit's transaction
_R_STEP = const(3)  # the bus's steps
_R_SUB = const(4)  # a coroutine (self.sub) ran for the unit: resumed() takes its outcome
_R_OVER = const(5)


class Steps:
    """A meter driver's read, awaited without a coroutine object: one per driver, reused every poll.

    `await drv.read(bus, line, timeout_ms, gap_ms, out)` awaits this object (run() returns it):
    its __next__ runs the bus's steps and sleeps through asyncio.sleep_ms as MicroPython's own
    sleep_ms object does, so a read allocates nothing of its own; a coroutine made each poll would
    cost some 350 bytes of heap (64-bit) on every read. The result is `out`.

    The read is a loop over self.units (set by first()): units skip()ped are passed over; for each
    other one the bus lock is taken, begin(unit) starts its transaction (bus.begin), and reply(unit)
    takes the reply after the last step. The rare paths (a lock held by another task, follow-up
    frames, a refused block read point by point, memory work after the read) are coroutines: a hook
    sets self.sub, which is driven in between, and resumed(unit) then finds its result in
    self.value or its exception in self.error. last() ends the read (it may set a sub too). The lock
    is released when the unit is over, or earlier by release(); an exception, or a cancellation,
    releases it and the bus's half-done transaction.
    """

    def __init__(self, drv):
        self.drv = drv
        self.busy = False  # started and not over: a second read at the same time gets its own
        self.phase = _R_OVER
        self.sub = None
        self.value = None
        self.error = None
        self.held = False
        self.units = ()
        self.i = 0
        self.bus = None
        self.line = None
        self.timeout_ms = 0
        self.gap_ms = 0
        self.out = None
        self._stop = StopIteration(None)  # raised at the end, its value the read's result: made once per out

    def run(self, bus, line, timeout_ms, gap_ms, out):
        """The read to await: this object, or a new one while this one is under way."""
        if self.busy:
            return type(self)(self.drv).run(bus, line, timeout_ms, gap_ms, out)
        self.busy = True
        self.bus = bus
        self.line = line
        self.timeout_ms = timeout_ms
        self.gap_ms = gap_ms
        if out is not self.out:
            self._stop = StopIteration(out)
            self.out = out
        self.sub = None
        self.error = None
        self.i = 0
        self.phase = _R_NEXT
        self.first()
        return self

    # hooks
    def first(self):
        """Set self.units (run(): the read's start)."""

    def skip(self, unit):
        return False

    def begin(self, unit):
        """Build the unit's request and return bus.begin(...)."""
        return 0

    def reply(self, unit):
        """After the transaction's last step: take the reply (bus.end()), or set self.sub."""

    def resumed(self, unit):
        if self.error is not None:
            raise self.error

    def last(self):
        """The units are done."""

    def release(self):
        if self.held:
            self.held = False
            self.bus.lock.release()

    # the awaitable
    def __iter__(self):
        return self

    def send(self, _):
        return self.__next__()

    def __next__(self):
        while True:
            sub = self.sub
            if sub is not None:
                try:
                    return sub.send(None)
                except StopIteration as e:
                    self.value = e.value
                    self.error = None
                except Exception as e:
                    self.error = e
                self.sub = None
            # Whatever stops a step (a cancel or a Ctrl-C included) releases the bus and drops DE first.
            done = False
            try:
                wait = self._advance()
                done = True
            finally:
                if not done:
                    self._abort()
            if wait:
                return next(asyncio.sleep_ms(wait))  # type: ignore[call-overload]  # MicroPython's sleep object
            if self.sub is None:
                self.busy = False
                stop = self._stop
                stop.__traceback__ = None
                raise stop

    def throw(self, exc, *_):
        sub = self.sub
        self.sub = None
        try:
            if sub is not None:
                sub.throw(exc)  # a lock wait, a sleep in a sub: their own clean-up
        finally:
            self._abort()
        raise exc

    def _abort(self):
        if self.held:
            self.bus.abort()
        self.release()
        self.phase = _R_OVER
        self.busy = False

    def _advance(self):
        while True:
            ph = self.phase
            if ph == _R_STEP:
                wait = self.bus.step()
                if wait:
                    return wait
                self.reply(self.units[self.i])
                if self.sub is not None:
                    self.phase = _R_SUB
                    return 0
            elif ph == _R_SUB:
                self.resumed(self.units[self.i])
                if self.sub is not None:
                    return 0
            elif ph == _R_NEXT:
                units = self.units
                i = self.i
                while i < len(units) and self.skip(units[i]):
                    i += 1
                self.i = i
                if i >= len(units):
                    self.phase = _R_OVER
                    self.last()
                    return 0
                self.phase = _R_LOCK
                lock = self.bus.lock
                if not lock.take():
                    self.sub = lock.acquire()
                    return 0
                continue
            elif ph == _R_LOCK:
                self.held = True
                self.phase = _R_STEP
                wait = self.begin(self.units[self.i])
                if wait:
                    return wait
                continue
            else:
                err = self.error
                if err is not None:  # of last()'s sub
                    self.error = None
                    raise err
                return 0
            # the unit is over
            self.release()
            self.i += 1
            self.phase = _R_NEXT
