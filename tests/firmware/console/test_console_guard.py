"""What the console may read and write (firmware/nengjian/console/guard.py), on the MicroPython unix port
through the real Console and commands: reads stay on the data volume and the config's JSON files, a
path that leaves them is refused however it is spelled, keys are never served, JSON secrets come out
masked (and `get` ranges, `sha256` and `files` agree on the masked bytes), and a trust anchor is
replaced only while the service button is held. tests/e2e/test_console.py does the same on a running
sim gateway."""

import hashlib
import json
from base64 import b64decode, b64encode

import pytest
from mpyrun import run_mpy

pytestmark = pytest.mark.mpy

PIN, SIM_PIN = "135792468", "4711"
SECRET_KEY = "00112233445566778899aabbccddeeff"
KEY_PEM = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
OUTSIDE = b"outside the gateway's volumes"

SITE = {
    "version": 1,
    "site": {"name": "Plant 7", "gateway": "NJ-1"},
    "network": {"apn": "cmnet", "pin": SIM_PIN},
    "destinations": [{"name": "city", "profile": "ndrc-json", "url": "https://203.0.113.7/api/register",
                      "ca": "ca.pem", "security": "sm4-cbc-token", "pin": PIN}],
    "ota": {"url": "https://203.0.113.8/ota", "ca": "ca.pem"},
}
SESSION = {"enterpriseCode": "91330000573973053F", "deviceId": "DEV-42", "secretKey": SECRET_KEY,
           "centerDataURL": "https://203.0.113.7/api/data", "token": "tok-%s" % SECRET_KEY[:8]}
# A name spelled with an escape, a secret object, a name that only starts like a secret one.
TRICKY = '{"p\\u0069n": "2468", "nested": {"token": ["a\\"b", -7.5e1, true]}, "pins": "visible", "n": 3}'
OTA_KEY = b'{"alg": "RSA-PSS-SHA256", "n": "c2lt", "e": 65537}'

# The console as the firmware runs it: a Console with a board and a gateway standing in, requests
# through Console._handle (the protocol's own error handling included), answers on stdout.
HARNESS = r"""
import asyncio
from nengjian.console import protocol

class Board:
    NAME = "sim"
    DATA_MOUNT = %(data)r
    CONFIG_DIR = %(config)r

    def service_button_held(self):
        try:
            with open(%(button)r) as f:
                return f.read() == "held"
        except OSError:
            return False

    def unique_id(self):
        return b"t"

class Store:
    root = %(data)r + "/store"
    def flush(self):
        pass

class Gw:
    data_dir = %(data)r
    store = Store()

con = protocol.Console(Board(), "test")
con.gw = Gw()
with open(%(requests)r, "rb") as f:
    requests = f.read()
for line in requests.split(b"\n"):
    if line.startswith(b"!button "):
        with open(%(button)r, "w") as f:
            f.write(line[8:].decode())
    elif line:
        asyncio.run(con._handle(line))
"""


class Gateway:
    """A gateway's volumes in a temporary directory, and the console run over them on MicroPython."""

    def __init__(self, tmp):
        self.root = tmp
        self.data = tmp / "data"
        self.config = tmp / "config"
        (self.data / "store").mkdir(parents=True)
        self.config.mkdir()
        (tmp / "datax").mkdir()  # a sibling whose name starts like the data volume's
        (tmp / "datax" / "f.txt").write_bytes(OUTSIDE)
        (tmp / "outside.txt").write_bytes(OUTSIDE)
        (self.data / "store" / "s00.seg").write_bytes(bytes(range(256)) * 3)
        (self.data / "session-city.json").write_text(json.dumps(SESSION))
        (self.data / "boots").write_text("3")
        (self.data / "planted.json").write_bytes(KEY_PEM)
        (self.data / "tricky.json").write_text(TRICKY)
        self.button = tmp / "button"

    def provision(self, site=SITE):
        (self.config / "site.json").write_text(json.dumps(site, indent=2))
        (self.config / "identity.json").write_text(json.dumps({"gateway": "NJ-1", "key_fingerprint": "sha256:ab"}))
        (self.config / "ota_key.json").write_bytes(OTA_KEY)
        (self.config / "ca.pem").write_bytes(CA_PEM)
        (self.config / "client.key").write_bytes(KEY_PEM)
        (self.config / "client.json").write_bytes(KEY_PEM)  # a key under a JSON name
        return self

    def run(self, *lines):
        """Answers to each request (by id), and the whole output."""
        requests = self.root / "requests"
        requests.write_bytes(("\n".join(lines) + "\n").encode())
        code = HARNESS % {"data": str(self.data), "config": str(self.config), "button": str(self.button),
                          "requests": str(requests)}
        proc = run_mpy(code, heap="256k")
        answers = {}
        for out in proc.stdout.splitlines():
            if out.startswith("@nj "):
                a = json.loads(out[4:])
                answers.setdefault(a["id"], []).append(a)
        return answers, proc.stdout


def _data(answers):
    return b"".join(b64decode(a["b64"]) for a in answers if a.get("t") == "data")


def _refused(answers, rid):
    end = answers[rid][-1]
    return not end["ok"] and "refused" in end["error"] and not any(a.get("t") == "data" for a in answers[rid])


def _masked(text: str) -> str:
    """What the console must show of a JSON text: every secret value masked, byte for byte."""
    for secret in (PIN, SIM_PIN, SECRET_KEY, SESSION["token"]):
        text = text.replace('"%s"' % secret, '"%s"' % ("*" * len(secret)))
    return text


@pytest.fixture
def gw(tmp_path):
    return Gateway(tmp_path).provision()


def test_reads_outside_the_data_volume_and_the_config_files_are_refused(gw):
    d, c, root = str(gw.data), str(gw.config), str(gw.root)
    tries = [
        "%s/../outside.txt" % d,  # up and out of the data volume
        "%s/store/../../outside.txt" % d,
        "%s/../outside.txt" % c,
        "%s/./../../%s/outside.txt" % (c, gw.root.name),
        "%s/outside.txt" % root,  # absolute, outside both
        "%sx/f.txt" % d,  # a sibling directory whose name starts with the volume's
        "/etc/hostname",
        "outside.txt",  # relative
        "%s/site.json\x00.seg" % c,  # NUL
        "%s/site.json\x01" % c,  # control character
        "%s\\..\\outside.txt" % d,  # backslashes
        "%s/client.key" % c,  # keys and certificates, by name and by content
        "%s/client.json" % c,
        "%s/ca.pem" % c,
        "%s/planted.json" % d,
    ]
    lines = []
    for i, path in enumerate(tries):
        lines += ["#%d get %s 0 4096" % (100 + i, path), "#%d sha256 %s" % (200 + i, path)]
    answers, out = gw.run(*lines)
    for i, path in enumerate(tries):
        assert _refused(answers, 100 + i), (path, answers[100 + i])
        assert _refused(answers, 200 + i) and "sha256" not in answers[200 + i][-1], (path, answers[200 + i])
    assert b64encode(OUTSIDE).decode() not in out and b64encode(KEY_PEM[:30]).decode()[:20] not in out
    # What stays readable: the data volume at any depth, and the config's JSON files.
    answers, _out = gw.run("#1 get %s/store/s00.seg 0 4096" % d, "#2 get %s/./store//s00.seg 10 5" % d,
                           "#3 get %s/boots 0 10" % d, "#4 get %s/identity.json 0 4096" % c,
                           "#5 get %s/ota_key.json 0 4096" % c)
    assert _data(answers[1]) == bytes(range(256)) * 3 and _data(answers[2]) == bytes(range(10, 15))
    assert _data(answers[3]) == b"3" and json.loads(_data(answers[4]))["gateway"] == "NJ-1"
    assert _data(answers[5]) == OTA_KEY


def test_secrets_never_leave_through_get_sha256_or_files(gw):
    d, c = str(gw.data), str(gw.config)
    site_raw = (gw.config / "site.json").read_text()
    session_raw = (gw.data / "session-city.json").read_text()
    n = len(site_raw)
    answers, out = gw.run(
        "#1 get %s/site.json 0 65536" % c, "#2 get %s/session-city.json 0 65536" % d,
        "#3 get %s/site.json 0 %d" % (c, n // 3), "#4 get %s/site.json %d %d" % (c, n // 3, n // 3),
        "#5 get %s/site.json %d 65536" % (c, 2 * (n // 3)),
        "#6 sha256 %s/site.json" % c, "#7 sha256 %s/site.json %d" % (c, n // 2),
        "#8 sha256 %s/session-city.json" % d, "#9 files", "#10 get %s/tricky.json 0 4096" % d)
    for secret in (PIN, SIM_PIN, SECRET_KEY, SESSION["token"]):
        assert secret not in out and b64encode(secret.encode()).decode()[:8] not in out
    tricky = _data(answers[10])
    assert len(tricky) == len(TRICKY) and json.loads(tricky) == {
        "pin": "****", "nested": {"token": ["****", 0, True]}, "pins": "visible", "n": 3}
    site = _data(answers[1]).decode()
    assert site == _masked(site_raw) and len(site) == answers[1][-1]["size"] == n
    cfg = json.loads(site)  # still the config, only its secrets masked
    assert cfg["site"] == SITE["site"] and cfg["destinations"][0]["url"] == SITE["destinations"][0]["url"]
    assert cfg["network"]["pin"] == "*" * len(SIM_PIN) and cfg["destinations"][0]["pin"] == "*" * len(PIN)
    session = json.loads(_data(answers[2]))
    assert session["deviceId"] == "DEV-42" and session["secretKey"] == "*" * 32
    assert _data(answers[2]).decode() == _masked(session_raw)
    # Ranges, hashes of the whole and of a prefix: all over the masked bytes, so a pull verifies.
    assert _data(answers[3]) + _data(answers[4]) + _data(answers[5]) == site.encode()
    assert answers[6][-1]["sha256"] == hashlib.sha256(site.encode()).hexdigest()
    assert answers[7][-1]["sha256"] == hashlib.sha256(site.encode()[:n // 2]).hexdigest()
    assert answers[8][-1]["sha256"] == hashlib.sha256(_masked(session_raw).encode()).hexdigest()
    assert answers[6][-1]["sha256"] != hashlib.sha256(site_raw.encode()).hexdigest()
    listed = {a["path"].rsplit("/", 1)[-1]: a["kind"] for a in answers[9] if a.get("t") == "file"}
    assert listed == {"s00.seg": "store", "session-city.json": "session", "site.json": "config",
                      "identity.json": "config", "ota_key.json": "config"}


def _put(path, data, rid):
    lines = ["#%d put %s %d %s" % (rid, path, len(data), hashlib.sha256(data).hexdigest())]
    chunks = [data[i:i + 300] for i in range(0, len(data), 300)]
    return lines + ["#%d +%s" % (rid + 1 + i, b64encode(chunk).decode()) for i, chunk in enumerate(chunks)]


def _last(answers, rid_lo, rid_hi):
    """The closing answer of the last request between the ids (a put's final + line)."""
    return answers[max(r for r in answers if isinstance(r, int) and rid_lo <= r < rid_hi)][-1]


def _beside(gw):
    return sorted(p.name for p in gw.config.iterdir() if p.name.endswith(".new"))


def test_trust_anchors_are_replaced_only_while_the_service_button_is_held(gw):
    c = str(gw.config)
    evil_key = b'{"alg": "RSA-PSS-SHA256", "n": "ZXZpbA", "e": 65537}'
    evil_ca = CA_PEM.replace(b"MIIB", b"EVIL")
    answers, _out = gw.run(*(_put(c + "/ota_key.json", evil_key, 10) + _put(c + "/ca.pem", evil_ca, 20)
                             + _put(c + "/new-ca.pem", evil_ca, 30) + _put(c + "/client.key", KEY_PEM + b"x", 40)
                             + _put(c + "/ota_key.json", OTA_KEY, 50)))  # the same bytes: nothing replaced
    for rid in (10, 20, 30, 40):
        end = answers[rid][-1]
        assert not end["ok"] and "service button" in end["error"], end
    assert _last(answers, 50, 60)["ok"] and _last(answers, 50, 60)["written"].endswith("ota_key.json")
    assert (gw.config / "ota_key.json").read_bytes() == OTA_KEY and (gw.config / "ca.pem").read_bytes() == CA_PEM
    assert not (gw.config / "new-ca.pem").exists() and _beside(gw) == []
    # Held during the request: replaced. Released before the last line: refused at the commit.
    answers, _out = gw.run(*(["!button held"] + _put(c + "/ota_key.json", evil_key, 10)
                             + _put(c + "/ca.pem", evil_ca, 20)[:-1] + ["!button no"] + _put(c + "/ca.pem", evil_ca, 20)[-1:]))
    assert _last(answers, 10, 20)["ok"] and (gw.config / "ota_key.json").read_bytes() == evil_key
    end = _last(answers, 20, 30)
    assert not end["ok"] and "service button" in end["error"] and "nothing written" in end["error"]
    assert (gw.config / "ca.pem").read_bytes() == CA_PEM and _beside(gw) == []


def test_a_site_config_that_changes_the_trust_it_sets_needs_the_button(gw):
    c = str(gw.config)

    def changed(**kw):
        cfg = json.loads(json.dumps(SITE))
        for where, (k, v) in kw.items():
            (cfg["ota"] if where == "ota" else cfg["destinations"][0])[k] = v
        return json.dumps(cfg).encode()

    renamed = json.loads(json.dumps(SITE))
    renamed["site"]["name"] = "Plant 8"
    renamed["network"]["pin"] = "1234"
    tries = [changed(d=("ca", "client.json")), changed(d=("insecure_self_signed", True)),
             changed(d=("url", "https://198.51.100.66/api/register")), changed(d=("security", "plain")),
             changed(ota=("url", "https://198.51.100.66/ota")), changed(ota=("insecure", True)),
             json.dumps(dict(SITE, destinations=[])).encode(), b"not json"]
    lines = []
    for i, doc in enumerate(tries):
        lines += _put(c + "/site.json", doc, 100 * (i + 1))
    lines += _put(c + "/site.json", json.dumps(renamed).encode(), 1000)  # no trust changed: no button
    answers, _out = gw.run(*lines)
    for i in range(len(tries)):
        end = _last(answers, 100 * (i + 1), 100 * (i + 2))
        assert not end["ok"] and "service button" in end["error"], (tries[i], end)
    assert _last(answers, 1000, 1100)["ok"]
    assert json.loads((gw.config / "site.json").read_text()) == renamed and _beside(gw) == []
    answers, _out = gw.run(*(["!button held"] + _put(c + "/site.json", tries[0], 10)))
    assert _last(answers, 10, 20)["ok"] and json.loads((gw.config / "site.json").read_text())["destinations"][0]["ca"] \
        == "client.json"


def test_a_gateway_without_a_site_config_takes_every_file_once(tmp_path):
    """First provisioning (`nengjian provision` order: anchors first, site.json last) needs no button."""
    gw = Gateway(tmp_path)
    c = str(gw.config)
    files = [("ca.pem", CA_PEM), ("ota_key.json", OTA_KEY), ("identity.json", b'{"gateway": "NJ-1"}'),
             ("site.json", json.dumps(SITE).encode())]
    lines = []
    for i, (name, data) in enumerate(files):
        lines += _put("%s/%s" % (c, name), data, 100 * (i + 1))
    lines += _put(c + "/ota_key.json", b'{"n": "later"}', 900)  # provisioned now: the button counts
    lines += ["#950 put %s/../escape.json 2 %s" % (c, "0" * 64), "#951 put %s/sub/x.pem 2 %s" % (c, "0" * 64),
              "#952 put %s/site.json.new 2 %s" % (c, "0" * 64)]
    answers, _out = gw.run(*lines)
    for i, (name, data) in enumerate(files):
        assert _last(answers, 100 * (i + 1), 100 * (i + 2))["ok"], name
        assert (gw.config / name).read_bytes() == data
    assert "service button" in answers[900][-1]["error"] and (gw.config / "ota_key.json").read_bytes() == OTA_KEY
    for rid in (950, 951, 952):
        assert not answers[rid][-1]["ok"] and "put" in answers[rid][-1]["error"], answers[rid]
    assert not (tmp_path / "escape.json").exists() and not (gw.config / "sub").exists()
