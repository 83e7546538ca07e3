"""`nengjian ota push`'s exchange with the gateway (host/nengjian_host/crew/update.py push): the bundle in
base64 lines, and the three answers the last line can bring. A scripted console stands in for the
gateway; tests/e2e/test_ota_sim.py pushes to the sim board."""

import base64
import hashlib

import pytest
from nengjian_host.common.device import DeviceError
from nengjian_host.crew import update as ota


class Console:
    timeout = 5.0

    def __init__(self, last_answer):
        self.last_answer = last_answer
        self.lines = []

    def request(self, line, timeout=None):
        self.lines.append(line)
        if line.startswith("+") and sum(len(base64.b64decode(x[1:])) for x in self.lines[1:]) == self.size:
            return [self.last_answer]
        return [{"ok": True}]


def _push(answer, size=5000):
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    con = Console(answer)
    con.size = len(data)
    return con, data


def test_the_bundle_goes_in_lines_after_its_size_and_hash():
    con, data = _push({"installed": "0.2.0", "slot": "a", "state": "trial"})
    assert ota.push(con, data)["installed"] == "0.2.0"
    assert con.lines[0] == "ota %d %s" % (len(data), hashlib.sha256(data).hexdigest())
    assert b"".join(base64.b64decode(x[1:]) for x in con.lines[1:]) == data


def test_a_check_left_for_the_reset_is_not_an_error():
    con, data = _push({"deferred": True, "applies": "checked and installed at the reset"})
    assert ota.push(con, data)["deferred"] is True


def test_an_answer_that_confirms_nothing_is_an_error():
    con, data = _push({"ok": True})
    with pytest.raises(DeviceError, match="did not confirm the install"):
        ota.push(con, data)
