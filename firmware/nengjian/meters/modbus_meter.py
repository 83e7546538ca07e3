"""Reads one Modbus RTU meter through a Bus, following its profile's read plan; also writes
registers (FC 06/16) for time setting and configuration.

Every exchange goes through `request`, which holds the bus lock for the request, the reply and its
parsing. The framer is bound once and finds our reply among noise (see proto.modbus.locate); after
a timeout the bytes that did arrive are examined so that "unit 5 answered instead of 1" reaches the
installer as a typed WrongUnit rather than a bare timeout.
"""

from nengjian.bus.rs485 import BusTimeout
from nengjian.core.decimal import Decimal
from nengjian.meters import profile as profiles
from nengjian.proto import modbus, regvalue


class ModbusMeter:
    protocol = "modbus-rtu"

    def __init__(self, cfg, prof, wanted):
        self.unit = cfg["address"]
        self.blocks = profiles.plan_modbus(prof, wanted, cfg.get("ratio", 1))
        self._fc = 3
        self._bytes = -1
        self._start = 0
        self.framer = self._frame  # bound once: the bus calls it per chunk without allocating

    def _frame(self, rx, n):
        if n == 0 and self._bytes >= 0:
            return 5 + self._bytes  # the whole reply's length: the bus sleeps once, not per piece
        start, need = modbus.locate(rx, n, self.unit, self._fc, self._bytes)
        self._start = start
        return need

    async def request(self, bus, line, timeout_ms, gap_ms, tx_len, fc, count=0, echo=False):
        """Send bus.tx[:tx_len] (already built) and check the reply; returns (data_offset, data_len)
        into bus.rx. The caller holds bus.lock."""
        self._fc = fc
        self._bytes = modbus.data_bytes(fc, count) if fc <= 4 and count else -1
        try:
            got = await bus.transact(line, tx_len, self.framer, timeout_ms, gap_ms)
        except BusTimeout as e:
            err = modbus.diagnose(bus.rx, e.received, self.unit, fc)
            if err is not None:
                raise err
            raise
        return modbus.parse_reply(bus.rx, self._start, got, self.unit, fc, count,
                                  bus.tx if fc > 4 else None)

    async def read(self, bus, line, timeout_ms, gap_ms, out):
        """Fill `out` (name -> Decimal) with every planned point; raises on the first failed block."""
        lock = bus.lock
        for blk in self.blocks:
            # acquire/release rather than `async with`: two coroutine objects fewer per block
            await lock.acquire()
            try:
                n = modbus.build_read(bus.tx, self.unit, blk.fc, blk.address, blk.count)
                off, _ = await self.request(bus, line, timeout_ms, gap_ms, n, blk.fc, blk.count)
                decode_points(bus.rx, off, blk.points, out)
            finally:
                lock.release()
        return out

    async def write_registers(self, bus, line, timeout_ms, gap_ms, address, values):
        """FC 06 for one register, FC 16 for several; raises ModbusException if the meter refuses."""
        async with bus.lock:
            if len(values) == 1:
                n = modbus.build_write_single(bus.tx, self.unit, address, values[0])
                fc = modbus.WRITE_SINGLE
            else:
                n = modbus.build_write_multiple(bus.tx, self.unit, address, values)
                fc = modbus.WRITE_MULTIPLE
            await self.request(bus, line, timeout_ms, gap_ms, n, fc)

    async def read_raw(self, bus, line, timeout_ms, gap_ms, fc, address, count):
        """Registers (FC 03/04: list of ints) or bits (FC 01/02: list of 0/1) as the meter sends them."""
        async with bus.lock:
            n = modbus.build_read(bus.tx, self.unit, fc, address, count)
            off, _ = await self.request(bus, line, timeout_ms, gap_ms, n, fc, count)
            rx = bus.rx
            if fc <= 2:
                return [modbus.bit(rx, off, i) for i in range(count)]
            return [(rx[off + 2 * i] << 8) | rx[off + 2 * i + 1] for i in range(count)]


def decode_points(rx, off, points, out):
    for name, boff, typ, order, k, e, mult, add, plus in points:
        if typ == "bit":
            out[name] = Decimal(modbus.bit(rx, off, boff) * mult + add, 0)
            continue
        m = regvalue.mantissa(regvalue.decode(rx, off + boff, typ, order), k)
        if plus is not None:
            m += regvalue.mantissa(regvalue.decode(rx, off + plus[0], plus[1], plus[2]), plus[3])
        out[name] = Decimal(m * mult + add, e)
    return out


def to_decimal(v, decimals, multiplier=1, scale=None):
    """A register value as an exact Decimal with `decimals` places (see meters.profile)."""
    if scale is None:
        scale = 0 if isinstance(v, float) else -decimals
    return Decimal(regvalue.mantissa(v, scale + decimals) * multiplier, -decimals)
