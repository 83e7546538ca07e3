"""The maintenance crew's `nengjian` commands: ledger, status, pull, console, visit, manual, and the
crew's half of `ota` (push, state).

Owns: their options, help text and printing only. Each command is a thin wrapper: it turns the
options into a call of a library function a script can call as well (crew.ledger, crew.status,
crew.pull, crew.entries, crew.update, common.device) and prints what it returns through
common.output (exit codes, errors, --json).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from nengjian_host.common import output
from nengjian_host.common.gatewaycall import on_gateway, port_args
from nengjian_host.common.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    HelpFormatter,
    emit,
    fail,
)

RESUME_ZH = "网关中途断开：已核对的部分保留在 %s/.partial-* 里，接好后重新运行同一命令即可续传"


# ---- ledger
def cmd_ledger(args) -> int:
    from nengjian_host.crew import ledger

    try:
        with output.progress(args) if (args.html or args.png_dir) else contextlib.nullcontext(None) as prog:
            led = ledger.report(args.source, args.since, args.until, args.period, args.gateway, args.html,
                                args.png_dir, args.title, progress=prog)
    except ledger.LedgerError as e:
        return fail(args, EXIT_USAGE, str(e), zh="台账的输入有误（原因和解决办法见上一行）")
    except OSError as e:
        return fail(args, EXIT_FAILED, "cannot read or write: %s" % e, zh="读写文件失败（见上一行）")
    emit(args, {"ok": True, **ledger.public(led), "html": args.html},
         [ledger.summary_line(led)] + (["  report: %s" % args.html] if args.html else []))
    return EXIT_OK


# ---- on a connected gateway: status, pull, console
def cmd_status(args) -> int:
    """0 shown, 1 alarms with --check (or the gateway answered with an error), 3 gateway unreachable."""
    from nengjian_host.common.device import DeviceError, DeviceGone, PortNotFound
    from nengjian_host.crew import status

    try:
        port, st = status.fetch(args.port, args.baud, args.timeout, args.events)
    except (PortNotFound, DeviceGone) as e:
        return fail(args, EXIT_UNREACHABLE, str(e))
    except DeviceError as e:
        return fail(args, EXIT_FAILED, "the gateway answered: %s" % e, zh="网关回答了一个错误（见上一行）")
    if args.json:
        output.print_json(st)
    else:
        status.render(st, port)
        for ev in st.get("events") or ():
            print(status.event_line(ev))
    return EXIT_FAILED if args.check and st.get("alarms") else EXIT_OK


def cmd_pull(args) -> int:
    """0 done, 1 the gateway refused or named a file that would land outside the pull directory, 2 bad
    input (a dump that is not one), 3 gateway unreachable or gone."""
    from nengjian_host.common.device import DeviceError, DeviceGone, PortNotFound
    from nengjian_host.crew import pull

    out = Path(args.out)
    try:
        if args.dump:
            final = pull.pull_dump(Path(args.dump), out, decode=not args.no_decode, gateway=args.gateway)
        else:
            final = pull.pull_gateway(args.port, out, args.baud, args.timeout, decode=not args.no_decode,
                                      progress=not args.json and sys.stderr.isatty())
    except PortNotFound as e:
        return fail(args, EXIT_UNREACHABLE, str(e))
    except DeviceGone as e:
        return fail(args, EXIT_UNREACHABLE, "%s\nnothing was written to %s; what was copied so far is kept in "
                                            "%s/.partial-*: run the same command again to resume" % (e, out, out),
                    zh=RESUME_ZH % out)
    except DeviceError as e:
        return fail(args, EXIT_FAILED, "the gateway refused: %s" % e, zh="网关拒绝了（原因见上一行）")
    except pull.UnsafeName as e:
        return fail(args, EXIT_FAILED, str(e), zh=e.zh)
    except (pull.PullError, OSError) as e:
        return fail(args, EXIT_USAGE, str(e))
    manifest, lines = pull.summary(final)
    emit(args, {"ok": True, "dir": str(final), **manifest}, lines)
    return EXIT_OK


def cmd_console(args) -> int:
    from nengjian_host.common import device

    try:
        port, ser = device.open_serial(args.port, args.baud)
    except (device.PortNotFound, device.DeviceGone) as e:
        return fail(args, EXIT_UNREACHABLE, str(e))
    if not sys.stdin.isatty():
        try:
            device.pipe(ser, sys.stdin, sys.stdout, args.wait)
        except device.DeviceGone as e:
            return fail(args, EXIT_UNREACHABLE, str(e))
        return EXIT_OK
    device.terminal(ser, port)
    return EXIT_OK


# ---- entries: visit, manual
def cmd_visit(args) -> int:
    from nengjian_host.crew import entries

    try:
        command = entries.visit_command(args.who, " ".join(args.note))
    except entries.EntryError as e:
        return fail(args, EXIT_USAGE, str(e), zh="要写明谁来巡检（--who）和检查了什么（备注）")
    code, ans = on_gateway(args, lambda con: entries.send(con, command), refused="the gateway refused it: ")
    if ans is not None:
        emit(args, ans, [f"visit recorded in the gateway's ledger (record {ans.get('seq')})"])
    return code


def cmd_manual(args) -> int:
    from nengjian_host.crew import entries

    try:
        what, command = entries.manual_entry(args.code, args.period, args.start, args.value, args.scope, args.who)
    except entries.EntryError as e:
        return fail(args, EXIT_USAGE, str(e), zh="这条手工录入不合规则，没有发给网关（原因见上一行）")
    if args.dry_run:
        print(f"would enter {what}")
        return EXIT_OK
    code, ans = on_gateway(args, lambda con: entries.send(con, command), refused="the gateway refused it: ")
    if ans is not None:
        emit(args, ans, [f"entered {what} (record {ans.get('seq')})"])
    return code


# ---- ota push, ota state
def cmd_ota_push(args) -> int:
    """0 the gateway runs the new version on trial, 1 refused or it came back with another version,
    2 not a bundle, 3 gateway unreachable (also after the reset)."""
    from nengjian_host.crew import update
    from nengjian_host.vendor import updates

    try:
        data = Path(args.bundle).read_bytes()
        version = updates.describe(data)["version"]
    except (OSError, ValueError) as e:
        return fail(args, EXIT_USAGE, f"{args.bundle}: {e}", zh="读不了这个更新包（见上一行）：要 `nengjian ota build` 生成的 .njota")
    code, ans = on_gateway(args, lambda con: update.install(con, data, reset=not args.no_reset),
                           refused="the gateway refused the update: ")
    if code != EXIT_OK:
        return code
    what = update.installed_text(version, ans)
    if args.no_reset:
        emit(args, {"installed": ans}, [what + "; it runs on trial from the next reset"])
        return EXIT_OK
    back = update.wait_running(args.port, args.baud, args.boot_timeout)
    if back is None:
        return fail(args, EXIT_UNREACHABLE, what + f"; reset, but the gateway did not answer within "
                                                   f"{args.boot_timeout:.0f} s", zh="更新已装好并已复位，但网关没有再应答："
                                                                                  "检查供电和 USB 线，再用 `nengjian ota state` 查看",
                    installed=ans)
    st, state = back
    doc = {"installed": ans, "status": {"firmware": st.get("firmware"), "uptime_s": st.get("uptime_s")}, "ota": state}
    if st.get("firmware") != version:
        return fail(args, EXIT_FAILED, what + "; but the gateway came back with firmware %s: the update did not start "
                    "(see `nengjian status --events 20`)" % st.get("firmware"),
                    zh="网关复位后运行的不是新版本，更新没有启动（用 `nengjian status --events 20` 查看原因）", **doc)
    emit(args, doc, [what + "; the gateway runs %s on %s (boot %s of %s): it keeps it once healthy" % (
        version, state.get("state"), state.get("boots"), state.get("max_boots"))])
    return EXIT_OK


def cmd_ota_state(args) -> int:
    from nengjian_host.crew import update

    code, state = on_gateway(args, update.state)
    if code != EXIT_OK:
        return code
    output.print_json(state)
    return EXIT_OK


def register(sub) -> None:
    """Add the crew's commands to the `nengjian` subcommands `sub`."""
    lg = sub.add_parser(
        "ledger", formatter_class=HelpFormatter, help="the maintenance ledger (faults, gaps, outages, visits) from pulled data",
        description="Build the electronic maintenance ledger from a gateway's pulled data: faults and durations, "
                    "link outages, data gaps per item (>= 24 h flagged, >= 3 days to be reported with cause and fix), "
                    "inspection visits (30-day rule), data-loss events, completeness per item, plots. Times in CST.",
        epilog="example:\n  nengjian pull --port P --out pulled/NJ0001\n"
               "  nengjian ledger pulled/NJ0001 --from 2026-05-01 --to 2026-06-01 --html ledger-NJ0001.html")
    lg.add_argument("source", help="directory made by `nengjian pull`, a flash dump, or a JSON(-lines) export")
    lg.add_argument("--from", dest="since", help="start (CST date or date-time)")
    lg.add_argument("--to", dest="until", help="end (CST date or date-time)")
    lg.add_argument("--period", type=int, help="real-time period in seconds (default: inferred from the values)")
    lg.add_argument("--gateway", help="gateway id to print on the report")
    lg.add_argument("--title", default="Maintenance ledger", help="report title")
    lg.add_argument("--html", help="write the self-contained HTML report here")
    lg.add_argument("--png-dir", help="also write the plots as PNG files here")
    lg.add_argument("--json", action="store_true", help="the ledger as JSON on stdout")
    lg.set_defaults(func=cmd_ledger)

    st = sub.add_parser("status", formatter_class=HelpFormatter,
                        help="show a connected gateway's state: meters, links, backlog, alarms",
                        description="Ask a running gateway's USB console for its status (it keeps running): "
                                    "meters and their last readings, store backlog per destination, last upload, "
                                    "links, alarms, free heap and flash. Exit 3: gateway not reachable.",
                        epilog="example:\n  nengjian status --port sn:SERIAL --events 20\n"
                               "  nengjian status --port /dev/ttyACM0 --check   (exit 1 when it reports alarms)")
    port_args(st)
    st.add_argument("--json", action="store_true", help="the status as one JSON object")
    st.add_argument("--events", type=int, default=0, metavar="N", help="also show the last N ledger events")
    st.add_argument("--check", action="store_true", help="exit 1 when the gateway reports alarms")
    st.set_defaults(func=cmd_status)

    pl = sub.add_parser("pull", formatter_class=HelpFormatter,
                        help="copy the store and config off a gateway; decode and export",
                        description="Copy the store (/data/store) and the config off a running gateway over its "
                                    "USB console (it keeps running), checking every file's sha256 against the "
                                    "gateway's; decode the records and export JSON and CSV. Or read a flash dump "
                                    "(esptool read-flash) with --dump. Secrets stay behind: the platform session "
                                    "files are not copied and the config's PINs are blanked; the pull is readable "
                                    "by you only (0700). A pull that breaks off writes nothing into --out; the same "
                                    "command resumes it. Exit 1: the gateway named a file that would land outside "
                                    "--out (refused, nothing written). Exit 3: the gateway is not reachable or went "
                                    "away.",
                        epilog="example:\n  nengjian pull --port sn:SERIAL --out pulled\n"
                               "  nengjian pull --dump flash.bin --gateway NJ0001 --out pulled\n"
                               "then: nengjian ledger pulled/NJ0001-TIME --html ledger.html")
    port_args(pl, 20.0)
    pl.add_argument("--out", required=True, help="directory to put the pull in (as OUT/<gateway>-<time>/)")
    pl.add_argument("--dump", help="read this flash dump (or littlefs image) instead of a gateway")
    pl.add_argument("--gateway", help="name of the gateway a --dump came from (default: the file name)")
    pl.add_argument("--no-decode", action="store_true", help="copy files only")
    pl.add_argument("--json", action="store_true", help="the result as JSON (no progress bar)")
    pl.set_defaults(func=cmd_pull)

    co = sub.add_parser("console", formatter_class=HelpFormatter, help="interactive console of a gateway (leave with Ctrl-])",
                        description="A terminal on the gateway's USB console, like pyserial's miniterm: log lines, "
                                    "the console commands (type help), and the MicroPython REPL after Ctrl-C. "
                                    "Leave with Ctrl-]. With stdin not a terminal, sends its lines and prints "
                                    "what comes back.",
                        epilog="example:\n  nengjian console --port sn:SERIAL\n"
                               "  echo status | nengjian console --port sim:run/sim --wait 2   (from a script)")
    port_args(co)
    co.add_argument("--wait", type=float, default=2.0, help="piped use: seconds to keep printing after sending")
    co.set_defaults(func=cmd_console)

    v = sub.add_parser("visit", formatter_class=HelpFormatter,
                       help="record an inspection visit in a gateway's ledger (the 30-day rule)",
                       description="Writes who came and what was checked into the gateway's own maintenance "
                                   "ledger, through its USB console; `nengjian ledger` lists visits and flags "
                                   "sites overdue for one.",
                       epilog="example:\n  nengjian visit --port sn:SERIAL --who \"Li Wei\" meters read, cabinet cleaned")
    v.add_argument("--who", required=True, help="crew member")
    v.add_argument("note", nargs="+", help="what was checked or done, e.g. 'meters read, cabinet cleaned'")
    v.add_argument("--json", action="store_true")
    port_args(v)
    v.set_defaults(func=cmd_visit)

    from nengjian_host.crew.entries import STAT_TYPES

    m = sub.add_parser("manual", formatter_class=HelpFormatter,
                       help="enter a quantity no meter measures (coal or oil delivery) on a gateway",
                       description="Checks the entry with the gateway's own rules, then stores it on the gateway "
                                   "through the console as a day, month or year value with input type 5 (manual); "
                                   "it is uploaded like any other value.",
                       epilog="example:\n  nengjian manual --port sn:SERIAL --code 00-00-0000-010100-11 --period day "
                              "--start 2026-03-14 --value 35.20 --who \"Li Wei\"\n"
                              "  (add --dry-run to only check it)")
    m.add_argument("--code", required=True, help="data-item code, e.g. 00-00-0000-010100-11 (whole-plant raw coal)")
    m.add_argument("--scope", type=int, default=1, choices=[1, 2, 3, 4], help="1 whole plant (default) .. 4 equipment")
    m.add_argument("--period", choices=sorted(STAT_TYPES), default="day")
    m.add_argument("--start", required=True, help="period start, CST: 2026-03-14 (day), 2026-03 (month), 2026 (year)")
    m.add_argument("--value", required=True, help="exact decimal in the item's unit, e.g. 35.20")
    m.add_argument("--who", default="", help="crew member, for the ledger")
    m.add_argument("--dry-run", action="store_true", help="only check the entry")
    m.add_argument("--json", action="store_true")
    port_args(m)
    m.set_defaults(func=cmd_manual)


def register_ota(osub) -> None:
    """`ota push` and `ota state` under the `ota` command the vendor's commands made (`osub`: its actions)."""
    op = osub.add_parser("push", formatter_class=HelpFormatter,
                         help="send a signed bundle to a gateway over its console, install it, reset",
                         description="Send a bundle over the gateway's USB console while it runs. The gateway "
                                     "checks the signature with its own vendor key (config/ota_key.json), "
                                     "installs it into the spare slot and, after the reset, runs it on trial: "
                                     "it keeps it once healthy (health.healthy_s), and goes back to the version "
                                     "before if it is not (ota.max_boots failed starts, ota.window_s). Exit 1: "
                                     "refused (nothing switched) or the gateway came back with another version; "
                                     "3: gateway not reachable.",
                         epilog="example:\n  nengjian ota push app-0.2.0.njota --port sn:SERIAL\n"
                                "  nengjian ota state --port sn:SERIAL   (later: trial or confirmed)")
    op.add_argument("bundle", help="the .njota file (`nengjian ota build`)")
    port_args(op, 30.0)
    op.add_argument("--no-reset", action="store_true", help="install only: the new version starts at the next reset")
    op.add_argument("--boot-timeout", type=float, default=90.0,
                    help="seconds to wait for the gateway to answer after the reset (default 90)")
    op.add_argument("--json", action="store_true", help="the result as JSON")
    op.set_defaults(func=cmd_ota_push)
    os_ = osub.add_parser("state", formatter_class=HelpFormatter,
                          help="a gateway's update state: running version, slot, trial or confirmed",
                          description="Ask a running gateway which application version it runs, from which slot, "
                                      "and whether that version is still on trial or confirmed; printed as JSON.",
                          epilog="example:\n  nengjian ota state --port sn:SERIAL")
    port_args(os_)
    os_.set_defaults(func=cmd_ota_state)
