"""The vendor's `nengjian` command: `ota` with keygen, build and verify (the crew's push and state are
added under it by nengjian_host.crew.commands.register_ota).

Owns: their options, help text and printing only; the work is nengjian_host.vendor.updates, which a
build script can call as well.
"""

from __future__ import annotations

from pathlib import Path

from nengjian_host.common.messages import msg, t
from nengjian_host.common.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, HelpFormatter, fail


def cmd_keygen(args) -> int:
    from nengjian_host.vendor import updates

    try:
        priv, pub = updates.keygen_in(Path(args.out), args.id)
    except FileExistsError as e:
        return fail(args, EXIT_USAGE, msg("err.ota.key_exists", reason=e))
    print(t("out.ota.keygen", priv=priv, pub=pub))
    return EXIT_OK


def cmd_build(args) -> int:
    from nengjian_host.vendor import updates

    try:
        man = updates.build(Path(args.out), Path(args.key), args.version, args.board, mpy=args.mpy,
                            replaces_down_to=args.replaces_down_to, romfs=True if args.romfs else None)
    except (OSError, ValueError) as e:
        return fail(args, EXIT_USAGE, msg("err.ota.build", reason=e))
    if [f[0] for f in man["files"]] == [updates.ROMFS_FILE]:
        print(t("out.ota.build_romfs", out=args.out, size=man["files"][0][1]))
    print(t("out.ota.build", out=args.out, version=man["version"], boards=", ".join(man["boards"]),
            files=len(man["files"])))
    if man.get("replaces_down_to"):
        print(t("out.ota.build_downgrade", version=man["replaces_down_to"]))
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
                print(t("out.ota.verify_channel", bundle=args.bundle))
                return EXIT_OK
        else:
            problems = updates.verify_file(target, Path(args.pub))
    except (OSError, ValueError) as e:
        return fail(args, EXIT_USAGE, msg("err.ota.verify_read", bundle=args.bundle, pub=args.pub, reason=e))
    if problems:
        return fail(args, EXIT_FAILED, msg("err.ota.verify_failed",
                                           problems="\n".join(f"{args.bundle}: {p}" for p in problems)))
    print(t("out.ota.verified", bundle=args.bundle))
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
                                   key_id=args.key_id, step=output.steps(args, prog, t("out.ota.publishing")))
    except channel.ChannelProblem as e:
        return fail(args, EXIT_USAGE, msg("err.ota.publish_refused", reason=e))
    except (OSError, ValueError, KeyError) as e:
        return fail(args, EXIT_FAILED, msg("err.ota.publish_io", reason=e))
    man = done["manifest"]
    lines = [t("out.ota.published", channel=done["channel"], key_id=man["key"])]
    for board, e in sorted(man["boards"].items()):
        r = e.get("rollout")
        stage = t("out.ota.rollout_all") if r is None else t(
            "out.ota.rollout_part", percent=r.get("percent", 0),
            named=t("out.ota.rollout_named", count=len(r["gateways"])) if r.get("gateways") else "")
        lines.append(t("out.ota.board", board=board, version=e["version"], size=e["size"],
                       min_version=e.get("min_version") or t("out.ota.any_version"), stage=stage))
    if man.get("keys"):
        lines.append(t("out.ota.introduces", keys=", ".join(k["id"] for k in man["keys"])))
    if man.get("retire"):
        lines.append(t("out.ota.retires", keys=", ".join(man["retire"])))
    lines.append(t("out.ota.serve", out=args.out, file=channel.CHANNEL_FILE))
    output.emit(args, {"ok": True, "channel": str(done["channel"]), "manifest": man, "bundles": done["bundles"]},
                lines)
    return EXIT_OK


def register(sub):
    """Add `ota` and its vendor actions to the `nengjian` subcommands `sub`; returns the actions of
    `ota` (the crew's push and state go there too)."""
    o = sub.add_parser("ota", formatter_class=HelpFormatter, help=t("help.ota"), description=t("help.ota.desc"),
                       epilog=t("help.ota.epilog"))
    osub = o.add_subparsers(dest="ota_cmd", metavar="ACTION", required=True)
    ok = osub.add_parser("keygen", formatter_class=HelpFormatter, help=t("help.ota.keygen"),
                         description=t("help.ota.keygen.desc"), epilog=t("help.ota.keygen.epilog"))
    ok.add_argument("--id", required=True, help=t("help.ota.keygen.id"))
    ok.add_argument("--out", default="keys", help=t("help.ota.keygen.out"))
    ok.set_defaults(func=cmd_keygen)
    ob = osub.add_parser("build", formatter_class=HelpFormatter, help=t("help.ota.build"),
                         description=t("help.ota.build.desc"), epilog=t("help.ota.build.epilog"))
    ob.add_argument("--key", required=True, help=t("help.ota.build.key"))
    ob.add_argument("--version", required=True, help=t("help.ota.build.version"))
    ob.add_argument("--board", action="append", required=True, help=t("help.ota.build.board"))
    ob.add_argument("--mpy", action="store_true", help=t("help.ota.build.mpy"))
    ob.add_argument("--romfs", action="store_true", help=t("help.ota.build.romfs"))
    ob.add_argument("--replaces-down-to", metavar="X", default=None, help=t("help.ota.build.replaces_down_to"))
    ob.add_argument("--out", required=True, help=t("help.ota.build.out"))
    ob.set_defaults(func=cmd_build)
    op = osub.add_parser("publish", formatter_class=HelpFormatter, help=t("help.ota.publish"),
                         description=t("help.ota.publish.desc"), epilog=t("help.ota.publish.epilog"))
    op.add_argument("--key", required=True, help=t("help.ota.publish.key"))
    op.add_argument("--key-id", default=None, help=t("help.ota.publish.key_id"))
    op.add_argument("--bundle", action="append", default=[], help=t("help.ota.publish.bundle"))
    op.add_argument("--out", required=True, help=t("help.ota.publish.out"))
    op.add_argument("--min-version", metavar="V", default=None, help=t("help.ota.publish.min_version"))
    op.add_argument("--rollout", metavar="PERCENT", type=int, default=None, help=t("help.ota.publish.rollout"))
    op.add_argument("--gateway", metavar="ID", action="append", default=[], help=t("help.ota.publish.gateway"))
    op.add_argument("--salt", default=None, help=t("help.ota.publish.salt"))
    op.add_argument("--introduce-key", metavar="PUB", action="append", default=[],
                    help=t("help.ota.publish.introduce_key"))
    op.add_argument("--retire-key", metavar="ID", action="append", default=[], help=t("help.ota.publish.retire_key"))
    op.add_argument("--trust", metavar="PUB", action="append", default=[], help=t("help.ota.publish.trust"))
    op.add_argument("--json", action="store_true", help=t("help.ota.publish.json"))
    op.set_defaults(func=cmd_publish)
    ov = osub.add_parser("verify", formatter_class=HelpFormatter, help=t("help.ota.verify"),
                         description=t("help.ota.verify.desc"), epilog=t("help.ota.verify.epilog"))
    ov.add_argument("bundle", help=t("help.ota.verify.bundle"))
    ov.add_argument("--pub", required=True, help=t("help.ota.verify.pub"))
    ov.set_defaults(func=cmd_verify)
    return osub
