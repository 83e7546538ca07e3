"""Meter profiles: data files that say which registers or data identifiers give which quantity.

A profile is JSON checked against nengjian.config.schemas.PROFILE, then per protocol by `check` (the keys
a point needs). For Modbus this module also plans the reads: points of one function code are
merged into as few block reads as the meter allows (`max_registers`, default 60, bridging gaps of
up to `max_gap` unused registers, default 8; bits of FC 01/02 up to 2000 per read).

Scaling (the same for every protocol): value = raw x 10**scale x multiplier [x ratio] + offset,
an exact Decimal with exponent -decimals. For integer registers scale defaults to -decimals, so a
u32 counting 0.01 kWh is `"decimals": 2`; floats are rounded to `decimals` places after scaling.
`offset` is in engineering units ("-40", "0.5") and must fit the point's decimals.
"""

import json

from nengjian.proto import regvalue

DI_HEX_2007 = 8
DI_HEX_1997 = 4
CJT188_FIELDS = ("flow", "settle_flow", "heat", "settle_heat", "power", "flow_rate",
                 "supply_temp", "return_temp", "work_hours")
PULSE_FIELDS = ("total", "pulses")


# The profiles in the ROMFS image (mounted at /rom by the ESP32 firmware and the sim board with
# NJ_ROMFS): the ones the running version was built with, so they are looked up first; the board's
# PROFILE_DIR (a gateway without the image, or a profile a crew added) after them.
ROM_DIR = "/rom/profiles/meters"


def load(directory, name):
    if "/" in name or name.startswith("."):
        raise ValueError("bad profile name %r" % name)
    prof = None
    for where in (ROM_DIR, directory):
        try:
            with open("%s/%s.json" % (where, name)) as f:
                prof = json.load(f)
            break
        except OSError:
            continue
        except ValueError as e:
            raise ValueError("profile %r is not valid JSON (%s)" % (name, e))
    if prof is None:
        raise ValueError("no profile %r in %s" % (name, directory))
    try:
        check(prof)
    except ValueError as e:
        raise ValueError("profile %r: %s" % (name, e))
    return prof


def check(prof):
    """Schema plus what the schema cannot say: the keys each protocol's points need."""
    from nengjian.config import schema, schemas

    schema.validate(prof, schemas.PROFILE)
    proto = prof["protocol"]
    if not prof["points"]:
        raise ValueError("points: none defined")
    for pname, p in prof["points"].items():
        where = "points.%s" % pname
        if proto == "modbus-rtu":
            for key in ("fc", "address", "type"):
                if key not in p:
                    raise ValueError("%s: %s missing" % (where, key))
            if (p["type"] == "bit") != (p["fc"] in (1, 2)):
                raise ValueError("%s: type bit goes with fc 1 or 2, and only there" % where)
            _check_modbus_point(where, p)
        elif proto in ("dlt645-2007", "dlt645-1997"):
            di = p.get("di")
            want = DI_HEX_2007 if proto == "dlt645-2007" else DI_HEX_1997
            if di is None or len(di) != want:
                raise ValueError("%s: di must be %d hex digits" % (where, want))
        elif proto == "cjt188":
            if p.get("field") not in CJT188_FIELDS:
                raise ValueError("%s: field must be one of %s" % (where, ", ".join(CJT188_FIELDS)))
        elif proto == "pulse":
            if p.get("field") not in PULSE_FIELDS:
                raise ValueError("%s: field must be total or pulses" % where)
        offset_mantissa(p, -p.get("decimals", 0))
    if "memory" in prof and proto != "dlt645-2007":
        raise ValueError("memory: DL/T 645-2007 only")
    if "clock" in prof:
        clock = prof["clock"]
        if proto != "modbus-rtu":
            raise ValueError("clock: Modbus RTU only (DL/T 645-2007: memory.clock)")
        if "register" not in clock or "format" not in clock:
            raise ValueError("clock: register and format needed")
    return prof


# ---- scaling ---------------------------------------------------------------------------------

def parse_decimal(text):
    """(mantissa, exponent) of a decimal number given as int or text ("-12.05" -> (-1205, -2))."""
    if isinstance(text, int):
        return text, 0
    s = text.strip()
    neg = s.startswith("-")
    if neg or s.startswith("+"):
        s = s[1:]
    whole, _, frac = s.partition(".")
    digits = whole + frac
    if not digits or not digits.isdigit():
        raise ValueError("not a decimal number: %r" % text)
    m = int(digits)
    return (-m if neg else m), -len(frac)


def offset_mantissa(p, exponent):
    """The point's offset as a mantissa at `exponent` (exact, else ValueError)."""
    if "offset" not in p:
        return 0
    m, e = parse_decimal(p["offset"])
    if e >= exponent:
        return m * 10 ** (e - exponent)
    d = 10 ** (exponent - e)
    if m % d:
        raise ValueError("offset %s has more decimals than the point" % p["offset"])
    return m // d


def _is_float(type_name):
    return type_name in ("f32", "f64")


def _check_modbus_point(where, p):
    t = p["type"]
    if t == "bit":
        if "plus" in p or "scale" in p:
            raise ValueError("%s: a bit has no scale or plus part" % where)
        return
    scale, e = _exponent_of(p)
    if not _is_float(t) and scale < e:
        raise ValueError("%s: decimals would round an integer register (scale %d)" % (where, scale))
    q = p.get("plus")
    if q and not _is_float(q["type"]) and q.get("scale", 0) < e:
        raise ValueError("%s: plus part is finer than the point's decimals" % where)


def _exponent_of(p):
    """(scale, exponent) of a Modbus point: raw x 10**scale, result exponent -decimals."""
    t = p["type"]
    if "decimals" in p:
        e = -p["decimals"]
    elif _is_float(t) or t == "bit":
        e = 0
    else:
        e = p.get("scale", 0)
    scale = p.get("scale", e if not _is_float(t) and t != "bit" else 0)
    return scale, e


# ---- Modbus read plan ------------------------------------------------------------------------

class Block:
    """One Modbus read: function, first register (or bit), count, and the points decoded from it.

    points: (name, byte offset or bit index, type, order, k, exponent, multiplier, offset mantissa,
    plus) where k = scale - exponent (the power of ten the raw value is multiplied by) and plus is
    None or (byte offset, type, order, k) of a second part added to the first.
    """

    __slots__ = ("fc", "address", "count", "points")

    def __init__(self, fc, address, count):
        self.fc = fc
        self.address = address
        self.count = count
        self.points = []


def _span(p):
    """(first, end) registers a point occupies, its plus part included."""
    lo = p["address"]
    hi = lo + (1 if p["type"] == "bit" else regvalue.registers(p["type"]))
    q = p.get("plus")
    if q:
        lo = min(lo, q["address"])
        hi = max(hi, q["address"] + regvalue.registers(q["type"]))
    return lo, hi


def plan_modbus(profile, wanted, ratio=1):
    """Blocks that read every point in `wanted` (names) with as few requests as allowed."""
    reg_limit = profile.get("max_registers", 60)
    gap = profile.get("max_gap", 8)
    pts = []
    for name in wanted:
        p = profile["points"][name]
        lo, hi = _span(p)
        limit = 2000 if p["fc"] in (1, 2) else reg_limit
        if hi - lo > limit:
            raise ValueError("point %s spans %d registers (limit %d)" % (name, hi - lo, limit))
        pts.append((p["fc"], lo, hi, name, p))
    pts.sort(key=lambda x: (x[0], x[1]))
    blocks = []
    cur = None
    for fc, lo, hi, name, p in pts:
        limit = 2000 if fc in (1, 2) else reg_limit
        g = gap * 16 if fc in (1, 2) else gap
        if (cur is None or cur.fc != fc or lo - (cur.address + cur.count) > g
                or max(hi, cur.address + cur.count) - cur.address > limit):
            cur = Block(fc, lo, hi - lo)
            blocks.append(cur)
        else:
            cur.count = max(cur.count, hi - cur.address)
        cur.points.append(_compile_point(name, p, cur.address, ratio))
    return blocks


def _compile_point(name, p, base, ratio):
    t = p["type"]
    mult = p.get("multiplier", 1) * (ratio if p.get("ratio") else 1)
    if t == "bit":
        return (name, p["address"] - base, t, "ABCD", 0, 0, mult, offset_mantissa(p, 0), None)
    scale, e = _exponent_of(p)
    plus = None
    q = p.get("plus")
    if q:
        plus = (2 * (q["address"] - base), q["type"], q.get("order", p.get("order", "ABCD")),
                q.get("scale", 0) - e)
    return (name, 2 * (p["address"] - base), t, p.get("order", "ABCD"), scale - e, e, mult,
            offset_mantissa(p, e), plus)
