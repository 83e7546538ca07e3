"""Signed application updates: verify a vendor-signed bundle, install it beside the running
version, switch atomically, confirm when healthy, roll back when not.

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
sys.implementation._mpy when .mpy files are inside, "files": [[path, size, sha256 hex], ...]}.
The signature covers the manifest, the manifest covers every file by its hash: each file is
checked as it is written into the spare slot, and the slot is switched in only when all are good.

Slots: `root`/a and `root`/b each hold a `nengjian` package and the MANIFEST.json it came with;
`root`/current (JSON, written to current.new and renamed: atomic on littlefs) names the active
slot ("" = the firmware's built-in package), the previous one, and the state:
- "trial": just installed. select() at boot counts trial boots; a trial that has booted
  `max_boots` times without confirming is rolled back at the next boot (a crash loop before
  healthy); a trial that runs but is not healthy within `window_s` rolls itself back (check_trial).
- "confirmed": health.Supervisor reported healthy (confirm()).
What happened (installed, each trial boot, a trial that failed to start, confirmed, rolled back
and why) is left in the pointer's "log" for the app to write to the ledger once the store is open
(take_log()).

Boot (firmware/main.py): activate() picks the slot before anything else imports nengjian; a trial
whose package raises while it starts is recorded with failed() and the board is reset at once (a
board sitting in the REPL would never count the next boot), so a crash at import is rolled back
after max_boots boots. On the sim board the slots live in the gateway's directory (NJ_SIM_DIR/app)
and the crew pushes a bundle over the console (`ota` command, `nengjian ota push`).
Verified at boot when the running application cannot: a gateway that has run for weeks has a
fragmented heap (measured on the sim board: 22 kB free, no free block over 448 bytes), and the
signature check needs kilobyte-sized integers. So a bundle fetched over the uplink is only written
to flash by the running application, named in `root`/pending.json (defer()), and verified and
switched in by install_pending() at the next boot, before the application fills the heap; a crew's
push is verified at once and deferred the same way only when that runs out of memory. A refusal at
boot goes into the pointer's log (the ledger) and its version into "refused", which the update
fetcher takes once so that it does not download that bundle again straight away.

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

MAGIC = b"NJOTA1\n\x00"
HEAD = 16
CHUNK = 1024
MAX_MANIFEST = 16384
MAX_SIG = 1024
POINTER = "current"
PENDING = "pending.json"
MANIFEST = "MANIFEST.json"
ALG = "rsa-pkcs1v15-sha256"
# DER DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1)
_DI_SHA256 = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


class OtaError(Exception):
    pass


# ---- signature
def load_key(path):
    """(n, e, byte length, key id) of a vendor public key file."""
    with open(path) as f:
        doc = json.load(f)
    if doc.get("alg") != ALG:
        raise OtaError("key %s: algorithm %r, expected %s" % (path, doc.get("alg"), ALG))
    n_hex = doc["n"]
    return int(n_hex, 16), int(doc.get("e", 65537)), (len(n_hex.lstrip("0")) + 1) // 2, doc.get("id", "")


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
def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _is_dir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def _rmtree(path):
    if not _exists(path):
        return
    if _is_dir(path):
        for name in os.listdir(path):
            _rmtree(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _makedirs(path):
    cur = "/" if path.startswith("/") else ""
    for part in path.split("/"):
        if not part:
            continue
        cur = cur + part if cur in ("", "/") else cur + "/" + part
        if not _exists(cur):
            os.mkdir(cur)


def read_pointer(root):
    try:
        with open(root + "/" + POINTER) as f:
            p = json.load(f)
        if isinstance(p, dict) and p.get("active") in ("", "a", "b"):
            return p
    except (OSError, ValueError):
        pass
    return None


def write_pointer(root, p):
    _write_json(root + "/" + POINTER, p)


def _write_json(path, doc):
    # Written beside and renamed over: atomic on littlefs, so a power cut leaves the old or the new.
    with open(path + ".new", "w") as f:
        json.dump(doc, f)
    os.rename(path + ".new", path)


def _log(p, text):
    log = p.setdefault("log", [])
    log.append(text)
    del log[:-8]


# ---- boot
def select(root):
    """At boot, before nengjian is imported from anywhere else: the slot directory to run, or None for
    the built-in package. Counts trial boots and rolls back a trial that never got healthy."""
    p = read_pointer(root)
    if p is None:
        return None
    if p.get("state") == "trial":
        if p.get("boots", 0) >= p.get("max_boots", 2):
            why = p.get("failure")
            _log(p, "rolled back from %s to %s: not healthy after %d boot(s)%s" % (
                p.get("version"), p.get("previous_version") or "built-in", p.get("boots", 0),
                "; it failed to start: " + why if why else ""))
            _rollback(p)
        else:
            p["boots"] = p.get("boots", 0) + 1
            _log(p, "trial boot %d of %d: %s from slot %s" % (p["boots"], p.get("max_boots", 2), p.get("version"),
                                                              p.get("active")))
        try:
            write_pointer(root, p)
        except OSError:
            pass
    slot = p.get("active")
    if not slot or not _exists("%s/%s/%s" % (root, slot, MANIFEST)):
        return None
    return "%s/%s" % (root, slot)


def _rollback(p):
    p["active"] = p.get("previous") or ""
    p["version"] = p.get("previous_version")
    p["previous"] = None
    p["previous_version"] = None
    p["state"] = "confirmed"
    p["boots"] = 0
    p.pop("failure", None)


def _forget_package():
    for name in list(sys.modules):
        if name == "nengjian" or name.startswith("nengjian."):
            del sys.modules[name]


def activate(root):
    """select() and make `import nengjian` load from the chosen slot (main.py calls this first).
    Every nengjian module loaded so far (this one included) is dropped either way: the application
    imports what it needs from the right place, and no heap is kept for this module."""
    slot = select(root)
    if slot:
        sys.path.insert(0, slot)
    _forget_package()
    return slot


def trial(root):
    """True while the active slot is on trial (main.py: a failure to start then resets the board)."""
    p = read_pointer(root)
    return bool(p and p.get("state") == "trial")


def failed(root, why):
    """The version on trial raised while starting: keep why for the ledger (the reset that follows
    counts the next trial boot, or rolls back)."""
    p = read_pointer(root)
    if not p or p.get("state") != "trial":
        return
    why = why[:160]
    p["failure"] = why
    _log(p, "%s failed to start on trial boot %d: %s" % (p.get("version"), p.get("boots", 0), why))
    write_pointer(root, p)


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


# ---- install
def install_pending(root):
    """At boot, before activate(): verify and switch in the bundle the application left for a fresh
    heap (Updater.defer). The outcome goes into the pointer's log for the ledger; a refused version
    into its "refused" (Updater.take_refused)."""
    path = root + "/" + PENDING
    try:
        with open(path) as f:
            pend = json.load(f)
    except OSError:
        return  # nothing pending: every ordinary boot
    except ValueError:
        pend = None  # torn by a power cut: dropped (the fetcher downloads the bundle again)
    _remove(path)  # before anything else: a bundle that breaks this code must not be retried every boot
    bundle = pend.get("bundle") if isinstance(pend, dict) else None
    if not bundle:
        return
    try:
        up = Updater(root, load_key(pend["key"]), pend["board"], None, pend["window_s"], pend["max_boots"])
        up.install_file(bundle)
    except Exception as e:  # noqa: BLE001 - whatever it was, the version before it boots
        p = read_pointer(root) or {"active": "", "state": "confirmed"}
        why = str(e) if isinstance(e, OtaError) else "%s: %s" % (type(e).__name__, e)
        _log(p, "update refused: %s" % why)
        p["refused"] = pend.get("version")
        try:
            write_pointer(root, p)
        except OSError:
            pass
    finally:
        _remove(bundle)


class Updater:
    def __init__(self, root, key, board, event=None, window_s=1800, max_boots=2, key_path=None):
        self.root = root
        self.key = key
        self.key_path = key_path  # named in pending.json: the check at boot loads it again
        self.board = board
        self._event = event
        self.window_s = window_s
        self.max_boots = max_boots
        self.last_verify_ms = None

    def _note(self, text):
        if self._event is not None:
            self._event("ota", text)

    def state(self):
        p = read_pointer(self.root) or {"active": "", "state": "confirmed"}
        return p

    def take_log(self):
        """What select() and earlier runs left for the ledger; written to the ledger once."""
        p = read_pointer(self.root)
        if not p or not p.get("log") or self._event is None:
            return []
        out = p.pop("log")
        write_pointer(self.root, p)
        for text in out:
            self._note(text)
        return out

    def install_file(self, path):
        with open(path, "rb") as f:
            return self.install(f)

    def defer(self, path, version=None):
        """Leave the received bundle at path to install_pending() at the next boot (the caller resets)."""
        if self.key_path is None:
            raise OtaError("no key path to check the bundle with at boot")
        _makedirs(self.root)
        _write_json(self.root + "/" + PENDING, {"bundle": path, "version": version, "key": self.key_path,
                                               "board": self.board, "window_s": self.window_s,
                                               "max_boots": self.max_boots})
        self._note("bundle%s received: verified and installed at the restart" % (" " + version if version else ""))

    def discard(self, path):
        """Drop a received bundle once installed, refused, or not to be installed (a failed download)."""
        _remove(path)

    def take_refused(self):
        """The version install_pending() refused at this boot, once (None if none)."""
        p = read_pointer(self.root)
        if not p or "refused" not in p:
            return None
        version = p.pop("refused")
        write_pointer(self.root, p)
        return version

    def incoming(self, size):
        """Where a bundle of `size` bytes is received before install_file() (the console's `ota`).
        OtaError if it will not fit beside what is there."""
        if size <= HEAD:
            raise OtaError("a bundle of %d bytes is no bundle" % size)
        _makedirs(self.root)
        self._room(size)
        return self.root + "/incoming.njota"

    def install(self, f):
        """Verify the bundle read from file object f and switch it in as a trial (reboot to run it).
        Returns the manifest. OtaError (nothing switched, the spare slot emptied) if anything is wrong."""
        try:
            return self._install(f)
        except OtaError as e:
            self._note("update refused: %s" % e)
            raise

    def _install(self, f):
        # The manifest (some KB) goes to a file while it is hashed and is parsed from there: no
        # buffer of its size is needed in a heap the running application has fragmented.
        _makedirs(self.root)
        mpath = self.root + "/incoming.manifest"
        try:
            return self._install_from(f, mpath)
        finally:
            _remove(mpath)

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
        ok = rsa_verify(self.key, h.digest(), sig)
        self.last_verify_ms = ticks_diff(ticks_ms(), t0)
        if not ok:
            raise OtaError("signature does not verify with vendor key %s" % (self.key[3] or "(no id)"))
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
        total = 0
        for entry in files:
            path, size = entry[0], entry[1]
            if (not isinstance(path, str) or path.startswith("/") or ".." in path.split("/")
                    or not path.startswith("nengjian/") or path == MANIFEST):
                raise OtaError("file %r outside the package" % (path,))
            total += size
        self._room(total)
        p = self.state()
        target = "b" if p.get("active") == "a" else "a"
        slot = "%s/%s" % (self.root, target)
        _makedirs(self.root)
        _rmtree(slot)
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
            os.rename(mpath, slot + "/" + MANIFEST)
        except OtaError:
            _rmtree(slot)
            raise
        except OSError as e:
            _rmtree(slot)
            raise OtaError("writing slot %s failed: %s" % (target, e))
        prev = p.get("active", "")
        if p.get("state") == "trial":
            # Installing over an unconfirmed trial: fall back to what was confirmed before it.
            prev, prev_version = p.get("previous") or "", p.get("previous_version")
        else:
            prev_version = p.get("version")
        q = {"active": target, "version": version, "previous": prev, "previous_version": prev_version,
             "state": "trial", "boots": 0, "max_boots": self.max_boots, "window_s": self.window_s,
             "log": p.get("log") or []}
        _log(q, "installed %s in slot %s (signature checked in %d ms): runs on trial from the next boot"
             % (version, target, self.last_verify_ms))
        write_pointer(self.root, q)
        self.take_log()
        return man

    def _room(self, total):
        try:
            s = os.statvfs(self.root if _exists(self.root) else "/")
        except (AttributeError, OSError):
            return
        free = s[0] * s[4]
        if free < total + 16 * 1024:
            raise OtaError("%d bytes free, the update needs %d" % (free, total + 16 * 1024))

    # ---- after the switch
    def on_trial(self):
        p = read_pointer(self.root)
        return bool(p and p.get("state") == "trial")

    def confirm(self):
        """The running version is healthy: keep it (health.Supervisor's on_healthy calls this)."""
        p = read_pointer(self.root)
        if not p or p.get("state") != "trial":
            return False
        p["state"] = "confirmed"
        p["boots"] = 0
        p.pop("failure", None)
        write_pointer(self.root, p)
        self._note("version %s confirmed healthy: kept" % p.get("version"))
        return True

    def check_trial(self, uptime_s):
        """Roll back a trial not confirmed within its window. True if it did (the caller resets)."""
        p = read_pointer(self.root)
        if not p or p.get("state") != "trial" or uptime_s < p.get("window_s", self.window_s):
            return False
        text = "rolled back from %s to %s: not healthy within %d s" % (
            p.get("version"), p.get("previous_version") or "built-in", p.get("window_s", self.window_s))
        _rollback(p)
        write_pointer(self.root, p)
        self._note(text)
        return True



async def download(url, path, timeout_ms=600000, ssl=None):
    """GET url into the file path, streamed to flash by the uplink's HTTP client (one deadline for
    the whole transfer; the server must send Content-Length)."""
    from nengjian.net import http

    with open(path, "wb") as out:
        status, _ = await http.request("GET", url, b"", None, timeout_ms, ssl, into=out)
    if status != 200:
        raise OtaError("GET %s: HTTP %d" % (url, status))


def _hex(b):
    from binascii import hexlify

    return hexlify(b).decode()
