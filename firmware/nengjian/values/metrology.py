"""The site's meters as instruments: their calibration (检定) records and the crew's performance checks.

Owns: per meter with a `calibration` in the site config (certificate, date, due), the daily check
that raises an alarm when the calibration falls due within DUE_SOON_DAYS or has expired, and clears
it once the config carries a new due date; the crew's performance check (console `check`): the
meter's display as the crew reads it, beside the gateway's last reading of that point, their
difference and what the meter's accuracy class allows, an alarm when the difference is beyond it.
Every raise and clear is a ledger EVENT of kind "alarm" (texts CALIBRATION ... / CHECK ...), every
check an EVENT of kind "check"; `alarms` holds the active ones for the console's status. A crew's
new calibration (console `calibrate`) is checked here (new_record) before the console stores it.

The allowance of a check: nengjian.values.metercheck.

Dates are CST calendar dates ('2026-12-31'); a calibration is due on its due date. The state (active
alarms) is a small statefile, so a reboot neither raises an alarm twice nor
forgets a failed check. Imported only where a meter has a calibration record (nengjian.app) or when
a crew runs a check (nengjian.console.commands); the check's arithmetic is nengjian.values.metercheck,
loaded for the check and dropped after it.
"""

from nengjian.core import statefile, timeutil

DUE_SOON_DAYS = 30
DUE_SOON = "due"
EXPIRED = "expired"
BEYOND = "beyond"


def day_number(text):
    """Days since 1970-01-01 of a 'YYYY-MM-DD' date; ValueError if it is not one."""
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("%r is not a date YYYY-MM-DD" % (text,))
    y, mo, d = int(text[:4]), int(text[5:7]), int(text[8:])
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        raise ValueError("%r is not a date YYYY-MM-DD" % (text,))
    yy = y - (1 if mo <= 2 else 0)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def cst_day(ts):
    """The CST calendar day (day_number) of UTC seconds `ts`."""
    return (ts + timeutil.CST_OFFSET) // 86400


def new_record(certificate, date, due, today=None):
    """A crew's new calibration record {"certificate", "date", "due"}, checked: a certificate number
    (1 to 40 characters, the config schema's), two dates, due after date, and date not after `today`
    (a CST day_number; None: the clock is not trusted, so not checked). ValueError naming the fault."""
    if not isinstance(certificate, str) or not 1 <= len(certificate) <= 40:
        raise ValueError("certificate: 1 to 40 characters")
    d = day_number(date)
    if day_number(due) <= d:
        raise ValueError("due %s is not after the calibration date %s" % (due, date))
    if today is not None and d > today:
        raise ValueError("calibration date %s is in the future" % date)
    return {"certificate": certificate, "date": date, "due": due}


class Metrology:
    def __init__(self, meters, event, path=None):
        self._event = event
        self._path = path
        self.records = {}  # meter id -> (certificate, date, due) as configured
        self.classes = {}  # meter id -> accuracy class text
        for m in meters:
            c = m.get("calibration")
            if c:
                self.records[m["id"]] = (c.get("certificate", ""), c.get("date", ""), c["due"])
            if m.get("class"):
                self.classes[m["id"]] = str(m["class"])
        self.alarms = {}  # "cal:<meter>" | "check:<meter>.<point>" -> [level, status text]
        self.checked_day = None
        self._load()

    # ---- calibration
    def tick(self, now):
        """The daily calibration check, once per CST day (call on any beat with a trusted clock)."""
        day = cst_day(now)
        if day != self.checked_day:
            self.check_calibrations(now)

    def check_calibrations(self, now):
        today = cst_day(now)
        self.checked_day = today
        for key in list(self.alarms):  # a meter no longer configured, or no longer carrying a record
            if key.startswith("cal:") and key[4:] not in self.records:
                del self.alarms[key]
        for mid, (cert, _date, due) in self.records.items():
            key = "cal:" + mid
            try:
                left = day_number(due) - today
            except ValueError:
                left = -1  # check-config refuses it; an unreadable due date is never taken for a valid one
            level = EXPIRED if left < 0 else DUE_SOON if left <= DUE_SOON_DAYS else None
            had = self.alarms.get(key)
            if level is None:
                if had:
                    del self.alarms[key]
                    self._event("alarm", "CLEARED CALIBRATION %s: due %s (certificate %s)" % (mid, due, cert), "cal.cleared")
                continue
            if level == EXPIRED:
                text = "meter %s calibration expired on %s, %d day(s) ago (certificate %s)" % (mid, due, -left, cert)
            else:
                text = "meter %s calibration due on %s, in %d day(s) (certificate %s)" % (mid, due, left, cert)
            self.alarms[key] = [level, text]
            if not had or had[0] != level:
                if level == EXPIRED:
                    self._event("alarm", "CALIBRATION EXPIRED %s: %s" % (mid, text), "cal.expired")
                else:
                    self._event("alarm", "CALIBRATION DUE %s: %s" % (mid, text), "cal.due")
        self._save()

    # ---- performance check (nengjian.values.metercheck, loaded for a check only)
    def record_check(self, key, alarm, event_text, code):
        """A check's outcome: `alarm` [level, text] while beyond class, None once within; the event."""
        had = self.alarms.get(key)
        if alarm is not None:
            self.alarms[key] = alarm
            self._event("alarm", event_text, code)
        elif had:
            del self.alarms[key]
            self._event("alarm", event_text, code)
        self._save()

    def status_alarms(self):
        """The active alarms' texts, for the console's status."""
        return [a[1] for a in self.alarms.values()]

    # ---- state
    def _save(self):
        if self._path:
            statefile.save(self._path, {"alarms": self.alarms}, 1,
                           lambda why: self._event("alarm", "metrology state not saved: %s" % why, "cal.not_saved"))

    def _load(self):
        if not self._path:
            return
        doc = statefile.load(self._path, 1, lambda why: self._event("alarm", "metrology state unreadable (%s)" % why,
                                                                     "cal.unreadable"))
        if doc is None:
            return
        alarms = doc.get("alarms")
        if isinstance(alarms, dict):
            self.alarms = alarms
        # The day is not taken back: the first beat after a boot checks again (the config may carry a
        # new record), and raises nothing the saved alarms already hold.
