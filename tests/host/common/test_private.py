"""nengjian_host.common.private: folders 0700 and files 0600 whatever the umask, also over older, looser
ones, never through a planted symlink; and the redaction of a config's secret fields."""

import os
import stat

import pytest
from nengjian_host.common import private


@pytest.fixture(params=[0, 0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def test_new_folders_and_files_are_the_owners_only(tmp_path, umask):
    d = private.make_dir(tmp_path / "a" / "b")
    assert _mode(tmp_path / "a") == 0o700 and _mode(d) == 0o700
    f = private.write_file(d / "x.json", "{}")
    assert _mode(f) == 0o600 and f.read_text() == "{}" and not (d / "x.json.tmp").exists()
    with private.open_file(d / "y.bin") as fh:
        fh.write(b"1")
    with private.open_file(d / "y.bin", append=True) as fh:
        fh.write(b"2")
    assert (d / "y.bin").read_bytes() == b"12" and _mode(d / "y.bin") == 0o600


def test_older_looser_ones_are_tightened(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    d.chmod(0o777)
    (d / "x").write_bytes(b"old")
    (d / "x").chmod(0o666)
    (d / "y").write_bytes(b"old")
    (d / "y").chmod(0o644)
    private.make_dir(d)
    private.write_file(d / "x", b"new")
    with private.open_file(d / "y", append=True) as fh:
        fh.write(b"+")
    assert _mode(d) == 0o700 and _mode(d / "x") == 0o600 and _mode(d / "y") == 0o600
    assert (d / "y").read_bytes() == b"old+"
    user = tmp_path / "chosen"
    user.mkdir(mode=0o755)
    user.chmod(0o755)
    private.make_dir(user, tighten=False)
    assert _mode(user) == 0o755  # a folder the user chose is theirs to set


def test_a_planted_symlink_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OSError):
        private.open_file(tmp_path / "link")
    assert target.read_bytes() == b"keep"


def test_redact_blanks_secret_fields_at_any_depth():
    doc = {"network": {"apn": "cmnet", "pin": "1234"}, "destinations": [{"url": "u", "pin": "p"}, {"url": "v"}],
           "session": {"secretKey": "k", "token": "t", "deviceId": "d"}, "password_upper": True}
    clean, found = private.redact(doc)
    assert clean == {"network": {"apn": "cmnet", "pin": "<redacted>"},
                     "destinations": [{"url": "u", "pin": "<redacted>"}, {"url": "v"}],
                     "session": {"secretKey": "<redacted>", "token": "<redacted>", "deviceId": "d"},
                     "password_upper": True}
    assert found == ["network.pin", "destinations[0].pin", "session.secretKey", "session.token"]
    assert doc["network"]["pin"] == "1234"  # a copy
