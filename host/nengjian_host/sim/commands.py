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
    s = sub.add_parser("sim", formatter_class=HelpFormatter,
                       help=t("help.sim"),
                       description="Start simulated Modbus meters, the reference platform and the real firmware "
                                   "on the MicroPython unix port; show readings taken, stored and accepted.",
                       epilog="example:\n  nengjian sim --duration 120 --meters 3\n"
                              "  nengjian sim --modem   (upload over the simulated 4G modem)\n"
                              "while it runs, in another terminal: nengjian status --port sim:run/sim")
    s.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    s.add_argument("--heap", help="MicroPython heap: default 320k, about 160 KB on an ESP32 (objects take twice "
                                  "the room on this 64-bit host); 384k with --modem (the 4G board, an ESP32-S3, has PSRAM; the modem "
                                  "driver needs some 20 KB more)")
    s.add_argument("--meters", type=int, default=2, help="simulated meters on the bus (default 2)")
    s.add_argument("--period", type=int, default=60, choices=[60, 300, 900],
                   help="real-time period in seconds (the platform standard is 900; 60 shows data sooner)")
    s.add_argument("--interval", type=int, default=5, help="poll interval of each meter in seconds")
    s.add_argument("--speed", type=float, default=1.0,
                   help="run simulated time (the gateway's clock, the meters, the platform) this many times faster "
                        "than real time, e.g. 12: a 60 s period every 5 s (default 1)")
    s.add_argument("--dir", default="run/sim", help="where the sim keeps the flash image and platform database")
    s.add_argument("--keep", action="store_true", help="keep the previous run's flash and database")
    s.add_argument("--modem", action="store_true",
                   help="upload over 4G through a simulated AT modem (power-on, SIM, registration, dial, PPP) "
                        "instead of Ethernet")
    s.set_defaults(func=cmd_sim)
