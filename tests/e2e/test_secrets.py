"""Secrets end to end on the sim board: known values are planted (the platform PIN and the SIM PIN in
the site config, the gateway's key, the SM4 secretKey and the bearer tokens the reference platform
hands out), the gateway is driven through a failed registration (a register answer without
centerDataURL, secretKey and all), a token refusal (a wrong PIN) and a renewal, then the crew's tools
run against it: `nengjian status`, `nengjian pull`, `nengjian ledger` on the pull, and `nengjian flash`
with its backup, on an emulated ESP32 whose flash holds that gateway's config and data.

Every console line, every command's output and every file they write is then searched for each
secret: none may hold one. The exception is the flash backup's images, which are copies of the flash
and so necessarily hold the config: they (and every folder around them) must be readable by their
owner only, as must the pull.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from nengjian_host import cli
from nengjian_host.common import bundle
from nengjian_host.install import flash
from nengjian_host.sim.modem import SimModem
from simrig import SimRig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host" / "install"))
import fakefw  # noqa: E402  (tests/host/install: a MicroPython-shaped firmware .bin)

pytestmark = [pytest.mark.e2e]

HEAP = "384k"  # the token variant's SM4 cipher (tests/e2e/test_platform_variants.py)
PIN = "Qz7kW-p9Lx"  # the platform PIN (destinations[].pin), printable ASCII
SIM_PIN = "73737373"  # the SIM PIN (network.pin)
TIMING = {"at_ms": 200, "boot_ms": 1500, "off_ms": 300, "pwrkey_on_ms": 60, "pwrkey_off_ms": 250,
          "pwrkey_off_simcom_ms": 400, "guard_ms": 400, "reg_ms": 5000, "reg_poll_ms": 300}


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class EmulatedChip:
    """Stands in for esptool talking to an ESP32 with `image` as its flash (flash-id, read-flash,
    write-flash, verify-flash); what needs no chip (image-info, merge-bin) runs the real esptool."""

    def __init__(self, image: bytes, real):
        self.flash = bytearray(image)
        self.real = real

    def __call__(self, args, timeout=600):
        if "--port" not in args:
            return self.real(args, timeout)
        rest = list(args)
        for opt in ("--chip", "--port", "--baud", "--before", "--after"):
            while opt in rest:
                i = rest.index(opt)
                del rest[i:i + 2]
        cmd, params = rest[0], rest[1:]
        text = ""
        if cmd == "flash-id":
            text = "Chip is ESP32-D0WD-V3\nMAC: 24:0a:c4:00:00:42\nDetected flash size: 8MB\n"
        elif cmd == "read-flash":
            off, size, dest = int(params[0], 0), int(params[1], 0), params[2]
            with open(dest, "r+b" if os.path.exists(dest) else "wb") as f:  # as esptool: the file's mode kept
                f.truncate(0)
                f.write(self.flash[off:off + size])
        elif cmd in ("write-flash", "verify-flash"):
            for off, blob in self._regions(params):
                if cmd == "write-flash":
                    self.flash[off:off + len(blob)] = blob
                elif bytes(self.flash[off:off + len(blob)]) != blob:
                    return subprocess.CompletedProcess(args, 2, "", "verify failed at %#x" % off)
        else:
            return subprocess.CompletedProcess(args, 2, "", "emulated chip: %s not known" % cmd)
        return subprocess.CompletedProcess(args, 0, text, "")

    @staticmethod
    def _regions(params):
        from intelhex import IntelHex

        for off, path in zip(params[::2], params[1::2]):
            if path.endswith(".hex"):
                ih = IntelHex(path)
                for start, end in ih.segments():
                    yield start, ih.tobinstr(start, end - 1)
            else:
                yield int(off, 0), Path(path).read_bytes()


def _whole_flash(data_img: bytes, files: dict[str, bytes]) -> bytes:
    """An esp32_eth gateway's flash: our partition table, /config in vfs, the store in data."""
    board = bundle.load_board("esp32_eth")
    image = bytearray(b"\xff" * board.flash_size)
    table = bundle.partition_table_bin(board.partitions)
    image[0x8000:0x8000 + len(table)] = table
    vfs = board.part("vfs")
    app_fs = bundle.make_lfs_image(dict(files, **{"main.py": b"import app\n"}), vfs.size)
    image[vfs.offset:vfs.offset + len(app_fs)] = app_fs
    data = board.part("data")
    image[data.offset:data.offset + len(data_img)] = data_img
    return bytes(image)


def _hits(secrets: dict[str, str], where: dict[str, bytes]) -> list[str]:
    found = []
    for name, value in secrets.items():
        needle = value.encode()
        for place, blob in where.items():
            if needle in blob:
                at = blob.index(needle)
                found.append("%s (%s) in %s: ...%r..." % (name, value, place, blob[max(0, at - 80):at + 80]))
    return found


def _files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _private(root: Path) -> list[str]:
    """Every folder under root (and root) 0700, every file 0600: what is not."""
    bad = []
    for p in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        want = 0o700 if p.is_dir() else 0o600
        if mode != want:
            bad.append("%s is %o, not %o" % (p, mode, want))
    return bad


def test_no_secret_reaches_a_log_a_status_a_pull_a_ledger_or_a_flash_backup(tmp_path, monkeypatch):
    rig = SimRig(tmp_path, platform_kw={"variant": "sm4-cbc-token", "valid_encoding": "yunnan",
                                        "success_code": 200, "pin": "not-" + PIN})
    outputs: dict[str, bytes] = {}
    try:
        cfg = rig.site()
        cfg["destinations"][0].update(security="sm4-cbc-token", valid="yunnan", success_code=200, pin=PIN)
        cfg["network"] = {"apn": "cmnet", "pin": SIM_PIN}
        key = _key_pem()
        ctl = tmp_path / "pwrkey"
        with SimModem(str(ctl), pin=SIM_PIN, on_ms=50, off_ms=200, boot_s=0.3, guard_s=0.3) as modem:
            modem.sim = "pin"
            gw = rig.gateway_process(cfg, heap=HEAP)
            gw.extra_env.update({"NJ_MODEM": modem.path, "NJ_MODEM_CTL": str(ctl),
                                 "NJ_MODEM_TIMING": json.dumps(TIMING)})
            (gw.dir / "nj_keys").mkdir()
            (gw.dir / "nj_keys" / "key.pem").write_bytes(key)
            (gw.dir / "config" / "client.key").write_bytes(key)
            platform = rig.platform
            # Register "succeeds" without centerDataURL; without the other URLs too, the answer is short
            # enough for the gateway to quote it whole, secretKey included.
            platform.set_fault("register_partial", drop=["centerDataURL", "loadDicVersionURL", "centerInfoURL",
                                                         "centerInfoDownloadURL"])

            gw.start()
            rig.wait_for(lambda: platform.stats()["faultHits"].get("register_partial", 0) >= 1, timeout=60,
                         what="a registration answered without centerDataURL")
            gw.expect(r"city: delivery failing", timeout=30)
            platform.set_fault("ok")
            # Registered now, but the platform expects another PIN: the token is refused.
            rig.wait_for(lambda: platform.stats()["requests"].get("token", 0) >= 1, timeout=60,
                         what="a token request")
            gw.expect(r"token refused", timeout=30)
            assert modem.sim == "ready", "the SIM PIN was not entered"
            platform.service.pin = PIN
            rig.wait_for(lambda: len(platform.records()) >= 2, timeout=90, what="values at the platform")
            platform.expire_tokens()  # one more token, renewed after a 401
            n = len(platform.records())
            rig.wait_for(lambda: len(platform.tokens_issued()) >= 2 and len(platform.records()) >= n + 2,
                         timeout=90, what="values after the token was renewed")

            for name, argv in (("status --json", ("status", "--port", gw.port, "--json", "--events", "200")),
                               ("status", ("status", "--port", gw.port, "--events", "200"))):
                code, text, err = _cli(*argv)
                assert code in (0, 1), err
                outputs["`nengjian %s` output" % name] = (text + err).encode()
            pulls = tmp_path / "pulls"
            code, text, err = _cli("pull", "--port", gw.port, "--out", pulls, "--json")
            assert code == 0, err or text
            outputs["`nengjian pull` output"] = (text + err).encode()
            final = Path(json.loads(text)["dir"])
            assert {f["kind"] for f in json.loads(text)["files"]} >= {"store", "config"}
            html = tmp_path / "report" / "ledger.html"
            code, text, err = _cli("ledger", final, "--html", html, "--png-dir", tmp_path / "report" / "png",
                                   "--json")
            assert code == 0, err or text
            outputs["`nengjian ledger` output"] = (text + err).encode()
            gw.stop()
        outputs["the gateway's console"] = gw.output().encode()

        # A flash backup of the same gateway as an ESP32 would hold it: /config (site.json, the key) in
        # vfs, the store in data.
        files = {"config/site.json": gw.config_path.read_bytes(), "config/client.key": key}
        chip = EmulatedChip(_whole_flash(gw.image_path.read_bytes(), files), flash.esptool)
        monkeypatch.setattr(flash, "esptool", chip)
        cache = tmp_path / "cache"
        monkeypatch.setenv("NENGJIAN_CACHE", str(cache))
        fw = fakefw.micropython_bin(tmp_path / "fw.bin", "esp32", "8MB")
        code, text, err = _cli("flash", "--board", "esp32_eth", "--firmware", fw, "--port", "emulated",
                               "--no-reset", "--json")
        assert code == 0, err or text
        outputs["`nengjian flash` output"] = (text + err).encode()
        record = Path(json.loads(text)["record"])
        assert json.loads(text)["config_carried"] == ["config/client.key", "config/site.json"]

        secrets = {"platform PIN": PIN, "SIM PIN": SIM_PIN,
                   "gateway key": key.decode().splitlines()[2]}
        for d in platform.devices():
            secrets["secretKey of %s" % d["deviceId"]] = d["secretKey"]
        for i, token in enumerate(platform.tokens_issued()):
            secrets["token %d" % i] = token
        assert len(secrets) >= 6  # a secretKey and at least two tokens were handed out
        where = dict(outputs)
        where.update(_files_under(pulls))
        where.update(_files_under(tmp_path / "report"))
        images = {p for p in record.rglob("*") if p.suffix in (".bin", ".hex")}
        # The images are the flash itself, config included: kept private instead (below).
        where.update({k: v for k, v in _files_under(cache / "devices").items() if Path(k) not in images})
        assert any(SIM_PIN.encode() in p.read_bytes() for p in images)  # a backup that holds the config
        hits = _hits(secrets, where)
        assert not hits, "%d secret(s) found:\n%s" % (len(hits), "\n".join(hits))
        assert _private(final) == []
        assert _private(record) == []
        assert _private(cache / "devices") == []
    finally:
        rig.close()
