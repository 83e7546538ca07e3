"""What the gateway writes itself (its alarms and ledger events), said in the crew's language.

Owns: turning a gateway text and its code into a messages.Text. The gateway keeps no catalogue: it
writes English and, beside it, a short code (a console status's "alarm_codes", an EVENT record's
fifth field: nengjian/core/records.py). The code names a catalogue entry `gw.CODE`, or a family of
them (`gw.CODE.*`), whose English is the firmware's own template; the arguments (meter, item, day,
duration ...) are taken back out of the gateway's text by that template and put into the Chinese.
The few English words the gateway puts into its arguments (levels, durations, periods) are said
too (`gw.word.*`, `gw.dur.*`). A text without a code, with a code the catalogue does not know, or
that its template does not match (a newer or older gateway's wording), is shown as the gateway
wrote it, in both languages. A ledger event without a code is tried against the templates of its
kind (`event`), so an older gateway's events read in Chinese where their wording is the same.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nengjian_host.common import messages

_FIELD = re.compile(r"\{([A-Za-z_0-9]+)\}")
_DURATIONS = (
    ("gw.dur.dh", re.compile(r"(?P<d>\d+) d (?P<h>\d+) h")),
    ("gw.dur.hm", re.compile(r"(?P<h>\d+) h (?P<m>\d+) min")),
    ("gw.dur.m", re.compile(r"(?P<m>\d+) min")),
)


@lru_cache(maxsize=None)
def _pattern(key: str) -> re.Pattern:
    en = messages.MESSAGES[key][0]
    out, at = [], 0
    for m in _FIELD.finditer(en):
        out.append(re.escape(en[at:m.start()]))
        out.append("(?P<%s>.*?)" % m.group(1))
        at = m.end()
    out.append(re.escape(en[at:]))
    return re.compile("".join(out), re.S)


def keys(code: str | None) -> list[str]:
    """The catalogue entries a code names: gw.CODE itself, then gw.CODE.* in catalogue order."""
    if not code or not isinstance(code, str):
        return []
    key = "gw." + code
    found = [key] if key in messages.MESSAGES else []
    return found + [k for k in messages.MESSAGES if k.startswith(key + ".")]


# The last errors whose wording says what failed (a reply that never came, the platform's answer):
# said in Chinese where an event or an alarm carries one as its {error} or {reason}.
_ERROR_FAMILIES = ("meter_error.timeout", "dest_error")


def _arg(name: str, value: str):
    """An argument as a Text: a word or duration the gateway writes in English, said in Chinese."""
    word = "gw.word." + value
    if word in messages.MESSAGES:
        return messages.msg(word)
    for key, pat in _DURATIONS:
        m = pat.fullmatch(value)
        if m:
            return messages.msg(key, **m.groupdict())
    if name in ("error", "reason"):  # a meter's or a platform's failure, as its last error says it
        for family in _ERROR_FAMILIES:
            for key in keys(family):
                if messages.MESSAGES[key][0] != "{error}" and _pattern(key).fullmatch(value):
                    return render(key[3:], value)
    if name == "detail":  # a text the gateway nests in an event (CALIBRATION ...: meter ... calibration ...)
        for key in messages.MESSAGES:
            if key.startswith("gw.") and key.endswith("_text") and _pattern(key).fullmatch(value):
                return render(key[3:], value)
    return value


def render(code: str | None, text) -> messages.Text:
    """The gateway's `text` (English) with its Chinese, from the entry its `code` names."""
    text = "" if text is None else str(text)
    for key in keys(code):
        m = _pattern(key).fullmatch(text)
        if m:
            en, zh = messages.both(key, **{k: _arg(k, v) for k, v in m.groupdict().items()})
            if en == text:  # the template gives back exactly what the gateway wrote
                return messages.Text(en, zh, key)
    return messages.Text(text, text)


# The families an event of each kind may belong to: an event written without a code (an older
# gateway's, or one whose call site gives none yet) is tried against these, so its wording, where it
# matches a template exactly, is said in Chinese too.
KIND_FAMILIES = {"alarm": ("gap", "cal", "quality", "check"), "meter": ("meter", "interval"), "point": ("point",),
                 "link": ("link",), "uplink": ("uplink",), "rejected": ("uplink",), "loss": ("loss",), "ota": ("ota",),
                 "security": ("uplink", "security"),
                 "meterclock": ("meterclock",), "refill": ("refill",), "check": ("check",),
                 "range": ("interval",), "clock": ("interval", "clock"), "rollover": ("interval",), "gap": ("interval",),
                 "estimate": ("interval",), "health": ("health",), "boot": ("boot",), "heartbeat": ("heartbeat",),
                 "modem": ("modem",), "signal": ("modem",), "tce": ("tce",), "manual": ("manual",),
                 "calibration": ("calibration",), "photo": ("visit.photo",),
                 "visit": ("visit",), "commission": ("commission",)}


def event(kind: str | None, code: str | None, text) -> messages.Text:
    """A ledger event's text with its Chinese: by its code, else by the families of its kind."""
    if code:
        return render(code, text)
    for family in KIND_FAMILIES.get(kind or "", ()):
        said = render(family, text)
        if said.key:
            return said
    return render(None, text)


def last_error(unit: dict) -> str:
    """A console status meter's or destination's last error in the chosen language (by its
    "last_error_code", where the gateway gives one: an older one gives none)."""
    t = last_error_text(unit)
    return t.zh if messages.get_lang() == "zh" else str(t)


def last_error_text(unit: dict) -> messages.Text:
    """last_error() in both languages (the ledger's report chooses its own)."""
    return render(unit.get("last_error_code") or None, unit.get("last_error") or "")


def say(code: str | None, text) -> str:
    """The gateway's text in the chosen language (--lang, else the locale)."""
    t = render(code, text)
    return t.zh if messages.get_lang() == "zh" else str(t)


def say_event(ev: dict) -> str:
    """A console `events` answer's text in the chosen language."""
    t = event(ev.get("kind"), ev.get("code"), ev.get("text"))
    return t.zh if messages.get_lang() == "zh" else str(t)


def alarms(st: dict) -> list[messages.Text]:
    """A console status's alarms, each with its Chinese (its code from "alarm_codes", where the
    gateway gives them: an older one gives none, and its alarms stay its English)."""
    texts = st.get("alarms") or []
    codes = st.get("alarm_codes") or []
    if not isinstance(codes, list) or len(codes) != len(texts):
        codes = [None] * len(texts)
    return [render(c, a) for c, a in zip(codes, texts)]
