"""What firmware/main.py relies on, pinned. main.py is written once, when a gateway is flashed, and is
never updated on a gateway: bundles (signed updates) replace only the `nengjian` package. So every
package a gateway may ever run - this one, and any version rolled back to - must keep the names
main.py calls, and the bundle format and slot names the updater shares with the host tools and with
older firmware must stay as they are. tests/test_layers.py checks main.py imports nothing else."""

import hashlib
import json
import struct

import pytest
from mpyrun import FIRMWARE, run_mpy
from nengjian import ota
from nengjian.ota import updater as otaupdater
from nengjian_host.vendor import updates as host_updates

MAIN_SHA256 = "c11ce00ebd3162dd6e9a0a784bc82fd2fabf0ee81dbde17da88ea10cfb9eb54c"


def test_main_py_is_the_one_every_gateway_has():
    got = hashlib.sha256((FIRMWARE / "main.py").read_bytes()).hexdigest()
    assert got == MAIN_SHA256, (
        "firmware/main.py changed (sha256 %s). main.py is never updated on a gateway: gateways in the field "
        "keep the one they were flashed with and bundles replace only the nengjian package, so a changed "
        "main.py would run nowhere but on newly flashed boards, and packages would have to serve both. "
        "It must not change: put what you need into nengjian.ota or nengjian.app instead." % got)


BOOT_NAMES = r"""
import json, sys
root = %r
from nengjian import ota
names = {n: callable(getattr(ota, n, None)) for n in ("install_pending", "activate", "trial", "failed")}
# As main.py calls them, on a gateway with no update ever installed.
calls = [ota.install_pending(root), ota.trial(root), ota.failed(root, "RuntimeError: x")]
boot_loaded_updater = "nengjian.ota.updater" in sys.modules
slot = ota.activate(root)
left = sorted(m for m in sys.modules if m == "nengjian" or m.startswith("nengjian."))
from nengjian import app
print(json.dumps([names, calls, slot, boot_loaded_updater, left, callable(app.main),
                  isinstance(app.VERSION, str) and app.VERSION]))
"""


@pytest.mark.mpy
def test_the_names_main_py_calls_exist_on_micropython(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    out = run_mpy(BOOT_NAMES % str(root), heap="512k").stdout.strip().splitlines()[-1]
    names, calls, slot, boot_loaded_updater, left, app_main, version = json.loads(out)
    assert names == {"install_pending": True, "activate": True, "trial": True, "failed": True}
    assert calls == [None, False, None] and slot is None
    assert app_main and version
    # The boot path is apart from the updater: an ordinary boot does not load it, and activate()
    # leaves no nengjian module behind for the application to find stale.
    assert not boot_loaded_updater and left == []


def test_the_bundle_format_is_the_one_the_host_builds(tmp_path):
    assert otaupdater.MAGIC == host_updates.MAGIC
    assert otaupdater.ALG == host_updates.ALG
    # header: MAGIC, manifest length, signature length (host: MAGIC + struct "<II")
    assert otaupdater.HEAD == len(host_updates.MAGIC) + struct.calcsize("<II")
    files = [("nengjian/__init__.py", b"")]
    man = host_updates.manifest(files, "9.9.9", ["sim"])
    data = host_updates.pack(man, b"s" * 384, files)
    assert data[:8] == otaupdater.MAGIC
    assert int.from_bytes(data[8:12], "little") == len(man) and int.from_bytes(data[12:16], "little") == 384
    assert json.loads(man)["format"] == 1  # the only format the updater installs


def test_the_slot_names_older_firmware_reads_stay():
    """The host has no constant for these: they are the gateway's own, read by every package a
    gateway may roll back to (its built-in one included) - renamed, a rollback would find no pointer."""
    assert (ota.POINTER, ota.MANIFEST, ota.PENDING) == ("current", "MANIFEST.json", "pending.json")
    assert otaupdater.slots.MANIFEST == ota.MANIFEST  # the updater installs what boot looks for
    # No file a bundle carries can be taken for a slot's manifest: the host packs only the package.
    paths = [p for p, _b in host_updates.collect()]
    assert paths and all(p.startswith("nengjian/") for p in paths) and ota.MANIFEST not in paths
