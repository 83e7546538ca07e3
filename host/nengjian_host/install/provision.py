"""Provisioning a gateway: its identity, key pair, certificate, CA and site config, and the inventory.

Owns: checking a gateway's inputs before anything is written (the enterprise's unified social
credit code, every data-item mapping, the board), the gateway's EC P-256 key pair and a CSR with the
enterprise code and gateway id in its subject (or a platform-issued certificate checked against the
key), the credentials NVS partition image (esp-idf-nvs-partition-gen) or credential files for the
sim, writing everything to a device through DeviceFiles, and the SQLite inventory of gateways;
for `nengjian provision`, a batch of gateways with one outcome (and exit code) per row.

What goes where
---------------
    config/site.json       the site config (the gateway starts from it; written last)
    config/identity.json   gateway id, serial, MAC, enterprise, region, board, platform URLs,
                           certificate and key fingerprints, when it was provisioned
    config/ca.pem          the platform CA (public)
  ESP32 boards: credentials in the `nj_keys` NVS partition, namespace "nj": key (PKCS#8 PEM blob),
    cert (PEM blob, if issued), gateway, enterprise (strings). Built here as nj_keys.bin; `nengjian
    flash --provisioned DIR` writes it at the partition offset (or `provision --port` does).
  sim board: the same as files nj_keys/key.pem and nj_keys/cert.pem in the gateway directory.

Order and failure: everything is checked and built in memory first; the inventory row is written in
a transaction that commits only after every file is on the device and reads back with the right
sha256. A device that goes away mid-write leaves each file either old or new (tmp + rename), and the
inventory unchanged. Run the same command again to finish.

Secrets: the private key is never printed, logged or put in an error message, and is kept on the
laptop only in the key store (mode 0600) until the platform's certificate is installed.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import sqlite3
import struct
from dataclasses import dataclass, field
from pathlib import Path

from nengjian_host.common import bundle as bundle_mod
from nengjian_host.common import messages, paths, private, siteconfig
from nengjian_host.common.devicefiles import DeviceFiles, DeviceUnreachable, DirDevice, MpremoteDevice
from nengjian_host.common.output import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from nengjian_host.install import flash

fw_identity = siteconfig.fw_identity  # the firmware's own check (firmware/nengjian/core/identity.py)

NVS_NAMESPACE = "nj"
REQUIRED_COLUMNS = ("serial", "mac", "board", "config")
OPTIONAL_COLUMNS = ("gateway", "site", "cert", "ca", "ota_key", "target")


class ProvisionError(ValueError):
    """Bad input: nothing was written. The text names the field and the fix; `zh` is it in Chinese
    where the problems have their Chinese (the site config's), else None."""

    zh: str | None = None


def said(key: str, where: str = "", **kw) -> messages.Text:
    """A catalogue text after `where` ("sites.csv row 3: "), in both languages."""
    text = messages.msg(key, where=where, **kw)
    return messages.Text(text, text.zh, key)


def error(key: str, where: str = "", **kw) -> ProvisionError:
    """A ProvisionError saying the catalogue's `key`, with its Chinese."""
    text = said(key, where, **kw)
    e = ProvisionError(str(text))
    e.zh = text.zh
    return e


def localized(text) -> str:
    """A text of this module in the chosen language (its Chinese where it has one)."""
    return getattr(text, "zh", None) or str(text) if messages.get_lang() == "zh" else str(text)


def problems_error(problems: list[str]) -> ProvisionError:
    """One ProvisionError for check()'s problems, with their Chinese beside (each that has one)."""
    e = ProvisionError("\n".join(problems))
    e.zh = "\n".join(getattr(p, "zh", p) for p in problems)
    return e


def data_home() -> Path:
    return Path(os.environ.get("NENGJIAN_HOME") or Path.home() / ".local" / "share" / "nengjian")


def default_inventory() -> Path:
    return Path(os.environ.get("NENGJIAN_INVENTORY") or data_home() / "inventory.sqlite")


def default_keystore() -> Path:
    return Path(os.environ.get("NENGJIAN_KEYSTORE") or data_home() / "keys")


# ---- inputs
@dataclass
class Gateway:
    serial: str
    mac: str
    board: str
    config: dict
    gateway: str = ""
    site: str = ""
    cert_pem: bytes | None = None
    ca_pem: bytes | None = None
    ota_key: bytes | None = None  # the vendor's public key for signed updates (nengjian ota keygen)
    source: str = ""  # where this came from, for messages ("sites.csv row 3")

    def __post_init__(self):
        self.gateway = self.gateway or (self.config.get("site") or {}).get("gateway") or self.serial
        self.site = self.site or (self.config.get("site") or {}).get("name") or ""


def normalize_mac(mac: str) -> str:
    hexdigits = "".join(c for c in mac.lower() if c in "0123456789abcdef")
    if len(hexdigits) != 12 or len(mac.strip()) not in (12, 17):
        raise error("err.provision.mac", mac=mac)
    return ":".join(hexdigits[i:i + 2] for i in range(0, 12, 2))


def check(gw: Gateway, profile_dir: Path = paths.PROFILES) -> list[str]:
    """Every problem with `gw`, each naming the field and the fix; empty if it can be provisioned."""
    where = (gw.source + ": ") if gw.source else ""
    problems = []
    if not gw.serial or not gw.serial.strip():
        problems.append(said("err.provision.serial", where))
    try:
        gw.mac = normalize_mac(gw.mac)
    except ProvisionError as e:
        problems.append(messages.Text(where + str(e), where + (e.zh or str(e))))
    try:
        bundle_mod.load_board(gw.board)
    except bundle_mod.BundleError as e:
        problems.append(said("err.provision.board", where, reason=e))
    ent = gw.config.get("enterprise") if isinstance(gw.config, dict) else None
    code = ent.get("code") if isinstance(ent, dict) else None
    if code is not None:
        p = fw_identity.uscc_problem(code)
        if p:
            problems.append(said("err.provision.uscc", where, code=code, why=siteconfig.issue_text(p)))
    for p in siteconfig.check(gw.config, profile_dir):
        if not (code is not None and p.startswith("enterprise.code")):
            problems.append(said("out.provision.site_config", where, problem=p))  # the Chinese from its code
    if gw.cert_pem is not None:
        try:
            _load_cert(gw.cert_pem)
        except ValueError:
            problems.append(said("err.provision.not_pem", where, what="cert"))
    if gw.ca_pem is not None:
        try:
            _load_cert(gw.ca_pem)
        except ValueError:
            problems.append(said("err.provision.not_pem", where, what="ca"))
    if gw.ota_key is not None:
        p = ota_key_problem(gw.ota_key)
        if p:
            problems.append(said("err.provision.ota_key", where, problem=p))
    return problems


def ota_key_problem(data: bytes) -> messages.Text | None:
    """Why `data` is not a vendor public key the gateway can verify updates with, or None."""
    from nengjian_host.vendor import updates as ota

    try:
        doc = json.loads(data)
    except ValueError:
        return said("err.provision.ota_not_json")
    if not isinstance(doc, dict) or doc.get("alg") != ota.ALG or not isinstance(doc.get("n"), str) \
            or doc.get("e") != 65537 or "d" in doc:
        return said("err.provision.ota_not_key", alg=ota.ALG)
    return None


def gateway_from(config: Path, serial: str, mac: str, board: str, gateway: str = "", cert: str | None = None,
                 ca: str | None = None, ota_key: str | None = None) -> Gateway:
    """One gateway named on the command line (file names relative to the working directory)."""
    here = Path(".")
    return Gateway(serial=serial, mac=mac, board=board, config=_read_json(Path(config), "--config"),
                   gateway=gateway or "", cert_pem=read_file(here, cert, "--cert"), ca_pem=read_file(here, ca, "--ca"),
                   ota_key=read_file(here, ota_key, "--ota-key"))


def read_csv(path: Path, base: Path | None = None) -> tuple[list[Gateway], list[str]]:
    """Gateways of a batch CSV and, per bad row, what is wrong (a row with a problem is not provisioned)."""
    base = base or path.parent
    gateways, problems = [], []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise error("err.provision.csv_unreadable", path=path, reason=e.strerror) from None
    reader = csv.DictReader(io.StringIO(text))
    cols = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise error("err.provision.csv_columns", path=path, missing=", ".join(missing),
                    required=",".join(REQUIRED_COLUMNS), optional=",".join(OPTIONAL_COLUMNS))
    for n, row in enumerate(reader, 2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        src = "%s row %d" % (path.name, n)
        empty = [c for c in REQUIRED_COLUMNS if not row.get(c)]
        if empty:
            problems.append(said("err.provision.csv_empty", src, empty=", ".join(empty),
                                 required=", ".join(REQUIRED_COLUMNS)))
            continue
        try:
            gw = Gateway(serial=row["serial"], mac=row["mac"], board=row["board"],
                         config=_read_json(base / row["config"], src + " config"), gateway=row.get("gateway", ""),
                         site=row.get("site", ""), cert_pem=read_file(base, row.get("cert"), src + " cert"),
                         ca_pem=read_file(base, row.get("ca"), src + " ca"),
                         ota_key=read_file(base, row.get("ota_key"), src + " ota_key"), source=src)
        except ProvisionError as e:
            problems.append(messages.Text(str(e), e.zh or str(e)))
            continue
        gw.target = row.get("target", "")  # type: ignore[attr-defined]
        gateways.append(gw)
    return gateways, problems


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise error("err.provision.cannot_read", what=what, path=path, reason=e.strerror) from None
    except ValueError as e:
        raise error("err.provision.not_json", what=what, path=path, reason=e) from None


def read_file(base: Path, name: str | None, what: str) -> bytes | None:
    """The file `name` (relative to `base`) an option or answer `what` gives, or None if none is given."""
    if not name:
        return None
    try:
        return (base / name).read_bytes()
    except OSError as e:
        raise error("err.provision.cannot_read", what=what, path=base / name, reason=e.strerror) from None


# ---- keys
def _load_cert(pem: bytes):
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem)


def fingerprint(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


class KeyStore:
    """Private keys waiting for their certificate, one PEM per gateway, readable by the owner only."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, gateway: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in gateway)
        return self.root / (safe + ".key.pem")

    def load_or_create(self, gateway: str):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        p = self._path(gateway)
        if p.exists():
            return serialization.load_pem_private_key(p.read_bytes(), password=None), False
        key = ec.generate_private_key(ec.SECP256R1())
        # Tightened also when the folder was there (mkdir's mode only applies to a new one, through the
        # umask), and the key file 0600 even where a stale .tmp was left 0644.
        private.make_dir(self.root)
        private.write_file(p, _key_pem(key))
        return key, True

    def forget(self, gateway: str) -> None:
        try:
            self._path(gateway).unlink()
        except FileNotFoundError:
            pass


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _spki_der(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def make_csr(key, gw: Gateway) -> bytes:
    """CSR: CN = gateway id, organizationIdentifier = the enterprise's credit code, serialNumber = serial."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    ent = gw.config["enterprise"]
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
             x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, ent["code"])]
    if ent.get("name"):
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, ent["name"]))
    attrs += [x509.NameAttribute(NameOID.SERIAL_NUMBER, gw.serial), x509.NameAttribute(NameOID.COMMON_NAME, gw.gateway)]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


# ---- NVS
def build_nvs(entries: dict[str, bytes | str], size: int) -> bytes:
    """An NVS partition image (format v2) with `entries` in namespace "nj": bytes as blobs, str as strings."""
    from esp_idf_nvs_partition_gen import nvs_partition_gen as gen

    out = io.BytesIO()
    nvs = gen.nvs_open(out, size - 0x1000, gen.Page.VERSION2)  # the tool keeps one page in reserve
    gen.write_entry(nvs, NVS_NAMESPACE, "namespace", "", "")
    for k, v in entries.items():
        if len(k) > 15:
            raise error("err.provision.nvs_key", name=k)
        gen.write_entry(nvs, k, "data", "binary" if isinstance(v, bytes) else "string", v)
    gen.nvs_close(nvs)
    data = out.getvalue()
    if len(data) != size:
        raise error("err.provision.nvs_size", image=hex(len(data)), size=hex(size))
    return data


_NVS_ACTIVE, _NVS_FULL = 0xFFFFFFFE, 0xFFFFFFFC
_SZ, _BLOB_DATA, _BLOB_IDX, _U8 = 0x21, 0x42, 0x48, 0x01


def read_nvs(image: bytes) -> dict[str, dict[str, bytes | str | int]]:
    """namespace -> key -> value of an NVS image (what the gateway's NVS reader will see)."""
    names: dict[int, str] = {}
    raw: list[tuple[int, int, int, str, bytes, bytes]] = []
    for page in range(len(image) // 4096):
        buf = image[page * 4096:(page + 1) * 4096]
        if struct.unpack_from("<I", buf, 0)[0] not in (_NVS_ACTIVE, _NVS_FULL):
            continue
        bitmap = buf[32:64]
        i = 0
        while i < 126:
            if (bitmap[i // 4] >> ((i % 4) * 2)) & 3 != 2:
                i += 1
                continue
            e = buf[64 + i * 32:64 + (i + 1) * 32]
            ns, typ, span, chunk = e[0], e[1], e[2], e[3]
            key = e[8:24].split(b"\0")[0].decode()
            payload = buf[64 + (i + 1) * 32:64 + (i + span) * 32]
            raw.append((ns, typ, chunk, key, e[24:32], payload))
            i += max(1, span)
    for ns, typ, _chunk, key, data, _p in raw:
        if ns == 0 and typ == _U8:
            names[data[0]] = key
    out: dict[str, dict] = {}
    chunks: dict[tuple[int, str], dict[int, bytes]] = {}
    for ns, typ, chunk, key, data, payload in raw:
        if ns == 0:
            continue
        if typ == _SZ:
            size = struct.unpack_from("<H", data, 0)[0]
            out.setdefault(names.get(ns, str(ns)), {})[key] = payload[:size].rstrip(b"\0").decode()
        elif typ == _BLOB_DATA:
            size = struct.unpack_from("<H", data, 0)[0]
            chunks.setdefault((ns, key), {})[chunk] = payload[:size]
        elif typ == _U8:
            out.setdefault(names.get(ns, str(ns)), {})[key] = data[0]
    for ns, typ, _chunk, key, data, _p in raw:
        if ns and typ == _BLOB_IDX:
            size, count, start = struct.unpack_from("<IBB", data, 0)
            parts = chunks.get((ns, key), {})
            blob = b"".join(parts.get(start + j, b"") for j in range(count))
            out.setdefault(names.get(ns, str(ns)), {})[key] = blob[:size]
    return out


# ---- inventory
SCHEMA = """
create table if not exists gateways (
  serial text primary key, gateway text not null, mac text not null, site text, enterprise text not null,
  region text, board text not null, cert_fingerprint text, key_fingerprint text not null,
  config_sha256 text not null, target text, provisioned_at text not null);
create table if not exists history (
  id integer primary key, serial text not null, at text not null, what text not null);
"""


class Inventory:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.executescript(SCHEMA)

    def rows(self, serial: str | None = None) -> list[dict]:
        self.db.row_factory = sqlite3.Row
        q = "select * from gateways" + (" where serial = ?" if serial else "") + " order by provisioned_at"
        return [dict(r) for r in self.db.execute(q, (serial,) if serial else ())]

    def mac_owner(self, mac: str) -> str | None:
        r = self.db.execute("select serial from gateways where mac = ?", (mac,)).fetchone()
        return r[0] if r else None

    def close(self) -> None:
        self.db.close()


# ---- provisioning
@dataclass
class Result:
    serial: str
    gateway: str
    ok: bool
    written: list[str] = field(default_factory=list)
    csr_path: str | None = None
    cert_fingerprint: str | None = None
    key_fingerprint: str | None = None
    nvs: str | None = None
    error: str | None = None
    exit_code: int = 0

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def build_files(gw: Gateway, keystore: KeyStore, now: dt.datetime | None = None) -> tuple[dict[str, bytes], dict]:
    """Every file for the device, and the inventory row (all in memory; nothing written yet)."""
    board = bundle_mod.load_board(gw.board)
    key, _new = keystore.load_or_create(gw.gateway)
    key_fp = fingerprint(_spki_der(key.public_key()))
    cert_fp = None
    if gw.cert_pem is not None:
        cert = _load_cert(gw.cert_pem)
        if _spki_der(cert.public_key()) != _spki_der(key.public_key()):
            raise error("err.provision.cert_key", (gw.source + ": ") if gw.source else "", key_fp=key_fp,
                        gateway=gw.gateway)
        from cryptography.hazmat.primitives import serialization

        cert_fp = fingerprint(cert.public_bytes(serialization.Encoding.DER))
    now = now or dt.datetime.now(dt.timezone.utc)
    cfg_bytes = json.dumps(gw.config, indent=1, ensure_ascii=False).encode()
    ident = {
        "gateway": gw.gateway, "serial": gw.serial, "mac": gw.mac, "board": gw.board, "site": gw.site,
        "enterprise": gw.config["enterprise"]["code"], "region": gw.config["enterprise"]["region"],
        "platforms": {d["name"]: d["url"] for d in gw.config["destinations"]},
        "cert_fingerprint": cert_fp, "key_fingerprint": key_fp,
        "credentials": "files:nj_keys" if board.is_sim else "nvs:%s" % board.spec["keys"]["label"],
        "provisioned_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    files: dict[str, bytes] = {}
    key_pem = _key_pem(key)
    if board.is_sim:
        files["nj_keys/key.pem"] = key_pem
        if gw.cert_pem:
            files["nj_keys/cert.pem"] = gw.cert_pem
    else:
        entries: dict[str, bytes | str] = {"key": key_pem, "gateway": gw.gateway,
                                           "enterprise": gw.config["enterprise"]["code"]}
        if gw.cert_pem:
            entries["cert"] = gw.cert_pem
        files["nj_keys.bin"] = build_nvs(entries, int(board.spec["keys"]["size"], 0))
    dests = gw.config["destinations"]
    if gw.ca_pem:
        for name in sorted({d["ca"] for d in dests if d.get("ca")} or {"ca.pem"}):
            files["config/" + name] = gw.ca_pem
    # Destinations that name their client certificate files (mutual TLS) read them from config/.
    if board.is_sim:
        for name in sorted({d["client_key"] for d in dests if d.get("client_key")}):
            files["config/" + name] = key_pem
    for name in sorted({d["client_cert"] for d in dests if d.get("client_cert")} if gw.cert_pem else ()):
        files["config/" + name] = gw.cert_pem
    if gw.ota_key is not None:  # signed updates are possible only where the vendor's key is provisioned
        files["config/ota_key.json"] = gw.ota_key
    files["config/identity.json"] = json.dumps(ident, indent=1).encode()
    files["config/site.json"] = cfg_bytes  # last: the gateway starts from it
    row = {"serial": gw.serial, "gateway": gw.gateway, "mac": gw.mac, "site": gw.site,
           "enterprise": ident["enterprise"], "region": ident["region"], "board": gw.board,
           "cert_fingerprint": cert_fp, "key_fingerprint": key_fp,
           "config_sha256": hashlib.sha256(cfg_bytes).hexdigest(), "provisioned_at": ident["provisioned_at"]}
    return files, row


def write_all(device: DeviceFiles, files: dict[str, bytes]) -> list[str]:
    """Put each file (tmp + rename on the device), then read every hash back."""
    written = []
    for path, data in files.items():
        device.put(path, data)
        written.append(path)
    for path, data in files.items():
        if device.sha256(path) != hashlib.sha256(data).hexdigest():
            raise DeviceUnreachable(said("err.provision.read_back", path=path, device=device.name))
    return written


def provision(gw: Gateway, device: DeviceFiles, inventory: Inventory, keystore: KeyStore,
              csr_dir: Path | None = None, forget_key: bool = False, nvs_writer=None) -> Result:
    """Check, build, write, verify, record. Raises ProvisionError (bad input) or DeviceUnreachable."""
    problems = check(gw)
    if problems:
        raise problems_error(problems)
    other = inventory.mac_owner(gw.mac)
    if other and other != gw.serial:
        raise error("err.provision.mac_taken", (gw.source + ": ") if gw.source else "", mac=gw.mac, other=other)
    files, row = build_files(gw, keystore)
    res = Result(gw.serial, gw.gateway, False, key_fingerprint=row["key_fingerprint"],
                 cert_fingerprint=row["cert_fingerprint"])
    if csr_dir is not None and gw.cert_pem is None:
        key, _ = keystore.load_or_create(gw.gateway)
        csr_dir.mkdir(parents=True, exist_ok=True)
        csr = csr_dir / ("%s.csr.pem" % gw.gateway)
        csr.write_bytes(make_csr(key, gw))
        res.csr_path = str(csr)
    row["target"] = device.name
    db = inventory.db
    db.execute("begin immediate")
    try:
        db.execute("insert or replace into gateways (%s) values (%s)" % (", ".join(row), ", ".join("?" * len(row))),
                   list(row.values()))
        db.execute("insert into history (serial, at, what) values (?, ?, ?)",
                   (gw.serial, row["provisioned_at"], "provisioned to %s (key %s)" % (device.name,
                                                                                    row["key_fingerprint"])))
        if nvs_writer is not None and "nj_keys.bin" in files:
            nvs_writer(files.pop("nj_keys.bin"))
            res.nvs = said("out.provision.nvs_written")
        res.written = write_all(device, files)
        db.execute("commit")
    except BaseException:
        db.execute("rollback")
        raise
    if "nj_keys.bin" in res.written:
        res.nvs = said("out.provision.nvs_file")
    if forget_key and gw.cert_pem is not None:
        keystore.forget(gw.gateway)
    res.ok = True
    return res


# ---- many gateways (`nengjian provision`)
def target_for(gw: Gateway, port: str | None = None, no_reset: bool = False, sim_dir: str | None = None,
               out: str | None = None, batch: bool = False):
    """(where `gw`'s files go, how its credentials image is written or None): a gateway on USB at
    `port` (credentials with esptool, files with mpremote), a sim gateway directory (the row's target,
    or `sim_dir`), else a staging directory for `nengjian flash --provisioned`: `out` itself for one
    gateway, OUT/SERIAL for each of a batch (default build/provisioned/SERIAL)."""
    target = getattr(gw, "target", "") or ""
    if port:
        board = bundle_mod.load_board(gw.board)
        conn = flash.Connection(port, board.chip, reset=not no_reset)
        off = board.spec["keys"]["offset"] if board.spec.get("keys") else None
        return MpremoteDevice(port), (lambda data: flash.write_keys(conn, off, data))
    if sim_dir or target:
        return DirDevice(Path(target or sim_dir), private=True), None
    base = Path(out or "build/provisioned")
    return DirDevice(base / gw.serial if (batch or not out) else base, private=True), None


def provision_all(gateways: list[Gateway], bad: list[str], inventory: Inventory, keystore: KeyStore, target,
                  check_only: bool = False, csr_dir: Path | None = None, forget_key: bool = False,
                  on_row=None) -> list[dict]:
    """Provision each gateway (or with check_only, only check it) and say how each went: one dict per
    row, {"row", "serial", "ok", "exit_code"?, "error"?, ...Result}. `bad` are the rows read_csv could
    not read; `target(gw)` is target_for bound to the command's options. A gateway that fails does
    not stop the others; on_row(row) sees each as it is done."""
    rows = [{"row": p.split(":")[0], "ok": False, "exit_code": EXIT_USAGE, "error": str(p),
             **({"error_zh": p.zh} if getattr(p, "zh", None) else {})} for p in bad]
    for gw in gateways:
        row = {"row": gw.source or said("out.provision.command_line"), "serial": gw.serial}
        try:
            problems = check(gw)
            if problems:
                raise problems_error(problems)
            if check_only:
                row.update(ok=True, checked_only=True)
            else:
                device, nvs_writer = target(gw)
                r = provision(gw, device, inventory, keystore, csr_dir=csr_dir, forget_key=forget_key,
                              nvs_writer=nvs_writer)
                row.update(r.as_dict())
        except ProvisionError as e:
            row.update(ok=False, exit_code=EXIT_USAGE, error=str(e), **({"error_zh": e.zh} if e.zh else {}))
        except (DeviceUnreachable, flash.Unreachable) as e:
            text = said("err.provision.unreachable", reason=e)
            row.update(ok=False, exit_code=EXIT_UNREACHABLE, error=str(text), error_zh=text.zh)
        except flash.FlashError as e:
            row.update(ok=False, exit_code=e.exit_code, error=str(e))
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def exit_code(rows: list[dict]) -> int:
    """The command's exit code for provision_all's rows: the gravest of the failures."""
    codes = {r.get("exit_code", 0) for r in rows if not r.get("ok")}
    if not codes:
        return EXIT_OK
    return EXIT_UNREACHABLE if EXIT_UNREACHABLE in codes else EXIT_USAGE if EXIT_USAGE in codes else EXIT_FAILED


def report_lines(rows: list[dict], check_only: bool = False) -> list[str]:
    """provision_all's rows for a person, in the chosen language: OK or FAIL per row, then the count."""
    lines = []
    for r in rows:
        if r.get("ok"):
            what = messages.t("out.provision.checked") if r.get("checked_only") else messages.t(
                "out.provision.provisioned", files=", ".join(r.get("written", [])))
            lines.append(messages.t("out.provision.ok", row=localized(r["row"]), serial=r.get("serial", ""), what=what))
            if r.get("csr_path"):
                lines.append(messages.t("out.provision.csr", path=r["csr_path"]))
            if r.get("nvs"):
                lines.append(messages.t("out.provision.credentials", what=localized(r["nvs"])))
        else:
            said_ = r.get("error_zh") if messages.get_lang() == "zh" and r.get("error_zh") else r["error"]
            lines.append(messages.t("out.provision.fail", error=said_.replace("\n", "\n      ")))
    ok = sum(1 for r in rows if r.get("ok"))
    lines.append(messages.t("out.provision.count_checked" if check_only else "out.provision.count_provisioned",
                            ok=ok, total=len(rows)))
    return lines
