"""`nengjian pull` against a gateway it cannot trust: a fake console that names its files as a hostile
or broken device would (a kind or name that leaves the pull directory: '..', absolute, a drive letter,
NUL, a backslash) is refused with an error in English and Chinese and exit 1, before anything is
written. Against an honest one: what holds secrets stays behind (session files) or is blanked (the
config's PINs), and everything written is the owner's only (files 0600, folders 0700) whatever the
umask, also over files an earlier pull left 0644. The same for a flash dump."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from nengjian_host import cli
from nengjian_host.common import bundle, device
from nengjian_host.crew import pull

PIN, SIM_PIN, KEY = "Qz7kW-p9Lx", "73737373", "6b2f0c1d9e8a7b6c5d4e3f2a1b0c9d8e"
SITE = {"site": {"name": "test"}, "network": {"apn": "cmnet", "pin": SIM_PIN},
        "destinations": [{"name": "city", "url": "http://x/api/register", "security": "sm4-cbc-token", "pin": PIN}]}
SESSION = {"deviceId": "d1", "secretKey": KEY}


class FakeGateway:
    """The console side `pull` talks to: status, files, get, sha256, over a dict of files."""

    port = "fake"

    def __init__(self, files: dict[str, tuple[str, bytes]], gid="NJ-FAKE"):
        self.files_ = files
        self.gid = gid
        self.gets: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def status(self):
        return {"gateway_id": self.gid, "firmware": "0.0", "board": "sim", "time": 0}

    def files(self):
        return [{"t": "file", "path": p, "size": len(b), "kind": k} for p, (k, b) in self.files_.items()], {}

    def get_range(self, path, offset, length):
        self.gets.append(path)
        data = self.files_[path][1]
        return data[offset:offset + length], len(data)

    def sha256_of(self, path, length=None):
        data = self.files_[path][1]
        data = data if length is None else data[:length]
        return hashlib.sha256(data).hexdigest(), len(data)


def _honest():
    return {"/data/store/seg-000001.seg": ("store", b"\x01" * 1000),
            "/data/store/cursors": ("store", b"city 12\n"),
            "/data/session-city.json": ("session", json.dumps(SESSION).encode()),
            "/config/site.json": ("config", json.dumps(SITE).encode())}


@pytest.fixture
def gateway(monkeypatch):
    made = {}

    def use(files):
        made["gw"] = FakeGateway(files)
        return made["gw"]

    monkeypatch.setattr(device, "resolve_port", lambda spec, probe=None: spec)
    monkeypatch.setattr(pull, "Console", lambda port, baud=115200, timeout=20.0: made["gw"])
    return use


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _modes(root: Path) -> list[str]:
    bad = []
    for p in [root, *root.rglob("*")]:
        want = 0o700 if p.is_dir() else 0o600
        if stat.S_IMODE(p.stat().st_mode) != want:
            bad.append("%s %o" % (p.relative_to(root), stat.S_IMODE(p.stat().st_mode)))
    return bad


@pytest.fixture
def open_umask():
    old = os.umask(0)  # the worst a laptop may be set to: every file would be world-writable
    yield
    os.umask(old)


HOSTILE = [
    ("../../escaped", "/data/store/x"),
    ("store/../../escaped", "/data/store/x"),
    ("ABSOLUTE", "/data/store/x"),  # an absolute path inside the test's folder (see below)
    ("C:", "/data/store/x"),
    ("store", "/data/store/C:evil"),
    ("..", "/data/store/x"),
    ("store", "/data/store/.."),
    ("store", "/data/..\\..\\escaped"),
    ("sto\x00re", "/data/store/x"),
    ("store", "/data/store/x\x00.seg"),
    ("", "/data/store/x"),
    (None, "/data/store/x"),
]


@pytest.mark.parametrize("kind, path", HOSTILE)
def test_a_name_that_leaves_the_pull_folder_is_refused_before_anything_is_written(tmp_path, gateway, kind, path):
    work = tmp_path / "work"
    work.mkdir()
    if kind == "ABSOLUTE":
        kind = str(tmp_path / "absolute")  # where a copy would land if the name were taken as given
    files = _honest()
    files[path] = (kind, b"owned\n")
    gw = gateway(files)
    before = _tree(tmp_path)
    code, text, err = _cli("pull", "--port", "fake", "--out", work / "pulls")
    assert code == 1, (code, text, err)
    assert "refusing the pull" in err.lower() and "错误：" in err and "拉取目录之外" in err
    assert _tree(tmp_path) == before  # not even the pull folder
    assert gw.gets == []

    code, text, _err = _cli("pull", "--port", "fake", "--out", work / "pulls", "--json")
    doc = json.loads(text)
    assert code == 1 and doc["ok"] is False and doc["exit_code"] == 1 and "拉取目录之外" in doc["error_zh"]


def test_two_files_on_one_name_are_refused(tmp_path, gateway):
    files = _honest()
    files["/elsewhere/cursors"] = ("store", b"x")
    gateway(files)
    code, _text, err = _cli("pull", "--port", "fake", "--out", tmp_path / "pulls")
    assert code == 1 and "both be copied to store/cursors" in err


def test_an_honest_pull_keeps_secrets_behind_and_is_private(tmp_path, gateway, open_umask):
    gw = gateway(_honest())
    out = tmp_path / "pulls"
    # What a pull broken off by an older version left: 0644 folders and files, a copied session.
    part = out / ".partial-NJ-FAKE"
    (part / "store").mkdir(parents=True, mode=0o755)
    (part / "session").mkdir(mode=0o755)
    (part / "store" / "cursors").write_bytes(b"city 12\n")
    (part / "store" / "seg-000001.seg.part").write_bytes(b"\x01" * 100)
    (part / "session" / "session-city.json").write_bytes(json.dumps(SESSION).encode())
    for p in part.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    code, text, err = _cli("pull", "--port", "fake", "--out", out, "--json", "--no-decode")
    assert code == 0, err or text
    res = json.loads(text)
    final = Path(res["dir"])
    assert _tree(final) == {"manifest.json", "store", "store/seg-000001.seg", "store/cursors", "config",
                            "config/site.json"}
    assert "/data/session-city.json" not in gw.gets
    assert [s["path"] for s in res["skipped"]] == ["/data/session-city.json"]
    site = json.loads((final / "config" / "site.json").read_text())
    assert site["network"] == {"apn": "cmnet", "pin": "<redacted>"}
    assert site["destinations"][0]["pin"] == "<redacted>" and site["destinations"][0]["url"] == "http://x/api/register"
    [entry] = [f for f in res["files"] if f["kind"] == "config"]
    assert sorted(entry["redacted"]) == ["destinations[0].pin", "network.pin"]
    assert entry["gateway_sha256"] == hashlib.sha256(json.dumps(SITE).encode()).hexdigest()
    assert entry["sha256"] == hashlib.sha256((final / "config" / "site.json").read_bytes()).hexdigest()
    for p in final.rglob("*"):
        if p.is_file():
            blob = p.read_bytes()
            assert PIN.encode() not in blob and SIM_PIN.encode() not in blob and KEY.encode() not in blob, p
    assert PIN not in text and SIM_PIN not in text and KEY not in text
    assert _modes(final) == []


def test_a_config_file_that_is_not_json_is_not_copied(tmp_path, gateway):
    files = _honest()
    files["/config/site.json"] = ("config", b'{"network": {"pin": "' + SIM_PIN.encode() + b'"')  # cut short
    gateway(files)
    code, text, err = _cli("pull", "--port", "fake", "--out", tmp_path / "pulls", "--json", "--no-decode")
    assert code == 0, err or text
    res = json.loads(text)
    assert not (Path(res["dir"]) / "config" / "site.json").exists()
    assert any(s["path"] == "/config/site.json" and "not JSON" in s["why"] for s in res["skipped"])


def _dump(tmp_path, files: dict[str, bytes]) -> Path:
    img = tmp_path / "data.img"
    img.write_bytes(bundle.make_lfs_image(files, 64 * 4096))
    return img


def test_a_dump_keeps_secrets_behind_and_is_private(tmp_path, open_umask):
    img = _dump(tmp_path, {"store/seg-000001.seg": b"\x01" * 1000, "session-city.json": json.dumps(SESSION).encode(),
                           "config/site.json": json.dumps(SITE).encode()})
    code, text, err = _cli("pull", "--dump", img, "--out", tmp_path / "pulls", "--json", "--no-decode")
    assert code == 0, err or text
    res = json.loads(text)
    final = Path(res["dir"])
    assert _tree(final) == {"manifest.json", "store", "store/seg-000001.seg", "config", "config/site.json"}
    assert json.loads((final / "config" / "site.json").read_text())["network"]["pin"] == "<redacted>"
    assert [s["kind"] for s in res["skipped"]] == ["session"]
    assert all(PIN.encode() not in p.read_bytes() and SIM_PIN.encode() not in p.read_bytes()
               and KEY.encode() not in p.read_bytes() for p in final.rglob("*") if p.is_file())
    assert _modes(final) == []
    assert stat.S_IMODE((tmp_path / "pulls").stat().st_mode) == 0o700  # made by the pull: private too


@pytest.mark.parametrize("name", ["config/C:site.json", "config/..\\..\\site.json"])
def test_a_dump_with_a_name_that_leaves_the_folder_is_refused(tmp_path, name):
    img = _dump(tmp_path, {"store/seg-000001.seg": b"\x01" * 10, name: b"{}"})
    code, _text, err = _cli("pull", "--dump", img, "--out", tmp_path / "pulls", "--no-decode")
    assert code == 1 and "拉取目录之外" in err
    assert not (tmp_path / "pulls").exists()


class StatusGateway(FakeGateway):
    """A gateway whose status lists its meters and destinations, and more than a pull keeps of them:
    a newer firmware's fields, here holding the platform's PIN and key."""

    def status(self):
        return dict(super().status(), time=1_777_600_000, meters=[
            {"id": "m1", "bus": "bus0", "offline": True, "failures": 3, "last_ok": 1_777_599_000,
             "last_error": "no reply", "last_error_code": "meter_error.timeout", "values": {"e": "1.5"},
             "pin": PIN},
        ], destinations=[
            {"name": "city", "failing": False, "backlog": 4, "last_ok": 1_777_599_900, "last_error": "",
             "stats": {"sent": 9}, "session": {"deviceId": "d1", "secretKey": KEY}, "pin": PIN}])


def test_the_status_a_pull_saves_holds_each_units_last_error_and_no_secret(tmp_path, monkeypatch, open_umask):
    gw = StatusGateway(_honest())
    monkeypatch.setattr(device, "resolve_port", lambda spec, probe=None: spec)
    monkeypatch.setattr(pull, "Console", lambda port, baud=115200, timeout=20.0: gw)
    code, text, err = _cli("pull", "--port", "fake", "--out", tmp_path / "pulls", "--json", "--no-decode")
    assert code == 0, err or text
    res = json.loads(text)
    final = Path(res["dir"])
    blob = (final / "status.json").read_bytes()
    assert res["status"] == {"file": "status.json", "gateway_time": 1_777_600_000, "meters": 1, "destinations": 1,
                             "sha256": hashlib.sha256(blob).hexdigest()}
    doc = json.loads(blob)
    assert doc["meters"] == [{"id": "m1", "bus": "bus0", "offline": True, "failures": 3, "last_ok": 1_777_599_000,
                              "last_error": "no reply", "last_error_code": "meter_error.timeout"}]
    assert doc["destinations"] == [{"name": "city", "failing": False, "backlog": 4, "last_ok": 1_777_599_900,
                                    "last_error": ""}]
    assert PIN.encode() not in blob and KEY.encode() not in blob and b"secretKey" not in blob and b"pin" not in blob
    assert _modes(final) == []


def test_a_status_with_no_meters_nor_destinations_saves_none(tmp_path, gateway):
    gateway(_honest())  # a gateway starting or in safe mode: its status lists neither
    code, text, err = _cli("pull", "--port", "fake", "--out", tmp_path / "pulls", "--json", "--no-decode")
    assert code == 0, err or text
    res = json.loads(text)
    assert "status" not in res and not (Path(res["dir"]) / "status.json").exists()
