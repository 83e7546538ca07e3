"""CLI of the reference platform: serve until Ctrl-C, one line per accepted batch on stdout."""

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from nengjian_host.common import private

from .faults import FAULT_MODES
from .server import RefPlatform
from .validate import VALID_ENCODINGS
from .variants import VARIANTS


def build_parser():
    p = argparse.ArgumentParser(prog="python -m nengjian_host.sim.refplatform",
                                description="Reference energy-monitoring platform (SPEC 3).")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="listen port, 0 = any free (default 8080)")
    p.add_argument("--db", default="run/platform.sqlite", help="SQLite file (default run/platform.sqlite)")
    p.add_argument("--period", type=int, default=900, help="real-time period in seconds (default 900)")
    p.add_argument("--valid-encoding", choices=VALID_ENCODINGS, default="json")
    p.add_argument("--variant", choices=VARIANTS, default="plain")
    p.add_argument("--upload-time", default="01:38:00", help="daily slot given at registration")
    p.add_argument("--success-code", default="0", help='responseCode of a success (default "0")')
    p.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--keyfile", help="private key of --certfile (PEM)")
    p.add_argument("--client-ca", help="CA for client certificates (variant mtls)")
    p.add_argument("--pin", default="123456", help="PIN inside the Yunnan password (variant sm4-cbc-token)")
    p.add_argument("--token-ttl", type=float, default=3600, help="token lifetime in seconds")
    p.add_argument("--max-batch", type=int, help="reject batches with more records")
    p.add_argument("--fault", choices=[m for m in FAULT_MODES if m != "reject_code"], default="ok",
                   help="start in this fault mode (change it later with POST /admin/fault, given --admin-port)")
    p.add_argument("--admin-port", type=int, help="serve the admin endpoints (/admin/...: devices with their "
                                                   "secretKey, records, stats, faults) on this port; off unless given")
    p.add_argument("--admin-host", default="127.0.0.1", help="listen address of the admin endpoints (default "
                                                              "127.0.0.1)")
    p.add_argument("--admin-token-file", help="where the admin Bearer token is written, readable by you only "
                                              "(default: beside --db, as DB.admin-token); the token is "
                                              "$NENGJIAN_ADMIN_TOKEN if set, else a new random one")
    return p


def _admin_token_file(args):
    if args.admin_token_file:
        return Path(args.admin_token_file)
    if args.db == ":memory:":
        return Path("refplatform.admin-token")
    return Path(args.db + ".admin-token")


def main(argv=None):
    args = build_parser().parse_args(argv)

    def say(line):
        print(line, flush=True)

    platform = RefPlatform(
        db_path=args.db, host=args.host, port=args.port, period_s=args.period,
        valid_encoding=args.valid_encoding, variant=args.variant, upload_time=args.upload_time,
        success_code=args.success_code, certfile=args.certfile, keyfile=args.keyfile,
        client_ca=args.client_ca, pin=args.pin, token_ttl_s=args.token_ttl, max_batch=args.max_batch,
        log=say, admin_port=args.admin_port, admin_host=args.admin_host,
        admin_token=os.environ.get("NENGJIAN_ADMIN_TOKEN") or None)
    stop = threading.Event()
    # Installed explicitly: a shell that starts us in the background (make run ... &) leaves SIGINT
    # ignored, and Ctrl-C must still stop the platform cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with platform:
        if args.fault != "ok":
            platform.set_fault(args.fault)
        say("listening on %s" % platform.url)
        if platform.admin_url:
            token_file = _admin_token_file(args)
            private.make_dir(token_file.parent.resolve(), tighten=False)
            private.write_file(token_file, platform.admin_token + "\n")
            say("admin endpoints on %s (Authorization: Bearer <the token in %s>)" % (platform.admin_url, token_file))
        while not stop.wait(0.5):
            pass
    say("platform: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
