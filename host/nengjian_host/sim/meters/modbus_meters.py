"""Simulated Modbus RTU energy meters on a serial port, served by pymodbus (an independent peer).

Each meter's cumulative energy advances in real time from its simulated load. Register map of
the `sim-energy` profile (profiles/meters/sim-energy.json), holding registers:
  0-1  total active energy, u32 ABCD, 0.01 kWh
  2-3  total active power, float32 ABCD, kW
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

    def registers(self) -> list[int]:
        hundredths = int(round(self.energy_kwh * 100)) & 0xFFFFFFFF
        p = struct.unpack(">HH", struct.pack(">f", self.power_kw))
        return [hundredths >> 16, hundredths & 0xFFFF, p[0], p[1]]


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
            SimDevice(id=m.unit, simdata=[SimData(0, values=[0] * 64, datatype=DataType.REGISTERS)],
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
            m.energy_kwh += m.power_kw * dt / 3600.0

    async def _action(self, meter, function_code, start_address, address, count, current_registers, set_values):
        """Refresh the registers from the simulated load just before pymodbus answers."""
        self._advance()
        if meter.delay_s:
            await asyncio.sleep(meter.delay_s)
        if meter.exception:
            return ExcCodes(meter.exception)
        if any(address <= r < address + count for r in meter.refuse):
            return ExcCodes.ILLEGAL_ADDRESS
        regs = meter.registers()
        current_registers[0:len(regs)] = regs
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
