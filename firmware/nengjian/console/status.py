"""The gateway's state, taken in one place: the console's `status` answer is the whole of it; the
periodic status line (nengjian.app) and the heartbeat's fields (nengjian.system.health) are picked
from it, so the three never disagree.

Owns: which figures describe the gateway and where each is read (counts, meters, destinations and
their backlog, the store, links and the network, the data volume, alarms), and the alarm texts a
crew reads. Taken in three sizes, for the heap of an ESP32 without PSRAM:

    s = summary(gw, gaps)  # every status line (STATUS_EVERY_MS): counts and short lists only
    s = beat(gw)           # every heartbeat: summary() plus links and the data volume
    st = full(con)         # a crew's `status` (the console's answer): all of it, with per-meter detail
    text = line(s)         # the status line's text

summary: {"readings", "durable_seq" (records stored), "heap_free" (after a collect),
          "destinations": the gateway's destinations (name, failing, last_error, stats: read, not copied),
          "backlog": [records waiting] for each of them, in the same order, "offline": [meter id],
          "gaps": the data-gap alarms [{"code", "level", "age_s", ...}] (nengjian.values.alarms),
          "store_alarms": {kind: text} (the store's own dict, not a copy)}
No value dicts, no stats, no link status (those are built only for a crew or a heartbeat), no copy
of what the gateway's objects already hold, and no comprehension (each allocates a function object):
a status line built from it allocates less than the one app.py used to build in place (measured on
the unix port: tests/firmware/console/test_snapshot.py). beat() adds "links": [link status dict] and
"flash": {"size", "free"} or None.

full()'s "alarms" are English texts; "alarm_codes" gives each one's code in the same order (a literal,
so one list slot per alarm: 8 bytes on the sim, 4 on an ESP32), which the laptop says from its
catalogue ("gw.CODE" or "gw.CODE.*" entries, whose English is the text's template).
full() is what `nengjian status` renders and the e2e tests read: its keys are an interface
(tests/firmware/console/test_snapshot.py pins them). A meter with memory work (refill, clock keeping)
has "memory" too: what nengjian.meters.memwatch keeps of it (Watch.status), read without loading the
modules that do the work.
"""

import gc
import os

from nengjian.core import timeutil

_NONE = ()  # the empty list of a quiet status line: shared, never allocated


def summary(gw, gaps=None):
    """The figures every status shows. gaps: the data-gap alarms as the caller just checked them (the
    status loop raises what is due first); None: the ones active now."""
    gc.collect()
    store = gw.store
    dests = gw.destinations
    backlog = []  # a loop, not a comprehension: that would allocate a function object every line
    for d in dests:
        backlog.append(store.backlog(d.name))
    offline = _NONE
    for p in gw.pollers:
        for m in p.meters:
            if m.offline:
                if offline is _NONE:
                    offline = []
                offline.append(m.id)  # type: ignore[attr-defined]  # a list by now, no longer _NONE
    return {"readings": gw.readings, "durable_seq": store.durable_seq,
            "heap_free": gc.mem_free(), "destinations": dests, "backlog": backlog, "offline": offline,
            "gaps": _active_gaps(gw) if gaps is None else gaps, "store_alarms": store.alarms}


def _active_gaps(gw):
    # Data-gap alarms (nengjian.values.alarms), where the application keeps them as gw.alarms.
    gaps = getattr(gw, "alarms", None)
    if gaps is None or not hasattr(gaps, "active"):
        return _NONE
    try:
        return gaps.active()
    except Exception as e:  # a bug there must not cost the crew its status
        return ["data-gap alarms unavailable: %s" % e]


def line(s):
    """The status log line: readings, stored, heap, backlog per destination, meters offline, alarms."""
    parts = ["readings=%d stored=%d heap_free=%d" % (s["readings"], s["durable_seq"], s["heap_free"])]
    backlog = s["backlog"]
    i = 0
    for d in s["destinations"]:  # by index: zip() or enumerate() would allocate on every line
        parts.append("%s:backlog=%d%s" % (d.name, backlog[i], "(failing)" if d.failing else ""))
        i += 1
    for mid in s["offline"]:
        parts.append(mid + ":offline")
    for a in s["gaps"]:
        parts.append(a if isinstance(a, str) else "%s:%s" % (a["level"].upper(), a["code"]))
    store_alarms = s["store_alarms"]
    if store_alarms:  # sorted() builds a list: not for the usual empty dict
        for k in sorted(store_alarms):
            parts.append("STORE:" + k)
    return " ".join(parts)


def beat(gw):
    """summary() with the links and the data volume: the heartbeat's snapshot."""
    s = summary(gw, _NONE)
    s["links"] = links(gw)
    s["flash"] = flash(gw.data_dir)
    return s


def links(gw, board=None):
    """Status of the application's network links (gw.links, objects with status()), or the board's
    link_status() where a board offers one."""
    out = []
    for link in getattr(gw, "links", None) or ():
        try:
            out.append(link.status())
        except Exception as e:  # a link driver's bug must not break the status
            out.append({"link": getattr(link, "name", "?"), "error": str(e)})
    if not out and board is not None and hasattr(board, "link_status"):
        out = board.link_status()
    return out


def flash(path):
    """{"size", "free"} of the volume holding path in bytes (free: what may still be written), or None
    where statvfs is missing or the volume reports no size."""
    try:
        s = os.statvfs(path)
    except (AttributeError, OSError, TypeError):
        return None
    if not s[2]:
        return None
    return {"size": s[0] * s[2], "free": s[0] * s[4]}


def uptime_s(con):
    sup = getattr(con.gw, "supervisor", None)
    return sup.uptime_ms // 1000 if sup is not None else con.uptime_s()


def max_free_block():
    """The largest block the heap can hand out now, in bytes: what fragmentation leaves of heap_free.
    MicroPython tells it only in micropython.mem_info()'s printout ("max free sz"), so it is found
    by trying: a binary search of bytearray sizes, each failure a collection. For a crew's `status`
    only, never on a beat."""
    gc.collect()
    lo, hi = 0, gc.mem_free() + 1
    while hi - lo > 16:
        mid = (lo + hi) // 2
        try:
            bytearray(mid)
            lo = mid
        except MemoryError:
            hi = mid
    gc.collect()
    return lo


def full(con):
    """The console's `status` answer: the whole snapshot (see the module doc)."""
    b = con.board
    gw = con.gw
    s = summary(gw) if gw is not None else None
    if s is None:
        gc.collect()
    st = {
        "t": "status",
        "firmware": con.version,
        "board": b.NAME,
        "gateway_id": text_id(b.unique_id()) if hasattr(b, "unique_id") else None,
        "uptime_s": uptime_s(con),
        "time": timeutil.now(),
        "heap_free": s["heap_free"] if s is not None else gc.mem_free(),
        "heap_used": gc.mem_alloc(),
        "heap_max_free": max_free_block(),
        "paths": {"config": b.CONFIG_DIR, "data": b.DATA_MOUNT},
    }
    alarms = []
    codes = []  # alarms[i]'s code (a literal: a qstr, one slot per alarm): the laptop's catalogue says it
    if con.safe_reason is not None:
        st["mode"] = "safe"
        st["safe_reason"] = con.safe_reason
        if getattr(con, "safe_why", None) is not None:
            st["safe"] = con.safe_why
        _add(alarms, codes, "safe", "safe mode: %s" % con.safe_reason)
    elif gw is None:
        st["mode"] = "starting"
    else:
        st["mode"] = "run"
        st["site"] = gw.cfg.get("site", {}).get("name")
        st["readings"] = s["readings"]  # type: ignore[index]  # s is None only when gw is
        if getattr(gw, "safe", 0):  # crash-loop safe mode (nengjian.app): running, with less
            st["crash_loop"] = gw.safe
            _add(alarms, codes, "crash_loop", "crash-loop safe mode, level %d" % gw.safe)
    st["links"] = links(gw, b)
    net = getattr(gw, "net", None)
    if net is not None:
        # A standby link that is down (4G while Ethernet carries the data) is no alarm; no link is.
        st["network"] = {"active": net.active.name if net.active else None, "up": net.is_up(),
                         "stats": net.stats}
        if not net.is_up():
            _add(alarms, codes, "no_link", "no network link up")
    else:
        for link in st["links"]:
            if not link.get("up", True):
                _add(alarms, codes, "link_down", "link %s down" % link.get("link", link.get("name", "?")))
    meters = []
    dests = []
    if s is not None:
        watches = getattr(gw, "watches", None)  # nengjian.meters.memwatch, where a meter has memory work
        for p in gw.pollers:
            for m in p.meters:
                meters.append({"id": m.id, "bus": p.bus.name, "offline": m.offline, "failures": m.failures,
                               "last_ok": m.last_ok, "last_error": m.last_error,
                               "unsupported": m.unsupported,
                               "values": dict((k, v.text()) for k, v in m.values.items()),
                               "stats": m.stats})
                if m.last_error:  # its kind, by which the laptop says it in Chinese (meters/poller.py)
                    meters[-1]["last_error_code"] = m.last_error_code
                if watches and m.id in watches:
                    meters[-1]["memory"] = watches[m.id].status()
                if m.offline:
                    _add(alarms, codes, "meter_offline", "meter %s offline: %s" % (m.id, m.last_error))
        store = gw.store
        backlog = s["backlog"]
        st["store"] = {"last_seq": store.last_seq, "durable_seq": s["durable_seq"],
                       "backlog": dict((d.name, n) for d, n in zip(s["destinations"], backlog)),
                       "stats": store.stats}
        if store.stats.get("dropped"):
            _add(alarms, codes, "store_full", "store full: %d records dropped" % store.stats["dropped"])
        for k in sorted(s["store_alarms"]):
            _add(alarms, codes, "store", "store %s: %s" % (k, s["store_alarms"][k]))
        last = 0
        for d, n in zip(s["destinations"], backlog):
            dests.append({"name": d.name, "failing": d.failing, "last_ok": d.stats["last_ok"],
                          "last_error": d.last_error, "backlog": n, "stats": d.stats})
            if d.last_error:
                dests[-1]["last_error_code"] = d.last_error_code
            last = max(last, d.stats["last_ok"])
            if d.failing:
                _add(alarms, codes, "dest_failing", "%s: delivery failing: %s" % (d.name, d.last_error))
            q = getattr(d, "quality", None)
            if q is not None:  # the platform's score as the gateway keeps it (nengjian.uplink.quality)
                try:  # its figures' code is loaded for the report: a full heap leaves them out, not the status
                    dests[-1]["quality"] = q.report()
                except MemoryError:
                    gc.collect()
                    _add(alarms, codes, "quality_left_out", "%s: quality figures left out (no heap for them now)"
                         % d.name)
                for text in q.alarms:
                    _add(alarms, codes, "quality", text)
        st["last_upload"] = last
        for a in s["gaps"]:
            if isinstance(a, str):
                _add(alarms, codes, "gap_unavailable", a)
            else:
                _add(alarms, codes, "gap", "%s: %s without valid data for %d h" % (
                    a.get("level"), a.get("code"), a.get("age_s", 0) // 3600))
        # calibrations due or expired, checks beyond class (nengjian.values.metrology)
        for text in getattr(gw, "metrology_alarms", ()):
            _add(alarms, codes, "cal", text)
    st["meters"] = meters
    st["destinations"] = dests
    vol = flash(b.DATA_MOUNT) if gw is not None else None
    if vol:
        st["flash"] = vol
        if vol["free"] * 10 < vol["size"]:
            _add(alarms, codes, "volume_full", "data volume %d%% full" % (100 - vol["free"] * 100 // vol["size"]))
    st["alarms"] = alarms
    st["alarm_codes"] = codes
    return st


def _add(alarms, codes, code, text):
    alarms.append(text)
    codes.append(code)


def text_id(v):
    """An id as text: printable bytes as they are (the sim's), others (a MAC) as aa:bb:cc:..."""
    if isinstance(v, (bytes, bytearray)):
        for b in v:
            if b < 33 or b > 126:
                return ":".join("%02x" % x for x in v)
        return bytes(v).decode()
    return v
