"""Polls every meter on one bus on its own schedule; a dead meter is skipped for a while so the
live ones keep theirs, and a point a meter refuses is skipped for longer so its other points keep
theirs.

Each meter has an interval; the poller always serves the meter most overdue. After `fail_limit`
consecutive failed polls a meter is put aside for `backoff_s` (then tried once again), the way
Neuron's device_degrade or ESPHome's offline_skip_updates do. Readings go to a sink
(sink(meter, values, ts)); faults and recoveries to the event function.

A meter that refuses one point (DL/T 645 error reply such as "no such data", Modbus exception 01,
02 or 03, a CJ/T 188 reply without the field) has not failed: its driver reports the refusal to
the meter's Unsupported (below), the other points are read and stored as usual, the refused one is
left out of the values, shown in the status (PolledMeter.unsupported) and announced as a `point`
event, and asked again every `unsupported_retry_s`. Only a read in which the meter answered
nothing, or nothing but refusals, is a failed poll.

Failures are counted per kind in PolledMeter.stats, sorted by the class a driver raised
(nengjian.bus.rs485 and nengjian.proto.errors): timeouts (BusTimeout), exceptions (MeterRefused:
Modbus exception, DL/T 645 / CJ/T 188 error reply), crc (CheckError: CRC or checksum), frames (any
other FrameError: malformed or foreign replies) and errors (anything else: a driver bug, logged,
never allowed to stop the bus for the other meters). Drivers with background work (pulse inputs)
offer `background()`, started once when the poller runs.
"""

import asyncio

from nengjian.bus.rs485 import BusTimeout, Line
from nengjian.core import log, timeutil
from nengjian.core.compat import ticks_add, ticks_diff, ticks_ms

# The error tree alone, not a codec: DL/T 645 and CJ/T 188 load only when a site uses them.
from nengjian.proto.errors import CheckError, FrameError, MeterRefused

# Seconds before a refused point is asked again (site meter `unsupported_retry_s`). A missing
# register is a fact of the meter's model: once an hour costs one request per point and still
# notices a meter that was replaced or reconfigured.
UNSUPPORTED_RETRY_S = 3600

_NONE = ()  # shared empty containers: never written (Unsupported)
_NO_POINTS = {}


class Unsupported:
    """The points one meter refuses, kept by its driver; the poller reports them.

    A driver reads in units (a Modbus block or single point, a DL/T 645 DI, a CJ/T 188 field) and,
    after begin(), tells each unit's outcome: answered(unit, points) or refused(unit, points, err),
    where points are its compiled point tuples, name first (None: the unit is itself one). end(out)
    then commits the refusals, but only if the meter answered something else in the same read:
    each refused point leaves `out`, enters .points (name -> the refusal's text, the status shows
    it) and .news (the poller's ledger events), and its unit is skipped (skip(unit)) for retry_ms.
    A read with refusals and no answer raises the last refusal instead: a meter that answers only
    with errors fails its poll and goes offline as a silent one does.

    Only the path of a meter that answers everything is here, and it allocates nothing (the
    containers stay empty and are only tested for truth); what follows a refusal is in
    nengjian.meters.refusals, loaded the first time a meter refuses a point. Until then every
    meter shares the same empty ones (_NONE, _NO_POINTS: never written; refusals gives a meter its
    own before it writes), so a site of many meters that answer pays no heap per meter for this.
    """

    def __init__(self, cfg, retry=True):
        # retry=False: the unit is read anyway every poll (a field of a reply that carries others)
        self.retry_ms = cfg.get("unsupported_retry_s", UNSUPPORTED_RETRY_S) * 1000 if retry else 0
        self.due = _NO_POINTS  # unit -> ticks_ms when it is asked again
        self.points = _NO_POINTS  # point name -> why it is unsupported
        self.news = _NONE  # (point name, why or None: answers again), taken by the poller
        self.answers = 0
        self.pending = _NONE  # (unit, points, error) refused in this read, until end()

    def begin(self):
        self.answers = 0
        if self.pending:  # a read broken off by a timeout left its refusals
            self.pending = _NONE

    def skip(self, unit):
        due = self.due
        if not due or unit not in due or not self.retry_ms:
            return False
        return ticks_diff(ticks_ms(), due[unit]) < 0

    def answered(self, unit, points):
        self.answers += 1
        if self.due and unit in self.due:
            from nengjian.meters import refusals

            refusals.answers_again(self, unit, points)

    def refused(self, unit, points, err):
        if self.pending:
            self.pending.append((unit, points, err))
        else:
            self.pending = [(unit, points, err)]

    def end(self, out):
        if self.pending:
            from nengjian.meters import refusals

            refusals.commit(self, out)


class PolledMeter:
    def __init__(self, cfg, driver, line):
        self.id = cfg["id"]
        self.cfg = cfg
        self.driver = driver
        self.line = line
        self.interval_ms = cfg["interval_s"] * 1000
        self.timeout_ms = cfg["timeout_ms"]
        self.retries = cfg["retries"]
        self.gap_ms = cfg["gap_ms"]
        self.fail_limit = cfg["fail_limit"]
        self.backoff_ms = cfg["backoff_s"] * 1000
        self.next_due = ticks_ms()
        self.failures = 0
        self.offline = False
        self.values = {}
        self.stats = {"polls": 0, "ok": 0, "failed": 0, "timeouts": 0, "crc": 0, "exceptions": 0,
                      "frames": 0, "errors": 0}
        self.last_error = ""
        self.last_error_code = ""  # its kind, a catalogue code the laptop says it in Chinese by
        self.last_ok = 0
        self.refusals = getattr(driver, "unsupported", None)  # an Unsupported, or None (pulse inputs)

    @property
    def unsupported(self):
        """Point name -> why the meter refuses it (the status shows it)."""
        return self.refusals.points if self.refusals is not None else _NO_POINTS


def make_line(profile, cfg):
    line = dict(profile.get("line") or {})
    line.update(cfg.get("line") or {})
    return Line(line.get("baud", 9600), line.get("bits", 8), line.get("parity", "N"), line.get("stop", 1))


class BusPoller:
    def __init__(self, bus, meters, sink, event, trusted_clock):
        self.bus = bus
        self.meters = meters
        self._sink = sink
        self._event = event
        self._trusted = trusted_clock
        self.progress = 0  # advances every loop turn; the supervisor watches it
        self.cycles = 0

    def _most_due(self):
        best = None
        best_late = None
        now = ticks_ms()
        for m in self.meters:
            late = ticks_diff(now, m.next_due)
            if best is None or late > best_late:  # type: ignore[operator]  # set with best
                best = m
                best_late = late
        return best, best_late

    async def run(self):
        for m in self.meters:
            bg = getattr(m.driver, "background", None)
            if bg is not None:
                asyncio.create_task(bg())
        while True:
            m, late = self._most_due()
            if late < 0:
                await asyncio.sleep_ms(min(-late, 1000))
                self.progress += 1
                continue
            await self.poll_once(m)
            self.progress += 1

    async def poll_once(self, m):
        m.stats["polls"] += 1
        # Schedule from the due time, not from now, so a slow bus does not drift every meter.
        m.next_due = ticks_add(m.next_due, m.interval_ms)
        if ticks_diff(m.next_due, ticks_ms()) < 0:
            m.next_due = ticks_add(ticks_ms(), m.interval_ms)
        err = None
        for _attempt in range(m.retries + 1):
            try:
                await m.driver.read(self.bus, m.line, m.timeout_ms, m.gap_ms, m.values)
                err = None
                break
            except BusTimeout as e:
                m.stats["timeouts"] += 1
                err = e
            except MeterRefused as e:
                m.stats["exceptions"] += 1
                err = e
            except CheckError as e:  # before FrameError, whose subclass it is
                m.stats["crc"] += 1
                err = e
            except FrameError as e:
                m.stats["frames"] += 1
                err = e
            except Exception as e:  # a driver bug must not stop the other meters on this bus
                m.stats["errors"] += 1
                err = e
                log.error("poll", "meter %s: driver error %s: %s" % (m.id, type(e).__name__, e))
        ref = m.refusals
        if ref is not None and ref.news:  # a point refused, or answering again: the ledger's events
            from nengjian.meters import refusals

            refusals.report(m, ref, self._event)
        if err is not None:
            self._failed(m, err)
            return False
        ts = timeutil.now()
        m.stats["ok"] += 1
        m.last_ok = ts
        if m.offline or m.failures >= m.fail_limit:
            self._event("meter", "meter %s answers again after %d failed polls" % (m.id, m.failures), "meter.back")
        m.failures = 0
        m.offline = False
        if not self._trusted():
            log.warn("poll", "clock not trusted: reading of %s not stored" % m.id)
            return False
        self._sink(m, m.values, ts)
        return True

    def _failed(self, m, err):
        m.stats["failed"] += 1
        m.failures += 1
        m.last_error = str(err)
        m.last_error_code = ("meter_error.timeout" if isinstance(err, BusTimeout) else
                             "meter_error.refused" if isinstance(err, MeterRefused) else
                             "meter_error.check" if isinstance(err, CheckError) else
                             "meter_error.frame" if isinstance(err, FrameError) else "meter_error.other")
        log.warn("poll", "meter %s (%s addr %s): %s" % (m.id, self.bus.name, m.cfg["address"], err))
        if m.failures == m.fail_limit:
            m.offline = True
            self._event("meter", "meter %s offline after %d failed polls (%s); retry every %d s"
                        % (m.id, m.failures, err, m.backoff_ms // 1000), "meter.offline")
        if m.failures >= m.fail_limit:
            m.next_due = ticks_add(ticks_ms(), m.backoff_ms)
