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
from nengjian_host.common.gatewaycall import PORT_HELP
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
    from nengjian_host.common import siteconfig

    problems = siteconfig.check_file(Path(args.file))
    if args.json:
        output.print_json({"file": args.file, "ok": not problems, "problems": problems})
    elif problems:
        for p in problems:
            output.to_stderr(f"{args.file}: {p}")
        output.to_stderr("错误：站点配置有 %d 处问题（每处见上），改正后再检查" % len(problems))
    else:
        print(f"{args.file}: ok")
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
        return fail(args, EXIT_USAGE, str(e), zh="无法生成应用包（原因见上一行）")
    emit(args, {"ok": True, **r},
         ["bundle for %s: %d files, %d KiB (%d compiled, kept as source: %s)" % (
             r["board"], r["files"], r["bytes"] // 1024, r["compiled"], ", ".join(r["kept_source"])),
          "  tree:  %s" % r["tree"]] + (["  image: %s (littlefs, %d KiB)" % (r["image"], image_kib)]
                                        if r["image"] else []))
    return EXIT_OK


# ---- flash
def cmd_flash(args) -> int:
    from nengjian_host.common import bundle, devicefiles
    from nengjian_host.install import flash

    try:
        board = bundle.load_board(args.board)
        if args.sync:
            r = flash.sync_to(board, args.sync, compile=not args.no_compile)
            emit(args, {"ok": True, **r}, ["%s: %d of %d file(s) changed and copied" % (
                r["device"], len(r["copied"]), r["checked"])] + ["  " + p for p in r["copied"]])
            return EXIT_OK
        if board.is_sim:
            return fail(args, EXIT_USAGE, "the sim board is not flashed: use `nengjian flash --board sim --sync DIR` "
                                          "or `nengjian sim`",
                        zh="模拟板不用烧录：用 `nengjian flash --board sim --sync DIR` 或 `nengjian sim`")
        port = args.port or (flash.find_port(args.usb_serial) if args.usb_serial else None)
        conn = flash.Connection(port, board.chip, reset=not args.no_reset, baud=args.baud) if port else None
        if args.restore:
            if not conn:
                return fail(args, EXIT_USAGE, "--restore needs --port or --usb-serial",
                            zh="--restore 需要 --port 或 --usb-serial 指明网关")
            r = flash.restore(conn, Path(args.restore))
            emit(args, {"ok": True, **r}, ["restored %s from %s" % (", ".join(r["restored"]), r["from"])])
            return EXIT_OK
        fw_path = flash.resolve_firmware(args.firmware, board)
        extra, keys_bin = flash.provisioned(Path(args.provisioned)) if args.provisioned else ({}, None)
        if not conn:
            img, warnings = flash.build_offline(board, fw_path, Path(args.out or "build/flash-%s" % board.name),
                                                args.set_flash_size, extra, compile=not args.no_compile)
            emit(args, {"ok": True, "written": False, "image": img.manifest, "merged_bin": str(img.merged_bin),
                        "merged_hex": str(img.merged_hex), "warnings": warnings},
                 ["built %s (flash at %#x) and %s for %s; nothing written (give --port to flash)"
                  % (img.merged_bin, img.base, img.merged_hex, board.name)] + ["warning: " + w for w in warnings])
            return EXIT_OK
        with output.progress(args) as prog:
            rec = flash.flash(board, fw_path, conn, backup=args.backup, fresh_config=args.fresh_config,
                              allow_layout_change=args.allow_layout_change, set_flash_size=args.set_flash_size,
                              expect_mac=args.expect_mac, extra_files=extra, keys_bin=keys_bin,
                              step=output.steps(args, prog, "flash"))
    except bundle.BundleError as e:
        return fail(args, EXIT_USAGE, str(e))
    except flash.FlashError as e:
        return fail(args, e.exit_code, str(e), zh=_FLASH_ZH.get(e.exit_code))
    except devicefiles.DeviceUnreachable as e:
        return fail(args, EXIT_UNREACHABLE, str(e))
    emit(args, {"ok": True, **rec},
         ["flashed and verified %s (MAC %s) as %s" % (conn.port, rec["mac"], board.name),
          "  before-image kept in %s (restore: nengjian flash --board %s --port %s --restore %s)"
          % (rec["record"], board.name, conn.port, rec["record"])]
         + (["  config carried over: " + ", ".join(rec["config_carried"])] if rec["config_carried"] else [])
         + ["warning: " + w for w in rec["warnings"]])
    return EXIT_OK


_FLASH_ZH = {
    EXIT_USAGE: "固件、板型和设备不匹配，什么都没写入（原因和解决办法见上一行）",
    EXIT_UNREACHABLE: "设备没有应答：检查 USB 线和端口；没有自动复位的板子，按住 BOOT 再点一下 EN，并加 --no-reset",
    EXIT_FAILED: "烧录或校验失败（原因见上一行）",
}


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
                return fail(args, EXIT_USAGE, "give --%s (or --batch sites.csv)" % ", --".join(missing),
                            zh="缺少 --%s（或用 --batch sites.csv 批量）" % ", --".join(missing))
            gateways = [provision.gateway_from(Path(args.config), args.serial, args.mac, args.board, args.gateway,
                                               args.cert, args.ca, args.ota_key)]
            bad = []
    except provision.ProvisionError as e:
        inv.close()
        return fail(args, EXIT_USAGE, str(e), zh="输入有误，什么都没写入（原因见上一行）")

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
         + ["%d gateway(s) in %s" % (len(rows), inv.path)])
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
            return fail(args, EXIT_UNREACHABLE, str(e))
    elif args.sim_bus:
        transport = scan.sim_transport(args.port, args.sim_bus, args.heap)
    else:
        return fail(args, EXIT_USAGE, "say which gateway to scan: --console PORT, or --sim-bus PTY for a simulated one",
                    zh="要说明扫描哪台网关：--console PORT，或模拟网关用 --sim-bus PTY")

    def live(kind, payload):
        if args.json and kind == "find":
            output.print_json(payload)
        elif kind == "progress":
            output.note(args, "scanning %s at %d %s ... (%d found)" % (payload["scan"], payload["baud"],
                                                                       payload["parity"], payload["found"]))

    try:
        res = scan.run_on(transport, _scan_options(args), live)
    except OSError as e:
        return fail(args, EXIT_UNREACHABLE, "cannot reach the gateway: %s" % e)
    if not args.json:
        for line in scan.result_lines(res, args.port, args.bus_name):
            print(line)
    if res.errors:
        return fail(args, EXIT_FAILED, "\n".join(str(e) for e in res.errors),
                    zh="扫描没有完成（原因见上一行）")
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
    c = sub.add_parser("check-config", formatter_class=HelpFormatter, help="check a site config file before it goes to a gateway",
                       description="Validate a site config against the schema, the credit code check character, "
                                   "data-item codes and the meter profiles, exactly as the gateway will.",
                       epilog="example:\n  nengjian check-config site.json\n"
                              "  nengjian check-config site.json --json   (for a script: {file, ok, problems})\n"
                              "exit codes: 0 the config is good, 1 it has problems (each named on stderr)")
    c.add_argument("file")
    c.add_argument("--json", action="store_true", help="machine-readable result")
    c.set_defaults(func=cmd_check_config)

    sc = sub.add_parser("schema", formatter_class=HelpFormatter, help="print the JSON schema of site configs or meter profiles",
                        description="Print the JSON schema the gateway checks site configs (site) or meter profiles "
                                    "(profile) against: for editors that complete and check JSON as you type.",
                        epilog="example:\n  nengjian schema site > site.schema.json")
    sc.add_argument("which", choices=["site", "profile"])
    sc.set_defaults(func=cmd_schema)

    b = sub.add_parser("bundle", formatter_class=HelpFormatter, help="build the application bundle (compiled modules, profiles) "
                       "and its littlefs image",
                       description="Collect firmware/ (compiled with mpy-cross where it helps), the board module and "
                                   "the meter profiles into the app filesystem, and build its littlefs image "
                                   "(block size 4096, the size of the board's vfs partition).",
                       epilog="example:\n  nengjian bundle --board esp32s3_4g --out build/b\n"
                              "then `nengjian flash` merges it with MicroPython and writes it.")
    b.add_argument("--board", required=True, help="board name under boards/ (esp32s3_4g, esp32_eth, sim)")
    b.add_argument("--out", help="output directory (default build/bundle-BOARD): fs/ tree and appfs.bin")
    b.add_argument("--image", help="write the littlefs image here (default OUT/appfs.bin; sim: only if given)")
    b.add_argument("--no-compile", action="store_true", help="keep every module as .py (debugging)")
    b.add_argument("--json", action="store_true", help="machine-readable result")
    b.set_defaults(func=cmd_bundle)

    fl = sub.add_parser(
        "flash", formatter_class=HelpFormatter, help="put MicroPython and the application on a gateway (checks first, keeps a "
                                           "way back)",
        description="Check the MicroPython firmware against the board (chip, flash size, app size, version), check "
                    "the connected gateway (chip, flash size, current partition layout), save what is about to be "
                    "overwritten, merge bootloader + partition table + MicroPython + app filesystem with esptool "
                    "merge-bin, write and verify. The nvs, nj_keys (credentials) and data (stored readings) "
                    "partitions are never written. /config on the gateway is carried into the new image.",
        epilog="on site:\n  nengjian flash --board esp32s3_4g --firmware ESP32_GENERIC_S3-v1.29.0.bin --port /dev/ttyACM0\n"
               "  (pick the port by adapter serial: --usb-serial SERIAL; the firmware is cached for next time)\n"
               "offline (production station): nengjian flash --board esp32_eth --firmware F.bin --out build/img\n"
               "way back:  nengjian flash --board B --port P --restore ~/.cache/nengjian/devices/MAC/TIME\n"
               "developer: nengjian flash --board B --sync PORT   (copies changed files only, by sha256)\n"
               "exit codes: 0 done, 1 failed (e.g. verify), 2 refused (mismatch, bad input), 3 gateway unreachable")
    fl.add_argument("--board", required=True, help="board name under boards/")
    fl.add_argument("--firmware", help="MicroPython .bin for the board's chip (default: the one cached in "
                                       "~/.cache/nengjian/firmware/CHIP/)")
    fl.add_argument("--port", help="serial port of the gateway")
    fl.add_argument("--usb-serial", help="pick the port by the USB adapter's serial number")
    fl.add_argument("--expect-mac", help="refuse unless the connected chip has this MAC")
    fl.add_argument("--out", help="without --port: build the merged image here and stop")
    fl.add_argument("--provisioned", metavar="DIR", help="add DIR/config/* (from `nengjian provision --out`) to the "
                                                         "app filesystem and write DIR/nj_keys.bin")
    fl.add_argument("--backup", choices=["full", "config", "none"], default="full",
                    help="what to read off before writing: full (bootloader, table, app, vfs; default), config "
                         "(table and vfs), none (table only)")
    fl.add_argument("--fresh-config", action="store_true", help="do not carry /config over from the gateway")
    fl.add_argument("--allow-layout-change", action="store_true",
                    help="write even though the gateway has another partition layout (pull its data first)")
    fl.add_argument("--set-flash-size", action="store_true",
                    help="write the board's flash size into the bootloader header (firmware built for less flash)")
    fl.add_argument("--restore", metavar="DIR", help="write back what an earlier flash saved in DIR")
    fl.add_argument("--sync", metavar="PORT_OR_DIR", help="developer path: copy changed files only (mpremote port, "
                                                          "or a sim gateway directory)")
    fl.add_argument("--no-compile", action="store_true", help="keep every module as .py")
    fl.add_argument("--no-reset", action="store_true", help="the board is already in download mode (no auto-reset)")
    fl.add_argument("--baud", type=int, default=460800, help="serial speed for writing (default 460800)")
    fl.add_argument("--json", action="store_true", help="machine-readable result")
    fl.set_defaults(func=cmd_flash)

    pv = sub.add_parser(
        "provision", formatter_class=HelpFormatter, help="give a gateway its identity, key pair, certificate and site config",
        description="Check the site config (credit code check character, every data-item mapping against the meter "
                    "profiles) BEFORE anything is written; generate the gateway's EC P-256 key and a CSR (subject: "
                    "enterprise code, gateway id, serial) or install the platform-issued certificate; write the "
                    "credentials (nj_keys NVS partition; files on the sim), identity, CA and site config; record the "
                    "gateway in the inventory only when everything is on the device. Secrets are never printed.",
        epilog="one gateway on the sim:\n  nengjian provision --config site.json --serial NJ0001 --mac 24:0a:c4:00:00:01 "
               "--board sim --sim-dir run/sim\n"
               "batch for flashing later:\n  nengjian provision --batch sites.csv --out build/provisioned\n"
               "  (columns: serial,mac,board,config[,gateway,site,cert,ca,target]; then nengjian flash --provisioned "
               "build/provisioned/SERIAL)\n"
               "exit codes: 0 all done, 1 failed, 2 bad input (row named; nothing written for it), 3 device unreachable")
    pv.add_argument("--config", help="site config JSON")
    pv.add_argument("--serial", help="the gateway's serial number (label)")
    pv.add_argument("--mac", help="the gateway's MAC (esptool read-mac)")
    pv.add_argument("--board", help="board name under boards/")
    pv.add_argument("--gateway", help="gateway id (default: site.gateway in the config, else the serial)")
    pv.add_argument("--cert", help="platform-issued certificate (PEM) for this gateway's key")
    pv.add_argument("--ca", help="platform CA certificate (PEM)")
    pv.add_argument("--ota-key", help="vendor public key for signed updates (the .pub.json of `nengjian ota keygen`); "
                                      "without it the gateway accepts no update")
    pv.add_argument("--batch", metavar="CSV", help="provision every row of a CSV of sites")
    pv.add_argument("--sim-dir", help="target: a sim gateway directory")
    pv.add_argument("--out", help="target: a staging directory per gateway, for `nengjian flash --provisioned`")
    pv.add_argument("--port", help="target: a gateway on USB (credentials with esptool, files with mpremote)")
    pv.add_argument("--no-reset", action="store_true", help="with --port: the board is already in download mode")
    pv.add_argument("--csr-dir", help="write each gateway's CSR here (send it to the platform)")
    pv.add_argument("--forget-key", action="store_true", help="delete the laptop's copy of the key once the "
                                                              "certificate is installed")
    pv.add_argument("--check", action="store_true", help="only check the inputs; write nothing")
    pv.add_argument("--inventory", help="inventory database (default ~/.local/share/nengjian/inventory.sqlite)")
    pv.add_argument("--keystore", help="where keys wait for their certificate (default ~/.local/share/nengjian/keys)")
    pv.add_argument("--json", action="store_true", help="machine-readable per-row report")
    pv.set_defaults(func=cmd_provision)

    iv = sub.add_parser("inventory", formatter_class=HelpFormatter,
                        help="list provisioned gateways (serial, MAC, site, certificate fingerprint)",
                        description="List the gateways `nengjian provision` recorded on this laptop: serial, gateway "
                                    "id, MAC, site, enterprise, board, certificate fingerprint and when.",
                        epilog="example:\n  nengjian inventory\n  nengjian inventory --serial NJ0001 --json\n"
                               "exit codes: 0 listed, 1 --serial names no gateway in the inventory")
    iv.add_argument("--serial", help="only this gateway")
    iv.add_argument("--inventory", help="inventory database (default ~/.local/share/nengjian/inventory.sqlite)")
    iv.add_argument("--json", action="store_true", help="machine-readable list")
    iv.set_defaults(func=cmd_inventory)

    sn = sub.add_parser("scan", formatter_class=HelpFormatter, help="find the meters on a gateway's RS-485 port (prints what to "
                                                          "paste into the site config)",
                        description="Probe a gateway's RS-485 port for Modbus, DL/T 645 and CJ/T 188 meters. With "
                                    "--console the scan runs on a running gateway, beside its application (it "
                                    "shares the bus with the pollers). Exit 3: gateway not reachable.",
                        epilog="example:\n  nengjian scan --console sn:SERIAL --addresses 1-32 --bauds 9600,2400\n"
                               "  then paste the printed meters array into site.json, name each Modbus meter's "
                               "profile, and run `nengjian check-config site.json`")
    sn.add_argument("--port", default="rs485_0", help="gateway RS-485 port to scan (default rs485_0)")
    sn.add_argument("--bus-name", default="bus0", help="bus name to put in the printed meters array")
    sn.add_argument("--addresses", type=_range, default=[1, 247], help="Modbus address range, e.g. 1-32")
    sn.add_argument("--bauds", type=_int_list, default=[9600, 19200, 4800, 2400], help="Modbus bauds, e.g. 9600,2400")
    sn.add_argument("--parities", default="N,E", help="Modbus parities to try, e.g. N,E")
    sn.add_argument("--register", type=int, default=0, help="register to read when probing (default 0)")
    sn.add_argument("--fc", type=int, choices=[1, 2, 3, 4], default=3, help="function code of the probe")
    sn.add_argument("--timeout-ms", type=int, default=100, help="reply timeout per probe")
    sn.add_argument("--no-modbus", action="store_true", help="skip the Modbus scan")
    sn.add_argument("--no-dlt645", action="store_true", help="skip the DL/T 645 wildcard probes")
    sn.add_argument("--dlt645-bauds", type=_int_list, default=[2400, 1200, 4800, 9600])
    sn.add_argument("--cjt188", action="store_true", help="also probe for a CJ/T 188 meter")
    sn.add_argument("--json", action="store_true", help="print the finds as JSON lines only")
    sn.add_argument("--sim-bus", metavar="PTY", help="scan a simulated gateway whose port is wired to PTY")
    sn.add_argument("--heap", default="288k", help="MicroPython heap of the simulated gateway")
    sn.add_argument("--console", metavar="PORT", help="the gateway's USB console: " + PORT_HELP)
    sn.add_argument("--baud", type=int, default=115200, help="console baud rate (default 115200)")
    sn.add_argument("--console-timeout", type=float, default=120.0,
                    help="seconds to wait for each answer of the scan (default 120)")
    sn.set_defaults(func=cmd_scan)
