"""The pages and the text of a PDF that headless Chromium printed, for tests that check a report's PDF
without a PDF library: pages counted from the page tree, text read from each page's content streams
through its fonts' ToUnicode maps (Skia writes CJK faces as Type3 fonts with one-byte codes and others
as Type0 with two-byte codes; both carry ToUnicode). Enough for Chromium's output, not a PDF parser."""

from __future__ import annotations

import re
import zlib

_OBJ = re.compile(rb"(\d+) 0 obj\s*(.*?)endobj", re.S)
_REF = rb"(\d+) 0 R"


class Pdf:
    def __init__(self, data: bytes):
        if not data.startswith(b"%PDF-"):
            raise ValueError("not a PDF: it starts with %r" % data[:8])
        self.objs = {int(m[1]): m[2] for m in _OBJ.finditer(data)}

    def head(self, n: int) -> bytes:
        return self.objs[n].split(b"stream", 1)[0]

    def stream(self, n: int) -> bytes:
        body = self.objs[n]
        raw = body.split(b"stream", 1)[1].lstrip(b"\r\n").rsplit(b"endstream", 1)[0]
        return zlib.decompress(raw) if b"/FlateDecode" in self.head(n) else raw

    def pages(self) -> list[int]:
        return [n for n in sorted(self.objs) if re.search(rb"/Type\s*/Page\b(?!s)", self.head(n))]

    def images(self) -> int:
        """Image XObjects (a picture with transparency counts twice: Skia writes its alpha as a soft mask)."""
        return sum(1 for n in self.objs if re.search(rb"/Subtype\s*/Image\b", self.head(n)))

    def font_families(self) -> set[str]:
        return {m.decode("latin-1") for n in self.objs
                for m in re.findall(rb"/FontFamily\s*\(([^)]*)\)", self.head(n))}

    def _fonts(self, page: int) -> dict[bytes, tuple[int, dict[bytes, str]]]:
        """The page's font names -> (bytes per code, code -> text)."""
        m = re.search(rb"/Font\s*<<(.*?)>>", self.head(page), re.S)
        out = {}
        for name, ref in re.findall(rb"/(\w+)\s+" + _REF, m[1] if m else b""):
            head = self.head(int(ref))
            width = 2 if b"/Type0" in head else 1
            tu = re.search(rb"/ToUnicode\s+" + _REF, head)
            out[name] = (width, _cmap(self.stream(int(tu[1]))) if tu else {})
        return out

    def page_text(self, page: int) -> str:
        fonts = self._fonts(page)
        contents = re.search(rb"/Contents\s+" + _REF, self.head(page))
        content = self.stream(int(contents[1])) if contents else b""
        out, font = [], (1, {})
        for tok in re.finditer(rb"/(\w+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f\s]*)>|\(((?:\\.|[^\\)])*)\)|(T\*|ET|Td|TD|')",
                               content, re.S):
            if tok[1]:
                font = fonts.get(tok[1], (1, {}))
            elif tok[2] is not None:
                out.append(_decode(bytes.fromhex(tok[2].decode()), font))
            elif tok[3] is not None:
                out.append(_decode(_literal(tok[3]), font))
            else:
                out.append("\n" if tok[4] in (b"ET", b"T*", b"'") else "")
        return "".join(out)

    def text(self) -> str:
        return "\n".join(self.page_text(p) for p in self.pages())


def _cmap(data: bytes) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[bytes.fromhex(src.decode())] = bytes.fromhex(dst.decode()).decode("utf-16-be", "replace")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f]+>|\[[^\]]*\])", block):
            a, b, w = int(lo, 16), int(hi, 16), len(lo) // 2
            targets = [bytes.fromhex(x.decode()) for x in re.findall(rb"<([0-9A-Fa-f]+)>", dst)]
            for i, code in enumerate(range(a, b + 1)):
                if dst.startswith(b"["):
                    text = targets[i].decode("utf-16-be", "replace") if i < len(targets) else ""
                else:
                    base = int.from_bytes(targets[0], "big") + i
                    text = base.to_bytes(len(targets[0]), "big").decode("utf-16-be", "replace")
                out[code.to_bytes(w, "big")] = text
    return out


def _literal(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(raw):
        c = raw[i]
        if c == 92 and i + 1 < len(raw):  # backslash
            nxt = raw[i + 1:i + 4]
            m = re.match(rb"[0-7]{1,3}", nxt)
            if m:
                out.append(int(m[0], 8) & 0xFF)
                i += 1 + len(m[0])
                continue
            out += {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(raw[i + 1:i + 2],
                                                                                      raw[i + 1:i + 2])
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def _decode(codes: bytes, font: tuple[int, dict[bytes, str]]) -> str:
    width, cmap = font
    return "".join(cmap.get(codes[i:i + width], "") for i in range(0, len(codes) - width + 1, width))
