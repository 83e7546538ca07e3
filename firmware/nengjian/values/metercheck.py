"""A crew's performance check of a meter: its display as read, against the gateway's last reading.

Owns: the arithmetic (exact: integers at a common exponent, a 32-bit ESP32 float cannot hold a
7-digit register) and the check's ledger event. The allowance is class % of the gateway's reading
plus one digit of the display as read (the last decimal the crew wrote down): the regulation names
no formula, and a meter's class bounds its error relative to the measured quantity while the display
can only show whole digits. The alarm it raises or clears is kept by nengjian.values.metrology.
Loaded by the console's `check` for the one request, and dropped after it.
"""

from nengjian.core import timeutil
from nengjian.core.decimal import Decimal


class MetrologyError(ValueError):
    pass


def parse_class(text):
    """(mantissa, decimals) of an accuracy class '0.2S', '0.5S', '0.5', '1', '2' (percent of reading)."""
    s = str(text).strip().upper()
    if s.endswith("S"):
        s = s[:-1]
    whole, _dot, frac = s.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or int(whole + frac) == 0:
        raise MetrologyError("accuracy class %r: give it as the meter's plate says (0.2S, 0.5S, 1, 2)" % (text,))
    return int(whole + frac), len(frac)


def compare(reading, displayed, accuracy):
    """(difference displayed - reading, allowance, beyond) as Decimals and a bool; `reading` and
    `displayed` Decimals, `accuracy` a class text. allowance = class % of |reading| + one digit of
    `displayed`."""
    ck, cd = parse_class(accuracy)
    e = min(reading.exponent, displayed.exponent)
    r = reading.mantissa * 10 ** (reading.exponent - e)
    d = displayed.mantissa * 10 ** (displayed.exponent - e)
    digit = 10 ** (displayed.exponent - e)
    scale = 100 * 10 ** cd  # class % -> fraction, at the class's own decimals
    allow = abs(r) * ck + digit * scale  # at exponent e - cd - 2
    diff = d - r
    return Decimal(diff, e), _trim(Decimal(allow, e - cd - 2)), abs(diff) * scale > allow


def parse_decimal(text):
    """Exact Decimal of a display as read ('12345.6', '0.52'); ValueError for anything else."""
    s = str(text).strip()
    whole, dot, frac = s.partition(".")
    if not whole.isdigit() or (dot and not frac.isdigit()) or len(whole + frac) > 15:
        raise ValueError("%r is not a meter display (digits, one optional point)" % (text,))
    return Decimal(int(whole + frac), -len(frac))


def _trim(v):
    m, e = v.mantissa, v.exponent
    while e < 0 and m % 10 == 0 and m:
        m //= 10
        e += 1
    return Decimal(m, e)


def _signed(v):
    t = v.text()
    return t if t.startswith("-") else "+" + t


def check(mt, meter_id, point, reading, reading_ts, displayed_text, now, who=""):
    """The crew's check of one meter point: a dict for the console (meter, point, displayed,
    gateway, gateway_at, difference, allowed, class, beyond); the ledger event, and an alarm
    when beyond the class. MetrologyError if it cannot be judged (no class, no reading)."""
    accuracy = mt.classes.get(meter_id)
    if accuracy is None:
        raise MetrologyError("meter %s has no accuracy class in the site config (meters[].class, e.g. 0.5S)"
                             % meter_id)
    if reading is None:
        raise MetrologyError("the gateway has no reading of %s %s yet: wait for a poll" % (meter_id, point))
    try:
        displayed = parse_decimal(displayed_text)
    except ValueError as e:
        raise MetrologyError("displayed value: %s" % e) from None
    diff, allowed, beyond = compare(reading, displayed, accuracy)
    digit = Decimal(1, displayed.exponent)
    at = timeutil.cst_text(reading_ts) if reading_ts else "?"
    text = ("%s %s: displayed %s, gateway %s (%s, %d s before), difference %s, allowed %s "
            "(class %s: %s %% of reading + 1 digit %s): %s%s" % (
                meter_id, point, displayed.text(), reading.text(), at, max(0, now - (reading_ts or now)),
                _signed(diff), allowed.text(), accuracy, accuracy.rstrip("Ss"), digit.text(),
                "BEYOND CLASS" if beyond else "within class", ("; by " + who) if who else ""))
    mt._event("check", text[:240], "check.done")
    key = "check:%s.%s" % (meter_id, point)
    if beyond:
        mt.record_check(key, ["beyond", "meter %s %s: display differs from the gateway by %s, "
                              "beyond class %s (allowed %s)" % (meter_id, point, _signed(diff), accuracy,
                                                                allowed.text())],
                        "CHECK %s %s beyond class %s: difference %s, allowed %s" % (
                            meter_id, point, accuracy, _signed(diff), allowed.text()), "check.beyond")
    else:
        mt.record_check(key, None, "CLEARED CHECK %s %s: within class %s again" % (meter_id, point, accuracy),
                        "check.cleared")
    return {"meter": meter_id, "point": point, "displayed": displayed.text(), "gateway": reading.text(),
            "gateway_at": reading_ts, "difference": _signed(diff), "allowed": allowed.text(),
            "class": accuracy, "beyond": beyond}
