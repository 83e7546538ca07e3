"""Whether an update slot holds what the vendor signed: the manifest kept in the slot verifies with
the vendor key (its signature is kept beside it, MANIFEST.sig) and every file matches its hash there.
A slot whose bundle carried a ROMFS image (romfs.img) has no files beside the manifest: the image's
hash is checked against the bytes of the slot's ROMFS store (nengjian.ota.slots).

Owns: prove(). Not loaded by the running application (a long-running heap may have no block for the
signature check's integers, nengjian.ota.updater) nor at boot (a check of every file at every boot
is not worth its time): it is what a check of a gateway's flash runs beside it - over the REPL, from
a flash image, in the tests - to show that whatever a power cut or an install left, the version that
runs and the one a rollback returns to are the vendor's.
"""

import json

from nengjian.ota import slots
from nengjian.ota.updater import CHUNK, MAX_SIG, OtaError, _hex, rsa_verify, sha256


def _hash_file(path, mv):
    """(sha256, bytes) of the file at path, read through the buffer mv."""
    h = sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            k = f.readinto(mv)
            if not k:
                return h, n
            h.update(mv[:k])
            n += k


def _hash_store(part, length):
    """(sha256, bytes) of the first `length` bytes of ROMFS store `part`, read one flash block at a
    time (0 bytes when the store is shorter than that)."""
    buf = bytearray(part.ioctl(5, 0))  # its block size
    mv = memoryview(buf)
    if (length + len(buf) - 1) // len(buf) > part.ioctl(4, 0):
        return sha256(), 0
    h = sha256()
    block = n = 0
    while n < length:
        r = part.readblocks(block, buf, 0)
        if r:
            raise OSError(-r if r < 0 else r, "reading the ROMFS store")
        k = min(len(buf), length - n)
        h.update(mv[:k])
        n += k
        block += 1
    return h, n


def prove(root, key, slot, stores=None):
    """The version slot ("a" or "b") under root holds, once proved to be what the vendor signed
    (key: nengjian.ota.updater.load_key; stores: the board's ROMFS partitions, default
    board.romfs_stores()). OtaError saying what does not prove."""
    d = "%s/%s/" % (root, slot)
    mv = memoryview(bytearray(CHUNK))
    try:
        with open(d + slots.SIGNATURE, "rb") as f:
            sig = f.read(MAX_SIG + 1)
        h, _n = _hash_file(d + slots.MANIFEST, mv)
        if not rsa_verify(key, h.digest(), sig):
            raise OtaError("slot %s: its manifest's signature does not verify" % slot)
        with open(d + slots.MANIFEST) as f:
            man = json.load(f)
        for path, size, digest in man["files"]:
            if path == slots.ROMFS_IMAGE:
                parts = stores or slots.romfs_stores()
                if not parts:
                    raise OtaError("slot %s: its image is in a ROMFS store and this board has none" % slot)
                h, n = _hash_store(parts[slot], size)
            else:
                h, n = _hash_file(d + path, mv)
            if n != size or _hex(h.digest()) != digest:
                raise OtaError("slot %s: %s does not match the signed manifest" % (slot, path))
        return man["version"]
    except OSError as e:
        raise OtaError("slot %s: %s" % (slot, e))
    except (ValueError, KeyError, TypeError):
        raise OtaError("slot %s: manifest unreadable" % slot)
