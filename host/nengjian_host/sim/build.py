"""The sim board runs the firmware as the ESP32 does: compiled to .mpy, not compiled from source
at import time (the MicroPython compiler's own heap use would otherwise dominate a small heap).

`firmware_path()` returns a directory holding firmware/ compiled with mpy-cross (x64 native code for
modules that use @micropython.viper), rebuilt per file when its source changes. Set
NJ_SIM_SOURCE=1 to run from source instead (e.g. to debug with line numbers of edited files).

`romfs_image()` packs that tree's `nengjian` package and the meter profiles into a ROMFS image
(build/sim-romfs.img, nengjian_host.common.romfs), rewritten only when its bytes change: the image the
sim board mounts at /rom when the launcher gives it NJ_ROMFS: every sim gateway by default, as the ESP32
boards run from their romfs partition (SimGateway(romfs=False), or NJ_SIM_ROMFS=0 in the host's
environment, imports the .mpy tree instead).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from nengjian_host.common import paths

BUILD = paths.ROOT / "build" / "sim-mpy"
ROMFS_IMAGE = paths.ROOT / "build" / "sim-romfs.img"
_lock = threading.Lock()


def firmware_path() -> Path:
    if os.environ.get("NJ_SIM_SOURCE") == "1":
        return paths.FIRMWARE
    try:
        from nengjian_host.common import bundle

        bundle.mpy_cross_binary()
    except Exception:  # mpy-cross missing: source still runs, with a larger heap
        return paths.FIRMWARE
    with _lock:
        return _build(bundle)


def _build(bundle) -> Path:
    wanted = set()
    for src in paths.FIRMWARE.rglob("*.py"):
        if "__pycache__" in src.parts:
            continue
        rel = src.relative_to(paths.FIRMWARE)
        text = src.read_bytes()
        if rel.as_posix() == "main.py":
            # The script's own directory leads sys.path: main.py must sit beside the compiled tree.
            out = BUILD / "main.py"
            wanted.add(out)
            if not out.exists() or out.read_bytes() != text:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(text)
            continue
        digest = hashlib.sha256(text).hexdigest()[:16]
        out = BUILD / rel.with_suffix(".mpy")
        stamp = out.with_suffix(".src")
        wanted.add(out)
        wanted.add(stamp)
        if out.exists() and stamp.exists() and stamp.read_text() == digest:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        native = bundle.needs_native(text.decode())
        data = bundle.compile_module(src, rel.as_posix(), "x64" if native else None)
        tmp = out.with_suffix(".tmp%d" % os.getpid())
        tmp.write_bytes(data)
        tmp.replace(out)
        stamp.write_text(digest)
    for old in BUILD.rglob("*"):
        if old.is_file() and old not in wanted and ".tmp" not in old.suffix:
            old.unlink()
    return BUILD


def romfs_image(out: Path | None = None, tree: Path | None = None) -> Path:
    """The ROMFS image of the compiled sim tree (`tree`, default firmware_path()) and the meter
    profiles: `out`, by default build/sim-romfs.img. Written only when its bytes change (same input,
    same bytes)."""
    from nengjian_host.common import romfs

    tree = Path(tree) if tree else firmware_path()
    profiles = {"profiles/meters/" + p.name: p.read_bytes() for p in sorted(paths.PROFILES.glob("*.json"))}
    image = romfs.from_tree(tree, profiles)
    target = Path(out) if out else ROMFS_IMAGE
    with _lock:
        if not target.exists() or target.read_bytes() != image:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp%d" % os.getpid())
            tmp.write_bytes(image)
            tmp.replace(target)
    return target
