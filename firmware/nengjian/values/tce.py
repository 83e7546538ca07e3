"""Standard-coal equivalent (tce) of what the site consumes: coefficients, the site's total per day
and month, and the comprehensive-energy value (energy code 0000) when the site config names one.

Coefficients are kgce per base unit of an energy code, exact decimals. Precedence: a coefficient
the platform distributed (set_platform, e.g. Yunnan's convertRation converted by the profile to
kgce per base unit; kept in the state file, so it holds across reboots until the platform sends
another, and a new or changed one is a ledger event) > the site's `tce.coefficients` > the GB/T
2589-2020 reference values below (SPEC 4; the standard's appendix was not seen: electricity and
heat are *sure*, coal, oils, LPG and natural gas *fairly sure*; coke, steam and fresh water have
no energy code in SPEC 3.3 and so no default here: configure them by code).

Units: an item's values are in its meter point's unit (profile `unit`), or for codes no meter
measures (manual entries) in `tce.units[energy code]`, else in the base unit. Units convert within
their family (kWh/MWh, MJ/GJ, kg/t, m3/Nm3/10^4 m3).

What counts (our reading of GB/T 2589: the unit's consumption, less the energy it supplies
outside): whole-plant items (scope 1) of collection data types 01-03 (primary, secondary energy,
energy-carrying media); use code 30 (output) is subtracted unless `tce.outputs` is "ignore"; the
comprehensive item itself (0000) never counts. Process and equipment items are parts of the
whole-plant ones and would count twice.

The comprehensive DAY (MONTH) value for a period is emitted when every online whole-plant item
has sent its DAY (MONTH) value, or, if some never do, 2 h after the day's end (1 day after the
month's end) as invalid, with an event naming what is missing. A value that arrives later (a
manual delivery entered next morning) re-emits the period's total with the same natural key: the
platform keeps the last, and the ledger says it was revised. The value is in tce (kgce / 1000),
rounded half up to `tce.decimals` places (default 4). Sums not yet final and the platform's
coefficients are kept in a small state file (nengjian.core.statefile; {"v": 1, "sums", "sent",
"platform": {energy code: decimal text}}) so a reboot at 00:01 does not lose the values that came
at 00:00; a file that cannot be read is a ledger event and the open totals start again.
"""

from nengjian.core import identity, records, statefile, timeutil
from nengjian.core.decimal import Decimal
from nengjian.values.manual import parse_decimal

# energy code: (kgce per base unit, base unit, name)
DEFAULTS = {
    "0100": ("0.7143", "kg", "raw coal"),
    "1500": ("1.2143", "m3", "natural gas (gas-field gas; oil-field gas 1.3300)"),
    "1800": ("1.4286", "kg", "crude oil"),
    "1900": ("1.4714", "kg", "gasoline"),
    "2000": ("1.4714", "kg", "kerosene"),
    "2100": ("1.4571", "kg", "diesel"),
    "2200": ("1.4286", "kg", "fuel oil"),
    "2300": ("1.7143", "kg", "LPG"),
    "3200": ("0.03412", "MJ", "heat"),
    "3300": ("0.1229", "kWh", "electricity (equivalent value)"),
}

# unit: (base unit, factor to it)
UNITS = {
    "Wh": ("kWh", "0.001"), "kWh": ("kWh", "1"), "MWh": ("kWh", "1000"), "GWh": ("kWh", "1000000"),
    "kJ": ("MJ", "0.001"), "MJ": ("MJ", "1"), "GJ": ("MJ", "1000"), "TJ": ("MJ", "1000000"),
    "g": ("kg", "0.001"), "kg": ("kg", "1"), "t": ("kg", "1000"),
    "m3": ("m3", "1"), "Nm3": ("m3", "1"), "10^4 m3": ("m3", "10000"), "L": ("m3", "0.001"),
}

DAY_GRACE_S = 2 * 3600
MONTH_GRACE_S = 86400
KEEP_DAYS_S = 35 * 86400  # sums kept (and revisable) this long after their period starts
KEEP_MONTHS_S = 400 * 86400


def dec(x):
    """Exact Decimal of a config number or text (floats through their shortest text, not binary)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        return Decimal(x, 0)
    if isinstance(x, float):
        t = repr(x)
        if "e" in t or "E" in t:
            t = "%.9f" % x
        return parse_decimal(t, 12)
    return parse_decimal(x, 12)


def mul(a, b):
    return Decimal(a.mantissa * b.mantissa, a.exponent + b.exponent)


def add(a, b):
    if a.exponent == b.exponent:
        return Decimal(a.mantissa + b.mantissa, a.exponent)
    if a.exponent > b.exponent:
        a, b = b, a
    return Decimal(a.mantissa + b.mantissa * 10 ** (b.exponent - a.exponent), a.exponent)


def round_to(d, places):
    """d rounded half away from zero to `places` decimals."""
    k = -places - d.exponent
    if k <= 0:
        return Decimal(d.mantissa * 10 ** -k, -places)
    q = 10 ** k
    m = d.mantissa
    r = (abs(m) * 2 + q) // (2 * q)
    return Decimal(-r if m < 0 else r, -places)


ZERO = Decimal(0, 0)


def _same(a, b):
    """a and b are the same number (0.1230 and 0.123 are)."""
    e = min(a.exponent, b.exponent)
    return a.mantissa * 10 ** (a.exponent - e) == b.mantissa * 10 ** (b.exponent - e)


def _key(stat, start):
    return "%d:%d" % (stat, start)


class Tce:
    def __init__(self, cfg, emit=None, event=None, path=None):
        t = cfg.get("tce") or {}
        self._emit = emit
        self._event = event
        self._path = path
        self.config = {}
        for code, v in (t.get("coefficients") or {}).items():
            self.config[code] = dec(v)
        self.platform = {}
        self.units = t.get("units") or {}
        self.item = t.get("item")
        self.decimals = t.get("decimals", 4)
        self.subtract_outputs = t.get("outputs", "subtract") == "subtract"
        self.item_units = {}  # data code -> unit of its values
        profiles = cfg.get("_profiles") or {}
        meters = {}
        for m in cfg.get("meters") or ():
            meters[m["id"]] = m
        self._whole = []  # online whole-plant codes that count
        for it in cfg.get("items") or ():
            m = meters.get(it.get("meter"))
            prof = profiles.get(m["profile"]) if m else None
            point = (prof or {}).get("points", {}).get(it.get("point")) or {}
            if point.get("unit"):
                self.item_units[it["code"]] = point["unit"]
            if it["scope"] == 1 and self.sign(it["code"], 1):
                self._whole.append(it["code"])
        self.sums = {}  # "stat:start" -> {code: [mantissa, exponent, valid]}
        self.sent = {}  # "stat:start" -> "value text" last emitted
        self._load()
        self._expect()

    def _expect(self):
        # Those with a coefficient make a total complete; a platform coefficient can add one.
        self.expected = [c for c in self._whole if self.factor(c) is not None]

    # ---- coefficients
    def coefficient(self, energy):
        """(kgce per base unit as Decimal, where it came from) of an energy code, or (None, None)."""
        if energy in self.platform:
            return self.platform[energy], "platform"
        if energy in self.config:
            return self.config[energy], "site"
        d = DEFAULTS.get(energy)
        if d:
            return dec(d[0]), "GB/T 2589"
        return None, None

    def set_platform(self, energy, kgce_per_base_unit):
        """A coefficient distributed by the platform: wins over site and defaults, kept in the state
        file across reboots until the platform sends another. A new or changed one is a ledger event
        (the same value again is not)."""
        coef = dec(kgce_per_base_unit)
        old, src = self.coefficient(energy)
        if src == "platform" and _same(old, coef):
            return
        self.platform[energy] = coef
        base = DEFAULTS.get(energy, (None, "base unit"))[1]
        self._note("tce", "platform coefficient for energy %s: %s kgce/%s (was %s)" % (
            energy, coef.text(), base, "%s, %s" % (old.text(), src) if old is not None else "none"), "tce.coefficient")
        self._expect()
        self._save()

    def factor(self, code):
        """kgce per unit of the values of data code `code`, or None (no coefficient or units that
        do not convert)."""
        energy = identity.energy_code(code)
        coef, _src = self.coefficient(energy)
        if coef is None:
            return None
        unit = self.item_units.get(code) or self.units.get(energy)
        base = DEFAULTS.get(energy, (None, None))[1]
        if unit is None or base is None:
            return coef
        conv = UNITS.get(unit)
        if conv is None or conv[0] != base:
            return None
        return mul(coef, dec(conv[1]))

    def sign(self, code, scope):
        """+1, -1 or 0: how a value of this code adds to the site's total."""
        if scope != 1 or code == self.item or identity.energy_code(code) == "0000":
            return 0
        if code[11:13] not in ("01", "02", "03"):
            return 0
        if code[18:20] == "30":
            return -1 if self.subtract_outputs else 0
        return 1

    # ---- values in
    def observe(self, rec, now=None):
        """Take note of a stored VALUE (call for every VALUE: real-time ones are ignored)."""
        if rec[0] != records.VALUE:
            return
        stat = rec[records.V_STAT_TYPE]
        if stat not in (records.DAY, records.MONTH):
            return
        code = rec[records.V_CODE]
        if not self.sign(code, rec[records.V_SCOPE]):
            return
        start = rec[records.V_STAT_START]
        ts = rec[records.V_TS] if now is None else now
        k = _key(stat, start)
        if k not in self.sums:
            keep = KEEP_DAYS_S if stat == records.DAY else KEEP_MONTHS_S
            if ts - start > keep:
                self._note("tce", "%s for %s arrived after the site total was closed: total not revised" % (
                    code, timeutil.cst_text(start)), "tce.late")
                return
            self.sums[k] = {}
        v = rec[records.V_VALUE]
        self.sums[k][code] = [v.mantissa, v.exponent, bool(rec[records.V_VALID])]
        if k in self.sent or self._complete(k):
            self._send(stat, start, ts)
        self._save()

    def tick(self, now):
        """Close totals whose items never all arrived (call every minute or so), forget old ones."""
        changed = False
        for k in list(self.sums):
            stat, start = _split(k)
            if k not in self.sent and now >= _end(stat, start) + (
                    DAY_GRACE_S if stat == records.DAY else MONTH_GRACE_S):
                self._send(stat, start, now)
                changed = True
            if now - start > (KEEP_DAYS_S if stat == records.DAY else KEEP_MONTHS_S):
                del self.sums[k]
                self.sent.pop(k, None)
                changed = True
        if changed:
            self._save()

    def _complete(self, k):
        got = self.sums[k]
        for code in self.expected:
            if code not in got:
                return False
        return True

    # ---- totals out
    def total(self, stat, start):
        """{'kgce': Decimal, 'complete', 'valid', 'missing': [codes], 'unpriced': [codes]} of a period."""
        got = self.sums.get(_key(stat, start)) or {}
        kg = ZERO
        valid = True
        unpriced = []
        for code, (m, e, ok) in got.items():
            f = self.factor(code)
            if f is None:
                unpriced.append(code)
                continue
            part = mul(Decimal(m, e), f)
            if self.sign(code, 1) < 0:
                part = Decimal(-part.mantissa, part.exponent)
            kg = add(kg, part)
            valid = valid and ok
        missing = [c for c in self.expected if c not in got]
        return {"kgce": kg, "complete": not missing, "valid": valid and not missing and not unpriced,
                "missing": missing, "unpriced": unpriced}

    def day_total(self, day_start):
        return self.total(records.DAY, day_start)

    def today(self, intervals, now=None):
        """The site's kgce so far today (for the console): online items from their day anchors,
        plus manual day entries for today. (kgce Decimal, items without a day anchor yet)."""
        from nengjian.values.intervals import day_start

        now = timeutil.now() if now is None else now
        today = day_start(now)
        kg = ZERO
        unknown = []
        for i, st in enumerate(intervals.states):
            s = self.sign(st.code, st.scope)
            f = self.factor(st.code)
            if not s or f is None:
                continue
            p = intervals.day_progress(i)
            if p is None or p[0] != today:
                unknown.append(st.code)
                continue
            part = mul(p[1], f)
            kg = add(kg, part if s > 0 else Decimal(-part.mantissa, part.exponent))
        online = set(st.code for st in intervals.states)
        for code, (m, e, _ok) in (self.sums.get(_key(records.DAY, today)) or {}).items():
            f = self.factor(code)
            if code not in online and f is not None:
                part = mul(Decimal(m, e), f)
                kg = add(kg, part if self.sign(code, 1) > 0 else Decimal(-part.mantissa, part.exponent))
        return kg, unknown

    def _send(self, stat, start, ts):
        k = _key(stat, start)
        t = self.total(stat, start)
        value = round_to(Decimal(t["kgce"].mantissa, t["kgce"].exponent - 3), self.decimals)
        what = "day" if stat == records.DAY else "month"
        prev = self.sent.get(k)
        if prev == value.text():
            return
        if self.item is None or self._emit is None:
            self.sent[k] = value.text()
            return
        if prev is not None:
            self._note("tce", "site total for %s %s revised from %s to %s tce" % (
                what, timeutil.cst_text(start), prev, value.text()), "tce.revised")
        elif not t["complete"] or t["unpriced"]:
            why = ["no value from " + ", ".join(t["missing"])] if t["missing"] else []
            if t["unpriced"]:
                why.append("no coefficient for " + ", ".join(t["unpriced"]))
            self._note("tce", "site total for %s %s sent as invalid: %s" % (
                what, timeutil.cst_text(start), "; ".join(why)), "tce.invalid")
        self.sent[k] = value.text()
        self._emit([records.VALUE, ts, self.item, stat, start, value, t["valid"], records.FIELD_INSTRUMENT, 1])

    def _note(self, kind, text, code):
        if self._event is not None:
            self._event(kind, text, code)

    # ---- state
    def _save(self):
        if not self._path:
            return
        platform = {}
        for energy, coef in self.platform.items():
            platform[energy] = coef.text()
        statefile.save(self._path, {"sums": self.sums, "sent": self.sent, "platform": platform}, 1,
                       lambda why: self._note("tce", "state not saved: %s" % why, "tce.not_saved"))

    def _load(self):
        if not self._path:
            return
        doc = statefile.load(self._path, 1, self._unreadable)
        if doc is None:
            return
        try:
            sums, sent = doc["sums"], doc["sent"]
            platform = {}
            for energy, text in (doc.get("platform") or {}).items():  # absent before platform ones were kept
                platform[energy] = dec(text)
            if not (isinstance(sums, dict) and isinstance(sent, dict)):
                raise TypeError("not a mapping")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self._unreadable(repr(e))
            return
        self.sums, self.sent, self.platform = sums, sent, platform

    def _unreadable(self, why):
        self._note("tce", "state unreadable (%s): open totals start again, platform coefficients are forgotten" % why,
                   "tce.unreadable")


def _split(k):
    a, b = k.split(":")
    return int(a), int(b)


def _end(stat, start):
    if stat == records.DAY:
        return start + 86400
    from nengjian.values.intervals import next_month

    return next_month(start)
