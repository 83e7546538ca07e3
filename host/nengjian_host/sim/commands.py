"""`nengjian sim`: its options, help text and the thin wrapper over nengjian_host.sim.demo.run (which
owns the run itself: meters, platform, firmware, live display)."""

from __future__ import annotations

from pathlib import Path

from nengjian_host.common.messages import t
from nengjian_host.common.output import HelpFormatter


def cmd_sim(args) -> int:
    from nengjian_host.sim import demo

    heap = args.heap or ("384k" if args.modem else "320k")
    return demo.run(Path(args.dir), args.duration, heap, args.meters, args.period, args.interval, not args.keep,
                    modem=args.modem, speed=args.speed)


def register(sub) -> None:
    """Add `sim` to the `nengjian` subcommands `sub`."""
    s = sub.add_parser("sim", formatter_class=HelpFormatter, help=t("help.sim"), description=t("help.sim.desc"),
                       epilog=t("help.sim.epilog"))
    s.add_argument("--duration", type=float, default=0, help=t("help.sim.duration"))
    s.add_argument("--heap", help=t("help.sim.heap"))
    s.add_argument("--meters", type=int, default=2, help=t("help.sim.meters"))
    s.add_argument("--period", type=int, default=60, choices=[60, 300, 900], help=t("help.sim.period"))
    s.add_argument("--interval", type=int, default=5, help=t("help.sim.interval"))
    s.add_argument("--speed", type=float, default=1.0, help=t("help.sim.speed"))
    s.add_argument("--dir", default="run/sim", help=t("help.sim.dir"))
    s.add_argument("--keep", action="store_true", help=t("help.sim.keep"))
    s.add_argument("--modem", action="store_true", help=t("help.sim.modem"))
    s.set_defaults(func=cmd_sim)
