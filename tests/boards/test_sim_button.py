"""The sim board's service button (boards/sim/board.py service_button_held, NJ_BUTTON) on the MicroPython
unix port: the file's last line level counts, '0' is pressed (low, as BOOT), anything else or no file is
released. tests/e2e/test_console.py presses it on a running sim gateway."""

import pytest
from mpyrun import run_mpy

pytestmark = pytest.mark.mpy


def test_the_button_reads_the_last_level_in_its_file(tmp_path):
    button = tmp_path / "button"
    got = []
    for content in (None, "", "1", "0", "0\n", "01", "10-", "x"):
        if content is None:
            env = {"NJ_BUTTON": str(button)}  # no file yet
        else:
            button.write_text(content)
            env = {"NJ_BUTTON": str(button)}
        got.append(run_mpy("import board; print(board.service_button_held())", heap="128k", env=env).stdout.strip())
    assert got == ["False", "False", "False", "True", "True", "False", "True", "False"]
    unset = run_mpy("import board; print(board.service_button_held())", heap="128k", env={"NJ_BUTTON": ""})
    assert unset.stdout.strip() == "False"
