"""Reads one CJ/T 188 water, gas or heat meter through a Bus: one 901FH read per poll.

The meter's address is its 14-digit number from the site config; the meter type comes from the
profile (`meter_type`: cold_water, gas, heat, ...). Points name a field of the 901F reply
(nengjian.proto.cjt188.Reading: flow, settle_flow, heat, settle_heat, power, flow_rate,
supply_temp, return_temp, work_hours). Values are exact: the codec's raw integers with its fixed
decimals. When the profile gives a unit and the meter reports its own unit code, the value is
converted exactly within the unit's family (L <-> m3, Wh/kWh/MWh, J/kJ/MJ/GJ, W/kW/MW,
L/h <-> m3/h); a unit of another family is a typed error, never a silent mix-up.

DI byte order: profile `di_order` low_first (default, SPEC) or high_first (CJ/T 188-2004 meters).

Refused points: every point comes from the one 901FH reply, so an abnormal reply (C1H) refuses all
of them at once; the meter answered only with an error and the poll fails (offline after
`fail_limit`), as the poller's rule says. The per-point refusal is a reply that lacks a field: the
codec takes 901FH replies cut short after any value (a heat meter without temperature sensors, a
water meter without the settlement-day flow). Such a point is unsupported
(nengjian.meters.poller.Unsupported), the fields the reply does carry are read on; since the frame
is read every poll anyway, the point is checked in every reply rather than asked again later.
"""

from nengjian.bus.rs485 import Steps
from nengjian.core.decimal import put
from nengjian.meters.poller import Unsupported
from nengjian.proto import cjt188, dlt645
from nengjian.proto.framefinder import FrameFinder

METER_TYPES = {
    "cold_water": cjt188.T_COLD_WATER,
    "hot_water": cjt188.T_HOT_WATER,
    "drinking_water": cjt188.T_DRINKING_WATER,
    "reclaimed_water": cjt188.T_RECLAIMED_WATER,
    "heat": cjt188.T_HEAT,
    "cooling": cjt188.T_COOLING,
    "gas": cjt188.T_GAS,
}

# unit name -> (family, power of ten against the family's first unit)
UNITS = {
    "Wh": ("E", 0), "kWh": ("E", 3), "MWh": ("E", 6), "MWh*100": ("E", 8),
    "J": ("J", 0), "kJ": ("J", 3), "MJ": ("J", 6), "GJ": ("J", 9), "GJ*100": ("J", 11),
    "W": ("P", 0), "kW": ("P", 3), "MW": ("P", 6),
    "L": ("V", 0), "m3": ("V", 3),
    "L/h": ("Q", 0), "m3/h": ("Q", 3),
}

# field -> (decimals, unit attribute or None)
FIELDS = {
    "flow": (cjt188.Reading.FLOW_DECIMALS, "flow_unit"),
    "settle_flow": (cjt188.Reading.FLOW_DECIMALS, "settle_flow_unit"),
    "heat": (cjt188.Reading.HEAT_DECIMALS, "heat_unit"),
    "settle_heat": (cjt188.Reading.HEAT_DECIMALS, "settle_heat_unit"),
    "power": (cjt188.Reading.POWER_DECIMALS, "power_unit"),
    "flow_rate": (cjt188.Reading.FLOW_RATE_DECIMALS, "flow_rate_unit"),
    "supply_temp": (cjt188.Reading.TEMP_DECIMALS, None),
    "return_temp": (cjt188.Reading.TEMP_DECIMALS, None),
    "work_hours": (0, None),
}


def convert(raw, decimals, from_code, to_unit):
    """(mantissa, exponent) of raw * 10**-decimals [from_code units] in to_unit; exact."""
    e = -decimals
    if to_unit is None or to_unit not in UNITS or from_code is None:
        return raw, e
    name = cjt188.unit_name(from_code)
    if name is None:
        raise cjt188.UnexpectedReply("unknown unit code 0x%02X" % from_code)
    fam, p = UNITS[name]
    tfam, tp = UNITS[to_unit]
    if fam != tfam:
        raise cjt188.UnexpectedReply("meter reports %s, profile wants %s" % (name, to_unit))
    return raw, e + p - tp


class Cjt188Meter:
    protocol = "cjt188"

    def __init__(self, cfg, prof, wanted):
        from nengjian.meters import profile as profiles  # construction only: dropped after boot (app)

        self.meter_type = METER_TYPES[prof.get("meter_type", "cold_water")]
        self.addr = dlt645.address_bytes(str(cfg["address"]), 7)
        self.preamble = cfg.get("preamble", prof.get("preamble", 4))
        self.low_first = prof.get("di_order", "low_first") == "low_first"
        self.reading = cjt188.Reading()
        self.ser = 0
        self._finder = None
        self._finder_rx = None
        self.unsupported = Unsupported(cfg, retry=False)
        self._steps = _Read(self)
        ratio = cfg.get("ratio", 1)
        self.points = []
        for name in wanted:
            p = prof["points"][name]
            field = p["field"]
            dec, unit_attr = FIELDS[field]
            unit = p.get("unit") if unit_attr else None
            # The exponent a value ends with is known only once the meter names its unit: the
            # offset is applied at the profile's decimals (or the codec's).
            e = -p.get("decimals", dec)
            mult = p.get("multiplier", 1) * (ratio if p.get("ratio") else 1)
            self.points.append((name, field, dec, unit_attr, unit, mult, profiles.offset_mantissa(p, e), e))

    def _ours(self, rx, s):
        if not rx[s + 9] & cjt188.DIR_BIT:
            return False
        if self.meter_type != cjt188.T_ANY and rx[s + 1] != self.meter_type:
            return False
        a = self.addr
        for i in range(7):
            if a[i] != cjt188.WILDCARD_BYTE and rx[s + 2 + i] != a[i]:
                return False
        return True

    def read(self, bus, line, timeout_ms, gap_ms, out):
        """Fill `out` (name -> Decimal) with the points the reply carries. Awaited: the driver's
        reusable Steps (_Read), so a read makes no coroutine object."""
        return self._steps.run(bus, line, timeout_ms, gap_ms, out)

    def _begin(self, bus, line, timeout_ms, gap_ms):
        """Build the 901FH read and start the bus's transaction; the caller holds the lock."""
        if self._finder is None or self._finder_rx is not bus.rx:
            self._finder = FrameFinder(bus.rx, cjt188.bytes_needed, cjt188.frame_start, self._ours,
                                       cjt188.MIN_FRAME)
            self._finder_rx = bus.rx
        self._finder.reset()
        self.ser = (self.ser + 1) & 0xFF
        n = cjt188.build_read(bus.tx, self.meter_type, self.addr, cjt188.DI_READ, self.ser,
                              self.preamble, self.low_first)
        return bus.begin(line, n, self._finder.frame, timeout_ms, gap_ms)

    def _parse(self, bus):
        got = bus.end()
        finder = self._finder
        return cjt188.parse_read(finder.buffer(bus.rx), finder.count(got), self.meter_type, self.addr,
                                 cjt188.DI_READ, self.reading)

    def _decode(self, r, out):
        ref = self.unsupported
        ref.begin()
        for p in self.points:
            name, field, dec, unit_attr, unit, mult, add, e = p
            raw = getattr(r, field)
            if raw is None:
                ref.refused(p, None, cjt188.UnexpectedReply("reply has no %s" % field))
                continue
            ref.answered(p, None)
            code = getattr(r, unit_attr) if unit_attr else None
            if unit is None or code is None:
                m, me = raw, -dec  # no conversion: no tuple from convert() per reading
            else:
                m, me = convert(raw, dec, code, unit)
            m *= mult
            # Bring value and offset to one exponent without losing a digit.
            if me > e:
                m *= 10 ** (me - e)
                me = e
            elif me < e:
                add *= 10 ** (e - me)
            put(out, name, m + add, me)
        ref.end(out)


_ONE = (None,)  # the one unit of a read: the 901FH frame


class _Read(Steps):
    """Cjt188Meter.read as the bus's steps."""

    def first(self):
        self.units = _ONE

    def begin(self, _):
        return self.drv._begin(self.bus, self.line, self.timeout_ms, self.gap_ms)

    def reply(self, _):
        r = self.drv._parse(self.bus)
        self.release()
        self.drv._decode(r, self.out)
