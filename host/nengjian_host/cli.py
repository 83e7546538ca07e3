"""`nengjian`: the one command for installers, maintenance crews and firmware developers.

Owns the top-level parser only. Each audience's package registers its own subcommands
(sim/commands.py, install/commands.py, crew/commands.py, vendor/commands.py); every command there
is a thin wrapper over a library function, printing through common/output.py, which also holds
the exit codes scripts rely on: 0 done, 1 the check or operation failed, 2 bad usage or input,
3 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from nengjian_host.common.messages import LANGS, set_lang, t
from nengjian_host.common.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    HelpFormatter,
)

# cli.EXIT_* stay importable: scripts and tests name the exit codes through the command's module.
__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNREACHABLE", "build_parser", "main"]

def epilog() -> str:
    """The top-level help's list of commands and examples, in the chosen language."""
    return t("help.nengjian.epilog") + t("help.exit_codes")


def build_parser() -> argparse.ArgumentParser:
    from nengjian_host.crew import commands as crew
    from nengjian_host.install import commands as install
    from nengjian_host.sim import commands as sim
    from nengjian_host.vendor import commands as vendor

    p = argparse.ArgumentParser(
        prog="nengjian", formatter_class=HelpFormatter,
        description=t("help.nengjian.desc"), epilog=epilog())
    p.add_argument("--lang", choices=LANGS, help=t("help.lang"))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sim.register(sub)
    install.register(sub)
    from nengjian_host.install import commission_command

    commission_command.register(sub)
    crew.register(sub)
    crew.register_ota(vendor.register(sub))  # one `ota` command: the vendor's actions, then the crew's
    return p


def lang_option(argv: list[str]) -> str | None:
    """The --lang the command line gives, anywhere on it (help is built in that language before the
    parser runs); None when absent or not a language (the parser then names the choices)."""
    for i, word in enumerate(argv):
        if word == "--":
            break
        value = word[7:] if word.startswith("--lang=") else (argv[i + 1] if word == "--lang" and i + 1 < len(argv)
                                                              else None)
        if value in LANGS:
            return value
    return None


def _without_lang(argv: list[str]) -> list[str]:
    """argv less a valid --lang after the command word (argparse knows --lang only before it)."""
    out, skip = [], False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if i > 0 and word == "--lang" and i + 1 < len(argv) and argv[i + 1] in LANGS:
            skip = True
            continue
        if i > 0 and word.startswith("--lang=") and word[7:] in LANGS:
            continue
        out.append(word)
    return out


@contextlib.contextmanager
def _argparse_words():
    """argparse's own words (usage:, options ...) in the chosen language while the command parses."""
    ours = {"usage: ": "help.usage_prefix", "positional arguments": "help.positionals", "options": "help.options",
            "show this help message and exit": "help.show_help"}
    before = argparse._
    argparse._ = lambda text: t(ours[text]) if text in ours else before(text)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._ = before  # type: ignore[attr-defined]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    set_lang(lang_option(argv))  # --lang, else LC_ALL / LC_MESSAGES / LANG
    try:
        with _argparse_words():
            parser = build_parser()
            args = parser.parse_args(_without_lang(argv))
        # A report speaks one language when --lang names it, else both (the locale chooses only messages).
        args.lang_given = lang_option(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        try:
            return args.func(args)
        except KeyboardInterrupt:
            return EXIT_FAILED
    finally:
        set_lang("en")  # a library call after main() speaks English, as before it


if __name__ == "__main__":
    sys.exit(main())
