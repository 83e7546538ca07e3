"""Files on the laptop that hold a gateway's secrets (pulled configs, flash backups, provisioning output,
keys): readable by their owner only.

Owns: folders made 0700 and files made 0600 whatever the umask says, also when they exist already (a file
an older tool left 0644 is tightened when it is written again), the atomic write of one such file (a
temporary beside it, then a rename), and `redact`, which blanks the secret fields of a site config or
session before it is shown or kept where secrets do not belong.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
# A planted symlink must not redirect a secret elsewhere; where the flag does not exist (Windows) there are
# no such links to follow.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# Fields whose values are secrets wherever they appear in a site config or session file: the platform
# PIN (destinations[].pin) and the SIM PIN (network.pin), the SM4 key a registration hands out, the
# bearer token and the password made from them.
SECRET_FIELDS = frozenset(("pin", "password", "secretKey", "secret_key", "token", "private_key"))
REDACTED = "<redacted>"


def make_dir(path: str | Path, tighten: bool = True) -> Path:
    """`path` and any parents it lacks, each new one 0700; with `tighten`, `path` is set 0700 also when
    it existed (leave it False for a folder the user chose that only holds private ones)."""
    p = Path(path)
    missing = []
    q = p
    while not q.exists():
        missing.append(q)
        if q.parent == q:
            break
        q = q.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            if not d.is_dir():
                raise
        os.chmod(d, DIR_MODE)  # mkdir's mode passes through the umask; chmod's does not
    if not missing:
        if not p.is_dir():
            raise NotADirectoryError("%s is not a folder" % p)
        if tighten:
            os.chmod(p, DIR_MODE)
    return p


def tighten(path: str | Path) -> None:
    """Make a file another program wrote (esptool's read-flash) 0600."""
    os.chmod(path, FILE_MODE)


def opener(path, flags: int) -> int:
    """For open(..., opener=opener): the file is 0600 from its first byte, created so or tightened if it
    was there."""
    fd = os.open(path, flags | _NOFOLLOW, FILE_MODE)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, FILE_MODE)
        else:  # pragma: no cover - Windows keeps no Unix modes
            os.chmod(path, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(path: str | Path, append: bool = False):
    """A binary file opened for writing, 0600 (its content kept with `append`, else truncated)."""
    return open(path, "ab" if append else "wb", opener=opener)


def write_file(path: str | Path, data: bytes | str) -> Path:
    """Write `data` to `path` atomically (the old file or the new one, never half), 0600."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with open_file(tmp) as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    return p


def redact(doc, fields=SECRET_FIELDS):
    """A copy of the JSON value `doc` with the value of every secret field replaced by REDACTED, at any
    depth; (the copy, the dotted paths that were blanked)."""
    found: list[str] = []

    def walk(v, where):
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                here = "%s.%s" % (where, k) if where else str(k)
                if k in fields and x not in (None, ""):
                    out[k] = REDACTED
                    found.append(here)
                else:
                    out[k] = walk(x, here)
            return out
        if isinstance(v, list):
            return [walk(x, "%s[%d]" % (where, i)) for i, x in enumerate(v)]
        return v

    return walk(doc, ""), found
