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


class Gateway(Console):
    """A console that answers `ota` with an update state, and refuses a push as the gateway would."""

    def __init__(self, state, refuse=None):
        super().__init__({"ok": False})
        self.state, self.refuse, self.resets = state, refuse, 0

    def request(self, line, timeout=None):
        self.lines.append(line)
        if line == "ota":
            return [dict(self.state, ok=True, end=True)]
        if self.refuse and line.startswith("+") and sum(len(base64.b64decode(x[1:])) for x in self.lines
                                                         if x.startswith("+")) == self.size:
            raise DeviceError(self.refuse)
        return [{"installed": "x", "ok": True}] if line.startswith("+") else [{"ok": True}]

    def reset(self):
        self.resets += 1


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from nengjian_host.vendor import updates

    d = tmp_path_factory.mktemp("bundles")
    updates.keygen(d / "v.pem", d / "v.pub.json", "v")

    def build(version, replaces_down_to=None):
        out = d / ("%s-%s.njota" % (version, replaces_down_to))
        updates.build(out, d / "v.pem", version, ["sim"], files=[("nengjian/__init__.py", b"")],
                      **({"replaces_down_to": replaces_down_to} if replaces_down_to else {}))
        return out.read_bytes()

    return {"0.3.0": build("0.3.0"), "0.1.0": build("0.1.0"), "down": build("0.1.0", "0.1.0")}


def test_a_push_while_a_version_is_on_trial_is_refused_in_both_languages_before_a_byte_is_sent(built):
    con = Gateway({"state": "trial", "version": "0.2.0", "boots": 1, "max_boots": 2, "min_version": "0.1.0"})
    with pytest.raises(ota.UpdateRefused) as e:
        ota.install(con, built["0.3.0"])
    assert "version 0.2.0 is on trial on the gateway (boot 1 of 2)" in str(e.value)
    assert "no confirmed version to return to" in str(e.value)
    assert "0.2.0" in e.value.zh and "试运行" in e.value.zh and "回退" in e.value.zh
    assert con.lines == ["ota"] and con.resets == 0


def test_a_bundle_older_than_the_gateways_minimum_is_refused_unless_signed_as_a_downgrade(built):
    state = {"state": "confirmed", "version": "0.2.0", "min_version": "0.2.0"}
    con = Gateway(state)
    with pytest.raises(ota.UpdateRefused) as e:
        ota.install(con, built["0.1.0"])
    assert "bundle version 0.1.0 is older than the gateway's minimum 0.2.0" in str(e.value)
    assert "--replaces-down-to" in e.value.zh and "降级" in e.value.zh and con.lines == ["ota"]
    con = Gateway(state)
    ota.install(con, built["down"])  # the signed downgrade goes through to the gateway, which decides
    assert con.lines[1].startswith("ota ") and con.resets == 1
    ota.install(Gateway(state), built["0.3.0"])


def test_the_gateways_own_refusal_of_the_same_comes_with_its_chinese(built):
    """An older gateway that does not tell its minimum, or one whose trial began meanwhile: its refusal
    text is recognised."""
    con = Gateway({"state": "confirmed"}, refuse="update refused: version 0.1.0 is older than the minimum 0.2.0: "
                                                 "a downgrade needs a bundle signed with replaces_down_to")
    con.size = len(built["0.1.0"])
    with pytest.raises(ota.UpdateRefused) as e:
        ota.install(con, built["0.1.0"])
    assert e.value.zh == ota.OLDER_ZH % ("0.1.0", "0.2.0") and con.resets == 0
    con = Gateway({"state": "confirmed"}, refuse="update refused: signature does not verify with vendor key v")
    con.size = len(built["0.3.0"])
    with pytest.raises(DeviceError) as e:
        ota.install(con, built["0.3.0"])
    assert not isinstance(e.value, ota.UpdateRefused)  # the generic Chinese line of gatewaycall then
