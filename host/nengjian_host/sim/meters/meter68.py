"""What the simulated 68H-frame meters (Dlt645Meter, Cjt188Meter) share (CPython).

Owns the simulators' own reading of a 68H frame, [FE..] 68 ... L DATA CS 16 with L at len_off from
the 68 (and, with pair_off, a second 68H that far on): finding, splitting and checking one, and
wrapping a body in preamble, CS and 16H. It is written apart from firmware/nengjian/proto/frame68.py
on purpose, so tests still cross-check two implementations. Also address and BCD encoding, and
Meter68, the base of both meters: counter registers that advance with an injected clock, the
online / bad_checksum faults, the request count and respond().
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def addr_to_wire(address: str, nbytes: int) -> bytes:
    """Wire bytes (lowest first) of an address of up to 2 * nbytes digits."""
    address = address.rjust(2 * nbytes, "0")
    return bytes(int(address[i:i + 2], 16) for i in range(2 * nbytes - 2, -2, -2))


def to_bcd(raw: int, nbytes: int, signed: bool = False) -> bytes:
    """nbytes of low-byte-first BCD; a signed field carries the sign in its top bit."""
    neg = raw < 0
    digits = str(abs(raw)).rjust(2 * nbytes, "0")
    if len(digits) > 2 * nbytes:
        raise ValueError("value too wide")
    out = bytearray(int(digits[i:i + 2], 16) for i in range(len(digits) - 2, -2, -2))
    if signed:
        if out[-1] & 0x80:
            raise ValueError("value too wide for a signed field")
        if neg:
            out[-1] |= 0x80
    elif neg:
        raise ValueError("negative value in an unsigned field")
    return bytes(out)


def wrap(body: bytes, preamble: int = 0) -> bytes:
    """A frame: preamble FE bytes, body (68 through the last data byte), CS, 16H."""
    return b"\xfe" * preamble + body + bytes([sum(body) & 0xFF, 0x16])


def find_frame(buf: bytes, len_off: int, pair_off: int = 0):
    """(start, end) of the first complete frame in buf, or None (none, or not complete yet)."""
    i = buf.find(b"\x68")
    while pair_off and 0 <= i and i + pair_off < len(buf) and buf[i + pair_off] != 0x68:
        i = buf.find(b"\x68", i + 1)
    if i < 0 or len(buf) - i <= len_off:
        return None
    end = i + len_off + 3 + buf[i + len_off]
    return (i, end) if end <= len(buf) else None


def split_frame(buf: bytes, len_off: int, pair_off: int = 0) -> int:
    """End index of the first complete frame in buf (noise before it included), 0 if none yet."""
    found = find_frame(bytes(buf), len_off, pair_off)
    return found[1] if found else 0


def checked_frame(buf: bytes, len_off: int, pair_off: int = 0):
    """The first complete frame in buf (68 to 16H) if its CS and end byte are right, else None."""
    buf = bytes(buf)
    found = find_frame(buf, len_off, pair_off)
    if not found:
        return None
    frame = buf[found[0]:found[1]]
    if sum(frame[:-2]) & 0xFF != frame[-2] or frame[-1] != 0x16:
        return None
    return frame


class Meter68:
    """Base of the simulated 68H meters. fields: key -> (nbytes, decimals[, signed]).

    A subclass sets protocol, split and parse_frame (static: bytes -> parsed tuple or None) and
    answers a parsed request in _answer(parsed) (reply bytes, or None for silence).
    """

    protocol = ""

    def __init__(self, fields: dict, rates: dict | None, clock):
        self._fields = fields
        self.rates = dict(rates or {})
        self.clock = clock
        self.online = True  # False: a dead meter, never answers
        self.bad_checksum = False  # fault: replies carry a wrong CS
        self.requests = 0
        self._base: dict = {}
        self._t0: dict = {}

    # -- values --------------------------------------------------------------------------------
    def set(self, key, value) -> None:
        """Set a value in engineering units (int, str, Decimal or float: rounded to the field)."""
        dec = self._fields[key][1]
        self.set_raw(key, int((Decimal(str(value)) * (10 ** dec)).to_integral_value(ROUND_HALF_EVEN)))

    def set_raw(self, key, raw: int) -> None:
        if key not in self._fields:
            raise KeyError(hex(key) if isinstance(key, int) else key)
        self._base[key] = raw
        self._t0[key] = self.clock()

    def raw(self, key) -> int:
        return self.raw_at(key, self.clock())

    def raw_at(self, key, at: float) -> int:
        """The register at clock time `at` (the rate applied since the last set(); not before it)."""
        spec = self._fields[key]
        nbytes, dec = spec[0], spec[1]
        raw = self._base[key]
        rate = self.rates.get(key)
        if rate:
            raw += int(Decimal(str(rate)) * Decimal(str(at - self._t0[key])) * (10 ** dec))
        if not (len(spec) > 2 and spec[2]):
            raw %= 10 ** (2 * nbytes)  # a register rolls over at its width
        return raw

    def value(self, key) -> Decimal:
        return Decimal(self.raw(key)).scaleb(-self._fields[key][1])

    # -- protocol ------------------------------------------------------------------------------
    def respond(self, request: bytes):
        """Reply bytes for one request (bytes may carry preamble/noise), or None for silence."""
        if not self.online:
            return None
        parsed = self.parse_frame(bytes(request))
        reply = self._answer(parsed) if parsed is not None else None
        if reply and self.bad_checksum:
            reply = reply[:-2] + bytes([reply[-2] ^ 0xFF]) + reply[-1:]
        return reply

    def _answer(self, parsed):
        raise NotImplementedError
