"""The ROMFS image of the application: the compiled `nengjian` package and the meter profiles in
MicroPython's read-only filesystem format (extmod/vfs_rom.c), which the gateway mounts at /rom and
imports from in place, so the bytecode of a module stays in flash instead of being copied into the
heap.

Owns: which bundle files go into the image and under which names, the image bytes (deterministic:
the same files give the same bytes, whatever order they were collected in), reading an image back
(the flash checks and the tests), and the room an image needs in a partition.

Layout inside the image (mounted at /rom):

    nengjian/...            the compiled package (the bundle's lib/nengjian/...)
    profiles/meters/*.json  the meter profiles (nengjian.meters.profile looks here first)

The board module, main.py and /config stay on the app filesystem: main.py imports `board` before it
chooses what to run, and the site config is the gateway's own.

The records are written with mpremote's `VfsRomWriter` (mpremote is pinned for the developer's
device path already); this module decides only what goes in and in which order.
"""

from __future__ import annotations

PACKAGE_PREFIX = "lib/nengjian/"  # where the bundle keeps the package
PROFILES_PREFIX = "profiles/meters/"
MOUNT = "/rom"  # where the stock ESP32 firmware and the sim board mount the image
HEADER = b"\xd2\xcd\x31"  # extmod/vfs_rom.c: the image's first record kind
# Room a partition keeps beyond today's image, for the packages of later signed updates
HEADROOM = 1.5
ERASE_BLOCK = 0x10000


class RomfsError(ValueError):
    """An image that cannot be built or read; the text names what to fix."""


def select_files(bundle_files: dict[str, bytes]) -> dict[str, bytes]:
    """The files of a bundle (path on the app filesystem -> bytes) that go into the image, under
    their names in it."""
    out = {}
    for path, data in bundle_files.items():
        if path.startswith(PACKAGE_PREFIX):
            out[path[len("lib/"):]] = data
        elif path.startswith(PROFILES_PREFIX) and path.endswith(".json"):
            out[path] = data
    return out


def build(files: dict[str, bytes]) -> bytes:
    """An image holding `files` (path inside the image -> bytes), entries in sorted order."""
    from mpremote.romfs import VfsRomWriter

    tree: dict = {}
    for path, data in files.items():
        parts = path.strip("/").split("/")
        if not parts or any(p in ("", ".", "..") for p in parts):
            raise RomfsError("%r is not a path inside the image" % path)
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise RomfsError("%r is a file and a directory" % p)
        if parts[-1] in node:
            raise RomfsError("%r given twice" % path)
        node[parts[-1]] = bytes(data)
    for name in _names(tree):
        try:
            name.encode("ascii")
        except UnicodeEncodeError:
            raise RomfsError("%r: names in a ROMFS image are ASCII" % name) from None
    writer = VfsRomWriter()

    def walk(node: dict) -> None:
        for name in sorted(node):
            child = node[name]
            if isinstance(child, dict):
                writer.opendir(name)
                walk(child)
                writer.closedir()
            else:
                writer.mkfile(name, child)

    walk(tree)
    return bytes(writer.finalise())


def _names(node: dict):
    for name, child in node.items():
        yield name
        if isinstance(child, dict):
            yield from _names(child)


def from_bundle(bundle_files: dict[str, bytes]) -> bytes:
    """The image of a bundle (nengjian_host.common.bundle.collect(...).files)."""
    files = select_files(bundle_files)
    if not any(p.startswith("nengjian/") for p in files):
        raise RomfsError("the bundle has no compiled nengjian package to put into a ROMFS image")
    return build(files)


def from_tree(root, extra: dict[str, bytes] | None = None) -> bytes:
    """The image of a directory holding the compiled package (root/nengjian/...), e.g. the sim
    board's build/sim-mpy; `extra` adds files (the profiles). Only .mpy and .py files of the package
    go in (a build tree's stamps and main.py do not)."""
    from pathlib import Path

    root = Path(root)
    files = {}
    for p in sorted((root / "nengjian").rglob("*")):
        if p.is_file() and p.suffix in (".mpy", ".py") and "__pycache__" not in p.parts:
            files[p.relative_to(root).as_posix()] = p.read_bytes()
    files.update(extra or {})
    return build(files)


# ---- reading an image back
def _uint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        if pos >= len(data):
            raise RomfsError("image ends inside a number at %d" % pos)
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos


def image_length(data: bytes) -> int:
    """Bytes the image at the start of `data` occupies (a partition read back has 0xFF after it)."""
    if data[:3] != HEADER:
        raise RomfsError("no ROMFS image here (first bytes %s)" % data[:3].hex())
    length, pos = _uint(data, 3)
    if pos + length > len(data):
        raise RomfsError("image says %d bytes, %d given" % (pos + length, len(data)))
    return pos + length


def read(data: bytes) -> dict[str, bytes]:
    """Every file of an image (path -> bytes). RomfsError if it is not one."""
    end = image_length(data)
    _, pos = _uint(data, 3)
    out: dict[str, bytes] = {}
    _read_dir(data, pos, end, "", out)
    return out


def _read_dir(data: bytes, pos: int, end: int, prefix: str, out: dict[str, bytes]) -> None:
    while pos < end:
        kind, pos = _uint(data, pos)
        length, pos = _uint(data, pos)
        body_end = pos + length
        if kind in (4, 5):  # directory, file: a name, then records
            nlen, p = _uint(data, pos)
            name = data[p:p + nlen].decode("ascii")
            p += nlen
            if kind == 4:
                _read_dir(data, p, body_end, prefix + name + "/", out)
            else:
                while p < body_end:
                    k, p = _uint(data, p)
                    n, p = _uint(data, p)
                    if k == 2:  # data verbatim
                        out[prefix + name] = data[p:p + n]
                    p += n
        pos = body_end


def partition_size(image_len: int, headroom: float = HEADROOM) -> int:
    """The size a ROMFS partition needs for an image of `image_len` bytes with headroom for later
    versions, rounded up to the 64 KiB erase block."""
    need = int(image_len * headroom)
    return (need + ERASE_BLOCK - 1) // ERASE_BLOCK * ERASE_BLOCK
