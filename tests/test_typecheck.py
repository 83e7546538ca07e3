"""tools/typecheck.py catches a call the chip would refuse: copies of an ESP32 board's board.py and
of boards/common, each with one planted error, are checked against the ESP32 stubs in place of the
real ones (`--board-dir`, `--common-dir`)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _copies(tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    shutil.copy(ROOT / "boards" / "esp32_eth" / "board.py", board / "board.py")
    common = tmp_path / "common"
    shutil.copytree(ROOT / "boards" / "common", common, ignore=shutil.ignore_patterns("__pycache__"))
    return board, common


def _plant(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, "the text to plant an error in is gone from %s: %r" % (path.name, old)
    path.write_text(text.replace(old, new))


def _check(tmp_path, board, common):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "typecheck.py"), "esp32_eth",
                        "--board-dir", str(board), "--common-dir", str(common),
                        "--cache-dir", str(tmp_path / "cache")],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r.stdout


def _errors_in(out, directory):
    return [x for x in out.splitlines() if x.startswith(str(directory.resolve())) and ": error:" in x]


def test_misspelled_uart_keyword_and_wrong_lan_argument_are_caught(tmp_path):
    board, common = _copies(tmp_path)
    # As they are, the copies are clean: what the planted run reports comes from the plants.
    out = _check(tmp_path, board, common)
    assert _errors_in(out, tmp_path) == [], out

    _plant(common / "rs485_uart.py", "txbuf=txbuf, timeout=0, timeout_char=0)",  # the constructor's
           "txbuf=txbuf, timeout=0, timeout_chars=0)")
    _plant(board / "board.py", "phy_addr=ETH_PHY_ADDR", "phy_address=ETH_PHY_ADDR")
    out = _check(tmp_path, board, common)
    errors = "\n".join(_errors_in(out, tmp_path))
    assert re.search(r'rs485_uart\.py:\d+: error: Unexpected keyword argument "timeout_chars" for '
                     r'overloaded function "UART"', errors), out
    assert re.search(r'board\.py:\d+: error: Unexpected keyword argument "phy_address" for "LAN"',
                     errors), out
