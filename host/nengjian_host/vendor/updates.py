"""The vendor's side of signed application updates: key pair, bundle build, signature, checks
(the format: firmware/nengjian/ota/).

The vendor's private key (RSA-3072, PEM) stays on the build machine; gateways get the public half
as a small JSON file at provisioning (config/ota_key.json). `build` packs the `nengjian` package
(sources, or .mpy files compiled as nengjian_host.common.bundle compiles the app filesystem when
`mpy=True`), stamps the bundle's version into its app.py (so the running gateway reports it),
writes the manifest with each file's size and SHA-256 (for a board that runs its package from ROMFS,
board.json "romfs", the one file is romfs.img: the image of the package and the meter profiles, which
the gateway streams into a ROMFS store), and signs the manifest with
RSASSA-PKCS1-v1_5 / SHA-256. A gateway refuses a bundle older than its minimum version (the newest it
confirmed) unless the manifest carries `replaces_down_to` (`build(..., replaces_down_to=X)`): a
deliberate downgrade, after which the gateway's minimum is X. Versions are ordered by their leading
numbers, as the gateway orders them (version_key). `read`/`verify` check a bundle here with the
`cryptography` package - an implementation independent of the gateway's.

Getting a bundle onto a gateway is the crew's: nengjian_host.crew.update (`nengjian ota push`)
over the USB console, or the platform's update server over the uplink.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import tempfile
import time
from pathlib import Path

from nengjian_host.common import paths, private
from nengjian_host.common.messages import msg

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
    if not private_path.parent.exists():
        private.make_dir(private_path.parent)
    private_path.touch(mode=0o600, exist_ok=False)  # never over an existing key
    private.write_file(private_path, pem)
    pub = public_json(key.public_key(), key_id)
    public_path.write_text(json.dumps(pub, indent=1) + "\n")
    return pub


def keygen_in(out_dir: Path, key_id: str) -> tuple[Path, Path]:
    """keygen into out_dir as ID.pem and ID.pub.json; FileExistsError if ID.pem is there already (a
    vendor key is never overwritten: the gateways in the field trust it)."""
    priv, pub = Path(out_dir) / f"{key_id}.pem", Path(out_dir) / f"{key_id}.pub.json"
    if priv.exists():
        raise FileExistsError(f"{priv} exists; refusing to overwrite a vendor key")
    keygen(priv, pub, key_id)
    return priv, pub


def public_json(public_key, key_id: str) -> dict:
    nums = public_key.public_numbers()
    return {"alg": ALG, "id": key_id, "n": "%x" % nums.n, "e": nums.e}


def load_private(path: Path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)


VERSION_LINE = re.compile(rb'^VERSION = "[^"\n]*"$', re.M)
APP_MODULE = "nengjian/app.py"


def version_key(version) -> tuple[int, ...] | None:
    """The gateway's order of versions (nengjian.ota.updater.vkey): the leading numbers, trailing zeros
    dropped ("0.2.0-sim" -> (0, 2)); None when the version does not start with a number."""
    if not isinstance(version, str):
        return None
    out: list[int] = []
    for part in version.split("."):
        m = re.match(r"[0-9]+", part)
        if not m:
            break
        out.append(int(m.group(0)))
        if m.end() < len(part):
            break
    if not out:
        return None
    while out and out[-1] == 0:
        out.pop()
    return tuple(out)


def stamp_version(text: bytes, version: str) -> bytes:
    """app.py with VERSION set to the bundle's version (ValueError if app.py has no such line)."""
    if not re.fullmatch(r"[0-9A-Za-z.+_-]{1,32}", version):
        raise ValueError(msg("bundle.version_chars", version=repr(version)))
    new, n = VERSION_LINE.subn(b'VERSION = "' + version.encode() + b'"', text, count=1)
    if n != 1:
        raise ValueError(msg("bundle.no_version_line", module=APP_MODULE))
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


def manifest(files: list[tuple[str, bytes]], version: str, boards: list[str], mpy: int | None = None,
             replaces_down_to: str | None = None) -> bytes:
    """The manifest to sign. ValueError if the gateway could not order the version, or
    `replaces_down_to` (a deliberate downgrade: see the module doc) is above it."""
    if version_key(version) is None:
        raise ValueError(msg("bundle.version_number", version=repr(version)))
    doc = {"format": 1, "version": version, "boards": list(boards), "mpy": mpy, "created": int(time.time()),
           "files": [[p, len(b), hashlib.sha256(b).hexdigest()] for p, b in files]}
    if replaces_down_to is not None:
        low = version_key(replaces_down_to)
        if low is None or low > version_key(version):
            raise ValueError(msg("bundle.replaces_down_to", low=repr(replaces_down_to), version=version))
        doc["replaces_down_to"] = replaces_down_to
    return json.dumps(doc, separators=(",", ":")).encode()


ROMFS_FILE = "romfs.img"  # the one file of a bundle for a board that runs its package from ROMFS


def board_romfs(boards: list[str]) -> bool:
    """Whether every board named runs its package from a ROMFS image (board.json "romfs"): a bundle
    for them carries that image instead of the package's files. A mix of boards (or a name that is
    not a board here) gets the package's files, which every gateway installs: one with ROMFS then
    runs them from its app filesystem, their code in the heap, so build one bundle per kind."""
    from nengjian_host.common import bundle

    try:
        specs = [bundle.load_board(b).spec for b in boards]
    except bundle.BundleError:
        return False
    return bool(specs) and all(spec.get("romfs") for spec in specs)


def romfs_files(files: list[tuple[str, bytes]], boards: list[str],
                profiles_dir: Path = paths.PROFILES) -> list[tuple[str, bytes]]:
    """The files of a ROMFS bundle: one, romfs.img, the image (nengjian_host.common.romfs) of the
    package `files` and the meter profiles, as `nengjian bundle` builds it for flashing. ValueError if
    it is larger than a board's ROMFS store (the gateway streams it into one)."""
    from nengjian_host.common import bundle, romfs

    image_files = dict(files)
    for prof in sorted(Path(profiles_dir).glob("*.json")):
        image_files["profiles/meters/" + prof.name] = prof.read_bytes()
    image = romfs.build(image_files)
    for name in boards:
        try:
            spec = bundle.load_board(name).spec.get("romfs")
        except bundle.BundleError:
            continue
        if spec and len(image) > int(spec["size"], 0):
            raise ValueError(msg("bundle.romfs_too_big", kib=len(image) // 1024, store=int(spec["size"], 0) // 1024,
                                 board=name))
    return [(ROMFS_FILE, image)]


def sign(private_key, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def pack(man: bytes, sig: bytes, files: list[tuple[str, bytes]]) -> bytes:
    return MAGIC + struct.pack("<II", len(man), len(sig)) + man + sig + b"".join(b for _p, b in files)


def build(out: Path, private_key_path: Path, version: str, boards: list[str],
          files: list[tuple[str, bytes]] | None = None, mpy: bool = False,
          replaces_down_to: str | None = None, romfs: bool | None = None) -> dict:
    """Write a signed bundle to `out`; returns the manifest as a dict. With mpy, every board named must
    run the same native architecture (or none). With replaces_down_to, a deliberate downgrade.
    romfs: whether the bundle carries the package as a ROMFS image (romfs_files); None: as the boards'
    board.json says (the sim board runs either way, so a test of its ROMFS mode says True)."""
    if version_key(version) is None:
        raise ValueError(msg("bundle.version_number", version=repr(version)))
    if romfs is None:
        romfs = board_romfs(boards)
    if files is None:
        march = None
        if mpy:
            from nengjian_host.common import bundle

            marches = {bundle.load_board(b).mpy_march for b in boards}
            if len(marches) > 1:
                raise ValueError(msg("bundle.march_differs", boards=boards))
            march = marches.pop()
        files = collect(mpy=mpy, march=march, version=version)
    if romfs and [p for p, _b in files] != [ROMFS_FILE]:
        files = romfs_files(files, boards)
    man = manifest(files, version, boards, mpy_version() if mpy else None, replaces_down_to)
    data = pack(man, sign(load_private(private_key_path), man), files)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return json.loads(man)


def read(data: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(manifest bytes, signature, files) of a bundle; ValueError if it is malformed."""
    if data[:8] != MAGIC:
        raise ValueError(msg("bundle.not_bundle"))
    mlen, slen = struct.unpack_from("<II", data, 8)
    man = data[16:16 + mlen]
    sig = data[16 + mlen:16 + mlen + slen]
    pos = 16 + mlen + slen
    files = []
    for path, size, _digest in json.loads(man)["files"]:
        files.append((path, data[pos:pos + size]))
        pos += size
    if pos != len(data):
        raise ValueError(msg("bundle.bad_length"))
    return man, sig, files


def describe(data: bytes) -> dict:
    """The manifest of a bundle (version, boards, files...); ValueError if it is not a bundle."""
    try:
        man, _sig, _files = read(data)
    except (KeyError, TypeError, struct.error) as e:
        raise ValueError(msg("bundle.not_bundle_why", reason=e)) from None
    doc = json.loads(man)
    if not isinstance(doc, dict) or "version" not in doc:
        raise ValueError(msg("bundle.no_version"))
    return doc


def verify_file(bundle: Path, public_key: Path) -> list[str]:
    """verify() of a bundle file against a public key file; OSError or ValueError if either cannot
    be read."""
    return verify(Path(bundle).read_bytes(), json.loads(Path(public_key).read_text()))


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
        problems.append(msg("bundle.bad_signature", key_id=public.get("id")))
    digests = {p: d for p, _s, d in json.loads(man)["files"]}
    for path, content in files:
        if hashlib.sha256(content).hexdigest() != digests[path]:
            problems.append(msg("bundle.bad_hash", path=path))
    return problems
