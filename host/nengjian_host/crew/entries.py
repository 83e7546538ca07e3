"""`nengjian visit` and `nengjian manual`: what a crew writes into a gateway's own ledger and store.

Both go through the running gateway's USB console (the application keeps polling): a visit is a
ledger event the 30-day inspection rule asks for; a manual entry is a day/month/year value no
meter measures (a coal or oil delivery), checked here with the firmware's own rules first, then
stored by the gateway with input type 5 and uploaded like any other value.
"""

from __future__ import annotations

import json
import sys

from nengjian_host.common import paths

if str(paths.FIRMWARE) not in sys.path:
    sys.path.insert(0, str(paths.FIRMWARE))

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
STAT_TYPES = {"day": 1, "month": 2, "year": 3}


def _send(args, command: str) -> tuple[int, dict | None]:
    from nengjian_host.common.gatewaycall import on_gateway

    return on_gateway(args, lambda con: con.request(command)[-1], refused="the gateway refused it: ")


def cli_visit(args) -> int:
    text = " ".join(args.note).strip()
    if not args.who or not text:
        print("error: say who visited (--who) and what was checked (the note)", file=sys.stderr)
        return EXIT_USAGE
    code, ans = _send(args, "visit %s: %s" % (args.who, text.replace("\n", " ")))
    if ans is not None:
        print(json.dumps(ans) if args.json else f"visit recorded in the gateway's ledger (record {ans.get('seq')})")
    return code


def cli_manual(args) -> int:
    from nengjian.core import timeutil
    from nengjian.values import manual

    stat = STAT_TYPES[args.period]
    try:
        start, value = manual.check(args.code, stat, args.start, args.value, args.scope)
    except manual.ManualError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    what = f"{args.code} {args.period} {timeutil.cst_text(start)} = {value.text()} (scope {args.scope})"
    if args.dry_run:
        print(f"would enter {what}")
        return EXIT_OK
    req = {"code": args.code, "stat_type": stat, "stat_start": start, "value": args.value, "scope": args.scope,
           "who": args.who}
    code, ans = _send(args, "manual " + json.dumps(req, separators=(",", ":")))
    if ans is not None:
        print(json.dumps(ans) if args.json else f"entered {what} (record {ans.get('seq')})")
    return code


def add_commands(sub, port_args) -> None:
    v = sub.add_parser("visit", help="record an inspection visit in a gateway's ledger (the 30-day rule)",
                       description="Writes who came and what was checked into the gateway's own maintenance "
                                   "ledger, through its USB console; `nengjian ledger` lists visits and flags "
                                   "sites overdue for one.")
    v.add_argument("--who", required=True, help="crew member")
    v.add_argument("note", nargs="+", help="what was checked or done, e.g. 'meters read, cabinet cleaned'")
    v.add_argument("--json", action="store_true")
    port_args(v)
    v.set_defaults(func=cli_visit)

    m = sub.add_parser("manual", help="enter a quantity no meter measures (coal or oil delivery) on a gateway",
                       description="Checks the entry with the gateway's own rules, then stores it on the gateway "
                                   "through the console as a day, month or year value with input type 5 (manual); "
                                   "it is uploaded like any other value.")
    m.add_argument("--code", required=True, help="data-item code, e.g. 00-00-0000-010100-11 (whole-plant raw coal)")
    m.add_argument("--scope", type=int, default=1, choices=[1, 2, 3, 4], help="1 whole plant (default) .. 4 equipment")
    m.add_argument("--period", choices=sorted(STAT_TYPES), default="day")
    m.add_argument("--start", required=True, help="period start, CST: 2026-03-14 (day), 2026-03 (month), 2026 (year)")
    m.add_argument("--value", required=True, help="exact decimal in the item's unit, e.g. 35.20")
    m.add_argument("--who", default="", help="crew member, for the ledger")
    m.add_argument("--dry-run", action="store_true", help="only check the entry")
    m.add_argument("--json", action="store_true")
    port_args(m)
    m.set_defaults(func=cli_manual)
