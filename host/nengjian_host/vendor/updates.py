"""Build, sign and push application update bundles for the gateway (format: firmware/nengjian/ota/).

The vendor's private key (RSA-3072, PEM) stays on the build machine; gateways get the public half
as a small JSON file at provisioning (config/ota_key.json). `build` packs the `nengjian` package
(sources, or .mpy files compiled as nengjian_host.common.bundle compiles the app filesystem when
`mpy=True`), stamps the bundle's version into its app.py (so the running gateway reports it),
writes the manifest with each file's size and SHA-256, and signs the manifest with
RSASSA-PKCS1-v1_5 / SHA-256. `read`/`verify` check a bundle here with the `cryptography` package -
an implementation independent of the gateway's.

Crew side (`nengjian ota push` / `ota state`): `push` sends a bundle over the gateway's USB console
(`ota SIZE SHA256`, then `+BASE64` lines; the gateway stores it, checks it with its own key and
installs it into the spare slot), resets the gateway and waits until it answers again, reporting
the version it now runs on trial (it confirms itself once healthy, or rolls back).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import sys
import tempfile
import time
from pathlib import Path

from nengjian_host.common import paths
from nengjian_host.common.gatewaycall import on_gateway

MAGIC = b"NJOTA1\n\x00"
ALG = "rsa-pkcs1v15-sha256"
KEY_BITS = 3072


def keygen(private_path: Path, public_path: Path, key_id: str, bits: int = KEY_BITS) -> dict:
    """Write a new vendor key pair: PEM private key (mode 0600) and the gateway's public key JSON."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.touch(mode=0o600, exist_ok=False)
    private_path.write_bytes(pem)
    pub = public_json(key.public_key(), key_id)
    public_path.write_text(json.dumps(pub, indent=1) + "\n")
    return pub


def public_json(public_key, key_id: str) -> dict:
    nums = public_key.public_numbers()
    return {"alg": ALG, "id": key_id, "n": "%x" % nums.n, "e": nums.e}


def load_private(path: Path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)


VERSION_LINE = re.compile(rb'^VERSION = "[^"\n]*"$', re.M)
APP_MODULE = "nengjian/app.py"


def stamp_version(text: bytes, version: str) -> bytes:
    """app.py with VERSION set to the bundle's version (ValueError if app.py has no such line)."""
    if not re.fullmatch(r"[0-9A-Za-z.+_-]{1,32}", version):
        raise ValueError("version %r: use letters, digits and . + _ - (at most 32)" % version)
    new, n = VERSION_LINE.subn(b'VERSION = "' + version.encode() + b'"', text, count=1)
    if n != 1:
        raise ValueError("%s has no VERSION = \"...\" line to stamp the bundle's version into" % APP_MODULE)
    return new


def collect(package_dir: Path = paths.FIRMWARE / "nengjian", mpy: bool = False,
            march: str | None = None, version: str | None = None) -> list[tuple[str, bytes]]:
    """(path in the slot, content) of every module of the package, in a stable order. With mpy, each
    is compiled as the app filesystem's modules are (nengjian_host.common.bundle); a module with viper code
    stays source unless the board names its architecture (`march`). With version, app.py carries it."""
    from nengjian_host.common import bundle

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted(package_dir.rglob("*.py")):
            if "__pycache__" in src.parts:
                continue
            rel = "nengjian/" + src.relative_to(package_dir).as_posix()
            text = src.read_bytes()
            if version is not None and rel == APP_MODULE:
                text = stamp_version(text, version)
                src = Path(tmp) / "app.py"
                src.write_bytes(text)
            native = bundle.needs_native(text.decode())
            if mpy and (march or not native):
                out.append((rel[:-3] + ".mpy", bundle.compile_module(src, rel, march if native else None)))
            else:
                out.append((rel, text))
    return out


def mpy_version() -> int:
    """.mpy version and sub-version mpy-cross writes, as sys.implementation._mpy holds them (bits 0-9)."""
    import re

    from nengjian_host.common import bundle

    m = re.search(r"mpy v(\d+)\.(\d+)", bundle.mpy_cross_version())
    if not m:
        raise RuntimeError("cannot tell the .mpy version from mpy-cross --version")
    return int(m.group(1)) | (int(m.group(2)) << 8)


def manifest(files: list[tuple[str, bytes]], version: str, boards: list[str], mpy: int | None = None) -> bytes:
    doc = {"format": 1, "version": version, "boards": list(boards), "mpy": mpy, "created": int(time.time()),
           "files": [[p, len(b), hashlib.sha256(b).hexdigest()] for p, b in files]}
    return json.dumps(doc, separators=(",", ":")).encode()


def sign(private_key, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def pack(man: bytes, sig: bytes, files: list[tuple[str, bytes]]) -> bytes:
    return MAGIC + struct.pack("<II", len(man), len(sig)) + man + sig + b"".join(b for _p, b in files)


def build(out: Path, private_key_path: Path, version: str, boards: list[str],
          files: list[tuple[str, bytes]] | None = None, mpy: bool = False) -> dict:
    """Write a signed bundle to `out`; returns the manifest as a dict. With mpy, every board named must
    run the same native architecture (or none)."""
    if files is None:
        march = None
        if mpy:
            from nengjian_host.common import bundle

            marches = {bundle.load_board(b).mpy_march for b in boards}
            if len(marches) > 1:
                raise ValueError("boards %s differ in native architecture: build one bundle each" % boards)
            march = marches.pop()
        files = collect(mpy=mpy, march=march, version=version)
    man = manifest(files, version, boards, mpy_version() if mpy else None)
    data = pack(man, sign(load_private(private_key_path), man), files)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return json.loads(man)


def read(data: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(manifest bytes, signature, files) of a bundle; ValueError if it is malformed."""
    if data[:8] != MAGIC:
        raise ValueError("not a Nengjian update bundle")
    mlen, slen = struct.unpack_from("<II", data, 8)
    man = data[16:16 + mlen]
    sig = data[16 + mlen:16 + mlen + slen]
    pos = 16 + mlen + slen
    files = []
    for path, size, _digest in json.loads(man)["files"]:
        files.append((path, data[pos:pos + size]))
        pos += size
    if pos != len(data):
        raise ValueError("bundle length does not match its manifest")
    return man, sig, files


def verify(data: bytes, public: dict) -> list[str]:
    """Problems found in a bundle against a public key JSON (empty: it would install)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        man, sig, files = read(data)
    except (ValueError, KeyError, struct.error) as e:
        return [str(e)]
    problems = []
    key = rsa.RSAPublicNumbers(int(public["e"]), int(public["n"], 16)).public_key()
    try:
        key.verify(sig, man, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        problems.append("signature does not verify with key %s" % public.get("id"))
    digests = {p: d for p, _s, d in json.loads(man)["files"]}
    for path, content in files:
        if hashlib.sha256(content).hexdigest() != digests[path]:
            problems.append("%s does not match its hash" % path)
    return problems


# ---- crew side: push a bundle to a gateway over its USB console
PUSH_CHUNK = 720  # bytes per `+BASE64` line: 960 characters, inside the console's 1024-byte lines
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def push(con, data: bytes, progress=None, install_timeout: float = 120.0) -> dict:
    """Send a bundle over a gateway's console (nengjian_host.common.device.Console). The gateway stores it,
    then verifies and installs it into its spare slot as the last line arrives. Returns the gateway's
    answer ({"installed": version, "slot", "state": "trial", "files", "verify_ms"}, or {"deferred":
    true} when its heap had no room for the check: that runs at the reset); DeviceError with the
    gateway's reason if it refuses (nothing is switched then)."""
    from nengjian_host.common.device import DeviceError

    con.request("ota %d %s" % (len(data), hashlib.sha256(data).hexdigest()))
    end: dict = {}
    for off in range(0, len(data), PUSH_CHUNK):
        chunk = data[off:off + PUSH_CHUNK]
        last = off + len(chunk) >= len(data)
        # The last line waits for the signature check and the install (flash writes on a board).
        end = con.request("+" + base64.b64encode(chunk).decode(),
                          timeout=max(con.timeout, install_timeout) if last else None)[-1]
        if progress is not None:
            progress(off + len(chunk), len(data))
    if not end.get("installed") and not end.get("deferred"):
        raise DeviceError("the gateway did not confirm the install (answer %s)" % end)
    return end


def wait_running(port_spec: str | None, baud: int = 115200, timeout: float = 90.0,
                 settle: float = 1.0) -> tuple[dict, dict] | None:
    """After a reset: (status, ota state) once the gateway's application answers again, or None."""
    from nengjian_host.common.device import Console, DeviceError, DeviceGone, PortNotFound, resolve_port

    time.sleep(settle)  # the reset comes a moment after its answer: do not ask the old run
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            port = resolve_port(port_spec)  # a native-USB board's port goes away while it resets
            with Console(port, baud=baud, timeout=3) as con:
                st = con.status()
                if st.get("mode") == "run":
                    state = con.request("ota")[-1]
                    return st, state
        except (PortNotFound, DeviceGone, DeviceError, OSError):
            pass
        time.sleep(1)
    return None


def add_gateway_commands(osub, port_args) -> None:
    """`ota push` and `ota state` under the `ota` command (cli.py passes its --port arguments)."""
    op = osub.add_parser("push", help="send a signed bundle to a gateway over its console, install it, reset",
                         description="Send a bundle over the gateway's USB console while it runs. The gateway "
                                     "checks the signature with its own vendor key (config/ota_key.json), "
                                     "installs it into the spare slot and, after the reset, runs it on trial: "
                                     "it keeps it once healthy (health.healthy_s), and goes back to the version "
                                     "before if it is not (ota.max_boots failed starts, ota.window_s). Exit 1: "
                                     "refused (nothing switched) or the gateway came back with another version; "
                                     "3: gateway not reachable.")
    op.add_argument("bundle", help="the .njota file (`nengjian ota build`)")
    port_args(op, 30.0)
    op.add_argument("--no-reset", action="store_true", help="install only: the new version starts at the next reset")
    op.add_argument("--boot-timeout", type=float, default=90.0,
                    help="seconds to wait for the gateway to answer after the reset (default 90)")
    op.add_argument("--json", action="store_true", help="the result as JSON")
    op.set_defaults(func=cli_push)
    os_ = osub.add_parser("state", help="a gateway's update state: running version, slot, trial or confirmed")
    port_args(os_)
    os_.set_defaults(func=cli_state)


def _say(args, text: str, doc: dict) -> None:
    print(json.dumps(doc) if getattr(args, "json", False) else text)


def cli_push(args) -> int:
    try:
        data = Path(args.bundle).read_bytes()
        man, _sig, _files = read(data)
        version = json.loads(man)["version"]
    except (OSError, ValueError, KeyError, struct.error) as e:
        print(f"error: {args.bundle}: {e}", file=sys.stderr)
        return EXIT_USAGE

    def install(con) -> dict:
        ans = push(con, data)
        if not args.no_reset:
            con.reset()
        return ans

    code, ans = on_gateway(args, install, refused="the gateway refused the update: ")
    if code != EXIT_OK:
        return code
    doc = {"installed": ans}
    if ans.get("deferred"):  # the gateway's heap had no room for the check: it runs at the reset
        what = "sent %s; the gateway checks and installs it at the reset" % version
    else:
        what = "installed %s in slot %s (%d files, signature checked in %s ms)" % (
            version, ans.get("slot"), ans.get("files", 0), ans.get("verify_ms"))
    if args.no_reset:
        _say(args, what + "; it runs on trial from the next reset", doc)
        return EXIT_OK
    back = wait_running(args.port, args.baud, args.boot_timeout)
    if back is None:
        doc["error"] = "no answer after the reset"
        _say(args, what + f"; reset, but the gateway did not answer within {args.boot_timeout:.0f} s", doc)
        return EXIT_UNREACHABLE
    st, state = back
    doc.update(status={"firmware": st.get("firmware"), "uptime_s": st.get("uptime_s")}, ota=state)
    if st.get("firmware") != version:
        _say(args, what + "; but the gateway came back with firmware %s: the update did not start (see "
             "`nengjian status --events 20`)" % st.get("firmware"), doc)
        return EXIT_FAILED
    _say(args, what + "; the gateway runs %s on %s (boot %s of %s): it keeps it once healthy" % (
        version, state.get("state"), state.get("boots"), state.get("max_boots")), doc)
    return EXIT_OK


def cli_state(args) -> int:
    code, state = on_gateway(args, lambda con: con.request("ota")[-1])
    if code != EXIT_OK:
        return code
    for k in ("id", "end", "ok"):
        state.pop(k, None)
    print(json.dumps(state))
    return EXIT_OK
