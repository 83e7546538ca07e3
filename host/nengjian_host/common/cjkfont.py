"""A CJK font for the reports, embedded so that they render on a machine without one.

Owns: finding a Noto CJK font on this machine (Debian's fonts-noto-cjk, found through fc-list, or
NJ_CJK_FONT naming a font file; NJ_CJK_FONT="" means none), choosing its Simplified Chinese face
in a collection, and cutting a subset of it to the characters a report uses (fontTools): an
@font-face rule with the subset inline for an HTML report, and a matplotlib FontProperties over a
subset file for its plots. Without a CJK font a report is still written, with a warning: Chinese
text then shows in whatever font the reader's machine has, or as boxes.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

FAMILY = "NengjianCJK"
KNOWN = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
         "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
ASCII = "".join(chr(i) for i in range(32, 127))
MISSING = ("no CJK font on this machine (install fonts-noto-cjk: `make browser` or apt-get install "
           "fonts-noto-cjk): Chinese in the report shows only where the reader has a CJK font / "
           "本机没有中文字体（请安装 fonts-noto-cjk），报告中的中文在没有中文字体的电脑上会显示为方框")


class NoCJKFont(UserWarning):
    """No CJK font was found: the report is written without one."""


@lru_cache(maxsize=None)
def find() -> str | None:
    """Path of the CJK font file to embed, or None."""
    forced = os.environ.get("NJ_CJK_FONT")
    if forced is not None:
        return forced if forced and Path(forced).is_file() else None
    found: list[str] = []
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        found = sorted({line.split(":")[0].strip() for line in out.splitlines() if line.strip()})
    # Regular sans first (the report's body face); any CJK face beats none.
    found.sort(key=lambda p: ("Regular" not in p, "Sans" not in p, "Noto" not in p, p))
    for p in list(found) + list(KNOWN):
        if Path(p).is_file() and Path(p).suffix.lower() in (".ttc", ".otf", ".ttf", ".otc"):
            return p
    return None


def warn_missing() -> None:
    warnings.warn(MISSING, NoCJKFont, stacklevel=3)


def _face_number(path: str) -> int:
    """The Simplified Chinese face of a collection (Noto's SC), else its first face."""
    if Path(path).suffix.lower() not in (".ttc", ".otc"):
        return -1
    from fontTools.ttLib import TTCollection

    coll = TTCollection(path, lazy=True)
    for i, f in enumerate(coll.fonts):
        if " SC" in (f["name"].getDebugName(1) or "") and "Mono" not in (f["name"].getDebugName(1) or ""):
            return i
    return 0


@lru_cache(maxsize=32)
def subset(path: str, chars: frozenset) -> bytes:
    """An OpenType font of `path`'s SC face holding only `chars` (and ASCII)."""
    from fontTools import subset as fsub
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=_face_number(path))
    opts = fsub.Options()
    opts.name_IDs = ["*"]
    opts.notdef_outline = True
    opts.hinting = False
    opts.layout_features = ["*"]
    sub = fsub.Subsetter(opts)
    sub.populate(text="".join(sorted(chars | set(ASCII))))
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    return buf.getvalue()


def _wide(text: str) -> frozenset:
    return frozenset(c for c in text if ord(c) > 126)


def css(text: str) -> str:
    """An @font-face rule embedding the subset for `text` (family FAMILY); "" and a warning without a font."""
    path = find()
    if path is None:
        warn_missing()
        return ""
    data = subset(path, _wide(text))
    return "@font-face{font-family:%s;src:url(data:font/otf;base64,%s) format('opentype')}" % (
        FAMILY, base64.b64encode(data).decode())


_FILES: dict[frozenset, str] = {}


def plot_font(text: str):
    """matplotlib FontProperties of a subset holding `text`, or None (and a warning) without a font."""
    path = find()
    if path is None:
        warn_missing()
        return None
    from matplotlib.font_manager import FontProperties

    key = _wide(text)
    if key not in _FILES:
        fd, name = tempfile.mkstemp(prefix="nengjian-cjk-", suffix=".otf")
        with os.fdopen(fd, "wb") as f:
            f.write(subset(path, key))
        _FILES[key] = name
        atexit.register(_remove, name)
    return FontProperties(fname=_FILES[key])


def _remove(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)
