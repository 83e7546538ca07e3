"""Meter profiles: data files that say which registers or data identifiers give which quantity.

A profile is JSON checked against nengjian.schemas.PROFILE. For Modbus this module also plans the
reads: points of one function code are merged into as few block reads as the meter allows
(`max_registers`, default 60, bridging gaps of up to `max_gap` unused registers).
"""

import json

from nengjian import schema, schemas
from nengjian.proto import regvalue


def load(directory, name):
    if "/" in name or name.startswith("."):
        raise ValueError("bad profile name %r" % name)
    path = "%s/%s.json" % (directory, name)
    try:
        with open(path) as f:
            prof = json.load(f)
    except OSError:
        raise ValueError("no profile %r in %s" % (name, directory))
    except ValueError as e:
        raise ValueError("profile %r is not valid JSON (%s)" % (name, e))
    try:
        schema.validate(prof, schemas.PROFILE)
    except schema.SchemaError as e:
        raise ValueError("profile %r: %s" % (name, e))
    if prof["protocol"] == "modbus-rtu":
        for pname, p in prof["points"].items():
            for key in ("fc", "address", "type"):
                if key not in p:
                    raise ValueError("profile %r point %s: %s missing" % (name, pname, key))
    else:
        for pname, p in prof["points"].items():
            if "di" not in p:
                raise ValueError("profile %r point %s: di missing" % (name, pname))
    return prof


class Block:
    """One Modbus read: function, first register, count, and the points decoded from it."""

    __slots__ = ("fc", "address", "count", "points")

    def __init__(self, fc, address, count):
        self.fc = fc
        self.address = address
        self.count = count
        self.points = []  # (name, byte offset, type, order, decimals, multiplier)


def plan_modbus(profile, wanted):
    """Blocks that read every point in `wanted` (names) with as few requests as allowed."""
    limit = profile.get("max_registers", 60)
    gap = profile.get("max_gap", 8)
    pts = []
    for name in wanted:
        p = profile["points"][name]
        pts.append((p["fc"], p["address"], regvalue.registers(p["type"]), name, p))
    pts.sort(key=lambda x: (x[0], x[1]))
    blocks = []
    cur = None
    for fc, addr, nregs, name, p in pts:
        if (cur is None or cur.fc != fc or addr - (cur.address + cur.count) > gap
                or addr + nregs - cur.address > limit):
            cur = Block(fc, addr, nregs)
            blocks.append(cur)
        else:
            cur.count = max(cur.count, addr + nregs - cur.address)
        cur.points.append((name, 2 * (addr - cur.address), p["type"], p.get("order", "ABCD"),
                           p.get("decimals", 0), p.get("multiplier", 1)))
    return blocks
