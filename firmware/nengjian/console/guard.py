"""What the console may read and write (nengjian.console.commands asks here before `get`, `sha256`,
`files` and `put`). Loaded with the first such request; docs/SECURITY.md says what each rule stops.

Reads: files on the data volume (board.DATA_MOUNT, at any depth) and the JSON config files in READABLE
(board.CONFIG_DIR), nothing else: a path is normalised first ('.' and empty parts dropped) and refused
with '..', a NUL, another control character or a backslash in it. No private key is among them (the client key
and certificate, the CA files are never readable), and a file that starts like a PEM block is
refused wherever it lies. Every JSON file is shown with its secret values masked (the keys named in
SECRETS: the platform and SIM PINs, the session's secretKey, tokens, passwords): each byte of a
secret string becomes '*', a secret number becomes 0 and spaces. The masked file has the size and
layout of the real one, so `get` ranges, `sha256` of a prefix and a resumed pull agree with each
other; neither answer is ever computed over the secret bytes (a hash of a file with a 4-digit PIN
in it would give the PIN away).

Writes (`put`, only directly in CONFIG_DIR): site.json and identity.json are config; every other file
there is a trust anchor (the update key ota_key.json, CA files, the client key and certificate).
While the gateway has no site.json (fresh, being provisioned) every file may be written. Once it has
one, creating or replacing a trust anchor, and a site.json that changes whom the gateway trusts or
where it sends data (a destination's url, security, ca, client_cert, client_key or insecure flag;
the update server's url and ca; destinations added or removed), needs the board's service button
(board.service_button_held()) held when the put starts and when it is committed. A put whose bytes
equal the file already there changes nothing and needs no button.
"""

import json
import os

READABLE = ("site.json", "identity.json", "ota_key.json")
FREE = ("site.json", "identity.json")  # config, not trust anchors
SITE = "site.json"
SECRETS = (b"pin", b"secretKey", b"secret", b"token", b"password", b"key", b"psk")
DEST_TRUST = ("url", "security", "ca", "client_cert", "client_key")
OTA_TRUST = ("url", "ca")
BUTTON = ("hold the gateway's service button (BOOT on the ESP32 boards) while you send it, "
          "until the gateway confirms it is written")
_KEYMAX = 16  # longer keys are never secret names


class Refused(Exception):
    """The console will not do this; the text says why and what would let it."""


def normal(path):
    """path with '.' and empty parts dropped; Refused for '..', NUL, a control character or a backslash."""
    if not path:
        raise Refused("no path")
    for c in path:
        if ord(c) < 32 or c == "\\":
            raise Refused("control character or backslash in the path")
    parts = []
    for p in path.split("/"):
        if p == "..":
            raise Refused("'..' in the path")
        if p and p != ".":
            parts.append(p)
    return ("/" if path[0] == "/" else "") + "/".join(parts)


def _inside(path, root):
    return root is not None and path.startswith(root + "/") and len(path) > len(root) + 1


def _name_in(path, root):
    """The file name if path is directly in root, else None."""
    if not _inside(path, root):
        return None
    name = path[len(root) + 1:]
    return None if "/" in name else name


def readable(board, path):
    """The normalised path if the console may show it; else Refused."""
    p = normal(path)
    data = getattr(board, "DATA_MOUNT", None)
    if data is not None and _inside(p, normal(data)):
        return p
    if _name_in(p, normal(board.CONFIG_DIR)) in READABLE:
        return p
    raise Refused("reads only files on the data volume (%s/...) and the config files %s in %s" % (
        data, ", ".join(READABLE), board.CONFIG_DIR))


# ---- reading, secrets masked
class Masker:
    """Masks the secret values of a JSON text fed to it in pieces, in place (see the module doc). A name
    with an escape in it is taken for a secret one: it could spell one."""

    def __init__(self):
        # mode (0 outside strings, 1 in a string, 2 in a masked string, 3 in a masked number), escape
        # pending, 1 a secret name just ended or 2 its ':' too, depth inside a secret object or array,
        # bytes of the name so far (_KEYMAX + 1: too long, _KEYMAX + 2: escaped)
        self.s = [0, 0, 0, 0, 0]
        self.key = bytearray(_KEYMAX)

    def feed(self, buf, n):
        mode, esc, pending, depth, kn = self.s
        key = self.key
        for i in range(n):
            c = buf[i]
            if mode == 1 or mode == 2:
                if esc:
                    esc = 0
                elif c == 92:  # backslash
                    esc = 1
                    if mode == 1:
                        kn = _KEYMAX + 2
                elif c == 34:  # the closing quote
                    if mode == 1 and (kn == _KEYMAX + 2 or (kn <= _KEYMAX and bytes(key[:kn]) in SECRETS)):
                        pending = 1
                    mode = 0
                    continue
                if mode == 2:
                    buf[i] = 42  # '*'
                elif kn < _KEYMAX:
                    key[kn] = c
                    kn += 1
                elif kn == _KEYMAX:
                    kn = _KEYMAX + 1
                continue
            if mode == 3:
                if 48 <= c <= 57 or c == 43 or c == 45 or c == 46 or c == 69 or c == 101:  # 0-9 + - . E e
                    buf[i] = 32
                    continue
                mode = 0
            if c == 32 or c == 10 or c == 13 or c == 9:
                continue
            if c == 34:  # a string starts
                mode = 2 if depth or pending == 2 else 1
                kn = 0
                pending = 0
                continue
            if c == 58 and pending == 1:  # ':' after a secret name
                pending = 2
                continue
            if pending == 2 or depth:
                if c == 123 or c == 91:  # { [
                    depth += 1
                elif (c == 125 or c == 93) and depth:  # } ]
                    depth -= 1
                elif 48 <= c <= 57 or c == 45:
                    buf[i] = 48  # '0', the rest of the number spaces: still a JSON number
                    mode = 3
            pending = 0
        st = self.s
        st[0], st[1], st[2], st[3], st[4] = mode, esc, pending, depth, kn


class View:
    """A readable file as the console shows it: `length`, readinto() like a file, JSON masked. A masked
    file is read from its start (what comes before decides what is secret): seek() is for the others."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.masker = Masker() if path.endswith(".json") else None
        self.pos = 0
        head = bytearray(10)
        n = self.f.readinto(head)
        if n == 10 and head == b"-----BEGIN":
            self.f.close()
            raise Refused("%s holds a PEM block (key or certificate): not readable through the console" % path)
        self.length = self.f.seek(0, 2)
        self.f.seek(0)

    def seek(self, off):
        self.f.seek(off)
        self.pos = off

    def readinto(self, mv):
        n = self.f.readinto(mv) or 0
        if n and self.masker is not None:
            self.masker.feed(mv, n)
        self.pos += n
        return n

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def view(board, path):
    """A View of path if the console may show it; Refused otherwise, OSError if it cannot be opened."""
    return View(readable(board, path))


# ---- writing
def held(board):
    f = getattr(board, "service_button_held", None)
    try:
        return bool(f is not None and f())
    except Exception:  # a button that cannot be read is not held
        return False


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _sha256(path):
    import hashlib
    from binascii import hexlify

    h = hashlib.sha256()
    buf = bytearray(256)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    return hexlify(h.digest()).decode()


def writable(board, path, sha):
    """(normalised path, what it is: "config" or "anchor") if a put may begin; else Refused."""
    cdir = normal(board.CONFIG_DIR)
    p = normal(path)
    name = _name_in(p, cdir)
    if name is None or name.endswith(".new"):
        raise Refused("put writes only files directly in %s" % board.CONFIG_DIR)
    if name in FREE:
        return p, "config"
    if not _exists(cdir + "/" + SITE) or held(board):
        return p, "anchor"
    if _exists(p) and _sha256(p) == sha.lower():
        return p, "anchor"  # the same bytes again: nothing is replaced
    raise Refused("%s is a trust anchor (update key, CA, client key or certificate) and this gateway is "
                  "provisioned: replacing or adding one needs the service button; %s" % (name, BUTTON))


def _trust(path):
    """What in a site config decides whom the gateway trusts and where its data goes: a sorted list of
    texts, None if the file is not a JSON object."""
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    out = []
    for d in cfg.get("destinations") or ():
        if isinstance(d, dict):
            out.append(repr([d.get("name")] + [d.get(k) for k in DEST_TRUST] + _insecure(d)))
    ota = cfg.get("ota")
    if isinstance(ota, dict):
        out.append(repr(["ota"] + [ota.get(k) for k in OTA_TRUST] + _insecure(ota)))
    out.sort()
    return out


def _insecure(section):
    return sorted("%s=%r" % (k, v) for k, v in section.items() if k.startswith("insecure"))


def committable(board, path, kind):
    """Refused if the bytes that arrived in path's NAME.new may not replace path (checked again at
    the commit: the button must still be held, a site.json must not change the trust it sets)."""
    cdir = normal(board.CONFIG_DIR)
    site = cdir + "/" + SITE
    if not _exists(site) or held(board):
        return
    if kind == "anchor":
        if not (_exists(path) and _sha256(path) == _sha256(path + ".new")):
            raise Refused("%s is a trust anchor: the service button was released before it was written; %s" % (
                path, BUTTON))
        return
    if path != site:
        return
    old = _trust(site)
    new = _trust(path + ".new")
    if old != new:
        raise Refused("this site.json changes whom the gateway trusts or where it sends data (a destination's "
                      "url, security, ca, client certificate or key, an insecure flag, the update server, or "
                      "which destinations there are): that needs the service button; %s" % BUTTON)
