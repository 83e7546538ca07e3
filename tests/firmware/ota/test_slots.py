"""The update slots and their pointer (firmware/nengjian/ota/slots.py, filled by the updater): whatever
the sequence of installs, trial boots, confirms and rollbacks, the gateway keeps a confirmed version to
return to, each slot proves to hold what the vendor signed, and the pointer's labels name what the
slots really hold. An install while a version is on trial is refused, saying why, before anything is
written. Power cuts: test_slots_powercut.py."""

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nengjian import ota
from nengjian.ota import proof
from nengjian.ota import updater as otaupdater


def make(vendor, root, running=None, events=None, key_path=None):
    kw = {"running": running} if running else {}
    if key_path:
        kw["key_path"] = key_path
    return otaupdater.Updater(str(root), otaupdater.load_key(str(vendor.pub)), "sim",
                              (lambda k, t, c=None: events.append(t)) if events is not None else None, **kw)


def held(root, slot):
    """The version a slot's files really are (its marker module), whatever the pointer says."""
    try:
        text = (Path(root) / slot / "nengjian" / "ota_marker.py").read_text()
    except OSError:
        return None
    return text.split('"')[1]


def _trial_of_2_over_1(vendor, root):
    u = make(vendor, root)
    u.install_file(str(vendor.bundle("1.0.0")))
    ota.select(str(root))
    assert u.confirm()
    u.install_file(str(vendor.bundle("2.0.0")))
    assert ota.select(str(root)) == str(root / "b")  # 2.0.0 on trial, boot 1 of 2
    return u


def test_an_install_during_a_trial_is_refused_and_the_confirmed_fallback_stays(vendor, tmp_path):
    """The fault this guards: the install went into the slot of the confirmed fallback (the one not
    running), and the rollback then "confirmed" the new version under the old one's label."""
    root = tmp_path / "app"
    u = _trial_of_2_over_1(vendor, root)
    with pytest.raises(ota.OtaError, match=r"version 2\.0\.0 is on trial \(boot 1 of 2\): .*no confirmed "
                                           r"version to return to"):
        u.install_file(str(vendor.bundle("3.0.0")))
    assert held(root, "a") == "1.0.0" and held(root, "b") == "2.0.0"
    p = ota.read_pointer(str(root))
    assert (p["active"], p["version"], p["previous"], p["previous_version"], p["state"]) == (
        "b", "2.0.0", "a", "1.0.0", "trial")
    # The trial never gets healthy: back to 1.0.0, which is what slot a holds.
    assert ota.select(str(root)) == str(root / "b")
    assert ota.select(str(root)) == str(root / "a")
    p = ota.read_pointer(str(root))
    assert (p["active"], p["version"], p["state"]) == ("a", "1.0.0", "confirmed") and held(root, "a") == "1.0.0"
    # Once it is decided, installs go on: into b, the slot no rollback returns to.
    u.install_file(str(vendor.bundle("3.0.0")))
    assert held(root, "a") == "1.0.0" and held(root, "b") == "3.0.0"


def test_nothing_is_received_or_left_for_the_boot_while_on_trial(vendor, tmp_path):
    """The console's receive (incoming), the fetcher's hand-over (defer) and the check at boot
    (install_pending) refuse as the install does, before a byte is written."""
    root = tmp_path / "app"
    u = _trial_of_2_over_1(vendor, root)
    u.key_path = str(vendor.pub)
    for call in (lambda: u.incoming(5000), lambda: u.defer(str(vendor.bundle("3.0.0")), "3.0.0")):
        with pytest.raises(ota.OtaError, match="version 2.0.0 is on trial"):
            call()
    assert not (root / otaupdater.INCOMING).exists() and not (root / ota.PENDING).exists()
    # A bundle left for the boot before the trial began (not a path today's code takes) is refused there.
    left = tmp_path / "left.njota"
    left.write_bytes(vendor.bundle("3.0.0").read_bytes())
    (root / ota.PENDING).write_text(json.dumps({"bundle": str(left), "version": "3.0.0", "key": str(vendor.pub),
                                                "board": "sim", "window_s": 300, "max_boots": 2}))
    ota.install_pending(str(root))
    p = ota.read_pointer(str(root))
    assert p["active"] == "b" and p["previous"] == "a" and p["refused"] == "3.0.0"
    assert "is on trial" in p["log"][-1] and held(root, "a") == "1.0.0" and not left.exists()


def test_a_slot_keeps_its_signature_and_proves_what_it_holds(vendor, tmp_path):
    root = tmp_path / "app"
    u = make(vendor, root)
    u.install_file(str(vendor.bundle("1.0.0")))
    assert (root / "a" / "MANIFEST.sig").stat().st_size == 384
    assert proof.prove(u.root, u.key, "a") == "1.0.0"
    marker = root / "a" / "nengjian" / "ota_marker.py"
    good = marker.read_bytes()
    marker.write_bytes(good.replace(b"1.0.0", b"6.6.6"))
    with pytest.raises(ota.OtaError, match="ota_marker.py does not match the signed manifest"):
        proof.prove(u.root, u.key, "a")
    marker.write_bytes(good)
    man = root / "a" / "MANIFEST.json"
    man.write_text(man.read_text().replace('"1.0.0"', '"6.6.6"'))
    with pytest.raises(ota.OtaError, match="signature does not verify"):
        proof.prove(u.root, u.key, "a")
    with pytest.raises(ota.OtaError, match="slot b"):
        proof.prove(u.root, u.key, "b")  # nothing there


VERSIONS = ("1.0.0", "2.0.0", "3.0.0", "4.0.0")
DOWN = "1.5.0"  # signed as a deliberate downgrade (replaces_down_to 1.5.0)
OPS = st.lists(st.one_of(
    st.tuples(st.just("install"), st.sampled_from(VERSIONS)),
    st.just(("downgrade", DOWN)),
    st.just(("boot",)), st.just(("confirm",)), st.just(("window",)), st.just(("failed",)),
), max_size=16)


def _check(u, root, confirmed, floor):
    """What must hold after every step."""
    p = ota.read_pointer(str(root))
    if p is None:
        return
    active = p["active"]
    if active:
        assert held(root, active) == p["version"], "slot %s holds %s, the pointer says %s" % (
            active, held(root, active), p["version"])
        assert proof.prove(u.root, u.key, active) == p["version"]
    else:
        assert p.get("version") is None
    if p["state"] == "trial":
        prev = p.get("previous") or ""
        assert prev != active and p.get("previous_version") in confirmed, p
        if prev:  # the rollback's target: whole, signed, and what its label says
            assert held(root, prev) == p["previous_version"] and proof.prove(u.root, u.key, prev) == p["previous_version"]
        else:
            assert p.get("previous_version") is None
    else:
        assert p.get("version") in confirmed, p
    assert otaupdater.vkey(u.minimum()) == otaupdater.vkey(floor)


@settings(max_examples=80, deadline=None)
@given(ops=OPS)
def test_no_sequence_leaves_the_gateway_without_a_confirmed_version_to_return_to(vendor, ops):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "app"
        u = make(vendor, root, running="0.1.0")
        confirmed = {None}  # the built-in package
        floor = "0.1.0"  # the running version, until a confirm raises it
        downgrade_on_trial = False
        for op in ops:
            before = ota.read_pointer(str(root))
            trial = bool(before and before.get("state") == "trial")
            if op[0] in ("install", "downgrade"):
                version = op[1]
                down = op[0] == "downgrade"
                older = otaupdater.vkey(version) < otaupdater.vkey(floor)
                try:
                    u.install_file(str(vendor.bundle(version, version if down else None)))
                except ota.OtaError as e:
                    assert trial or (older and not down), (op, str(e))
                    assert ("is on trial" if trial else "older than the minimum") in str(e)
                    assert ota.read_pointer(str(root)) == before  # nothing switched
                else:
                    assert not trial and (down or not older), op
                    downgrade_on_trial = down
            elif op == ("boot",):
                ota.select(str(root))
            elif op == ("confirm",):
                if u.confirm():
                    p = ota.read_pointer(str(root))
                    confirmed.add(p["version"])
                    if downgrade_on_trial:
                        floor = p["version"]
                    elif otaupdater.vkey(p["version"]) > otaupdater.vkey(floor):
                        floor = p["version"]
            elif op == ("window",):
                u.check_trial(10 ** 9)
            elif op == ("failed",):
                ota.failed(str(root), "RuntimeError: x")
                ota.select(str(root))
            _check(u, root, confirmed, floor)
