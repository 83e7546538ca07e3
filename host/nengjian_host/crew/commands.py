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
from nengjian_host.common.messages import Text, get_lang, msg, t, t_in
from nengjian_host.common.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    HelpFormatter,
    emit,
    fail,
)


# ---- ledger
def cmd_ledger(args) -> int:
    """0 written, 1 a file could not be written or the PDF not printed (the HTML is), 2 bad input."""
    from nengjian_host.common import pdf
    from nengjian_host.common.messages import MESSAGES, Text
    from nengjian_host.crew import ledger

    html = args.html or (str(Path(args.pdf).with_suffix(".html")) if args.pdf else None)
    pdf_path = None if args.no_pdf or not html else (args.pdf or str(Path(html).with_suffix(".pdf")))
    try:
        with output.progress(args) if (html or args.png_dir) else contextlib.nullcontext(None) as prog:
            led = ledger.report(args.source, args.since, args.until, args.period, args.gateway, html,
                                args.png_dir, args.title, progress=prog, pdf_path=pdf_path,
                                lang=getattr(args, "lang_given", None))
    except ledger.LedgerError as e:
        return fail(args, EXIT_USAGE, Text(t_in("en", "err.ledger.input", reason=e), t_in("zh", "err.ledger.input",
                                                                                       reason=e.zh), "err.ledger.input"))
    except OSError as e:
        return fail(args, EXIT_FAILED, msg("err.io", reason=e))
    except pdf.PdfError as e:
        en, zh = MESSAGES["err.ledger.pdf"]
        return fail(args, EXIT_FAILED, Text(en.format(reason=e, html=html), zh.format(reason=e.zh, html=html),
                                            "err.ledger.pdf"), html=html)
    emit(args, {"ok": True, **ledger.public(led), "html": html, "pdf": led.get("pdf")},
         [ledger.summary_line(led)] + ([t("out.ledger.report", path=html)] if html else [])
         + ([t("out.ledger.pdf", path=led["pdf"])] if led.get("pdf") else []))
    return EXIT_OK


# ---- on a connected gateway: status, pull, console
def cmd_status(args) -> int:
    """0 shown, 1 alarms with --check (or the gateway answered with an error), 3 gateway unreachable."""
    from nengjian_host.common import gatewaytext
    from nengjian_host.common.device import DeviceError, DeviceGone, PortNotFound
    from nengjian_host.crew import status

    try:
        port, st = status.fetch(args.port, args.baud, args.timeout, args.events)
    except (PortNotFound, DeviceGone) as e:
        return fail(args, EXIT_UNREACHABLE, msg("err.unreachable", reason=e))
    except DeviceError as e:
        return fail(args, EXIT_FAILED, msg("err.gateway_answered", reason=e))
    if args.json:
        if st.get("mode") == "safe" and st.get("safe_reason"):  # the reason in Chinese too, as errors carry it
            st["safe_reason_zh"] = [line.zh.strip() for line in status.safe_texts(st)]
        if st.get("alarms"):  # the gateway's English alarms, and beside them their Chinese (gatewaytext)
            st["alarms_zh"] = [a.zh for a in gatewaytext.alarms(st)]
        for ev in st.get("events") or ():
            ev["text_zh"] = gatewaytext.event(ev.get("kind"), ev.get("code"), ev.get("text")).zh
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
        return fail(args, EXIT_UNREACHABLE, msg("err.unreachable", reason=e))
    except DeviceGone as e:
        return fail(args, EXIT_UNREACHABLE, msg("err.pull.gone", reason=e, out=out))
    except DeviceError as e:
        return fail(args, EXIT_FAILED, msg("err.gateway_refused", reason=e))
    except pull.UnsafeName as e:
        return fail(args, EXIT_FAILED, str(e), zh=e.zh)
    except (pull.PullError, OSError) as e:
        return fail(args, EXIT_USAGE, msg("err.pull.input", reason=e))
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
    """0 recorded (also with a check beyond class: that is an alarm, not a failure), 1 refused,
    2 bad input (nothing sent), 3 gateway unreachable."""
    from nengjian_host.crew import entries

    note = " ".join(args.note)
    refused = t_in("en", "err.visit.refused", reason="")
    if not (args.photo or args.check or args.done or args.calibration):
        try:
            command = entries.visit_command(args.who, note)
        except entries.EntryError as e:
            return fail(args, EXIT_USAGE, e.text)
        code, ans = on_gateway(args, lambda con: entries.send(con, command), refused=refused)
        if ans is not None:
            emit(args, ans, [t("out.visit.recorded", seq=ans.get("seq"))])
        return code
    try:  # everything checked before the gateway is asked anything
        entries.hash_photos(args.photo or [])
        entries.visit_request("V", args.who, note, args.done or "", [])
        for m, p, v in args.check or ():
            entries.check_request(m, p, v)
        entries.check_calibrations(args.calibration or ())
    except entries.EntryError as e:
        return fail(args, EXIT_USAGE, e.text)
    if args.photo and not args.out:
        return fail(args, EXIT_USAGE, "err.visit.photos_need_out")

    def work(con):
        return entries.record_visit(con, args.who, note, args.done or "", args.photo or [], args.check or (),
                                    Path(args.out) if args.out else None, calibrations=args.calibration or ())

    try:
        code, ans = on_gateway(args, work, refused=refused)
    except entries.EntryError as e:  # a meter the gateway does not have: asked, nothing recorded
        return fail(args, EXIT_USAGE, e.text)
    if ans is None:
        return code
    lines = [t("out.visit.recorded_id", visit=ans["visit"], seq=ans["seq"])]
    if ans["photos"]:
        lines.append(t("out.visit.photos", n=len(ans["photos"]), dir=ans["photos_dir"]))
    for c in ans["checks"]:
        lines.append(t("out.visit.check", meter=c["meter"], point=c["point"], displayed=c["displayed"],
                       gateway=c["gateway"], difference=c["difference"], allowed=c["allowed"], cls=c["class"],
                       verdict=t("out.visit.beyond" if c["beyond"] else "out.visit.within")))
    for c in ans["calibrations"]:
        rec = c.get("calibration") or {}
        lines.append(t("out.visit.calibration", meter=c.get("meter"), seq=c.get("seq"),
                       certificate=rec.get("certificate"), date=rec.get("date"), due=rec.get("due"),
                       alarm=t("out.visit.cal_alarm", alarm=c["alarm"]) if c.get("alarm") else
                       t("out.visit.cal_clear")))
    if ans["calibrations"]:
        lines.append(t("out.visit.pull_updated", dir=ans["pull"]) if ans["pull"] else t("out.visit.pull_stale"))
    emit(args, ans, lines)
    return code


def cmd_manual(args) -> int:
    from nengjian_host.crew import entries

    try:
        what, command = entries.manual_entry(args.code, args.period, args.start, args.value, args.scope, args.who)
    except entries.EntryError as e:
        return fail(args, EXIT_USAGE, msg("err.manual.input", reason=e))
    if args.dry_run:
        print(t("out.manual.would", what=what))
        return EXIT_OK
    code, ans = on_gateway(args, lambda con: entries.send(con, command), refused=t_in("en", "err.manual.refused"))
    if ans is not None:
        emit(args, ans, [t("out.manual.entered", what=what, seq=ans.get("seq"))])
    return code


# ---- ota push, ota state
def _with(what: Text, key: str, **kw) -> Text:
    """The catalogue's `key` after what was done (`what`, itself a Text), each language with its own."""
    return Text(t_in("en", key, what=str(what), **kw), t_in("zh", key, what=what.zh, **kw), key)


def cmd_ota_push(args) -> int:
    """0 the gateway runs the new version on trial, 1 refused or it came back with another version,
    2 not a bundle, 3 gateway unreachable (also after the reset)."""
    from nengjian_host.crew import update
    from nengjian_host.vendor import updates

    try:
        data = Path(args.bundle).read_bytes()
        version = updates.describe(data)["version"]
    except (OSError, ValueError) as e:
        return fail(args, EXIT_USAGE, msg("err.ota.not_bundle", bundle=args.bundle, reason=e))
    code, ans = on_gateway(args, lambda con: update.install(con, data, reset=not args.no_reset),
                           refused=t_in("en", "err.ota.refused"))
    if code != EXIT_OK:
        return code
    what = update.installed_text(version, ans)
    said = what.zh if get_lang() == "zh" else str(what)
    if args.no_reset:
        emit(args, {"installed": ans}, [said + t("out.ota.on_trial_next")])
        return EXIT_OK
    back = update.wait_running(args.port, args.baud, args.boot_timeout)
    if back is None:
        return fail(args, EXIT_UNREACHABLE, _with(what, "err.ota.silent", seconds="%.0f" % args.boot_timeout), installed=ans)
    st, state = back
    doc = {"installed": ans, "status": {"firmware": st.get("firmware"), "uptime_s": st.get("uptime_s")}, "ota": state}
    if st.get("firmware") != version:
        return fail(args, EXIT_FAILED, _with(what, "err.ota.other_version", firmware=st.get("firmware")), **doc)
    emit(args, doc, [said + t("out.ota.on_trial", version=version, state=state.get("state"), boots=state.get("boots"),
                              max_boots=state.get("max_boots"))])
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
        "ledger", formatter_class=HelpFormatter, help=t("help.ledger"),
        description=t("help.ledger.desc"),
        epilog=t("help.ledger.epilog"))
    lg.add_argument("source", help=t("help.ledger.source"))
    lg.add_argument("--from", dest="since", help=t("help.ledger.from"))
    lg.add_argument("--to", dest="until", help=t("help.ledger.to"))
    lg.add_argument("--period", type=int, help=t("help.ledger.period"))
    lg.add_argument("--gateway", help=t("help.ledger.gateway"))
    lg.add_argument("--title", help=t("help.ledger.title"))
    lg.add_argument("--html", help=t("help.ledger.html"))
    lg.add_argument("--pdf", help=t("help.ledger.pdf"))
    lg.add_argument("--no-pdf", action="store_true", help=t("help.ledger.no_pdf"))
    lg.add_argument("--png-dir", help=t("help.ledger.png_dir"))
    lg.add_argument("--json", action="store_true", help=t("help.ledger.json"))
    lg.set_defaults(func=cmd_ledger)

    st = sub.add_parser("status", formatter_class=HelpFormatter,
                        help=t("help.status"),
                        description=t("help.status.desc"),
                        epilog=t("help.status.epilog"))
    port_args(st)
    st.add_argument("--json", action="store_true", help=t("help.status.json"))
    st.add_argument("--events", type=int, default=0, metavar="N", help=t("help.status.events"))
    st.add_argument("--check", action="store_true", help=t("help.status.check"))
    st.set_defaults(func=cmd_status)

    pl = sub.add_parser("pull", formatter_class=HelpFormatter,
                        help=t("help.pull"),
                        description=t("help.pull.desc"),
                        epilog=t("help.pull.epilog"))
    port_args(pl, 20.0)
    pl.add_argument("--out", required=True, help=t("help.pull.out"))
    pl.add_argument("--dump", help=t("help.pull.dump"))
    pl.add_argument("--gateway", help=t("help.pull.gateway"))
    pl.add_argument("--no-decode", action="store_true", help=t("help.pull.no_decode"))
    pl.add_argument("--json", action="store_true", help=t("help.pull.json"))
    pl.set_defaults(func=cmd_pull)

    co = sub.add_parser("console", formatter_class=HelpFormatter, help=t("help.console"),
                        description=t("help.console.desc"),
                        epilog=t("help.console.epilog"))
    port_args(co)
    co.add_argument("--wait", type=float, default=2.0, help=t("help.console.wait"))
    co.set_defaults(func=cmd_console)

    v = sub.add_parser("visit", formatter_class=HelpFormatter, help=t("help.visit"),
                       description=t("help.visit.desc"), epilog=t("help.visit.epilog"))
    v.add_argument("--who", required=True, help=t("help.visit.who"))
    v.add_argument("note", nargs="+", help=t("help.visit.note"))
    v.add_argument("--done", help=t("help.visit.done"))
    v.add_argument("--photo", action="append", metavar="FILE", help=t("help.visit.photo"))
    v.add_argument("--out", help=t("help.visit.out"))
    v.add_argument("--check", nargs=3, action="append", metavar=("METER", "POINT", "DISPLAYED"),
                   help=t("help.visit.check"))
    v.add_argument("--calibration", nargs=4, action="append", metavar=("METER", "CERTIFICATE", "DATE", "DUE"),
                   help=t("help.visit.calibration"))
    v.add_argument("--json", action="store_true", help=t("help.visit.json"))
    port_args(v)
    v.set_defaults(func=cmd_visit)

    from nengjian_host.crew.entries import STAT_TYPES

    m = sub.add_parser("manual", formatter_class=HelpFormatter,
                       help=t("help.manual"),
                       description=t("help.manual.desc"),
                       epilog=t("help.manual.epilog"))
    m.add_argument("--code", required=True, help=t("help.manual.code"))
    m.add_argument("--scope", type=int, default=1, choices=[1, 2, 3, 4], help=t("help.manual.scope"))
    m.add_argument("--period", choices=sorted(STAT_TYPES), default="day", help=t("help.manual.period"))
    m.add_argument("--start", required=True, help=t("help.manual.start"))
    m.add_argument("--value", required=True, help=t("help.manual.value"))
    m.add_argument("--who", default="", help=t("help.manual.who"))
    m.add_argument("--dry-run", action="store_true", help=t("help.manual.dry_run"))
    m.add_argument("--json", action="store_true", help=t("help.manual.json"))
    port_args(m)
    m.set_defaults(func=cmd_manual)


def register_ota(osub) -> None:
    """`ota push` and `ota state` under the `ota` command the vendor's commands made (`osub`: its actions)."""
    op = osub.add_parser("push", formatter_class=HelpFormatter,
                         help=t("help.push"),
                         description=t("help.push.desc"),
                         epilog=t("help.push.epilog"))
    op.add_argument("bundle", help=t("help.push.bundle"))
    port_args(op, 30.0)
    op.add_argument("--no-reset", action="store_true", help=t("help.push.no_reset"))
    op.add_argument("--boot-timeout", type=float, default=90.0,
                    help=t("help.push.boot_timeout"))
    op.add_argument("--json", action="store_true", help=t("help.push.json"))
    op.set_defaults(func=cmd_ota_push)
    os_ = osub.add_parser("state", formatter_class=HelpFormatter,
                          help=t("help.state"),
                          description=t("help.state.desc"),
                          epilog=t("help.state.epilog"))
    port_args(os_)
    os_.set_defaults(func=cmd_ota_state)
