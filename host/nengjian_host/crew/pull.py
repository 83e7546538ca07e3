"""`nengjian pull`: copy a gateway's store and config (secrets left behind) to the crew's laptop, verified,
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

A pull directory (0700, every file in it 0600: the records and the config describe a regulated site):
    manifest.json    gateway, firmware, source, time; every file with size, kind and sha256; what was
                     skipped and why; the config fields that were blanked
    store/           the store directory of the data volume (segments, cursors)
    config/          the site config, its secrets (platform PIN, SIM PIN) replaced by "<redacted>"
    records.json     {"records": [...], "cursors": {...}} decoded by nengjian_host.common.storedump
    records.csv      the same records, one row each
    cursors.json     each destination's acknowledgement cursor
    quality.json     the gateway's own data-quality score per destination, as its console `status`
                     answered when the pull began (a console pull of firmware that keeps one): what
                     `nengjian ledger` shows beside the figures it computes from the records
    status.json      each meter's and destination's last success and last error (with its code) as the
                     console `status` answered when the pull began: the ledger's table of them at the pull

`nengjian ledger DIR` and `python -m nengjian_host.common.storedump DIR/store` read a pull directory.

Secrets stay on the gateway
---------------------------
The platform session files (`session-*.json`: deviceId and the SM4 secretKey the registration gave)
are listed by the gateway but not copied, from a console or a dump: nothing the crew does with a pull
needs them (the ledger and the records come from the store; a gateway registers again by itself), and
a copy on a laptop is a copy of the key. The config is copied with its secret fields blanked
(nengjian_host.common.private.redact); a config file that is not JSON is not copied, since what it
holds cannot be blanked.

Names from the gateway
----------------------
Local paths are built from what the gateway (or a dump) says: a file's kind and the last part of its
path. Each must be one plain name: no '..', no path separators of any system, no drive letter or other
colon, no NUL or control characters. A gateway that names one otherwise gets the whole pull refused
(UnsafeName) before anything is written, since it is broken or hostile.
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

from nengjian_host.common import private
from nengjian_host.common.device import Console, DeviceError, DeviceGone
from nengjian_host.common.messages import msg, t

WINDOW = 16384  # bytes asked for per `get`: 43 answer lines
ATTEMPTS = 3
CONFIG_MAX = 65536  # the console's `put` takes no larger config file
SKIPPED_KINDS = {"session": "platform session (holds the SM4 secretKey): stays on the gateway"}


class PullError(RuntimeError):
    """A pull that cannot go on for a reason other than the gateway going away (bad input, bad dump)."""


class UnsafeName(PullError):
    """The gateway (or a dump) named a file so that its copy would land outside the pull directory."""

    zh = "网关给出的文件名会写到拉取目录之外（含 ..、路径分隔符、盘符、冒号或控制字符）：整个拉取已拒绝，什么都没写"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name or "gateway").strip("-") or "gateway"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(65536), b""):
            h.update(block)
    return h.hexdigest()


def _plain_name(text, what: str) -> str:
    """`text` if it is one plain file name on every system the crew's laptop may run, else UnsafeName."""
    if not isinstance(text, str) or not text:
        raise UnsafeName(msg("err.pull.name_missing", what=what, name=text))
    bad = None
    if text in (".", ".."):
        bad = msg("err.pull.why.dots", name=text)
    elif "/" in text or "\\" in text:
        bad = msg("err.pull.why.separator")
    elif ":" in text:
        bad = msg("err.pull.why.colon")
    elif any(ord(c) < 32 or ord(c) == 127 for c in text):
        bad = msg("err.pull.why.control")
    elif text != text.strip() or text.endswith("."):
        bad = msg("err.pull.why.trailing")
    if bad:
        raise UnsafeName(msg("err.pull.unsafe_name", what=what, name=text, why=bad))
    return text


def local_name(path: str, kind: str) -> str:
    """Where a gateway file lands in a pull: <kind>/<name>, each a plain name (UnsafeName otherwise)."""
    if not isinstance(path, str):
        raise UnsafeName(msg("err.pull.no_path", path=path))
    return "%s/%s" % (_plain_name(kind, "kind"), _plain_name(path.rstrip("/").rsplit("/", 1)[-1], "name"))


def _check_listing(files) -> None:
    """Every entry of the gateway's `files` answer usable before anything is written: a plain kind and
    name, a path the console command line can carry, a size, and no two landing on one name."""
    seen: dict[str, str] = {}
    for f in files:
        path = f.get("path")
        rel = local_name(path, f.get("kind"))
        if any(c.isspace() or ord(c) < 32 for c in path):
            raise UnsafeName(msg("err.pull.path_spaces", path=path))
        size = f.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise PullError(msg("err.pull.size", path=path, size=size))
        if rel.lower() in seen:
            raise UnsafeName(msg("err.pull.same_name", first=seen[rel.lower()], second=path, local=rel))
        seen[rel.lower()] = path


def redact_config(data: bytes) -> tuple[bytes | None, list[str]]:
    """(what a pull keeps of a config file: JSON with its secret fields blanked, or None when it is not
    JSON and so cannot be blanked; the fields blanked)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeError, ValueError):
        return None, []
    clean, found = private.redact(doc)
    if not found:
        return data, []
    return (json.dumps(clean, indent=1, ensure_ascii=False) + "\n").encode(), found


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
    gid = st.get("gateway_id")
    gid = gid if isinstance(gid, str) and gid else "gateway"
    listed, _end = con.files()
    _check_listing(listed)
    skipped = [{"path": f["path"], "kind": f["kind"], "why": SKIPPED_KINDS[f["kind"]]}
               for f in listed if f["kind"] in SKIPPED_KINDS]
    files = [f for f in listed if f["kind"] not in SKIPPED_KINDS]
    out = Path(out)
    private.make_dir(out, tighten=False)
    part = private.make_dir(out / (".partial-%s" % _safe(gid)))
    # What an earlier, broken-off pull left of files the gateway no longer has does not belong here
    # (nor a session file an older version of this tool copied).
    wanted = {local_name(f["path"], f["kind"]) for f in files}
    for old in part.rglob("*"):
        rel = old.relative_to(part).as_posix()
        if old.is_file() and rel.removesuffix(".part") not in wanted:
            old.unlink()
    for old in sorted(part.rglob("*"), reverse=True):  # deepest first
        if old.is_dir() and not any(old.iterdir()):
            old.rmdir()
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
                if f["kind"] == "config":
                    entry = _pull_config(con, f["path"], f["size"], part / rel)
                    bar.advance(f["size"])
                    if entry.get("skipped"):
                        skipped.append({"path": f["path"], "kind": f["kind"], "why": entry["skipped"]})
                        continue
                    got.append(dict(entry, path=f["path"], file=rel, kind=f["kind"]))
                    continue
                size, digest = _pull_file(con, f["path"], f["size"], part / rel, bar)
            except DeviceError as e:
                if "ENOENT" not in str(e):
                    if f["kind"] != "config":
                        raise
                    # A gateway that keeps a config file to itself (secrets): its choice, not a failure.
                    skipped.append({"path": f["path"], "kind": f["kind"], "why": "refused by the gateway: %s" % e})
                    continue
                # The store released this segment while we copied others: its records went on into
                # history or were delivered; what is left on the gateway is what we copy.
                bar.note(t("out.pull.released", path=f["path"]))
                continue
            got.append({"path": f["path"], "file": rel, "kind": f["kind"], "size": size, "sha256": digest})
    finally:
        if progress:
            bar.__exit__(None, None, None)
    manifest = {"gateway_id": gid, "firmware": st.get("firmware"), "board": st.get("board"),
                "source": "console:%s" % con.port, "pulled_at": _now_iso(), "gateway_time": st.get("time"),
                "files": got, "skipped": skipped}
    score = save_quality(st, part)
    if score:
        manifest["quality"] = score
    units = save_status(st, part)
    if units:
        manifest["status"] = units
    return _finish(part, out, gid, manifest, decode)


QUALITY_FILE = "quality.json"


def save_quality(st: dict, pull_dir: Path) -> dict | None:
    """Write the quality section of a console status answer (each destination's `quality`,
    nengjian.uplink.qualityfig.report) to pull_dir/quality.json, with the gateway time it is as of:
    the gateway keeps the score, the store does not, so the records alone cannot give it. The
    manifest's entry for it, or None when the gateway keeps no score."""
    dests = [{"name": d.get("name"), "quality": d["quality"]} for d in st.get("destinations") or ()
             if isinstance(d, dict) and isinstance(d.get("quality"), dict)]
    if not dests:
        return None
    doc = {"gateway_id": st.get("gateway_id"), "firmware": st.get("firmware"), "gateway_time": st.get("time"),
           "destinations": dests}
    data = (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()
    private.write_file(Path(pull_dir) / QUALITY_FILE, data)
    return {"file": QUALITY_FILE, "gateway_time": st.get("time"), "destinations": [d["name"] for d in dests],
            "sha256": hashlib.sha256(data).hexdigest()}


STATUS_FILE = "status.json"
# What a pull keeps of each meter and destination the console status lists: when it last succeeded and
# why it last failed. Named field by field, so that nothing a newer gateway adds to its status lands on
# the laptop unseen.
STATUS_METER_FIELDS = ("id", "bus", "offline", "failures", "last_ok", "last_error", "last_error_code")
STATUS_DEST_FIELDS = ("name", "failing", "backlog", "last_ok", "last_error", "last_error_code")


def save_status(st: dict, pull_dir: Path) -> dict | None:
    """Write each meter's and destination's state from a console status answer (last success, last
    error and its code) to pull_dir/status.json, with the gateway time it is as of: the gateway keeps
    its last errors in memory only, so the store cannot give them. Any secret field is blanked
    (private.redact) though the status carries none. The manifest's entry for it, or None when the
    status lists neither meters nor destinations (a gateway still starting, or in safe mode)."""
    def keep(units, fields):
        return [{k: u[k] for k in fields if k in u} for u in units or () if isinstance(u, dict)]

    meters, dests = keep(st.get("meters"), STATUS_METER_FIELDS), keep(st.get("destinations"), STATUS_DEST_FIELDS)
    if not meters and not dests:
        return None
    doc, _blanked = private.redact({"gateway_id": st.get("gateway_id"), "firmware": st.get("firmware"),
                                    "gateway_time": st.get("time"), "meters": meters, "destinations": dests})
    data = (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()
    private.write_file(Path(pull_dir) / STATUS_FILE, data)
    return {"file": STATUS_FILE, "gateway_time": st.get("time"), "meters": len(meters), "destinations": len(dests),
            "sha256": hashlib.sha256(data).hexdigest()}


def _pull_config(con: Console, path: str, size: int, local: Path) -> dict:
    """Copy one config file through memory (the gateway's bytes never touch the laptop's disk), checked
    by sha256, and keep it with its secrets blanked. The manifest entry, or {"skipped": why}."""
    for _attempt in range(ATTEMPTS):
        if size > CONFIG_MAX:
            return {"skipped": "%d bytes: larger than any config file (%d)" % (size, CONFIG_MAX)}
        data = b""
        while len(data) < size:
            chunk, _now = con.get_range(path, len(data), min(WINDOW, size - len(data)))
            if not chunk:
                break
            data += chunk
        theirs, n = con.sha256_of(path)
        if n == len(data) and theirs == hashlib.sha256(data).hexdigest():
            break
        size = n  # rewritten meanwhile (a `put`): take it as it is now
    else:
        raise DeviceGone(msg("err.pull.changing", path=path, attempts=ATTEMPTS))
    kept, blanked = redact_config(data)
    if kept is None:
        return {"skipped": "not JSON, so its secrets cannot be blanked: not copied"}
    private.make_dir(local.parent)
    private.write_file(local, kept)
    entry = {"size": len(kept), "sha256": hashlib.sha256(kept).hexdigest(),
             "gateway_size": len(data), "gateway_sha256": theirs}
    if blanked:
        entry["redacted"] = blanked
    return entry


def newest_pull(out: Path, gid: str) -> Path | None:
    """The newest finished pull of gateway `gid` under `out` (by its manifest's time, then its name), or None."""
    found = []
    for d in Path(out).glob(_safe(gid) + "-*"):
        try:
            manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("gateway_id") == gid:
            found.append((str(manifest.get("pulled_at") or ""), d.name, d))
    return max(found)[2] if found else None


def refresh_config(con: Console, out: Path, gid: str) -> Path | None:
    """Copy the gateway's config files as they are now into the newest pull of gateway `gid` under
    `out`, as a pull copies them (checked, secrets blanked) and with their manifest entries renewed:
    a calibration rewrote the gateway's site.json, and check-config and the ledger read the pulled
    one. The pull's directory, or None when `out` holds no pull of this gateway (pull again then)."""
    final = newest_pull(out, gid)
    if final is None:
        return None
    listed, _end = con.files()
    _check_listing(listed)
    manifest = json.loads((final / "manifest.json").read_text(encoding="utf-8"))
    files = manifest.setdefault("files", [])
    for f in listed:
        if f["kind"] != "config":
            continue
        rel = local_name(f["path"], f["kind"])
        entry = _pull_config(con, f["path"], f["size"], final / rel)
        if entry.get("skipped"):
            continue
        entry = dict(entry, path=f["path"], file=rel, kind=f["kind"], refreshed_at=_now_iso())
        files[:] = [e for e in files if e.get("file") != rel] + [entry]
    private.write_file(final / "manifest.json", json.dumps(manifest, indent=2))
    return final


def _pull_file(con: Console, path: str, size: int, local: Path, bar) -> tuple[int, str]:
    private.make_dir(local.parent)
    tmp = local.with_name(local.name + ".part")
    if local.exists():
        # Verified by an earlier attempt: keep it if the gateway still has the same bytes; if the file
        # grew since (a store segment), continue from it.
        if local.stat().st_size == size:
            mine = _sha256_file(local)
            if con.sha256_of(path, size)[0] == mine:
                private.tighten(local)  # left by an older version of this tool, perhaps 0644
                bar.advance(size)
                return size, mine
        os.replace(local, tmp)
    for _attempt in range(ATTEMPTS):
        have = tmp.stat().st_size if tmp.exists() else 0
        if have > size or (have and con.sha256_of(path, have)[0] != _sha256_file(tmp)):
            have = 0  # the gateway rewrote the file: start it again
        bar.advance(have)
        with private.open_file(tmp, append=bool(have)) as fh:
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
        bar.note(t("out.pull.copy_again", path=path))
        tmp.unlink()
        bar.advance(-have)
        # Take the file as it is now.
        _data, size = con.get_range(path, 0, 0)
    raise DeviceGone(msg("err.pull.changing", path=path, attempts=ATTEMPTS))


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finish(part: Path, out: Path, gid: str, manifest: dict, decode: bool) -> Path:
    """Decode, export, write the manifest, then move the pull into place in one rename."""
    if decode:
        manifest["decoded"] = export_records(part, gid)
    private.write_file(part / "manifest.json", json.dumps(manifest, indent=2))
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
        with open(tmp, "w", newline="", encoding="utf-8", opener=private.opener) as f:
            writer(f)
        os.replace(tmp, pull_dir / name)
    private.write_file(pull_dir / "cursors.json", json.dumps(cursors, indent=2))
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
                raise PullError(msg("err.pull.encrypted", label=p["label"]))
            fs = _mount_lfs(blob[p["offset"]:p["offset"] + p["size"]])
            if fs is None:
                continue
            got = _lfs_files(fs)
            if got:
                files.update(got)
                used.append(p["label"])
        if not files:
            raise PullError(msg("err.pull.no_volume", path=path, labels=", ".join(p["label"] for p in table)))
        return files, "flash dump (partitions %s)" % ", ".join(used)
    fs = _mount_lfs(blob)
    if fs is None:
        raise PullError(msg("err.pull.not_an_image", path=path))
    files = _lfs_files(fs)
    if not files:
        raise PullError(msg("err.pull.no_files", path=path))
    return files, "littlefs image"


def pull_dump(dump: Path, out: Path, decode: bool = True, gateway: str | None = None) -> Path:
    files, what = read_dump(dump)
    for rel in files:
        kind, _, name = rel.partition("/")
        local_name(name, kind)
    gid = gateway or _safe(Path(dump).stem)
    out = Path(out)
    private.make_dir(out, tighten=False)
    part = out / (".partial-%s" % _safe(gid))
    if part.exists():
        shutil.rmtree(part)
    private.make_dir(part)
    got, skipped = [], []
    for rel, data in sorted(files.items()):
        kind, _, name = rel.partition("/")
        if kind in SKIPPED_KINDS:
            skipped.append({"path": rel, "kind": kind, "why": SKIPPED_KINDS[kind]})
            continue
        entry = {"path": rel, "file": rel, "kind": kind}
        kept = data
        if kind == "config":
            kept, blanked = redact_config(data)
            if kept is None:
                skipped.append({"path": rel, "kind": kind, "why": "not JSON, so its secrets cannot be blanked: "
                                                                   "not copied"})
                continue
            entry.update(gateway_size=len(data), gateway_sha256=hashlib.sha256(data).hexdigest())
            if blanked:
                entry["redacted"] = blanked
        private.make_dir(part / kind)
        private.write_file(part / rel, kept)
        entry.update(size=len(kept), sha256=hashlib.sha256(kept).hexdigest())
        got.append(entry)
    manifest = {"gateway_id": gid, "source": "%s: %s" % (what, dump), "pulled_at": _now_iso(), "files": got,
                "skipped": skipped}
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
    lines = [t("out.pull.pulled", n=len(manifest["files"]), size=sum(f["size"] for f in manifest["files"]),
               source=manifest["source"], dir=final)]
    if dec.get("ok"):
        lines.append(t("out.pull.decoded", n=dec["records"],
                       kinds=", ".join("%s %d" % kv for kv in sorted(dec["kinds"].items()))))
    elif dec:
        lines.append(t("out.pull.not_decoded", reason=dec.get("reason")))
    if manifest.get("quality"):
        lines.append(t("out.pull.quality", file=manifest["quality"]["file"],
                       destinations=", ".join(str(d) for d in manifest["quality"]["destinations"])))
    if manifest.get("status"):
        lines.append(t("out.pull.status", file=manifest["status"]["file"], meters=manifest["status"]["meters"],
                       destinations=manifest["status"]["destinations"]))
    for f in manifest["files"]:
        if f.get("redacted"):
            lines.append(t("out.pull.redacted", file=f["file"], fields=", ".join(f["redacted"])))
    for s in manifest.get("skipped") or ():
        lines.append(t("out.pull.skipped", path=s["path"], why=s["why"]))
    return manifest, lines
