"""The application's start: what runs once per boot (or until a valid config is found) and then
holds no heap - the data volume mounted, the store opened, the site config loaded (safe mode while
it will not), the gateway built (meters, destinations, update checks) and its interval state
resumed. nengjian.app loads this module for main_async's start and drops it before the gateway
runs. It imports nothing of nengjian.app (no circle): the app module is handed in. Nothing made
here that outlives the start may be a function of this module (a lambda, a class): it would keep
the module's globals, so the whole module, alive.
"""

import asyncio
import gc

import board

from nengjian import config
from nengjian.console import protocol as console
from nengjian.core import log, records, timeutil
from nengjian.core.compat import unload
from nengjian.net import failover as netsup
from nengjian.store.store import Store
from nengjian.system import health
from nengjian.uplink import delivery, ndrc


async def start(app, con):
    """(the Gateway built on this site's config, its crash-loop safe mode level); safe mode (or, on
    trial, TrialStartFailed) until the data volume mounts and the config is valid. app: nengjian.app."""
    while True:
        try:
            data = board.mount_data()
        except OSError as e:
            await _safe_mode_unless_on_trial(app, "data volume will not mount (%s); stored data is left untouched" % e,
                                             {"code": "volume", "args": [str(e)]})
            continue
        store_dir = data + "/store"
        if app._guard is None:  # once per boot, not per config reload
            app._guard = health.BootGuard(data + "/boots")
            app._guard.boot(board.reset_cause())
        guard = app._guard
        refused = None
        try:
            cfg = config.load(board.CONFIG_DIR + "/site.json", _load_profile)
        except config.ConfigError as e:
            refused = _refusal(e)  # safe mode waits outside the handler: in it, `e` (every problem) stays alive
        if refused:
            app._unmount(data)
            await _safe_mode_unless_on_trial(app, *refused)
            continue
        config.release_validators()
        gc.collect()
        sc = cfg["store"]
        store = Store(store_dir, [d["name"] for d in cfg["destinations"]], segment_bytes=sc["segment_kb"] * 1024,
                      segments=sc["segments"], flush_records=sc["flush_records"], flush_ms=sc["flush_s"] * 1000)
        gw = None
        store.on_event = lambda k, t, c=None: log.warn("store", "%s: %s" % (k, t))
        store.open()
        guard.limit = cfg["health"]["crash_limit"]
        level = guard.level()
        try:
            gw = app.Gateway(cfg, store, data)
            store.on_event = gw.event
            for kind, text, code in store.open_events:  # what recovery found goes into the ledger too
                store.append([records.EVENT, timeutil.now(), kind, text] + ([code] if code else []))
            gw.boot_guard = guard
            gw.safe = level
            if level:
                what = ("meters polled and stored; notices, coefficients, update server off" if level == 1
                        else "safe mode crashed too: meters not polled")
                gw.event("health", "SAFE MODE (crash loop, level %d): %d quick crashes in a row (last reset: %s); "
                                   "%s; normal start in %d s" % (level, guard.quick, guard.cause, what,
                                                                 cfg["health"]["safe_hold_s"]), "health.safe_mode")
            if level < 2:
                build_meters(gw)
            build_destinations(gw)
            app._start_clock(gw)
            start_updater(gw, cfg, app.VERSION)
            app._start_status_page(gw, con)
        except config.ConfigError as e:
            store.close()
            app._unmount(data)
            refused = _refusal(e)
        if refused:
            await _safe_mode_unless_on_trial(app, *refused)
            continue
        # The drivers hold what they took from their profiles: the loader and the factory go until a
        # config reload.
        unload("nengjian.meters.profile")
        unload("nengjian.meters.factory")
        restored = gw.intervals.resume(store, data + "/intervals.json")  # state file plus a replay since
        log.info("boot", "store: last record %d, %d item(s) resumed; %d meter(s) on %d bus(es), %d destination(s)" % (
            store.last_seq, restored, len(cfg["meters"]), len(gw.pollers), len(gw.destinations)))
        gw.event("boot", "started firmware %s (reset cause: %s, quick crashes: %d of %d)" % (
            app.VERSION, guard.cause, guard.quick, guard.limit), "boot.started")
        return gw, level


def _load_profile(name):
    from nengjian.meters import profile as profiles  # boot and config reloads only (unloaded after)

    return profiles.load(board.PROFILE_DIR, name)


class TrialStartFailed(Exception):
    """The version on trial could not start normally (main.py records why and resets)."""


def _on_trial():
    if not hasattr(board, "APP_DIR"):
        return False
    from nengjian import ota

    return ota.trial(board.APP_DIR)


# Problems safe mode holds for the console's status and the status page. Each costs some 230 B of heap on
# the sim (about 115 B on an ESP32) for as long as the config stays wrong, and a config may have 50 of
# them (validate.LIMIT); the rest are only counted: the laptop's check-config names them all from the
# same site.json, and the status says how many it left out ("more").
SAFE_KEPT = 8


def _refusal(e):
    """(the reason, the status's "safe") for the ConfigError `e`, whose full lists it then drops: the
    coroutine that handled `e` can keep it alive for all of safe mode (MicroPython leaves a handled
    exception in a coroutine's frame past its handler)."""
    refused = "config: %s" % e, _config_why(e)
    e.problems = e.codes = None
    return refused


def _config_why(e):
    """A ConfigError as the status's "safe" says it: the first SAFE_KEPT problems with their codes and
    arguments, from which the laptop says them in the installer's language (validate.Problems), and how
    many more there are."""
    problems = getattr(e, "problems", None) or [str(e)]
    kept = problems[:SAFE_KEPT]
    return {"code": "config", "problems": kept, "codes": (getattr(e, "codes", None) or [])[:2 * len(kept)],
            "more": len(problems) - len(kept) + getattr(e, "more", 0)}


async def _safe_mode_unless_on_trial(app, reason, why=None):
    if _on_trial():
        log.error("safe", "version %s on trial cannot start: %s" % (app.VERSION, reason))
        raise TrialStartFailed(reason)
    await safe_mode(reason, why)


async def safe_mode(reason, why=None):
    """Keep the console alive, repeat the reason, and come back when the config is fixed."""
    log.error("safe", "SAFE MODE: %s" % reason)
    console.safe(reason, why)
    log.error("safe", "fix %s/site.json (nengjian provision / mpremote): it is re-read every 5 s" % board.CONFIG_DIR)
    ticks = 0
    last = reason
    while True:
        await asyncio.sleep_ms(5000)
        ticks += 1
        try:
            config.load(board.CONFIG_DIR + "/site.json", _load_profile)
            log.info("safe", "config is valid now: starting")
            console.safe(None)
            return
        except config.ConfigError as e:
            now, why = _refusal(e)
            if now != last or ticks % 12 == 0:
                log.error("safe", "SAFE MODE: %s" % now)
                last = now
                console.safe(now, why)
            why = None  # the console's is the one kept


# ---- the gateway's parts (Gateway.__init__ made the rest)
def build_meters(gw):
    from nengjian.meters import factory  # boot only: dropped with the profile loader (start)

    gw.pollers = factory.build_pollers(gw.cfg, board, gw.on_reading, gw.event)
    if any(getattr(pm.driver, "memory", None) for p in gw.pollers for pm in p.meters):
        from nengjian.meters import memwatch  # meters with memory or a clock (DL/T 645, Modbus) only

        memwatch.attach(gw, board.clock_trusted)


def build_destinations(gw):
    """One delivery task per platform, all behind one link supervisor (Ethernet, 4G, ...)."""
    net = gw.cfg["network"]
    gw.links = board.network_links(net)
    gw.net = netsup.Supervisor(gw.links, gw.event, probe_urls=[d["url"] for d in gw.cfg["destinations"]],
                                 keepalive_s=net["keepalive_s"], failback_s=net["failback_s"])
    for d in gw.cfg["destinations"]:
        prof = ndrc.build(d, gw.cfg["enterprise"], gw.data_dir, board.CONFIG_DIR, gw.event,
                          getattr(board, "credentials", None))
        dest = delivery.Destination(prof, gw.store, d["batch"], gw.event, gw.net.is_up,
                                    board.clock_trusted, gw.net.batch_cap)
        # Imported only where a platform takes them; left out in crash-loop safe mode (module doc).
        if (d.get("notices") or d.get("coefficients")) and not gw.safe:
            from nengjian.uplink import centerinfo

            dest.info = centerinfo.CenterInfo(prof, d.get("notices") or (), d.get("coefficients"),
                                              gw.tce.set_platform if gw.tce else None, gw.event)
            gw.alarms.subscribe(dest.info.alarm)
        dest.upload_slot = bool(d.get("upload_slot"))
        _score(gw, dest)
        gw.destinations.append(dest)
    gw.net.on_change.append(gw._link_changed)


def _score(gw, dest):
    """The platform's quality score kept on the gateway (nengjian.uplink.quality), unless the site
    turns it off (quality.enabled): a fixed table per destination, about 2 KB for 16 items."""
    qc = gw.cfg.get("quality") or {}
    if qc.get("enabled") is False:
        return
    from nengjian.uplink import quality

    iv = gw.cfg["intervals"]
    dest.quality = quality.Quality(dest.name, [it["code"] for it in gw.cfg["items"]],
                                   gw.cfg["realtime_period_s"], "%s/quality-%s.bin" % (gw.data_dir, dest.name),
                                   gw.event, iv.get("daily", True), iv.get("monthly", True),
                                   qc.get("settle_s", quality.SETTLE_S))


def start_updater(gw, cfg, version):
    """Signed updates are possible only where the vendor's public key was provisioned."""
    key_path = board.CONFIG_DIR + "/ota_key.json"
    app_dir = getattr(board, "APP_DIR", None)
    if app_dir is None:
        return
    try:
        open(key_path).close()
    except OSError:
        return
    from nengjian.ota import resident

    unload("nengjian.ota")  # the boot path's package module: a check or a push imports it for its job
    oc = cfg["ota"]
    # Only the resident part stays loaded; a check or a push loads the updater for its job (resident doc).
    gw.updater = resident.Resident(app_dir, key_path, board.NAME, version, gw.event, oc["window_s"], oc["max_boots"])
    if oc.get("url") and not gw.safe:  # crash-loop safe mode: updates over USB only (module doc)
        ssl = None
        if oc["url"].startswith("https://"):
            from nengjian.net import tls as tlsctx

            try:
                ssl = tlsctx.build({"ca": oc["ca"]}, board.CONFIG_DIR)[0]
            except tlsctx.TlsSetupError as e:
                gw.event("ota", "update server not asked (TLS set-up: %s): updates over USB only" % e, "ota.no_tls")
                return
        gw.updater.schedule(oc["url"], oc["check_s"], ssl, gw.restart, oc.get("insecure"),
                            board.unique_id() if hasattr(board, "unique_id") else "")
        gw.ota_fetch = gw.updater
