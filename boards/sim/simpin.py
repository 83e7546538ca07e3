"""A pulse input of the sim board (boards/sim/board.py SimPin, NJ_PULSE<n>): a machine.Pin-like pin
driven from a file the test appends to. Its own module so that a site without pulse meters holds
none of its code; the board imports it for the first pin and keeps it while pins exist.
"""

class SimPin:
    """A pulse input pin, machine.Pin-like (value(), irq()), driven from a file the test appends to.

    The unix port has no interrupts: irq() starts an event-loop task that reads the file every
    few milliseconds and calls the handler once per level change, as a pin interrupt would.
    """

    IRQ_FALLING = 1
    IRQ_RISING = 2
    POLL_MS = 3
    # A '-' in the timeline: longer than any debounce a site configures (20 ms by default), and a
    # sleep that a loaded machine can only stretch, so a hold never turns into bounce.
    HOLD_MS = 60

    def __init__(self, path, level=1):
        self.path = path
        with open(path, "ab"):
            pass
        self._f = open(path, "rb")
        # A pin has no past: a board that boots again sees the line from now on, not the levels a
        # test wrote for the boot before (replayed with their holds they would be pulses again).
        self._f.seek(0, 2)
        self._level = level
        self._handler = None
        self._trigger = 0
        self._buf = bytearray(64)
        self._n = self._i = 0  # bytes in _buf, next one to apply (a hold stops in the middle)
        self._held = False
        self.edges = 0

    def value(self):
        return self._level

    def irq(self, handler=None, trigger=3):
        import asyncio

        self._handler = handler
        self._trigger = trigger
        self._gen = getattr(self, "_gen", 0) + 1  # one pump: a new irq() (app restart) replaces it
        if handler is not None:
            asyncio.create_task(self._pump(self._gen))

    def feed(self):
        """Apply what the file holds now, up to the next hold; returns the number of level changes."""
        changes = 0
        self._held = False
        while True:
            if self._i >= self._n:
                self._n = self._f.readinto(self._buf) or 0
                self._i = 0
                if not self._n:
                    return changes
            c = self._buf[self._i]
            self._i += 1
            if c == 45:  # '-'
                self._held = True
                return changes
            if c not in (48, 49):
                continue
            level = c - 48
            if level == self._level:
                continue
            self._level = level
            changes += 1
            self.edges += 1
            want = self.IRQ_RISING if level else self.IRQ_FALLING
            if self._handler is not None and self._trigger & want:
                self._handler(self)

    async def _pump(self, gen):
        import asyncio

        while gen == self._gen:
            self.feed()
            await asyncio.sleep_ms(self.HOLD_MS if self._held else self.POLL_MS)
