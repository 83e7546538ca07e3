"""Pulse inputs: reed or open-collector outputs of gas, water and electricity meters, counted with
debounce, persisted on the data volume, and polled like any other meter (profile protocol "pulse").

Counting. The board supplies a pin per input (ESP32: machine.Pin with a pull-up; sim: a pin driven
from a file, see boards/sim/board.py) and the pin calls back on both edges. An edge is taken for
real only if the line then stays at its new level for `debounce_ms`: the handler commits the
previous edge when the next one comes late enough, and a task commits the last one once it has
settled. Bounces shorter than debounce_ms are dropped; a pulse counts when the line settles at the
active level (`edge` falling, the default for a pulled-up open collector, or rising). The handler
does integer arithmetic only: it allocates nothing and may run as an interrupt.

Persistence. Counts of every input go to one small file on the data volume (<data>/pulse.json,
{"v": 1, "counts": {input: count}}, a nengjian.core.statefile: written to pulse.json.new and renamed
over the old one), so the file on flash always holds a complete, earlier state; one that cannot
be read is logged and the counts start from zero. It is written when `persist_s` seconds have
passed since the last write with new pulses, when any input has `persist_pulses` new pulses, and
on a clean stop (`stop_all()`). What a power cut loses is only what was counted since the last
write: at most persist_pulses - 1 pulses of an input, and at most persist_s seconds of pulses; a
pulse already persisted is never lost. Shorter intervals lose less and wear the flash more
(defaults: 60 s, 100 pulses; littlefs spreads the writes).

Value. total = start + pulses / per_unit, an exact Decimal with `decimals` places (per_unit a
divisor of 10**decimals, e.g. 100 pulses per m3 with 2 decimals, stays exact; otherwise it rounds
half up); `start` is the meter's index when the count was zero, from the site config. The point
field `pulses` gives the raw count.
"""

import asyncio
import os
import sys

from nengjian.core import log, statefile
from nengjian.core.compat import ticks_diff, ticks_ms
from nengjian.core.decimal import Decimal

try:
    from machine import disable_irq, enable_irq  # type: ignore[attr-defined]  # not on the unix port
except ImportError:  # the unix port: pins are driven from the event loop, nothing to mask
    def disable_irq():  # type: ignore[misc]  # the stand-in, untyped
        return 0

    def enable_irq(state):  # type: ignore[misc]  # the stand-in, untyped
        pass


DEFAULTS = {"per_unit": 1, "decimals": 2, "edge": "falling", "debounce_ms": 20,
            "persist_s": 60, "persist_pulses": 100, "start": 0}  # type: dict  # of int and str
SERVICE_MS = 20


class PulseCounter:
    """Debounced edge counter of one input. edge()/settle() take times in ticks_ms."""

    def __init__(self, name, debounce_ms=20, active=0, count=0, level=1):
        self.name = name
        self.debounce_ms = debounce_ms
        self.active = active
        self.count = count
        self.saved = count
        self._stable = level
        self._pending = -1
        self._pending_t = 0
        self.bounces = 0
        self.pin = None
        self._irq = self._on_irq  # bound once: the pin keeps a reference, nothing allocates per edge

    def _commit(self, level):
        if level != self._stable:
            self._stable = level
            if level == self.active:
                self.count += 1

    def edge(self, t, level):
        """The line changed to `level` at time t."""
        p = self._pending
        if p >= 0:
            if ticks_diff(t, self._pending_t) >= self.debounce_ms:
                self._commit(p)
            else:
                self.bounces += 1
        self._pending = level
        self._pending_t = t

    def settle(self, now):
        """Commit the last edge once the line has stayed there for debounce_ms."""
        state = disable_irq()
        p = self._pending
        if p >= 0 and ticks_diff(now, self._pending_t) >= self.debounce_ms:
            self._pending = -1
            self._commit(p)
        enable_irq(state)

    def flush(self):
        """On a clean stop: take a pending edge if the line is still at that level."""
        p = self._pending
        if p >= 0 and (self.pin is None or self.pin.value() == p):
            self._pending = -1
            self._commit(p)

    def _on_irq(self, pin):
        self.edge(ticks_ms(), pin.value())

    def attach(self, pin):
        self.pin = pin
        self._stable = pin.value()
        if hasattr(pin, "irq"):
            pin.irq(handler=self._irq, trigger=pin.IRQ_RISING | pin.IRQ_FALLING)
        else:
            self._poll_level = self._stable

    def poll(self, now):
        """For pins without interrupts: sample the level (called every SERVICE_MS)."""
        if self.pin is not None and not hasattr(self.pin, "irq"):
            v = self.pin.value()
            if v != self._poll_level:
                self._poll_level = v
                self.edge(now, v)


class PulseStore:
    """The counts of every input, persisted together in one file (nengjian.core.statefile)."""

    def __init__(self, path):
        self.path = path
        self.counters = {}
        self.persist_ms = DEFAULTS["persist_s"] * 1000
        self.persist_pulses = DEFAULTS["persist_pulses"]
        self.writes = 0
        self._last = ticks_ms()
        self._gen = 0
        self._saved = self._load()

    def _load(self):
        why = []
        doc = statefile.load(self.path, 1, why.append)
        legacy = self.path + ".tmp"
        if doc is None:
            # Firmware before statefile wrote pulse.json.tmp: whole, it is a save cut before its
            # rename, newer than anything else here (the reasoning of statefile's NAME.new).
            doc = statefile.load(legacy, 1, why.append)
            if doc is not None:
                try:
                    os.rename(legacy, self.path)
                except OSError:
                    pass
        statefile.remove(legacy)  # read once: a stale copy must never be taken up later
        counts = doc.get("counts") if doc is not None else None
        if doc is not None and not isinstance(counts, dict):
            why.append("no counts")
            counts = None
        if counts is None and why:
            log.warn("pulse", "%s unreadable (%s): counting from zero" % (self.path, why[0]))
        return counts or {}

    def counter(self, name, debounce_ms=20, active=0, persist_s=None, persist_pulses=None):
        c = self.counters.get(name)
        if c is None:
            c = PulseCounter(name, debounce_ms, active, int(self._saved.get(name, 0)))
            self.counters[name] = c
        if persist_s:
            self.persist_ms = min(self.persist_ms, persist_s * 1000)
        if persist_pulses:
            self.persist_pulses = min(self.persist_pulses, persist_pulses)
        return c

    def dirty(self):
        for c in self.counters.values():
            if c.count != c.saved:
                return True
        return False

    def persist(self):
        """Write every count now. True once on flash; False (logged) if the write failed."""
        counts = {}
        for name, c in self.counters.items():
            counts[name] = c.count
        for name, v in self._saved.items():
            counts.setdefault(name, v)  # inputs not configured now keep their count
        if not statefile.save(self.path, {"counts": counts}, 1, self._not_saved):
            return False
        for name, c in self.counters.items():
            c.saved = counts[name]
        self._saved = counts
        self._last = ticks_ms()
        self.writes += 1
        return True

    def _not_saved(self, why):
        log.warn("pulse", "cannot persist counts to %s: %s" % (self.path, why))

    def service(self, now):
        """Settle edges; persist when due. Returns True when it wrote the file."""
        due = False
        for c in self.counters.values():
            c.poll(now)
            c.settle(now)
            if c.count - c.saved >= self.persist_pulses:
                due = True
        if not due and ticks_diff(now, self._last) >= self.persist_ms and self.dirty():
            due = True
        if due:
            if self.persist():
                return True
            self._last = now  # try again after persist_s, not at every turn
        return False

    async def run(self):
        """Service loop. A later call takes over (several pulse meters share one store; an app
        restarted from the REPL runs a fresh event loop): the older loop ends at its next turn."""
        self._gen += 1
        gen = self._gen
        while True:
            await asyncio.sleep_ms(SERVICE_MS)
            if gen != self._gen:
                return
            self.service(ticks_ms())


_stores = {}
_prev_atexit = None


def store_for(path):
    s = _stores.get(path)
    if s is None:
        s = PulseStore(path)
        _stores[path] = s
        _register_atexit()
    return s


def stop_all():
    """Clean stop: settle and persist every count (call before the gateway exits)."""
    for s in _stores.values():
        for c in s.counters.values():
            c.flush()
        if s.dirty():
            s.persist()


def _atexit():
    stop_all()
    if _prev_atexit is not None:
        _prev_atexit()


def _register_atexit():
    global _prev_atexit
    reg = getattr(sys, "atexit", None)
    if reg is not None and _prev_atexit is None:
        prev = reg(_atexit)
        _prev_atexit = prev if prev is not _atexit else None


def pulse_value(pulses, per_unit, decimals, start_m):
    """Decimal(start + pulses / per_unit) with `decimals` places (exact when per_unit divides)."""
    scaled = pulses * 10 ** decimals
    m = (2 * scaled + per_unit) // (2 * per_unit)
    return Decimal(m + start_m, -decimals)


class PulseMeter:
    """A pulse input as a pollable meter: read() gives total and/or pulses."""

    protocol = "pulse"

    def __init__(self, cfg, prof, wanted, board):
        s = dict(DEFAULTS)
        s.update(prof.get("pulse") or {})
        s.update(cfg.get("pulse") or {})
        self.input = "pulse_%s" % cfg["address"]
        inputs = board.pulse_inputs() if hasattr(board, "pulse_inputs") else {}
        factory = inputs.get(self.input)
        if factory is None:
            raise ValueError("board %s has no pulse input %s (has %s)"
                             % (board.NAME, self.input, ", ".join(sorted(inputs)) or "none"))
        self.store = store_for(board.DATA_MOUNT + "/pulse.json")
        self.counter = self.store.counter(self.input, s["debounce_ms"], 0 if s["edge"] == "falling" else 1,
                                          s["persist_s"], s["persist_pulses"])
        # Attach again when the app restarts from the REPL: the pin object is kept (and its count),
        # its interrupt handler is registered anew.
        self.counter.attach(self.counter.pin if self.counter.pin is not None else factory())
        self.per_unit = s["per_unit"]
        self.decimals = s["decimals"]
        from nengjian.meters import profile as profiles  # construction only: dropped after boot (app)

        self.start_m = profiles.offset_mantissa({"offset": s["start"]}, -self.decimals)
        self.points = [(name, prof["points"][name]["field"]) for name in wanted]

    def background(self):
        return self.store.run()

    async def read(self, bus, line, timeout_ms, gap_ms, out):
        pulses = self.counter.count
        for name, field in self.points:
            if field == "pulses":
                out[name] = Decimal(pulses, 0)
            else:
                out[name] = pulse_value(pulses, self.per_unit, self.decimals, self.start_m)
        return out
