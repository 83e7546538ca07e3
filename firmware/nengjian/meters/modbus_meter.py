"""Reads one Modbus RTU meter through a Bus, following its profile's read plan."""

from nengjian.meters import profile as profiles
from nengjian.proto import modbus, regvalue
from nengjian.store.cbor import Decimal


class ModbusMeter:
    protocol = "modbus-rtu"

    def __init__(self, cfg, prof, wanted):
        self.unit = cfg["address"]
        self.blocks = profiles.plan_modbus(prof, wanted)
        self._fc = 3
        self._start = 0
        self.framer = self._frame  # bound once: the bus calls it per chunk without allocating

    def _frame(self, rx, n):
        start = modbus.find_start(rx, n, self.unit, self._fc)
        self._start = start
        if start >= n:
            return 5
        return modbus.bytes_needed(rx, start, n, self._fc)

    async def read(self, bus, line, timeout_ms, gap_ms, out):
        """Fill `out` (name -> Decimal) with every planned point; raises on the first failed block."""
        for blk in self.blocks:
            async with bus.lock:
                self._fc = blk.fc
                n = modbus.build_read(bus.tx, self.unit, blk.fc, blk.address, blk.count)
                got = await bus.transact(line, n, self.framer, timeout_ms, gap_ms)
                off, _ = modbus.parse_reply(bus.rx, self._start, got, self.unit, blk.fc, blk.count)
                rx = bus.rx
                for name, boff, typ, order, decimals, mult in blk.points:
                    v = regvalue.decode(rx, off + boff, typ, order)
                    out[name] = to_decimal(v, decimals, mult)
        return out


def to_decimal(v, decimals, multiplier=1):
    """A register value as an exact Decimal: integers are raw counts of 10**-decimals; floats are
    rounded to that resolution (a float32 register carries about 7 significant digits anyway)."""
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("meter sent a non-finite float")
        return Decimal(int(round(v * 10 ** decimals)) * multiplier, -decimals)
    return Decimal(v * multiplier, -decimals)
