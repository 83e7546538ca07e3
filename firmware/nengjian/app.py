"""The gateway application: wires config, buses, meters, store and uplink together and runs them.

Start-up order (nengjian.appboot's, loaded for the start and dropped before the gateway runs):
mount the data volume, open the store (recovering from a power cut), load the site config,
restore interval state, then run one poller per bus, one delivery task per
destination, the store's flush timer, a status line and the supervisor. A missing or invalid
config, or a data volume that will not mount, starts safe mode instead: the console stays usable,
the error is printed every minute, and the config is re-read so a crew's fix takes effect
without a power cycle. Not for a version on trial: one that cannot start on this site's config
fails its trial (main.py resets; ota.max_boots such boots roll it back), because in safe mode
nothing would ever confirm it or roll it back.

Crash-loop safe mode (health.BootGuard: quick crashes in a row, power cuts not among them) keeps
what the site exists for - meters polled, readings and values stored and uploaded, tce, alarms,
clock, console - and drops at level 1 what is best effort and may be the crash: the platform's
information channel (notices, coefficient download: JSON bodies, requests no value needs) and the
update server (TLS and large downloads; an update still comes over USB). Level 2 (safe mode crashed
as often again, so the meters' path may be the fault) stops polling too. Either leaves by a normal
start after `health.safe_hold_s`.
"""

import asyncio
import gc
import sys

import board

from nengjian.console import protocol as console
from nengjian.console import status
from nengjian.core import log, records, timeutil
from nengjian.core.compat import const, ticks_diff, ticks_ms, unload
from nengjian.system import health
from nengjian.values import alarms, intervals

VERSION = "0.1.0"
_STATUS_EVERY_MS = const(30000)
# A collection after every heap/GC_SHARE bytes allocated (gc.threshold), not only when the heap is
# full: between collections every allocation lands past the last one, so whatever outlives them (a
# dict grown, a module's objects, a name interned) is strewn over the whole heap and the free space
# left is small holes. Collected often, the allocations cycle through the low holes and the top of
# the heap stays in one piece. A board may set GC_THRESHOLD (bytes) instead; 0 leaves it to the port.
GC_SHARE = 32


class Gateway:
    def __init__(self, cfg, store, data_dir):
        self.cfg = cfg
        self.store = store
        self.data_dir = data_dir
        self.pollers = []
        self.destinations = []
        self.items_by_point = {}  # (meter id, point) -> [item index]
        for i, it in enumerate(cfg["items"]):
            self.items_by_point.setdefault((it["meter"], it["point"]), []).append(i)
        self.intervals = intervals.Intervals(cfg["items"], cfg["realtime_period_s"], self._emit_value, self.event,
                                             cfg["intervals"])
        self.tce = None
        if cfg.get("tce"):  # imported only where configured: it costs heap a plain site does not need
            from nengjian.values import tce

            self.tce = tce.Tce(cfg, self._emit_value, self.event, data_dir + "/tce.json")
        self.alarms = alarms.Alarms([it["code"] for it in cfg["items"]], cfg["realtime_period_s"], self.event,
                                    cfg["alarms"], data_dir + "/alarms.json")
        # Calibration and check alarms (nengjian.values.metrology): the module is loaded once a CST day
        # and for a crew's check, then dropped; between, the gateway keeps only the alarms' texts.
        self.metrology_alarms = ()
        self.metrology_day = None
        self.metrology_watch = False
        for m in cfg["meters"]:
            if m.get("calibration"):
                self.metrology_watch = True
        if not self.metrology_watch:  # a check beyond class on a site without calibration records
            try:
                import os

                os.stat(data_dir + "/metrology.json")
                self.metrology_watch = True
            except OSError:
                pass
        self.boot_guard = None
        self.safe = 0  # crash-loop safe mode level (health.BootGuard.level)
        self.updater = None
        self.supervisor = None
        self.heartbeat = None
        self.links = []
        self.net = None
        self.clock = None
        self.ota_fetch = None
        self.readings = 0
        self.status_page = None  # the page's task (nengjian.console.page), where it is served

    # ---- ledger
    QUIET_EVENTS = ("boot", "config", "visit")

    def event(self, kind, text, code=None):
        """Record a ledger event (kept on flash, pulled by the crew) and show it on the console. `code`
        (a short literal, nengjian.core.records EVENT) lets the laptop say it in the crew's language."""
        log.log(log.INFO if kind in self.QUIET_EVENTS else log.WARN, "event", "%s: %s" % (kind, text))
        if code is None:
            self.store.append([records.EVENT, timeutil.now(), kind, text])
        else:
            self.store.append([records.EVENT, timeutil.now(), kind, text, code])

    def _emit_value(self, rec):
        seq = self.store.append(rec)
        for d in self.destinations:  # the fresh lane: sent on time even behind a back-fill
            d.offer(seq, rec)
        self.observe_value(rec)
        log.info("value", "%s %s = %s%s" % (rec[records.V_CODE], timeutil.cst_text(rec[records.V_STAT_START]),
                                            rec[records.V_VALUE].text(), "" if rec[records.V_VALID] else " (invalid)"))

    def observe_value(self, rec):
        """Every VALUE stored (metered or manual) counts toward tce totals and clears gap alarms."""
        if self.tce is not None:
            self.tce.observe(rec)
        self.alarms.observe(rec)

    def metrology_run(self, job):
        """job(Metrology) with the meters' calibration and check state loaded, then dropped again;
        keeps the active alarms' texts for the status. Returns what job returns."""
        from nengjian.values import metrology

        mt = metrology.Metrology(self.cfg["meters"], self.event, self.data_dir + "/metrology.json")
        try:
            return job(mt)
        finally:
            self.metrology_alarms = mt.status_alarms()
            self.metrology_watch = self.metrology_watch or bool(self.metrology_alarms)
            mt = None
            unload("nengjian.values.metrology")

    # ---- meters
    def on_reading(self, meter, values, ts):
        """Sink of the pollers: store each reading, then feed the interval engine."""
        for point, value in values.items():
            self.store.append([records.READING, ts, meter.id, point, value, records.GOOD])
            self.readings += 1
            for index in self.items_by_point.get((meter.id, point), ()):
                self.intervals.feed(index, ts, value)
        if log.level <= log.INFO:  # the line's text costs heap per reading: only when it is shown
            log.info("poll", "%s at %s: %s" % (meter.id, timeutil.iso_utc(ts),
                                                 " ".join("%s=%s" % (k, v.text()) for k, v in values.items())))

    def _quality_fields(self):
        """The heartbeat's score fields: this month's completeness and timeliness per destination, in %."""
        out = []
        for d in self.destinations:
            if d.quality is not None:
                c, t = d.quality.beat()
                if c is not None:
                    out.append(("complete." + d.name, c))
                if t is not None:
                    out.append(("timely." + d.name, t))
        return out

    def _link_changed(self, link):
        if link is not None:
            for d in self.destinations:
                d.kick()

    # ---- background tasks
    async def flush_loop(self):
        while True:
            await asyncio.sleep_ms(250)
            if self.store.flush_due():
                self.store.flush()
                for d in self.destinations:
                    d.wake.set()

    async def status_loop(self):
        while True:
            await asyncio.sleep_ms(_STATUS_EVERY_MS)
            now = timeutil.now()
            if self.tce is not None:
                self.tce.tick(now)
            # Gap alarms are raised here, on the status beat; only a trusted clock can tell a gap.
            gaps = self.alarms.check(now) if board.clock_trusted() else ()
            if self.metrology_watch and board.clock_trusted() and (now + 28800) // 86400 != self.metrology_day:
                self.metrology_day = (now + 28800) // 86400  # calibrations due or expired: once a CST day
                self.metrology_run(lambda mt, now=now: mt.check_calibrations(now))
            if board.clock_trusted():
                for d in self.destinations:
                    if d.quality is not None:
                        d.quality.tick(now, d.caught_up)
            # The summary, not the console's whole snapshot: this runs every _STATUS_EVERY_MS.
            log.info("status", status.line(status.summary(self, gaps)))
            if self.updater and self.supervisor and self.updater.check_trial(self.supervisor.uptime_ms // 1000):
                self.restart()

    def _watch(self, safe):
        """The supervisor feeds the watchdog only while every poller and destination moves."""
        hc = self.cfg["health"]
        sup = health.Supervisor(board.Watchdog(30000), self.event, hc["healthy_s"], before_reset=self.store.flush)
        for i, p in enumerate(self.pollers):
            sup.register("bus%d" % i, p, 120)
        for d in self.destinations:
            # A destination may legitimately wait a request timeout plus its back-off cap.
            sup.register("uplink:" + d.name, d, 600)
        if self.net is not None:
            # A modem bring-up (power-on, registration, dial) may take minutes; a hung one is power-cycled.
            sup.register("network", self.net, 600)
        if self.boot_guard is not None and not safe:
            sup.on_healthy(self.boot_guard.clear)
        if self.updater is not None:
            sup.on_healthy(self.updater.confirm)
        self.supervisor = sup
        self.heartbeat = health.Heartbeat(hc["heartbeat_s"], self.event,
                                          health.standard_sources(sup, lambda: status.beat(self)))
        self.heartbeat.add(None, self._quality_fields)
        for d in self.destinations:
            if d.info is not None:
                self.heartbeat.subscribe(d.info.heartbeat)
        return [("supervisor", sup.run), ("heartbeat", self.heartbeat.run)]

    def restart(self):
        """Reset the board with everything taken so far on flash (an update installed or rolled back,
        safe mode left)."""
        self.store.flush()
        if self.boot_guard is not None:
            self.boot_guard.planned()
        board.reset()

    async def _leave_safe_mode_later(self):
        await asyncio.sleep_ms(self.cfg["health"]["safe_hold_s"] * 1000)
        self.boot_guard.retry_normal()
        self.event("health", "leaving crash-loop safe mode for a normal start", "health.leaving_safe")
        self.restart()

    async def run(self, safe=False):
        # Each task kept (restarted after a failure): one task's exception would end the gather.
        runs = [("bus%d" % i, p.run) for i, p in enumerate(self.pollers)]
        runs += [("uplink:" + d.name, d.run) for d in self.destinations]
        if self.net is not None:
            runs.append(("network", self.net.run))
            if self.clock is not None:
                runs.append(("clock", lambda: self.clock.run(self.net.is_up)))
            if self.ota_fetch is not None:
                runs.append(("ota", lambda: self.ota_fetch.run(self.net.is_up)))
        runs.append(("flush", self.flush_loop))
        runs.append(("status", self.status_loop))
        if self.status_page is not None:
            runs.append(("page", self.status_page))
        runs += self._watch(safe)
        if safe and self.boot_guard is not None:
            runs.append(("safe-hold", self._leave_safe_mode_later))
        tasks = [asyncio.create_task(kept(name, fn, self.event)) for name, fn in runs]
        runs = None  # this frame lives as long as the gateway: the list and its pairs need not
        try:
            await asyncio.gather(*tasks)
        finally:
            self.store.close()


RESTART_MS = 5000  # a failed task's first back-off; doubled at each failure in a row
RESTART_MAX_MS = 300000  # the back-off's cap; a task that ran this long before failing starts again at 5 s


async def kept(name, run, event):
    """Run the coroutine run() makes for as long as the gateway runs: an exception it raises (a bug,
    a MemoryError, an error the network layer let through) goes to the ledger and run() starts again
    after a back-off, so it can neither end the app's gather nor leave the task dead. A run that
    returns is done. CancelledError, KeyboardInterrupt and SystemExit are no Exception (on
    MicroPython's asyncio as on CPython's) and pass. Every task has one of these frames: what a
    failure needs is done in _failed, outside it."""
    wait = 0
    while True:
        began = ticks_ms()
        try:
            return await run()
        except Exception as e:  # noqa: BLE001 - whatever one task hits must not stop the others
            wait = _failed(name, e, event, wait, ticks_diff(ticks_ms(), began))
        await asyncio.sleep_ms(wait)


def _failed(name, e, event, wait, ran_ms):
    """The back-off after a failure (doubled at each failure in a row, from RESTART_MS after a run of
    RESTART_MAX_MS), told to the ledger."""
    wait = RESTART_MS if not wait or ran_ms >= RESTART_MAX_MS else min(wait * 2, RESTART_MAX_MS)
    try:
        event("health", "task %s failed (%s: %s): restarted in %d s" % (
            name, type(e).__name__, str(e)[:120], wait // 1000), "health.task_failed")
    except Exception:  # noqa: BLE001 - the ledger's trouble must not end the task either
        pass
    gc.collect()
    return wait


def _gc_threshold():
    """gc.threshold for the application's heap (GC_SHARE); the bytes set, or 0."""
    n = getattr(board, "GC_THRESHOLD", None)
    if n is None:
        gc.collect()
        # The sim's ROMFS image sits in its heap (board.ROMFS_BYTES); an ESP32's is in flash.
        n = max(4096, (gc.mem_free() + gc.mem_alloc() - getattr(board, "ROMFS_BYTES", 0)) // GC_SHARE)
    if n and hasattr(gc, "threshold"):
        gc.threshold(n)
        return n
    return 0


async def main_async():
    _gc_threshold()
    if hasattr(board, "utc_now"):
        timeutil.set_source(board.utc_now)
    impl = sys.implementation
    log.info("boot", "nengjian %s on board %s, %s %s" % (
        VERSION, board.NAME, impl.name, ".".join(str(x) for x in impl.version[:3])))
    con = console.start(board, VERSION)
    from nengjian import appboot  # the start (and safe mode until a config is valid): dropped once it ran

    gw, level = await appboot.start(sys.modules[__name__], con)
    appboot = None
    unload("nengjian.appboot")
    console.attach(gw)
    await gw.run(safe=level > 0)


def _start_clock(gw):
    """Boards that can set their clock sync it by NTP, or from the Date header of a verified platform
    when NTP is silent; until then readings are not stamped (board.clock_trusted asks clocksync).
    Once trusted, a step beyond clock.max_step_s needs two sources that agree (system/clock.py)."""
    if not hasattr(board, "set_utc"):
        return  # the sim without an RTC of its own (NJ_RTC): the host keeps its clock
    from nengjian.net import http
    from nengjian.system import clock as clocksync

    cc = gw.cfg["clock"]
    gw.clock = clocksync.init(board.set_utc, trusted=False, event=gw.event, max_step_s=cc["max_step_s"],
                              agree_s=cc["agree_s"], servers=cc.get("ntp") or clocksync.SERVERS,
                              every_s=cc.get("sync_s", 3600))
    gw.clock.ask_platform = lambda: _ask_platforms(gw)
    http.on_date = clocksync.from_platform


async def _ask_platforms(gw):
    """A session with each platform in turn until the clock is trusted: registering needs no
    timestamp, and an answer over verified TLS carries the Date header the clock may take."""
    for d in gw.destinations:
        await d.profile.ensure_session()
        if gw.clock.trusted():
            return


def _start_status_page(gw, con):
    """The read-only status page (nengjian.console.page), imported only where it is served: on by default
    where a link is Ethernet (a LAN to serve it on), off on 4G only, as the site's status_page says;
    on the board's STATUS_PORT (80 on the ESP32 boards; none on the sim unless NJ_STATUS_PORT) unless
    the site names a port. It binds the LAN link's own address, never the 4G one."""
    pc = gw.cfg.get("status_page") or {}
    if gw.safe:  # crash-loop safe mode keeps what the site exists for; the page is best effort
        return
    lan = None
    for link in gw.links:
        if link.kind == "ethernet":
            lan = link
            break
    if not pc.get("enabled", lan is not None):
        return
    port = pc.get("port") or getattr(board, "STATUS_PORT", None)
    if lan is None or not port:
        log.warn("page", "status page not served: %s" % ("no Ethernet link" if lan is None else "no port"))
        return
    from nengjian.console import page

    sp = page.StatusPage(lambda: status.full(con), gw.cfg["items"])
    host = getattr(board, "STATUS_HOST", "0.0.0.0")
    gw.status_page = lambda: page.run(sp, lambda: page.lan_address(lan, host), port)


def _unmount(path):
    try:
        import vfs

        vfs.umount(path)
    except (OSError, ImportError):
        pass


_ran = False
_guard = None  # type: health.BootGuard | None


def main():
    # Ctrl-C (KeyboardInterrupt) is never caught below this point: it is how a crew's laptop
    # (mpremote) gets the REPL without a power cycle. Here it ends the application cleanly.
    global _ran
    if _ran:  # started again from the REPL: fresh event loop, data volume mounted anew
        asyncio.new_event_loop()
        _unmount(board.DATA_MOUNT)
    _ran = True
    try:
        asyncio.run(main_async())
    except KeyboardInterrupt:
        log.info("boot", "stopped from the console")
        pulse = sys.modules.get("nengjian.meters.pulse")
        if pulse is not None:
            pulse.stop_all()  # save pulse counts on a clean stop
        console.stopped()
