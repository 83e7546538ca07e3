"""`nengjian`: the one command for installers, maintenance crews and firmware developers.

Exit codes scripts can rely on: 0 done, 1 the check or operation failed, 2 bad usage or input,
3 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def _cmd_sim(args) -> int:
    from nengjian_host import simrun

    return simrun.run(Path(args.dir), args.duration, args.heap, args.meters, args.period, args.interval,
                      not args.keep)


def _cmd_check_config(args) -> int:
    from nengjian_host import siteconfig

    problems = siteconfig.check_file(Path(args.file))
    if args.json:
        print(json.dumps({"file": args.file, "ok": not problems, "problems": problems}))
    elif problems:
        for p in problems:
            print(f"{args.file}: {p}", file=sys.stderr)
    else:
        print(f"{args.file}: ok")
    return EXIT_OK if not problems else EXIT_FAILED


def _cmd_schema(args) -> int:
    from nengjian_host import siteconfig

    print(json.dumps(siteconfig.schema(args.which), indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nengjian",
        description="Tools for the Nengjian energy-metering gateway: simulate, provision, pull data, report.",
        epilog="Run `nengjian COMMAND --help` for what each command does and its options.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("sim", help="run the gateway on the sim board with simulated meters and a local platform",
                       description="Start simulated Modbus meters, the reference platform and the real firmware "
                                   "on the MicroPython unix port; show readings taken, stored and accepted.")
    s.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    s.add_argument("--heap", default="256k", help="MicroPython heap, like an ESP32 without PSRAM (default 256k)")
    s.add_argument("--meters", type=int, default=2, help="simulated meters on the bus (default 2)")
    s.add_argument("--period", type=int, default=60, choices=[60, 300, 900],
                   help="real-time period in seconds (the platform standard is 900; 60 shows data sooner)")
    s.add_argument("--interval", type=int, default=5, help="poll interval of each meter in seconds")
    s.add_argument("--dir", default="run/sim", help="where the sim keeps the flash image and platform database")
    s.add_argument("--keep", action="store_true", help="keep the previous run's flash and database")
    s.set_defaults(func=_cmd_sim)

    c = sub.add_parser("check-config", help="check a site config file before it goes to a gateway",
                       description="Validate a site config against the schema, the credit code check character, "
                                   "data-item codes and the meter profiles, exactly as the gateway will.")
    c.add_argument("file")
    c.add_argument("--json", action="store_true", help="machine-readable result")
    c.set_defaults(func=_cmd_check_config)

    sc = sub.add_parser("schema", help="print the JSON schema of site configs or meter profiles")
    sc.add_argument("which", choices=["site", "profile"])
    sc.set_defaults(func=_cmd_schema)
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
