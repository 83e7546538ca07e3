"""Putting MicroPython and the Nengjian application on a gateway, and a way back.

Owns: checking a MicroPython firmware .bin against a board (chip, flash size in its header, app
size, MicroPython version) before anything touches the device; merging the bootloader, our
partition table, the MicroPython app and the app filesystem image with `esptool merge-bin`;
checking the device itself (chip, MAC, detected flash size, its current partition table); keeping
what was on it before (readable by the owner only); writing and verifying with esptool, also the credentials partition a
provisioned gateway gets (nj_keys.bin); the offline image of a production station; the firmware
cache; and the developer's incremental path (copy changed files only, by sha256, through any
DeviceFiles).

What is written, and what is never touched
------------------------------------------
The merged image covers the bootloader, the partition table (0x8000), the `factory` app, the
`vfs` app filesystem and, on a board with ROMFS partitions, the ROMFS image of the package and
profiles (in `romfs`, and in the last store for a rollback from the first signed update). It is written as Intel HEX so the gaps between them are skipped: MicroPython's
`nvs`, our `nj_keys` credentials and the `data` store partition are never erased by a (re)flash.
Reflashing the app filesystem would drop the gateway's /config; it is read off the device first and
carried into the new image (unless --fresh-config).

A way back
----------
Before writing, the regions about to be overwritten are read off the device into
~/.cache/nengjian/devices/<MAC>/<time>/before/ (with --backup full, the default), and the image that
was written is kept next to it. `nengjian flash --restore DIR` writes a `before/` back. Both hold the
gateway's /config (its site config with the platform and SIM PINs, on a provisioned gateway its client
key): every folder of a record is 0700 and every file 0600, as is a built image (it carries the config
it was given). What this module writes beside them (record.json, regions.json, image.json) and prints
names files, offsets and hashes, never their content.
A device whose current partition table differs from the board's (an older layout) is refused unless
--allow-layout-change: moving partitions can strand the stored data (pull it first).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nengjian_host.common import bundle as bundle_mod
from nengjian_host.common import private
from nengjian_host.common.devicefiles import DeviceFiles, DirDevice, MpremoteDevice, hashes
from nengjian_host.common.messages import msg
from nengjian_host.common.output import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE

APP_DESC_MAGIC = b"\x32\x54\xcd\xab"
PT_OFFSET = 0x8000
APP_OFFSET = 0x10000


class FlashError(Exception):
    """Flashing failed; `exit_code` is the command's exit code for it (common/output.py)."""

    exit_code = EXIT_FAILED


class Mismatch(FlashError):
    """Firmware, board and device do not belong together: nothing was written."""

    exit_code = EXIT_USAGE


class Unreachable(FlashError):
    exit_code = EXIT_UNREACHABLE


def cache_dir() -> Path:
    return Path(os.environ.get("NENGJIAN_CACHE") or Path.home() / ".cache" / "nengjian")


# ---- esptool
def esptool(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "esptool", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Unreachable("esptool %s: no answer in %d s; check the cable and hold BOOT while tapping EN"
                          % (args[0] if args else "", timeout)) from None


_UNREACHABLE = ("Failed to connect", "could not open port", "No serial data received", "No such file or directory",
                "Could not open", "Could not connect", "Write timeout", "device disconnected", "Errno 5")


# An exchange that broke off in the middle (a USB hub dropping a few bytes, a bootloader that fell
# out of step): every call below can simply run again — reads, verifies, and writes of the same data
# after the backup was taken — so one such failure is retried before it is reported.
_BROKEN_OFF = ("Unknown result", "No more data to read", "Serial data stream stopped", "Invalid head of packet")


def _device_call(args: list[str], what: str, timeout: float = 900, tries: int = 2) -> str:
    for attempt in range(tries):
        proc = esptool(args, timeout)
        text = proc.stdout + proc.stderr
        if not proc.returncode:
            return text
        if attempt + 1 < tries and any(s in text for s in _BROKEN_OFF):
            continue
        last = [ln for ln in text.strip().splitlines() if ln.strip()][-3:]
        if any(s in text for s in _UNREACHABLE):
            raise Unreachable("%s: the gateway did not answer (%s). Check the USB cable and the port; if it "
                              "has no auto-reset, hold BOOT and tap EN, then pass --no-reset."
                              % (what, " / ".join(x.strip() for x in last)))
        raise FlashError(msg("err.flashing.failed", what=what, detail=" / ".join(x.strip() for x in last)))
    raise AssertionError("unreachable")  # the loop returns or raises


# ---- firmware
@dataclass
class FirmwareInfo:
    path: Path
    chip: str
    flash_size_text: str
    flash_size: int
    base: int  # flash address of the file's first byte
    app_len: int
    version: str | None
    project: str | None
    sha256: str
    data: bytes = field(repr=False, default=b"")

    def as_dict(self) -> dict:
        return {"path": str(self.path), "chip": self.chip, "flash_size": self.flash_size_text,
                "flash_offset": hex(self.base), "app_bytes": self.app_len, "micropython": self.version,
                "project": self.project, "sha256": self.sha256}


_CHIP_NAMES = {"ESP32": "esp32", "ESP32-S2": "esp32s2", "ESP32-S3": "esp32s3", "ESP32-C3": "esp32c3",
               "ESP32-C6": "esp32c6", "ESP32-C2": "esp32c2", "ESP32-H2": "esp32h2", "ESP32-P4": "esp32p4"}


def inspect_firmware(path: Path) -> FirmwareInfo:
    """Chip and flash size from `esptool image-info` of the bootloader at the start of a MicroPython
    firmware .bin, plus the app's size and version from the file itself."""
    from esptool.targets import CHIP_DEFS

    path = Path(path)
    if not path.is_file():
        raise Mismatch("firmware %s not found: download the MicroPython .bin for the board's chip "
                       "(ESP32_GENERIC or ESP32_GENERIC_S3) and pass --firmware FILE" % path)
    proc = esptool(["image-info", str(path)], timeout=60)
    text = proc.stdout + proc.stderr
    chip_m = re.search(r"Detected image type: (\S+)", text)
    size_m = re.search(r"Flash size: (\S+)", text)
    if proc.returncode or not chip_m or not size_m:
        raise Mismatch("%s is not an ESP32 firmware image esptool can read (%s)"
                       % (path, (text.strip().splitlines() or ["no output"])[-1]))
    chip = _CHIP_NAMES.get(chip_m.group(1).upper(), chip_m.group(1).lower())
    if chip not in CHIP_DEFS:
        raise Mismatch("%s: chip %s is not one esptool knows" % (path, chip_m.group(1)))
    data = path.read_bytes()
    rom = CHIP_DEFS[chip]
    base = rom.BOOTLOADER_FLASH_OFFSET
    pt = data[PT_OFFSET - base:PT_OFFSET - base + 2]
    app_at = APP_OFFSET - base
    if pt != bundle_mod.PT_MAGIC or data[app_at:app_at + 1] != b"\xe9":
        raise Mismatch("%s is not a full MicroPython firmware (bootloader + partition table + app from %#x): "
                       "use the .bin from the MicroPython download page, not an app-only image" % (path, base))
    app = data[app_at:]
    try:
        f = io.BytesIO(app)
        img = rom.BOOTLOADER_IMAGE(f)
        app_len = (img.data_length + 32) if getattr(img, "append_digest", False) and img.data_length else f.tell()
    except Exception as e:  # esptool raises FatalError and struct errors for a damaged image
        raise Mismatch("%s: the app image at %#x is damaged (%s)" % (path, APP_OFFSET, e)) from None
    version = project = None
    at = app.find(APP_DESC_MAGIC, 0, 0x400)
    if at >= 0:
        version = app[at + 16:at + 48].split(b"\0")[0].decode(errors="replace") or None
        project = app[at + 48:at + 80].split(b"\0")[0].decode(errors="replace") or None
    return FirmwareInfo(path, chip, size_m.group(1), bundle_mod.size_text_to_bytes(size_m.group(1)), base, app_len,
                        version, project, hashlib.sha256(data).hexdigest(), data)


def _version_tuple(text: str | None) -> tuple[int, ...] | None:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(x or 0) for x in m.groups()) if m else None


def check_firmware(fw: FirmwareInfo, board: bundle_mod.Board, set_flash_size: bool = False) -> list[str]:
    """Raise Mismatch if `fw` cannot run `board`'s layout; return warnings."""
    warnings = []
    if fw.chip != board.chip:
        raise Mismatch("firmware %s is built for %s but board %s has an %s: use the MicroPython build for %s "
                       "(or the right --board)" % (fw.path.name, fw.chip, board.name, board.chip, board.chip))
    end = max(p.end for p in board.partitions)
    if fw.flash_size < end:
        if not set_flash_size:
            raise Mismatch(
                "firmware %s says %s flash in its header, but board %s's partitions reach %#x (%s): the gateway "
                "could not reach its data partition. Use a MicroPython build for %s, or pass --set-flash-size "
                "to write %s into the bootloader header (only if the module really has %s)"
                % (fw.path.name, fw.flash_size_text, board.name, end, board.flash_size_text, board.flash_size_text,
                   board.flash_size_text, board.flash_size_text))
        warnings.append(msg("out.flashing.size_rewritten", was=fw.flash_size_text, now=board.flash_size_text))
    factory = board.part("factory")
    if fw.app_len > factory.size:
        raise Mismatch("MicroPython app is %d KiB, the factory partition of %s holds %d KiB: use a smaller build"
                       % (fw.app_len // 1024, board.name, factory.size // 1024))
    have, need = _version_tuple(fw.version), _version_tuple(board.micropython_min)
    if have is None:
        warnings.append(msg("out.flashing.no_version", min=board.micropython_min))
    elif need and have < need:
        raise Mismatch("firmware is MicroPython %s; board %s needs >= %s (PPP and littlefs fixes; .mpy v6.3)"
                       % (fw.version, board.name, board.micropython_min))
    if fw.project and fw.project.lower() != "micropython":
        warnings.append(msg("out.flashing.project", project=fw.project))
    return warnings


def cached_firmware(chip: str) -> list[Path]:
    d = cache_dir() / "firmware" / chip
    return sorted(d.glob("*.bin")) if d.is_dir() else []


def resolve_firmware(path: str | None, board: bundle_mod.Board) -> Path:
    """The firmware given, or the one cached for the board's chip. A given file is cached for next time."""
    if path:
        p = Path(path)
        if p.is_file():
            dest = cache_dir() / "firmware" / board.chip
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / p.name
            if not target.exists():
                shutil.copyfile(p, target)
        return p
    found = cached_firmware(board.chip)
    if len(found) == 1:
        return found[0]
    where = cache_dir() / "firmware" / board.chip
    if not found:
        raise Mismatch("no firmware given and none cached in %s: pass --firmware FILE (the MicroPython .bin "
                       "for %s); it is cached for next time" % (where, board.chip))
    raise Mismatch("several firmware files cached in %s (%s): pass --firmware FILE"
                   % (where, ", ".join(p.name for p in found)))


# ---- building the image
@dataclass
class Image:
    board: str
    chip: str
    base: int
    merged_bin: Path
    merged_hex: Path
    regions: list[tuple[int, Path]]
    manifest: dict


def romfs_regions(board: bundle_mod.Board, image: bytes | None) -> dict[str, tuple[int, bytes]]:
    """Where a board's ROMFS image goes: the partition MicroPython mounts at /rom, and the store that
    keeps the flashed ("built-in") image for a rollback while the first signed update is on trial
    (the last store: the first update takes the first; nengjian.ota.romstore). Empty for a board
    without ROMFS partitions."""
    spec = board.spec.get("romfs")
    if not spec:
        return {}
    if image is None:
        raise FlashError(msg("err.flashing.romfs_needed", board=board.name))
    active = board.part(spec["label"])
    if len(image) > active.size:
        raise FlashError(msg("err.flashing.romfs_size", kib=len(image) // 1024, part=active.name,
                             holds=active.size // 1024))
    out = {"romfs.bin": (active.offset, image)}
    stores = spec.get("stores") or []
    if stores:
        out["romfs-builtin.bin"] = (board.part(stores[-1]).offset, image)
    return out


def build_image(board: bundle_mod.Board, fw: FirmwareInfo, app_fs: bytes, out: Path,
                set_flash_size: bool = False, romfs_image: bytes | None = None) -> Image:
    """Split the MicroPython .bin, put our partition table, app filesystem and (boards that have one)
    ROMFS image in, merge with esptool. `out` and what is written there are private: the app
    filesystem carries the site config."""
    private.make_dir(out)
    vfs = board.part(board.spec["app_fs"]["label"])
    if len(app_fs) != vfs.size:
        raise FlashError(msg("err.flashing.vfs_size", size=len(app_fs), part=vfs.name, holds=vfs.size))
    data = fw.data
    parts = {
        "bootloader.bin": (fw.base, data[:PT_OFFSET - fw.base]),
        "partition-table.bin": (PT_OFFSET, bundle_mod.partition_table_bin(board.partitions)),
        "micropython.bin": (APP_OFFSET, data[APP_OFFSET - fw.base:APP_OFFSET - fw.base + fw.app_len]),
        "appfs.bin": (vfs.offset, app_fs),
        **romfs_regions(board, romfs_image),
    }
    regions = []
    for name, (addr, blob) in parts.items():
        private.write_file(out / name, blob)
        regions.append((addr, out / name))
    pairs = [x for addr, p in regions for x in (hex(addr), str(p))]
    size_args = ["--flash-size", board.flash_size_text] if set_flash_size else []
    merged_bin, merged_hex = out / "merged.bin", out / "merged.hex"
    for target, fmt in ((merged_bin, "raw"), (merged_hex, "hex")):
        extra = ["--target-offset", hex(fw.base)] if fmt == "raw" else []
        proc = esptool(["--chip", board.chip, "merge-bin", "--format", fmt, "-o", str(target), *extra,
                        *size_args, *pairs], timeout=120)
        if proc.returncode:
            raise FlashError(msg("err.flashing.merge", detail=(proc.stderr or proc.stdout).strip().splitlines()[-1]))
        private.tighten(target)
    manifest = {
        "board": board.name, "chip": board.chip, "flash_size": board.flash_size_text,
        "flash_offset": hex(fw.base), "firmware": fw.as_dict(), "layout": bundle_mod.layout_text(board.partitions),
        "regions": [{"offset": hex(a), "file": p.name, "bytes": p.stat().st_size,
                     "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for a, p in regions],
        "merged_bin_sha256": hashlib.sha256(merged_bin.read_bytes()).hexdigest(),
        "set_flash_size": set_flash_size,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    private.write_file(out / "image.json", json.dumps(manifest, indent=1))
    return Image(board.name, board.chip, fw.base, merged_bin, merged_hex, regions, manifest)


def build_offline(board: bundle_mod.Board, fw_path: Path, out: Path, set_flash_size: bool = False,
                  extra_files: dict[str, bytes] | None = None, compile: bool = True) -> tuple[Image, list[str]]:
    """The production station's path: check the firmware, build the merged image into `out`, write
    nothing to a device. (the image, warnings); Mismatch if firmware and board do not belong together."""
    fw = inspect_firmware(fw_path)
    warnings = check_firmware(fw, board, set_flash_size)
    b = bundle_mod.collect(board, compile=compile, extra=extra_files)
    img = build_image(board, fw, bundle_mod.make_lfs_image(bundle_mod.app_fs_files(b.files, b.romfs),
                                                           board.app_fs_size), out, set_flash_size,
                      bundle_mod.romfs_image(board, b.files))
    return img, warnings


def provisioned(pdir: Path) -> tuple[dict[str, bytes], Path | None]:
    """What `nengjian provision --out DIR` staged for one gateway: (DIR/config/* as app filesystem
    files, DIR/nj_keys.bin or None)."""
    pdir = Path(pdir)
    extra = {p.relative_to(pdir).as_posix(): p.read_bytes() for p in (pdir / "config").rglob("*") if p.is_file()}
    keys = pdir / "nj_keys.bin"
    return extra, keys if keys.exists() else None


# ---- the device
@dataclass
class Connection:
    port: str
    chip: str
    reset: bool = True
    baud: int = 460800

    def args(self, stub: bool = True) -> list[str]:
        a = ["--chip", self.chip, "--port", self.port, "--baud", str(self.baud)]
        if not self.reset:
            a += ["--before", "no-reset", "--after", "no-reset"]
        return a


@dataclass
class DeviceInfo:
    mac: str
    flash_size_text: str | None
    flash_size: int | None


def find_port(usb_serial: str) -> str:
    """The serial port of the USB adapter with this serial number (never guess /dev/ttyUSB0)."""
    from serial.tools import list_ports

    found = [p.device for p in list_ports.comports() if (p.serial_number or "") == usb_serial]
    if not found:
        raise Unreachable("no USB serial adapter with serial number %r is plugged in (`python -m serial.tools."
                          "list_ports -v` lists them)" % usb_serial)
    return found[0]


def detect(conn: Connection) -> DeviceInfo:
    text = _device_call(conn.args() + ["flash-id"], "reading the chip")
    mac = re.search(r"MAC:\s*([0-9a-fA-F:]{17})", text)
    size = re.search(r"Detected flash size:\s*(\S+)", text)
    chip_wrong = re.search(r"(This chip is \S+.*not \S+|Wrong --chip argument.*)", text)
    if chip_wrong:
        raise Mismatch("the connected chip is not an %s: %s" % (conn.chip, chip_wrong.group(1)))
    st = size.group(1) if size and size.group(1)[0].isdigit() else None
    return DeviceInfo(mac.group(1).lower() if mac else "unknown", st,
                      bundle_mod.size_text_to_bytes(st) if st else None)


def write_keys(conn: Connection, offset: str, keys: bytes | Path) -> None:
    """Write the credentials NVS image (nj_keys.bin, or its bytes) at the nj_keys partition and verify."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(keys, bytes):
            f = private.write_file(Path(tmp) / "nj_keys.bin", keys)
        else:
            f = Path(keys)
        _device_call(conn.args() + ["write-flash", offset, str(f)], "writing nj_keys")
        _device_call(conn.args() + ["verify-flash", offset, str(f)], "verifying nj_keys")


READ_PIECE = 0x40000  # 256 KiB per esptool read-flash: a stall repeats one piece, not the whole region


def read_flash(conn: Connection, offset: int, size: int, dest: Path) -> bytes:
    """`size` bytes at `offset` into `dest` (0600 before esptool writes a byte: it may hold the config).

    Read in pieces of READ_PIECE, each tried three times: esptool's read-flash gives each 4 KB frame a
    fixed 3 s (loader.read_flash), the longest silence of any exchange, and a USB bridge or hub that
    stalls once in a long read-back should not cost the installer the backup. A read repeats harmlessly."""
    private.open_file(dest).close()
    piece_path = dest.with_name(dest.name + ".piece")
    data = bytearray()
    try:
        for at in range(offset, offset + size, READ_PIECE):
            n = min(READ_PIECE, offset + size - at)
            private.open_file(piece_path).close()
            _device_call(conn.args() + ["read-flash", hex(at), hex(n), str(piece_path)],
                         "reading flash at %#x" % at, tries=3)
            got = piece_path.read_bytes()
            if len(got) != n:
                raise FlashError(msg("err.flashing.read_short", at=at, got=len(got), n=n))
            data += got
    finally:
        piece_path.unlink(missing_ok=True)
    with private.open_file(dest) as f:
        f.write(data)
    private.tighten(dest)
    return bytes(data)


def backup_regions(board: bundle_mod.Board, mode: str, base: int) -> list[tuple[str, int, int]]:
    vfs = board.part(board.spec["app_fs"]["label"])
    factory = board.part("factory")
    if mode == "none":
        return [("partition-table", PT_OFFSET, 0x1000)]
    regions = [("partition-table", PT_OFFSET, 0x1000), ("vfs", vfs.offset, vfs.size)]
    if mode == "full":
        regions = [("bootloader", base, PT_OFFSET - base)] + regions + [("factory", factory.offset, factory.size)]
    return regions


def carried_config(vfs_image: bytes) -> dict[str, bytes]:
    """/config/* of the app filesystem found on the device (empty if it is not a littlefs we can read)."""
    try:
        files = bundle_mod.read_lfs_image(vfs_image)
    except bundle_mod.BundleError:
        return {}
    return {p: b for p, b in files.items() if p.startswith("config/") and not p.endswith(".tmp")}


def flash(board: bundle_mod.Board, fw_path: Path, conn: Connection, *, backup: str = "full",
          fresh_config: bool = False, allow_layout_change: bool = False, set_flash_size: bool = False,
          expect_mac: str | None = None, extra_files: dict[str, bytes] | None = None, keys_bin: Path | None = None,
          step=None) -> dict:
    """Check, back up, build, write and verify; then the credentials `keys_bin` (from `nengjian provision
    --out`), if given. Returns a record of what was done (also saved in the cache)."""
    step = step or (lambda name, **kw: None)
    step("check firmware")
    fw = inspect_firmware(fw_path)
    warnings = check_firmware(fw, board, set_flash_size)
    step("check device")
    dev = detect(conn)
    if expect_mac and dev.mac != expect_mac.lower():
        raise Mismatch("connected gateway has MAC %s, expected %s: wrong port?" % (dev.mac, expect_mac))
    if dev.flash_size and dev.flash_size < board.flash_size:
        raise Mismatch("the connected module has %s flash; board %s needs %s: wrong --board, or a module with "
                       "less flash than the design" % (dev.flash_size_text, board.name, board.flash_size_text))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record_dir = cache_dir() / "devices" / dev.mac.replace(":", "") / stamp
    before = record_dir / "before"
    private.make_dir(record_dir.parent)
    private.make_dir(record_dir)
    private.make_dir(before)
    step("read partition table")
    current = read_flash(conn, PT_OFFSET, 0x1000, before / "partition-table.bin")
    try:
        cur_parts = bundle_mod.parse_partition_table(current)
    except bundle_mod.BundleError:
        cur_parts = None
        warnings.append(msg("out.flashing.table_damaged"))
    ours = sorted(board.partitions, key=lambda p: p.offset)
    layout_change = bool(cur_parts) and sorted(cur_parts, key=lambda p: p.offset) != ours
    has_data = bool(cur_parts) and any(p.name == board.spec["data"]["label"] for p in cur_parts)
    if layout_change and has_data and not allow_layout_change:
        raise Mismatch("the gateway's partition layout (%s) differs from board %s's (%s): its stored data could be "
                       "lost. Pull the data first (nengjian pull), then pass --allow-layout-change"
                       % (bundle_mod.layout_text(cur_parts), board.name, bundle_mod.layout_text(ours)))
    if layout_change and not has_data:
        warnings.append(msg("out.flashing.first_layout", had=bundle_mod.layout_text(cur_parts)))
    saved = {"partition-table": str(before / "partition-table.bin")}
    config: dict[str, bytes] = {}
    for name, off, size in backup_regions(board, backup, fw.base):
        if name == "partition-table":
            continue
        step("back up %s" % name, total=size)
        data = read_flash(conn, off, size, before / ("%s.bin" % name))
        saved[name] = str(before / ("%s.bin" % name))
        if name == "vfs" and not fresh_config and not layout_change:
            config = carried_config(data)
    private.write_file(before / "regions.json", json.dumps(
        [{"name": n, "offset": hex(o), "size": hex(s)} for n, o, s in backup_regions(board, backup, fw.base)]))
    step("build image")
    b = bundle_mod.collect(board)
    files = b.files
    files.update(config)
    if extra_files:
        files.update(extra_files)
    image = build_image(board, fw, bundle_mod.make_lfs_image(bundle_mod.app_fs_files(files, b.romfs),
                                                             board.app_fs_size), record_dir / "image",
                        set_flash_size, bundle_mod.romfs_image(board, files))
    step("write", total=sum(p.stat().st_size for _, p in image.regions))
    _device_call(conn.args() + ["write-flash", hex(image.base), str(image.merged_hex)], "writing flash")
    step("verify")
    _device_call(conn.args() + ["verify-flash", hex(image.base), str(image.merged_hex)], "verifying flash")
    record = {"mac": dev.mac, "device_flash": dev.flash_size_text, "board": board.name, "port": conn.port,
              "record": str(record_dir), "image": image.manifest, "backup": saved, "backup_mode": backup,
              "config_carried": sorted(config), "warnings": warnings, "verified": True}
    private.write_file(record_dir / "record.json", json.dumps(record, indent=1))
    if keys_bin:
        step("write credentials")
        off = board.spec["keys"]["offset"]
        write_keys(conn, off, Path(keys_bin))
        record["credentials"] = "nj_keys written at %s" % off
    return record


def restore(conn: Connection, record_dir: Path) -> dict:
    """Write back what `flash` saved in `record_dir/before` (the way back)."""
    before = Path(record_dir) / "before"
    if not before.is_dir():
        before = Path(record_dir)
    try:
        regions = json.loads((before / "regions.json").read_text())
    except OSError:
        raise Mismatch("%s has no regions.json: pass a directory made by `nengjian flash`" % record_dir) from None
    pairs = []
    for r in regions:
        f = before / ("%s.bin" % r["name"])
        if f.exists():
            pairs += [r["offset"], str(f)]
    if not pairs:
        raise Mismatch("%s holds no saved regions" % before)
    _device_call(conn.args() + ["write-flash", *pairs], "restoring flash")
    _device_call(conn.args() + ["verify-flash", *pairs], "verifying restored flash")
    return {"restored": [r["name"] for r in regions if (before / ("%s.bin" % r["name"])).exists()],
            "from": str(before)}


# ---- developer path
def sync_to(board: bundle_mod.Board, target: str, compile: bool = True, step=None) -> dict:
    """sync() the board's bundle to `target`: a sim gateway directory, or a port mpremote reaches."""
    path = Path(target)
    device = DirDevice(path) if path.is_dir() else MpremoteDevice(target)
    b = bundle_mod.collect(board, compile=compile)
    # On a ROMFS board the package is in the image (`nengjian flash` writes it), not a file to copy.
    return sync(device, bundle_mod.app_fs_files(b.files, b.romfs), step=step)


def sync(device: DeviceFiles, files: dict[str, bytes], skip_prefixes: tuple[str, ...] = ("config/",),
         step=None) -> dict:
    """Copy to `device` only the files whose sha256 differs (each put is tmp + rename)."""
    wanted = {p: b for p, b in files.items() if not p.startswith(skip_prefixes)}
    there = hashes(device, sorted(wanted))
    changed = [p for p, b in sorted(wanted.items()) if there.get(p) != hashlib.sha256(b).hexdigest()]
    # The manifest last: a sync cut short leaves a manifest that does not claim the new files.
    changed.sort(key=lambda p: p == "bundle.json")
    for p in changed:
        if step:
            step("copy %s" % p)
        device.put(p, wanted[p])
    return {"device": device.name, "checked": len(wanted), "copied": changed}
