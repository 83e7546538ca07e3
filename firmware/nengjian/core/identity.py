"""Identifiers the platform checks: the enterprise's unified social credit code (GB 32100-2015)
and the 16-digit data-item code (2-2-4-6-2, with its scope rule). Shared by firmware and host."""

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17):
    total = 0
    for ch, w in zip(first17, _USCC_WEIGHTS):
        v = USCC_CHARS.find(ch)
        if v < 0:
            raise ValueError("character %r is not allowed in a credit code" % ch)
        total += v * w
    return USCC_CHARS[(31 - total % 31) % 31]


def uscc_problem(code):
    """None if `code` is a valid 18-character unified social credit code, else why not."""
    if not isinstance(code, str) or len(code) != 18:
        return "must be 18 characters"
    for ch in code:
        if USCC_CHARS.find(ch) < 0:
            return "character %r is not allowed (digits and A-Y without I, O, S, V, Z)" % ch
    want = uscc_check_char(code[:17])
    if code[17] != want:
        return "check character is %r, expected %r (a typing error?)" % (code[17], want)
    return None


def data_code_problem(code, scope):
    """None if `code` is a well-formed data-item code for `scope`, else why not."""
    if not isinstance(code, str) or len(code) != 20:
        return "must be 16 digits written 2-2-4-6-2 with hyphens"
    for i, ch in enumerate(code):
        if i in (2, 5, 10, 17):
            if ch != "-":
                return "must be 16 digits written 2-2-4-6-2 with hyphens"
        elif not "0" <= ch <= "9":
            return "must be 16 digits written 2-2-4-6-2 with hyphens"
    if scope not in (1, 2, 3, 4):
        return "scope must be 1..4"
    if scope == 1 and code[0:2] != "00":
        return "scope 1 (whole plant) needs process 00"
    if scope <= 2 and code[3:5] != "00":
        return "scope %d needs process unit 00" % scope
    if scope <= 3 and code[6:10] != "0000":
        return "scope %d needs equipment 0000" % scope
    return None


def energy_code(code):
    """The 4-digit energy/material code inside a data-item code."""
    return code[13:17]
