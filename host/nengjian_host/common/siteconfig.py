"""Site configs and meter profiles on the laptop: the gateway's own checks, run before provisioning.

The firmware's config module is plain Python, so the host runs the very same checks (one
implementation); the schemas are additionally checked with the full `jsonschema` package.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from nengjian_host.common import messages, paths

if str(paths.FIRMWARE) not in sys.path:
    sys.path.insert(0, str(paths.FIRMWARE))

from nengjian import config as fw_config  # noqa: E402
from nengjian.config import schema as fw_schema  # noqa: E402
from nengjian.config import schemas as fw_schemas  # noqa: E402
from nengjian.core import identity as fw_identity  # noqa: E402, F401 - provision's USCC check
from nengjian.meters import profile as fw_profile  # noqa: E402

LIMIT = 50  # problems listed by one check; the gateway keeps as many (nengjian.config.validate.LIMIT)


def schema(which: str) -> dict:
    return fw_schemas.SITE if which == "site" else fw_schemas.PROFILE


def check(cfg: dict, profile_dir: Path = paths.PROFILES, limit: int = LIMIT) -> list[messages.Text]:
    """Every problem of a site config ("path: what"), at most `limit` and a last line counting the rest.

    The gateway's own checks (its schema validator, then the cross-field checks), as the gateway will
    say them; then anything the full jsonschema finds at a field they did not name. Each is a
    messages.Text: the English the gateway writes, with the Chinese beside it (`.zh`), made on the
    laptop from the problem's code and arguments (`cfg.CODE` in the catalogue; the gateway carries no
    catalogue). `localized(p)` is the one to show."""
    import jsonschema

    problems: list[messages.Text] = []
    more = 0
    try:
        fw_config.check(json.loads(json.dumps(cfg)), lambda name: fw_profile.load(str(profile_dir), name))
    except fw_config.ConfigError as e:
        problems, more = from_gateway(e), getattr(e, "more", 0)
    named = [p.split(": ", 1)[0] for p in problems]
    validator = jsonschema.validators.validator_for(fw_schemas.SITE)(fw_schemas.SITE)
    for err in sorted(validator.iter_errors(cfg), key=lambda e: [str(x) for x in e.absolute_path]):
        where = _path(err.absolute_path)
        if any(where == "(top)" or n == where or n.startswith((where + ".", where + "[")) for n in named):
            continue  # the gateway's schema named it (the two agree: tests/firmware/config/test_schema.py)
        # jsonschema quotes the value; a secret's (writeOnly: a PIN) must not reach a terminal or a report
        secret = isinstance(err.schema, dict) and err.schema.get("writeOnly")
        detail = messages.msg("check.secret_rule", rule=err.validator) if secret else err.message
        problems.append(_line(where, messages.Text(detail, getattr(detail, "zh", detail))))
    total = len(problems) + more
    if total > limit:
        problems = problems[:limit] + [messages.msg("check.more", count=total - limit)]
    return problems


def from_gateway(e) -> list[messages.Text]:
    """The problems of the gateway's ConfigError (not the `more` it only counted), each with its Chinese
    from its code (validate.Problems: `codes` holds a code and its arguments beside each item); an item
    without a known code keeps its English in both (a catalogue test finds every code the firmware uses)."""
    lines = list(getattr(e, "problems", None) or [str(e)])
    codes = getattr(e, "codes", None) or []
    out = []
    for i, line in enumerate(lines):
        code, args = (codes[2 * i], codes[2 * i + 1]) if 2 * i + 1 < len(codes) else (None, ())
        key = "cfg.%s" % code
        if key not in messages.MESSAGES:
            out.append(uncoded(line))
            continue
        en = messages.MESSAGES[key][0].format(*args)
        path = line[:-len(en) - 2] if line.endswith(": " + en) else line.split(": ", 1)[0]
        out.append(_line(path, coded(code, args, line[len(path) + 2:]), key))
    return out


def coded(code: str, args: tuple, en: str) -> messages.Text:
    """The gateway's English `en` of a problem with its Chinese from the catalogue (`cfg.CODE`)."""
    key = "cfg.%s" % code
    if key not in messages.MESSAGES:
        return messages.Text(en, en)
    shown = [messages.t_in("zh", "check.secret") if a == fw_schema.SECRET else a for a in args]
    if code == "profile" and shown:  # the loader's own reason, said back from its English
        shown[0] = profile_reason(str(shown[0])).zh
    return messages.Text(en, messages.MESSAGES[key][1].format(*shown), key)


_FIELD = re.compile(r"\{(\d+)(![rs])?\}")


def _template(en: str) -> tuple[tuple[int, int], re.Pattern, list[int]]:
    """(how specific it is: its leading and its whole literal text, longest first; a pattern matching
    the English `en` says; which field each group is). A repr field ({0!r}) is one quoted string."""
    parts = _FIELD.split(en)
    rx, order, literal = "", [], 0
    for i in range(0, len(parts), 3):
        text = parts[i].replace("{{", "{").replace("}}", "}")
        rx += re.escape(text)
        literal += len(text)
        if i + 1 < len(parts):
            order.append(int(parts[i + 1]))
            rx += r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")" if parts[i + 2] == "!r" else "(.+?)"
    return (-len(parts[0]), -literal), re.compile(rx + r"\Z", re.S), order


def _templates(prefix: str) -> list[tuple[str, re.Pattern, list[int]]]:
    found = sorted((_template(en) + (key,) for key, (en, _zh) in messages.MESSAGES.items()
                    if key.startswith(prefix)), key=lambda x: (x[0], x[3]))
    return [(key, rx, order) for rank, rx, order, key in found if rank[1]]  # "{0}" alone says nothing


_PROFILE = _templates("prof.")
_PROBLEM = _templates("cfg.")
_LOAD = _templates("cfgload.")


def _said_back(text: str, templates, depth: int) -> str | None:
    """The Chinese of `text`, the English of one of `templates`, its fields said back too; None if none."""
    for key, rx, order in templates:
        m = rx.match(text)
        if m is None:
            continue
        args = [""] * (max(order) + 1 if order else 0)
        for field, value in zip(order, m.groups()):
            args[field] = _reason_zh(value, depth + 1)
        return _FIELD.sub(lambda f: "{%s}" % f.group(1), messages.MESSAGES[key][1]).format(*args)
    return None


def _reason_zh(text: str, depth: int = 0) -> str:
    if depth > 4:
        return text
    said = _said_back(text, _PROFILE, depth)
    if said is None and ": " in text:  # "where: what", the schema's words for a profile's field
        where, what = text.split(": ", 1)
        what_zh = _said_back(what, _PROBLEM, depth)
        if what_zh is not None and not where.startswith("'"):
            said = where + COLON["zh"] + what_zh
    return text if said is None else said


def profile_reason(text: str) -> messages.Text:
    """Why the gateway's profile loader (nengjian.meters.profile) could not load a profile, from its
    English: the Chinese from the catalogue's `prof.*` (and `cfg.*` for a schema problem inside), a
    nested reason said back too; a text the catalogue does not know stays English in both."""
    return messages.Text(text, _reason_zh(text), "cfg.profile")


def said_back(text: str, prefix: str) -> messages.Text:
    """`text`, the gateway's English of one of the catalogue's `prefix`* messages, with its Chinese; a
    text none of them says stays English in both."""
    said = _said_back(text, _templates(prefix), 0)
    return messages.Text(text, text if said is None else said)


def uncoded(text: str) -> messages.Text:
    """A problem the gateway gave without a code (its config loader's: the file unreadable, not JSON),
    with its Chinese said back from its English (`cfgload.*`); else its English in both."""
    said = _said_back(text, _LOAD, 0)
    return messages.Text(text, text if said is None else said)


def issue_text(issue: tuple) -> messages.Text:
    """A core.identity problem (code, English, args) as a Text in both languages."""
    code, text, args = issue
    return coded(code, args, text % args if args else text)


COLON = {"en": ": ", "zh": "："}  # "where: what", as each language writes it


def _line(path: str, what: messages.Text, key: str | None = None) -> messages.Text:
    return messages.Text(path + COLON["en"] + what, path + COLON["zh"] + what.zh, key)


def localized(problem: str, where: str | None = None) -> str:
    """A problem in the chosen language (its Chinese when Chinese is chosen and it has one), after
    `where` (a file name) if given."""
    zh = messages.get_lang() == "zh"
    text = getattr(problem, "zh", problem) if zh else str(problem)
    return text if where is None else where + COLON["zh" if zh else "en"] + text


def _path(parts) -> str:
    """jsonschema's path as the gateway's checks write it: meters[1].address."""
    out = ""
    for x in parts:
        out += "[%d]" % x if isinstance(x, int) else ("." if out else "") + str(x)
    return out or "(top)"


def check_file(path: Path, profile_dir: Path = paths.PROFILES) -> list[messages.Text]:
    try:
        cfg = json.loads(path.read_text())
    except OSError as e:
        return [messages.msg("check.cannot_read", reason=e.strerror)]
    except ValueError as e:
        return [messages.msg("check.not_json", reason=e)]
    return check(cfg, profile_dir)
