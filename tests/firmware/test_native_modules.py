"""Viper code in the firmware compiles for the ESP32 boards' CPU, and keeps a pure-Python twin.

The bundle compiles a module with @micropython.viper for the board's `mpy_march` (xtensawin on
both ESP32 boards); a viper construct the Xtensa emitter rejects would surface only when a bundle
is built, so every such module is compiled here. CPython imports the same modules (the codecs'
property tests) and gets the Python loop: both must give the same answers.
"""

from __future__ import annotations

import json

import pytest
from mpyrun import BOARDS, FIRMWARE, run_mpy
from nengjian_host.common import bundle


def _native_modules():
    return sorted(p.relative_to(FIRMWARE).as_posix() for p in FIRMWARE.rglob("*.py")
                  if bundle.needs_native(p.read_text(encoding="utf-8")))


NATIVE = _native_modules()


def test_the_bus_path_is_viper_code():
    assert {"nengjian/proto/crc.py", "nengjian/bus/rs485.py"} <= set(NATIVE)


@pytest.mark.parametrize("board", ["esp32_eth", "esp32s3_4g"])
@pytest.mark.parametrize("rel", NATIVE)
def test_viper_module_compiles_for_the_esp32_boards(board, rel):
    march = json.loads((BOARDS / board / "board.json").read_text(encoding="utf-8"))["mpy_march"]
    assert march == "xtensawin"
    data = bundle.compile_module(FIRMWARE / rel, rel, march)
    assert data[:1] == b"M" and len(data) > 100


@pytest.mark.mpy
def test_viper_and_python_crc_agree():
    import random

    from nengjian.proto import crc

    rng = random.Random(16)
    cases = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(50)]
    cases.append(b"123456789")
    want = [[crc.crc16(c), crc.crc16(c, 1, max(1, len(c) - 1))] for c in cases]
    code = "from nengjian.proto.crc import crc16\nimport json\ncases = %r\n" % ([c.hex() for c in cases],)
    code += "print(json.dumps([[crc16(bytes.fromhex(c)), crc16(bytes.fromhex(c), 1, max(1, len(c) // 2 - 1))] for c in cases]))\n"
    assert json.loads(run_mpy(code, heap="256k").stdout) == want
    assert crc.crc16(b"123456789") == 0x4B37  # CRC-16/MODBUS check value


@pytest.mark.mpy
def test_bus_copy_viper_matches_python():
    code = r"""
from nengjian.bus import rs485
dst = bytearray(16)
rs485._copy(dst, 5, b"abcdefgh", 6)
print(bytes(dst).hex())
"""
    assert run_mpy(code, heap="256k").stdout.strip() == (bytes(5) + b"abcdef" + bytes(5)).hex()
