"""The platform's information channel, both ways, for one destination that opts in.

Owns: the small RAM queue of notices (data-gap alarms, heartbeats) for one platform, their JSON
bodies, sending them to the session's `centerInfoURL`, and reading the platform's standard-coal
coefficients from `centerInfoDownloadURL`. Both URLs are the session's, which the profile keeps only
when they pass its redirect rule (https on the destination's hosts, nengjian.uplink.ndrc); a refused
one is absent here, as if the platform had named none.

Why opt-in per destination (site config `notices`, `coefficients`): SPEC 3.1 names the two URLs
("optional base-data and configuration download / upload") but not the bodies of our alarm or
heartbeat, nor where a province puts its coefficients (Yunnan's `convertRation`). A platform that
does not expect them must never get them. What we send, documented for the platform's integrator:

    {"deviceId": ..., "enterpriseCode": ..., "infoType": "alarm" | "heartbeat",
     "infoTime": "yyyy-MM-dd HH:mm:ss" (CST), "info": {...}}
    alarm info:     {"dataCode", "level": "warning" | "alarm", "state": "raised" | "cleared",
                     "lastValid": CST end of the last valid data, "gapHours"}
    heartbeat info: the heartbeat's fields (uptime_s, heap_free, flash_free, backlog.<dest>,
                    link.<name>, rssi.<name>, complete.<dest> and timely.<dest>: this month's
                    completeness and timeliness in %, nengjian.uplink.quality)

and what we read back: the answer's `data` list, taking each entry that has an energy code
(`energyCode`, 4 digits) and a `convertRation` (kgce per base unit of that energy).

Notices are best effort, by design: the ledger on the gateway is the record (pulled by the crew);
a heartbeat superseded by a newer one is worthless, so the queue keeps the newest QUEUE_MAX and
one failed send waits for the next delivery round. Imported only where a destination opts in.
"""

import json

from nengjian.core import log, timeutil
from nengjian.core.compat import ticks_add, ticks_diff, ticks_ms

QUEUE_MAX = 8
HOLD_MS = 60000  # after a failed exchange: the data keep their pace, the info channel waits


class CenterInfo:
    def __init__(self, profile, notices=(), coefficients=False, on_coefficient=None, event=None):
        self.profile = profile
        self.kinds = tuple(notices)
        self.want_coefficients = bool(coefficients)
        self.on_coefficient = on_coefficient  # fn(energy code, kgce per base unit)
        self._event = event
        self.queue = []
        self._hold = None  # ticks before which nothing is tried (after a failure)
        self._coeff_device = None  # deviceId the coefficients were read for
        self.stats = {"sent": 0, "dropped": 0, "coefficients": 0}

    # ---- fed by the app (alarms.subscribe, health.Heartbeat.subscribe)
    def alarm(self, change):
        if "alarm" not in self.kinds:
            return
        since = change["since"]
        self._put("alarm", {"dataCode": change["code"], "level": change["level"], "state": change["kind"],
                            "lastValid": timeutil.cst_text(since),
                            "gapHours": max(0, change["at"] - since) // 3600}, change["at"])

    def heartbeat(self, fields):
        if "heartbeat" not in self.kinds:
            return
        self.queue = [q for q in self.queue if q[0] != "heartbeat"]  # only the newest is worth sending
        self._put("heartbeat", fields, timeutil.now())

    def _put(self, kind, info, at):
        if len(self.queue) >= QUEUE_MAX:
            self.queue.pop(0)
            self.stats["dropped"] += 1
        self.queue.append((kind, info, at))

    def due(self):
        if self._hold is not None:
            if ticks_diff(self._hold, ticks_ms()) > 0:
                return False
            self._hold = None
        s = self.profile.session
        return bool(self.queue) or (self.want_coefficients and s is not None and s.get("deviceId") != self._coeff_device)

    # ---- called by the destination's delivery task, with a session in place
    async def step(self):
        """Send the oldest notice, or read the coefficients once per session. Returns an ndrc Result;
        after RETRY the channel holds off for HOLD_MS (it never sets the pace of the data)."""
        from nengjian.net import http
        from nengjian.uplink import ndrc

        s = self.profile.session
        if "centerInfoURL" not in s:  # kept by firmware that did not store the info URLs
            self.profile.forget_session()
            return ndrc.Result(ndrc.RETRY, "session predates the info channel: registering again")
        try:
            if self.queue:
                r = await self._send(s)
            else:
                r = await self._coefficients(s)
        except http.HttpError as e:
            r = ndrc.Result(ndrc.RETRY, str(e))
        except ndrc.Stop as e:
            r = e.args[0]
        if r.kind == ndrc.RETRY:
            self._hold = ticks_add(ticks_ms(), HOLD_MS)
            log.warn("uplink", "%s: info channel: %s" % (self.profile.name, r.reason))
        return r

    async def _send(self, s):
        from nengjian.uplink import ndrc

        kind, info, at = self.queue[0]
        url = s.get("centerInfoURL")
        if not url:
            self.queue = []
            self._note("the platform gave no centerInfoURL, or one refused (see the security events): %s notices "
                       "are not sent to it" % "/".join(self.kinds), "uplink.no_info_url")
            return ndrc.Result(ndrc.OK)
        body = json.dumps({"deviceId": s["deviceId"], "enterpriseCode": self.profile.enterprise["code"],
                           "infoType": kind, "infoTime": timeutil.cst_text(at), "info": info}).encode()
        status, _ans, why = await self.profile.exchange(url, body)
        if self.queue and self.queue[0][2] == at and self.queue[0][0] == kind:
            self.queue.pop(0)
        if not why:
            self.stats["sent"] += 1
            log.info("uplink", "%s: %s notice accepted" % (self.profile.name, kind))
            return ndrc.Result(ndrc.OK)
        if status >= 500:
            self.queue.insert(0, (kind, info, at))  # the platform is unwell, not the notice
            return ndrc.Result(ndrc.RETRY, "%s notice: %s" % (kind, why))
        self.stats["dropped"] += 1
        self._note("%s notice refused, not resent: %s" % (kind, why), "uplink.notice_refused")
        return ndrc.Result(ndrc.OK)

    async def _coefficients(self, s):
        from nengjian.uplink import ndrc

        self._coeff_device = s.get("deviceId")
        url = s.get("centerInfoDownloadURL")
        if not url:
            self._note("the platform gave no centerInfoDownloadURL, or one refused (see the security events): its "
                       "coefficients cannot be read", "uplink.no_download_url")
            return ndrc.Result(ndrc.OK)
        _status, ans, why = await self.profile.exchange(url, json.dumps({"deviceId": s["deviceId"]}).encode())
        if why:
            self._coeff_device = None  # try again after the hold
            return ndrc.Result(ndrc.RETRY, "coefficient download: %s" % why)
        n = 0
        for entry in ans.get("data") or ():
            if not isinstance(entry, dict):
                continue
            code, ratio = entry.get("energyCode"), entry.get("convertRation")
            if not (isinstance(code, str) and len(code) == 4 and code.isdigit()):
                continue
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float, str)):
                continue
            if self.on_coefficient is not None:
                try:
                    self.on_coefficient(code, ratio)
                    n += 1
                except (ValueError, TypeError) as e:
                    self._note("platform coefficient for %s unusable (%r): %s" % (code, ratio, e), "uplink.coefficient_unusable")
        self.stats["coefficients"] = n
        log.info("uplink", "%s: %d coefficient(s) from the platform" % (self.profile.name, n))
        return ndrc.Result(ndrc.OK)

    def _note(self, text, code):
        if self._event is not None:
            self._event("uplink", "%s: %s" % (self.profile.name, text), code)
