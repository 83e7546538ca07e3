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
    """None if `code` is a valid 18-character unified social credit code, else why not: (problem code,
    English text, its % arguments), which the config checks keep for the laptop to translate; `text`
    gives the English."""
    if not isinstance(code, str) or len(code) != 18:
        return ("uscc_len", "must be 18 characters", ())
    for ch in code:
        if USCC_CHARS.find(ch) < 0:
            return ("uscc_char", "character %r is not allowed (digits and A-Y without I, O, S, V, Z)", (ch,))
    want = uscc_check_char(code[:17])
    if code[17] != want:
        return ("uscc_check", "check character is %r, expected %r (a typing error?)", (code[17], want))
    return None


def data_code_problem(code, scope):
    """None if `code` is a well-formed data-item code for `scope`, else why not, as uscc_problem says it."""
    if not isinstance(code, str) or len(code) != 20:
        return _FORM
    for i, ch in enumerate(code):
        if i in (2, 5, 10, 17):
            if ch != "-":
                return _FORM
        elif not "0" <= ch <= "9":
            return _FORM
    if scope not in (1, 2, 3, 4):
        return ("scope_range", "scope must be 1..4", ())
    if scope == 1 and code[0:2] != "00":
        return ("scope_process", "scope 1 (whole plant) needs process 00", ())
    if scope <= 2 and code[3:5] != "00":
        return ("scope_unit", "scope %d needs process unit 00", (scope,))
    if scope <= 3 and code[6:10] != "0000":
        return ("scope_equipment", "scope %d needs equipment 0000", (scope,))
    return None


_FORM = ("code_form", "must be 16 digits written 2-2-4-6-2 with hyphens", ())


def text(problem):
    """The English of a problem (code, text, arguments)."""
    return problem[1] % problem[2] if problem[2] else problem[1]


def energy_code(code):
    """The 4-digit energy/material code inside a data-item code."""
    return code[13:17]
