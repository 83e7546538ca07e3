"""Reads one Modbus RTU meter through a Bus, following its profile's read plan; also writes
registers (FC 06/16) for time setting and configuration.

The poll (read) runs its blocks as the bus's steps, awaited as a reusable nengjian.bus.rs485.Steps;
every other exchange goes through `request`, under the bus lock for the request, the reply and its
parsing. Both check a reply with _reply. The framer is bound once and finds our reply among noise (see proto.modbus.locate); after
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

from nengjian.bus.rs485 import BusTimeout, Steps
from nengjian.core.decimal import Decimal, put
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
        self._scanned = False
        self.framer = self._frame  # bound once: the bus calls it per chunk without allocating
        self.id = cfg.get("id")
        # The profile's clock registers, kept as nengjian.meters.memwatch wants a meter's memory;
        # where the site keeps the meter's clock, memwatch sets .watch (a memwatch.Watch): after a
        # successful read, watch.due() is asked, and watch.after() runs only when a check is due.
        self.memory = {"clock": prof["clock"]} if "clock" in prof else None
        self.watch = None
        self._steps = _Read(self)

    def _frame(self, rx, n):
        if n == 0 and self._bytes >= 0:
            return 5 + self._bytes  # the whole reply's length: the bus sleeps once, not per piece
        need = modbus.scan(rx, n, self.unit, self._fc, self._bytes, self._found)
        self._scanned = need == 0
        return need

    def _expect(self, fc, count):
        self._fc = fc
        self._bytes = modbus.data_bytes(fc, count) if fc <= 4 and count else -1
        self._scanned = False  # the framer found a whole candidate with our unit, function, count and CRC

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
        start = self._found[0]
        if self._scanned and fc <= 4 and bus.rx[start + 1] == fc:
            return start + 3  # a normal read reply, already checked by scan: check_reply would repeat it
        return modbus.check_reply(bus.rx, start, got, self.unit, fc, count,
                                  bus.tx if fc > 4 else None)

    async def request(self, bus, line, timeout_ms, gap_ms, tx_len, fc, count=0):
        """Send bus.tx[:tx_len] (already built) and check the reply; returns the data's offset in
        bus.rx. The caller holds bus.lock."""
        self._expect(fc, count)
        wait = bus.begin(line, tx_len, self.framer, timeout_ms, gap_ms)
        while wait:
            await asyncio.sleep_ms(wait)
            wait = bus.step()
        return self._reply(bus, fc, count)

    def read(self, bus, line, timeout_ms, gap_ms, out):
        """Fill `out` (name -> Decimal) with every planned point the meter does not refuse; raises
        on the first block that fails otherwise, or when the meter refused every block. Awaited:
        the driver's reusable Steps (_Read), so a read makes no coroutine object."""
        return self._steps.run(bus, line, timeout_ms, gap_ms, out)

    async def read_block(self, bus, line, timeout_ms, gap_ms, blk, out):
        """One block of the plan alone into `out` (a refused block's points: meters.refusals)."""
        async with bus.lock:
            n = modbus.build_read(bus.tx, self.unit, blk.fc, blk.address, blk.count)
            off = await self.request(bus, line, timeout_ms, gap_ms, n, blk.fc, blk.count)
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
            off = await self.request(bus, line, timeout_ms, gap_ms, n, fc, count)
            rx = bus.rx
            if fc <= 2:
                return [modbus.bit(rx, off, i) for i in range(count)]
            return [(rx[off + 2 * i] << 8) | rx[off + 2 * i + 1] for i in range(count)]


class _Read(Steps):
    """ModbusMeter.read as the bus's steps: a unit is a block of the plan."""

    def __init__(self, drv):
        super().__init__(drv)
        self.refusal = None

    def first(self):
        self.drv.unsupported.begin()
        self.units = self.drv.blocks  # the list as it is now: a split replaces drv.blocks, not this one

    def skip(self, blk):
        return self.drv.unsupported.skip(blk)

    def begin(self, blk):
        return self.drv._begin_block(self.bus, self.line, self.timeout_ms, self.gap_ms, blk)

    def reply(self, blk):
        drv = self.drv
        try:
            decode_points(self.bus.rx, drv._reply(self.bus, blk.fc, blk.count), blk.points, self.out)
        except modbus.ModbusException as e:
            self.release()
            from nengjian.meters import refusals

            if e.code not in refusals.MODBUS_REFUSED:
                raise
            if len(blk.points) == 1:
                drv.unsupported.refused(blk, blk.points, e)
                return
            self.refusal = e
            self.sub = refusals.split(drv, self.bus, self.line, self.timeout_ms, self.gap_ms, blk, self.out)
            return
        drv.unsupported.answered(blk, blk.points)

    def resumed(self, blk):
        # after refusals.split: False when no point of the block answered alone
        e = self.refusal
        self.refusal = None
        if self.error is not None:
            raise self.error
        if not self.value:
            self.drv.unsupported.refused(blk, blk.points, e)

    def last(self):
        drv = self.drv
        drv.unsupported.end(self.out)
        w = drv.watch
        if w is not None and w.due():  # the test first: no coroutine per read while nothing is due
            self.sub = w.after(self.bus, self.line, self.timeout_ms, self.gap_ms)


def decode_points(rx, off, points, out):
    for name, boff, typ, order, k, e, mult, add, plus in points:
        if typ == "bit":
            put(out, name, modbus.bit(rx, off, boff) * mult + add, 0)
            continue
        m = regvalue.mantissa(regvalue.decode(rx, off + boff, typ, order), k)
        if plus is not None:
            m += regvalue.mantissa(regvalue.decode(rx, off + plus[0], plus[1], plus[2]), plus[3])
        put(out, name, m * mult + add, e)
    return out


def to_decimal(v, decimals, multiplier=1, scale=None):
    """A register value as an exact Decimal with `decimals` places (see meters.profile)."""
    if scale is None:
        scale = 0 if isinstance(v, float) else -decimals
    return Decimal(regvalue.mantissa(v, scale + decimals) * multiplier, -decimals)
