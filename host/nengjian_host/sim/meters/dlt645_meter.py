"""Simulated DL/T 645-2007 / -1997 electricity meter (CPython, for tests and the sim board).

Written independently of the firmware codec (firmware/nengjian/proto/dlt645.py) so that tests
cross-check two readings of the standard rather than one codec against itself. Framing, counters
and faults are the simulators' shared Meter68 (meter68.py).

Behaviour, as a real meter on a shared RS-485 bus:
- answers read data (2007 11H / 1997 01H) for its own address; unknown DIs, and those a test puts
  in .refuse (a meter model without that register), get an error reply (2007 D1H "no such data",
  1997 C1H "wrong DI");
- answers read address (13H) and wildcard-addressed reads only when configured only_meter=True
  (with several meters on a bus a wildcard would make them all talk at once);
- stays silent for other addresses, for broadcasts (99..99; a time sync is recorded in
  .synced_time) and for anything it cannot parse;
- counters advance with the injected clock at .rates (engineering units per second), wrap like a
  register at the field's width, and can be set by tests with set()/set_raw().

Memory (2007, memory=True), as SPEC section 5 describes it, from its own clock: the meter's clock is
the injected clock plus .clock_offset seconds (a drifting or mis-set meter), read with 04000101
(YYMMDDWW) and 04000102 (hhmmss). Whenever its clock passes a boundary it freezes: every
hourly_s (整点冻结: 05 04 00 NN time, 05 04 01 NN forward active total), at 00:00 (日冻结: 05 06 00 NN
time, 05 06 01 NN forward active block: total and four tariffs) and on the 1st at 00:00 (settlement:
00 01 00 NN), NN = 1 the most recent, as deep as hourly_depth / daily_depth / 12. Freezes are taken
as the meter's clock passes them (worked out at the next request, from the counter's history: a
set() in between rewrites that history, so tests set counters before the run). .frozen(kind, ts)
gives a test the reading frozen at boundary ts. A broadcast time sync is taken as SPEC says meters
do: within 5 minutes of the meter's time, not within 5 minutes of its midnight, once a day
(.syncs counts those taken).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from . import meter68
from .meter68 import Meter68, checked_frame, split_frame, to_bcd, wrap

BIAS = 0x33
BROADCAST = bytes([0x99] * 6)
CST = timezone(timedelta(hours=8))
DAY = 86400
FORWARD = 0x00010000
TARIFFS = (0x00010100, 0x00010200, 0x00010300, 0x00010400)
LEN_OFF = 9  # L, counted from the first 68
PAIR_OFF = 7  # the second 68

# (nbytes, decimals, signed); an independent copy of the SPEC section 5 table.
ITEMS_2007 = {
    0x00000000: (4, 2, True),  # combined active energy (sign bit)
    0x00010000: (4, 2, False),  # forward active energy
    0x00020000: (4, 2, False),  # reverse active energy
    0x00010100: (4, 2, False),
    0x00010200: (4, 2, False),
    0x00010300: (4, 2, False),
    0x00010400: (4, 2, False),
    0x02010100: (2, 1, False),  # phase A..C voltage
    0x02010200: (2, 1, False),
    0x02010300: (2, 1, False),
    0x02020100: (3, 3, True),  # phase A..C current
    0x02020200: (3, 3, True),
    0x02020300: (3, 3, True),
    0x02030000: (3, 4, True),  # total active power kW
    0x02060000: (2, 3, True),  # total power factor
    0x02800002: (2, 2, False),  # frequency
}
ITEMS_1997 = {
    0x9010: (4, 2, False),
    0x9020: (4, 2, False),
    0xB611: (2, 0, False),
    0xB621: (2, 2, False),
    0xB630: (3, 4, False),
    0xB650: (2, 3, False),
}


def addr_to_wire(address: str) -> bytes:
    return meter68.addr_to_wire(address, 6)


def make_frame(addr_wire: bytes, ctrl: int, plain: bytes, preamble: int = 0) -> bytes:
    body = bytes([0x68]) + addr_wire + bytes([0x68, ctrl, len(plain)]) + bytes((b + BIAS) & 0xFF for b in plain)
    return wrap(body, preamble)


def split(buf: bytes) -> int:
    """End index of the first complete 645 frame in buf (noise before it included), 0 if none yet.

    A frame starts at a 68 with its partner 68 seven bytes on (or not received yet)."""
    return split_frame(buf, LEN_OFF, PAIR_OFF)


def parse_frame(buf: bytes):
    """(addr_wire, ctrl, plain_data) of the first well-formed frame, or None."""
    frame = checked_frame(buf, LEN_OFF, PAIR_OFF)
    if frame is None:
        return None
    return frame[1:7], frame[8], bytes((b - BIAS) & 0xFF for b in frame[10:-2])


class Dlt645Meter(Meter68):
    protocol = "dlt645"
    split = staticmethod(split)
    parse_frame = staticmethod(parse_frame)

    def __init__(self, address: str, values: dict | None = None, rates: dict | None = None,
                 only_meter: bool = False, v1997: bool = False, preamble: int = 4, clock=time.monotonic,
                 refuse=(), memory: bool = False, clock_offset: float = 0.0, hourly_s: int = 3600,
                 hourly_depth: int = 48, daily_depth: int = 62):
        self.items = ITEMS_1997 if v1997 else ITEMS_2007
        super().__init__(self.items, rates, clock)
        self.address = address.rjust(12, "0")
        self.wire = addr_to_wire(self.address)
        self.only_meter = only_meter
        self.v1997 = v1997
        self.preamble = preamble
        self.synced_time = None  # (YY, MM, DD, hh, mm, ss) of the last broadcast time sync
        self.refuse = set(refuse)  # DIs answered "no such data" although they have a value
        for di, value in (values or {}).items():
            self.set(di, value)
        self.memory = memory and not v1997
        self.clock_offset = clock_offset
        self.hourly_s = hourly_s
        self.depth = {"hourly": hourly_depth, "daily": daily_depth, "settlement": 12}
        self.freezes: dict[str, list[tuple[int, int]]] = {"hourly": [], "daily": [], "settlement": []}
        self.syncs = 0
        self._synced_day = None
        t = self.meter_time()
        self._next_freeze = int(t) - int(t) % hourly_s + hourly_s

    # -- memory --------------------------------------------------------------------------------
    def meter_time(self) -> float:
        """The meter's own clock, as UTC seconds (it shows them as CST)."""
        return self.clock() + self.clock_offset

    def _advance(self) -> None:
        now = self.meter_time()
        while self._next_freeze <= now:
            b = self._next_freeze
            raw = self.raw_at(FORWARD, b - self.clock_offset) if FORWARD in self._base else 0
            self._freeze("hourly", b, raw)
            local = b + 8 * 3600
            if local % DAY == 0:
                self._freeze("daily", b, raw)
                if datetime.fromtimestamp(b, CST).day == 1:
                    self._freeze("settlement", b, raw)
            self._next_freeze = b + self.hourly_s

    def _freeze(self, kind: str, b: int, raw: int) -> None:
        lst = self.freezes[kind]
        lst.insert(0, (b, raw))
        del lst[self.depth[kind]:]

    def frozen(self, kind: str, ts: int):
        """The forward active total (Decimal kWh) the meter froze at boundary ts, or None."""
        self._advance()
        for b, raw in self.freezes[kind]:
            if b == ts:
                return meter68.Decimal(raw).scaleb(-2)
        return None

    def _memory_read(self, di: int):
        """Value bytes of a memory DI, b"" for no such freeze, or None for a DI that is not memory."""
        d3, d2, d1, n = di >> 24, (di >> 16) & 0xFF, (di >> 8) & 0xFF, di & 0xFF
        if di in (0x04000101, 0x04000102):
            t = datetime.fromtimestamp(int(self.meter_time()), CST)
            if di == 0x04000101:
                return bytes.fromhex("%02d%02d%02d%02d" % (t.year % 100, t.month, t.day, t.isoweekday() % 7))[::-1]
            return bytes.fromhex("%02d%02d%02d" % (t.hour, t.minute, t.second))[::-1]
        kind = {(0x05, 0x04): "hourly", (0x05, 0x06): "daily"}.get((d3, d2))
        if di & 0xFFFFFF00 == FORWARD and n:
            kind = "settlement"
        if kind is None or (kind != "settlement" and d1 not in (0, 1)):
            return None
        self._advance()
        lst = self.freezes[kind]
        if not 1 <= n <= len(lst):
            return b""
        b, raw = lst[n - 1]
        if kind != "settlement" and d1 == 0:
            t = datetime.fromtimestamp(b, CST)
            return bytes.fromhex("%02d%02d%02d%02d%02d" % (t.year % 100, t.month, t.day, t.hour, t.minute))[::-1]
        out = to_bcd(raw, 4)
        if kind == "daily":
            at = b - self.clock_offset
            out += b"".join(to_bcd(self.raw_at(k, at) if k in self._base else 0, 4) for k in TARIFFS)
        return out

    def _time_sync(self, data: bytes) -> None:
        text = data[::-1].hex()
        if not text.isdigit():
            return
        self.synced_time = tuple(int(text[i:i + 2]) for i in range(0, 12, 2))
        if not self.memory:
            return
        yy, mo, dd, hh, mi, ss = self.synced_time
        try:
            to = datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=CST).timestamp()
        except ValueError:
            return
        mine = self.meter_time()
        local = (mine + 8 * 3600) % DAY
        day = int(mine + 8 * 3600) // DAY
        if abs(to - mine) > 300 or local < 300 or local > DAY - 300 or self._synced_day == day:
            return
        self._advance()
        self._synced_day = day
        self.clock_offset += to - mine
        self.syncs += 1

    # -- protocol ------------------------------------------------------------------------------
    def _addressed(self, wire: bytes) -> bool:
        if wire == self.wire:
            return True
        if 0xAA in wire and all(w == 0xAA or w == m for w, m in zip(wire, self.wire)):
            return self.only_meter
        return False

    def _answer(self, parsed):
        wire, ctrl, data = parsed
        if ctrl & 0x80:
            return None  # another slave's reply
        if wire == BROADCAST:
            text = data[::-1].hex()
            if ctrl == 0x08 and len(data) == 6 and text.isdigit():
                self._time_sync(data)
            return None
        if not self._addressed(wire):
            return None
        self.requests += 1
        if not self.v1997 and ctrl == 0x13 and not data:
            return make_frame(self.wire, 0x93, self.wire, self.preamble)
        if self.v1997 and ctrl == 0x01 and len(data) == 2:
            return self._read(data, 2, 0x81, 0xC1, 0x02)
        if not self.v1997 and ctrl == 0x11 and len(data) == 4:
            return self._read(data, 4, 0x91, 0xD1, 0x02)
        if not self.v1997 and ctrl == 0x12:
            return make_frame(self.wire, 0xD2, bytes([0x02]), self.preamble)  # no follow-up data here
        return make_frame(self.wire, (ctrl & 0x1F) | 0xC0, bytes([0x01]), self.preamble)

    def _read(self, data: bytes, di_bytes: int, ok: int, err: int, no_data: int) -> bytes:
        di = int.from_bytes(data[:di_bytes], "little")
        if self.memory and di_bytes == 4 and di not in self.refuse:
            value = self._memory_read(di)
            if value == b"":
                return make_frame(self.wire, err, bytes([no_data]), self.preamble)
            if value is not None:
                return make_frame(self.wire, ok, data[:di_bytes] + value, self.preamble)
        if di not in self.items or di not in self._base or di in self.refuse:
            return make_frame(self.wire, err, bytes([no_data]), self.preamble)
        nbytes, _, signed = self.items[di]
        return make_frame(self.wire, ok, data[:di_bytes] + to_bcd(self.raw(di), nbytes, signed), self.preamble)
