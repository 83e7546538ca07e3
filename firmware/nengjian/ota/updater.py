"""Signed application updates, the running application's part: verify a vendor-signed bundle,
install it beside the running version as a trial, confirm it when healthy, roll it back when not
healthy in time, and leave a bundle for the check at the next boot. The boot path (slot selection,
trial boots) is nengjian.ota; the slots and the pointer are nengjian.ota.slots.

Signature scheme - RSASSA-PKCS1-v1_5 with SHA-256, vendor key RSA-3072 (RFC 8017 8.2.2), chosen
for what MicroPython 1.29 offers: hashlib has sha256 (no sha512), cryptolib has AES only, there is
no ECDSA, RSA or Ed25519. Verifying RSA with e = 65537 is one modular exponentiation, which
MicroPython's arbitrary-precision ints do with the built-in pow(s, e, n): about 20 lines, no
tables. Measured on the unix port: 3.4 ms per RSA-3072 verify (tests/firmware/ota/test_ota.py prints
it for a whole bundle); the ESP32-S3 is one to two orders of magnitude slower, well under a second,
once per update. A pure-Python Ed25519 verify would need a pure-Python SHA-512 and two 253-bit
scalar multiplications, some 8000 modular products of 1.7 us each on the same port: several times
the time and many times the code, for a smaller signature we do not need. HMAC with a per-device
key was rejected: the vendor would hold every device's key, and a key read out of one unencrypted
flash could sign updates for that device. The signature is checked by comparing the whole
expected encoding (never by parsing it), which rules out the known PKCS#1 v1.5 forgeries.
The public key is a small JSON file ({"alg": "rsa-pkcs1v15-sha256", "n": hex, "e": 65537,
"id": ...}) provisioned with the config; the host builds and signs (host/nengjian_host/vendor/updates.py).

Bundle (one file, streamed: never held in RAM)
    "NJOTA1\\n\\0" | manifest length u32 LE | signature length u32 LE | manifest (JSON) | signature
    | the files' bytes, one after another, in manifest order
manifest: {"format": 1, "version": "0.2.0", "boards": ["sim", ...], "mpy": null or
sys.implementation._mpy when .mpy files are inside, "files": [[path, size, sha256 hex], ...],
optional "replaces_down_to": "0.1.0" (a deliberate downgrade, below)}.
The signature covers the manifest, the manifest covers every file by its hash: each file is
checked as it is written into the spare slot, and the slot is switched in only when all are good.
The slot keeps the manifest and its signature, so what it holds can be proved again later
(nengjian.ota.proof).
On a board that runs its package from ROMFS (slots.romfs_stores()) a bundle may carry one file,
romfs.img: it is streamed through one flash block into the spare slot's ROMFS store (romcopy.fill),
not unpacked; the slot directory then holds only the manifest and signature, and the board module
copies the store into `romfs` at the next boot (firmware/romcopy.py). A bundle of package files
installs there as a directory slot, its store's stale image erased.
What was installed, confirmed, rolled back and why goes into the pointer's log and from there, once
the store is open, into the ledger (take_log()).

One update at a time: nothing is received or installed while a version is on trial. The spare slot
is then the only one no rollback can return to; installing over a trial would put the new version
into the slot of the confirmed fallback.

Anti-rollback: the pointer keeps a minimum version ("min_version"; the running version until one is
kept), raised to each version confirmed healthy. A signed bundle older than it is refused: an old,
correctly signed bundle with a known fault cannot be put back, over the console or the uplink. A
deliberate downgrade is a bundle the vendor signs with "replaces_down_to": X (at most its own
version; `nengjian ota build --replaces-down-to`): it installs whatever the minimum, and once it is
confirmed the minimum becomes X. Versions are ordered by their leading numbers ("0.2.0-sim" is 0.2);
a version that does not start with one is refused.

SPEC 7 (updates stranded devices after partition or flash changes): the bundle names the boards it
is for and the .mpy format it needs; anything else is refused before a byte is written.
"""

import json
import os
import sys

try:
    from hashlib import sha256
except ImportError:  # pragma: no cover
    from uhashlib import sha256

from nengjian.ota import slots
from nengjian.ota.slots import OtaError  # noqa: F401  (the updater's callers catch it from here too)

MAGIC = b"NJOTA1\n\x00"
HEAD = 16
CHUNK = 1024
MAX_MANIFEST = 16384
MAX_SIG = 1024
MAX_KEYS = 4  # trusted vendor keys: the current one and the next during a rotation, with room to spare
INCOMING = "incoming.njota"
# Left free on the volume the slots share with /config (site config, keys, CA files and the .new copy
# each takes while it is replaced, each file at least one block): an update never takes that room.
RESERVE = 32 * 1024
ALG = "rsa-pkcs1v15-sha256"
# DER DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1)
_DI_SHA256 = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


# ---- versions
def vkey(version):
    """What orders a version: its leading numbers ("0.2.0-sim" -> (0, 2), trailing zeros dropped), or
    None when it does not start with a number."""
    if not isinstance(version, str):
        return None
    out = []
    for part in version.split("."):
        i = 0
        while i < len(part) and "0" <= part[i] <= "9":
            i += 1
        if i == 0:
            break
        out.append(int(part[:i]))
        if i < len(part):
            break
    if not out:
        return None
    while out and out[-1] == 0:
        out.pop()
    return tuple(out)


# ---- signature
def key_from(doc, where="key"):
    """(n, e, byte length, key id) of a vendor public key as JSON ({"alg", "n", "e", "id"})."""
    if not isinstance(doc, dict) or doc.get("alg") != ALG or not isinstance(doc.get("n"), str):
        raise OtaError("%s: algorithm %r, expected %s" % (where, doc.get("alg") if isinstance(doc, dict) else doc,
                                                          ALG))
    n_hex = doc["n"]
    return int(n_hex, 16), int(doc.get("e", 65537)), (len(n_hex.lstrip("0")) + 1) // 2, doc.get("id", "")


def load_key(path):
    """The first key of a vendor key file (load_keys)."""
    return load_keys(path)[0]


def load_keys(path):
    """The vendor keys a gateway trusts, from its key file: one key as provisioned, or {"keys": [...]}
    once a signed update channel has introduced another (nengjian.ota.fetch: key rotation), at most
    MAX_KEYS. A list of key_from() tuples, the file's order."""
    with open(path) as f:
        doc = json.load(f)
    docs = doc.get("keys") if isinstance(doc, dict) and "keys" in doc else [doc]
    if not isinstance(docs, list) or not 0 < len(docs) <= MAX_KEYS:
        raise OtaError("key %s: expected one key or {\"keys\": [1 to %d keys]}" % (path, MAX_KEYS))
    return [key_from(d, "key %s" % path) for d in docs]


def key_ids(keys):
    return ", ".join(k[3] or "(no id)" for k in keys)


def rsa_verify(key, digest, sig):
    """True if sig is the RSASSA-PKCS1-v1_5 signature of the SHA-256 digest under key."""
    n, e, k = key[0], key[1], key[2]
    if len(sig) != k or len(digest) != 32:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    want = b"\x00\x01" + b"\xff" * (k - 3 - len(_DI_SHA256) - 32) + b"\x00" + _DI_SHA256 + digest
    return em == want


# ---- files
def _is_dir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def _rmtree(path):
    if not slots.exists(path):
        return
    if _is_dir(path):
        for name in os.listdir(path):
            _rmtree(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


def _clear_slot(slot):
    # Its manifest first: a slot cut while it is cleared must not look whole (boot runs a slot that has one).
    slots.remove(slot + "/" + slots.MANIFEST)
    _rmtree(slot)


def _makedirs(path):
    cur = "/" if path.startswith("/") else ""
    for part in path.split("/"):
        if not part:
            continue
        cur = cur + part if cur in ("", "/") else cur + "/" + part
        if not slots.exists(cur):
            os.mkdir(cur)


def _forget_image(part):
    """Erase the first block of ROMFS store `part`: it then holds no image romcopy would copy in."""
    try:
        part.ioctl(6, 0)  # erase block 0 (esp32.Partition and the sim's block devices)
    except OSError:
        pass


def _copy_hashed(src, dst, left, mv):
    """Copy `left` bytes from src to dst through the buffer mv; (sha256 of what was copied, bytes
    missing when src ended early)."""
    h = sha256()
    while left:
        n = src.readinto(mv[:min(len(mv), left)])
        if not n:
            break
        h.update(mv[:n])
        dst.write(mv[:n])
        left -= n
    return h, left


class Updater:
    def __init__(self, root, key, board, event=None, window_s=1800, max_boots=2, key_path=None, running=None,
                 stores=None):
        self.root = root
        # The board's ROMFS partitions (slots.romfs_stores(); None: asked when a bundle installs, {}: none)
        self.stores = stores
        self.running = running  # the version running now: the minimum until the pointer keeps one
        # load_keys(), or one load_key() tuple; None: not loaded for want of room (Resident.load)
        self.keys = key if isinstance(key, list) or key is None else [key]
        self.key = self.keys[0] if self.keys else None
        self.key_path = key_path  # named in pending.json: the check at boot loads it again
        self.board = board
        self._event = event
        self.window_s = window_s
        self.max_boots = max_boots
        self.last_verify_ms = None

    def _note(self, text, code):
        if self._event is not None:
            self._event("ota", text, code)

    def state(self):
        p = slots.read_pointer(self.root) or {"active": "", "state": "confirmed"}
        return p

    def minimum(self, p=None):
        """The oldest version an ordinary bundle may have (None: no minimum known)."""
        if p is None:
            p = self.state()
        return p.get("min_version") or self.running

    def refusal(self, version=None, down_to=None, p=None):
        """Why nothing may be installed now (a version is on trial) or, given a bundle's `version` and
        its replaces_down_to `down_to`, why that bundle may not; None if it may."""
        if p is None:
            p = self.state()
        if p.get("state") == "trial":
            return ("version %s is on trial (boot %d of %d): it must be confirmed healthy or rolled back before "
                    "another is installed (installing now would leave no confirmed version to return to)" % (
                        p.get("version"), p.get("boots", 0), p.get("max_boots", self.max_boots)))
        if version is None:
            return None
        v = vkey(version)
        if v is None:
            return "version %r does not start with a number: it cannot be ordered against the minimum" % (version,)
        if down_to is not None:
            d = vkey(down_to)
            if d is None or d > v:
                return "replaces_down_to %r is not a version at or below %s" % (down_to, version)
            return None
        low = vkey(self.minimum(p))
        if low is not None and v < low:
            return ("version %s is older than the minimum %s: a downgrade needs a bundle signed with "
                    "replaces_down_to" % (version, self.minimum(p)))
        return None

    def _refuse(self, version=None, down_to=None, p=None):
        why = self.refusal(version, down_to, p)
        if why:
            raise OtaError(why)

    def take_log(self):
        """What select() and earlier runs left for the ledger; written to the ledger once."""
        return slots.take_log(self.root, self._event)

    def install_file(self, path):
        with open(path, "rb") as f:
            return self.install(f)

    def defer(self, path, version=None):
        """Leave the received bundle at path to install_pending() at the next boot (the caller resets)."""
        if self.key_path is None:
            raise OtaError("no key path to check the bundle with at boot")
        self._refuse()
        _makedirs(self.root)
        slots.defer_bundle(self.root, path, version, self.key_path, self.board, self.window_s, self.max_boots,
                              self.running, self._event)

    def discard(self, path):
        """Drop a received bundle once installed, refused, or not to be installed (a failed download)."""
        slots.remove(path)

    def take_refused(self):
        """The version install_pending() refused at this boot, once (None if none)."""
        return slots.take_refused(self.root)

    def incoming(self, size):
        """Where a bundle of `size` bytes is received before install_file() (the console's `ota`).
        OtaError if it will not fit beside what is there."""
        self._refuse()
        if size <= HEAD:
            raise OtaError("a bundle of %d bytes is no bundle" % size)
        _makedirs(self.root)
        path = self.root + "/" + INCOMING
        slots.remove(path)  # one a power cut left: its room counts
        slots.remove(path + ".new")
        self._room(size)
        return path

    def install(self, f):
        """Verify the bundle read from file object f and switch it in as a trial (reboot to run it).
        Returns the manifest. OtaError (nothing switched, the spare slot emptied) if anything is wrong."""
        try:
            return self._install(f)
        except OtaError as e:
            self._note("update refused: %s" % e, "ota.refused")
            raise

    def _install(self, f):
        # The manifest (some KB) goes to a file while it is hashed and is parsed from there: no
        # buffer of its size is needed in a heap the running application has fragmented.
        self._refuse()  # before anything is written
        _makedirs(self.root)
        mpath = self.root + "/incoming.manifest"
        try:
            return self._install_from(f, mpath)
        finally:
            slots.remove(mpath)

    def _install_from(self, f, mpath):
        from nengjian.core.compat import ticks_diff, ticks_ms

        head = f.read(HEAD)
        if len(head) != HEAD or head[:8] != MAGIC:
            raise OtaError("not a Nengjian update bundle")
        mlen = int.from_bytes(head[8:12], "little")
        slen = int.from_bytes(head[12:16], "little")
        if not 0 < mlen <= MAX_MANIFEST or not 0 < slen <= MAX_SIG:
            raise OtaError("bundle header damaged")
        buf = bytearray(CHUNK)
        mv = memoryview(buf)
        with open(mpath, "wb") as out:
            h, left = _copy_hashed(f, out, mlen, mv)
        sig = f.read(slen)
        if left or len(sig) != slen:
            raise OtaError("bundle truncated in its header")
        t0 = ticks_ms()
        ok = False
        digest = h.digest()
        for key in self.keys:  # a bundle names no key: at most MAX_KEYS tries, during a rotation only
            ok = rsa_verify(key, digest, sig)
            if ok:
                break
        self.last_verify_ms = ticks_diff(ticks_ms(), t0)
        if not ok:
            raise OtaError("signature does not verify with vendor key %s" % key_ids(self.keys))
        try:
            with open(mpath) as mf:
                man = json.load(mf)
            files = man["files"]
            version = man["version"]
        except (ValueError, KeyError, TypeError):
            raise OtaError("manifest unreadable")
        if man.get("format") != 1:
            raise OtaError("bundle format %r not understood by this firmware" % man.get("format"))
        if self.board not in man.get("boards", ()):
            raise OtaError("bundle is for %s, this board is %s" % (", ".join(man.get("boards", ())), self.board))
        need_mpy = man.get("mpy")
        have_mpy = getattr(sys.implementation, "_mpy", None)
        # bits 0-7 version, 8-9 sub-version: both must match to load bytecode (10-15 name a native arch)
        if need_mpy is not None and have_mpy is not None and (need_mpy & 0x3FF) != (have_mpy & 0x3FF):
            raise OtaError(".mpy format %d.%d, this MicroPython loads %d.%d" % (
                need_mpy & 0xFF, need_mpy >> 8 & 3, have_mpy & 0xFF, have_mpy >> 8 & 3))
        # A ROMFS bundle carries one file, the image: it goes into a ROMFS store, not the app filesystem.
        rom = len(files) == 1 and files[0][0] == slots.ROMFS_IMAGE
        total = 0
        for entry in files:
            path, size = entry[0], entry[1]
            if not rom and (not isinstance(path, str) or path.startswith("/") or ".." in path.split("/")
                            or not path.startswith("nengjian/") or path == slots.MANIFEST):
                raise OtaError("file %r outside the package" % (path,))
            total += 0 if rom else size
        stores = (self.stores if self.stores is not None else slots.romfs_stores()) or None
        if rom and not stores:
            raise OtaError("the bundle carries a ROMFS image and this board has no ROMFS stores: it needs a "
                           "bundle of the package's files")
        if rom and "romcopy" not in sys.modules:
            try:
                import romcopy  # noqa: F401 - what copies a store into romfs at boot (/lib/romcopy.mpy)
            except ImportError:
                raise OtaError("the bundle carries a ROMFS image and this gateway has no romcopy module to "
                               "switch to it at boot: reflash it with `nengjian flash`")
        down_to = man.get("replaces_down_to")
        p = self.state()
        self._refuse(version, down_to, p)
        active = p.get("active", "")
        target = "b" if active == "a" else "a"  # never the running slot, and (no trial) nothing returns to it
        slot = "%s/%s" % (self.root, target)
        _clear_slot(slot)
        self._room(total + slen)
        store = stores[target] if stores else None
        if rom and store is not None:
            buf = mv = None  # the store is written through one flash block instead
            self._install_store(f, files[0], store, slot, target)
            files = ()  # the slot directory keeps only the manifest and its signature
        elif store is not None:
            _forget_image(store)  # a stale image there must never be copied in for this slot
        try:
            for path, size, digest in files:
                full = slot + "/" + path
                _makedirs(full.rsplit("/", 1)[0])
                with open(full, "wb") as out:
                    h, left = _copy_hashed(f, out, size, mv)
                if left:
                    raise OtaError("bundle truncated in %s" % path)
                if _hex(h.digest()) != digest:
                    raise OtaError("%s does not match its hash in the signed manifest" % path)
            with open(slot + "/" + slots.SIGNATURE, "wb") as out:
                out.write(sig)
            # No state replaced here (that is nengjian.core.statefile's): the manifest moves into a
            # slot nothing points at yet, last, making it whole; the pointer written below switches.
            os.rename(mpath, slot + "/" + slots.MANIFEST)
        except OtaError:
            _clear_slot(slot)
            raise
        except OSError as e:
            _clear_slot(slot)
            raise OtaError("writing slot %s failed: %s" % (target, e))
        low = self.minimum(p)
        if down_to is not None:
            after = down_to
        elif low is None or vkey(low) is None or vkey(version) > vkey(low):
            after = version
        else:
            after = low
        # A trial returns to the confirmed version running now (refusal() saw no trial).
        q = {"active": target, "version": version, "previous": active, "previous_version": p.get("version"),
             "state": "trial", "boots": 0, "max_boots": self.max_boots, "window_s": self.window_s,
             "log": p.get("log") or [], "min_on_confirm": after}
        if low is not None:
            q["min_version"] = low
        slots.add_log(q, "installed %s in slot %s (signature checked in %d ms): runs on trial from the next boot"
                % (version, target, self.last_verify_ms))
        slots.write_pointer(self.root, q)
        if slots.seen_gave_up(self.root):
            # Given up for want of heap by the firmware running now: another version (a crew's push over
            # USB, the way left) needs other room, so its checks may restart for a check at boot again.
            slots.remove(self.root + "/" + slots.SEEN)
        self.take_log()
        return man

    def _install_store(self, f, entry, part, slot, target):
        """Stream the bundle's ROMFS image from f into partition `part`, the store of slot `target`,
        through one flash block (romcopy.fill: a fixed buffer whatever the image's size), check it
        against its hash in the signed manifest, and make the slot's directory for the manifest.
        OtaError, the store holding no image, if anything is wrong. The pointer names the slot only
        later, so a power cut here leaves what runs as it was."""
        import romcopy

        size, digest = entry[1], entry[2]
        buf = bytearray(part.ioctl(romcopy.BLOCK_SIZE, 0))
        try:
            got = romcopy.fill(part, f, size, buf)
            if _hex(got) != digest:
                raise OtaError("%s does not match its hash in the signed manifest" % slots.ROMFS_IMAGE)
            if romcopy.image_len(part, buf) != size:
                raise OtaError("%s is not a ROMFS image of %d bytes" % (slots.ROMFS_IMAGE, size))
            _makedirs(slot)
        except OtaError:
            _forget_image(part)
            raise
        except OSError as e:
            _forget_image(part)
            raise OtaError("writing ROMFS store %s failed: %s" % (target, e))

    def _room(self, total):
        try:
            s = os.statvfs(self.root if slots.exists(self.root) else "/")
        except (AttributeError, OSError):
            return
        free = s[0] * s[4]
        if free < total + RESERVE:
            raise OtaError("%d bytes free, the update needs %d and %d kept for the config" % (
                free, total, RESERVE))

    # ---- after the switch
    def on_trial(self):
        return slots.on_trial(self.root)

    def confirm(self):
        """The running version is healthy: keep it."""
        return slots.confirm(self.root, self._event)

    def check_trial(self, uptime_s):
        """Roll back a trial not confirmed within its window. True if it did (the caller resets)."""
        return slots.check_trial(self.root, uptime_s, self.window_s, self._event)


def _hex(b):
    from binascii import hexlify

    return hexlify(b).decode()
