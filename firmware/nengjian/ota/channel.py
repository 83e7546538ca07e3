"""The signed static update channel, the gateway's side: read a channel file from flash, verify it
before anything in it is used, pick this board's release, decide the staged rollout, apply the key
rotation it carries (nengjian.ota.fetch downloads it and the bundle; imported for a check only).

The channel (written by `nengjian ota publish`, nengjian_host.vendor.channel; any web server or
object store serves it: one GET of a fixed name, bundles by relative paths, no query string):

    <ota.url>  = .../channel.njch  one file, so that replacing it is atomic on any store:
        "NJCHAN1\n" | signature length u32 LE | manifest length u32 LE | signature | manifest (JSON)
        (the manifest last: the gateway parses it from the file as a stream)
    the signature: RSASSA-PKCS1-v1_5 / SHA-256 over the manifest bytes, the bundles' scheme
    (nengjian.ota.updater), with the key the manifest names:
    {"format": 1, "key": "vendor-2026", "created": unix seconds,
     "boards": {"sim": {"version": "0.2.0", "min_version": "0.1.0", "size": bytes, "sha256": hex,
                        "bundle": "bundles/app-0.2.0.njota",       relative to the channel file
                        "replaces_down_to": "0.1.0",               optional: a signed downgrade
                        "rollout": {"percent": 25, "salt": "0.2.0", "gateways": ["NJ0001", ...]}}},
     "keys": [public key, ...],     optional: keys introduced (trusted from then on)
     "retire": ["vendor-2025"]}     optional: key ids no longer trusted

Nothing in it is used before its signature verifies with a key the gateway trusts (the key file,
nengjian.ota.updater.load_keys). The manifest is at most CHANNEL_MAX bytes: streamed to flash, hashed
from there through a small buffer, and once it verifies parsed from the file. `min_version` is the oldest
running version that may take this release directly (older ones need a release in between); the
gateway's own minimum (anti-rollback) applies as for a push. A rollout with neither field reaches
every gateway; with them, the gateways listed by id (`gateway_id` in `nengjian status`) and those
whose bucket - the first 4 bytes of SHA-256 of "salt:gateway_id", big-endian, mod 100 - is below
`percent`. The same salt keeps a gateway's bucket while the percentage grows, so each stage
includes the one before. Key rotation: a verified manifest's "keys" are added to the key file and
its "retire" ids removed (never the key that signed it, never leaving none); the file keeps its
first key's fields at the top level, so firmware that reads one key still reads it.
A channel's refusals are typed (below): the manifest too large, its signature, no entry for this
board, outside the rollout, a bundle that does not match the entry. The last three leave nothing
on flash and install nothing; "nothing offered" ones (NotOffered) are not failures of the check.
"""
import gc
import json

from nengjian.ota import slots
from nengjian.ota import updater as otaupdater

CHANNEL_MAGIC = b"NJCHAN1\n"
# The manifest: a few boards and two introduced keys fit in 6 KB. Parsed from the file once verified:
# the dict it makes is some kilobytes for a moment, in small pieces (no buffer of the file's size).
CHANNEL_MAX = 8192


class ChannelError(otaupdater.OtaError):
    """The channel file cannot be trusted or used; nothing was downloaded or installed."""


class ChannelTooLarge(ChannelError):
    pass


class ChannelSignatureError(ChannelError):
    """Its signature does not verify, or it names a key this gateway does not trust."""


class NotOffered(ChannelError):
    """A trusted channel offers this gateway nothing: not a failed check."""

    not_offered = True


class BoardNotInChannel(NotOffered):
    pass


class NotInRollout(NotOffered):
    pass


class BundleMismatch(otaupdater.OtaError):
    """The bundle downloaded is not the one the signed channel names (size or SHA-256)."""


def text_id(v):
    """The gateway's id as `nengjian status` shows it (nengjian.console.status.text_id)."""
    if isinstance(v, (bytes, bytearray)):
        for b in v:
            if b < 33 or b > 126:
                return ":".join("%02x" % x for x in v)
        return bytes(v).decode()
    return v or ""


def rollout_bucket(salt, gateway_id):
    """0..99: where a gateway falls in a staged rollout (module doc)."""
    h = otaupdater.sha256(("%s:%s" % (salt, gateway_id)).encode()).digest()
    return int.from_bytes(h[:4], "big") % 100


def in_rollout(rollout, gateway_id):
    if rollout is None:
        return True
    if not isinstance(rollout, dict):
        raise ChannelError("channel: rollout %r is not an object" % (rollout,))
    if gateway_id in (rollout.get("gateways") or ()):
        return True
    percent = rollout.get("percent")
    if percent is None:
        return False
    if type(percent) is not int or not 0 <= percent <= 100:
        raise ChannelError("channel: rollout percent %r is not 0 to 100" % (percent,))
    return rollout_bucket(rollout.get("salt", ""), gateway_id) < percent


def _relative(name):
    return (isinstance(name, str) and 0 < len(name) <= 120 and "://" not in name and not name.startswith("/")
            and ".." not in name.split("/") and "?" not in name and "#" not in name and "\\" not in name)


def read_channel(path, keys, mv, known_key=None):
    """The manifest (dict) of the channel file at path, once its signature verifies with one of the
    trusted keys and the manifest names that key; read through the buffer mv. ChannelError otherwise.
    Nothing in the manifest is read before: every key is tried (MAX_KEYS at most, one or two in
    practice), and the manifest is parsed only when one verifies. `known_key`: the id of the key that
    verified these very bytes at a boot (seen()): no signature check now, the key must still be trusted."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if len(head) != 16 or head[:8] != CHANNEL_MAGIC:
                raise ChannelError("channel: not a Nengjian update channel file")
            slen = int.from_bytes(head[8:12], "little")
            mlen = int.from_bytes(head[12:16], "little")
            if mlen > CHANNEL_MAX:
                raise ChannelTooLarge("channel manifest of %d bytes: this firmware reads at most %d" % (
                    mlen, CHANNEL_MAX))
            if not mlen or not 0 < slen <= otaupdater.MAX_SIG:
                raise ChannelError("channel: header damaged")
            sig = f.read(slen)
            h = otaupdater.sha256()
            left = mlen
            while left:
                n = f.readinto(mv[:min(len(mv), left)])
                if not n:
                    break
                h.update(mv[:n])
                left -= n
            if left or len(sig) != slen or f.read(1):
                raise ChannelError("channel: truncated, or longer than its header says")
            digest = h.digest()
            key = None
            if known_key is not None:
                for k in keys:
                    if k[3] == known_key:
                        key = k
            else:
                gc.collect()  # the check's integers want blocks of some hundred bytes
                for k in keys:
                    if otaupdater.rsa_verify(k, digest, sig):  # MemoryError on a fragmented heap: see seen()
                        key = k
                        break
            if key is None:
                raise ChannelSignatureError("channel signature does not verify with a vendor key this gateway "
                                            "trusts (%s)" % otaupdater.key_ids(keys))
            # Trusted from here: bounded by CHANNEL_MAX, parsed from the file (the manifest is last) in
            # small pieces rather than from one buffer of its size.
            f.seek(16 + slen)
            try:
                man = json.load(f)
                boards = man["boards"]
                if man.get("format") != 1 or not isinstance(boards, dict):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise ChannelError("channel: signed manifest unreadable or of a format this firmware does not know")
            if man.get("key") != key[3]:
                raise ChannelSignatureError("channel names key %r but was signed with %s" % (man.get("key"), key[3]))
    except OSError as e:
        raise ChannelError("channel: %s" % e)
    return man


def entry_for(man, board, gateway_id, running):
    """This board's release in a verified manifest: (version, size, sha256, bundle, replaces_down_to).
    NotOffered when there is none for this gateway; ChannelError when it is malformed."""
    e = man["boards"].get(board)
    if e is None:
        raise BoardNotInChannel("channel has no release for board %s (it has %s)" % (
            board, ", ".join(sorted(man["boards"])) or "none"))
    try:
        version, size, digest, bundle = e["version"], e["size"], e["sha256"], e["bundle"]
        down_to, low, rollout = e.get("replaces_down_to"), e.get("min_version"), e.get("rollout")
    except (KeyError, TypeError, AttributeError):
        raise ChannelError("channel: the entry of %s is not {version, size, sha256, bundle}" % board)
    if (not isinstance(version, str) or type(size) is not int or size <= otaupdater.HEAD
            or not isinstance(digest, str) or len(digest) != 64 or not _relative(bundle)):
        raise ChannelError("channel: the entry of %s has no usable version, size, sha256 or bundle name" % board)
    if not in_rollout(rollout, gateway_id):
        raise NotInRollout("version %s is staged to part of the fleet; gateway %s is not in it yet" % (
            version, gateway_id))
    if low is not None and version != running:
        need, have = otaupdater.vkey(low), otaupdater.vkey(running)
        if need is None or (have is not None and have < need):
            raise NotOffered("version %s needs a gateway running %s or newer first (this one runs %s)" % (
                version, low, running))
    return version, size, digest, bundle, down_to


def rotate_keys(key_path, keys, man, event=None):
    """Apply a verified manifest's key changes to the key file: "keys" added, "retire" ids removed
    (never the signing key, never all). The new list, or None when nothing changed."""
    new = man.get("keys") or []
    retire = man.get("retire") or []
    if not new and not retire:
        return None
    if not isinstance(new, list) or not isinstance(retire, list):
        raise ChannelError("channel: keys and retire must be lists")
    ids = [k[3] for k in keys]
    docs = None
    added, dropped = [], []
    for d in new:
        k = otaupdater.key_from(d, "channel key")
        if k[3] and k[3] not in ids:
            if docs is None:
                docs = _key_docs(key_path)
            docs.append(d)
            ids.append(k[3])
            added.append(k[3])
    for kid in retire:
        if kid in ids and kid != man.get("key") and len(ids) > 1:
            if docs is None:
                docs = _key_docs(key_path)
            docs = [d for d in docs if d.get("id") != kid]
            ids.remove(kid)
            dropped.append(kid)
    if docs is None:
        return None
    if len(docs) > otaupdater.MAX_KEYS:
        raise ChannelError("channel: %d trusted keys would be more than %d" % (len(docs), otaupdater.MAX_KEYS))
    doc = dict(docs[0])  # the first key's fields at the top: firmware that reads one key still reads it
    doc["keys"] = docs
    slots.write_json(key_path, doc)
    if event is not None:
        change = ["added " + ", ".join(added)] if added else []
        if dropped:
            change.append("retired " + ", ".join(dropped))
        event("ota", "update keys: %s (signed by %s)" % ("; ".join(change), man.get("key")), "ota.keys")
    return otaupdater.load_keys(key_path)


def _key_docs(key_path):
    with open(key_path) as f:
        doc = json.load(f)
    docs = doc.get("keys") if "keys" in doc else [doc]
    return [dict((k, v) for k, v in d.items() if k != "keys") for d in docs]


# ---- a channel checked at boot
# A gateway that has run for weeks may have no heap block for the signature check's integers (as for
# bundles, nengjian.ota). Then the fetcher keeps the channel file and restarts into a check at boot
# (install_pending, before the application fills the heap), which records the file's SHA-256 and the
# outcome in SEEN; the next check trusts the same bytes by their hash, or refuses them again, without
# a signature check and without another restart. A channel whose bytes change asks for one restart
# at most per check (check_s). Before that restart the fetcher leaves SEEN saying it gave up for these
# bytes, and the check at boot writes its outcome over it: a check at boot that never gets that far
# (no room even to load its code, its key file gone, the note naming it torn by a power cut) is
# given up rather than asked for by another restart, and so on at every check.
SEEN = slots.SEEN


def seen(root):
    """What the last check at boot found: {"sha256": hex of the whole file, "ok": bool, "key": id,
    "why": text, "gave_up": true when even that check could not run (no room in a fresh heap) or never
    recorded its outcome: the fetcher then restarts for no channel again, so no restart loop}, or None.
    Given up stays until a check in the running heap verifies a channel (it then writes its own record,
    nengjian.ota.fetch), or a version is installed (a crew's push over USB above all: the record was
    about the heap of the firmware that gave up, nengjian.ota.updater)."""
    try:
        with open(root + "/" + SEEN) as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError):
        return None


def file_sha256(path, mv):
    h = otaupdater.sha256()
    with open(path, "rb") as f:
        while True:
            n = f.readinto(mv)
            if not n:
                return otaupdater._hex(h.digest())
            h.update(mv[:n])


def check_at_boot(root, path, keys):
    """At boot (nengjian.ota.install_pending): verify the channel file the fetcher left and record the
    outcome for it (SEEN). Returns the text for the ledger."""
    doc = {"sha256": None}  # type: dict
    try:
        mv = memoryview(bytearray(256))
        doc["sha256"] = file_sha256(path, mv)
        man = read_channel(path, keys, mv)
        doc.update(ok=True, key=man["key"])
        text = "update channel checked at boot: signed by %s" % man["key"]
    except otaupdater.OtaError as e:
        doc.update(ok=False, why=str(e)[:160])
        text = "update channel refused at boot: %s" % e
    except Exception as e:  # noqa: BLE001 - MemoryError above all: given up, never a restart again (seen())
        mv = None
        doc.update(ok=False, gave_up=True, why="not checked even at boot (%s: %s)" % (type(e).__name__, str(e)[:80]))
        text = ("update channel %s: no more restarts for its check; updates over USB until a check in the "
                "running heap fits" % doc["why"])
    slots.write_json(root + "/" + SEEN, doc)
    return text

