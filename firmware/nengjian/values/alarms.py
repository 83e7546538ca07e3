"""Data-gap alarms: the gateway itself knows when a data item has had no valid data for too long.

Owns: per online data item, the end of the last period it sent a valid value for (or, before any,
when the gateway started watching it); the two levels - a warning after `alarms.warn_s` (24 h: the
24-hour fault-response rule) and an alarm after `alarms.alarm_s` (3 days: a major fault to be
reported with cause and fix, SPEC 1); raising, escalating and clearing them as ledger EVENTs of
kind "alarm", each with a stable code (`gap.*`: the third argument of `event`, kept in the record so
the laptop says it in the crew's language from its catalogue; the gateway keeps only the English); the list of active alarms for the console; and a hook for platform profiles that
can carry alarms (subscribe). Which platforms get them is the profile's business.

Valid data means a VALUE with valid = true of any statType for the item's code: what the platform
counts. Times are the gateway's UTC clock; `check` is called only while the clock is trusted (the
caller's guard), and an age below zero (clock behind the data) raises nothing. The state is kept
in a small file (nengjian.core.statefile; written when an alarm changes and at most hourly otherwise) so a
reboot neither forgets a gap nor raises an alarm a second time; a gateway that was off for three
days raises the alarm at its first check and clears it when data returns, leaving both in the ledger.
"""

from nengjian.core import records, statefile, timeutil

WARNING = "warning"
ALARM = "alarm"
SAVE_EVERY_S = 3600


def _span(stat, start, period):
    if stat == records.REALTIME:
        return period
    if stat == records.DAY:
        return 86400
    if stat == records.MONTH:
        from nengjian.values.intervals import next_month

        return next_month(start) - start
    return 365 * 86400


class Alarms:
    def __init__(self, codes, period_s, event, opts=None, path=None, now=None):
        opts = opts or {}
        self.warn_s = opts.get("warn_s", 86400)
        self.alarm_s = opts.get("alarm_s", 3 * 86400)
        self.period = period_s
        self._event = event
        self._path = path
        self._listeners = []
        self.codes = list(codes)
        self.last = {}  # code -> UTC seconds up to which valid data exists
        self.level = {}  # code -> WARNING / ALARM while active
        self.raised_at = {}
        self._saved_at = 0
        self._load()
        start = timeutil.now() if now is None else now
        changed = False
        for c in self.codes:
            if c not in self.last:
                self.last[c] = start
                changed = True
        for c in list(self.last):
            if c not in self.codes:
                del self.last[c]
                self.level.pop(c, None)
                self.raised_at.pop(c, None)
                changed = True
        if changed:
            self._save(start)

    def subscribe(self, fn):
        """fn(change) on every raise, escalation and clear; change is a dict: kind ('raised' or
        'cleared'), code, level, since (end of the last valid data), at (now)."""
        self._listeners.append(fn)

    def observe(self, rec, now=None):
        """Take note of a stored VALUE (call for every one)."""
        if rec[0] != records.VALUE or not rec[records.V_VALID]:
            return
        code = rec[records.V_CODE]
        if code not in self.last:
            return
        end = rec[records.V_STAT_START] + _span(rec[records.V_STAT_TYPE], rec[records.V_STAT_START], self.period)
        if end <= self.last[code]:
            return
        since = self.last[code]
        self.last[code] = end
        lvl = self.level.pop(code, None)
        if lvl:
            at = rec[records.V_TS] if now is None else now
            self.raised_at.pop(code, None)
            self._event("alarm", "CLEARED %s %s: valid data again for %s, after %s without" % (
                lvl, code, timeutil.cst_text(rec[records.V_STAT_START]), _dur(max(0, rec[records.V_STAT_START] - since))),
                "gap.cleared")
            self._tell("cleared", code, lvl, since, at)
            self._save(at)

    def check(self, now):
        """Raise or escalate what is due at UTC seconds `now`. Returns the active alarms."""
        changed = False
        for code in self.codes:
            age = now - self.last[code]
            want = ALARM if age >= self.alarm_s else WARNING if age >= self.warn_s else None
            have = self.level.get(code)
            if want is None or want == have or (have == ALARM and want == WARNING):
                continue
            self.level[code] = want
            self.raised_at[code] = now
            if have:
                self._event("alarm", "ESCALATED to %s %s: no valid data for %s (since %s)" % (
                    want, code, _dur(age), timeutil.cst_text(self.last[code])), "gap.escalated")
            else:
                self._event("alarm", "RAISED %s %s: no valid data for %s (since %s)" % (
                    want, code, _dur(age), timeutil.cst_text(self.last[code])), "gap.raised")
            self._tell("raised", code, want, self.last[code], now)
            changed = True
        if changed or now - self._saved_at >= SAVE_EVERY_S:
            self._save(now)
        return self.active(now)

    def active(self, now=None):
        """[{'code', 'level', 'since', 'age_s', 'raised_at'}] of the alarms now active, worst first."""
        now = timeutil.now() if now is None else now
        out = []
        for code, lvl in self.level.items():
            out.append({"code": code, "level": lvl, "since": self.last[code], "age_s": now - self.last[code],
                        "raised_at": self.raised_at.get(code)})
        out.sort(key=lambda a: (a["level"] != ALARM, -a["age_s"]))
        return out

    def _tell(self, kind, code, level, since, at):
        change = {"kind": kind, "code": code, "level": level, "since": since, "at": at}
        for fn in self._listeners:
            try:
                fn(change)
            except Exception as e:  # a profile's hook must not stop the alarms
                self._event("alarm", "hook failed on %s %s: %r" % (kind, code, e), "gap.hook")

    def _save(self, now):
        self._saved_at = now
        if self._path:
            statefile.save(self._path, {"last": self.last, "level": self.level, "raised_at": self.raised_at}, 1,
                           lambda why: self._event("alarm", "alarm state not saved: %s" % why, "gap.not_saved"))

    def _load(self):
        if not self._path:
            return
        doc = statefile.load(self._path, 1, self._unreadable)
        if doc is None:
            return
        try:
            last, level, raised_at = doc["last"], doc["level"], doc.get("raised_at") or {}
            if not (isinstance(last, dict) and isinstance(level, dict) and isinstance(raised_at, dict)):
                raise TypeError("not a mapping")
        except (KeyError, TypeError) as e:
            self._unreadable(repr(e))
            return
        self.last, self.level, self.raised_at = last, level, raised_at

    def _unreadable(self, why):
        self._event("alarm", "alarm state unreadable (%s): watching every item from now" % why, "gap.unreadable")

def _dur(s):
    if s >= 86400:
        return "%d d %d h" % (s // 86400, s % 86400 // 3600)
    if s >= 3600:
        return "%d h %d min" % (s // 3600, s % 3600 // 60)
    return "%d min" % (s // 60)
