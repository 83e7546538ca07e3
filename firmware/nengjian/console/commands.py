"""The console's commands (see nengjian.console.protocol for the protocol). Loaded when a request comes and
dropped again after a quiet spell, so the gateway does not carry their code in RAM between crew
visits. Every function takes the Console first.
"""

import asyncio
import gc
import json
import os
import sys
from binascii import a2b_base64, b2a_base64, crc32, hexlify

try:
    import hashlib
except ImportError:  # pragma: no cover - every supported port has it
    hashlib = None

from nengjian.console import status
from nengjian.core import log, records, statefile
from nengjian.core.compat import ticks_ms, unload

CHUNK = 384  # bytes of file per data answer: 512 base64 characters, short enough for any console
GET_MAX = 65536
EVENT_WINDOW = 1000  # records scanned per step when looking back for events
_BUF = bytearray(CHUNK)

HELP = (
    "nengjian console: type a command and Enter (Ctrl-C stops the application and opens the REPL)",
    "  status               state of the gateway, one JSON line",
    "  events N             the last N ledger events",
    "  files                files a pull copies",
    "  get PATH OFF LEN     file bytes as base64 lines (data volume and config JSON, secrets masked)",
    "  sha256 PATH [LEN]    hash of a file (or of its first LEN bytes)",
    "  put PATH SIZE SHA256 write a config file (then +BASE64 lines; trust anchors: hold the service button)",
    "  scan JSON            search the RS-485 buses for meters",
    "  visit TEXT|JSON      record an inspection visit in the ledger (who, checked, done, photos' sha256)",
    "  commission TEXT      record the site's commissioning in the ledger (nengjian commission)",
    "  check JSON           a crew's performance check: meter, point, displayed (the meter's display)",
    "  calibrate JSON       a meter's new calibration: meter, certificate, date, due (into site.json)",
    "  manual JSON          store a manual entry (coal/oil delivery): code, stat_type, stat_start, value, scope",
    "  ota [SIZE SHA256]    update state; with SIZE: receive a signed bundle (+BASE64 lines), install on trial",
    "  heap [map]           the heap's figures (micropython.mem_info: largest free block in GC blocks)",
    "  reset                reset the board",
    "  help                 this list",
)
COMMANDS = ("status", "events", "files", "get", "sha256", "put", "scan", "visit", "commission", "check", "calibrate",
            "manual", "ota", "reset", "help")


async def run(con, rid, cmd, args, text):
    """Carry out one request; raises IndexError/ValueError on bad arguments."""
    if cmd == "help":
        for h in HELP:
            sys.stdout.write(h + "\n")
        con.answer(rid, {"commands": COMMANDS}, True)
    elif cmd == "status":
        con.answer(rid, status.full(con), True)
    elif cmd == "events":
        await _events(con, rid, int(args[0]) if args else 20)
    elif cmd == "files":
        _files(con, rid)
    elif cmd == "get":
        await _get(con, rid, args[0], int(args[1]), int(args[2]))
    elif cmd == "sha256":
        await _sha256(con, rid, args[0], int(args[1]) if len(args) > 1 else -1)
    elif cmd == "put":
        _start_put(con, rid, args[0], int(args[1]), args[2])
    elif cmd == "+":
        _put_data(con, rid, text)
    elif cmd == "scan":
        await _scan(con, rid, text or "{}")
    elif cmd == "visit":
        _visit(con, rid, text)
    elif cmd == "commission":
        _commission(con, rid, text)
    elif cmd == "check":
        _check(con, rid, text)
    elif cmd == "calibrate":
        _calibrate(con, rid, text)
    elif cmd == "manual":
        _manual(con, rid, text)
    elif cmd == "ota":
        _ota(con, rid, args)
    elif cmd == "reset":
        con.answer(rid, {"reset": True}, True)
        await asyncio.sleep_ms(100)
        _reset(con)
    else:
        con.fail(rid, "unknown command %r (try help)" % cmd)


def _b64(data):
    return b2a_base64(data)[:-1].decode()


# ---- ledger
async def _events(con, rid, n):
    gw = con.gw
    if gw is None:
        con.fail(rid, "no store open (mode %s)" % ("safe" if con.safe_reason else "starting"))
        return
    store = gw.store
    store.flush()
    hi = store.durable_seq
    # Events live in the main ring; older ones may have been moved to history.
    floor = store._oldest_seq() if hasattr(store, "_oldest_seq") else 1
    found = []
    seen = [0, 0]  # records seen in this window, window end

    def visit(seq, rec):
        if seq > seen[1]:
            return True
        seen[0] += 1
        if rec[0] == records.EVENT:
            found.append((seq, rec))
        return False

    got = []
    while hi >= floor and len(got) < n:
        lo = max(floor, hi - EVENT_WINDOW + 1)
        seen[0] = 0
        seen[1] = hi
        del found[:]
        store.scan(lo, visit)
        got = found[:] + got
        if not seen[0]:
            break
        hi = lo - 1
        await asyncio.sleep_ms(0)
    if len(got) < n and hasattr(store, "history"):
        older = []

        def hist(seq, rec):
            if rec[0] == records.EVENT:
                older.append((seq, rec))
                if len(older) > n:
                    older.pop(0)

        store.history(hist)
        got = older + got
    got = got[-n:] if n > 0 else []
    for seq, rec in got:
        ev = {"t": "event", "seq": seq, "ts": rec[1], "kind": rec[2], "text": rec[3]}
        if len(rec) > 4:
            ev["code"] = rec[4]
        con.answer(rid, ev)
        await asyncio.sleep_ms(0)
    con.answer(rid, {"count": len(got)}, True)


# ---- files
def _pull_set(con):
    out = []
    gw = con.gw
    data = gw.data_dir if gw is not None else None
    if gw is not None:
        gw.store.flush()
        root = gw.store.root
        for name in sorted(os.listdir(root)):
            out.append((root + "/" + name, "store"))
    if data is not None:
        for name in sorted(os.listdir(data)):
            if name.startswith("session-") and name.endswith(".json"):
                out.append((data + "/" + name, "session"))
    cdir = con.board.CONFIG_DIR
    try:
        names = sorted(os.listdir(cdir))
    except OSError:
        names = []
    from nengjian.console import guard

    for name in names:
        if name in guard.READABLE:  # what `get` shows: never a key or certificate file
            out.append((cdir + "/" + name, "config"))
    return out


def _files(con, rid):
    count = 0
    for path, kind in _pull_set(con):
        try:
            size = os.stat(path)[6]
        except OSError:
            continue
        con.answer(rid, {"t": "file", "path": path, "size": size, "kind": kind})
        count += 1
    con.answer(rid, {"count": count, "gateway_id": status.text_id(con.board.unique_id())
                      if hasattr(con.board, "unique_id") else None}, True)


def _view(con, rid, path):
    """The file as the console may show it (nengjian.console.guard), or None once refused."""
    from nengjian.console import guard

    try:
        return guard.view(con.board, path)
    except guard.Refused as e:
        con.fail(rid, "%s: refused: %s" % (path, e))
        return None


async def _get(con, rid, path, off, length):
    if off < 0 or length < 0:
        raise ValueError("negative offset or length")
    length = min(length, GET_MAX)
    buf = _BUF
    mv = memoryview(buf)
    sent = 0
    f = _view(con, rid, path)
    if f is None:
        return
    with f:
        size = f.length
        if f.masker is None:
            f.seek(off)
        else:  # masked as it goes: read up to OFF, giving the scheduler back between pieces
            while f.pos < off and f.readinto(mv[:min(CHUNK, off - f.pos)]):
                await asyncio.sleep_ms(0)
        while sent < length:
            want = min(CHUNK, length - sent)
            n = f.readinto(mv[:want])
            if not n:
                break
            chunk = mv[:n]
            con.answer(rid, {"t": "data", "off": off + sent, "n": n, "crc": crc32(chunk), "b64": _b64(chunk)})
            sent += n
            await asyncio.sleep_ms(0)
    con.answer(rid, {"n": sent, "size": size}, True)


async def _sha256(con, rid, path, length):
    h = hashlib.sha256()
    mv = memoryview(_BUF)
    done = 0
    f = _view(con, rid, path)
    if f is None:
        return
    with f:
        size = f.length
        if length < 0:
            length = size
        while done < length:
            n = f.readinto(mv[:min(CHUNK, length - done)])
            if not n:
                break
            h.update(mv[:n])
            done += n
            if f.masker is not None or not done % (CHUNK * 16):
                await asyncio.sleep_ms(0)
    con.answer(rid, {"sha256": hexlify(h.digest()).decode(), "n": done, "size": size}, True)


# ---- the bus scanner (nengjian.meters.scan), through the gateway's own Bus when it has one
async def _scan(con, rid, args_json):
    gc.collect()
    try:
        from nengjian.meters import scan
    except ImportError:
        con.fail(rid, "this firmware has no bus scanner")
        return
    opts = json.loads(args_json)
    port = opts.pop("port", "rs485_0")
    bus = None
    gw = con.gw
    if gw is not None:
        names = [b["name"] for b in gw.cfg["buses"] if b["port"] == port]
        for p in gw.pollers:
            if p.bus.name in names:
                bus = p.bus  # the scan takes its lock per probe: the pollers wait in between
    factory = None
    if bus is None:
        factory = con.board.rs485_ports().get(port)
        if factory is None:
            con.fail(rid, "board %s has no port %r" % (con.board.NAME, port))
            return
    try:
        finds = await scan.run(factory, bus=bus,
                               on_find=lambda f: con.answer(rid, {"t": "find", "find": f}),
                               on_progress=lambda p: con.answer(rid, {"t": "progress", "progress": p}), **opts)
        con.answer(rid, {"found": len(finds), "probes": scan.probes, "port": port}, True)
    finally:
        unload("nengjian.meters.scan")  # a crew's scan is a one-off: its code goes with it


# ---- writing config files
def _start_put(con, rid, path, size, sha):
    if size < 0 or size > 65536 or len(sha) != 64:
        con.fail(rid, "put needs SIZE (0..65536) and a 64-digit sha256")
        return
    from nengjian.console import guard

    try:
        path, kind = guard.writable(con.board, path, sha)
    except guard.Refused as e:
        con.fail(rid, "put %s refused: %s" % (path, e))
        return
    _open_put(con, rid, path, size, sha, None, kind)


def _open_put(con, rid, path, size, sha, done, kind=None):
    """Receive SIZE bytes for PATH, written beside it (nengjian.core.statefile.begin): only once their
    sha256 matches (and, for a config file of `kind`, nengjian.console.guard lets them) do they replace
    PATH (commit), then done(con, rid, PATH) takes them (None: the answer says PATH is written).
    Anything else leaves PATH as it was."""
    f = statefile.begin(path, "wb")
    con._put = [path, size, sha.lower(), f, hashlib.sha256(), 0, done, kind]
    con._put_ms = ticks_ms()
    _put_check(con, rid)


def _put_data(con, rid, b64):
    p = con._put
    if p is None:
        con.fail(rid, "no put in progress")
        return
    try:
        data = a2b_base64(b64)
    except ValueError:
        con._abort_put()
        con.fail(rid, "put: bad base64: nothing written")
        return
    if p[5] + len(data) > p[1]:
        con._abort_put()
        con.fail(rid, "put: more than the announced %d bytes: nothing written" % p[1])
        return
    p[3].write(data)
    p[4].update(data)
    p[5] += len(data)
    con._put_ms = ticks_ms()
    _put_check(con, rid)


def _put_check(con, rid):
    path, size, sha, f, h, have, done, kind = con._put
    if have < size:
        con.answer(rid, {"have": have}, True)
        return
    f.close()
    con._put = None
    got = hexlify(h.digest()).decode()
    if got != sha:
        statefile.abandon(path)
        con.fail(rid, "put: sha256 of what arrived is %s, not %s: nothing written" % (got, sha))
        return
    if kind is not None:
        from nengjian.console import guard

        try:
            guard.committable(con.board, path, kind)
        except guard.Refused as e:
            statefile.abandon(path)
            con.fail(rid, "put %s refused: %s: nothing written" % (path, e))
            return
        except Exception:  # out of memory for the check: nothing replaced, the protocol reports it
            statefile.abandon(path)
            raise
    statefile.commit(path)
    if done is not None:
        done(con, rid, path)
        return
    log.info("console", "%s written (%d bytes)" % (path, size))
    con.answer(rid, {"have": have, "written": path,
                      "applies": "within 5 s" if con.safe_reason is not None else "after reset"}, True)


def _reset(con):
    gw = con.gw
    if gw is not None:
        gw.store.close()
        if getattr(gw, "boot_guard", None) is not None:
            gw.boot_guard.planned()  # a crew's reset is no crash
    con.board.reset()


# ---- signed updates (nengjian.ota.updater): the gateway's Updater does every check
OTA_STATE = ("active", "version", "state", "boots", "max_boots", "window_s", "previous", "previous_version",
             "failure")


def _ota(con, rid, args):
    # The updater is loaded for each step and dropped after it (nengjian.ota.resident).
    res = getattr(con.gw, "updater", None) if con.gw is not None else None
    if res is None:
        con.fail(rid, "no signed updates here: %s" % (
            "the application is not running" if con.gw is None else
            "board %s has no app slots or %s/ota_key.json (the vendor key) is missing" % (
                con.board.NAME, con.board.CONFIG_DIR)))
        return
    try:
        _ota_step(con, rid, args, res.load())
    finally:
        res.drop()


def _ota_step(con, rid, args, up):
    if not args:
        p = up.state()
        st = dict((k, p.get(k)) for k in OTA_STATE)
        st["running"] = con.version
        st["min_version"] = up.minimum(p)  # older bundles are refused unless signed as a downgrade
        con.answer(rid, st, True)
        return
    size, sha = int(args[0]), args[1]
    if len(sha) != 64:
        con.fail(rid, "ota needs SIZE and a 64-digit sha256")
        return
    from nengjian.ota import OtaError

    try:
        path = up.incoming(size)
    except OtaError as e:
        con.fail(rid, "update refused: %s" % e)
        return
    _open_put(con, rid, path, size, sha, _ota_install)


def _ota_install(con, rid, path):
    res = con.gw.updater
    up = None
    try:
        try:
            up = res.load()
        except MemoryError:  # no room even for the updater's code: left for the check at the reset
            pass
        _ota_installed(con, rid, path, res, up)
    finally:
        up = None
        res.drop()


def _ota_installed(con, rid, path, res, up):
    from nengjian.ota import OtaError

    gw = con.gw
    try:
        if up is None:
            raise MemoryError("no room for the updater")
        man = up.install_file(path)
    except OtaError as e:
        res.discard(path)
        con.fail(rid, "update refused: %s" % e)
        return
    except MemoryError:
        # A heap fragmented by weeks of running: the check runs at the restart instead, before the
        # application fills the heap (nengjian.ota.install_pending). The crew's reset applies it.
        try:
            res.defer(path)
        except (OtaError, OSError) as e:
            res.discard(path)
            con.fail(rid, "update not installed: out of memory to check it, and it cannot be left for the "
                          "restart (%s)" % e)
            return
        con.answer(rid, {"deferred": True, "applies": "checked and installed at the reset"}, True)
        return
    finally:
        gw.store.flush()  # the ledger's install or refusal is on flash before a reset
    res.discard(path)
    p = up.state()
    con.answer(rid, {"installed": man["version"], "slot": p.get("active"), "state": p.get("state"),
                     "files": len(man["files"]), "verify_ms": up.last_verify_ms,
                     "applies": "after reset"}, True)


def _commission(con, rid, text):
    """The site's commissioning (`nengjian commission`): the first entry of the gateway's ledger."""
    gw = con.gw
    text = (text or "").strip()
    if gw is None or not text:
        con.fail(rid, "commission needs a running application and a text")
        return
    gw.event("commission", text[:200], "commission")
    gw.store.flush()
    con.answer(rid, {"recorded": True, "seq": gw.store.durable_seq}, True)


def _running(con, rid, needs):
    """The application (con.gw); None once the crew is told it is not running and what that costs them."""
    if con.gw is None:
        con.fail(rid, "the application is not running (safe mode): " + needs)
    return con.gw


def _visit(con, rid, text):
    """The 30-day inspection the regulation asks for, kept in the gateway's own ledger."""
    gw = _running(con, rid, "nothing to record into")
    if gw is None:
        return
    text = (text or "").strip()
    photos = ()
    vid = ""
    if text.startswith("{"):  # {"id", "who", "checked", "done", "photos": [[sha256, name], ...]}
        try:
            req = json.loads(text)
            vid = str(req["id"])[:24]
            text = "%s: %s" % (req["who"], req["checked"])
            if req.get("done"):
                text += "; done: %s" % req["done"]
            photos = req.get("photos") or ()
            for p in photos:
                if len(p[0]) != 64:
                    raise ValueError("a photo's sha256 is 64 hex digits")
            text = "%s [visit %s, %d photo(s)]" % (text[:160], vid, len(photos))
        except (ValueError, KeyError, TypeError, IndexError) as e:
            con.fail(rid, "visit wants JSON with id, who, checked, done, photos [[sha256, name]] (%s)" % e)
            return
    if not text:
        con.fail(rid, "visit needs a text: who came and what was checked")
        return
    gw.event("visit", text[:200], "visit")
    for p in photos:  # one event each: a hash and a name fit any record, a list of them might not
        gw.event("photo", "visit %s photo %s %s" % (vid, p[0], str(p[1])[:60]), "visit.photo")
    gw.store.flush()
    con.answer(rid, {"recorded": True, "seq": gw.store.durable_seq, "photos": len(photos)}, True)


def _check(con, rid, text):
    """A crew's performance check: the meter's display beside the gateway's last reading of the point."""
    gw = _running(con, rid, "no readings to compare")
    if gw is None:
        return
    try:
        req = json.loads(text or "")
        mid, point, shown = str(req["meter"]), str(req["point"]), str(req["displayed"])
    except (ValueError, KeyError, TypeError) as e:
        con.fail(rid, "check wants JSON with meter, point, displayed (%s)" % e)
        return
    meter = None
    for p in gw.pollers:
        for m in p.meters:
            if m.id == mid:
                meter = m
    if meter is None:
        con.fail(rid, "no meter %r in this site's config" % mid)
        return
    from nengjian.core import timeutil
    from nengjian.values import metercheck

    try:
        ans = gw.metrology_run(lambda mt: metercheck.check(mt, mid, point, meter.values.get(point), meter.last_ok,
                                                           shown, timeutil.now(), str(req.get("who", ""))[:40]))
    except metercheck.MetrologyError as e:
        con.fail(rid, str(e))
        return
    finally:
        unload("nengjian.values.metercheck")  # a crew's check is a one-off: its code goes with it
    gw.store.flush()
    ans["seq"] = gw.store.durable_seq
    con.answer(rid, ans, True)


def _calibrate(con, rid, text):
    """A meter's new calibration (检定) certificate, from a crew's visit: a ledger event, the record in
    site.json (so it holds after a reset and a pull shows it), the running config's copy, and the
    calibration alarms checked again at once, so a due or expired alarm clears now."""
    gw = _running(con, rid, "nothing to record into")
    if gw is None:
        return
    try:
        req = json.loads(text or "")
        mid = str(req["meter"])
        cert, date, due = req["certificate"], req["date"], req["due"]
    except (ValueError, KeyError, TypeError) as e:
        con.fail(rid, "calibrate wants JSON with meter, certificate, date, due (%s)" % e)
        return
    meter = None
    for m in gw.cfg["meters"]:
        if m["id"] == mid:
            meter = m
    if meter is None:
        con.fail(rid, "no meter %r in this site's config" % mid)
        return
    from nengjian.core import timeutil
    from nengjian.values import metrology

    trusted = con.board.clock_trusted()
    now = timeutil.now()
    try:  # an untrusted clock cannot say what is in the future: the crew's laptop checked that
        rec = metrology.new_record(cert, date, due, metrology.cst_day(now) if trusted else None)
    except ValueError as e:
        unload("nengjian.values.metrology")
        con.fail(rid, "calibrate %s refused: %s" % (mid, e))
        return
    why = _store_calibration(con.board.CONFIG_DIR + "/site.json", mid, rec)
    if why:
        unload("nengjian.values.metrology")
        con.fail(rid, "calibrate %s: %s" % (mid, why))
        return
    meter["calibration"] = rec
    gw.metrology_watch = True
    gw.event("calibration", ("meter %s calibrated %s, due %s (certificate %s) [visit %s] by %s" % (
        mid, date, due, cert, str(req.get("visit", ""))[:24], str(req.get("who", ""))[:40]))[:200], "calibration")
    alarm = None
    if trusted:  # else the daily check, once the clock is set
        alarm = gw.metrology_run(lambda mt: _recheck(mt, mid, now))
    unload("nengjian.values.metrology")
    gw.store.flush()
    con.answer(rid, {"recorded": True, "seq": gw.store.durable_seq, "meter": mid, "calibration": rec,
                     "alarm": alarm, "checked": trusted}, True)


def _store_calibration(path, mid, rec):
    """Put meter `mid`'s calibration record into the site config at `path`, atomically; None once
    done, else why not (the file is then as it was)."""
    try:
        with open(path) as f:
            doc = json.load(f)
        found = False
        for m in doc["meters"]:
            if m.get("id") == mid:
                m["calibration"] = rec
                found = True
        if not found:
            return "%s has no meter %r (changed since the boot?): not updated" % (path, mid)
        with statefile.begin(path, "w") as f:
            json.dump(doc, f)
        statefile.commit(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        statefile.abandon(path)
        return "%s not updated: %s" % (path, e)
    return None


def _recheck(mt, mid, now):
    """The calibration alarms checked again with the new record; the meter's alarm text, or None."""
    mt.check_calibrations(now)
    a = mt.alarms.get("cal:" + mid)
    return a[1] if a else None


def _manual(con, rid, text):
    """A value no meter measures, entered by the crew: stored as a VALUE with inputType 5."""
    gw = _running(con, rid, "manual entries need the store")
    if gw is None:
        return
    import json

    from nengjian.values import manual

    try:
        req = json.loads(text or "")
        seq, _rec = manual.enter(gw.store, req["code"], int(req["stat_type"]), req["stat_start"], str(req["value"]),
                                 int(req.get("scope", 1)), observe=gw.observe_value, who=str(req.get("who", "")))
    except manual.ManualError as e:
        con.fail(rid, str(e))
        return
    except (ValueError, KeyError, TypeError) as e:
        con.fail(rid, "manual wants JSON with code, stat_type, stat_start, value, scope (%s)" % e)
        return
    gw.store.flush()
    con.answer(rid, {"stored": True, "seq": seq}, True)
