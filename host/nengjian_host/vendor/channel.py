"""The vendor's static update channel: a plain directory that any web server or object store serves,
holding one signed channel file and the bundles it names (the gateway's side and the format:
firmware/nengjian/ota/fetch.py).

    OUT/channel.njch              "NJCHAN1\\n" | sig len u32 LE | manifest len u32 LE | signature | manifest
    OUT/bundles/<bundle file>     the signed bundles as `nengjian ota build` wrote them

`publish` adds releases (one entry per board a bundle names: version, min_version, size, sha256, the
bundle's relative path, replaces_down_to, rollout) to the channel already in OUT - kept only when its
signature verifies with the signing key or a key the vendor names as trusted (`trust`) - and signs the
manifest with the vendor key, RSASSA-PKCS1-v1_5 / SHA-256 as the bundles are signed
(nengjian_host.vendor.updates). Key rotation: `introduce` puts new public keys in the manifest (the
gateways that verify it trust them from then on; carried in every later manifest until it is signed
by that key), `retire` names key ids the gateways drop. `verify` checks a channel directory as a
gateway would, with the `cryptography` package (an implementation independent of the gateway's).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import time
from collections.abc import Callable
from pathlib import Path

from nengjian_host.common.messages import msg
from nengjian_host.vendor import updates

MAGIC = b"NJCHAN1\n"
CHANNEL_FILE = "channel.njch"
BUNDLE_DIR = "bundles"
CHANNEL_MAX = 8192  # the gateway's limit on the manifest (nengjian.ota.fetch.CHANNEL_MAX)
MAX_KEYS = 4  # the gateway's limit on trusted keys (nengjian.ota.updater.MAX_KEYS)


class ChannelProblem(ValueError):
    """Nothing was written: the inputs would make a channel that gateways refuse (the text says why)."""


def rollout_bucket(salt: str, gateway_id: str) -> int:
    """0..99, the gateway's bucket (nengjian.ota.fetch.rollout_bucket): SHA-256 of "salt:id", first 4
    bytes big-endian, mod 100. A gateway takes a release whose rollout percent is above its bucket."""
    return int.from_bytes(hashlib.sha256(("%s:%s" % (salt, gateway_id)).encode()).digest()[:4], "big") % 100


def in_rollout(rollout: dict | None, gateway_id: str) -> bool:
    if rollout is None:
        return True
    if gateway_id in (rollout.get("gateways") or ()):
        return True
    percent = rollout.get("percent")
    return percent is not None and rollout_bucket(rollout.get("salt", ""), gateway_id) < percent


def pack(manifest: bytes, sig: bytes) -> bytes:
    return MAGIC + struct.pack("<II", len(sig), len(manifest)) + sig + manifest


def read(data: bytes) -> tuple[bytes, bytes]:
    """(manifest bytes, signature) of a channel file; ValueError if it is not one."""
    if data[:8] != MAGIC or len(data) < 16:
        raise ValueError(msg("channel.not_channel"))
    slen, mlen = struct.unpack_from("<II", data, 8)
    if 16 + slen + mlen != len(data):
        raise ValueError(msg("channel.bad_length"))
    return data[16 + slen:], data[16:16 + slen]


def _public_numbers(doc: dict):
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.RSAPublicNumbers(int(doc["e"]), int(doc["n"], 16)).public_key()


def signature_ok(manifest: bytes, sig: bytes, public: dict) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        _public_numbers(public).verify(sig, manifest, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def signing_identity(private_key_path: Path, key_id: str | None = None) -> tuple[object, dict]:
    """(private key, its public key JSON with the id): the id given, else the one in the ID.pub.json
    `nengjian ota keygen` wrote beside ID.pem (which must be this key's public half)."""
    priv = updates.load_private(private_key_path)
    pub_path = Path(private_key_path).with_suffix(".pub.json")
    if key_id is None:
        if not pub_path.exists():
            raise ChannelProblem("%s has no %s beside it: give --key-id" % (private_key_path, pub_path.name))
        doc = json.loads(pub_path.read_text())
        if int(doc["n"], 16) != priv.public_key().public_numbers().n:
            raise ChannelProblem("%s is not the public half of %s" % (pub_path, private_key_path))
        key_id = doc["id"]
    return priv, updates.public_json(priv.public_key(), key_id)


def _existing(out: Path, trusted: list[dict]) -> dict | None:
    path = out / CHANNEL_FILE
    if not path.exists():
        return None
    man, sig = read(path.read_bytes())
    if not any(signature_ok(man, sig, k) for k in trusted):
        raise ChannelProblem("%s does not verify with %s: its entries are not carried over; give the key that "
                             "signed it with --trust, or publish into an empty directory"
                             % (path, ", ".join(k["id"] for k in trusted)))
    return json.loads(man)


def publish(out: Path, private_key_path: Path, bundles: list[Path], min_version: str | None = None,
            percent: int | None = None, gateways: list[str] | None = None, salt: str | None = None,
            introduce: list[Path] | None = None, retire: list[str] | None = None,
            trust: list[Path] | None = None, key_id: str | None = None,
            step: Callable[[str], None] | None = None) -> dict:
    """Add the bundles to the channel in `out` (made if missing), sign it; returns {"channel": path,
    "manifest": the signed manifest, "bundles": files copied}. ChannelProblem (nothing written) when a
    gateway would refuse what this makes."""
    step = step or (lambda _name: None)
    out = Path(out)
    priv, signer = signing_identity(private_key_path, key_id)
    trusted = [signer] + [json.loads(Path(p).read_text()) for p in trust or ()]
    new_keys = [json.loads(Path(p).read_text()) for p in introduce or ()]
    for k in new_keys:
        if k.get("alg") != updates.ALG or "n" not in k or not k.get("id"):
            raise ChannelProblem("an introduced key must be a gateway key file (ID.pub.json of `ota keygen`)")
    if percent is not None and not 0 <= percent <= 100:
        raise ChannelProblem("--rollout %r: a percentage from 0 to 100" % percent)
    if min_version is not None and updates.version_key(min_version) is None:
        raise ChannelProblem("--min-version %r must start with a number" % min_version)
    step("reading the channel in %s" % out)
    old = _existing(out, trusted + new_keys)
    boards = dict(old["boards"]) if old else {}
    copies = []
    for b in bundles:
        b = Path(b)
        step("checking %s" % b.name)
        data = b.read_bytes()
        try:
            doc = updates.describe(data)
        except ValueError as e:
            raise ChannelProblem("%s: %s" % (b, e)) from None
        if not any(not updates.verify(data, k) for k in trusted + new_keys):
            raise ChannelProblem("%s does not verify with %s: gateways would refuse it"
                                 % (b, ", ".join(k["id"] for k in trusted + new_keys)))
        entry: dict = {"version": doc["version"], "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                       "bundle": "%s/%s" % (BUNDLE_DIR, b.name)}
        if min_version is not None:
            if updates.version_key(min_version) > updates.version_key(doc["version"]):
                raise ChannelProblem("--min-version %s is above the release %s" % (min_version, doc["version"]))
            entry["min_version"] = min_version
        if doc.get("replaces_down_to"):
            entry["replaces_down_to"] = doc["replaces_down_to"]
        if percent is not None or gateways:
            rollout: dict = {"salt": salt if salt is not None else doc["version"]}
            if percent is not None:
                rollout["percent"] = percent
            if gateways:
                rollout["gateways"] = list(gateways)
            entry["rollout"] = rollout
        dest = out / BUNDLE_DIR / b.name
        if dest.exists() and dest.read_bytes() != data:
            raise ChannelProblem("%s exists with other bytes: a published bundle never changes under one name "
                                 "(caches and gateways mid-download hold it); build it under a new name" % dest)
        for board in doc.get("boards", ()):
            boards[board] = entry
        copies.append((b, dest))
    if not boards:
        raise ChannelProblem("no release for any board: name at least one --bundle")
    man: dict = {"format": 1, "key": signer["id"], "created": int(time.time()), "boards": boards}
    retired = sorted(set((old or {}).get("retire", [])) | set(retire or ()))
    if signer["id"] in retired:
        raise ChannelProblem("key %s cannot retire itself: sign with the key that replaces it" % signer["id"])
    carried = {k["id"]: k for k in (old or {}).get("keys", [])}
    carried.update({k["id"]: k for k in new_keys})
    keys = [k for kid, k in sorted(carried.items()) if kid != signer["id"] and kid not in retired]
    if len(keys) + 1 > MAX_KEYS:
        raise ChannelProblem("%d keys: a gateway trusts at most %d" % (len(keys) + 1, MAX_KEYS))
    if keys:
        man["keys"] = keys
    if retired:
        man["retire"] = retired
    blob = json.dumps(man, separators=(",", ":"), sort_keys=True).encode()
    if len(blob) > CHANNEL_MAX:
        raise ChannelProblem("the manifest is %d bytes, gateways read at most %d: drop boards or keys"
                             % (len(blob), CHANNEL_MAX))
    step("signing with key %s" % signer["id"])
    sig = updates.sign(priv, blob)
    (out / BUNDLE_DIR).mkdir(parents=True, exist_ok=True)
    for src, dest in copies:
        if not dest.exists():
            step("copying %s" % src.name)
            tmp = dest.with_suffix(dest.suffix + ".part")
            shutil.copyfile(src, tmp)
            tmp.replace(dest)
    # The channel file last, and by rename: a server never serves a channel whose bundle is not there yet.
    tmp = out / (CHANNEL_FILE + ".part")
    tmp.write_bytes(pack(blob, sig))
    tmp.replace(out / CHANNEL_FILE)
    return {"channel": out / CHANNEL_FILE, "manifest": man, "bundles": [str(d) for _s, d in copies]}


def describe(path: Path) -> dict:
    """The manifest of a channel file or directory (not verified)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHANNEL_FILE
    return json.loads(read(path.read_bytes())[0])


def verify(path: Path, public: list[dict]) -> list[str]:
    """Problems a gateway trusting the keys `public` would find in the channel at path (a directory or
    its channel file): its signature, each board's bundle (there, size, hash, its own signature). Empty:
    every entry would be fetched and installed where it is offered."""
    path = Path(path)
    if path.is_dir():
        path = path / CHANNEL_FILE
    try:
        man_bytes, sig = read(path.read_bytes())
    except ValueError as e:
        return [str(e)]
    if len(man_bytes) > CHANNEL_MAX:
        return ["manifest of %d bytes: gateways read at most %d" % (len(man_bytes), CHANNEL_MAX)]
    man = json.loads(man_bytes)
    named = [k for k in public if k.get("id") == man.get("key")]
    if not named or not signature_ok(man_bytes, sig, named[0]):
        return [msg("channel.bad_signature", key_id=repr(man.get("key")), trusted=", ".join(k.get("id", "?") for k in public))]
    trusted = public + man.get("keys", [])
    problems = []
    for board, e in sorted(man["boards"].items()):
        f = path.parent / e["bundle"]
        if not f.exists():
            problems.append(msg("channel.missing", board=board, bundle=e["bundle"]))
            continue
        data = f.read_bytes()
        if len(data) != e["size"] or hashlib.sha256(data).hexdigest() != e["sha256"]:
            problems.append(msg("channel.mismatch", board=board, bundle=e["bundle"]))
        elif all(updates.verify(data, k) for k in trusted):
            problems.append(msg("channel.unsigned", board=board, bundle=e["bundle"]))
    return problems
