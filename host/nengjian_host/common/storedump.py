"""Decode a gateway's record store on the host: from a pulled store directory or a raw flash image.

Owns the host's reading of the store format (docs/STORE.md). It is written independently of the
firmware's nengjian.store (record framing with struct and zlib, payloads with cbor2) so that each
side checks the other. Used by the `nengjian pull` and ledger commands and on its own:

    python -m nengjian_host.common.storedump data.img --json out.json
    python -m nengjian_host.common.storedump flash.bin --offset 0x400000 --size 0x400000 --csv out.csv
    python -m nengjian_host.common.storedump ./pulled/store --cursors

API
---
    src = open_source(path, offset=0, size=None, block_size=4096)   # directory or image
    for rec in iter_records(src): ...    # dicts: seq, ring, kind, segment, fields
    cursors(src)                         # {"city": 1234, "prov": None (damaged)}
    scan_report(src)                     # per segment: records, seq range, damaged bytes
    write_csv(records, f) / write_json(records, f)

A record dict is {"seq": int or None, "ring": "main" | "raw" | "history", "kind": "VALUE", ...,
"segment": "s03.seg", "fields": {...}}; field names follow nengjian.core.records (values are
decimal.Decimal). VALUEs folded into history come back one dict per value with seq None and ts None.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import decimal
import json
import re
import struct
import sys
import zlib
from pathlib import Path
from typing import IO, Iterable, Iterator

import cbor2

from nengjian_host.common.messages import msg, t

MAGIC = 0xA5
HEAD = struct.Struct("<BHI")  # magic, payload length, seq
CRC = struct.Struct("<I")
MAX_PAYLOAD = 1024

KINDS = {1: "READING", 2: "VALUE", 3: "EVENT", 16: "HISTORY"}
FIELDS = {
    "READING": ("ts", "meter", "point", "value", "quality"),
    "VALUE": ("ts", "code", "statType", "statStart", "value", "valid", "inputType", "scope", "quality"),
    "EVENT": ("ts", "event", "text", "event_code"),  # the code names the text's template (gatewaytext)
    "HISTORY": ("start", "code", "statType", "step", "exponent", "inputType", "scope", "deltas", "invalid"),
}
RINGS = {"s": "main", "r": "raw", "h": "history"}
_SEG = re.compile(r"^([srh])(\d+)\.seg$")
CST = datetime.timezone(datetime.timedelta(hours=8))


class StoreFormatError(ValueError):
    pass


# ---- sources
class DirSource:
    """A store directory pulled from a gateway (or written by the firmware under CPython)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = str(self.path)

    def files(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.is_file())

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()


class ImageSource:
    """The store directory inside a littlefs image (a data partition, or a merged flash file at an
    offset), read with littlefs-python on a copy of the bytes."""

    def __init__(self, data: bytes, block_size: int = 4096, block_count: int = 0, root: str | None = None,
                 name: str = "image"):
        from littlefs import LittleFS, UserContext

        if not block_count:
            block_count = superblock_block_count(data, block_size) or len(data) // block_size
        if block_count * block_size > len(data):
            raise StoreFormatError(msg("storedump.image_short", n=len(data), blocks=block_count, size=block_size))
        buf = bytearray(data[:block_count * block_size])
        self.fs = LittleFS(context=UserContext(buffer=buf), block_size=block_size, block_count=block_count,
                           mount=False)
        try:
            self.fs.mount()
        except Exception as e:  # littlefs-python raises its own LittleFSError
            raise StoreFormatError(msg("storedump.not_littlefs", name=name, size=block_size, reason=e)) from e
        self.root = root if root is not None else _find_root(self.fs)
        self.name = name

    def files(self) -> list[str]:
        return sorted(n for n in self.fs.listdir(self.root) if self.fs.stat(f"{self.root}/{n}").type == 1)

    def read(self, name: str) -> bytes:
        with self.fs.open(f"{self.root}/{name}", "rb") as f:
            return f.read()


def _looks_like_store(names: Iterable[str]) -> bool:
    return any(_SEG.match(n) or n.startswith("c-") for n in names)


def _find_root(fs) -> str:
    """The app keeps its store in `store/` of the data partition; otherwise take the first directory
    (depth two at most) that holds segment or cursor files."""
    cands = ["/store", "/data/store", "/"]
    for top in fs.listdir("/"):
        cands.append("/" + top)
        try:
            cands.extend(f"/{top}/{sub}" for sub in fs.listdir("/" + top))
        except Exception:  # a file, not a directory
            pass
    for cand in cands:
        try:
            names = fs.listdir(cand)
        except Exception:
            continue
        if _looks_like_store(names):
            return cand.rstrip("/")
    raise StoreFormatError(msg("storedump.no_store"))


def superblock_block_count(data: bytes, block_size: int) -> int:
    """Block count written in the littlefs superblock at the start of `data`, or 0 if not found."""
    for block in (0, 1):
        base = block * block_size
        if data[base + 8:base + 16] == b"littlefs":
            # revision (4), tag (4), "littlefs" (8), tag (4), then version, block_size, block_count (u32 le)
            _version, bsize, count = struct.unpack_from("<III", data, base + 20)
            if bsize == block_size and count:
                return count
    return 0


def open_source(source, offset: int = 0, size: int | None = None, block_size: int = 4096,
                root: str | None = None):
    """A store to read: a directory (the store itself, or one holding `store/`), or a littlefs image
    file, optionally at `offset` inside a larger flash dump and `size` bytes long."""
    if isinstance(source, (DirSource, ImageSource)):
        return source
    path = Path(source)
    if path.is_dir():
        if not _looks_like_store(p.name for p in path.iterdir()) and (path / "store").is_dir():
            path = path / "store"
        return DirSource(path)
    data = path.read_bytes()
    data = data[offset:offset + size] if size else data[offset:]
    count = size // block_size if size else 0
    return ImageSource(data, block_size, count, root, name=str(path))


# ---- framing
def iter_frames(data: bytes, ordered: bool = True, problems: list | None = None, where: str = ""):
    """(seq, payload bytes) of each whole record in a segment file; damage is skipped (and noted)."""
    pos = 0
    prev = 0
    end = len(data)
    while pos < end:
        got = _frame_at(data, pos)
        if got and (not ordered or got[0] > prev):
            seq, payload, n = got
            yield seq, payload
            if ordered:
                prev = seq
            pos += n
            continue
        nxt = pos + 1
        while True:
            nxt = data.find(b"\xa5", nxt)
            if nxt < 0:
                break
            g = _frame_at(data, nxt)
            if g and (not ordered or g[0] > prev):
                break
            nxt += 1
        if problems is not None:
            problems.append({"segment": where, "offset": pos, "bytes": (nxt if nxt >= 0 else end) - pos,
                             "after_seq": prev, "tail": nxt < 0})
        if nxt < 0:
            return
        pos = nxt


def _frame_at(data: bytes, pos: int):
    if pos + HEAD.size + CRC.size > len(data):
        return None
    magic, length, seq = HEAD.unpack_from(data, pos)
    if magic != MAGIC or length > MAX_PAYLOAD:
        return None
    end = pos + HEAD.size + length
    if end + CRC.size > len(data):
        return None
    if zlib.crc32(data[pos + 1:end]) != CRC.unpack_from(data, end)[0]:
        return None
    return seq, data[pos + HEAD.size:end], end + CRC.size - pos


def _unzigzag(b: bytes) -> list[int]:
    out, z, shift = [], 0, 0
    for c in b:
        z |= (c & 0x7F) << shift
        if c & 0x80:
            shift += 7
            continue
        out.append((z >> 1) ^ -(z & 1))
        z, shift = 0, 0
    return out


# ---- records
def _named(kind: str, items: list) -> dict:
    names = FIELDS.get(kind)
    if names is None:
        return {f"f{i}": v for i, v in enumerate(items)}
    out = dict(zip(names, items))
    for i, v in enumerate(items[len(names):], len(names)):
        out[f"f{i}"] = v
    return out


def _segments(src) -> list[tuple[str, str, int]]:
    out = []
    for name in src.files():
        m = _SEG.match(name)
        if m:
            out.append((RINGS[m.group(1)], name, int(m.group(2))))
    return out


def _decode(payload: bytes):
    try:
        return cbor2.loads(payload)
    except Exception:  # cbor2 raises several types for bad input
        return None


def iter_records(source, history: bool = True, dedupe: bool = True, problems: list | None = None) -> Iterator[dict]:
    """Every whole record: history first (oldest data), then the main and raw rings merged in seq
    order. With dedupe, main-ring records already folded into history (a fold whose segments were not
    yet released at a power cut) are left out."""
    src = open_source(source)
    hist: list[dict] = []
    live: list[dict] = []
    hist_upto = 0
    for ring, name, _i in _segments(src):
        data = src.read(name)
        for seq, payload in iter_frames(data, ordered=ring != "history", problems=problems, where=name):
            rec = _decode(payload)
            if not isinstance(rec, list) or not rec:
                if problems is not None:
                    problems.append({"segment": name, "seq": seq, "undecodable": True})
                continue
            kind = KINDS.get(rec[0], f"KIND{rec[0]}")
            d = {"seq": seq, "ring": ring, "kind": kind, "segment": name, "fields": _named(kind, rec[1:])}
            if ring == "history":
                hist_upto = max(hist_upto, seq)
                hist.append(d)
            else:
                live.append(d)
    if history:
        for d in _history_in_order(hist):
            if d["kind"] == "HISTORY":
                yield from _expand(d)
            else:
                yield d
    live.sort(key=lambda d: d["seq"])
    for d in live:
        if dedupe and d["ring"] == "main" and d["seq"] <= hist_upto:
            continue
        yield d


def _history_in_order(hist: list[dict]) -> list[dict]:
    """History segments were filled in turn and every fold's seqs lie above the last one's: order the
    segments by their highest seq, keep each one's own order (runs and copies of a fold interleave)."""
    by_seg: dict[str, list[dict]] = {}
    for d in hist:
        by_seg.setdefault(d["segment"], []).append(d)
    order = sorted(by_seg, key=lambda s: max(d["seq"] for d in by_seg[s]))
    return [d for s in order for d in by_seg[s]]


def _expand(d: dict) -> Iterator[dict]:
    f = d["fields"]
    m = 0
    invalid = set(f["invalid"])
    for i, dv in enumerate(_unzigzag(f["deltas"])):
        m += dv
        yield {"seq": None, "ring": "history", "kind": "VALUE", "segment": d["segment"], "run_seq": d["seq"],
               "fields": {"ts": None, "code": f["code"], "statType": f["statType"],
                          "statStart": f["start"] + i * f["step"],
                          "value": decimal.Decimal(m).scaleb(f["exponent"]), "valid": i not in invalid,
                          "inputType": f["inputType"], "scope": f["scope"]}}


def cursors(source) -> dict:
    """Each destination's acknowledged seq as saved on flash (None when the file is damaged)."""
    src = open_source(source)
    out = {}
    for name in src.files():
        if not name.startswith("c-") or name.endswith(".new"):
            continue
        text = src.read(name).decode("ascii", "replace").split()
        try:
            seq = int(text[0])
            ok = zlib.crc32(text[0].encode()) == int(text[1])
        except (IndexError, ValueError):
            ok = False
        out[name[2:]] = seq if ok else None
    return out


def scan_report(source) -> dict:
    """Per segment file: ring, records, seq range and bytes; plus damage found."""
    src = open_source(source)
    problems: list = []
    segs = []
    for ring, name, _i in _segments(src):
        data = src.read(name)
        seqs = [s for s, _p in iter_frames(data, ordered=ring != "history", problems=problems, where=name)]
        segs.append({"segment": name, "ring": ring, "bytes": len(data), "records": len(seqs),
                     "first": min(seqs) if seqs else None, "last": max(seqs) if seqs else None})
    return {"segments": segs, "problems": problems, "cursors": cursors(src)}


# ---- export
def _cst(ts) -> str:
    if not isinstance(ts, int):
        return ""
    return datetime.datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")


def _plain(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def to_row(d: dict) -> dict:
    row = {"seq": d["seq"], "ring": d["ring"], "kind": d["kind"]}
    for k, v in d["fields"].items():
        row[k] = _plain(v)
    for k in ("ts", "statStart"):
        if k in row:
            row[k + "_cst"] = _cst(row[k])
    return row


COLUMNS = ["seq", "ring", "kind", "ts", "ts_cst", "code", "statType", "statStart", "statStart_cst", "value",
           "valid", "inputType", "scope", "meter", "point", "quality", "event", "text"]


def write_csv(records: Iterable[dict], f: IO[str]) -> int:
    rows = [to_row(d) for d in records]
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    w = csv.DictWriter(f, fieldnames=COLUMNS + extra, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return len(rows)


def write_json(records: Iterable[dict], f: IO[str], cursors_: dict | None = None) -> int:
    rows = [to_row(d) for d in records]
    json.dump({"records": rows, "cursors": cursors_ or {}}, f, ensure_ascii=False, indent=1)
    f.write("\n")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nengjian_host.common.storedump", description=t("help.storedump.desc"))
    ap.add_argument("source", help=t("help.storedump.source"))
    ap.add_argument("--offset", type=lambda s: int(s, 0), default=0, help=t("help.storedump.offset"))
    ap.add_argument("--size", type=lambda s: int(s, 0), default=None, help=t("help.storedump.size"))
    ap.add_argument("--block-size", type=lambda s: int(s, 0), default=4096, help=t("help.storedump.block_size"))
    ap.add_argument("--csv", help=t("help.storedump.csv"))
    ap.add_argument("--json", help=t("help.storedump.json"))
    ap.add_argument("--cursors", action="store_true", help=t("help.storedump.cursors"))
    ap.add_argument("--report", action="store_true", help=t("help.storedump.report"))
    ap.add_argument("--no-history", action="store_true", help=t("help.storedump.no_history"))
    a = ap.parse_args(argv)
    try:
        src = open_source(a.source, a.offset, a.size, a.block_size)
    except (OSError, StoreFormatError) as e:
        print(t("storedump.failed", reason=e), file=sys.stderr)
        return 2
    recs = list(iter_records(src, history=not a.no_history))
    for target, writer in ((a.csv, write_csv), (a.json, write_json)):
        if not target:
            continue
        if target == "-":
            writer(recs, sys.stdout) if writer is write_csv else writer(recs, sys.stdout, cursors(src))
        else:
            with open(target, "w", encoding="utf-8", newline="") as f:
                writer(recs, f) if writer is write_csv else writer(recs, f, cursors(src))
    if a.cursors:
        print(json.dumps(cursors(src)))
    if a.report:
        print(json.dumps(scan_report(src), indent=1, default=str))
    if not (a.csv or a.json or a.cursors or a.report):
        print(t("storedump.summary", n=len(recs), cursors=json.dumps(cursors(src))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
