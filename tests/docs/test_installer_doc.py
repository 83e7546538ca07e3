"""docs/INSTALLER.md against the real `nengjian`: every command line it shows (fenced code blocks and
inline code starting with `nengjian `) parses with the parser the CLI builds (cli.build_parser),
every option written in full, a
command named alone (`nengjian ota build`) names one that exists, every option it names on its own
(`--answers FILE`) is an option of some command, and the pictures it shows exist and come from the
tests (status-page.png: tests/e2e/test_status_page.py; commission-report.png:
tests/e2e/test_commissioning.py); its Chinese uses the regulation's words (messages.GLOSSARY, never
messages.AVOID). A doc that drifts from the CLI fails here, not on a roof."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex

import pytest
from nengjian_host import cli
from nengjian_host.common.messages import AVOID, GLOSSARY
from nengjian_host.common.paths import ROOT

DOC = ROOT / "docs" / "INSTALLER.md"
PICTURES = {"images/status-page.png", "images/commission-report.png"}
SHELL = ("|", ">", ">>", "2>", "&&", ";", "&")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _all_options(parser: argparse.ArgumentParser) -> set[str]:
    found = {s for a in parser._actions for s in a.option_strings}
    for sub in _subcommands(parser).values():
        found |= _all_options(sub)
    return found


def command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, command) for each `nengjian ...` in a code block or an inline code span."""
    out, fenced, pending = [], False, ""
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            whole = pending + line.strip()
            if whole.endswith("\\"):
                pending = whole[:-1] + " "
                continue
            pending = ""
            if whole.startswith("nengjian "):
                out.append((n, whole))
            continue
        if line.startswith("    ") and line.strip().startswith("nengjian "):  # an indented code block
            out.append((n, line.strip()))
            continue
        for span in re.findall(r"`([^`]+)`", line):
            if span.startswith("nengjian "):
                out.append((n, span))
    return out


def inline_options(text: str) -> list[tuple[int, str]]:
    """(line number, option) for each inline code span outside fenced blocks that starts with `--`."""
    out, fenced = [], False
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out += [(n, m) for m in re.findall(r"`(--[a-z][a-z0-9-]*)", line)]
    return out


def parse_problem(parser: argparse.ArgumentParser, line: str) -> str | None:
    """Why `line` is not a command the CLI takes, or None."""
    words = shlex.split(line, comments=True)
    for i, w in enumerate(words):
        if w in SHELL or w.startswith((">", "|")):
            words = words[:i]
            break
    argv = cli._without_lang(words[1:])
    p, i = parser, 0
    while i < len(argv) and argv[i] in _subcommands(p):
        p, i = _subcommands(p)[argv[i]], i + 1
    if i and i == len(argv):
        return None  # a command named, not run: that it exists is the check
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as e:
        if e.code:
            return err.getvalue().strip().splitlines()[-1]
    return None


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """The guide names every option in full: argparse would take `--answer` for `--answers`."""
    parser.allow_abbrev = False
    for sub in _subcommands(parser).values():
        _no_abbreviations(sub)


def problems(text: str) -> list[str]:
    parser = cli.build_parser()
    _no_abbreviations(parser)
    found = []
    for n, line in command_lines(text):
        why = parse_problem(parser, line)
        if why:
            found.append("line %d: `%s`: %s" % (n, line, why))
    options = _all_options(parser)
    for n, opt in inline_options(text):
        if opt not in options:
            found.append("line %d: `%s` is no option of any nengjian command" % (n, opt))
    return found


def picture_problems(text: str) -> list[str]:
    """What is wrong with the pictures `text` shows: one of PICTURES not shown, a file missing or no PNG."""
    shown = set(re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text))
    found = ["%s is not shown" % p for p in sorted(PICTURES - shown)]
    for rel in sorted(shown):
        png = DOC.parent / rel
        data = png.read_bytes() if png.is_file() else b""
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            found.append("%s: no such PNG" % rel)
        elif len(data) >= 300_000:
            found.append("%s: %d bytes, keep it under 300 KB" % (rel, len(data)))
    return found


def test_every_command_line_in_the_installer_guide_parses():
    text = DOC.read_text(encoding="utf-8")
    assert len(command_lines(text)) > 30  # the walk-through is made of commands: the extraction found them
    assert problems(text) == []


def test_the_guide_shows_commission_in_the_regulations_words():
    text = DOC.read_text(encoding="utf-8")
    lines = [c for _n, c in command_lines(text)]
    assert any(c.startswith("nengjian commission --answers ") for c in lines)
    assert "code,name,scope,meter,point" in text
    for key, (_en, zh) in GLOSSARY.items():  # the regulation's words, as the CLI's messages use them
        assert zh in text, key
        for wrong in AVOID.get(key, ()):
            assert wrong not in text, "say %s, not %s" % (zh, wrong)


def test_the_pictures_it_shows_exist_and_come_from_the_tests():
    assert picture_problems(DOC.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("planted, says", [
    ("    nengjian commission --answer answers.json --work site-dg01\n", "unrecognized arguments: --answer"),
    ("run `nengjian status --port sn:NJ0001 --events` now\n", "--events: expected one argument"),
    ("then `nengjian comission --work w`\n", "invalid choice: 'comission'"),
    ("add `--answres FILE` to script it\n", "`--answres` is no option"),
])
def test_a_planted_mistake_is_found(planted, says):
    text = DOC.read_text(encoding="utf-8")
    if planted.startswith("    "):
        text += "\n```sh\n%s\n```\n" % planted.strip()
    else:
        text += "\n" + planted
    found = problems(text)
    assert len(found) == 1 and says in found[0], found


def test_a_missing_picture_is_found():
    text = DOC.read_text(encoding="utf-8").replace("(images/commission-report.png)", "(images/commission-repot.png)")
    assert picture_problems(text) == ["images/commission-report.png is not shown",
                                      "images/commission-repot.png: no such PNG"]
