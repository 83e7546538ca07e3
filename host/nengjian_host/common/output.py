"""How every `nengjian` command ends and what it prints: the one place for both.

Owns: the exit codes scripts rely on (the only definition of EXIT_*; tests/host/common/test_output.py fails on
another), errors that name the fix (English and Chinese on stderr, or one JSON object on stdout with
--json), progress for long work (a rich bar on a terminal, `... step` lines when piped, nothing with
--json), and the --json printing. Library functions return values and raise; the command wrappers
(install/, crew/, vendor/ and sim/ `commands.py`) print through here.

Exit codes
----------
    0  EXIT_OK           done
    1  EXIT_FAILED       the check or the operation failed (verify, alarms with --check, refused)
    2  EXIT_USAGE        bad usage or input (what it concerns was not done); the message names the fix
    3  EXIT_UNREACHABLE  the gateway (or device) could not be reached, or went away: check the cable
                         and --port, then run the same command again

With --json a failing command prints {"ok": false, "error": ..., "exit_code": N, ...} on stdout, so a
script reads one JSON document whether the command worked or not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any, Callable

from nengjian_host.common.messages import MESSAGES

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

# What each code means, in Chinese and English (from the catalogue): the Chinese line of an error
# without its own text.
MEANING = {code: tuple(reversed(MESSAGES["exit.%d" % code])) for code in (EXIT_OK, EXIT_FAILED, EXIT_USAGE,
                                                                          EXIT_UNREACHABLE)}

EXIT_CODES_HELP = MESSAGES["help.exit_codes"][0]


class HelpFormatter(argparse.HelpFormatter):
    """Every command's help: a description wrapped to the terminal, an epilog of examples kept line
    by line (text with line breaks is printed as written)."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def wants_json(args) -> bool:
    return bool(getattr(args, "json", False))


def fail(args, code: int, message: str, zh: str | None = None, params: dict | None = None, **extra) -> int:
    """Report an error and return `code` (so a command ends with `return fail(...)`).

    `message` is a catalogue key (common.messages; `params` fill its placeholders), a `messages.msg(...)`
    text, or, for callers not yet in the catalogue, English text with `zh` the same in Chinese (without
    it, the Chinese line says what the exit code means). A person sees the chosen language's line first
    and the other below it (the English one is what the vendor's support reads). With --json: one JSON
    object on stdout ({"ok": false, "error", "error_zh"?, "error_key"?, "exit_code", **extra}): English
    keys whatever the language."""
    from nengjian_host.common import messages

    key = None
    if isinstance(message, messages.Text):
        key, zh = message.key, message.zh
    elif message in messages.MESSAGES and zh is None:
        key = message
        message, zh = messages.both(key, **(params or {}))
    if wants_json(args):
        doc: dict[str, Any] = {"ok": False, "error": str(message), "exit_code": code}
        if zh:
            doc["error_zh"] = zh
        if key:
            doc["error_key"] = key
        doc.update(extra)
        print_json(doc)
    else:
        en_line = messages.t_in("en", "err.prefix") + str(message)
        zh_line = messages.t_in("zh", "err.prefix") + (zh or messages.t_in(
            "zh", "err.see_other_line", meaning=MEANING.get(code, MEANING[EXIT_FAILED])[0]))
        for line in ((zh_line, en_line) if messages.get_lang() == "zh" else (en_line, zh_line)):
            to_stderr(line)
    return code


def both_lines(key: str, **kw) -> None:
    """A catalogue message as an error's two lines on stderr: the chosen language first, the other below."""
    from nengjian_host.common import messages

    en, zh = messages.both(key, **kw)
    lines = [messages.t_in("en", "err.prefix") + en, messages.t_in("zh", "err.prefix") + zh]
    for line in (lines[::-1] if messages.get_lang() == "zh" else lines):
        to_stderr(line)


def info(args, message: str, **kw) -> None:
    """A line of a command's result for a person, on stdout, in the chosen language: `message` a
    catalogue key (`kw` its placeholders) or text already in that language. Nothing with --json."""
    from nengjian_host.common import messages

    if not wants_json(args):
        print(messages.t(message, **kw) if message in messages.MESSAGES else message)


def to_stderr(line: str) -> None:
    """A line for the person at the terminal, on stderr (also Chinese in a locale that cannot show it)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except UnicodeEncodeError:  # a pipe in a non-UTF-8 locale: the error must still get out
        enc = getattr(sys.stderr, "encoding", None) or "ascii"
        print(line.encode(enc, "backslashreplace").decode(enc), file=sys.stderr, flush=True)


def print_json(doc) -> None:
    """One JSON document on one line of stdout (values JSON does not know, such as paths, as text),
    flushed: a script reading a stream of them (scan --json) sees each as it comes."""
    print(json.dumps(doc, default=str), flush=True)


def emit(args, doc: dict, lines: list[str]) -> None:
    """A command's result: `doc` as JSON with --json, else the lines for a person."""
    if wants_json(args):
        print_json(doc)
    else:
        for line in lines:
            print(line)


def note(args, text: str) -> None:
    """A progress line on stderr (never with --json: stdout then carries JSON, stderr stays quiet)."""
    if not wants_json(args):
        print(text, file=sys.stderr, flush=True)


def progress(args, transient: bool = True):
    """Context manager: a rich Progress on stderr when it is a terminal; None with --json or when piped
    (library functions take it as `progress=` and skip reporting on None)."""
    if wants_json(args) or not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=transient)


def steps(args, prog, title: str) -> Callable[..., None]:
    """A `step(name, **kw)` for work in stages (a library's `step=`): the bar's label on a terminal,
    a `... name` line on stderr when piped, nothing with --json."""
    task = prog.add_task(title, total=None) if prog else None

    def step(name: str, **_kw) -> None:
        if prog:
            prog.update(task, description=name)
        else:
            note(args, "... " + name)

    return step
