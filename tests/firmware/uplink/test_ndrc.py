"""The ndrc-json platform profile (firmware/nengjian/uplink/ndrc.py), its TLS set-up (tlsctx.py) and
the destination options of the site config, against the reference platform.

CPython runs the encoding and answer logic with a scripted HTTP layer; MicroPython (the sim board)
runs every security variant against a live RefPlatform through a small driver that takes one JSON
command per line, so the test can change the platform between two exchanges (expire tokens, forget
devices, rotate a key, swap certificates).
"""

import asyncio
import calendar
import hashlib
import json
import sqlite3
import subprocess
import time

import pytest
from mpyrun import micropython_binary, mpy_env
from nengjian import config as fw_config
from nengjian.core import records, timeutil
from nengjian.core.decimal import Decimal
from nengjian.net import tls as tlsctx
from nengjian.uplink import ndrc
from nengjian_host.common import siteconfig
from nengjian_host.sim.gateway import demo_site
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.refplatform.validate import check_record, cst_now, decode_valid
from nengjian_host.sim.refplatform.variants import decrypt_record, sm4_ecb_decrypt_hex
from simrig import make_pki

ENT = {"code": "91330000573973053F", "region": "441900"}
CODE = "00-00-0000-023300-11"
KEY = "0123456789abcdeffedcba9876543210"
DEVICE = "0ef6ecea08bf84c7b639c3e9b84ed546"


def base_start(now=None):
    now = int(now or time.time())
    return now - now % 900 - 4 * 3600


def specs(n=2, start=None):
    """Record specs [code, start, mantissa, exponent, valid, scope]: 123.450 valid, then -0.05 invalid, ..."""
    start = base_start() if start is None else start
    out = []
    for i in range(n):
        out.append([CODE, start + 900 * i, 123450 + i, -3, True, 1] if i % 2 == 0
                   else [CODE, start + 900 * i, -5 - i, -2, False, 1])
    return out


def value(spec):
    code, start, mant, exp, valid, scope = spec
    return [records.VALUE, start, code, records.REALTIME, start, Decimal(mant, exp), valid, records.FIELD_INSTRUMENT,
            scope]


def batch_of(spec_list):
    return [(i + 1, value(s)) for i, s in enumerate(spec_list)]


def dest(url, **kw):
    d = {"name": "city", "profile": "ndrc-json", "url": url, "timeout_ms": 5000}
    d.update(kw)
    return d


# --- CPython: encoding ---------------------------------------------------------------------------

def seeded(tmp_path, security="plain", valid="json", **kw):
    """A profile with a session on file (as after a registration)."""
    session = {"enterpriseCode": ENT["code"], "region": ENT["region"], "registerURL": "http://p/api/register",
               "deviceId": DEVICE, "centerDataURL": "http://p/api/data", "loadDicVersionURL": "http://p/api/dicVersion",
               "tokenURL": "http://p/api/token", "uploadTime": "01:38:00", "secretKey": KEY}
    (tmp_path / "session-city.json").write_text(json.dumps(session))
    return ndrc.NdrcJson(dest("http://p/api/register", security=security, valid=valid, **kw), ENT, str(tmp_path))


def test_plain_body_is_exact_decimal_text_and_cst(tmp_path):
    p = seeded(tmp_path)
    start = calendar.timegm((2021, 10, 7, 16, 15, 0))  # 00:15 CST on 8 October
    body = p.encode(batch_of(specs(2, start)), start + 16 * 60 + 2)
    assert b'"dataValue":123.450,' in body and b'"dataValue":-0.06,' in body  # never through a float
    doc = json.loads(body)
    assert list(doc) == ["deviceId", "enterpriseCode", "data"]
    assert doc["deviceId"] == DEVICE and doc["enterpriseCode"] == ENT["code"]
    assert doc["data"][0] == {"dataCode": CODE, "dataValue": 123.45, "inputType": 4, "statType": 0,
                              "statDate": "2021-10-08 00:15:00", "uploadDate": "2021-10-08 00:31:02",
                              "scope": 1, "valid": True}
    assert doc["data"][1]["statDate"] == "2021-10-08 00:30:00" and doc["data"][1]["valid"] is False


@pytest.mark.parametrize("encoding,wire_valid,wire_invalid", [("json", True, False), ("shandong", "0", "1"),
                                                              ("yunnan", "1", "0")])
def test_valid_encodings_pass_the_platform_rules(tmp_path, encoding, wire_valid, wire_invalid):
    p = seeded(tmp_path, valid=encoding)
    now = int(time.time())
    doc = json.loads(p.encode(batch_of(specs(2)), now))
    assert [r["valid"] for r in doc["data"]] == [wire_valid, wire_invalid]
    for rec, meant in zip(doc["data"], (True, False)):
        assert check_record(rec, 900, encoding, cst_now(now)) == []
        assert decode_valid(rec["valid"], encoding) is meant
        for other in {"json", "shandong", "yunnan"} - {encoding}:  # another province reads something else
            try:
                assert decode_valid(rec["valid"], other) is not meant
            except ValueError:
                pass


@pytest.mark.parametrize("encoding", ["json", "shandong", "yunnan"])
def test_sm4_ecb_body_decrypts_to_the_plain_one_with_gmssl(tmp_path, encoding):
    now = int(time.time())
    batch = batch_of(specs(3))
    plain = json.loads(seeded(tmp_path, valid=encoding).encode(batch, now))
    enc = json.loads(seeded(tmp_path, "sm4-ecb", valid=encoding).encode(batch, now))
    assert enc["deviceId"] == DEVICE and enc["enterpriseCode"] == ENT["code"]
    for crypt, clear in zip(enc["data"], plain["data"]):
        assert list(crypt) == list(clear)
        for name, hexed in crypt.items():
            assert hexed == hexed.lower() and len(hexed) % 32 == 0, name
        assert sm4_ecb_decrypt_hex(KEY, crypt["dataValue"]) in ("123.450", "-0.06", "123.452")
        assert decrypt_record(crypt, KEY, encoding) == clear  # the platform's decryption (gmssl)


def test_the_body_streams_through_the_kept_buffer(tmp_path):
    """No allocation the size of the body: chunks are views of the buffer kept since start,
    they add up to the measured Content-Length, and the whole is the encoded batch."""
    for security in ("plain", "sm4-ecb"):
        p = seeded(tmp_path, security)
        now = int(time.time())
        batch = batch_of(specs(40))
        whole = bytearray()
        for chunk in p._stream(batch, now):
            assert isinstance(chunk, memoryview) and chunk.obj is p._body, security
            whole += chunk
        assert len(whole) == p._size(batch, now) > ndrc.BODY_BUF, security
        doc = json.loads(bytes(whole))
        assert len(doc["data"]) == 40 and whole == p.encode(batch, now)


# --- CPython: answers, with a scripted HTTP layer -------------------------------------------------

class ScriptedHttp:
    """Stands in for nengjian.net.http.request: answers from a list, records the calls."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    async def request(self, method, url, body=b"", headers=None, timeout_ms=15000, ssl=None, max_body=16384,
                      length=None, buf=None):
        if length is not None:  # streamed: chunks, each valid only until the next is taken
            whole = b"".join(bytes(c) for c in body)
            assert len(whole) == length
            body = whole
        self.calls.append((url.rsplit("/", 1)[-1], json.loads(bytes(body)), dict(headers or {})))
        status, payload = self.answers.pop(0)
        return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def ok(**kw):
    return 200, dict({"responseCode": "0", "responseMessage": "ok"}, **kw)


REG = ok(deviceId=DEVICE, centerDataURL="http://p/api/data", loadDicVersionURL="http://p/api/dicVersion",
         uploadTime="01:38:00")
VER = ok(regVersion="1", dicVersion="1")


def run_round(p, n=2):
    async def go():
        r = await p.ensure_session()
        if r is None:
            r = await p.upload(batch_of(specs(n)), int(time.time()))
        return r

    return asyncio.run(go())


def scripted(monkeypatch, answers):
    h = ScriptedHttp(answers)
    monkeypatch.setattr(ndrc.http, "request", h.request)
    return h


def fresh(tmp_path, events=None, **kw):
    return ndrc.NdrcJson(dest("http://p/api/register", **kw), ENT, str(tmp_path),
                         event=(lambda k, t, c=None: events.append((k, t))) if events is not None else None)


def test_session_order_and_bodies(tmp_path, monkeypatch):
    h = scripted(monkeypatch, [REG, VER, ok(accepted=2)])
    assert run_round(fresh(tmp_path)).kind == ndrc.OK
    assert [c[0] for c in h.calls] == ["register", "dicVersion", "data"]
    assert h.calls[0][1] == {"region": "441900", "enterpriseCode": ENT["code"]}
    assert h.calls[1][1] == {"deviceId": DEVICE}
    assert h.calls[0][2]["Content-Type"] == "application/json;charset=UTF-8"
    saved = json.loads((tmp_path / "session-city.json").read_text())
    assert saved["deviceId"] == DEVICE and saved["dicVersion"] == "1"
    # A restart keeps the session: version check only, no registration.
    h2 = scripted(monkeypatch, [VER, ok()])
    assert run_round(fresh(tmp_path)).kind == ndrc.OK
    assert [c[0] for c in h2.calls] == ["dicVersion", "data"]


def test_session_file_of_another_enterprise_url_or_security_is_not_reused(tmp_path):
    seeded(tmp_path)
    assert ndrc.NdrcJson(dest("http://p/api/register"), ENT, str(tmp_path)).session is not None
    assert ndrc.NdrcJson(dest("http://q/api/register"), ENT, str(tmp_path)).session is None
    assert ndrc.NdrcJson(dest("http://p/api/register"), dict(ENT, region="440300"), str(tmp_path)).session is None
    (tmp_path / "session-city.json").write_text(json.dumps(dict(
        json.loads((tmp_path / "session-city.json").read_text()), secretKey=None)))
    assert ndrc.NdrcJson(dest("http://p/api/register", security="sm4-ecb"), ENT, str(tmp_path)).session is None
    (tmp_path / "session-city.json").write_text("{ torn")
    assert ndrc.NdrcJson(dest("http://p/api/register"), ENT, str(tmp_path)).session is None


def test_session_file_stays_the_bare_dict_older_firmware_reads(tmp_path, monkeypatch):
    """Written through nengjian.core.statefile without a version: the JSON dict alone (no "v"), which
    firmware before statefile (a rolled-back gateway) loads with json.load."""
    scripted(monkeypatch, [REG, VER, ok()])
    p = fresh(tmp_path)
    assert run_round(p).kind == ndrc.OK
    saved = json.loads((tmp_path / "session-city.json").read_text())
    assert saved == p.session and "v" not in saved
    assert not (tmp_path / "session-city.json.new").exists()


def test_session_cut_before_its_rename_is_taken_up(tmp_path):
    """A power cut between writing session-NAME.json.new and the rename, on the first registration:
    the whole .new is the session (statefile's rule), so no second registration."""
    seeded(tmp_path)
    (tmp_path / "session-city.json").rename(tmp_path / "session-city.json.new")
    p = ndrc.NdrcJson(dest("http://p/api/register"), ENT, str(tmp_path))
    assert p.session is not None and p.session["deviceId"] == DEVICE
    assert (tmp_path / "session-city.json").exists() and not (tmp_path / "session-city.json.new").exists()


def test_forgetting_a_session_removes_a_leftover_new_file_too(tmp_path):
    p = seeded(tmp_path)
    (tmp_path / "session-city.json.new").write_text((tmp_path / "session-city.json").read_text())
    p.forget_session()
    assert not (tmp_path / "session-city.json").exists() and not (tmp_path / "session-city.json.new").exists()
    assert ndrc.NdrcJson(dest("http://p/api/register"), ENT, str(tmp_path)).session is None


def test_a_session_that_cannot_be_saved_still_serves_and_is_an_event(tmp_path, monkeypatch):
    """Flash full or failing at registration: the upload goes on with the session in RAM (it was an
    OSError out of the round, a failed round and a back-off); the ledger says a restart registers again."""
    events = []
    h = scripted(monkeypatch, [REG, VER, ok()])
    p = ndrc.NdrcJson(dest("http://p/api/register"), ENT, str(tmp_path / "no-such-dir"),
                      event=lambda k, t, c=None: events.append((k, t)))
    assert run_round(p).kind == ndrc.OK
    assert [c[0] for c in h.calls] == ["register", "dicVersion", "data"]
    assert [k for k, _ in events] == ["uplink", "uplink"]  # the registration's save, the version check's
    assert all("session not saved" in t and "registers again" in t for _, t in events)


def test_memory_error_while_encoding_is_out_of_memory(tmp_path, monkeypatch):
    p = seeded(tmp_path)
    p._checked = True
    scripted(monkeypatch, [ok()])

    def no_heap(batch, now):
        raise MemoryError()

    monkeypatch.setattr(p, "_size", no_heap)
    r = run_round(p, 3)
    assert r.kind == ndrc.OUT_OF_MEMORY and "3 record(s)" in r.reason


def test_memory_error_reading_the_answer_is_unanswered_not_out_of_memory(tmp_path, monkeypatch):
    """The body went out whole, then the heap had no room for the answer: the platform may have
    stored the batch, so this is not the batch being too large to send (delivery resends it as it
    was, not halved). A MemoryError before the body is out stays OUT_OF_MEMORY."""
    p = seeded(tmp_path)
    p._checked = True
    sent = []

    async def answer_lost(method, url, body=b"", headers=None, timeout_ms=15000, ssl=None, max_body=16384,
                          length=None, buf=None):
        sent.append(b"".join(bytes(c) for c in body))
        assert buf is p._body  # the answer is read through the profile's kept buffer
        raise MemoryError()

    monkeypatch.setattr(ndrc.http, "request", answer_lost)
    r = run_round(p, 3)
    assert r.kind == ndrc.UNANSWERED and "3 record(s)" in r.reason and "answer" in r.reason
    assert len(json.loads(sent[0])["data"]) == 3

    async def send_fails(method, url, body=b"", headers=None, timeout_ms=15000, ssl=None, max_body=16384,
                         length=None, buf=None):
        next(iter(body))  # the first chunk only: the body is not out
        raise MemoryError()

    monkeypatch.setattr(ndrc.http, "request", send_fails)
    assert run_round(p, 3).kind == ndrc.OUT_OF_MEMORY


def test_memory_error_setting_up_the_session_is_retry_not_out_of_memory(tmp_path, monkeypatch):
    """Seen at a full heap: loading the session steps failed before any batch was held, and
    delivery halved the batch to one record for nothing. It is backed off from (RETRY) instead."""
    p = fresh(tmp_path)

    def no_heap():
        raise MemoryError()

    monkeypatch.setattr(ndrc, "_session", no_heap)
    r = asyncio.run(p.ensure_session())
    assert r is not None and r.kind == ndrc.RETRY and "setting up the session" in r.reason


HTML = (200, b"<html><body>Service temporarily unavailable</body></html>")


@pytest.mark.parametrize("answer,success_code,fragments", [
    ((200, {"responseCode": 200, "responseMessage": "success"}), 200, None),
    ((200, {"responseCode": "200"}), 200, None),
    ((200, {"responseCode": "0", "responseMessage": "ok"}), 200, ["responseCode 0"]),
    ((200, {"responseCode": "9", "responseMessage": "under maintenance"}), "0", ["responseCode 9", "under maintenance"]),
    (HTML, "0", ["HTTP 200", "unreadable answer", "Service temporarily unavailable"]),
    ((200, b'{"responseCode": "0", "respon'), "0", ["unreadable answer", '{"responseCode": "0", "respon']),
    ((200, [{"responseCode": "0"}]), "0", ["unreadable answer"]),
    ((200, {"status": "ok"}), "0", ["without responseCode", '"status": "ok"']),
    ((500, {"responseCode": "0"}), "0", ["HTTP 500"]),
    ((502, b""), "0", ["HTTP 502", "(empty body)"]),
    ((200, {"responseCode": "1", "responseMessage": "bad", "errors": [{"index": 7, "reason": "x"}]}), "0",
     ["responseCode 1"]),
])
def test_answers_to_an_upload(tmp_path, monkeypatch, capsys, answer, success_code, fragments):
    p = seeded(tmp_path, success_code=success_code)
    p._checked = True
    scripted(monkeypatch, [answer])
    r = run_round(p)
    if fragments is None:
        assert r.kind == ndrc.OK
        return
    assert r.kind == ndrc.RETRY
    for f in fragments:
        assert f in r.reason, r.reason
    assert "answer HTTP %d" % answer[0] in capsys.readouterr().out  # the body goes to the console too
    assert p.session is not None  # an unclear answer never drops the session


def test_per_record_failures_are_rejected_by_index(tmp_path, monkeypatch):
    p = seeded(tmp_path)
    p._checked = True
    scripted(monkeypatch, [(200, {"responseCode": "1", "responseMessage": "2 of 3 record(s) invalid; nothing stored",
                                  "errors": [{"index": 0, "dataCode": CODE, "reason": "dataValue too large"},
                                             {"index": 2, "dataCode": CODE, "reason": "scope"},
                                             {"index": True, "reason": "not an index"}]})])
    r = run_round(p, 3)
    assert r.kind == ndrc.REJECTED and r.rejected == [(0, "dataValue too large"), (2, "scope")]


@pytest.mark.parametrize("message", ["deviceId does not match enterpriseCode", "unknown deviceId (register first)"])
def test_device_id_mismatch_drops_the_session_and_registers_again(tmp_path, monkeypatch, message):
    p = seeded(tmp_path)
    p._checked = True
    h = scripted(monkeypatch, [(200, {"responseCode": "2", "responseMessage": message}), REG, VER, ok()])
    r = run_round(p)
    assert r.kind == ndrc.RETRY and "registering again" in r.reason and message in r.reason
    assert p.session is None and not (tmp_path / "session-city.json").exists()
    assert run_round(p).kind == ndrc.OK
    assert [c[0] for c in h.calls] == ["data", "register", "dicVersion", "data"]


def test_decryption_failure_fetches_the_key_again(tmp_path, monkeypatch):
    p = seeded(tmp_path, "sm4-ecb")
    p._checked = True
    new_key = "00112233445566778899aabbccddeeff"
    h = scripted(monkeypatch, [(200, {"responseCode": "3", "responseMessage": "decryption failed: record 0 field "
                                                                                "dataCode: bad PKCS#7 padding (wrong key?)"}),
                               (REG[0], dict(REG[1], secretKey=new_key)), VER, ok()])
    r = run_round(p)
    assert r.kind == ndrc.RETRY and "could not decrypt" in r.reason and "wrong secretKey" in r.reason
    assert run_round(p).kind == ndrc.OK
    sent = h.calls[-1][1]["data"][0]
    assert sm4_ecb_decrypt_hex(new_key, sent["dataCode"]) == CODE


def test_register_answers_that_cannot_start_a_session(tmp_path, monkeypatch):
    scripted(monkeypatch, [ok(centerDataURL="http://p/api/data")])
    assert "lacks deviceId" in run_round(fresh(tmp_path)).reason
    scripted(monkeypatch, [REG])
    assert "no usable secretKey for security sm4-ecb" in run_round(fresh(tmp_path, security="sm4-ecb")).reason
    scripted(monkeypatch, [(200, {"responseCode": "2", "responseMessage": "enterpriseCode check character"})])
    r = run_round(fresh(tmp_path))
    assert r.kind == ndrc.RETRY and r.reason.startswith("register refused: HTTP 200, responseCode 2")
    assert not (tmp_path / "session-city.json").exists()


def test_version_check_failure_does_not_hold_data_back_and_changes_are_events(tmp_path, monkeypatch):
    events = []
    h = scripted(monkeypatch, [REG, (200, {"responseCode": "9", "responseMessage": "no dictionary"}), ok()])
    assert run_round(fresh(tmp_path, events)).kind == ndrc.OK
    assert [c[0] for c in h.calls] == ["register", "dicVersion", "data"]
    assert any("version check failed (uploading anyway)" in t and "no dictionary" in t for _, t in events)
    events.clear()
    scripted(monkeypatch, [VER, ok()])
    run_round(fresh(tmp_path, events))
    assert events == []
    scripted(monkeypatch, [ok(regVersion="1", dicVersion="2"), ok()])
    run_round(fresh(tmp_path, events))
    assert [k for k, _ in events] == ["uplink"] and "dicVersion 1 -> 2" in events[0][1]


def test_token_renewed_once_on_401_without_backoff(tmp_path, monkeypatch):
    p = seeded(tmp_path, "sm4-cbc-token", valid="yunnan", pin="123456", success_code=200)
    p._checked = True
    tok = lambda t: (200, {"responseCode": 200, "token": t, "expiresIn": 3600})  # noqa: E731
    unauthorized = (401, {"responseCode": "401", "responseMessage": "token expired"})
    h = scripted(monkeypatch, [tok("t1"), (200, {"responseCode": 200}), unauthorized, tok("t2"), (200, {"responseCode": 200}),
                               unauthorized, tok("t3"), unauthorized])
    assert run_round(p).kind == ndrc.OK
    assert run_round(p).kind == ndrc.OK  # 401, new token, resent: one call, no back-off
    assert [c[0] for c in h.calls] == ["token", "data", "data", "token", "data"]
    assert [c[2].get("Authorization") for c in h.calls] == [None, "Bearer t1", "Bearer t1", None, "Bearer t2"]
    assert h.calls[0][1]["password"] == h.calls[3][1]["password"] and len(h.calls[0][1]["password"]) == 32
    r = run_round(p)  # refused again after renewal: back off
    assert r.kind == ndrc.RETRY and "token expired" in r.reason


def test_token_problems_are_named(tmp_path, monkeypatch):
    p = seeded(tmp_path, "sm4-cbc-token", pin="0000")
    scripted(monkeypatch, [(200, {"responseCode": "2", "responseMessage": "wrong password"})])
    r = run_round(p)
    assert r.kind == ndrc.RETRY and r.reason == "token refused: HTTP 200, responseCode 2: wrong password"
    session = json.loads((tmp_path / "session-city.json").read_text())
    session["tokenURL"] = None
    (tmp_path / "session-city.json").write_text(json.dumps(session))
    p = ndrc.NdrcJson(dest("http://p/api/register", security="sm4-cbc-token", pin="1"), ENT, str(tmp_path))
    assert run_round(p).reason.startswith("no token URL")


def test_https_destination_refuses_a_plain_http_service_url(tmp_path, monkeypatch):
    scripted(monkeypatch, [REG])
    p = ndrc.NdrcJson(dest("https://p/api/register", ca="ca.pem"), ENT, str(tmp_path), ssl=object())
    r = run_round(p)
    assert r.kind == ndrc.RETRY and "refusing to send in the clear" in r.reason


def test_insecure_option_is_an_event_at_every_start(tmp_path):
    for _ in range(2):
        events = []
        ndrc.NdrcJson(dest("https://p/api/register", insecure_self_signed=True), ENT, str(tmp_path),
                      event=lambda k, t, c=None, ev=events: ev.append((k, t)))
        assert len(events) == 1 and events[0][0] == "security" and "NOT verified" in events[0][1]
    events = []
    ndrc.NdrcJson(dest("https://p/api/register", ca="ca.pem"), ENT, str(tmp_path), event=lambda k, t, c=None: events.append(t))
    assert events == []


# --- config --------------------------------------------------------------------------------------

def site(**dest_options):
    cfg = demo_site("http://127.0.0.1:1/api/register")
    cfg["destinations"][0].update(dest_options)
    return cfg


@pytest.mark.parametrize("options,fragment", [
    ({}, None),
    ({"url": "https://p.example/api/register", "ca": "platform-ca.pem"}, None),
    ({"url": "https://p.example/api/register", "insecure_self_signed": True}, None),
    ({"url": "https://p.example/api/register", "security": "mtls", "ca": "ca.der", "client_cert": "cli.pem",
      "client_key": "cli.key"}, None),
    ({"security": "sm4-ecb", "valid": "shandong"}, None),
    ({"security": "sm4-cbc-token", "pin": "123456", "valid": "yunnan", "success_code": 200}, None),
    ({"url": "https://p.example/api/register"}, "destinations[0].ca: an https:// destination needs"),
    ({"url": "https://p.example/api/register", "ca": "a.pem", "insecure_self_signed": True},
     "destinations[0].insecure_self_signed: a pinned ca"),
    ({"ca": "a.pem"}, "destinations[0].ca: only for https:// URLs"),
    ({"insecure_self_signed": True}, "destinations[0].insecure_self_signed: only for https:// URLs"),
    ({"security": "mtls"}, "destinations[0].security: mtls needs an https:// URL"),
    ({"url": "https://p.example/api/register", "ca": "a.pem", "security": "mtls", "client_cert": "c.pem"},
     "destinations[0].client_key: required by security mtls"),
    ({"url": "https://p.example/api/register", "ca": "a.pem", "client_cert": "c.pem", "client_key": "c.key"},
     "destinations[0].client_cert: only used with security mtls"),
    ({"security": "sm4-cbc-token"}, "destinations[0].pin: required by security sm4-cbc-token"),
    ({"security": "sm4-cbc-token", "pin": "12 34"}, "destinations[0].pin: printable ASCII only"),
    ({"pin": "1234"}, "destinations[0].pin: only used with security sm4-cbc-token"),
    ({"security": "sm4-cbc-token", "pin": "1", "token_url": "ftp://x/token"}, "destinations[0].token_url: must start"),
    ({"url": "https://p.example/api/register", "ca": "../etc/ca.pem"}, "destinations[0].ca"),
    ({"security": "sm2"}, "destinations[0].security"),
    ({"security": "sm4-cbc-token", "pin": "123456789012345"}, "destinations[0].pin"),
])
def test_destination_options_are_checked_on_gateway_and_host(options, fragment):
    problems = siteconfig.check(site(**options))  # the host: jsonschema, then the gateway's own checks
    if fragment is None:
        assert problems == []
        d = fw_config.check(site(**options), load_meter_profile)["destinations"][0]
        assert d["security"] == options.get("security", "plain")
        assert d["insecure_self_signed"] is options.get("insecure_self_signed", False)
        assert str(d["success_code"]) == str(options.get("success_code", "0"))
    else:
        assert len(problems) == 1 and fragment.replace("[0]", ".0").split(":")[0] in problems[0].replace("[0]", ".0")
        with pytest.raises(fw_config.ConfigError) as e:  # the gateway alone (its small schema validator)
            fw_config.check(site(**options), load_meter_profile)
        assert str(e.value).startswith(fragment), str(e.value)


def load_meter_profile(name):
    return siteconfig.fw_profile.load(str(siteconfig.paths.PROFILES), name)


# --- tlsctx helpers ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_pem_blocks_become_der(pki):
    two = (pki / "rogue.pem").read_bytes() + b"\n" + (pki / "ca.pem").read_bytes()
    assert tlsctx.der_blocks(two, "ca") == [(pki / "rogue.der").read_bytes(), (pki / "ca.der").read_bytes()]
    assert tlsctx.der_blocks((pki / "ca.der").read_bytes(), "ca") == [(pki / "ca.der").read_bytes()]
    assert tlsctx.der_blocks((pki / "cli.key").read_bytes(), "key") == [(pki / "cli.key.der").read_bytes()]
    for bad, fragment in ((b"", "is empty"), (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "no END line"),
                          (b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                           "encrypted key"), (b"  -----nothing here", "no PEM block")):
        with pytest.raises(tlsctx.TlsSetupError, match=fragment):
            tlsctx.der_blocks(bad, "x")


# --- MicroPython against the reference platform ----------------------------------------------------

DRIVER = r'''
import asyncio, json, sys
from nengjian.core import records, timeutil
from nengjian.core.decimal import Decimal
from nengjian.net import http
from nengjian.uplink import ndrc

events = []
prof = None


def event(kind, text, code=None):
    events.append([kind, text])


def batch(specs):
    out = []
    for i, s in enumerate(specs):
        code, start, mant, exp, valid, scope = s
        out.append((i + 1, [records.VALUE, start, code, 0, start, Decimal(mant, exp), valid, 4, scope]))
    return out


def res(r):
    return None if r is None else [r.kind, r.reason, r.rejected]


async def handle(cmd):
    global prof
    op = cmd["op"]
    if op == "build":
        prof = ndrc.build(cmd["dest"], cmd["enterprise"], cmd["state"], cmd["config_dir"], event)
        return {}
    if op == "round":  # what delivery does: the session, then the upload
        r = await prof.ensure_session()
        if r is None:
            r = await prof.upload(batch(cmd["records"]), timeutil.now())
        return {"result": res(r)}
    if op == "upload":
        return {"result": res(await prof.upload(batch(cmd["records"]), timeutil.now()))}
    if op == "encode":  # a digest: the sim heap is an ESP32's, too small for copies of a big body
        import hashlib
        from binascii import hexlify
        b = batch(cmd["records"])
        body = prof.encode(b, cmd["now"])
        b = None
        return {"sha256": hexlify(hashlib.sha256(body).digest()).decode(), "size": len(body),
                "head": bytes(body[:300]).decode()}
    raise ValueError(op)


while True:
    line = sys.stdin.readline()
    if not line:
        break
    cmd = json.loads(line)
    try:
        out = asyncio.run(handle(cmd))
    except http.HttpError as e:
        out = {"http_error": str(e)}
    except Exception as e:
        sys.print_exception(e)
        out = {"exception": "%s: %s" % (type(e).__name__, e)}
    out["events"] = events[:]
    del events[:]
    sys.stdout.write("@@" + json.dumps(out) + "\n")
'''


class MpyProfile:
    """The firmware's profile running on MicroPython, one JSON command per line."""

    def __init__(self, tmp_path, d, heap="256k"):
        script = tmp_path / "driver.py"
        script.write_text(DRIVER)
        self.lines = []
        self.proc = subprocess.Popen([micropython_binary(), "-X", "heapsize=" + heap, str(script)], env=mpy_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=str(tmp_path))
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        self.build = self.cmd(op="build", dest=d, enterprise=ENT, state=str(state), config_dir=str(tmp_path / "config"))

    def cmd(self, **c):
        self.proc.stdin.write(json.dumps(c) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("driver died:\n" + "\n".join(self.lines[-30:]))
            if line.startswith("@@"):
                out = json.loads(line[2:])
                assert "exception" not in out, "\n".join(self.lines[-30:]) + "\n" + out["exception"]
                return out
            self.lines.append(line.rstrip("\n"))

    def round(self, n=2, start=None):
        return self.cmd(op="round", records=specs(n, start))

    def console(self):
        return "\n".join(self.lines)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture
def mpy(tmp_path):
    made = []

    def start(d, **kw):
        m = MpyProfile(tmp_path, d, **kw)
        made.append(m)
        return m

    yield start
    for m in made:
        m.close()


def eventually(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def install(tmp_path, pki, *names):
    cfg = tmp_path / "config"
    cfg.mkdir(exist_ok=True)
    for n in names:
        (cfg / n).write_bytes((pki / n).read_bytes())


def tls_platform(pki, server="srv", **kw):
    return RefPlatform(certfile=str(pki / (server + ".pem")), keyfile=str(pki / (server + ".key")), **kw)


def assert_stored(platform, spec_list, encoding_ok=True):
    rows = {r["statDate"]: r for r in platform.records()}
    for code, start, mant, exp, valid, scope in spec_list:
        row = rows[timeutil.cst_text(start)]
        assert row["dataCode"] == code and row["valid"] is valid and row["scope"] == scope
        assert row["dataValue"] == float(Decimal(mant, exp).text())


VARIANTS = [
    # security, valid encoding, success code, TLS (None: http; CA file name pinned)
    ("plain", "json", "0", None),
    ("plain", "shandong", "0", "ca.pem"),
    ("mtls", "json", "0", "ca.der"),
    ("sm4-ecb", "shandong", "0", None),
    ("sm4-ecb", "json", "0", "ca.pem"),
    ("sm4-ecb", "yunnan", "0", None),
    ("sm4-cbc-token", "yunnan", 200, "ca.pem"),
]


@pytest.mark.mpy
@pytest.mark.parametrize("security,encoding,success,ca", VARIANTS)
def test_variant_session_and_upload_on_micropython(tmp_path, pki, mpy, security, encoding, success, ca):
    kw = {"variant": security, "valid_encoding": encoding, "success_code": success}
    opts = {"security": security, "valid": encoding, "success_code": success}
    if security == "mtls":
        kw["client_ca"] = str(pki / "ca.pem")
        opts.update(client_cert="cli.pem", client_key="cli.key")
        install(tmp_path, pki, "cli.pem", "cli.key")
    if security == "sm4-cbc-token":
        kw.update(pin="8642")
        opts["pin"] = "8642"
    if ca:
        opts["ca"] = ca
        install(tmp_path, pki, ca)
    with (tls_platform(pki, **kw) if ca else RefPlatform(**kw)) as plat:
        d = dest(plat.url + "/api/register", **opts)
        recs = specs(4)
        m = mpy(d)
        assert m.cmd(op="round", records=recs[:2])["result"] == [ndrc.OK, "", []]
        assert_stored(plat, recs[:2])
        req = plat.stats()["requests"]
        assert (req["register"], req["dicVersion"], req["data"]) == (1, 1, 1)
        assert req.get("token", 0) == (1 if security == "sm4-cbc-token" else 0)
        m.close()
        # A restart keeps the session (state on flash): version check, no registration.
        m = mpy(d)
        assert m.cmd(op="round", records=recs[2:])["result"] == [ndrc.OK, "", []]
        assert_stored(plat, recs)
        req = plat.stats()["requests"]
        assert (req["register"], req["dicVersion"], req["data"]) == (1, 2, 2)
        assert plat.stats()["internalErrors"] == 0


@pytest.mark.mpy
def test_device_id_mismatch_registers_again_on_micropython(tmp_path, mpy):
    with RefPlatform() as plat:
        m = mpy(dest(plat.url + "/api/register"))
        assert m.round()["result"][0] == ndrc.OK
        old = plat.devices()[0]["deviceId"]
        plat.clear(devices=True)
        r = m.cmd(op="upload", records=specs(2))["result"]
        assert r[0] == ndrc.RETRY and "registering again" in r[1] and old in r[1]
        assert m.round()["result"][0] == ndrc.OK
        assert plat.devices()[0]["deviceId"] != old
        assert_stored(plat, specs(2))


@pytest.mark.mpy
def test_expired_token_is_renewed_and_resent_on_micropython(tmp_path, mpy):
    with RefPlatform(variant="sm4-cbc-token", valid_encoding="yunnan", success_code=200, pin="8642") as plat:
        m = mpy(dest(plat.url + "/api/register", security="sm4-cbc-token", valid="yunnan", success_code=200, pin="8642"))
        assert m.round()["result"][0] == ndrc.OK
        plat.expire_tokens()
        plat.clear()
        assert m.cmd(op="upload", records=specs(2))["result"] == [ndrc.OK, "", []]  # no back-off
        assert_stored(plat, specs(2))
        assert plat.stats()["requests"]["token"] == 2
        assert "token refused" in m.console()


@pytest.mark.mpy
def test_wrong_pin_is_a_clear_failure_on_micropython(tmp_path, mpy):
    with RefPlatform(variant="sm4-cbc-token", pin="8642") as plat:
        m = mpy(dest(plat.url + "/api/register", security="sm4-cbc-token", pin="1111"))
        r = m.round()["result"]
        assert r[0] == ndrc.RETRY and r[1] == "token refused: HTTP 200, responseCode 2: wrong password"
        assert plat.records() == []


@pytest.mark.mpy
def test_rotated_key_fails_decryption_then_registers_again_on_micropython(tmp_path, mpy):
    db = tmp_path / "p.sqlite"
    with RefPlatform(db_path=str(db), variant="sm4-ecb", valid_encoding="shandong") as plat:
        m = mpy(dest(plat.url + "/api/register", security="sm4-ecb", valid="shandong"))
        assert m.round()["result"][0] == ndrc.OK
        with sqlite3.connect(str(db)) as c:  # the platform issues a new key to the enterprise
            c.execute("UPDATE devices SET secret_key = ?", ("00112233445566778899aabbccddeeff",))
        c.close()
        later = specs(2, base_start() + 2 * 900)
        r = m.cmd(op="upload", records=later)["result"]
        assert r[0] == ndrc.RETRY and "could not decrypt" in r[1] and "responseCode 3" in r[1]
        assert m.cmd(op="round", records=later)["result"][0] == ndrc.OK
        assert_stored(plat, specs(2) + later)
        assert plat.stats()["requests"]["register"] == 2


@pytest.mark.mpy
def test_tls_checks_on_micropython(tmp_path, pki, mpy):
    install(tmp_path, pki, "ca.pem", "self.pem")
    (tmp_path / "config" / "two-cas.pem").write_bytes((pki / "rogue.pem").read_bytes() + (pki / "ca.pem").read_bytes())
    with tls_platform(pki, server="rogue-srv") as plat:  # not signed by the pinned CA
        m = mpy(dest(plat.url + "/api/register", ca="ca.pem"))
        r = m.round()["result"]
        assert r[0] == ndrc.RETRY and r[1].startswith("TLS: the platform's certificate was rejected")
        assert "not correctly signed by the trusted CA" in r[1] and "ca.pem" in r[1]
        assert plat.stats()["requests"] == {}
        assert eventually(lambda: plat.stats()["tlsFailures"] >= 1)  # the server notes it on its own thread
    with tls_platform(pki) as plat:
        m = mpy(dest(plat.url.replace("127.0.0.1", "localhost") + "/api/register", ca="ca.pem"))
        r = m.round()["result"]
        assert r[0] == ndrc.RETRY and "TLS" in r[1] and "CN" in r[1]  # the certificate names 127.0.0.1
        m = mpy(dest(plat.url + "/api/register", ca="two-cas.pem"))
        assert m.round()["result"][0] == ndrc.OK
        m = mpy(dest(plat.url + "/api/register", ca="missing.pem"))
        r = m.round()["result"]
        assert r[0] == ndrc.RETRY and r[1].startswith("TLS set-up: ca: cannot read") and "missing.pem" in r[1]
    with tls_platform(pki, server="self") as plat:  # a self-signed platform: pin its certificate
        m = mpy(dest(plat.url + "/api/register", ca="self.pem"))
        assert m.round()["result"][0] == ndrc.OK and m.build["events"] == []
        m = mpy(dest(plat.url + "/api/register", insecure_self_signed=True))
        assert [e[0] for e in m.build["events"]] == ["security"] and "NOT verified" in m.build["events"][0][1]
        assert m.round()["result"][0] == ndrc.OK


@pytest.mark.mpy
def test_mutual_tls_with_a_certificate_the_platform_does_not_trust(tmp_path, pki, mpy):
    install(tmp_path, pki, "ca.pem", "rogue-cli.pem", "rogue-cli.key")
    with tls_platform(pki, variant="mtls", client_ca=str(pki / "ca.pem")) as plat:
        m = mpy(dest(plat.url + "/api/register", ca="ca.pem", security="mtls", client_cert="rogue-cli.pem",
                     client_key="rogue-cli.key"))
        out = m.round()
        reason = out["result"][1] if "result" in out else out["http_error"]
        assert "client certificate rogue-cli.pem" in reason, out
        assert plat.records() == [] and eventually(lambda: plat.stats()["tlsFailures"] >= 1)


@pytest.mark.mpy
def test_sm4_body_on_micropython_is_byte_identical_to_cpython(tmp_path, mpy):
    state = tmp_path / "state"
    state.mkdir()
    p = seeded(state, "sm4-ecb", valid="shandong")
    recs = specs(50)
    now = int(time.time())
    m = mpy(dest("http://p/api/register", security="sm4-ecb", valid="shandong"))  # loads the seeded session
    got = m.cmd(op="encode", records=recs, now=now)
    want = p.encode(batch_of(recs), now)
    assert got["head"].encode() == want[:300]
    assert (got["size"], got["sha256"]) == (len(want), hashlib.sha256(want).hexdigest())
    assert len(json.loads(want)["data"]) == 50


@pytest.mark.mpy
def test_fifty_record_sm4_batch_uploads_within_the_sim_heap(tmp_path, mpy):
    with RefPlatform(variant="sm4-ecb", valid_encoding="shandong") as plat:
        m = mpy(dest(plat.url + "/api/register", security="sm4-ecb", valid="shandong"), heap="256k")
        recs = specs(50, base_start() - 12 * 3600)
        for _ in range(3):  # again and again: no creeping fragmentation
            assert m.cmd(op="round", records=recs)["result"] == [ndrc.OK, "", []]
        assert_stored(plat, recs)


@pytest.mark.mpy
def test_records_the_platform_refuses_come_back_by_index_on_micropython(tmp_path, mpy):
    other = "01-00-0000-023300-11"
    with RefPlatform() as plat:
        m = mpy(dest(plat.url + "/api/register"))
        plat.set_fault("reject_code", data_code=other)
        recs = specs(3)
        recs[1] = [other, recs[1][1], 7, 0, True, 2]
        r = m.cmd(op="round", records=recs)["result"]
        assert r[0] == ndrc.REJECTED and [i for i, _ in r[2]] == [1] and "rejected by the platform" in r[2][0][1]
        assert plat.records() == []  # the platform stores a batch whole or not at all
        assert m.cmd(op="upload", records=[recs[0], recs[2]])["result"] == [ndrc.OK, "", []]
        assert_stored(plat, [recs[0], recs[2]])


def test_a_client_key_provisioned_on_the_board_serves_mutual_tls(tmp_path):
    """On the ESP32 the client key lives in the nj_keys partition (board.credentials()), not in the
    config directory: mutual TLS takes it from there, on MicroPython, and the handshake succeeds
    against a platform that requires a client certificate; without it the error names the file."""
    from mpyrun import run_mpy

    pki = make_pki(tmp_path / "pki")
    cfgdir = tmp_path / "config"
    cfgdir.mkdir()
    (cfgdir / "ca.pem").write_bytes((pki / "ca.pem").read_bytes())
    (cfgdir / "cli.pem").write_bytes((pki / "cli.pem").read_bytes())
    with RefPlatform(variant="mtls", certfile=str(pki / "srv.pem"), keyfile=str(pki / "srv.key"),
                     client_ca=str(pki / "ca.pem")).start() as plat:
        code = """
import asyncio
from nengjian.net import http, tls as tlsctx
d = {"url": %r, "ca": "ca.pem", "client_cert": "cli.pem", "client_key": "cli.key", "security": "mtls"}
key = open(%r, "rb").read()
try:
    tlsctx.build(d, %r)
except tlsctx.TlsSetupError as e:
    print("WITHOUT:", e)
ctx, _ = tlsctx.build(d, %r, lambda: {"key": key})
st, body = asyncio.run(http.request("POST", d["url"], b'{"region":"441900","enterpriseCode":"91330000573973053F"}',
                                    {"Content-Type": "application/json;charset=UTF-8"}, 10000, ctx))
print("STATUS", st, body)
""" % (plat.url + "/api/register", str(pki / "cli.key"), str(cfgdir), str(cfgdir))
        out = run_mpy(code, timeout=60).stdout
    assert "WITHOUT: client_key: cannot read" in out and "cli.key" in out
    assert "STATUS 200" in out and '"deviceId"' in out


def test_the_sim_board_gives_the_provisioned_key_like_the_esp32_does(tmp_path):
    from mpyrun import run_mpy

    (tmp_path / "nj_keys").mkdir()
    (tmp_path / "nj_keys" / "key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nabc\n")
    out = run_mpy("import board; print(sorted(board.credentials().items()))",
                  env={"NJ_SIM_DIR": str(tmp_path)}).stdout.strip()
    assert out == "[('key', b'-----BEGIN PRIVATE KEY-----\\nabc\\n')]"


@pytest.mark.parametrize("section,value,fragment", [
    ("ota", {"url": "ftp://vendor/offer"}, "ota.url: must start with http:// or https://"),
    ("ota", {"url": "https://vendor.example/offer"}, "ota.ca: an https update server needs its CA"),
    ("ota", {"check_s": 10}, "ota.check_s"),
    ("network", {"pin": "12a4"}, "network.pin"),
    ("network", {"dial": "ppp"}, "network.dial"),
    ("network", {"keepalive_s": 5}, "network.keepalive_s"),
])
def test_update_and_network_sections_are_checked(section, value, fragment):
    cfg = site()
    cfg[section] = value
    with pytest.raises(fw_config.ConfigError) as e:
        fw_config.check(cfg, load_meter_profile)
    assert str(e.value).startswith(fragment), str(e.value)
    assert siteconfig.check(cfg)  # the host's jsonschema agrees there is a problem


def test_platform_coefficients_need_a_tce_section():
    cfg = site(coefficients=True)
    with pytest.raises(fw_config.ConfigError, match=r"destinations\[0\]\.coefficients: the site has no tce"):
        fw_config.check(cfg, load_meter_profile)
    cfg = site(coefficients=True, notices=["alarm"])
    cfg["tce"] = {"decimals": 3}
    d = fw_config.check(cfg, load_meter_profile)
    assert d["destinations"][0]["notices"] == ["alarm"] and d["network"]["keepalive_s"] == 300


# --- where a register answer may send us, and what an error may quote ----------------------------

@pytest.mark.parametrize("url,why", [
    ("https://evil.example/api/data", "host evil.example is neither the destination's nor one of its hosts"),
    ("http://evil.example/api/data", "host evil.example"),
    ("http://p.evil.example/api/data", "host p.evil.example"),
    ("http://p@evil.example/api/data", "not a plain host name"),
    ("http://p/api/data\r\nX-Injected: 1", "spaces or control characters"),
    ("ftp://p/api/data", "not https"),
])
def test_a_register_answer_that_sends_uploads_elsewhere_is_refused_and_recorded(tmp_path, monkeypatch, url, why):
    events = []
    hostile = (REG[0], dict(REG[1], centerDataURL=url))
    h = scripted(monkeypatch, [hostile, hostile])
    p = fresh(tmp_path, events)
    for _ in range(2):
        r = run_round(p)
        assert r.kind == ndrc.RETRY and "centerDataURL" in r.reason and why in r.reason, r.reason
        assert "the data stay on the gateway" in r.reason
    assert [c[0] for c in h.calls] == ["register", "register"]  # nothing went anywhere else
    assert p.session is None and not (tmp_path / "session-city.json").exists()
    # One ledger line (not one per retry), naming only scheme and host of what was refused.
    assert len(events) == 1 and events[0][0] == "security", events
    assert "centerDataURL" in events[0][1] and "refused" in events[0][1] and "/api/data" not in events[0][1]


def test_other_service_urls_off_the_destination_are_dropped_and_the_data_still_go(tmp_path, monkeypatch):
    events = []
    reg = (REG[0], dict(REG[1], loadDicVersionURL="https://evil.example/v", centerInfoURL="http://10.0.0.9/i"))
    h = scripted(monkeypatch, [reg, ok()])
    p = fresh(tmp_path, events)
    assert run_round(p).kind == ndrc.OK
    assert [c[0] for c in h.calls] == ["register", "data"]  # no version check at the refused URL
    assert p.session["loadDicVersionURL"] is None and p.session["centerInfoURL"] is None
    assert sorted(t.split("'s ")[1].split(" ")[0] for k, t in events if k == "security") == [
        "centerInfoURL", "loadDicVersionURL"]


def test_hosts_named_in_the_config_are_allowed_and_https_never_downgrades(tmp_path, monkeypatch):
    reg = (REG[0], dict(REG[1], centerDataURL="https://data.platform.example/api/data", loadDicVersionURL=None))
    scripted(monkeypatch, [reg, ok()])
    p = ndrc.NdrcJson(dest("https://p/api/register", ca="ca.pem", hosts=["Data.Platform.example"]), ENT,
                      str(tmp_path), ssl=object())
    assert run_round(p).kind == ndrc.OK
    reg = (REG[0], dict(REG[1], centerDataURL="http://data.platform.example/api/data"))
    scripted(monkeypatch, [reg])
    p = ndrc.NdrcJson(dest("https://p/api/register", ca="ca.pem", hosts=["data.platform.example"]), ENT,
                      str(tmp_path / "other"), ssl=object())
    r = run_round(p)
    assert r.kind == ndrc.RETRY and "refusing to send in the clear" in r.reason
    assert p.session is None  # refused when the answer came, not kept for a later upload to refuse


def test_a_session_on_flash_with_a_url_off_the_destination_registers_again(tmp_path):
    events = []
    seeded(tmp_path)
    session = json.loads((tmp_path / "session-city.json").read_text())
    (tmp_path / "session-city.json").write_text(json.dumps(dict(session, centerDataURL="http://evil.example/d")))
    assert fresh(tmp_path, events).session is None
    assert [k for k, _ in events] == ["security"]


def test_the_hosts_option_is_checked():
    assert siteconfig.check(site(hosts=["data.platform.example"])) == []
    for bad in (["evil.example/x"], ["a@b"], "data.platform.example", ["a", "b", "c", "d", "e"]):
        with pytest.raises(fw_config.ConfigError, match=r"destinations\[0\]\.hosts"):
            fw_config.check(site(hosts=bad), load_meter_profile)
        assert siteconfig.check(site(hosts=bad))


SECRET = "5ec4e7c0ffee5ec4e7c0ffee5ec4e7ab"


@pytest.mark.parametrize("answer", [
    ok(deviceId=DEVICE, secretKey=SECRET, uploadTime="01:38:00"),  # no centerDataURL
    ok(centerDataURL="http://p/api/data", secretKey=SECRET),  # no deviceId
    (200, {"responseCode": "2", "responseMessage": "bad region", "secretKey": SECRET, "token": SECRET}),
    (200, b'{"responseCode": "0", "deviceId": "' + DEVICE.encode() + b'", "secretKey" : "' + SECRET[:20].encode()),
    (200, b'{"responseCode": "0", "secretKey":"' + SECRET.encode() + b'", "x": "' + 300 * b"y" + b'"}'),
    ok(deviceId=DEVICE, centerDataURL="http://p/api/data", secretKey=SECRET[:12]),  # too short for sm4
])
def test_a_failed_registration_never_quotes_the_secret_key(tmp_path, monkeypatch, capsys, answer):
    events = []
    scripted(monkeypatch, [answer])
    r = run_round(fresh(tmp_path, events, security="sm4-ecb"))
    assert r.kind == ndrc.RETRY
    out = capsys.readouterr().out
    for where in [r.reason, out] + [t for _, t in events]:
        assert SECRET[:12] not in where, where
    assert "register" in r.reason


def test_the_platform_quoting_our_key_or_token_is_scrubbed(tmp_path, monkeypatch, capsys):
    p = seeded(tmp_path, "sm4-cbc-token", valid="yunnan", pin="864213", success_code=200)
    p._checked = True
    h = scripted(monkeypatch, [(200, {"responseCode": 200, "token": "tok-" + SECRET, "expiresIn": 3600}),
                               (200, {"responseCode": "7", "responseMessage": "key %s / token tok-%s / pin 864213"
                                      % (KEY, SECRET)})])
    r = run_round(p)
    assert r.kind == ndrc.RETRY and "responseCode 7" in r.reason
    out = capsys.readouterr().out
    for secret in (KEY, SECRET, "864213"):
        assert secret not in r.reason and secret not in out
    assert [c[0] for c in h.calls] == ["token", "data"]



@pytest.mark.mpy
def test_a_hostile_redirect_from_the_platform_sends_nothing_elsewhere_on_micropython(tmp_path, mpy):
    with RefPlatform() as plat, RefPlatform() as evil:
        # evil's URL names "localhost", not the destination's 127.0.0.1: another host to the gateway
        plat.set_fault("redirect", url=evil.url.replace("127.0.0.1", "localhost"),
                       fields=["centerDataURL", "loadDicVersionURL"])
        m = mpy(dest(plat.url + "/api/register"))
        out = m.round()
        r = out["result"]
        assert r[0] == ndrc.RETRY and "centerDataURL" in r[1] and "refused" in r[1], out
        assert [e[0] for e in out["events"]] == ["security", "security"], out["events"]
        assert evil.stats()["requests"] == {}  # nothing reached the other host
        assert plat.records() == [] and plat.stats()["requests"].get("data", 0) == 0
        plat.set_fault("ok")
        assert m.round()["result"] == [ndrc.OK, "", []]  # the data waited on the gateway
        assert_stored(plat, specs(2))
    with RefPlatform() as plat:
        # The same platform under a host name the site names for it: allowed.
        plat.set_fault("redirect", url=plat.url.replace("127.0.0.1", "localhost"))
        m = mpy(dest(plat.url + "/api/register", hosts=["localhost"]))
        out = m.round()
        assert out["result"] == [ndrc.OK, "", []] and out["events"] == []
        assert_stored(plat, specs(2))


def test_an_answer_nested_past_the_json_limits_is_unreadable_not_a_crash():
    # Inside the 16 KB body cap; json.loads alone raises RecursionError here, MemoryError on MicroPython.
    assert ndrc._parse(b"[" * 8000) is None and ndrc._parse(b'{"a":' * 3000) is None
    assert ndrc._parse(b'{"responseCode":"0"}') == {"responseCode": "0"}
