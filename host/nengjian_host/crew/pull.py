"""`nengjian pull`: copy a gateway's store, session files and config to the crew's laptop, verified,
then decode the records and export them as JSON and CSV.

Sources: a running gateway's USB console (nengjian_host.common.device.Console), or a flash dump
(`esptool read-flash` output: the whole flash with the partition table at 0x8000, or the data
partition alone), or the sim board's data.img.

Why the line console and not mpremote
-------------------------------------
mpremote works through the raw REPL, so it has to stop the application with Ctrl-C: readings stop
until someone restarts the gateway, and on the sim board (the unix port has no soft reset) the
process has to be booted again from outside. The console's `get`/`sha256` commands run beside the
application (polling and delivery go on), answer in short base64 lines with a crc32 each (a
damaged line is noticed at once), and the same bytes travel over an ESP32's USB CDC, a USB-UART
bridge and the sim's pty. `files` flushes the store first, so the copy holds every record taken.
mpremote (`fs cp`, `sha256sum`) still works on a stopped gateway: see docs/RIG.md.

What arrives is checked twice: every chunk's crc32, then each file's sha256 against the one the
gateway computes with its own hashlib over the same bytes. Store segments grow while the gateway
runs; a file is copied up to the size listed when the pull began, and re-copied if the gateway
rewrote it meanwhile.

Nothing half-written: files go to DIR/.partial-<gateway>/ (file.part, then renamed when verified),
and the finished pull is renamed to DIR/<gateway>-<UTC time>/ in one step. A pull that stops
(cable pulled, gateway reset) leaves only the .partial directory; the same command again resumes:
verified files whose hash still matches are kept, a partly copied file continues where it stopped
when its prefix still hashes the same on the gateway.

A pull directory:
    manifest.json    gateway, firmware, source, time; every file with size, kind and sha256
    store/           the store directory of the data volume (segments, cursors)
    session/         the platform session files
    config/          the site config
    records.json     {"records": [...], "cursors": {...}} decoded by nengjian_host.common.storedump
    records.csv      the same records, one row each
    cursors.json     each destination's acknowledgement cursor

`nengjian ledger DIR` and `python -m nengjian_host.common.storedump DIR/store` read a pull directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import struct
from pathlib import Path

from nengjian_host.common.device import Console, DeviceError, DeviceGone

WINDOW = 16384  # bytes asked for per `get`: 43 answer lines
ATTEMPTS = 3


class PullError(RuntimeError):
    """A pull that cannot go on for a reason other than the gateway going away (bad input, bad dump)."""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name or "gateway").strip("-") or "gateway"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(65536), b""):
            h.update(block)
    return h.hexdigest()


def local_name(path: str, kind: str) -> str:
    """Where a gateway file lands in a pull: <kind>/<name>."""
    return "%s/%s" % (kind, path.rstrip("/").rsplit("/", 1)[-1])


class _NoProgress:
    def add(self, name: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class RichProgress(_NoProgress):
    """One bar over all bytes of the pull, naming the file being copied."""

    def __init__(self, total: int, console=None):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          TimeRemainingColumn(), console=console, transient=False)
        self.task = self.p.add_task("pull", total=total)

    def __enter__(self):
        self.p.start()
        return self

    def __exit__(self, *exc):
        self.p.stop()

    def add(self, name: str, total: int) -> None:
        self.p.update(self.task, description=name)

    def advance(self, n: int) -> None:
        self.p.advance(self.task, n)

    def note(self, text: str) -> None:
        self.p.console.print(text)


def pull_console(con: Console, out: Path, progress: bool = True, decode: bool = True, rich_console=None) -> Path:
    """Copy everything a pull takes from a gateway's console into a new directory under `out`;
    returns it. DeviceGone if the gateway goes away (the partial directory is kept for a retry)."""
    st = con.status()
    gid = st.get("gateway_id") or "gateway"
    files, _end = con.files()
    out = Path(out)
    part = out / (".partial-%s" % _safe(gid))
    part.mkdir(parents=True, exist_ok=True)
    # What an earlier, broken-off pull left of files the gateway no longer has does not belong here.
    wanted = {local_name(f["path"], f["kind"]) for f in files}
    for old in part.rglob("*"):
        rel = old.relative_to(part).as_posix()
        if old.is_file() and rel.removesuffix(".part") not in wanted:
            old.unlink()
    total = sum(f["size"] for f in files)
    bar = RichProgress(total, rich_console) if progress else _NoProgress()
    got = []
    if progress:
        bar.__enter__()
    try:
        for f in files:
            rel = local_name(f["path"], f["kind"])
            bar.add(rel, f["size"])
            try:
                size, digest = _pull_file(con, f["path"], f["size"], part / rel, bar)
            except DeviceError as e:
                if "ENOENT" not in str(e):
                    raise
                # The store released this segment while we copied others: its records went on into
                # history or were delivered; what is left on the gateway is what we copy.
                bar.note("%s is gone from the gateway (released by the store meanwhile)" % f["path"])
                continue
            got.append({"path": f["path"], "file": rel, "kind": f["kind"], "size": size, "sha256": digest})
    finally:
        if progress:
            bar.__exit__(None, None, None)
    manifest = {"gateway_id": gid, "firmware": st.get("firmware"), "board": st.get("board"),
                "source": "console:%s" % con.port, "pulled_at": _now_iso(), "gateway_time": st.get("time"),
                "files": got}
    return _finish(part, out, gid, manifest, decode)


def _pull_file(con: Console, path: str, size: int, local: Path, bar) -> tuple[int, str]:
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(local.name + ".part")
    if local.exists():
        # Verified by an earlier attempt: keep it if the gateway still has the same bytes; if the file
        # grew since (a store segment), continue from it.
        if local.stat().st_size == size:
            mine = _sha256_file(local)
            if con.sha256_of(path, size)[0] == mine:
                bar.advance(size)
                return size, mine
        os.replace(local, tmp)
    for _attempt in range(ATTEMPTS):
        have = tmp.stat().st_size if tmp.exists() else 0
        if have > size or (have and con.sha256_of(path, have)[0] != _sha256_file(tmp)):
            have = 0  # the gateway rewrote the file: start it again
        bar.advance(have)
        with open(tmp, "ab" if have else "wb") as fh:
            while have < size:
                data, now_size = con.get_range(path, have, min(WINDOW, size - have))
                if not data:
                    break  # the file shrank under us (rewritten): checked below
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
                have += len(data)
                bar.advance(len(data))
        mine = _sha256_file(tmp)
        theirs, n = con.sha256_of(path, size)
        if n == size and theirs == mine and have == size:
            os.replace(tmp, local)
            return size, mine
        bar.note("%s changed on the gateway while it was copied: copying it again" % path)
        tmp.unlink()
        bar.advance(-have)
        # Take the file as it is now.
        _data, size = con.get_range(path, 0, 0)
    raise DeviceGone("%s kept changing on the gateway while it was copied (%d attempts)" % (path, ATTEMPTS))


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finish(part: Path, out: Path, gid: str, manifest: dict, decode: bool) -> Path:
    """Decode, export, write the manifest, then move the pull into place in one rename."""
    if decode:
        manifest["decoded"] = export_records(part, gid)
    (part / "manifest.json").write_text(json.dumps(manifest, indent=2))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    final = out / ("%s-%s" % (_safe(gid), stamp))
    n = 1
    while final.exists():
        n += 1
        final = out / ("%s-%s-%d" % (_safe(gid), stamp, n))
    os.replace(part, final)
    return final


# ---- decoding and export
def export_records(pull_dir: Path, gid: str) -> dict:
    """records.json, records.csv and cursors.json from store/ with the store decoder (the same
    row format `python -m nengjian_host.common.storedump` writes, which `nengjian ledger` reads)."""
    store = pull_dir / "store"
    try:
        from nengjian_host.common import storedump
    except ImportError:
        return {"ok": False, "reason": "nengjian_host.common.storedump is not in this checkout: files copied, not decoded"}
    if not store.is_dir():
        return {"ok": False, "reason": "no store files on the gateway"}
    problems: list = []
    recs = list(storedump.iter_records(str(store), problems=problems))
    cursors = storedump.cursors(str(store))
    for name, writer in (("records.json", lambda f: storedump.write_json(recs, f, cursors)),
                         ("records.csv", lambda f: storedump.write_csv(recs, f))):
        tmp = pull_dir / (name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer(f)
        os.replace(tmp, pull_dir / name)
    (pull_dir / "cursors.json").write_text(json.dumps(cursors, indent=2))
    kinds: dict = {}
    for r in recs:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    return {"ok": True, "records": len(recs), "kinds": kinds, "cursors": cursors, "problems": len(problems)}


# ---- flash dumps
PT_OFFSET = 0x8000
PT_ENTRY = struct.Struct("<2sBBLL16sL")
BLOCK = 4096


def partitions(image: bytes, offset: int = PT_OFFSET) -> list[dict]:
    """The ESP-IDF partition table of a whole-flash dump ([] if there is none at offset)."""
    out = []
    pos = offset
    while pos + PT_ENTRY.size <= len(image):
        magic, ptype, sub, off, size, label, flags = PT_ENTRY.unpack_from(image, pos)
        if magic != b"\xaa\x50":
            break
        out.append({"label": label.rstrip(b"\0").decode("ascii", "replace"), "type": ptype, "subtype": sub,
                    "offset": off, "size": size, "encrypted": bool(flags & 1)})
        pos += PT_ENTRY.size
    return out


def _mount_lfs(blob: bytes):
    """A littlefs-python filesystem over blob, or None if it is not littlefs (MicroPython's sizes)."""
    from littlefs import LittleFS, UserContext

    if len(blob) < 2 * BLOCK or len(blob) % BLOCK:
        return None
    try:
        fs = LittleFS(context=UserContext(buffer=bytearray(blob)), block_size=BLOCK, block_count=len(blob) // BLOCK,
                      read_size=32, prog_size=32, lookahead_size=32, mount=False)
        fs.mount()
        return fs
    except Exception:  # littlefs-python raises its own LittleFSError on a blank or foreign volume
        return None


def _lfs_files(fs) -> dict[str, bytes]:
    """{"store/<name>" | "session/<name>" | "config/<name>": bytes} found on a littlefs volume."""
    found: dict[str, bytes] = {}

    def read(p):
        with fs.open(p, "rb") as f:
            return f.read()

    def names(d):
        try:
            return fs.listdir(d)
        except Exception:  # no such directory on this volume
            return []

    for name in names("/store"):
        if fs.stat("/store/" + name).type == 1:
            found["store/" + name] = read("/store/" + name)
    for name in names("/"):
        if name.startswith("session-") and name.endswith(".json"):
            found["session/" + name] = read("/" + name)
    for name in names("/config"):
        if name.endswith(".json"):
            found["config/" + name] = read("/config/" + name)
    return found


def read_dump(path: Path) -> tuple[dict[str, bytes], str]:
    """(files, description) from a flash dump or a bare littlefs image."""
    blob = Path(path).read_bytes()
    table = partitions(blob)
    files: dict[str, bytes] = {}
    if table:
        used = []
        for p in table:
            if p["type"] != 1 or p["offset"] + p["size"] > len(blob):
                continue
            if p["encrypted"]:
                raise PullError("partition %s is encrypted: decrypt the dump with espsecure first" % p["label"])
            fs = _mount_lfs(blob[p["offset"]:p["offset"] + p["size"]])
            if fs is None:
                continue
            got = _lfs_files(fs)
            if got:
                files.update(got)
                used.append(p["label"])
        if not files:
            raise PullError("%s: none of the partitions %s holds a littlefs volume with gateway files" % (
                path, ", ".join(p["label"] for p in table)))
        return files, "flash dump (partitions %s)" % ", ".join(used)
    fs = _mount_lfs(blob)
    if fs is None:
        raise PullError("%s is neither a whole-flash dump (no partition table at 0x8000) nor a littlefs "
                        "image (dump just the data partition: esptool read-flash 0x400000 0x400000 FILE)" % path)
    files = _lfs_files(fs)
    if not files:
        raise PullError("%s: a littlefs volume without gateway files" % path)
    return files, "littlefs image"


def pull_dump(dump: Path, out: Path, decode: bool = True, gateway: str | None = None) -> Path:
    files, what = read_dump(dump)
    gid = gateway or _safe(Path(dump).stem)
    out = Path(out)
    part = out / (".partial-%s" % _safe(gid))
    if part.exists():
        shutil.rmtree(part)
    got = []
    for rel, data in sorted(files.items()):
        dest = part / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        kind, _, name = rel.partition("/")
        got.append({"path": rel, "file": rel, "kind": kind, "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {"gateway_id": gid, "source": "%s: %s" % (what, dump), "pulled_at": _now_iso(), "files": got}
    return _finish(part, out, gid, manifest, decode)


def pull_gateway(port_spec: str | None, out: Path, baud: int = 115200, timeout: float = 20.0, decode: bool = True,
                 progress: bool = False) -> Path:
    """pull_console() from the gateway `port_spec` names (device.resolve_port); the new pull directory.
    PortNotFound when there is no such gateway, DeviceGone when it goes away (what was verified so far
    is kept for the next attempt), DeviceError when it refuses."""
    from nengjian_host.common.device import resolve_port

    port = resolve_port(port_spec)
    with Console(port, baud=baud, timeout=timeout) as con:
        return pull_console(con, Path(out), progress=progress, decode=decode)


def summary(final: Path) -> tuple[dict, list[str]]:
    """(the manifest of a finished pull, what it holds in lines for a person)."""
    manifest = json.loads((Path(final) / "manifest.json").read_text())
    dec = manifest.get("decoded") or {}
    lines = ["pulled %d file(s) (%d bytes, each checked by sha256) from %s into %s" % (
        len(manifest["files"]), sum(f["size"] for f in manifest["files"]), manifest["source"], final)]
    if dec.get("ok"):
        lines.append("decoded %d record(s): %s -> records.json, records.csv, cursors.json" % (
            dec["records"], ", ".join("%s %d" % kv for kv in sorted(dec["kinds"].items()))))
    elif dec:
        lines.append("not decoded: %s" % dec.get("reason"))
    return manifest, lines
