"""`nengjian`: the one command for installers, maintenance crews and firmware developers.

Owns the top-level parser only. Each audience's package registers its own subcommands
(sim/commands.py, install/commands.py, crew/commands.py, vendor/commands.py); every command there
is a thin wrapper over a library function, printing through common/output.py, which also holds
the exit codes scripts rely on: 0 done, 1 the check or operation failed, 2 bad usage or input,
3 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import sys

from nengjian_host.common.output import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    HelpFormatter,
)

# cli.EXIT_* stay importable: scripts and tests name the exit codes through the command's module.
__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNREACHABLE", "build_parser", "main"]

EPILOG = """\
installer:  check-config, schema, bundle, flash, provision, inventory, scan
crew:       ledger, status, pull, console, visit, manual, ota push, ota state
vendor:     ota keygen, ota build, ota verify
developer:  sim

example:
  nengjian sim --duration 60                       the gateway on the sim board, live
  nengjian check-config site.json                  before a config goes to a gateway
  nengjian status --port sn:SERIAL                 a connected gateway's state

Run `nengjian COMMAND --help` for what each command does and its options.
""" + EXIT_CODES_HELP


def build_parser() -> argparse.ArgumentParser:
    from nengjian_host.crew import commands as crew
    from nengjian_host.install import commands as install
    from nengjian_host.sim import commands as sim
    from nengjian_host.vendor import commands as vendor

    p = argparse.ArgumentParser(
        prog="nengjian", formatter_class=HelpFormatter,
        description="Tools for the Nengjian energy-metering gateway: simulate, provision, pull data, report.",
        epilog=EPILOG)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sim.register(sub)
    install.register(sub)
    crew.register(sub)
    crew.register_ota(vendor.register(sub))  # one `ota` command: the vendor's actions, then the crew's
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
