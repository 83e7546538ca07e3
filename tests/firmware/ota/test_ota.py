"""Signed application updates: host/nengjian_host/vendor/updates.py builds and signs, firmware/nengjian/ota/
verifies (RSASSA-PKCS1-v1_5 / SHA-256 on plain big ints), installs into the spare slot, switches
atomically, confirms or rolls back. The signature check is compared with the `cryptography`
package; the whole cycle runs on MicroPython, where the verify time is measured and printed."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpyrun import FIRMWARE, run_mpy
from nengjian import ota
from nengjian.ota import updater as otaupdater
from nengjian_host.vendor import updates as host_ota


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    pub = host_ota.keygen(d / "vendor.pem", d / "vendor.pub.json", "test-vendor-1")
    other = host_ota.keygen(d / "other.pem", d / "other.pub.json", "someone-else")
    return {"pem": d / "vendor.pem", "pub": d / "vendor.pub.json", "pubdoc": pub,
            "other_pem": d / "other.pem", "other": other}


MARK = ("nengjian/ota_marker.py", b'VERSION = "9.9.9"\n')


def bundle(keys, tmp_path, files=None, boards=("sim",), version="9.9.9", pem=None, name="b.njota"):
    out = tmp_path / name
    host_ota.build(out, pem or keys["pem"], version, list(boards),
                   files=files if files is not None else [MARK, ("nengjian/__init__.py", b"")])
    return out


def updater(keys, root, events=None):
    key = otaupdater.load_key(str(keys["pub"]))
    return otaupdater.Updater(str(root), key, "sim", (lambda k, t: events.append(t)) if events is not None else None)


def test_signature_check_agrees_with_cryptography(keys):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    priv = host_ota.load_private(keys["pem"])
    key = otaupdater.load_key(str(keys["pub"]))
    assert key[2] == 384
    import hashlib

    for msg in (b"", b"manifest", os.urandom(1000)):
        sig = priv.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        assert otaupdater.rsa_verify(key, hashlib.sha256(msg).digest(), sig)
        assert not otaupdater.rsa_verify(key, hashlib.sha256(msg + b"x").digest(), sig)
        bad = bytearray(sig)
        bad[-1] ^= 1
        assert not otaupdater.rsa_verify(key, hashlib.sha256(msg).digest(), bytes(bad))
        assert not otaupdater.rsa_verify(key, hashlib.sha256(msg).digest(), sig[1:])


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=384))
def test_random_signatures_never_verify(keys, sig):
    key = otaupdater.load_key(str(keys["pub"]))
    assert not otaupdater.rsa_verify(key, b"\x00" * 32, sig.rjust(384, b"\x00"))


def test_install_switches_on_trial_and_select_counts_boots(keys, tmp_path):
    root = tmp_path / "app"
    events = []
    u = updater(keys, root, events)
    man = u.install_file(str(bundle(keys, tmp_path)))
    assert man["version"] == "9.9.9"
    assert (root / "a" / "nengjian" / "ota_marker.py").read_bytes() == MARK[1]
    p = ota.read_pointer(str(root))
    assert p["active"] == "a" and p["state"] == "trial" and p["previous"] == "" and p["boots"] == 0
    assert "installed 9.9.9 in slot a" in events[0]
    assert ota.select(str(root)) == str(root / "a")
    assert ota.select(str(root)) == str(root / "a")  # a power cut during the trial: one more try
    assert ota.select(str(root)) is None  # never healthy: back to the built-in package
    p = ota.read_pointer(str(root))
    assert p["active"] == "" and p["state"] == "confirmed"
    assert u.take_log() and "rolled back from 9.9.9 to built-in" in events[-1]


def test_confirmed_version_stays_and_the_next_goes_to_the_other_slot(keys, tmp_path):
    root = tmp_path / "app"
    u = updater(keys, root, [])
    u.install_file(str(bundle(keys, tmp_path)))
    ota.select(str(root))
    assert u.confirm()
    for _ in range(5):
        assert ota.select(str(root)) == str(root / "a")
    u.install_file(str(bundle(keys, tmp_path, version="9.9.10", name="c.njota")))
    p = ota.read_pointer(str(root))
    assert p["active"] == "b" and p["previous"] == "a" and p["previous_version"] == "9.9.9"
    ota.select(str(root))
    assert u.check_trial(1799) is False
    assert u.check_trial(1800) is True  # not healthy within the window: back to 9.9.9 in slot a
    assert ota.select(str(root)) == str(root / "a")


def test_a_pointer_write_cut_by_a_full_volume_leaves_the_old_pointer_and_nothing_beside(tmp_path, monkeypatch):
    """The pointer goes through the firmware's one atomic writer (nengjian.core.statefile.replace): a
    failed write raises OSError as it always did, the pointer stays whole, and the half-written
    current.new is removed (on a full volume it holds the room the next try needs)."""
    root = tmp_path / "app"
    root.mkdir()
    old = {"active": "", "state": "confirmed", "version": None}
    ota.write_pointer(str(root), old)
    real_dump = json.dump

    def full(doc, f):
        f.write('{"active": "a", "sta')
        raise OSError(28, "ENOSPC")

    monkeypatch.setattr(json, "dump", full)
    with pytest.raises(OSError):
        ota.write_pointer(str(root), {"active": "a", "state": "trial"})
    monkeypatch.setattr(json, "dump", real_dump)
    assert ota.read_pointer(str(root)) == old
    assert sorted(p.name for p in root.iterdir()) == [ota.POINTER]


@pytest.mark.parametrize("damage, why", [
    ("payload", "does not match its hash"),
    ("manifest", "signature does not verify"),
    ("truncate", "truncated"),
    ("magic", "not a Nengjian update bundle"),
])
def test_damaged_bundles_are_refused_and_nothing_switches(keys, tmp_path, damage, why):
    root = tmp_path / "app"
    events = []
    u = updater(keys, root, events)
    data = bytearray(bundle(keys, tmp_path).read_bytes())
    if damage == "payload":
        data[-3] ^= 0x20
    elif damage == "manifest":
        data[20] ^= 0x01
    elif damage == "truncate":
        data = data[:-5]
    else:
        data[0] = 0
    bad = tmp_path / "bad.njota"
    bad.write_bytes(bytes(data))
    with pytest.raises(ota.OtaError) as e:
        u.install_file(str(bad))
    assert why in str(e.value) and why in events[-1]
    assert ota.read_pointer(str(root)) is None
    assert not (root / "a").exists()


def test_bundle_signed_by_another_key_is_refused(keys, tmp_path):
    u = updater(keys, tmp_path / "app")
    with pytest.raises(ota.OtaError, match="test-vendor-1"):
        u.install_file(str(bundle(keys, tmp_path, pem=keys["other_pem"])))


def test_wrong_board_and_paths_outside_the_package_are_refused(keys, tmp_path):
    u = updater(keys, tmp_path / "app")
    with pytest.raises(ota.OtaError, match="this board is sim"):
        u.install_file(str(bundle(keys, tmp_path, boards=["esp32s3_4g"])))
    for path in ("../main.py", "boot.py", "nengjian/../../x.py", "/nengjian/x.py"):
        with pytest.raises(ota.OtaError, match="outside the package"):
            u.install_file(str(bundle(keys, tmp_path, files=[(path, b"x")])))


def _defer(keys, root, path, version, events):
    u = otaupdater.Updater(str(root), otaupdater.load_key(str(keys["pub"])), "sim", lambda k, t: events.append(t),
                    key_path=str(keys["pub"]))
    u.defer(str(path), version)
    return u


def test_a_deferred_bundle_is_checked_and_switched_in_at_the_next_boot(keys, tmp_path):
    """What the update fetcher (and a push that ran out of memory) leaves: checked by
    install_pending() before activate(), in the heap of a fresh boot."""
    root = tmp_path / "app"
    events = []
    path = bundle(keys, tmp_path)
    u = _defer(keys, root, path, "9.9.9", events)
    assert events == ["bundle 9.9.9 received: verified and installed at the restart"]
    assert ota.read_pointer(str(root)) is None  # nothing switched by the running application
    ota.install_pending(str(root))
    assert not path.exists() and not (root / ota.PENDING).exists()
    p = ota.read_pointer(str(root))
    assert p["active"] == "a" and p["state"] == "trial" and p["version"] == "9.9.9"
    assert ota.select(str(root)) == str(root / "a")  # the same boot counts it as trial boot 1
    assert u.take_refused() is None
    assert any(t.startswith("installed 9.9.9 in slot a") for t in u.take_log())
    ota.install_pending(str(root))  # nothing pending: nothing changes
    assert ota.read_pointer(str(root))["active"] == "a"


def test_a_deferred_bundle_refused_at_boot_is_logged_and_remembered_once(keys, tmp_path):
    root = tmp_path / "app"
    events = []
    path = bundle(keys, tmp_path, pem=keys["other_pem"])
    u = _defer(keys, root, path, "9.9.9", events)
    ota.install_pending(str(root))
    assert not path.exists() and not (root / ota.PENDING).exists()
    assert ota.select(str(root)) is None  # the built-in package runs on
    assert u.take_refused() == "9.9.9" and u.take_refused() is None
    assert u.take_log() == ["update refused: signature does not verify with vendor key test-vendor-1"]


def test_a_damaged_pending_note_is_dropped_and_boot_goes_on(keys, tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    (root / ota.PENDING).write_text('{"bundle": ')
    ota.install_pending(str(root))
    assert not (root / ota.PENDING).exists() and ota.read_pointer(str(root)) is None
    # A note whose bundle is gone (power cut between the two): refused, and the boot goes on.
    (root / ota.PENDING).write_text(json.dumps({"bundle": str(tmp_path / "gone.njota"), "version": "9.9.9",
                                                "key": str(keys["pub"]), "board": "sim", "window_s": 300,
                                                "max_boots": 2}))
    ota.install_pending(str(root))
    p = ota.read_pointer(str(root))
    assert p["active"] == "" and p["refused"] == "9.9.9" and p["log"][0].startswith("update refused: ")


def test_host_verify_is_an_independent_check(keys, tmp_path):
    data = bundle(keys, tmp_path).read_bytes()
    assert host_ota.verify(data, keys["pubdoc"]) == []
    assert host_ota.verify(data, keys["other"]) == ["signature does not verify with key someone-else"]
    assert "does not match" in host_ota.verify(data[:-1] + b"!", keys["pubdoc"])[0]


@pytest.mark.mpy
@pytest.mark.parametrize("mpy", [False, True])
def test_full_cycle_on_micropython_with_the_real_package(keys, tmp_path, mpy):
    """Build a bundle of the whole nengjian package (source, or .mpy as the sim board runs it), install
    it on MicroPython, boot from the slot, boot twice more without confirming, and land back on the
    built-in package."""
    from nengjian_host.common import bundle as app_bundle

    march = app_bundle.load_board("sim").mpy_march
    files = host_ota.collect(FIRMWARE / "nengjian", mpy=mpy, march=march) + [MARK]
    out = tmp_path / "full.njota"
    man = host_ota.manifest(files, "9.9.9", ["sim"], host_ota.mpy_version() if mpy else None)
    out.write_bytes(host_ota.pack(man, host_ota.sign(host_ota.load_private(keys["pem"]), man), files))
    root = str(tmp_path / "app")
    install = r"""
import json
from nengjian.ota import updater as otaupdater
ev = []
u = otaupdater.Updater(%r, otaupdater.load_key(%r), "sim", lambda k, t: ev.append(t))
man = u.install_file(%r)
print(json.dumps([man["version"], len(man["files"]), u.last_verify_ms, ev]))
""" % (root, str(keys["pub"]), str(out))
    version, nfiles, verify_ms, ev = json.loads(run_mpy(install, heap="256k").stdout.strip().splitlines()[-1])
    assert version == "9.9.9" and nfiles == len(files)
    print("\nOTA: RSA-3072 signature verified on MicroPython (unix port) in %d ms, %d files, %d bytes"
          % (verify_ms, nfiles, out.stat().st_size))
    boot = r"""
import json, sys
from nengjian import ota
slot = ota.activate(%r)
try:
    import nengjian.ota_marker as m
    mark = m.VERSION
except ImportError:
    mark = None
import nengjian.values.intervals
print(json.dumps([slot, mark, nengjian.values.intervals.__file__]))
""" % root
    for n in range(3):
        slot, mark, where = json.loads(run_mpy(boot, heap="256k").stdout.strip().splitlines()[-1])
        if n < 2:
            assert slot == root + "/a" and mark == "9.9.9" and where.startswith(root + "/a/")
        else:
            assert slot is None and mark is None and where.startswith(str(FIRMWARE))
