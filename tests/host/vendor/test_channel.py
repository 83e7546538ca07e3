"""`nengjian ota publish` (nengjian_host.vendor.channel): a plain directory with a signed channel file
and the bundles, entries per board kept across publishes, staged rollouts, key rotation, and every
input a gateway would refuse refused here with nothing written; `ota verify` on a directory."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json

import pytest
from nengjian_host import cli
from nengjian_host.vendor import channel
from nengjian_host.vendor import updates as host_ota

FILES = [("nengjian/__init__.py", b""), ("nengjian/x.py", b"X = 1\n")]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    for kid in ("vendor-2026", "vendor-2027"):
        host_ota.keygen(d / (kid + ".pem"), d / (kid + ".pub.json"), kid, 2048)
    return d


def bundle(keys, tmp_path, version, boards=("sim",), key="vendor-2026", name=None, **kw):
    out = tmp_path / (name or "app-%s-%s.njota" % (version, "-".join(boards)))
    host_ota.build(out, keys / (key + ".pem"), version, list(boards), files=FILES, **kw)
    return out


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["ota", *argv])
    return code, out.getvalue(), err.getvalue()


def test_publish_writes_a_signed_channel_and_the_bundles_that_verify(keys, tmp_path):
    b = bundle(keys, tmp_path, "0.2.0", ("sim", "esp32s3_4g"))
    site = tmp_path / "site"
    code, out, err = run("publish", "--key", str(keys / "vendor-2026.pem"), "--bundle", str(b), "--out", str(site),
                         "--min-version", "0.1.0", "--json")
    assert code == 0, err
    doc = json.loads(out)
    man = doc["manifest"]
    assert man["key"] == "vendor-2026" and sorted(man["boards"]) == ["esp32s3_4g", "sim"]
    e = man["boards"]["sim"]
    data = b.read_bytes()
    assert e == {"version": "0.2.0", "min_version": "0.1.0", "size": len(data),
                 "sha256": hashlib.sha256(data).hexdigest(), "bundle": "bundles/" + b.name}
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*")) == [
        "bundles", "bundles/" + b.name, "channel.njch"]
    man_bytes, sig = channel.read((site / "channel.njch").read_bytes())
    assert json.loads(man_bytes) == man
    assert channel.signature_ok(man_bytes, sig, json.loads((keys / "vendor-2026.pub.json").read_text()))
    code, out, err = run("verify", str(site), "--pub", str(keys / "vendor-2026.pub.json"))
    assert code == 0, err
    code, out, err = run("verify", str(site), "--pub", str(keys / "vendor-2027.pub.json"))
    assert code == 1 and "signature does not verify" in err


def test_a_later_publish_keeps_other_boards_and_stages_a_release(keys, tmp_path):
    site = tmp_path / "site"
    channel.publish(site, keys / "vendor-2026.pem", [bundle(keys, tmp_path, "0.2.0", ("esp32s3_4g",))])
    done = channel.publish(site, keys / "vendor-2026.pem", [bundle(keys, tmp_path, "0.3.0")], percent=25,
                           gateways=["NJ0001"])
    boards = done["manifest"]["boards"]
    assert boards["esp32s3_4g"]["version"] == "0.2.0"
    assert boards["sim"]["rollout"] == {"percent": 25, "salt": "0.3.0", "gateways": ["NJ0001"]}
    ids = ["NJ%04d" % i for i in range(400)]
    share = sum(channel.in_rollout(boards["sim"]["rollout"], i) for i in ids) / len(ids)
    assert 0.15 < share < 0.35 and channel.in_rollout(boards["sim"]["rollout"], "NJ0001")


def test_key_rotation_is_carried_until_signed_by_the_new_key(keys, tmp_path):
    site = tmp_path / "site"
    b = bundle(keys, tmp_path, "0.2.0")
    man = channel.publish(site, keys / "vendor-2026.pem", [b], introduce=[keys / "vendor-2027.pub.json"])["manifest"]
    assert [k["id"] for k in man["keys"]] == ["vendor-2027"] and man["key"] == "vendor-2026"
    man = channel.publish(site, keys / "vendor-2026.pem", [])["manifest"]  # carried on
    assert [k["id"] for k in man["keys"]] == ["vendor-2027"]
    b2 = bundle(keys, tmp_path, "0.3.0", key="vendor-2027")
    man = channel.publish(site, keys / "vendor-2027.pem", [b2], retire=["vendor-2026"],
                          trust=[keys / "vendor-2026.pub.json"])["manifest"]
    assert man["key"] == "vendor-2027" and "keys" not in man and man["retire"] == ["vendor-2026"]
    trusted = [json.loads((keys / k).read_text()) for k in ("vendor-2026.pub.json", "vendor-2027.pub.json")]
    assert channel.verify(site, trusted[1:]) == []


@pytest.mark.parametrize("case", ["rogue", "changed", "too-large", "self-retire", "untrusted-existing",
                                  "bad-min", "no-board"])
def test_what_a_gateway_would_refuse_is_refused_with_nothing_written(keys, tmp_path, case):
    site = tmp_path / "site"
    pem = keys / "vendor-2026.pem"
    args = ["publish", "--key", str(pem), "--out", str(site)]
    if case == "rogue":
        args += ["--bundle", str(bundle(keys, tmp_path, "0.2.0", key="vendor-2027"))]
        why = "gateways would refuse it"
    elif case == "changed":
        channel.publish(site, pem, [bundle(keys, tmp_path, "0.2.0", name="app.njota")])
        args += ["--bundle", str(bundle(keys, tmp_path, "0.2.1", name="app.njota"))]
        why = "a published bundle never changes under one name"
    elif case == "too-large":
        boards = ["board%03d" % i for i in range(80)]
        args += ["--bundle", str(bundle(keys, tmp_path, "0.2.0", boards, name="many.njota"))]
        why = "gateways read at most 8192"
    elif case == "self-retire":
        args += ["--bundle", str(bundle(keys, tmp_path, "0.2.0")), "--retire-key", "vendor-2026"]
        why = "cannot retire itself"
    elif case == "untrusted-existing":
        channel.publish(site, keys / "vendor-2027.pem", [bundle(keys, tmp_path, "0.2.0", key="vendor-2027")])
        args += ["--bundle", str(bundle(keys, tmp_path, "0.3.0"))]
        why = "give the key that signed it with --trust"
    elif case == "bad-min":
        args += ["--bundle", str(bundle(keys, tmp_path, "0.2.0")), "--min-version", "0.3.0"]
        why = "--min-version 0.3.0 is above the release 0.2.0"
    elif case == "no-board":
        why = "no release for any board"
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} if site.exists() else {}
    code, out, err = run(*args)
    assert code == 2 and why in err and "更新通道没有发布" in err, err
    after = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} if site.exists() else {}
    assert after == before
