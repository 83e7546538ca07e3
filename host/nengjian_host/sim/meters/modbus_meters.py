"""Simulated Modbus RTU energy meters on a serial port, served by pymodbus (an independent peer).

Each meter's cumulative energy advances in real time from its simulated load. Register map of
the `sim-energy` profile (profiles/meters/sim-energy.json), holding registers:
  0-1  total active energy, u32 ABCD, 0.01 kWh
  2-3  total active power, float32 ABCD, kW
A meter with clock_at >= 0 keeps a clock of its own (profile sim-energy-clock): its host clock (clock,
a callable of UTC seconds) plus clock_offset, shown as CST in six holding registers from clock_at
(year, month, day, hour, minute, second); an FC 16 write of those six sets it (clock_writes counts
them) and a write of anything else there is refused with exception 03.
Other kinds of meter, each with the register map of its profile: SimSteamMeter (spirax-tva-steam: steam
mass and heat totals), SimOilMeter (coriolis-oil-flowmeter: volume and mass totals, density),
SimVortexGasMeter (vortex-gas-totaliser); their totals advance with simulated time (advance()).
Faults a test can switch per unit: silent (no reply at all), bad_crc (reply with a broken CRC),
exception (answer with that exception code), refuse (registers this meter model lacks: a read that
covers one gets exception 02, illegal data address, the others are answered), delay_s (answer that late: a meter slower than the
gateway's timeout), truncate (drop that many bytes from the end of each reply), reply_unit (answer
with another unit id, CRC recomputed: a wrong slave id). Requests to units that do not exist get
silence, as on a real shared bus (pymodbus itself would answer them with exception 4).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice


@dataclass
class SimMeter:
    unit: int
    power_kw: float = 12.5
    energy_kwh: float = 1000.0
    silent: bool = False
    bad_crc: bool = False
    exception: int = 0  # answer every request with this Modbus exception code
    refuse: set = field(default_factory=set)  # register addresses answered with exception 02
    delay_s: float = 0.0  # answer this much later
    truncate: int = 0  # drop this many bytes from the end of each reply
    reply_unit: int = 0  # answer as this unit id instead (0: own id)
    requests: int = field(default=0)
    clock_at: int = -1  # first of the six clock registers; -1: the meter has no clock
    clock_offset: float = 0.0  # the meter's clock minus its host clock, seconds
    clock: object = time.time  # its host clock: a callable of UTC seconds
    clock_writes: int = 0

    def meter_time(self) -> float:
        return self.clock() + self.clock_offset  # type: ignore[operator]

    def clock_registers(self) -> list[int]:
        t = datetime.fromtimestamp(int(self.meter_time()), CST)
        return [t.year, t.month, t.day, t.hour, t.minute, t.second]

    def set_clock(self, values: list[int]) -> bool:
        """An FC 16 write at clock_at; False: not a time this meter takes."""
        if len(values) != 6:
            return False
        try:
            to = datetime(*values, tzinfo=CST).timestamp()  # type: ignore[misc]
        except (TypeError, ValueError):
            return False
        self.clock_offset += to - self.meter_time()
        self.clock_writes += 1
        return True

    def size(self) -> int:
        return max(64, len(self.registers()), self.clock_at + 6)

    def registers(self) -> list[int]:
        hundredths = int(round(self.energy_kwh * 100)) & 0xFFFFFFFF
        p = struct.unpack(">HH", struct.pack(">f", self.power_kw))
        return [hundredths >> 16, hundredths & 0xFFFF, p[0], p[1]]

    def advance(self, dt_s: float) -> None:
        """Run the simulated load for dt_s (simulated) seconds."""
        self.energy_kwh += self.power_kw * dt_s / 3600.0


CST = timezone(timedelta(hours=8))


def _f32(x: float) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">f", x)))


def _u32_low_first(x: int) -> list[int]:
    x &= 0xFFFFFFFF
    return [x & 0xFFFF, x >> 16]


@dataclass
class SimSteamMeter(SimMeter):
    """A steam flow meter with totaliser, register map of profiles/meters/spirax-tva-steam.json: mass
    total in whole kg and energy total in whole kWh, each two words low word first."""

    flow_kgh: float = 1800.0
    mass_kg: float = 52000.0
    kwh_per_kg: float = 0.75  # enthalpy of saturated steam at some 8 barg, about 2.7 MJ/kg
    heat_kwh: float = 39000.0
    pressure_barg: float = 8.0
    temperature_c: float = 175.4

    def advance(self, dt_s: float) -> None:
        kg = self.flow_kgh * dt_s / 3600.0
        self.mass_kg += kg
        self.heat_kwh += kg * self.kwh_per_kg

    def registers(self) -> list[int]:
        power_kw = self.flow_kgh * self.kwh_per_kg
        return (_u32_low_first(int(self.mass_kg)) + [int(self.flow_kgh), int(round(self.pressure_barg * 100)),
                                                     int(round(self.temperature_c * 10)), 0, int(power_kw)]
                + _u32_low_first(int(self.heat_kwh)))


@dataclass
class SimOilMeter(SimMeter):
    """An oil flowmeter that measures density and totals mass and volume, register map of
    profiles/meters/coriolis-oil-flowmeter.json: float32 pairs from address 246."""

    volume_flow_m3h: float = 0.6
    density_kgm3: float = 860.0
    volume_m3: float = 120.0
    mass_t: float = 103.2
    temperature_c: float = 35.0

    def advance(self, dt_s: float) -> None:
        dv = self.volume_flow_m3h * dt_s / 3600.0
        self.volume_m3 += dv
        self.mass_t += dv * self.density_kgm3 / 1000.0

    def registers(self) -> list[int]:
        regs = [0] * 262
        block = (_f32(self.volume_flow_m3h * self.density_kgm3 / 1000.0) + _f32(self.density_kgm3)
                 + _f32(self.temperature_c) + _f32(self.volume_flow_m3h) + [0] * 4 + _f32(self.mass_t)
                 + _f32(self.volume_m3))
        regs[246:246 + len(block)] = block
        return regs


@dataclass
class SimVortexGasMeter(SimMeter):
    """A vortex gas meter with totaliser, register map of profiles/meters/vortex-gas-totaliser.json:
    floats; the total in two, hundreds and above (as a count of hundreds) and the rest."""

    flow_nm3h: float = 90.0
    volume_nm3: float = 123487.89
    temperature_c: float = 18.5
    pressure_kpa: float = 210.0

    def advance(self, dt_s: float) -> None:
        self.volume_nm3 += self.flow_nm3h * dt_s / 3600.0

    def registers(self) -> list[int]:
        hundredths = int(self.volume_nm3 * 100)  # what the meter shows: 2 decimals
        high, low = divmod(hundredths, 10000)
        return (_f32(self.temperature_c) + _f32(self.pressure_kpa) + _f32(0.0) + _f32(self.flow_nm3h)
                + _f32(float(high)) + _f32(low / 100.0))


def _crc16(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


# pymodbus logs a traceback for every request to a unit it does not serve; on a shared bus that is
# normal traffic, not an error.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class SimModbusMeters:
    """Serve meters on `port` (a pty path) from a background thread with its own event loop."""

    def __init__(self, port: str, meters: list[SimMeter], baudrate: int = 9600, speedup: float = 1.0):
        self.port = port
        self.meters = {m.unit: m for m in meters}
        self.baudrate = baudrate
        self.speedup = speedup
        self._last = time.monotonic()
        self.devices = [
            SimDevice(id=m.unit, simdata=[SimData(0, values=[0] * m.size(),
                                                  datatype=DataType.REGISTERS)],
                      action=partial(self._action, m))
            for m in meters
        ]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server = None

    def _advance(self):
        now = time.monotonic()
        dt = (now - self._last) * self.speedup
        self._last = now
        for m in self.meters.values():
            m.advance(dt)

    async def _action(self, meter, function_code, start_address, address, count, current_registers, set_values):
        """Refresh the registers from the simulated load just before pymodbus answers."""
        self._advance()
        if meter.delay_s:
            await asyncio.sleep(meter.delay_s)
        if meter.exception:
            return ExcCodes(meter.exception)
        if any(address <= r < address + count for r in meter.refuse):
            return ExcCodes.ILLEGAL_ADDRESS
        at = meter.clock_at
        if at >= 0 and set_values is not None and address <= at + 5 and address + count > at:
            if address != at or not meter.set_clock(list(set_values)):
                return ExcCodes.ILLEGAL_VALUE
        regs = meter.registers()
        current_registers[0:len(regs)] = regs
        if at >= 0:
            current_registers[at:at + 6] = meter.clock_registers()
        return None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            if len(data) >= 1:
                m = self.meters.get(data[0])
                if m is not None:
                    m.requests += 1
            return data
        if not data:
            return data
        m = self.meters.get(data[0])
        if m is None or m.silent:
            return b""
        if m.reply_unit:
            body = bytes([m.reply_unit]) + data[1:-2]
            crc = _crc16(body)
            data = body + bytes([crc & 0xFF, crc >> 8])
        if m.truncate:
            data = data[:max(0, len(data) - m.truncate)]
        if m.bad_crc:
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    async def _main(self):
        self._server = ModbusSerialServer(self.devices, port=self.port, baudrate=self.baudrate,
                                          trace_packet=self._trace)
        serve = asyncio.create_task(self._server.serve_forever())
        self._ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            await self._server.shutdown()
            serve.cancel()

    def start(self) -> SimModbusMeters:
        def runner():
            self._loop = asyncio.new_event_loop()
            self._task = self._loop.create_task(self._main())
            try:
                self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass
        self._thread = threading.Thread(target=runner, name="sim-modbus", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self):
        if self._loop and self._task:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread:
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
