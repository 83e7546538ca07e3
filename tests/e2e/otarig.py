"""What the end-to-end update tests on the sim board share (test_ota_sim.py for directory slots,
test_ota_romfs_sim.py for ROMFS): the vendor key, a bundle whose app crashes at import, `nengjian ota`
as a crew runs it, and a gateway started with the vendor's key beside its site config."""

from __future__ import annotations

import contextlib
import io
import re
import shutil

import pytest
from nengjian_host import cli
from nengjian_host.common import bundle as app_bundle
from nengjian_host.vendor import updates as host_ota

BOOTED = r"event\s+boot: started firmware (\S+)"


def vendor_key(d):
    """The vendor's key pair in d (vendor.pem, vendor.pub.json)."""
    host_ota.keygen(d / "vendor.pem", d / "vendor.pub.json", "test-vendor")


def crashing_files(d, march, version):
    """The package of `version` (.mpy for march) whose nengjian/app.mpy raises at import."""
    src = d / "app.py"
    src.write_text('raise RuntimeError("app of %s breaks at import")\n' % version)
    broken = app_bundle.compile_module(src, "nengjian/app.py", None)
    crash = [(p, broken if p == "nengjian/app.mpy" else b)
             for p, b in host_ota.collect(mpy=True, march=march, version=version)]
    assert any(p == "nengjian/app.mpy" for p, _b in crash)
    return crash


def ota_cli(*argv) -> tuple[int, str, str]:
    """`nengjian ota ACTION ...` as a crew runs it; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["ota", *argv])
    return code, out.getvalue(), err.getvalue()


def boots_by_kind(dut):
    """(application starts, resets into a fresh heap after a channel check at boot) in the output so
    far. A gateway whose running heap has no room for the channel's signature check restarts into
    that check, which resets once more before the application starts: each such deferral adds two
    boots and one start of the application, so counts of boots come from these, not fixed numbers."""
    out = dut.output()
    starts = len(re.findall(BOOTED, out))
    fresh = out.count("ota: update channel checked at boot: resetting into a fresh heap")
    assert dut.gateway.boots == starts + fresh, (dut.gateway.boots, starts, fresh)
    return starts, fresh


def ledger_texts(dut, n=60):
    return [(e["kind"], e["text"]) for e in dut.events(n)]


def start(dut, bundles, max_boots=2, romfs=False, **ota):
    """Start the sim gateway with no app slots and the vendor key of `bundles`; (built-in version, APP_DIR)."""
    if dut.kind != "sim":
        pytest.skip("the bundles are built for the sim board")
    if romfs:
        dut.gateway.romfs = True
    cfg = dut.site()
    cfg["health"] = {"healthy_s": 30}  # the schema's shortest: confirm comes 30 s after a boot
    cfg["ota"] = dict(ota, max_boots=max_boots)
    app_dir = dut.gateway.dir / "app"
    shutil.rmtree(app_dir, ignore_errors=True)
    # Provisioning puts the vendor's public key beside the site config.
    shutil.copy(bundles / "vendor.pub.json", dut.gateway.dir / "config" / "ota_key.json")
    dut.start(cfg)
    return dut.expect(BOOTED, timeout=60).group(1), app_dir
