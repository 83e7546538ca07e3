"""The installer's `nengjian` commands: check-config, schema, bundle, flash, provision, inventory, scan.

Owns: their options, help text and printing only. Each command is a thin wrapper: it turns the
options into a call of a library function a script can call as well (common.siteconfig,
common.bundle, install.flash, install.provision, install.scan) and prints what it returns through
common.output (exit codes, errors, --json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nengjian_host.common import output
from nengjian_host.common.messages import both, msg, t
from nengjian_host.common.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    HelpFormatter,
    emit,
    fail,
)


# ---- check-config, schema
def cmd_check_config(args) -> int:
    """Every problem of the config at once: each on its own line of stderr (in --json a list), then a
    line counting them in the chosen language; exit 1 when there is any."""
    from nengjian_host.common import siteconfig

    problems = siteconfig.check_file(Path(args.file))
    if args.json:
        doc = {"file": args.file, "ok": not problems, "problems": [str(p) for p in problems], "count": len(problems)}
        if problems:
            doc["problems_zh"] = [getattr(p, "zh", p) for p in problems]
            doc["summary"], doc["summary_zh"] = both("check.summary", file=args.file, count=len(problems))
        output.print_json(doc)
    elif problems:
        for p in problems:
            output.to_stderr(siteconfig.localized(p, args.file))
        output.both_lines("check.summary", file=args.file, count=len(problems))
    else:
        print(t("check.ok", file=args.file))
    return EXIT_OK if not problems else EXIT_FAILED


def cmd_schema(args) -> int:
    import json

    from nengjian_host.common import siteconfig

    print(json.dumps(siteconfig.schema(args.which), indent=2))
    return EXIT_OK


# ---- bundle
def cmd_bundle(args) -> int:
    from nengjian_host.common import bundle

    try:
        with output.progress(args) as prog:
            r = bundle.make(args.board, Path(args.out) if args.out else None, Path(args.image) if args.image else None,
                            compile=not args.no_compile, progress=prog)
        image_kib = bundle.load_board(r["board"]).app_fs_size // 1024
    except bundle.BundleError as e:
        return fail(args, EXIT_USAGE, msg("err.bundle", reason=e))
    emit(args, {"ok": True, **r},
         [t("out.bundle.made", board=r["board"], files=r["files"], kib=r["bytes"] // 1024, compiled=r["compiled"],
            source=", ".join(r["kept_source"])),
          t("out.bundle.tree", path=r["tree"])]
         + ([t("out.bundle.image", path=r["image"], kib=image_kib)] if r["image"] else [])
         + ([t("out.bundle.romfs", path=r["romfs"], kib=r["romfs_bytes"] // 1024)] if r.get("romfs") else []))
    return EXIT_OK


# ---- flash
def cmd_flash(args) -> int:
    from nengjian_host.common import bundle, devicefiles
    from nengjian_host.install import flash

    try:
        board = bundle.load_board(args.board)
        if args.sync:
            r = flash.sync_to(board, args.sync, compile=not args.no_compile)
            emit(args, {"ok": True, **r}, [t("out.flash.synced", device=r["device"], copied=len(r["copied"]),
                                             checked=r["checked"])] + ["  " + p for p in r["copied"]])
            return EXIT_OK
        if board.is_sim:
            return fail(args, EXIT_USAGE, "err.flash.sim")
        port = args.port or (flash.find_port(args.usb_serial) if args.usb_serial else None)
        conn = flash.Connection(port, board.chip, reset=not args.no_reset, baud=args.baud) if port else None
        if args.restore:
            if not conn:
                return fail(args, EXIT_USAGE, "err.flash.restore_needs_port")
            r = flash.restore(conn, Path(args.restore))
            emit(args, {"ok": True, **r}, [t("out.flash.restored", parts=", ".join(r["restored"]), source=r["from"])])
            return EXIT_OK
        fw_path = flash.resolve_firmware(args.firmware, board)
        extra, keys_bin = flash.provisioned(Path(args.provisioned)) if args.provisioned else ({}, None)
        if not conn:
            img, warnings = flash.build_offline(board, fw_path, Path(args.out or "build/flash-%s" % board.name),
                                                args.set_flash_size, extra, compile=not args.no_compile)
            emit(args, {"ok": True, "written": False, "image": img.manifest, "merged_bin": str(img.merged_bin),
                        "merged_hex": str(img.merged_hex), "warnings": warnings},
                 [t("out.flash.built", bin=img.merged_bin, base="%#x" % img.base, hex=img.merged_hex, board=board.name)]
                 + [t("out.warning", text=w) for w in warnings])
            return EXIT_OK
        with output.progress(args) as prog:
            rec = flash.flash(board, fw_path, conn, backup=args.backup, fresh_config=args.fresh_config,
                              allow_layout_change=args.allow_layout_change, set_flash_size=args.set_flash_size,
                              expect_mac=args.expect_mac, extra_files=extra, keys_bin=keys_bin,
                              step=output.steps(args, prog, "flash"))
    except bundle.BundleError as e:
        return fail(args, EXIT_USAGE, msg("err.bundle", reason=e))
    except flash.FlashError as e:
        return fail(args, e.exit_code, msg(_FLASH_KEYS.get(e.exit_code, "err.flash.failed"), reason=e))
    except devicefiles.DeviceUnreachable as e:
        return fail(args, EXIT_UNREACHABLE, msg("err.unreachable", reason=e))
    emit(args, {"ok": True, **rec},
         [t("out.flash.done", port=conn.port, mac=rec["mac"], board=board.name),
          t("out.flash.backup", record=rec["record"], board=board.name, port=conn.port)]
         + ([t("out.flash.carried", files=", ".join(rec["config_carried"]))] if rec["config_carried"] else [])
         + [t("out.warning", text=w) for w in rec["warnings"]])
    return EXIT_OK


_FLASH_KEYS = {EXIT_USAGE: "err.flash.refused", EXIT_UNREACHABLE: "err.flash.unreachable", EXIT_FAILED: "err.flash.failed"}


# ---- provision, inventory
def cmd_provision(args) -> int:
    from nengjian_host.install import provision

    inv = provision.Inventory(Path(args.inventory) if args.inventory else provision.default_inventory())
    keystore = provision.KeyStore(Path(args.keystore) if args.keystore else provision.default_keystore())
    try:
        if args.batch:
            gateways, bad = provision.read_csv(Path(args.batch))
        else:
            missing = [f for f in ("config", "serial", "mac", "board") if not getattr(args, f)]
            if missing:
                inv.close()
                return fail(args, EXIT_USAGE, msg("err.provision.missing", options=", --".join(missing)))
            gateways = [provision.gateway_from(Path(args.config), args.serial, args.mac, args.board, args.gateway,
                                               args.cert, args.ca, args.ota_key)]
            bad = []
    except provision.ProvisionError as e:
        inv.close()
        return fail(args, EXIT_USAGE, msg("err.provision.input", reason=provision.messages.Text(str(e), e.zh or str(e))))

    def target(gw):
        return provision.target_for(gw, port=args.port, no_reset=args.no_reset, sim_dir=args.sim_dir, out=args.out,
                                    batch=bool(args.batch))

    with output.progress(args) as prog:
        task = prog.add_task("provision", total=len(gateways)) if prog else None
        rows = provision.provision_all(gateways, bad, inv, keystore, target, check_only=args.check,
                                       csr_dir=Path(args.csr_dir) if args.csr_dir else None,
                                       forget_key=args.forget_key,
                                       on_row=(lambda _row: prog.advance(task)) if prog else None)
    inv.close()
    code = provision.exit_code(rows)
    ok = sum(1 for r in rows if r.get("ok"))
    emit(args, {"ok": code == EXIT_OK, "rows": rows, "provisioned": ok, "failed": len(rows) - ok},
         provision.report_lines(rows, args.check))
    return code


def cmd_inventory(args) -> int:
    from nengjian_host.install import provision

    inv = provision.Inventory(Path(args.inventory) if args.inventory else provision.default_inventory())
    rows = inv.rows(args.serial)
    inv.close()
    cols = ("serial", "gateway", "mac", "site", "enterprise", "board", "cert_fingerprint", "provisioned_at")
    emit(args, {"ok": True, "gateways": rows},
         ["  ".join(cols)] + ["  ".join(str(r.get(c) or "-") for c in cols) for r in rows]
         + [t("out.inventory.count", n=len(rows), path=inv.path)])
    return EXIT_OK if rows or not args.serial else EXIT_FAILED


# ---- scan
def cmd_scan(args) -> int:
    """Through the running gateway's console with --console; else on a simulated gateway (--sim-bus)."""
    from nengjian_host.common.device import ConsoleScanTransport, PortNotFound, resolve_port
    from nengjian_host.install import scan

    if args.console:
        try:
            transport = ConsoleScanTransport(resolve_port(args.console), baud=args.baud, timeout=args.console_timeout)
        except PortNotFound as e:
            return fail(args, EXIT_UNREACHABLE, msg("err.port_not_found", reason=e))
    elif args.sim_bus:
        transport = scan.sim_transport(args.port, args.sim_bus, args.heap)
    else:
        return fail(args, EXIT_USAGE, "err.scan.which")

    def live(kind, payload):
        if args.json and kind == "find":
            output.print_json(payload)
        elif kind == "progress":
            output.note(args, t("out.scan.progress", scan=payload["scan"], baud=payload["baud"],
                                parity=payload["parity"], found=payload["found"]))

    try:
        res = scan.run_on(transport, _scan_options(args), live)
    except OSError as e:
        return fail(args, EXIT_UNREACHABLE, msg("err.scan.unreachable", reason=e))
    if not args.json:
        for line in scan.result_lines(res, args.port, args.bus_name):
            print(line)
    if res.errors:
        return fail(args, EXIT_FAILED, msg("err.scan.incomplete", reasons="\n".join(str(e) for e in res.errors)))
    return EXIT_OK


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    lo, hi = int(first), int(last or first)
    if not 1 <= lo <= hi <= 247:
        raise argparse.ArgumentTypeError("address range must be within 1-247")
    return [lo, hi]


def _scan_options(args) -> dict:
    """The options the firmware's scan (nengjian.meters.scan) takes, from the command's."""
    return {"port": args.port, "modbus": not args.no_modbus, "addresses": args.addresses,
            "bauds": args.bauds, "parities": [x.strip().upper() for x in args.parities.split(",") if x.strip()],
            "register": args.register, "fc": args.fc, "timeout_ms": args.timeout_ms,
            "dlt645": not args.no_dlt645, "dlt645_bauds": args.dlt645_bauds, "cjt188": args.cjt188}


def register(sub) -> None:
    """Add the installer's commands to the `nengjian` subcommands `sub`."""
    c = sub.add_parser("check-config", formatter_class=HelpFormatter, help=t("help.check-config"),
                       description=t("help.check-config.desc"),
                       epilog=t("help.check-config.epilog"))
    c.add_argument("file", help=t("help.check-config.file"))
    c.add_argument("--json", action="store_true", help=t("help.json"))
    c.set_defaults(func=cmd_check_config)

    sc = sub.add_parser("schema", formatter_class=HelpFormatter, help=t("help.schema"),
                        description=t("help.schema.desc"),
                        epilog=t("help.schema.epilog"))
    sc.add_argument("which", choices=["site", "profile"])
    sc.set_defaults(func=cmd_schema)

    b = sub.add_parser("bundle", formatter_class=HelpFormatter, help=t("help.bundle"),
                       description=t("help.bundle.desc"),
                       epilog=t("help.bundle.epilog"))
    b.add_argument("--board", required=True, help=t("help.bundle.board"))
    b.add_argument("--out", help=t("help.bundle.out"))
    b.add_argument("--image", help=t("help.bundle.image"))
    b.add_argument("--no-compile", action="store_true", help=t("help.no_compile"))
    b.add_argument("--json", action="store_true", help=t("help.json"))
    b.set_defaults(func=cmd_bundle)

    fl = sub.add_parser(
        "flash", formatter_class=HelpFormatter, help=t("help.flash"),
        description=t("help.flash.desc"),
        epilog=t("help.flash.epilog"))
    fl.add_argument("--board", required=True, help=t("help.flash.board"))
    fl.add_argument("--firmware", help=t("help.flash.firmware"))
    fl.add_argument("--port", help=t("help.flash.port"))
    fl.add_argument("--usb-serial", help=t("help.flash.usb_serial"))
    fl.add_argument("--expect-mac", help=t("help.flash.expect_mac"))
    fl.add_argument("--out", help=t("help.flash.out"))
    fl.add_argument("--provisioned", metavar="DIR", help=t("help.flash.provisioned"))
    fl.add_argument("--backup", choices=["full", "config", "none"], default="full",
                    help=t("help.flash.backup"))
    fl.add_argument("--fresh-config", action="store_true", help=t("help.flash.fresh_config"))
    fl.add_argument("--allow-layout-change", action="store_true",
                    help=t("help.flash.allow_layout_change"))
    fl.add_argument("--set-flash-size", action="store_true",
                    help=t("help.flash.set_flash_size"))
    fl.add_argument("--restore", metavar="DIR", help=t("help.flash.restore"))
    fl.add_argument("--sync", metavar="PORT_OR_DIR", help=t("help.flash.sync"))
    fl.add_argument("--no-compile", action="store_true", help=t("help.flash.no_compile"))
    fl.add_argument("--no-reset", action="store_true", help=t("help.flash.no_reset"))
    fl.add_argument("--baud", type=int, default=460800, help=t("help.flash.baud"))
    fl.add_argument("--json", action="store_true", help=t("help.json"))
    fl.set_defaults(func=cmd_flash)

    pv = sub.add_parser(
        "provision", formatter_class=HelpFormatter, help=t("help.provision"),
        description=t("help.provision.desc"),
        epilog=t("help.provision.epilog"))
    pv.add_argument("--config", help=t("help.provision.config"))
    pv.add_argument("--serial", help=t("help.provision.serial"))
    pv.add_argument("--mac", help=t("help.provision.mac"))
    pv.add_argument("--board", help=t("help.flash.board"))
    pv.add_argument("--gateway", help=t("help.provision.gateway"))
    pv.add_argument("--cert", help=t("help.provision.cert"))
    pv.add_argument("--ca", help=t("help.provision.ca"))
    pv.add_argument("--ota-key", help=t("help.provision.ota_key"))
    pv.add_argument("--batch", metavar="CSV", help=t("help.provision.batch"))
    pv.add_argument("--sim-dir", help=t("help.provision.sim_dir"))
    pv.add_argument("--out", help=t("help.provision.out"))
    pv.add_argument("--port", help=t("help.provision.port"))
    pv.add_argument("--no-reset", action="store_true", help=t("help.provision.no_reset"))
    pv.add_argument("--csr-dir", help=t("help.provision.csr_dir"))
    pv.add_argument("--forget-key", action="store_true", help=t("help.provision.forget_key"))
    pv.add_argument("--check", action="store_true", help=t("help.provision.check"))
    pv.add_argument("--inventory", help=t("help.inventory_db"))
    pv.add_argument("--keystore", help=t("help.provision.keystore"))
    pv.add_argument("--json", action="store_true", help=t("help.provision.json"))
    pv.set_defaults(func=cmd_provision)

    iv = sub.add_parser("inventory", formatter_class=HelpFormatter,
                        help=t("help.inventory"),
                        description=t("help.inventory.desc"),
                        epilog=t("help.inventory.epilog"))
    iv.add_argument("--serial", help=t("help.inventory.serial"))
    iv.add_argument("--inventory", help=t("help.inventory_db"))
    iv.add_argument("--json", action="store_true", help=t("help.inventory.json"))
    iv.set_defaults(func=cmd_inventory)

    sn = sub.add_parser("scan", formatter_class=HelpFormatter, help=t("help.scan"),
                        description=t("help.scan.desc"),
                        epilog=t("help.scan.epilog"))
    sn.add_argument("--port", default="rs485_0", help=t("help.scan.port"))
    sn.add_argument("--bus-name", default="bus0", help=t("help.scan.bus_name"))
    sn.add_argument("--addresses", type=_range, default=[1, 247], help=t("help.scan.addresses"))
    sn.add_argument("--bauds", type=_int_list, default=[9600, 19200, 4800, 2400], help=t("help.scan.bauds"))
    sn.add_argument("--parities", default="N,E", help=t("help.scan.parities"))
    sn.add_argument("--register", type=int, default=0, help=t("help.scan.register"))
    sn.add_argument("--fc", type=int, choices=[1, 2, 3, 4], default=3, help=t("help.scan.fc"))
    sn.add_argument("--timeout-ms", type=int, default=100, help=t("help.scan.timeout_ms"))
    sn.add_argument("--no-modbus", action="store_true", help=t("help.scan.no_modbus"))
    sn.add_argument("--no-dlt645", action="store_true", help=t("help.scan.no_dlt645"))
    sn.add_argument("--dlt645-bauds", type=_int_list, default=[2400, 1200, 4800, 9600], help=t("help.scan.dlt645_bauds"))
    sn.add_argument("--cjt188", action="store_true", help=t("help.scan.cjt188"))
    sn.add_argument("--json", action="store_true", help=t("help.scan.json"))
    sn.add_argument("--sim-bus", metavar="PTY", help=t("help.scan.sim_bus"))
    sn.add_argument("--heap", default="288k", help=t("help.scan.heap"))
    sn.add_argument("--console", metavar="PORT", help=t("help.scan.console"))
    sn.add_argument("--baud", type=int, default=115200, help=t("help.scan.baud"))
    sn.add_argument("--console-timeout", type=float, default=120.0,
                    help=t("help.scan.console_timeout"))
    sn.set_defaults(func=cmd_scan)
