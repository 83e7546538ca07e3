"""Simulated CJ/T 188 water / gas / heat meter (CPython, for tests and the sim board).

Written independently of the firmware codec (firmware/nengjian/proto/cjt188.py). It serves the
901FH read with the CJ/T 188-2004 layouts described there (water/gas L=16H, heat T=20H..29H L=2EH)
and the 810AH read address. Like a meter on a shared bus it answers only its own type (or AAH) and
address, answers the AA..AA wildcard only when configured only_meter=True, and is silent for the
99..99 broadcast, for replies of other meters and for anything it cannot parse.

di_order: "any" (default) accepts the DI as 1F 90 or 90 1F and echoes it as received; "low_first" /
"high_first" emulate a picky meter that only understands one order (silence otherwise).
Faults a test can switch: abnormal (answer the 901F read with an abnormal reply, C1H with SER and
the status word) and cut_after (a field name: the 901F reply ends after that field's value, as
from a meter without the later fields).
Counters advance with the injected clock at .rates (units per second) and roll over at the field
width; tests set them with set()/set_raw(). The real-time field comes from .now() (default: the
host's local time). Framing, counters and faults are the simulators' shared Meter68 (meter68.py).
"""

from __future__ import annotations

import time

from . import meter68
from .meter68 import Meter68, checked_frame, split_frame, to_bcd, wrap

# name: (nbytes, decimals)
FIELDS = {
    "flow": (4, 2),
    "settle_flow": (4, 2),
    "heat": (4, 2),
    "settle_heat": (4, 2),
    "power": (4, 2),
    "flow_rate": (4, 4),
    "supply_temp": (3, 2),
    "return_temp": (3, 2),
    "work_hours": (3, 0),
}
DEFAULT_UNITS = {"flow": 0x2C, "settle_flow": 0x2C, "heat": 0x05, "settle_heat": 0x05, "power": 0x17,
                 "flow_rate": 0x35}
BROADCAST = bytes([0x99] * 7)
LEN_OFF = 10  # L, counted from the 68


def addr_to_wire(address: str) -> bytes:
    return meter68.addr_to_wire(address, 7)


def make_frame(meter_type: int, addr_wire: bytes, ctrl: int, data: bytes, preamble: int = 0) -> bytes:
    return wrap(bytes([0x68, meter_type]) + addr_wire + bytes([ctrl, len(data)]) + data, preamble)


def split(buf: bytes) -> int:
    """End index of the first complete CJ/T 188 frame in buf (noise before it included), 0 if none."""
    return split_frame(buf, LEN_OFF)


def parse_frame(buf: bytes):
    """(meter_type, addr_wire, ctrl, data) of the first well-formed frame, or None."""
    frame = checked_frame(buf, LEN_OFF)
    if frame is None:
        return None
    return frame[1], frame[2:9], frame[9], frame[11:-2]


class Cjt188Meter(Meter68):
    protocol = "cjt188"
    split = staticmethod(split)
    parse_frame = staticmethod(parse_frame)

    def __init__(self, meter_type: int, address: str, values: dict | None = None, units: dict | None = None,
                 rates: dict | None = None, status: int = 0, only_meter: bool = False, di_order: str = "any",
                 preamble: int = 4, clock=time.monotonic, now=None, abnormal: bool = False,
                 cut_after: str | None = None):
        super().__init__(FIELDS, rates, clock)
        self.meter_type = meter_type
        self.address = address.rjust(14, "0")
        self.wire = addr_to_wire(self.address)
        self.units = dict(DEFAULT_UNITS, **(units or {}))
        self.status = status
        self.only_meter = only_meter
        self.di_order = di_order
        self.preamble = preamble
        self.now = now or (lambda: time.localtime()[:6])
        self.abnormal = abnormal
        self.cut_after = cut_after
        for name in FIELDS:
            self.set_raw(name, 0)
        for name, value in (values or {}).items():
            self.set(name, value)

    @property
    def heat_meter(self) -> bool:
        return 0x20 <= self.meter_type <= 0x29

    def _di_ok(self, data: bytes, di: int) -> bool:
        lo, hi = di & 0xFF, di >> 8
        if data[:2] == bytes([lo, hi]):
            return self.di_order in ("any", "low_first")
        if data[:2] == bytes([hi, lo]):
            return self.di_order in ("any", "high_first")
        return False

    def _time(self) -> bytes:
        y, mo, d, h, mi, s = self.now()[:6]
        return to_bcd(s, 1) + to_bcd(mi, 1) + to_bcd(h, 1) + to_bcd(d, 1) + to_bcd(mo, 1) + to_bcd(y, 2)

    def _value(self, name: str, with_unit: bool = True) -> bytes:
        out = to_bcd(self.raw(name), FIELDS[name][0])
        return out + bytes([self.units[name]]) if with_unit else out

    def payload(self) -> bytes:
        """The 901F data after DI and SER (up to cut_after's field when that is set)."""
        st = bytes([self.status & 0xFF, (self.status >> 8) & 0xFF])
        if self.heat_meter:
            parts = [("settle_heat", True), ("heat", True), ("power", True), ("flow_rate", True), ("flow", True),
                     ("supply_temp", False), ("return_temp", False), ("work_hours", False)]
        else:
            parts = [("flow", True), ("settle_flow", True)]
        out = b""
        for name, with_unit in parts:
            out += self._value(name, with_unit)
            if name == self.cut_after:
                return out
        return out + self._time() + st

    def _answer(self, parsed):
        meter_type, wire, ctrl, data = parsed
        if ctrl & 0x80 or wire == BROADCAST:
            return None
        if meter_type not in (self.meter_type, 0xAA):
            return None
        wildcard = 0xAA in wire
        if wildcard:
            if not all(w in (0xAA, m) for w, m in zip(wire, self.wire)) or not self.only_meter:
                return None
        elif wire != self.wire:
            return None
        self.requests += 1
        if ctrl == 0x01 and len(data) == 3 and self._di_ok(data, 0x901F):
            if self.abnormal:
                return make_frame(self.meter_type, self.wire, 0xC1,
                                  bytes([data[2], self.status & 0xFF, (self.status >> 8) & 0xFF]), self.preamble)
            return make_frame(self.meter_type, self.wire, 0x81, data + self.payload(), self.preamble)
        if ctrl == 0x03 and len(data) == 3 and self._di_ok(data, 0x810A):
            return make_frame(self.meter_type, self.wire, 0x83, data, self.preamble)
        if len(data) == 3 and {bytes(data[:2]), bytes(data[1::-1])} & {b"\x1f\x90", b"\x0a\x81"}:
            return None  # a known DI in the order this meter does not understand
        ser = data[2] if len(data) >= 3 else 0
        return make_frame(self.meter_type, self.wire, (ctrl & 0x3F) | 0xC0,
                          bytes([ser, self.status & 0xFF, (self.status >> 8) & 0xFF]), self.preamble)
