"""Provisioning: checks before writing, keys and CSR, NVS credentials, atomic writes, inventory, secrets.

Real: cryptography keys, CSRs and certificates; esp-idf-nvs-partition-gen images read back by our own
NVS parser; SQLite transactions; the sim's directory-backed device. Faked: a device that drops the
link mid-write (FlakyDevice), because a cable pull cannot be produced on demand.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nengjian_host import cli
from nengjian_host.common import devicefiles
from nengjian_host.install import provision
from nengjian_host.sim import gateway as sim

CODE = "91330000573973053F"


@pytest.fixture(autouse=True)
def _homes(tmp_path, monkeypatch):
    monkeypatch.setenv("NENGJIAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NENGJIAN_INVENTORY", str(tmp_path / "home" / "inv.sqlite"))
    monkeypatch.setenv("NENGJIAN_KEYSTORE", str(tmp_path / "home" / "keys"))
    monkeypatch.setenv("NENGJIAN_CACHE", str(tmp_path / "cache"))


def site(code=CODE, point="energy_kwh"):
    cfg = sim.demo_site("http://127.0.0.1:9/api", enterprise=code)
    cfg["items"][0]["point"] = point
    return cfg


def gw(board="sim", **kw):
    args = dict(serial="NJ0001", mac="24:0A:C4:00:00:01", board=board, config=site())
    args.update(kw)
    return provision.Gateway(**args)


def env(tmp_path):
    return (provision.Inventory(tmp_path / "home" / "inv.sqlite"), provision.KeyStore(tmp_path / "home" / "keys"))


def test_provision_sim_gateway(tmp_path):
    inv, ks = env(tmp_path)
    dev = devicefiles.DirDevice(tmp_path / "gw")
    res = provision.provision(gw(), dev, inv, ks, csr_dir=tmp_path / "csr")
    assert res.ok
    assert res.written[-1] == "config/site.json"
    assert json.loads((tmp_path / "gw" / "config" / "site.json").read_text())["enterprise"]["code"] == CODE
    ident = json.loads((tmp_path / "gw" / "config" / "identity.json").read_text())
    assert ident["gateway"] == "NJ-SIM-1" and ident["mac"] == "24:0a:c4:00:00:01"
    assert ident["platforms"] == {"city": "http://127.0.0.1:9/api"} and ident["credentials"] == "files:nj_keys"
    key = serialization.load_pem_private_key((tmp_path / "gw" / "nj_keys" / "key.pem").read_bytes(), None)
    assert ident["key_fingerprint"] == provision.fingerprint(provision._spki_der(key.public_key()))
    csr = x509.load_pem_x509_csr(Path(res.csr_path).read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == CODE
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "NJ-SIM-1"
    assert csr.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "NJ0001"
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
    assert isinstance(key.curve, ec.SECP256R1)
    [row] = inv.rows()
    assert (row["serial"], row["mac"], row["enterprise"], row["board"]) == ("NJ0001", "24:0a:c4:00:00:01", CODE, "sim")
    assert row["key_fingerprint"] == ident["key_fingerprint"] and row["cert_fingerprint"] is None
    assert not list((tmp_path / "gw").rglob("*.tmp"))


def test_esp32_credentials_go_to_an_nvs_image(tmp_path):
    inv, ks = env(tmp_path)
    dev = devicefiles.DirDevice(tmp_path / "stage")
    ca_key, ca = _ca()
    key, _ = ks.load_or_create("NJ-SIM-1")
    cert = _issue(ca_key, ca, key.public_key())
    res = provision.provision(gw("esp32s3_4g", cert_pem=cert, ca_pem=ca.public_bytes(serialization.Encoding.PEM)),
                              dev, inv, ks)
    image = (tmp_path / "stage" / "nj_keys.bin").read_bytes()
    assert len(image) == 0x10000
    nvs = provision.read_nvs(image)["nj"]
    assert nvs["gateway"] == "NJ-SIM-1" and nvs["enterprise"] == CODE
    assert nvs["key"] == provision._key_pem(key) and nvs["cert"] == cert
    assert not (tmp_path / "stage" / "nj_keys").exists()
    assert (tmp_path / "stage" / "config" / "ca.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE")
    assert res.cert_fingerprint == inv.rows()[0]["cert_fingerprint"]
    assert res.cert_fingerprint.startswith("sha256:")


def test_certificate_for_another_key_is_refused(tmp_path):
    inv, ks = env(tmp_path)
    ca_key, ca = _ca()
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(provision.ProvisionError, match="not for this gateway's key"):
        provision.provision(gw(cert_pem=_issue(ca_key, ca, stranger.public_key())), devicefiles.DirDevice(tmp_path / "g"),
                            inv, ks)
    assert inv.rows() == [] and not (tmp_path / "g").exists()


@pytest.mark.parametrize("cfg, match", [
    (site(code="91330000573973053A"), r"enterprise.code .*check character is 'A', expected 'F'.*business licence"),
    (site(point="no_such_channel"), r"items\[0\].point: profile sim-energy has no point 'no_such_channel'"),
])
def test_bad_input_writes_nothing(tmp_path, cfg, match):
    inv, ks = env(tmp_path)
    dev = devicefiles.DirDevice(tmp_path / "gw")
    with pytest.raises(provision.ProvisionError, match=match):
        provision.provision(gw(config=cfg), dev, inv, ks)
    assert not (tmp_path / "gw").exists()
    assert inv.rows() == []


def test_bad_mac_and_unknown_board(tmp_path):
    problems = provision.check(gw(mac="24:0a:c4", board="esp99"))
    assert any("MAC" in p and "esptool read-mac" in p for p in problems)
    assert any("board: no board 'esp99'" in p for p in problems)


class FlakyDevice(devicefiles.DirDevice):
    """Loses the link after `ok` files: the next put leaves a partial tmp file and raises, as a cable pull does."""

    def __init__(self, root, ok):
        super().__init__(root)
        self.ok = ok

    def put(self, path, data):
        if self.ok == 0:
            tmp = self._p(path).with_name(self._p(path).name + ".tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data[: len(data) // 2])
            raise devicefiles.DeviceUnreachable("USB link lost")
        self.ok -= 1
        super().put(path, data)


@pytest.mark.parametrize("ok", [0, 1, 2])
def test_device_lost_mid_write_leaves_old_files_and_inventory(tmp_path, ok):
    inv, ks = env(tmp_path)
    first = provision.provision(gw(), devicefiles.DirDevice(tmp_path / "gw"), inv, ks)
    before_rows = inv.rows()
    old = {p: p.read_bytes() for p in (tmp_path / "gw").rglob("*") if p.is_file()}
    cfg = site()
    cfg["site"]["name"] = "renamed"
    with pytest.raises(devicefiles.DeviceUnreachable):
        provision.provision(gw(config=cfg), FlakyDevice(tmp_path / "gw", ok), inv, ks)
    assert inv.rows() == before_rows
    for p, data in old.items():
        now = p.read_bytes()
        # each file is either the old one or the whole new one; site.json (written last) is the old one
        assert now == data or (p.name == "identity.json" and json.loads(now)["gateway"] == first.gateway)
    assert json.loads((tmp_path / "gw" / "config" / "site.json").read_text())["site"]["name"] == "sim site"
    # the rerun finishes the job
    assert provision.provision(gw(config=cfg), devicefiles.DirDevice(tmp_path / "gw"), inv, ks).ok
    assert inv.rows()[0]["site"] == "renamed"


def test_mac_already_used_by_another_gateway(tmp_path):
    inv, ks = env(tmp_path)
    provision.provision(gw(), devicefiles.DirDevice(tmp_path / "a"), inv, ks)
    with pytest.raises(provision.ProvisionError, match="already in the inventory as gateway NJ0001"):
        provision.provision(gw(serial="NJ0002"), devicefiles.DirDevice(tmp_path / "b"), inv, ks)


def _write_batch(tmp_path, rows, header=("serial", "mac", "board", "config")):
    (tmp_path / "good.json").write_text(json.dumps(site()))
    (tmp_path / "badcode.json").write_text(json.dumps(site(code="91330000573973053A")))
    with open(tmp_path / "sites.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return tmp_path / "sites.csv"


def test_batch_reports_each_row(tmp_path, capsys):
    path = _write_batch(tmp_path, [
        ("NJ0001", "24:0a:c4:00:00:01", "sim", "good.json"),
        ("NJ0002", "", "sim", "good.json"),                      # missing MAC
        ("NJ0003", "24:0a:c4:00:00:03", "sim", "badcode.json"),  # wrong credit code
        ("NJ0004", "24:0a:c4:00:00:04", "esp32_eth", "good.json"),
    ])
    code = cli.main(["provision", "--batch", str(path), "--out", str(tmp_path / "out"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_USAGE
    by = {r.get("serial") or r["row"]: r for r in report["rows"]}
    assert by["NJ0001"]["ok"] and by["NJ0004"]["ok"]
    assert "sites.csv row 3: mac empty" in by["sites.csv row 3"]["error"]
    assert "sites.csv row 4: enterprise.code" in by["NJ0003"]["error"]
    assert report["provisioned"] == 2 and report["failed"] == 2
    assert (tmp_path / "out" / "NJ0004" / "nj_keys.bin").exists()
    assert not (tmp_path / "out" / "NJ0003").exists() and not (tmp_path / "out" / "NJ0002").exists()
    inv = provision.Inventory(tmp_path / "home" / "inv.sqlite")
    assert sorted(r["serial"] for r in inv.rows()) == ["NJ0001", "NJ0004"]
    code = cli.main(["inventory", "--json"])
    assert code == 0 and len(json.loads(capsys.readouterr().out)["gateways"]) == 2


def test_batch_with_a_missing_column(tmp_path, capsys):
    path = _write_batch(tmp_path, [("NJ0001", "sim", "good.json")], header=("serial", "board", "config"))
    assert cli.main(["provision", "--batch", str(path), "--out", str(tmp_path / "o")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "column(s) mac missing" in err and "serial,mac,board,config" in err


def test_secrets_never_printed_or_logged(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    (tmp_path / "site.json").write_text(json.dumps(site()))
    outputs = []
    for extra in ([], ["--json"], ["--check"]):
        code = cli.main(["provision", "--config", str(tmp_path / "site.json"), "--serial", "NJ0001", "--mac",
                         "24:0a:c4:00:00:01", "--board", "esp32s3_4g", "--out", str(tmp_path / "o"),
                         "--csr-dir", str(tmp_path / "csr"), *extra])
        assert code == 0
        c = capsys.readouterr()
        outputs += [c.out, c.err]
    # a failing run prints its error; that must not carry the key either
    (tmp_path / "bad.json").write_text(json.dumps(site(point="nope")))
    assert cli.main(["provision", "--config", str(tmp_path / "bad.json"), "--serial", "NJ0001", "--mac",
                     "24:0a:c4:00:00:01", "--board", "esp32s3_4g", "--out", str(tmp_path / "o")]) == cli.EXIT_USAGE
    c = capsys.readouterr()
    outputs += [c.out, c.err, caplog.text]
    pem = next((tmp_path / "home" / "keys").glob("*.key.pem")).read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    scalar = key.private_numbers().private_value
    needles = [ln for ln in pem.decode().splitlines() if ln and not ln.startswith("-----")]
    needles += ["%x" % scalar, str(scalar)]
    needles += [re.sub(r"\s", "", pem.decode().split("-----")[2])[10:40]]
    text = "\n".join(outputs)
    for n in needles:
        assert n not in text
    assert "PRIVATE KEY" not in text
    # the key store is private to the user
    assert next((tmp_path / "home" / "keys").glob("*.key.pem")).stat().st_mode & 0o077 == 0


def test_check_only_writes_nothing(tmp_path, capsys):
    (tmp_path / "site.json").write_text(json.dumps(site()))
    code = cli.main(["provision", "--config", str(tmp_path / "site.json"), "--serial", "NJ1", "--mac",
                     "240ac4000001", "--board", "sim", "--sim-dir", str(tmp_path / "gw"), "--check"])
    assert code == 0 and "1 of 1 gateway(s) checked" in capsys.readouterr().out
    assert not (tmp_path / "gw").exists()


def test_lfs_image_device_is_a_device_too(tmp_path):
    from nengjian_host.common import bundle

    dev = devicefiles.LfsImageDevice(bundle.make_lfs_image({"main.py": b"x"}, 128 * 1024))
    inv, ks = env(tmp_path)
    provision.provision(gw(), dev, inv, ks)
    files = bundle.read_lfs_image(dev.image())
    assert json.loads(files["config/site.json"])["version"] == 1 and "nj_keys/key.pem" in files
    assert not any(p.endswith(".tmp") for p in files)


# ---- helpers: a little platform CA
def _ca():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test platform CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return key, cert


def _issue(ca_key, ca, public_key) -> bytes:
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NJ-SIM-1")]))
            .issuer_name(ca.subject).public_key(public_key).serial_number(2).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30)).sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_the_vendor_update_key_is_provisioned_and_a_private_key_refused(tmp_path):
    """Signed updates work only where the vendor's public key is on the gateway (config/ota_key.json);
    the private key, or anything else, is refused before a byte is written."""
    assert cli.main(["ota", "keygen", "--id", "vendor-t", "--out", str(tmp_path / "keys")]) == 0
    pub = (tmp_path / "keys" / "vendor-t.pub.json").read_bytes()
    inv, ks = env(tmp_path)
    res = provision.provision(gw(ota_key=pub), devicefiles.DirDevice(tmp_path / "gw"), inv, ks)
    assert res.ok and (tmp_path / "gw" / "config" / "ota_key.json").read_bytes() == pub
    assert "config/ota_key.json" in res.written and res.written[-1] == "config/site.json"
    private = (tmp_path / "keys" / "vendor-t.pem").read_bytes()
    problems = provision.check(gw(ota_key=private))
    assert len(problems) == 1 and problems[0].startswith("ota_key: not JSON") and "never the private" in problems[0]
    doc = json.loads(pub)
    doc["e"] = 3
    assert "not a vendor public key" in provision.check(gw(ota_key=json.dumps(doc).encode()))[0]
