"""Keeping a gateway alive for years without a visit: the watchdog supervisor, the heartbeat, and
crash-loop detection.

Supervisor: the hardware watchdog is fed by this task only, and only while every registered task
makes progress. A task registers a progress counter (an object's `progress` attribute, or a
function returning a number) and the longest it may legitimately stand still (a destination waits
out a request timeout plus its back-off; a poller sleeps at most a second between turns). One task
stuck past its limit, or the event loop itself blocked, and the watchdog resets the board. Time is
ticks_ms (monotonic), never the wall clock, which may jump. The stall is written to the ledger (and
the store flushed by `before_reset`) before the watchdog fires.

Healthy: every task progressing, continuously, for `healthy_s` since boot. Listeners hear it once
per boot: the boot guard clears its counter, an update on trial confirms itself (nengjian.ota).

Heartbeat: every `heartbeat_s` a ledger EVENT of kind "heartbeat" ("uptime_s=... heap_free=...
flash_free=... backlog.NAME=... link.NAME=... rssi.NAME=..."), and the same as a dict to subscribers
(a platform profile that takes it). Its fields are picked from one status snapshot per beat (the
gateway's, nengjian.console.status: the console and the status line show the same figures); this
module names them and never reads the gateway itself.

Crash loop: BootGuard keeps a boot counter in a file on the data volume (a nengjian.core.statefile
holding a bare number, so the files of older firmware read the same and they read ours): the runs
since the last healthy one, this one included, that may have ended in a crash. Each boot counts
itself and learns from the board's reset cause (board.reset_cause(), one of the names below) how
the run before it ended: a power-on, a brown-out or a soft reboot takes that run back out, so power
cuts, however many and however close, never add up to a crash loop; a crash, a watchdog reset, a
reset and an unknown cause leave it counted. A reset the firmware makes on purpose takes its own
run back before it resets (planned), since the ESP32 reports it as it reports a panic. A torn
counter counts as one quick crash. `limit` quick crashes in a row are a crash loop: the app starts
safe mode, level 1 (meters still polled and stored; nengjian.app says what is off), and at twice
the limit, when safe mode itself kept crashing, level 2 (meters not polled either). After
`safe_hold_s` it tries a normal start with the counter at the limit, so one more quick crash brings
safe mode straight back.
"""

import asyncio

from nengjian.core import log, statefile
from nengjian.core.compat import ticks_diff, ticks_ms


def _progress_of(x):
    if callable(x):
        return x
    return lambda: x.progress


class _Task:
    __slots__ = ("name", "get", "limit_ms", "seen", "since", "stalled")

    def __init__(self, name, get, limit_ms, now):
        self.name = name
        self.get = get
        self.limit_ms = limit_ms
        self.seen = get()
        self.since = now
        self.stalled = False


class Supervisor:
    def __init__(self, wdt, event=None, healthy_s=600, ticks=None, before_reset=None):
        self.wdt = wdt
        self._event = event
        self.healthy_ms = healthy_s * 1000
        self._ticks = ticks or ticks_ms
        self._before_reset = before_reset
        self.tasks = []
        now = self._ticks()
        self._last = now
        self.uptime_ms = 0
        self._ok_since_ms = 0  # uptime at which every task was last seen progressing without a break
        self.healthy = False
        self._on_healthy = []
        self.feeds = 0

    def register(self, name, progress, max_stall_s):
        """Watch a task: `progress` is an object with a `progress` counter or a function returning one."""
        self.tasks.append(_Task(name, _progress_of(progress), max_stall_s * 1000, self._ticks()))

    def on_healthy(self, fn):
        self._on_healthy.append(fn)
        if self.healthy:
            fn()

    def stalled(self):
        return [t.name for t in self.tasks if t.stalled]

    def step(self, now=None):
        """Look at every task once; feed the watchdog if none is stuck. Returns whether it fed."""
        if now is None:
            now = self._ticks()
        self.uptime_ms += max(0, ticks_diff(now, self._last))
        self._last = now
        ok = True
        for t in self.tasks:
            p = t.get()
            if p != t.seen:
                t.seen = p
                t.since = now
                if t.stalled:
                    t.stalled = False
                    self._note("health", "task %s moves again" % t.name, "health.moves")
                continue
            if ticks_diff(now, t.since) > t.limit_ms:
                ok = False
                if not t.stalled:
                    t.stalled = True
                    self._note("health", "task %s made no progress for %d s: watchdog no longer fed"
                               % (t.name, ticks_diff(now, t.since) // 1000), "health.stalled")
                    if self._before_reset is not None:
                        try:
                            self._before_reset()
                        except Exception:  # the reset must happen whatever the flush does
                            pass
        if ok:
            self.wdt.feed()
            self.feeds += 1
            if not self.healthy and self.uptime_ms - self._ok_since_ms >= self.healthy_ms:
                self.healthy = True
                self._note("health", "healthy: every task progressing for %d s" % (self.healthy_ms // 1000), "health.healthy")
                for fn in self._on_healthy:
                    fn()
        else:
            self._ok_since_ms = self.uptime_ms
        return ok

    async def run(self, every_ms=1000):
        """step() every every_ms for ever. A step that raises (a task's progress function, the ledger,
        an on_healthy hook) is recorded once per reason and the loop goes on; such a step may not have
        fed the watchdog, so one that keeps failing resets the board through it, as a stuck task would."""
        failed = None
        while True:
            await asyncio.sleep_ms(every_ms)
            try:
                self.step()
                failed = None
            except Exception as e:  # noqa: BLE001 - the watchdog's feeder must outlive any one bug
                why = "%s: %s" % (type(e).__name__, e)
                if why != failed:
                    failed = why
                    try:
                        self._note("health", "supervisor step failed (%s)" % why[:160], "health.step_failed")
                    except Exception:  # noqa: BLE001 - the ledger may be what failed
                        pass

    def _note(self, kind, text, code):
        if self._event is not None:
            self._event(kind, text, code)


class Heartbeat:
    def __init__(self, period_s, event, sources=None):
        self.period_s = period_s
        self._event = event
        self.sources = list(sources or ())  # (name, fn)
        self._listeners = []
        self.beats = 0

    def add(self, name, fn):
        """One more field; name None: fn returns a list of (field, value), taken together."""
        self.sources.append((name, fn))

    def subscribe(self, fn):
        """fn(dict of the heartbeat's fields) at every beat (a platform profile that carries it)."""
        self._listeners.append(fn)

    def snapshot(self):
        out = []
        for name, fn in self.sources:
            try:
                v = fn()
            except Exception as e:  # one broken probe must not silence the others
                v = "error:%s" % e.__class__.__name__
                if name is None:
                    name = "status"
            if name is None:
                out += v
            elif v is not None:
                out.append((name, v))
        return out

    def beat(self):
        snap = self.snapshot()
        self._event("heartbeat", " ".join("%s=%s" % kv for kv in snap), "heartbeat")
        d = dict(snap)
        for fn in self._listeners:
            try:
                fn(d)
            except Exception as e:
                self._event("health", "heartbeat hook failed: %r" % e, "health.hook_failed")
        self.beats += 1
        return d

    async def run(self):
        while True:
            await asyncio.sleep_ms(self.period_s * 1000)
            self.beat()


def standard_sources(supervisor, take):
    """The heartbeat's fields: uptime (the supervisor's: monotonic across tick wrap-around), then what
    take() - one status snapshot per beat, nengjian.console.status.beat of the gateway as the app wires
    it - says: free heap, free flash, backlog per destination, each link up or down and its RSSI."""
    return [("uptime_s", lambda: supervisor.uptime_ms // 1000), (None, lambda: picked(take()))]


def picked(s):
    """[(field, value)] of the heartbeat, from a status snapshot (nengjian.console.status.beat)."""
    out = [("heap_free", s["heap_free"])]
    vol = s.get("flash")
    if vol:
        out.append(("flash_free", vol["free"]))
    for d, backlog in zip(s["destinations"], s["backlog"]):
        out.append(("backlog." + d.name, backlog))
    for st in s.get("links", ()):
        name = st.get("link") or st.get("name") or "link"
        up = st.get("up")
        out.append(("link." + name, "unknown" if up is None else "up" if up else "down"))
        if st.get("rssi") is not None:
            out.append(("rssi." + name, st["rssi"]))
    return out


# Why the board booted, board-neutral: each board's reset_cause() returns one of these (the ESP32
# boards from machine.reset_cause(), the sim from what its launcher says), and the boot's ledger
# event names it.
POWER_ON = "power-on"
BROWN_OUT = "brown-out"
SOFT_REBOOT = "soft-reboot"  # MicroPython's soft reset (Ctrl-D, mpremote): a person at the console
RESET = "reset"  # a reset the software asked for, or a panic: the ESP32 port tells them apart nowhere
WATCHDOG = "watchdog"
CRASH = "crash"
UNKNOWN = "unknown"
RESET_CAUSES = (POWER_ON, BROWN_OUT, SOFT_REBOOT, RESET, WATCHDOG, CRASH, UNKNOWN)
# The run before ended without a fault of ours: the supply went (a factory's can blink several times
# in a storm) or a person restarted it.
_NOT_CRASHES = (POWER_ON, BROWN_OUT, SOFT_REBOOT)


class BootGuard:
    """Counts the runs since the last healthy one that may have crashed; `limit` quick crashes in a row
    are a crash loop."""

    def __init__(self, path, limit=5):
        self.path = path
        self.limit = limit
        self.count = 0
        self.quick = 0  # quick crashes in a row before this boot
        self.cause = UNKNOWN
        self.crash_loop = False

    def _read(self):
        """The count on flash; -1 for a torn one."""
        torn = []
        n = statefile.load(self.path, None, torn.append)
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            return n
        if torn or n is not None:
            log.warn("health", "boot counter %s unreadable (%s): counted as one quick crash" % (
                self.path, torn[0] if torn else "not a count"))
            return -1
        return 0

    def _write(self, n):
        statefile.save(self.path, n, None)  # a failure is logged; the count in RAM goes on
        self.count = n

    def boot(self, cause=UNKNOWN):
        """Count this boot, `cause` being the board's reset cause; returns the count (1 + the quick
        crashes before it)."""
        n = self._read()
        if n < 0:
            n = 1  # torn: one quick crash rather than none, whatever the cause
        elif n and cause in _NOT_CRASHES:
            n -= 1  # the run before was counted at its boot; the power or a person ended it, no crash
        n += 1
        self._write(n)
        self.cause = cause
        self.quick = n - 1
        self.crash_loop = self.quick >= self.limit
        return n

    def level(self):
        """Safe mode for this boot: 0 none; 1 a crash loop; 2 safe mode kept crashing too (twice the
        limit)."""
        return 2 if self.quick >= 2 * self.limit else 1 if self.quick >= self.limit else 0

    def clear(self):
        """This run is healthy: the next boot starts counting from nothing."""
        if self.count:
            self._write(0)
        self.crash_loop = False

    def planned(self):
        """The firmware resets the board on purpose (an update, safe mode left, a crew's reset): take
        this run back, so that the boot after it, which reads a reset, counts nothing."""
        if self.count:
            self._write(self.count - 1)

    def retry_normal(self):
        """Leave safe mode for a normal start at the edge: one more quick crash is safe mode again.
        The reset that follows is planned()."""
        self._write(self.limit)
        self.crash_loop = False
