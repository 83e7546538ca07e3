"""The gateway application: wires config, buses, meters, store and uplink together and runs them.

Start-up order: mount the data volume, open the store (recovering from a power cut), load the
site config, restore interval state, then run one poller per bus, one delivery task per
destination, the store's flush timer, a status line and the supervisor. A missing or invalid
config, or a data volume that will not mount, starts safe mode instead: the console stays usable,
the error is printed every minute, and the config is re-read so a crew's fix takes effect
without a power cycle.
"""

import asyncio
import gc
import sys

import board

from nengjian import config, intervals, log, records, timeutil
from nengjian.meters import factory
from nengjian.meters import profile as profiles
from nengjian.store.store import Store
from nengjian.uplink import delivery, ndrc

VERSION = "0.1.0"
STATUS_EVERY_MS = 30000


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
        self.intervals = intervals.Intervals(cfg["items"], cfg["realtime_period_s"], self._emit_value, self.event)
        self.readings = 0

    # ---- ledger
    QUIET_EVENTS = ("boot", "config", "visit")

    def event(self, kind, text):
        """Record a ledger event (kept on flash, pulled by the crew) and show it on the console."""
        log.log(log.INFO if kind in self.QUIET_EVENTS else log.WARN, "event", "%s: %s" % (kind, text))
        self.store.append([records.EVENT, timeutil.now(), kind, text])

    def _emit_value(self, rec):
        self.store.append(rec)
        log.info("value", "%s %s = %s%s" % (rec[records.V_CODE], timeutil.cst_text(rec[records.V_STAT_START]),
                                            rec[records.V_VALUE].text(), "" if rec[records.V_VALID] else " (invalid)"))

    # ---- meters
    def on_reading(self, meter, values, ts):
        """Sink of the pollers: store each reading, then feed the interval engine."""
        for point, value in values.items():
            self.store.append([records.READING, ts, meter.id, point, value, records.GOOD])
            self.readings += 1
            for index in self.items_by_point.get((meter.id, point), ()):
                self.intervals.feed(index, ts, value)
        log.info("poll", "%s at %s: %s" % (meter.id, timeutil.iso_utc(ts),
                                             " ".join("%s=%s" % (k, v.text()) for k, v in values.items())))

    def build_meters(self):
        self.pollers = factory.build_pollers(self.cfg, board, self.on_reading, self.event)

    def build_destinations(self):
        links = board.network_links()
        for d in self.cfg["destinations"]:
            prof = ndrc.NdrcJson(d, self.cfg["enterprise"], self.data_dir)
            self.destinations.append(delivery.Destination(prof, self.store, d["batch"], self.event,
                                                          links[0].is_up if links else None))

    def restore_intervals(self):
        """Find, per item, the first reading of the newest period on record (scan recent segments)."""
        period = self.cfg["realtime_period_s"]
        first_in_slot = {}

        def visit(seq, rec):
            if rec[0] == records.READING:
                for index in self.items_by_point.get((rec[2], rec[3]), ()):
                    slot = timeutil.slot_start(rec[1], period)
                    cur = first_in_slot.get(index)
                    if cur is None or slot > cur[0]:
                        first_in_slot[index] = (slot, rec[1], rec[4])
            return False

        self.store.scan(max(1, self.store.last_seq - 5000), visit)
        for index, (_slot, ts, value) in first_in_slot.items():
            self.intervals.restore(index, ts, value)
        return len(first_in_slot)

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
            await asyncio.sleep_ms(STATUS_EVERY_MS)
            gc.collect()
            parts = ["readings=%d" % self.readings, "stored=%d" % self.store.durable_seq,
                     "heap_free=%d" % gc.mem_free()]
            for d in self.destinations:
                parts.append("%s:backlog=%d%s" % (d.name, self.store.backlog(d.name), "(failing)" if d.failing else ""))
            for p in self.pollers:
                for m in p.meters:
                    if m.offline:
                        parts.append("%s:offline" % m.id)
            log.info("status", " ".join(parts))

    async def supervisor(self, wdt):
        """Feeds the watchdog only while every poller and destination loop keeps moving."""
        loops = self.pollers + self.destinations
        seen = [x.progress for x in loops]
        stalled_since = [0] * len(loops)
        while True:
            await asyncio.sleep_ms(1000)
            ok = True
            for i, x in enumerate(loops):
                if x.progress != seen[i]:
                    seen[i] = x.progress
                    stalled_since[i] = 0
                else:
                    stalled_since[i] += 1
                    # A destination may legitimately wait up to a request timeout plus back-off.
                    if stalled_since[i] > 360:
                        ok = False
            if ok:
                wdt.feed()

    async def run(self):
        tasks = [asyncio.create_task(p.run()) for p in self.pollers]
        tasks += [asyncio.create_task(d.run()) for d in self.destinations]
        tasks.append(asyncio.create_task(self.flush_loop()))
        tasks.append(asyncio.create_task(self.status_loop()))
        tasks.append(asyncio.create_task(self.supervisor(board.Watchdog(30000))))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.store.close()


def _load_profile(name):
    return profiles.load(board.PROFILE_DIR, name)


async def safe_mode(reason):
    """Keep the console alive, repeat the reason, and come back when the config is fixed."""
    log.error("safe", "SAFE MODE: %s" % reason)
    log.error("safe", "fix %s/site.json (nengjian provision / mpremote): it is re-read every 5 s" % board.CONFIG_DIR)
    ticks = 0
    last = reason
    while True:
        await asyncio.sleep_ms(5000)
        ticks += 1
        try:
            config.load(board.CONFIG_DIR + "/site.json", _load_profile)
            log.info("safe", "config is valid now: starting")
            return
        except config.ConfigError as e:
            now = "config: %s" % e
            if now != last or ticks % 12 == 0:
                log.error("safe", "SAFE MODE: %s" % now)
                last = now


async def main_async():
    if hasattr(board, "utc_now"):
        timeutil.set_source(board.utc_now)
    impl = sys.implementation
    log.info("boot", "nengjian %s on board %s, %s %s" % (
        VERSION, board.NAME, impl.name, ".".join(str(x) for x in impl.version[:3])))
    while True:
        try:
            data = board.mount_data()
        except OSError as e:
            await safe_mode("data volume will not mount (%s); stored data is left untouched" % e)
            continue
        store_dir = data + "/store"
        try:
            cfg = config.load(board.CONFIG_DIR + "/site.json", _load_profile)
        except config.ConfigError as e:
            _unmount(data)
            await safe_mode("config: %s" % e)
            continue
        sc = cfg["store"]
        store = Store(store_dir, [d["name"] for d in cfg["destinations"]], segment_bytes=sc["segment_kb"] * 1024,
                      segments=sc["segments"], flush_records=sc["flush_records"], flush_ms=sc["flush_s"] * 1000)
        gw = None
        store._on_event = lambda k, t: log.warn("store", "%s: %s" % (k, t))
        store.open()
        try:
            gw = Gateway(cfg, store, data)
            store._on_event = gw.event
            gw.build_meters()
            gw.build_destinations()
        except config.ConfigError as e:
            store.close()
            _unmount(data)
            await safe_mode("config: %s" % e)
            continue
        restored = gw.restore_intervals()
        log.info("boot", "store: last record %d, %d item(s) resumed; %d meter(s) on %d bus(es), %d destination(s)" % (
            store.last_seq, restored, len(cfg["meters"]), len(gw.pollers), len(gw.destinations)))
        gw.event("boot", "started firmware %s" % VERSION)
        await gw.run()


def _unmount(path):
    try:
        import vfs

        vfs.umount(path)
    except (OSError, ImportError):
        pass


def main():
    try:
        asyncio.run(main_async())
    except KeyboardInterrupt:
        log.info("boot", "stopped from the console")
