"""A small, valid MicroPython-shaped ESP32 firmware .bin for tests (no real MicroPython build is available
offline): an ESP-IDF bootloader image and an app image made with esptool's own image classes, with an
esp_app_desc_t carrying the version, and MicroPython's stock partition table, merged by `esptool merge-bin`
exactly as MicroPython's build does."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from esptool.bin_image import ELFSection
from esptool.targets import CHIP_DEFS
from nengjian_host.common import bundle

# Load addresses inside each chip's IRAM / DROM windows (esptool classifies segments by address).
_ADDR = {"esp32": (0x40080400, 0x3F400020), "esp32s3": (0x403C9000, 0x3C000020)}


def app_desc(version: str, project: str = "micropython") -> bytes:
    return (struct.pack("<IIII", 0xABCD5432, 0, 0, 0) + version.encode().ljust(32, b"\0")
            + project.encode().ljust(32, b"\0") + b"12:00:00".ljust(16, b"\0") + b"Jan  1 2026".ljust(16, b"\0")
            + b"v5.4.1".ljust(32, b"\0") + bytes(32) + bytes(48))


def image(chip: str, flash_size: str, segments: list[tuple[int, bytes]], entry: int) -> bytes:
    rom = CHIP_DEFS[chip]
    img = rom.BOOTLOADER_IMAGE()
    img.chip_id = rom.IMAGE_CHIP_ID
    img.flash_mode = 2
    img.flash_size_freq = rom.FLASH_SIZES[flash_size]
    img.entrypoint = entry
    img.segments = [ELFSection(b".s%d" % i, a, d, 0) for i, (a, d) in enumerate(segments)]
    return img.save(None)


def micropython_bin(path: Path, chip: str = "esp32s3", flash_size: str = "8MB", version: str = "v1.29.0",
                    app_kib: int = 64, project: str = "micropython") -> Path:
    iram, drom = _ADDR[chip]
    boot = image(chip, flash_size, [(iram, bytes(range(256)) * 16)], iram)
    app = image(chip, flash_size, [(drom, app_desc(version, project) + bytes(64)),
                                   (iram + 0x1000, bytes(range(256)) * (app_kib * 4))], iram + 0x1000)
    stock = [bundle.Partition("nvs", 1, 2, 0x9000, 0x6000), bundle.Partition("phy_init", 1, 1, 0xF000, 0x1000),
             bundle.Partition("factory", 0, 0, 0x10000, 0x1F0000),
             bundle.Partition("vfs", 1, 0x81, 0x200000, 0x200000)]
    work = path.parent
    (work / "_boot.bin").write_bytes(boot)
    (work / "_pt.bin").write_bytes(bundle.partition_table_bin(stock))
    (work / "_app.bin").write_bytes(app)
    base = CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET
    subprocess.run([sys.executable, "-m", "esptool", "--chip", chip, "merge-bin", "-o", str(path),
                    "--target-offset", hex(base), hex(base), str(work / "_boot.bin"), "0x8000", str(work / "_pt.bin"),
                    "0x10000", str(work / "_app.bin")], check=True, capture_output=True)
    return path
