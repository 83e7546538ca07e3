"""Signed application updates: host/nengjian_host/vendor/updates.py builds and signs, firmware/nengjian/ota/
verifies (RSASSA-PKCS1-v1_5 / SHA-256 on plain big ints), installs into the spare slot, switches
atomically, confirms or rolls back. The signature check is compared with the `cryptography`
package; the whole cycle runs on MicroPython, where the verify time is measured and printed."""

import hashlib
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


def bundle(keys, tmp_path, files=None, boards=("sim",), version="9.9.9", pem=None, name="b.njota",
           replaces_down_to=None):
    out = tmp_path / name
    down = {"replaces_down_to": replaces_down_to} if replaces_down_to else {}
    host_ota.build(out, pem or keys["pem"], version, list(boards),
                   files=files if files is not None else [MARK, ("nengjian/__init__.py", b"")], **down)
    return out


def updater(keys, root, events=None, running=None):
    key = otaupdater.load_key(str(keys["pub"]))
    kw = {"running": running} if running else {}
    return otaupdater.Updater(str(root), key, "sim", (lambda k, t, c=None: events.append(t)) if events is not None else None,
                              **kw)


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
    u = otaupdater.Updater(str(root), otaupdater.load_key(str(keys["pub"])), "sim", lambda k, t, c=None: events.append(t),
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
u = otaupdater.Updater(%r, otaupdater.load_key(%r), "sim", lambda k, t, c=None: ev.append(t))
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


# ---- anti-rollback: a persisted minimum version
def test_a_signed_bundle_older_than_the_running_version_is_refused_before_anything_is_written(keys, tmp_path):
    root = tmp_path / "app"
    events = []
    u = updater(keys, root, events, running="0.3.0")
    with pytest.raises(ota.OtaError, match=r"version 0\.2\.0 is older than the minimum 0\.3\.0: a downgrade needs a "
                                           r"bundle signed with replaces_down_to"):
        u.install_file(str(bundle(keys, tmp_path, version="0.2.0")))
    assert "older than the minimum" in events[-1]  # the ledger has it
    assert ota.read_pointer(str(root)) is None and not (root / "a").exists()
    u.install_file(str(bundle(keys, tmp_path, version="0.3.0", name="same.njota")))  # the same version: allowed
    assert ota.read_pointer(str(root))["version"] == "0.3.0"


def test_the_minimum_is_persisted_and_raised_only_by_a_confirm(keys, tmp_path):
    root = tmp_path / "app"
    u = updater(keys, root, [], running="1.0.0")
    u.install_file(str(bundle(keys, tmp_path, version="2.0.0")))
    assert u.minimum() == "1.0.0"  # on trial: not yet
    assert u.check_trial(10 ** 9)  # never healthy: rolled back, and the minimum stays
    u = updater(keys, root, [], running="1.0.0")  # the next boot
    assert u.minimum() == "1.0.0"
    u.install_file(str(bundle(keys, tmp_path, version="1.5.0", name="c.njota")))
    ota.select(str(root))
    assert u.confirm() and ota.read_pointer(str(root))["min_version"] == "1.5.0"
    # Whatever runs next and whoever checks (a boot check knows no running version): 1.2.0 is refused.
    for running in ("1.5.0", None):
        with pytest.raises(ota.OtaError, match="older than the minimum 1.5.0"):
            updater(keys, root, [], running=running).install_file(str(bundle(keys, tmp_path, version="1.2.0",
                                                                             name="d.njota")))
    assert ota.read_pointer(str(root))["version"] == "1.5.0"


def test_an_older_bundle_fetched_over_the_uplink_is_refused_at_the_boot_check(keys, tmp_path):
    """The fetcher's path: the bundle is checked by install_pending() in a fresh heap."""
    root = tmp_path / "app"
    u = updater(keys, root, [], running="1.0.0")
    u.install_file(str(bundle(keys, tmp_path, version="2.0.0")))
    ota.select(str(root))
    assert u.confirm()
    old = bundle(keys, tmp_path, version="1.0.0", name="old.njota")
    events = []
    _defer(keys, root, old, "1.0.0", events)
    ota.install_pending(str(root))
    p = ota.read_pointer(str(root))
    assert (p["active"], p["version"], p["refused"]) == ("a", "2.0.0", "1.0.0")
    assert p["log"][-1] == ("update refused: version 1.0.0 is older than the minimum 2.0.0: a downgrade needs a "
                            "bundle signed with replaces_down_to")
    assert not old.exists() and not (root / "b").exists()


def test_a_deliberate_downgrade_needs_the_signed_field_and_lowers_the_minimum_once_confirmed(keys, tmp_path):
    root = tmp_path / "app"
    u = updater(keys, root, [], running="1.0.0")
    u.install_file(str(bundle(keys, tmp_path, version="3.0.0")))
    ota.select(str(root))
    assert u.confirm()
    with pytest.raises(ota.OtaError, match="older than the minimum 3.0.0"):
        u.install_file(str(bundle(keys, tmp_path, version="2.0.0", name="plain.njota")))
    down = bundle(keys, tmp_path, version="2.0.0", name="down.njota", replaces_down_to="1.5.0")
    assert host_ota.describe(down.read_bytes())["replaces_down_to"] == "1.5.0"
    u.install_file(str(down))
    assert u.check_trial(10 ** 9)  # the downgrade is not healthy: back to 3.0.0, the minimum with it
    assert u.minimum() == "3.0.0"
    u.install_file(str(down))
    ota.select(str(root))
    assert u.confirm() and u.minimum() == "1.5.0"
    with pytest.raises(ota.OtaError, match="older than the minimum 1.5.0"):
        u.install_file(str(bundle(keys, tmp_path, version="1.4.0", name="e.njota")))
    u.install_file(str(bundle(keys, tmp_path, version="1.6.0", name="f.njota")))


def _signed(keys, tmp_path, doc, name):
    files = [MARK, ("nengjian/__init__.py", b"")]
    doc = dict({"format": 1, "boards": ["sim"], "mpy": None,
                "files": [[p, len(b), hashlib.sha256(b).hexdigest()] for p, b in files]}, **doc)
    man = json.dumps(doc).encode()
    out = tmp_path / name
    out.write_bytes(host_ota.pack(man, host_ota.sign(host_ota.load_private(keys["pem"]), man), files))
    return out


@pytest.mark.parametrize("doc, why", [
    ({"version": "2.0.0", "replaces_down_to": "9.0.0"}, "replaces_down_to '9.0.0' is not a version at or below 2.0.0"),
    ({"version": "2.0.0", "replaces_down_to": "latest"}, "replaces_down_to 'latest' is not a version"),
    ({"version": "dev-build"}, "version 'dev-build' does not start with a number"),
])
def test_a_version_the_gateway_cannot_order_is_refused_even_when_signed(keys, tmp_path, doc, why):
    u = updater(keys, tmp_path / "app", [], running="1.0.0")
    with pytest.raises(ota.OtaError, match=why.replace("(", r"\(").replace(".", r"\.")):
        u.install_file(str(_signed(keys, tmp_path, doc, "x.njota")))
    assert ota.read_pointer(str(tmp_path / "app")) is None
    # and the vendor's tools never sign one
    with pytest.raises(ValueError):
        host_ota.manifest([MARK], doc["version"], ["sim"], replaces_down_to=doc.get("replaces_down_to"))


def test_the_signer_offers_the_downgrade_field(keys, tmp_path, capsys):
    from nengjian_host import cli

    out = tmp_path / "down.njota"
    assert cli.main(["ota", "build", "--key", str(keys["pem"]), "--version", "0.2.1", "--replaces-down-to", "0.2.0",
                     "--board", "sim", "--out", str(out)]) == 0
    assert host_ota.describe(out.read_bytes())["replaces_down_to"] == "0.2.0"
    assert "a signed downgrade" in capsys.readouterr().out
    assert cli.main(["ota", "build", "--key", str(keys["pem"]), "--version", "0.2.1", "--replaces-down-to", "0.3",
                     "--board", "sim", "--out", str(tmp_path / "bad.njota")]) == 2
    err = capsys.readouterr().err
    assert "must be a version at or below 0.2.1" in err and "更新包没有生成" in err
    with pytest.raises(SystemExit):
        cli.main(["ota", "build", "--help"])
    assert "--replaces-down-to X" in capsys.readouterr().out


ORDER = ["0.0.0", "0.1", "0.1.0-sim", "0.2.0-rc1", "0.2.0", "0.2.0+b7", "0.10.0", "1", "1.0.1", "9.9.9", "9.9.10",
         "10.0.0"]


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[0-9A-Za-z.+_-]{1,12}", fullmatch=True))
def test_the_host_orders_versions_as_the_gateway_does(v):
    assert host_ota.version_key(v) == otaupdater.vkey(v)


@pytest.mark.mpy
def test_versions_are_ordered_on_micropython_as_on_the_host():
    code = "import json\nfrom nengjian.ota import updater\nprint(json.dumps([updater.vkey(v) for v in %r]))" % (
        ORDER + ["dev", "", ".1", "v1.2"])
    got = json.loads(run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])
    want = [host_ota.version_key(v) for v in ORDER + ["dev", "", ".1", "v1.2"]]
    assert [tuple(g) if g is not None else None for g in got] == want
    keys_ = [host_ota.version_key(v) for v in ORDER]
    assert keys_ == sorted(keys_) and keys_[2] == keys_[1] == (0, 1) and want[-4:] == [None] * 4
