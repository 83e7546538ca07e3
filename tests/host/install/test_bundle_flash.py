"""Bundle, partition tables, firmware checks, merged images, and writing to a (virtual) board.

Real: mpy-cross output imported by the MicroPython unix port; littlefs images built by
littlefs-python mounted by MicroPython straight out of the merged flash file; esptool merge-bin,
image-info and write-flash/verify-flash/read-flash against esp32-mock-bootloader (a ROM-bootloader
protocol peer on a pty). Made up: the MicroPython firmware .bin (no real build is available offline;
tests/host/install/fakefw.py builds a valid ESP32 image of the same shape with esptool's image classes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import fakefw
import pytest
from mpyrun import run_mpy
from nengjian_host import cli
from nengjian_host.common import bundle, devicefiles, paths, romfs
from nengjian_host.install import flash


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NENGJIAN_CACHE", str(tmp_path / "cache"))


def _boards_with_stub(tmp_path: Path, extra: dict | None = None) -> Path:
    """A copy of boards/ plus `extra` boards (spec, partitions.csv) with the sim's board.py standing in."""
    d = tmp_path / "boards"
    shutil.copytree(paths.BOARDS, d, ignore=shutil.ignore_patterns("__pycache__"))
    for name, (spec, csv) in (extra or {}).items():
        (d / name).mkdir(exist_ok=True)
        (d / name / "board.json").write_text(json.dumps(spec))
        (d / name / "partitions.csv").write_text(csv)
        shutil.copy(d / "sim" / "board.py", d / name / "board.py")
    return d


# ---- partition tables
@pytest.mark.parametrize("name", ["esp32s3_4g", "esp32_eth"])
def test_board_layouts_are_consistent_and_keep_data_apart(name):
    b = bundle.load_board(name)
    assert bundle.check_layout(b) == []
    labels = {p.name: p for p in b.partitions}
    assert {"nvs", "phy_init", "factory", "vfs", "nj_keys", "data"} <= set(labels)
    assert labels["nj_keys"].subtype == bundle.SUBTYPES["data"]["nvs"]
    assert labels["data"].offset >= labels["vfs"].end and labels["data"].end <= b.flash_size
    table = bundle.partition_table_bin(b.partitions)
    assert len(table) == 0xC00
    assert bundle.parse_partition_table(table) == b.partitions
    # ROMFS: the partition MicroPython mounts (data, 0x8f, 64 KiB aligned) and two stores of its size that
    # nothing mounts; nj_keys and data stayed where the layout before them had them.
    rom = labels["romfs"]
    assert (rom.type, rom.subtype, rom.offset % 0x10000) == (1, 0x8F, 0)
    for store in ("romfs_a", "romfs_b"):
        assert labels[store].size == rom.size and labels[store].subtype != 0x8F
        assert labels[store].offset % 0x10000 == 0
    assert (labels["nj_keys"].offset, labels["data"].offset) == (0x3F0000, 0x400000)


def test_partition_table_binary_format():
    parts = bundle.parse_partitions_csv("nvs, data, nvs, 0x9000, 0x6000,\nfactory, app, factory, 0x10000, 1M,\n"
                                        "keys, data, nvs, 0x110000, 0x3000, encrypted\n")
    table = bundle.partition_table_bin(parts)
    # ESP-IDF layout: 32-byte entries "<2sBBLL16sL", then 0xEBEB + 14 x 0xFF + MD5 of the entries, then 0xFF.
    assert table[:2] == b"\xaa\x50" and table[2:4] == b"\x01\x02"
    assert int.from_bytes(table[4:8], "little") == 0x9000 and int.from_bytes(table[8:12], "little") == 0x6000
    assert table[12:28] == b"nvs".ljust(16, b"\0")
    assert int.from_bytes(table[0x40 + 28:0x40 + 32], "little") == 1  # encrypted flag
    md5_at = 32 * 3
    assert table[md5_at:md5_at + 16] == b"\xeb\xeb" + b"\xff" * 14
    assert table[md5_at + 16:md5_at + 32] == hashlib.md5(table[:md5_at]).digest()
    assert set(table[md5_at + 32:]) == {0xFF}
    damaged = bytearray(table)
    damaged[5] ^= 1
    with pytest.raises(bundle.BundleError, match="MD5"):
        bundle.parse_partition_table(bytes(damaged))
    assert bundle.parse_partition_table(b"\xff" * 0xC00) is None


@pytest.mark.parametrize("csv, why", [
    ("factory, app, factory, , 0x100000\n", "explicitly"),
    ("factory, app, factory, 0x18000, 0x100000\n", "aligned"),
    ("factory, app, factory, 0x10000, 0x100000\nvfs, data, fat, 0x100000, 0x10000\n", "overlap"),
    ("factory, app, factory, 0x10000, 0x100000\nx, data, nope, 0x200000, 0x1000\n", "subtype"),
    ("factory, app, factory, 0x10000, 0x100000\nromfs, data, 0x8f, 0x201000, 0x10000\n"
     "romfs_a, data, undefined, 0x210000, 0x10000\n", "romfs at 0x201000 is not aligned to 0x10000"),
    ("factory, app, factory, 0x10000, 0x100000\nromfs, data, 0x8f, 0x200000, 0x20000\n"
     "romfs_a, data, undefined, 0x220000, 0x10000\n", "store romfs_a is 0x10000 bytes"),
    ("factory, app, factory, 0x10000, 0x100000\nromfs, data, fat, 0x200000, 0x10000\n"
     "romfs_a, data, undefined, 0x210000, 0x10000\n", "must be data, 0x8f"),
    ("factory, app, factory, 0x10000, 0x100000\nromfs, data, 0x8f, 0x200000, 0x10000\n", "store 'romfs_a'"),
])
def test_bad_layouts_are_refused(tmp_path, csv, why):
    spec = {"name": "bad", "chip": "esp32", "flash_size": "4MB", "partition_table": "partitions.csv",
            "app_fs": None, "data": None, "keys": None}
    rom = re.search(r"^romfs, data, \w+, (\w+), (\w+)$", csv, re.M)
    if rom:
        spec["romfs"] = {"label": "romfs", "offset": rom.group(1), "size": rom.group(2), "stores": ["romfs_a"]}
    boards = _boards_with_stub(tmp_path, {"bad": (spec, csv)})
    with pytest.raises(bundle.BundleError, match=why):
        bundle.load_board("bad", boards)


# ---- bundle
def test_sim_bundle_compiled_modules_run_on_micropython(tmp_path):
    board = bundle.load_board("sim")
    b = bundle.collect(board)
    assert "main.py" in b.files and "lib/nengjian/config/__init__.mpy" in b.files and "lib/board.mpy" in b.files
    assert "lib/nengjian/crypto/sm4.mpy" in b.files  # viper, compiled for the sim's x64
    assert "profiles/meters/sim-energy.json" in b.files
    manifest = json.loads(b.files["bundle.json"])
    assert manifest["files"]["lib/nengjian/config/__init__.mpy"] == hashlib.sha256(b.files["lib/nengjian/config/__init__.mpy"]).hexdigest()
    bundle.write_tree(b.files, tmp_path / "fs")
    assert not list((tmp_path / "fs" / "lib").rglob("*.py"))
    code = ("from nengjian import config\nfrom nengjian.core import identity\nfrom nengjian.crypto import sm4\nimport binascii\n"
            "c = sm4.SM4(bytes(range(16)))\nout = bytearray(16)\nc.encrypt_block(bytes(16), out)\n"
            "print(identity.uscc_problem('91330000573973053F'), binascii.hexlify(out).decode(),"
            " config.__file__)\n")
    env = dict(os.environ, MICROPYPATH=str(tmp_path / "fs" / "lib"))
    proc = subprocess.run([paths.micropython_binary(), "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    none, cipher, where = proc.stdout.split()
    assert none == "None" and where.endswith(".mpy")
    sys.path.insert(0, str(paths.FIRMWARE))
    from nengjian.crypto import sm4 as host_sm4

    out = bytearray(16)
    host_sm4.SM4(bytes(range(16))).encrypt_block(bytes(16), out)
    assert cipher == out.hex()


def test_viper_module_kept_as_source_without_an_architecture(tmp_path):
    boards = _boards_with_stub(tmp_path)
    spec = json.loads((boards / "esp32_eth" / "board.json").read_text())
    spec["mpy_march"] = None
    (boards / "esp32_eth" / "board.json").write_text(json.dumps(spec))
    b = bundle.collect(bundle.load_board("esp32_eth", boards))
    assert "lib/nengjian/crypto/sm4.py" in b.files and "lib/nengjian/crypto/sm4.mpy" not in b.files
    assert "lib/nengjian/config/__init__.mpy" in b.files
    b2 = bundle.collect(bundle.load_board("esp32s3_4g", boards))
    mpy = b2.files["lib/nengjian/crypto/sm4.mpy"]
    # .mpy header: "M", version 6, then sub-version (low 2 bits) and native arch (xtensawin = 10).
    assert mpy[0:2] == b"M\x06" and mpy[2] >> 2 == 10


def test_lfs_image_mounts_in_micropython(tmp_path):
    board = bundle.load_board("sim")
    b = bundle.collect(board)
    img = tmp_path / "appfs.bin"
    # 1 MiB: half the smallest app filesystem of a real board (esp32_eth: 1,984 KiB). Each file takes
    # at least one 4 KiB block and each package directory two.
    img.write_bytes(b.image(1024 * 1024))
    back = bundle.read_lfs_image(img.read_bytes())
    assert back == b.files
    _mount_and_import(img, 0, 1024 * 1024)


def _mount_and_import(path: Path, offset: int, size: int, board: str | None = None, rom: int | None = None) -> None:
    """MicroPython mounts the littlefs at `offset` of `path` and imports the compiled firmware from it
    (and, for an ESP32 board, its board module, with empty stand-ins for the ESP32-only modules); with
    `rom`, the package from the ROMFS image at that offset, mounted at /rom as the ESP32 firmware does."""
    stubs = path.parent / "stubs"
    stubs.mkdir(exist_ok=True)
    for mod in ("esp32", "network"):
        (stubs / (mod + ".py")).write_text("")
    code = f"""
import vfs, sys
sys.path.append({str(stubs)!r})
class Dev:
    def __init__(self):
        self.f = open({str(path)!r}, 'rb')
    def readblocks(self, n, buf, off=0):
        self.f.seek({offset} + n * 4096 + off)
        self.f.readinto(buf)
    def writeblocks(self, n, buf, off=0):
        raise OSError(30)
    def ioctl(self, op, arg):
        if op == 4: return {size // 4096}
        if op == 5: return 4096
        return 0
vfs.mount(vfs.VfsLfs2(Dev(), readsize=32, progsize=32, lookahead=32), '/app', readonly=True)
sys.path.insert(0, '/app/lib')
if {rom!r} is not None:
    with open({str(path)!r}, 'rb') as f:
        f.seek({rom!r} or 0)
        img = f.read(0x100000)
    vfs.mount(vfs.VfsRom(img), '/rom')
    sys.path.insert(0, '/rom')
from nengjian.core import identity
print(open('/app/main.py').read().count('app.main'), identity.uscc_problem('91330000573973053F'), identity.__file__)
if {board!r}:
    import board, esp32_common
    print(board.NAME, board.APP_DIR, board.__file__, esp32_common.__file__)
"""
    out = run_mpy(code, heap="2m" if rom is not None else "512k").stdout.split()
    assert out[:2] == ["1", "None"]
    assert out[2] == ("/rom/nengjian/core/identity.mpy" if rom is not None else "/app/lib/nengjian/core/identity.mpy")
    if board:
        assert out[3:] == [board, "/app", "/app/lib/board.mpy", "/app/lib/esp32_common.mpy"]


# ---- firmware checks
def test_firmware_is_read_with_esptool_image_info(tmp_path):
    fw = flash.inspect_firmware(fakefw.micropython_bin(tmp_path / "fw.bin", "esp32", "8MB", "v1.29.0"))
    assert (fw.chip, fw.flash_size_text, fw.base, fw.version, fw.project) == ("esp32", "8MB", 0x1000, "v1.29.0",
                                                                             "micropython")
    board = bundle.load_board("esp32_eth")
    assert flash.check_firmware(fw, board) == []


@pytest.mark.parametrize("chip, size, version, board, match", [
    ("esp32", "8MB", "v1.29.0", "esp32s3_4g", "built for esp32 but board esp32s3_4g has an esp32s3"),
    ("esp32s3", "8MB", "v1.29.0", "esp32s3_4g", "says 8MB flash in its header.*--set-flash-size"),
    ("esp32", "4MB", "v1.29.0", "esp32_eth", "says 4MB flash"),
    ("esp32", "8MB", "v1.22.2", "esp32_eth", "MicroPython v1.22.2; board esp32_eth needs >= 1.26"),
])
def test_firmware_board_mismatch_is_refused(tmp_path, chip, size, version, board, match):
    fw = flash.inspect_firmware(fakefw.micropython_bin(tmp_path / "fw.bin", chip, size, version))
    with pytest.raises(flash.Mismatch, match=match):
        flash.check_firmware(fw, bundle.load_board(board))


def test_not_a_firmware_is_refused(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(flash.Mismatch, match="not an ESP32 firmware image"):
        flash.inspect_firmware(junk)
    app_only = tmp_path / "app.bin"
    app_only.write_bytes(fakefw.image("esp32s3", "8MB", [(0x403C9000, bytes(4096))], 0x403C9000))
    with pytest.raises(flash.Mismatch, match="not a full MicroPython firmware"):
        flash.inspect_firmware(app_only)


def test_merged_image_layout(tmp_path):
    boards = _boards_with_stub(tmp_path)
    board = bundle.load_board("esp32s3_4g", boards)
    fw = flash.inspect_firmware(fakefw.micropython_bin(tmp_path / "fw.bin", "esp32s3", "8MB"))
    assert flash.check_firmware(fw, board, set_flash_size=True)
    everything = bundle.collect(board).files
    rom = bundle.romfs_image(board, everything)
    # The package is in the ROMFS image only; the app filesystem keeps the rest.
    files = bundle.app_fs_files(everything, romfs=True)
    assert not any(p.startswith("lib/nengjian/") for p in files) and "lib/board.mpy" in files
    img = flash.build_image(board, fw, bundle.make_lfs_image(files, board.app_fs_size), tmp_path / "out",
                            set_flash_size=True, romfs_image=rom)
    merged = img.merged_bin.read_bytes()
    base = img.base
    assert base == 0
    assert merged[0x8000:0x8000 + 0xC00] == bundle.partition_table_bin(board.partitions)
    assert merged[0x10000:0x10000 + fw.app_len] == fw.data[0x10000:0x10000 + fw.app_len]
    vfs = board.part("vfs")
    assert bundle.read_lfs_image(merged[vfs.offset:vfs.end]) == files
    info = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(img.merged_bin)], capture_output=True,
                          text=True).stdout
    assert "Flash size: 16MB" in info and "(valid)" in info and "invalid" not in info
    # The HEX written to the board leaves nvs, nj_keys and data alone.
    from intelhex import IntelHex

    ih = IntelHex(str(img.merged_hex))
    covered = ih.segments()
    for label in ("nvs", "nj_keys", "data", "romfs_a"):
        p = board.part(label)
        assert all(e <= p.offset or s >= p.end for s, e in covered), label
    _mount_and_import(img.merged_bin, vfs.offset - base, vfs.size, "esp32s3_4g", board.part("romfs").offset - base)
    # The ROMFS image is where MicroPython mounts it, and in the store a rollback from the first
    # update returns to; the image is whole there (the package and the profiles, nothing else).
    for label in ("romfs", "romfs_b"):
        p = board.part(label)
        assert merged[p.offset - base:p.offset - base + len(rom)] == rom, label
    assert romfs.read(merged[board.part("romfs").offset - base:board.part("romfs").end - base]) == \
        romfs.select_files(everything)
    # Headroom for later versions in every ROMFS partition, and room on the app filesystem to receive
    # an update bundle (the package's size) beside the base image.
    assert all(board.part(x).size >= 1.25 * len(rom) for x in ("romfs", "romfs_a", "romfs_b"))
    incoming = {"app/incoming.njota": bytes(len(rom)), "app/current": b"{}"}
    bundle.make_lfs_image({**files, **incoming}, board.app_fs_size)


def test_esp32_merged_file_starts_at_the_bootloader_offset(tmp_path):
    boards = _boards_with_stub(tmp_path)
    board = bundle.load_board("esp32_eth", boards)
    fw = flash.inspect_firmware(fakefw.micropython_bin(tmp_path / "fw.bin", "esp32", "8MB"))
    b = bundle.collect(board)
    files = bundle.app_fs_files(b.files, b.romfs)
    img = flash.build_image(board, fw, bundle.make_lfs_image(files, board.app_fs_size), tmp_path / "out",
                            romfs_image=bundle.romfs_image(board, b.files))
    merged = img.merged_bin.read_bytes()
    assert img.base == 0x1000 and merged[:1] == b"\xe9"
    assert merged[0x8000 - 0x1000:0x8000 - 0x1000 + 2] == b"\xaa\x50"
    vfs = board.part("vfs")
    assert bundle.read_lfs_image(merged[vfs.offset - 0x1000:vfs.end - 0x1000]) == files


# ---- writing to a virtual board
# The mock bootloader answers esptool at the speed of a Python loop: a 16 MB chip's partitions take
# minutes to read back on a busy machine. A bound, not a target.
VIRTUAL_BOARD_TIMEOUT_S = 1200


def _ahead_of_the_load():
    """The mock stands in for a chip, which no load on the laptop slows down: run it ahead of the other
    processes where the system allows (root may raise priority). Starved, it desynchronised esptool
    mid-exchange ("Failed to calculate md5sum (result was 3836)") on a busy machine."""
    try:
        os.nice(-10)
    except OSError:
        pass


@pytest.fixture
def mock_board(tmp_path, monkeypatch):
    """esp32-mock-bootloader on a pty, as an ESP32-S3 with 16 MB of flash (its default is 4 MB)."""
    pytest.importorskip("esp32_mock_bootloader")
    # esptool gives a silent serial line 3 s; the mock is a Python process that a loaded machine may
    # hold up longer than that ("No more data to read from the serial port" mid read-flash). A real
    # chip answers in milliseconds: the longer wait is for the stand-in only.
    cfg = tmp_path / "esptool.cfg"
    cfg.write_text("[esptool]\ntimeout = 60\nmax_timeout = 600\nserial_write_timeout = 60\n")
    monkeypatch.setenv("ESPTOOL_CFGFILE", str(cfg))
    portfile = tmp_path / "port"
    code = ("import esp32_mock_bootloader.protocol as p\np.FLASH_MOCK_SIZE = 16 << 20\np.MOCK_FLASH_ID = 0x184020\n"
            "from esp32_mock_bootloader.cli import main\nraise SystemExit(main())")
    # No --timeout: the mock would exit after that many seconds, in the middle of a flash on a busy
    # machine ("lost the serial line"); the fixture ends it.
    proc = subprocess.Popen([sys.executable, "-c", code, "run", "--pty", "--port-file", str(portfile), "--chip",
                             "esp32s3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_ahead_of_the_load)
    deadline = time.monotonic() + 120  # a bound for a loaded machine; the loop ends as soon as the port is there
    while not (portfile.exists() and portfile.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("esp32-mock-bootloader did not start (exit %s)" % proc.poll())
        time.sleep(0.1)
    yield portfile.read_text().strip()
    proc.terminate()
    proc.wait(10)


@pytest.mark.timeout(VIRTUAL_BOARD_TIMEOUT_S)
def test_flash_backup_carry_config_and_restore_on_a_virtual_board(tmp_path, mock_board):
    boards = _boards_with_stub(tmp_path)
    board = bundle.load_board("esp32s3_4g", boards)
    fw_path = fakefw.micropython_bin(tmp_path / "fw.bin", "esp32s3", "16MB")
    conn = flash.Connection(mock_board, "esp32s3", reset=False)
    steps = []
    rec = flash.flash(board, fw_path, conn, extra_files={"config/site.json": b'{"v": 1}'},
                      step=lambda name, **kw: steps.append(name))
    assert rec["verified"] and rec["mac"].startswith("24:0a:c4") and rec["device_flash"] == "16MB"
    assert steps[:3] == ["check firmware", "check device", "read partition table"]
    first = Path(rec["record"])
    # The board now holds our layout; read it back independently.
    pt = flash.read_flash(conn, 0x8000, 0xC00, tmp_path / "pt.bin")
    assert bundle.parse_partition_table(pt) == board.partitions
    # The ROMFS image of the package and profiles is in the romfs partition the table names.
    want = bundle.romfs_image(board, bundle.collect(board).files)
    rom = board.part("romfs")
    got = flash.read_flash(conn, rom.offset, (len(want) + 0xFFF) & ~0xFFF, tmp_path / "romfs.bin")
    assert got[:len(want)] == want and romfs.image_length(got) == len(want)
    # Second flash: /config written on the gateway is carried into the new image.
    rec2 = flash.flash(board, fw_path, conn, backup="config")
    assert rec2["config_carried"] == ["config/site.json"]
    vfs = board.part("vfs")
    now = flash.read_flash(conn, vfs.offset, vfs.size, tmp_path / "vfs.bin")
    assert bundle.read_lfs_image(now)["config/site.json"] == b'{"v": 1}'
    # The way back: the first backup was of a blank chip; restoring it blanks the table again.
    out = flash.restore(conn, first)
    assert "partition-table" in out["restored"]
    assert bundle.parse_partition_table(flash.read_flash(conn, 0x8000, 0xC00, tmp_path / "pt2.bin")) is None


@pytest.mark.timeout(VIRTUAL_BOARD_TIMEOUT_S)
def test_flash_refuses_a_layout_change_and_a_small_chip(tmp_path, mock_board):
    boards = _boards_with_stub(tmp_path)
    board = bundle.load_board("esp32s3_4g", boards)
    fw_path = fakefw.micropython_bin(tmp_path / "fw.bin", "esp32s3", "16MB")
    conn = flash.Connection(mock_board, "esp32s3", reset=False)
    flash.flash(board, fw_path, conn, backup="none")
    spec = json.loads((boards / "esp32s3_4g" / "board.json").read_text())
    csv = (boards / "esp32s3_4g" / "partitions.csv").read_text().replace("0x3F0000, 0x10000", "0x3F0000, 0x8000")
    (boards / "moved").mkdir()
    (boards / "moved" / "board.json").write_text(json.dumps(dict(spec, name="moved", keys=dict(spec["keys"],
                                                                                               size="0x8000"))))
    (boards / "moved" / "partitions.csv").write_text(csv)
    shutil.copy(boards / "sim" / "board.py", boards / "moved" / "board.py")
    with pytest.raises(flash.Mismatch, match="partition layout .* differs.*--allow-layout-change"):
        flash.flash(bundle.load_board("moved", boards), fw_path, conn, backup="none")
    big = dict(spec, name="big", flash_size="32MB")
    (boards / "big").mkdir()
    (boards / "big" / "board.json").write_text(json.dumps(big))
    shutil.copy(boards / "esp32s3_4g" / "partitions.csv", boards / "big" / "partitions.csv")
    shutil.copy(boards / "sim" / "board.py", boards / "big" / "board.py")
    with pytest.raises(flash.Mismatch, match="has 16MB flash; board big needs 32MB"):
        flash.flash(bundle.load_board("big", boards), fakefw.micropython_bin(tmp_path / "fw32.bin", "esp32s3", "32MB"),
                    conn, backup="none")


def test_unreachable_port_exits_3(tmp_path, capsys):
    fw = fakefw.micropython_bin(tmp_path / "fw.bin", "esp32", "8MB")
    code = cli.main(["flash", "--board", "esp32_eth", "--firmware", str(fw), "--port", str(tmp_path / "nope"),
                     "--json"])
    assert code == cli.EXIT_UNREACHABLE
    assert json.loads(capsys.readouterr().out)["exit_code"] == 3


# ---- CLI and the developer path
def test_cli_offline_build_and_refusal(tmp_path, capsys, monkeypatch):
    boards = _boards_with_stub(tmp_path)
    monkeypatch.setattr(paths, "BOARDS", boards)
    monkeypatch.setattr(bundle.load_board, "__defaults__", (boards,))
    fw8 = fakefw.micropython_bin(tmp_path / "fw8.bin", "esp32s3", "8MB")
    code = cli.main(["flash", "--board", "esp32s3_4g", "--firmware", str(fw8), "--out", str(tmp_path / "o"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_USAGE and "--set-flash-size" in out["error"]
    code = cli.main(["flash", "--board", "esp32s3_4g", "--firmware", str(fw8), "--out", str(tmp_path / "o"),
                     "--set-flash-size", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and Path(out["merged_bin"]).exists() and out["image"]["flash_size"] == "16MB"
    # The firmware given is cached: next time --firmware can be left out.
    code = cli.main(["flash", "--board", "esp32s3_4g", "--out", str(tmp_path / "o2"), "--set-flash-size", "--json"])
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    code = cli.main(["bundle", "--board", "sim", "--out", str(tmp_path / "b"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["compiled"] > 10 and out["kept_source"] == ["main.py"]


def test_cli_help_teaches():
    p = cli.build_parser()
    for cmd in ("flash", "bundle", "provision", "inventory", "ledger"):
        sub = p._subparsers._group_actions[0].choices[cmd]
        text = sub.format_help()
        assert "--json" in text
    assert "nengjian flash --board" in p._subparsers._group_actions[0].choices["flash"].format_help()


def test_sync_copies_only_changed_files(tmp_path):
    board = bundle.load_board("sim")
    files = bundle.collect(board).files
    dev = devicefiles.DirDevice(tmp_path / "gw")
    first = flash.sync(dev, files)
    assert len(first["copied"]) == len(files) and first["copied"][-1] == "bundle.json"
    files = dict(files)
    files["lib/nengjian/core/identity.mpy"] = files["lib/nengjian/core/identity.mpy"] + b"\0"
    second = flash.sync(dev, files)
    assert second["copied"] == ["lib/nengjian/core/identity.mpy"]
    assert not list((tmp_path / "gw").rglob("*.tmp"))
    assert flash.sync(dev, files)["copied"] == []


def test_an_exchange_that_broke_off_is_tried_once_more(monkeypatch):
    calls = []

    def fake(args, timeout=600):
        calls.append(args)
        broken = len(calls) == 1
        return subprocess.CompletedProcess(args, 2 if broken else 0, "done\n",
                                           "A fatal error occurred: Failed to calculate md5sum (result was 3836: "
                                           "Unknown result)\n" if broken else "")

    monkeypatch.setattr(flash, "esptool", fake)
    assert flash._device_call(["verify-flash"], "verifying flash") == "done\n" and len(calls) == 2
    # twice broken: reported, with what esptool said
    calls.clear()
    monkeypatch.setattr(flash, "esptool", lambda args, timeout=600: (calls.append(args), subprocess.CompletedProcess(
        args, 2, "", "Failed to calculate md5sum (result was 3836: Unknown result)\n"))[1])
    with pytest.raises(flash.FlashError, match="verifying flash failed: .*Unknown result"):
        flash._device_call(["verify-flash"], "verifying flash")
    assert len(calls) == 2
    # a refusal is not retried
    calls.clear()
    monkeypatch.setattr(flash, "esptool", lambda args, timeout=600: (calls.append(args), subprocess.CompletedProcess(
        args, 2, "", "This chip is ESP32 not ESP32-S3\n"))[1])
    with pytest.raises(flash.FlashError):
        flash._device_call(["flash-id"], "reading the chip")
    assert len(calls) == 1
