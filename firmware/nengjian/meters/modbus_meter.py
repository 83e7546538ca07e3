"""Reads one Modbus RTU meter through a Bus, following its profile's read plan; also writes
registers (FC 06/16) for time setting and configuration.

Every exchange goes through `request`, which holds the bus lock for the request, the reply and its
parsing. The framer is bound once and finds our reply among noise (see proto.modbus.locate); after
a timeout the bytes that did arrive are examined so that "unit 5 answered instead of 1" reaches the
installer as a typed WrongUnit rather than a bare timeout.

Refused points: exception 01 (illegal function), 02 (illegal data address) or 03 (illegal data
value) says the request is one this meter never answers, whatever its state; 04, 06, 0B and the
rest say something about its state now and fail the poll as before. A one-point block so refused
makes that point unsupported (nengjian.meters.poller.Unsupported). A block of several points is
read again point by point in the same poll (nengjian.meters.refusals.split), because the plan
merges neighbouring points and bridges unused registers, and one hole in a meter's map (a tariff it
lacks) refuses the whole block: if any point answers alone, the block is replaced for good by its
single points, so only the truly refused ones are lost and the others cost one request each from
then on (re-merging would only meet the same hole again); if none does, the block is one
unsupported unit, tried again as a block. Either way a meter that refuses everything it is asked
still fails its poll.
"""

import asyncio

from nengjian.bus.rs485 import BusTimeout
from nengjian.core.decimal import Decimal
from nengjian.meters.poller import Unsupported
from nengjian.proto import modbus, regvalue


class ModbusMeter:
    protocol = "modbus-rtu"

    def __init__(self, cfg, prof, wanted):
        from nengjian.meters import profile as profiles  # construction only: dropped after boot (app)

        self.unit = cfg["address"]
        self.blocks = profiles.plan_modbus(prof, wanted, cfg.get("ratio", 1))
        self.unsupported = Unsupported(cfg)
        self.prof = prof  # for a block split into its points: plan_modbus again, one point each
        self.ratio = cfg.get("ratio", 1)
        self._fc = 3
        self._bytes = -1
        self._found = [0]  # where modbus.scan puts the reply's start
        self.framer = self._frame  # bound once: the bus calls it per chunk without allocating
        self.id = cfg.get("id")
        # The profile's clock registers, kept as nengjian.meters.memwatch wants a meter's memory;
        # where the site keeps the meter's clock, memwatch sets .watch (a memwatch.Watch): after a
        # successful read, watch.due() is asked, and watch.after() runs only when a check is due.
        self.memory = {"clock": prof["clock"]} if "clock" in prof else None
        self.watch = None

    def _frame(self, rx, n):
        if n == 0 and self._bytes >= 0:
            return 5 + self._bytes  # the whole reply's length: the bus sleeps once, not per piece
        return modbus.scan(rx, n, self.unit, self._fc, self._bytes, self._found)

    def _expect(self, fc, count):
        self._fc = fc
        self._bytes = modbus.data_bytes(fc, count) if fc <= 4 and count else -1

    def _begin_block(self, bus, line, timeout_ms, gap_ms, blk):
        fc = blk.fc
        self._expect(fc, blk.count)
        n = modbus.build_read(bus.tx, self.unit, fc, blk.address, blk.count)
        return bus.begin(line, n, self.framer, timeout_ms, gap_ms)

    def _reply(self, bus, fc, count):
        """After the bus's last step: the reply's data offset in bus.rx (see request)."""
        try:
            got = bus.end()
        except BusTimeout as e:
            err = modbus.diagnose(bus.rx, e.received, self.unit, fc)
            if err is not None:
                raise err
            raise
        return modbus.check_reply(bus.rx, self._found[0], got, self.unit, fc, count,
                                  bus.tx if fc > 4 else None)

    async def request(self, bus, line, timeout_ms, gap_ms, tx_len, fc, count=0, echo=False):
        """Send bus.tx[:tx_len] (already built) and check the reply; returns (data_offset, data_len)
        into bus.rx. The caller holds bus.lock."""
        self._expect(fc, count)
        try:
            got = await bus.transact(line, tx_len, self.framer, timeout_ms, gap_ms)
        except BusTimeout as e:
            err = modbus.diagnose(bus.rx, e.received, self.unit, fc)
            if err is not None:
                raise err
            raise
        return modbus.parse_reply(bus.rx, self._found[0], got, self.unit, fc, count,
                                  bus.tx if fc > 4 else None)

    async def read(self, bus, line, timeout_ms, gap_ms, out):
        """Fill `out` (name -> Decimal) with every planned point the meter does not refuse; raises
        on the first block that fails otherwise, or when the meter refused every block."""
        ref = self.unsupported
        ref.begin()
        lock = bus.lock
        for blk in self.blocks:
            if ref.skip(blk):
                continue
            refusal = None
            # take/acquire and release rather than `async with`, and the bus's steps inline rather
            # than request(): no coroutine object per block, only this one per read
            if not lock.take():
                await lock.acquire()
            try:
                wait = self._begin_block(bus, line, timeout_ms, gap_ms, blk)
                while wait:
                    await asyncio.sleep_ms(wait)
                    wait = bus.step()
                decode_points(bus.rx, self._reply(bus, blk.fc, blk.count), blk.points, out)
            except modbus.ModbusException as e:
                refusal = e
            finally:
                lock.release()
            if refusal is None:
                ref.answered(blk, blk.points)
                continue
            from nengjian.meters import refusals

            if refusal.code not in refusals.MODBUS_REFUSED:
                raise refusal
            if len(blk.points) == 1 or not await refusals.split(self, bus, line, timeout_ms, gap_ms, blk, out):
                ref.refused(blk, blk.points, refusal)
        ref.end(out)
        w = self.watch
        if w is not None and w.due():  # the test first: no coroutine per read while nothing is due
            await w.after(bus, line, timeout_ms, gap_ms)
        return out

    async def read_block(self, bus, line, timeout_ms, gap_ms, blk, out):
        """One block of the plan alone into `out` (a refused block's points: meters.refusals)."""
        async with bus.lock:
            n = modbus.build_read(bus.tx, self.unit, blk.fc, blk.address, blk.count)
            off, _ = await self.request(bus, line, timeout_ms, gap_ms, n, blk.fc, blk.count)
            decode_points(bus.rx, off, blk.points, out)

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
