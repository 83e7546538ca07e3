"""Files on the laptop that hold a gateway's secrets are the owner's only (0600, their folders 0700),
whatever the umask and also when they are written over older, looser ones: what `nengjian provision
--out` stages (nj_keys.bin with the gateway's key, config/site.json with its PINs), the key store, the
vendor's update key, and an offline flash image, which carries the config it was given. (Pulls and
flash backups: tests/host/crew/test_pull_safety.py and tests/e2e/test_secrets.py.)"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import fakefw
import pytest
from nengjian_host import cli
from nengjian_host.install import flash
from nengjian_host.sim import gateway as sim

PIN = "Qz7kW-p9Lx"
SIM_PIN = "73737373"


@pytest.fixture(autouse=True)
def _homes(tmp_path, monkeypatch):
    monkeypatch.setenv("NENGJIAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NENGJIAN_INVENTORY", str(tmp_path / "home" / "inv.sqlite"))
    monkeypatch.setenv("NENGJIAN_KEYSTORE", str(tmp_path / "home" / "keys"))
    monkeypatch.setenv("NENGJIAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def open_umask():
    old = os.umask(0)  # the loosest a laptop may be set to
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _loose(root: Path) -> list[str]:
    return ["%s %o" % (p, _mode(p)) for p in [root, *root.rglob("*")]
            if _mode(p) != (0o700 if p.is_dir() else 0o600)]


def _site():
    cfg = sim.demo_site("http://127.0.0.1:9/api/register")
    cfg["destinations"][0].update(security="sm4-cbc-token", valid="yunnan", success_code=200, pin=PIN)
    cfg["network"] = {"apn": "cmnet", "pin": SIM_PIN}
    return cfg


@pytest.mark.parametrize("board", ["esp32s3_4g", "sim"])
def test_provision_out_is_private_also_over_older_files(tmp_path, capsys, open_umask, board):
    (tmp_path / "site.json").write_text(json.dumps(_site()))
    out = tmp_path / "o"
    # What an earlier run of an older version left: everything world-readable.
    (out / "config").mkdir(parents=True, mode=0o777)
    (out / "config" / "site.json").write_text("{}")
    (out / "config" / "site.json").chmod(0o666)
    out.chmod(0o777)
    (tmp_path / "home" / "keys").mkdir(parents=True, mode=0o755)
    argv = ["provision", "--config", str(tmp_path / "site.json"), "--serial", "NJ0001", "--mac",
            "24:0a:c4:00:00:01", "--board", board, "--out", str(out)]
    assert cli.main(argv) == 0, capsys.readouterr()
    staged = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "config/site.json" in staged and ("nj_keys.bin" in staged or "nj_keys/key.pem" in staged)
    assert SIM_PIN in (out / "config" / "site.json").read_text()  # the gateway needs it: kept, but private
    assert _loose(out) == []
    keys = tmp_path / "home" / "keys"
    assert _mode(keys) == 0o700 and all(_mode(p) == 0o600 for p in keys.iterdir())
    printed = capsys.readouterr()
    assert PIN not in printed.out + printed.err and SIM_PIN not in printed.out + printed.err


def test_vendor_update_key_is_private(tmp_path, open_umask):
    assert cli.main(["ota", "keygen", "--id", "vendor-t", "--out", str(tmp_path / "keys")]) == 0
    assert _mode(tmp_path / "keys") == 0o700 and _mode(tmp_path / "keys" / "vendor-t.pem") == 0o600


def test_an_offline_image_with_a_provisioned_config_is_private(tmp_path, capsys, open_umask):
    (tmp_path / "site.json").write_text(json.dumps(_site()))
    staged = tmp_path / "staged"
    assert cli.main(["provision", "--config", str(tmp_path / "site.json"), "--serial", "NJ0001", "--mac",
                     "24:0a:c4:00:00:01", "--board", "esp32_eth", "--out", str(staged)]) == 0
    fw = fakefw.micropython_bin(tmp_path / "fw.bin", "esp32", "8MB")
    img = tmp_path / "img"
    code = cli.main(["flash", "--board", "esp32_eth", "--firmware", str(fw), "--provisioned", str(staged),
                     "--out", str(img), "--json"])
    assert code == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert PIN not in out and SIM_PIN not in out
    merged = (img / "merged.bin").read_bytes()
    assert SIM_PIN.encode() in merged  # the image is the flash: it holds the config, so it is the owner's only
    assert _loose(img) == []
    assert json.loads((img / "image.json").read_text())["board"] == "esp32_eth"
    assert PIN not in (img / "image.json").read_text() and SIM_PIN not in (img / "image.json").read_text()


def test_a_backup_read_off_a_device_is_private_from_its_first_byte(tmp_path, monkeypatch, open_umask):
    """read_flash makes the file 0600 before esptool writes a byte (esptool would create it 0644 under
    a usual umask, and a crash could leave it so)."""
    seen = {}

    def fake_esptool(args, timeout=600):
        import subprocess

        dest = Path(args[-1])
        seen["mode_before_write"] = _mode(dest) if dest.exists() else None
        dest.write_bytes(b"\xff" * 16)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(flash, "esptool", fake_esptool)
    conn = flash.Connection("emulated", "esp32", reset=False)
    dest = tmp_path / "vfs.bin"
    dest.write_bytes(b"old")
    dest.chmod(0o644)
    assert flash.read_flash(conn, 0x200000, 16, dest) == b"\xff" * 16
    assert seen["mode_before_write"] == 0o600 and _mode(dest) == 0o600
