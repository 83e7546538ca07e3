"""The firmware's exact number: a metered quantity as mantissa * 10**exponent.

Meters read fixed-point values that a 32-bit ESP32 float cannot hold (7+ digits), so readings,
interval values and coefficients stay Decimal from the codec to the platform's text. The store
encodes it as a CBOR decimal fraction (nengjian.store.cbor); everything else only builds and prints it.

A meter's readings (nengjian.meters.poller.PolledMeter.values) are refreshed in place each poll
(put): the poll loop allocates no Decimal, and no reading stays behind as a small object between
whatever else the heap holds. The store encodes a reading when it is appended and the interval
engine takes its integers, so nothing keeps a reading past its poll; whoever would must copy it.
"""


class Decimal:
    """mantissa * 10**exponent, exact. The firmware's representation of a metered quantity."""

    __slots__ = ("mantissa", "exponent")

    def __init__(self, mantissa, exponent):
        self.mantissa = mantissa
        self.exponent = exponent

    def __eq__(self, other):
        return (isinstance(other, Decimal) and self.mantissa == other.mantissa
                and self.exponent == other.exponent)

    def __repr__(self):
        return "Decimal(%d, %d)" % (self.mantissa, self.exponent)

    def text(self):
        """Plain decimal text, no float on the way: '-12.05' for Decimal(-1205, -2)."""
        m = self.mantissa
        e = self.exponent
        sign = "-" if m < 0 else ""
        digits = str(-m if m < 0 else m)
        if e >= 0:
            return sign + digits + "0" * e
        n = -e
        if len(digits) <= n:
            digits = "0" * (n - len(digits) + 1) + digits
        return sign + digits[:-n] + "." + digits[-n:]


def put(out, name, mantissa, exponent):
    """out[name] = Decimal(mantissa, exponent), refreshing the Decimal already there (module doc)."""
    d = out.get(name)
    if d is None:
        out[name] = Decimal(mantissa, exponent)
    else:
        d.mantissa = mantissa
        d.exponent = exponent
