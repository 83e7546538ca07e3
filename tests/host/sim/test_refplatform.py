"""Tests of the reference platform (host/nengjian_host/sim/refplatform): wire rules, storage, faults, variants."""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from gmssl.sm4 import SM4_ENCRYPT, CryptSM4
from hypothesis import given
from hypothesis import strategies as st
from nengjian_host.common.paths import ROOT
from nengjian_host.sim.refplatform import (
    DEVICE_MISMATCH,
    RefPlatform,
    check_enterprise_code,
    credit_check_char,
    sm4_ecb_encrypt_hex,
    yunnan_password,
)
from nengjian_host.sim.refplatform.validate import CREDIT_CHARSET, CST

JSON_CT = "application/json;charset=UTF-8"
SAMPLE_ENTERPRISE = "91330000573973053F"
OTHER_ENTERPRISE = "91440300MA5DC0QX18"  # made up; its check character "8" is computed, not copied
REGION = "441900"

# SPEC 3.1 step 4, verbatim.
SAMPLE_BODY = """
{"deviceId": "0ef6ecea08bf84c7b639c3e9b84ed546",
 "enterpriseCode": "91330000573973053F",
 "data": [{"dataCode": "00-00-0000-023300-11", "dataValue": 123.45, "inputType": 4,
           "statType": 0, "statDate": "2021-10-08 00:15:00", "uploadDate": "2021-10-08 00:31:02",
           "scope": 1, "valid": true}]}
"""


class FakeClock:
    """Server time under test control (POSIX seconds)."""

    def __init__(self, cst_text):
        self.t = datetime.strptime(cst_text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp()

    def __call__(self):
        return self.t


def call(url, path, body=None, method="POST", headers=None, timeout=5.0, raw=None, ctype=JSON_CT,
         context=None):
    """One HTTP exchange -> (status, parsed JSON body)."""
    u = urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode("utf-8"))
        hdrs = {"Content-Type": ctype} if ctype else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def record(**over):
    rec = {"dataCode": "00-00-0000-023300-11", "dataValue": 123.45, "inputType": 4, "statType": 0,
           "statDate": "2021-10-08 00:15:00", "uploadDate": "2021-10-08 00:31:02", "scope": 1, "valid": True}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not DROP}


DROP = object()


@pytest.fixture
def clock():
    return FakeClock("2021-10-08 12:00:00")


@pytest.fixture
def platform(tmp_path, clock):
    with RefPlatform(db_path=str(tmp_path / "p.sqlite"), port=0, clock=clock, hang_s=10) as p:
        yield p
        assert p.stats()["internalErrors"] == 0


def register(p, enterprise=SAMPLE_ENTERPRISE, region=REGION, **kw):
    status, reply = call(p.url, "/api/register", {"region": region, "enterpriseCode": enterprise}, **kw)
    assert status == 200 and reply["responseCode"] == "0", reply
    return reply


def upload(p, device_id, records, enterprise=SAMPLE_ENTERPRISE, **kw):
    return call(p.url, "/api/data", {"deviceId": device_id, "enterpriseCode": enterprise, "data": records}, **kw)


# -- GB 32100-2015 check character -----------------------------------------------------------------
def test_sample_enterprise_code_check_character_is_valid():
    """Worked by hand: digits 9,1,3,3,0,0,0,0,5,7,3,9,7,3,0,5,3 times the weights sum to 977;
    977 mod 31 = 16; (31 - 16) mod 31 = 15 -> 'F'. The SPEC sample code is genuine."""
    assert credit_check_char(SAMPLE_ENTERPRISE[:17]) == "F"
    assert check_enterprise_code(SAMPLE_ENTERPRISE) is None


@pytest.mark.parametrize("code, fragment", [
    ("91330000573973053E", "expected 'F'"),
    ("91330000573973053", "18 characters"),
    ("91330000573973053FF", "18 characters"),
    ("9133000057397305IF", "not allowed"),  # I, O, S, V, Z are excluded from the charset
    ("91330000573973053f", "check character"),
])
def test_enterprise_code_rejected(code, fragment):
    assert fragment in check_enterprise_code(code)


def test_check_character_edges():
    assert credit_check_char("0" * 17) == "0"  # sum 0: (31 - 0) mod 31 = 0, not index 31
    assert credit_check_char("1" + "0" * 16) == "Y"  # sum 1 -> 30, the last charset entry
    assert credit_check_char("0" * 16 + "1") == "3"  # weight 28 -> 31 - 28


@given(st.text(alphabet=CREDIT_CHARSET, min_size=17, max_size=17), st.sampled_from(CREDIT_CHARSET))
def test_only_the_check_character_that_completes_the_sum_passes(first17, last):
    """Independent statement of GB 32100: the check value makes the weighted sum plus itself 0 mod 31."""
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    total = sum(CREDIT_CHARSET.index(c) * w for c, w in zip(first17, weights))
    completes = (total + CREDIT_CHARSET.index(last)) % 31 == 0
    assert (check_enterprise_code(first17 + last) is None) == completes


def test_other_enterprise_fixture_is_valid():
    assert check_enterprise_code(OTHER_ENTERPRISE) is None


# -- registration and version check ----------------------------------------------------------------
def test_register_reply_and_stable_device_id(platform):
    reply = register(platform)
    assert reply["responseMessage"] == "ok"
    assert len(reply["deviceId"]) == 32 and int(reply["deviceId"], 16) >= 0
    for key, path in (("loadDicVersionURL", "/api/dicVersion"), ("centerDataURL", "/api/data"),
                      ("centerInfoURL", "/api/centerInfo"), ("centerInfoDownloadURL", "/api/centerInfoDownload")):
        assert reply[key] == platform.url + path
    assert reply["uploadTime"] == "01:38:00"
    assert "secretKey" not in reply
    assert register(platform)["deviceId"] == reply["deviceId"]
    assert register(platform, region="370100")["deviceId"] != reply["deviceId"]
    assert register(platform, enterprise=OTHER_ENTERPRISE)["deviceId"] != reply["deviceId"]


def test_device_id_survives_restart(tmp_path, clock):
    db = str(tmp_path / "keep.sqlite")
    with RefPlatform(db_path=db, clock=clock) as p:
        first = register(p)["deviceId"]
        assert upload(p, first, [record()])[1]["responseCode"] == "0"
    with RefPlatform(db_path=db, clock=clock) as p:
        assert register(p)["deviceId"] == first
        assert [r["statDate"] for r in p.records()] == ["2021-10-08 00:15:00"]


@pytest.mark.parametrize("body, fragment", [
    ({"region": "44190", "enterpriseCode": SAMPLE_ENTERPRISE}, "region"),
    ({"region": 441900, "enterpriseCode": SAMPLE_ENTERPRISE}, "region"),
    ({"region": REGION, "enterpriseCode": "91330000573973053A"}, "check character"),
    ({"region": REGION}, "missing field(s) enterpriseCode"),
    ({"region": REGION, "enterpriseCode": SAMPLE_ENTERPRISE, "x": 1}, "unexpected field(s) x"),
])
def test_register_rejects_bad_fields(platform, body, fragment):
    status, reply = call(platform.url, "/api/register", body)
    assert status == 200 and reply["responseCode"] != "0"
    assert fragment in reply["responseMessage"]
    assert platform.devices() == []


def test_dic_version(platform):
    device = register(platform)["deviceId"]
    status, reply = call(platform.url, "/api/dicVersion", {"deviceId": device})
    assert (status, reply["responseCode"], reply["regVersion"], reply["dicVersion"]) == (200, "0", "1", "1")
    status, reply = call(platform.url, "/api/dicVersion", {"deviceId": "0" * 32})
    assert reply["responseCode"] != "0" and "unknown deviceId" in reply["responseMessage"]


# -- data upload -----------------------------------------------------------------------------------
def test_spec_sample_body(platform):
    """The verbatim sample is well formed; its deviceId was issued by someone else's platform, so it is
    refused as such, and accepted once it carries the deviceId this platform issued."""
    status, reply = call(platform.url, "/api/data", raw=SAMPLE_BODY.encode())
    assert status == 200 and reply["responseCode"] != "0"
    assert reply["responseMessage"] == DEVICE_MISMATCH

    body = json.loads(SAMPLE_BODY)
    body["deviceId"] = register(platform)["deviceId"]
    status, reply = call(platform.url, "/api/data", body)
    assert (status, reply) == (200, {"responseCode": "0", "responseMessage": "ok", "accepted": 1})
    [stored] = platform.records()
    assert stored["enterpriseCode"] == SAMPLE_ENTERPRISE
    assert {k: stored[k] for k in body["data"][0]} == body["data"][0]
    assert stored["receivedCount"] == 1 and stored["deviceId"] == body["deviceId"]


def test_repeats_are_idempotent(platform):
    device = register(platform)["deviceId"]
    batch = [record(), record(dataCode="00-00-0000-011500-11", dataValue=7)]
    assert upload(platform, device, batch)[1]["accepted"] == 2
    assert upload(platform, device, batch)[1]["accepted"] == 2
    batch[0]["dataValue"] = 99.5  # a resend carries the corrected value
    assert upload(platform, device, batch[:1])[1]["accepted"] == 1
    rows = {r["dataCode"]: r for r in platform.records()}
    assert len(rows) == 2 and len(platform.records()) == 2
    assert rows["00-00-0000-023300-11"]["receivedCount"] == 3
    assert rows["00-00-0000-023300-11"]["dataValue"] == 99.5
    assert rows["00-00-0000-011500-11"]["receivedCount"] == 2
    stats = platform.stats()
    assert (stats["keys"], stats["duplicates"], stats["batchesAccepted"]) == (2, 3, 3)


def test_same_code_different_stat_type_or_date_are_different_keys(platform):
    device = register(platform)["deviceId"]
    batch = [record(), record(statDate="2021-10-08 00:30:00"), record(statType=1, statDate="2021-10-08 00:00:00")]
    assert upload(platform, device, batch)[1]["accepted"] == 3
    assert platform.stats()["keys"] == 3


BAD_RECORDS = [
    *[pytest.param({name: DROP}, "missing field %s" % name, id="missing-" + name)
      for name in ("dataCode", "dataValue", "inputType", "statType", "statDate", "uploadDate", "scope", "valid")],
    pytest.param({"extra": 1}, "unexpected field extra", id="extra-field"),
    pytest.param({"dataCode": "00-00-0000-0233-11"}, "does not match", id="code-short"),
    pytest.param({"dataCode": "0000000002330011"}, "does not match", id="code-no-hyphens"),
    pytest.param({"dataCode": "00-00-0000-02330A-11"}, "does not match", id="code-letter"),
    pytest.param({"dataCode": "00-00-0000-023300-11\n"}, "does not match", id="code-newline"),
    pytest.param({"dataCode": 12}, "dataCode must be a string", id="code-number"),
    pytest.param({"dataCode": "01-00-0000-023300-11", "scope": 1}, "scope 1 (whole plant) requires process 00",
                 id="scope1-process"),
    pytest.param({"dataCode": "00-01-0000-023300-11", "scope": 1}, "scope 1 requires process unit 00",
                 id="scope1-unit"),
    pytest.param({"dataCode": "00-00-0001-023300-11", "scope": 1}, "scope 1 requires equipment 0000",
                 id="scope1-equipment"),
    pytest.param({"dataCode": "01-02-0000-023300-11", "scope": 2}, "scope 2 requires process unit 00",
                 id="scope2-unit"),
    pytest.param({"dataCode": "01-00-0100-023300-11", "scope": 2}, "scope 2 requires equipment 0000",
                 id="scope2-equipment"),
    pytest.param({"dataCode": "01-02-0100-023300-11", "scope": 3}, "scope 3 requires equipment 0000",
                 id="scope3-equipment"),
    pytest.param({"scope": 0}, "scope must be an integer 1..4", id="scope-0"),
    pytest.param({"scope": 5}, "scope must be an integer 1..4", id="scope-5"),
    pytest.param({"scope": "1"}, "scope must be an integer 1..4", id="scope-string"),
    pytest.param({"dataValue": "123.45"}, "dataValue must be a finite number", id="value-string"),
    pytest.param({"dataValue": None}, "dataValue must be a finite number", id="value-null"),
    pytest.param({"dataValue": True}, "dataValue must be a finite number", id="value-bool"),
    pytest.param({"inputType": 0}, "inputType must be an integer 1..5", id="input-0"),
    pytest.param({"inputType": 6}, "inputType must be an integer 1..5", id="input-6"),
    pytest.param({"inputType": 4.0}, "inputType must be an integer 1..5", id="input-float"),
    pytest.param({"inputType": "4"}, "inputType must be an integer 1..5", id="input-string"),
    pytest.param({"inputType": True}, "inputType must be an integer 1..5", id="input-bool"),
    pytest.param({"statType": 4}, "statType must be an integer 0..3", id="stattype-4"),
    pytest.param({"statType": -1}, "statType must be an integer 0..3", id="stattype-negative"),
    pytest.param({"statType": "0"}, "statType must be an integer 0..3", id="stattype-string"),
    pytest.param({"statDate": "2021-10-08T00:15:00"}, "yyyy-MM-dd HH:mm:ss", id="statdate-iso-t"),
    pytest.param({"statDate": "2021-10-8 00:15:00"}, "yyyy-MM-dd HH:mm:ss", id="statdate-short"),
    pytest.param({"statDate": "2021-02-30 00:15:00"}, "statDate", id="statdate-no-such-day"),
    pytest.param({"statDate": "2021-10-08 24:00:00"}, "statDate", id="statdate-hour-24"),
    pytest.param({"statDate": 1633623300}, "yyyy-MM-dd HH:mm:ss", id="statdate-epoch"),
    pytest.param({"statDate": "2021-10-08 00:07:00"}, "not the start of a 900 s real-time period",
                 id="realtime-misaligned"),
    pytest.param({"statDate": "2021-10-08 00:15:30"}, "not the start of a 900 s real-time period",
                 id="realtime-seconds"),
    pytest.param({"statType": 1, "statDate": "2021-10-08 00:15:00"}, "day value must be 00:00:00",
                 id="day-not-midnight"),
    pytest.param({"statType": 2, "statDate": "2021-10-08 00:00:00"}, "month value must be the 1st",
                 id="month-not-first"),
    pytest.param({"statType": 3, "statDate": "2021-10-01 00:00:00"}, "year value must be 1 January",
                 id="year-not-jan-1"),
    pytest.param({"uploadDate": "2021/10/08 00:31:02"}, "yyyy-MM-dd HH:mm:ss", id="uploaddate-format"),
    pytest.param({"uploadDate": "2021-10-08 00:14:59"}, "uploadDate 2021-10-08 00:14:59 is before statDate",
                 id="upload-before-stat"),
    pytest.param({"statDate": "2021-10-08 12:15:00", "uploadDate": "2021-10-08 12:15:00"}, "in the future",
                 id="statdate-future"),
    pytest.param({"uploadDate": "2021-10-08 12:06:00"}, "uploadDate 2021-10-08 12:06:00 is in the future",
                 id="uploaddate-future"),
    pytest.param({"valid": "true"}, "valid must be JSON true or false", id="valid-string"),
    pytest.param({"valid": 1}, "valid must be JSON true or false", id="valid-number"),
    pytest.param({"valid": "0"}, "valid must be JSON true or false", id="valid-shandong-style"),
]


@pytest.mark.parametrize("change, fragment", BAD_RECORDS)
def test_each_rule_rejects_a_bad_field(platform, change, fragment):
    device = register(platform)["deviceId"]
    good = record(dataCode="00-00-0000-011500-11")
    status, reply = upload(platform, device, [good, record(**change)])
    assert status == 200 and reply["responseCode"] == "1"
    [err] = reply["errors"]
    assert err["index"] == 1
    assert fragment in err["reason"], err["reason"]
    expected_code = change.get("dataCode", "00-00-0000-023300-11")
    assert err["dataCode"] == (expected_code if isinstance(expected_code, str) else None)
    assert platform.records() == []  # atomic: the good record is not stored either


@pytest.mark.parametrize("change", [
    pytest.param({}, id="baseline"),
    pytest.param({"dataValue": 0}, id="value-int-zero"),
    pytest.param({"dataValue": -12.5}, id="value-negative"),
    pytest.param({"valid": False}, id="valid-false"),
    pytest.param({"inputType": 5}, id="manual-entry"),
    pytest.param({"statType": 1, "statDate": "2021-10-07 00:00:00"}, id="day"),
    pytest.param({"statType": 2, "statDate": "2021-10-01 00:00:00"}, id="month"),
    pytest.param({"statType": 3, "statDate": "2021-01-01 00:00:00"}, id="year"),
    pytest.param({"dataCode": "01-00-0000-023300-11", "scope": 2}, id="scope2-process"),
    pytest.param({"dataCode": "01-02-0000-023300-11", "scope": 3}, id="scope3-unit"),
    pytest.param({"dataCode": "01-02-0103-023300-11", "scope": 4}, id="scope4-equipment"),
    pytest.param({"statDate": "2021-10-08 12:00:00", "uploadDate": "2021-10-08 12:04:59"}, id="within-tolerance"),
])
def test_good_records_are_accepted(platform, change):
    device = register(platform)["deviceId"]
    status, reply = upload(platform, device, [record(**change)])
    assert (status, reply["responseCode"], reply.get("accepted")) == (200, "0", 1), reply
    assert len(platform.records()) == 1


def test_future_tolerance_follows_server_clock(platform, clock):
    device = register(platform)["deviceId"]
    rec = record(statDate="2021-10-08 12:15:00", uploadDate="2021-10-08 12:15:00")
    assert upload(platform, device, [rec])[1]["responseCode"] == "1"
    clock.t += 11 * 60  # server now 12:11, the record is 4 minutes ahead
    assert upload(platform, device, [rec])[1]["responseCode"] == "0"


def test_several_bad_records_are_all_named_and_the_rest_goes_through_on_resend(platform):
    device = register(platform)["deviceId"]
    batch = [record(statDate="2021-10-08 00:%02d:00" % m) for m in (0, 15, 30, 45)]
    batch[1]["inputType"] = 9
    batch[3]["dataValue"] = "NaN"
    status, reply = upload(platform, device, batch)
    assert reply["responseCode"] == "1"
    assert [e["index"] for e in reply["errors"]] == [1, 3]
    assert "2 of 4" in reply["responseMessage"]
    assert platform.records() == []
    rest = [r for i, r in enumerate(batch) if i not in (1, 3)]
    assert upload(platform, device, rest)[1] == {"responseCode": "0", "responseMessage": "ok", "accepted": 2}
    assert [r["statDate"][-8:] for r in platform.records()] == ["00:00:00", "00:30:00"]


def test_number_too_large_for_a_double_is_not_finite(platform):
    device = register(platform)["deviceId"]
    body = json.dumps({"deviceId": device, "enterpriseCode": SAMPLE_ENTERPRISE, "data": [record(dataValue=1.5)]})
    status, reply = call(platform.url, "/api/data", raw=body.replace("1.5", "1e999").encode())
    assert reply["responseCode"] == "1" and "dataValue must be a finite number" in reply["errors"][0]["reason"]


def test_record_that_is_not_an_object(platform):
    device = register(platform)["deviceId"]
    reply = upload(platform, device, [record(), [1, 2]])[1]
    assert reply["errors"] == [{"index": 1, "dataCode": None, "reason": "record must be a JSON object"}]


@pytest.mark.parametrize("encoding, value, stored", [
    ("shandong", "0", True), ("shandong", "1", False), ("yunnan", "1", True), ("yunnan", "0", False),
])
def test_provincial_valid_encodings(tmp_path, clock, encoding, value, stored):
    with RefPlatform(db_path=str(tmp_path / "v.sqlite"), valid_encoding=encoding, clock=clock) as p:
        device = register(p)["deviceId"]
        assert upload(p, device, [record(valid=value)])[1]["responseCode"] == "0"
        assert p.records()[0]["valid"] is stored
        reply = upload(p, device, [record(valid=True)])[1]
        assert reply["responseCode"] == "1" and "valid must be the string" in reply["errors"][0]["reason"]


def test_real_time_period_is_configurable(tmp_path, clock):
    with RefPlatform(db_path=str(tmp_path / "h.sqlite"), period_s=1800, clock=clock) as p:
        device = register(p)["deviceId"]
        reply = upload(p, device, [record(statDate="2021-10-08 00:15:00")])[1]
        assert "not the start of a 1800 s real-time period" in reply["errors"][0]["reason"]
        assert upload(p, device, [record(statDate="2021-10-08 00:30:00")])[1]["responseCode"] == "0"


def test_bad_period_option():
    with pytest.raises(ValueError):
        RefPlatform(period_s=700)


# -- identity and envelope -------------------------------------------------------------------------
def test_device_id_must_match_enterprise(platform):
    mine = register(platform)["deviceId"]
    theirs = register(platform, enterprise=OTHER_ENTERPRISE)["deviceId"]
    for device, enterprise in ((theirs, SAMPLE_ENTERPRISE), (mine, OTHER_ENTERPRISE), ("a" * 32, SAMPLE_ENTERPRISE)):
        status, reply = upload(platform, device, [record()], enterprise=enterprise)
        assert status == 200 and reply["responseCode"] != "0"
        assert reply["responseMessage"] == DEVICE_MISMATCH
    assert platform.records() == []


@pytest.mark.parametrize("body, fragment", [
    ({"enterpriseCode": SAMPLE_ENTERPRISE, "data": [record()]}, "missing field(s) deviceId"),
    ({"deviceId": "DEVICE", "enterpriseCode": SAMPLE_ENTERPRISE}, "missing field(s) data"),
    ({"deviceId": "DEVICE", "enterpriseCode": SAMPLE_ENTERPRISE, "data": [record()], "sign": "x"},
     "unexpected field(s) sign"),
    ({"deviceId": "DEVICE", "enterpriseCode": SAMPLE_ENTERPRISE, "data": []}, "non-empty array"),
    ({"deviceId": "DEVICE", "enterpriseCode": SAMPLE_ENTERPRISE, "data": record()}, "non-empty array"),
    ({"deviceId": "DEVICE", "enterpriseCode": "91330000573973053G", "data": [record()]}, "check character"),
    ({"deviceId": "0EF6", "enterpriseCode": SAMPLE_ENTERPRISE, "data": [record()]}, "32 lower-case hex"),
])
def test_envelope_rules(platform, body, fragment):
    device = register(platform)["deviceId"]
    if body.get("deviceId") == "DEVICE":
        body["deviceId"] = device
    status, reply = call(platform.url, "/api/data", body)
    assert status == 200 and reply["responseCode"] == "2"
    assert fragment in reply["responseMessage"]
    assert platform.records() == []


def test_max_batch(clock):
    with RefPlatform(db_path=":memory:", max_batch=2, clock=clock) as p:
        device = register(p)["deviceId"]
        batch = [record(statDate="2021-10-08 00:%02d:00" % m) for m in (0, 15, 30)]
        assert "exceeds the limit of 2" in upload(p, device, batch)[1]["responseMessage"]
        assert upload(p, device, batch[:2])[1]["accepted"] == 2


# -- HTTP level ------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, ctype, status, fragment", [
    (b'{"region": "441900", ', JSON_CT, 400, "malformed JSON"),
    (b'{"region": NaN}', JSON_CT, 400, "NaN is not JSON"),
    (b'{"region": "1", "region": "2"}', JSON_CT, 400, "duplicate key"),
    (b'["region"]', JSON_CT, 400, "JSON object"),
    (b'\xff\xfe{}', JSON_CT, 400, "UTF-8"),
    (b'{"region": "441900"}', "text/plain", 400, "Content-Type must be application/json"),
    (b'{"region": "441900"}', None, 400, "Content-Type must be application/json"),
    (b'{"region": "441900"}', "application/json; charset=GBK", 400, "charset must be UTF-8"),
])
def test_unreadable_requests_are_400_with_json(platform, raw, ctype, status, fragment):
    got_status, reply = call(platform.url, "/api/register", raw=raw, ctype=ctype)
    assert got_status == status
    assert fragment in reply["responseMessage"]


def test_plain_application_json_is_fine(platform):
    register(platform, ctype="application/json")


def test_unknown_path_and_method(platform):
    assert call(platform.url, "/api/nothing", {})[0] == 404
    assert call(platform.url, "/api/register", method="GET", ctype=None)[0] == 405
    assert call(platform.url, "/api/token", {})[0] == 404  # only in the token variant


def test_keep_alive_connection_serves_several_requests(platform):
    conn = http.client.HTTPConnection("127.0.0.1", platform.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("POST", "/api/register", body=json.dumps({"region": REGION, "enterpriseCode": SAMPLE_ENTERPRISE}),
                         headers={"Content-Type": JSON_CT})
            resp = conn.getresponse()
            assert json.loads(resp.read())["responseCode"] == "0"
    finally:
        conn.close()


# -- admin endpoints (their own port and token: tests/host/sim/test_refplatform_bounds.py) ----------
@pytest.fixture
def admin(tmp_path, clock):
    with RefPlatform(db_path=str(tmp_path / "a.sqlite"), port=0, clock=clock, hang_s=10, admin_port=0) as p:
        yield p
        assert p.stats()["internalErrors"] == 0


def admin_call(p, path, body=None, method="POST", **kw):
    return call(p.admin_url, path, body, method=method, headers={"Authorization": "Bearer " + p.admin_token},
                **kw)


def test_admin_records_stats_and_fault(admin):
    platform = admin
    device = register(platform)["deviceId"]
    upload(platform, device, [record()])
    status, rows = admin_call(platform, "/admin/records", method="GET", ctype=None)
    assert status == 200 and rows == platform.records() and len(rows) == 1
    assert admin_call(platform, "/admin/records?dataCode=00-00-0000-011500-11", method="GET", ctype=None)[1] == []
    status, stats = admin_call(platform, "/admin/stats", method="GET", ctype=None)
    assert stats["keys"] == 1 and stats["devices"] == 1 and stats["fault"] == {"mode": "ok"}

    status, reply = admin_call(platform, "/admin/fault", {"mode": "slow", "delay_s": 0.01})
    assert status == 200 and reply["fault"] == {"mode": "slow", "delay_s": 0.01}
    assert platform.fault == {"mode": "slow", "delay_s": 0.01}
    for bad in ({"mode": "explode"}, {"mode": "hang", "delay_s": 1}, {"mode": "reject_code"}, {}):
        assert admin_call(platform, "/admin/fault", bad)[0] == 400
    assert admin_call(platform, "/admin/clear", {})[0] == 200
    assert platform.records() == [] and len(platform.devices()) == 1


# -- fault switches --------------------------------------------------------------------------------
def test_fault_http500(platform):
    device = register(platform)["deviceId"]
    platform.set_fault("http500")
    status, _ = upload(platform, device, [record()])
    assert status == 500 and platform.records() == []
    platform.set_fault("http500", store_first=True)  # platform stored it, then failed to say so
    assert upload(platform, device, [record()])[0] == 500
    platform.set_fault("ok")
    assert upload(platform, device, [record()])[1]["responseCode"] == "0"
    [row] = platform.records()
    assert row["receivedCount"] == 2


def test_fault_reset(platform):
    device = register(platform)["deviceId"]
    platform.set_fault("reset")
    with pytest.raises(ConnectionError):
        upload(platform, device, [record()])
    assert platform.records() == []
    platform.set_fault("reset", store_first=True)
    with pytest.raises(ConnectionError):
        upload(platform, device, [record()])
    assert len(platform.records()) == 1
    platform.set_fault("ok")
    assert upload(platform, device, [record()])[1]["accepted"] == 1
    assert platform.stats()["keys"] == 1 and platform.records()[0]["receivedCount"] == 2


def test_fault_down_refuses_api_but_not_admin(admin):
    platform = admin
    device = register(platform)["deviceId"]
    admin_call(platform, "/admin/fault", {"mode": "down"})
    with pytest.raises(ConnectionError):
        register(platform)
    with pytest.raises(ConnectionError):
        upload(platform, device, [record()])
    assert admin_call(platform, "/admin/stats", method="GET", ctype=None)[1]["faultHits"]["down"] == 2
    admin_call(platform, "/admin/fault", {"mode": "ok"})
    assert upload(platform, device, [record()])[1]["accepted"] == 1


def test_fault_hang_times_the_client_out(platform):
    device = register(platform)["deviceId"]
    platform.set_fault("hang")
    with pytest.raises(TimeoutError):
        upload(platform, device, [record()], timeout=0.5)
    platform.set_fault("ok")
    assert upload(platform, device, [record(statDate="2021-10-08 00:30:00")])[1]["accepted"] == 1


def _in_thread(fn):
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _wait_for_hit(platform, mode, n=1):
    event = threading.Event()
    for _ in range(200):
        if platform.stats()["faultHits"].get(mode, 0) >= n:
            return
        event.wait(0.05)
    raise AssertionError("fault %s never hit" % mode)


def test_fault_hang_released_by_switch_answers_under_new_mode(platform):
    device = register(platform)["deviceId"]
    platform.set_fault("hang")
    t, box = _in_thread(lambda: upload(platform, device, [record()], timeout=10))
    _wait_for_hit(platform, "hang")
    assert platform.records() == []  # held before processing
    platform.set_fault("ok")
    t.join(10)
    assert box["result"][1]["accepted"] == 1


def test_fault_hang_gives_up_after_max_s(platform):
    device = register(platform)["deviceId"]
    platform.set_fault("hang", max_s=0.2)
    with pytest.raises(ConnectionError):
        upload(platform, device, [record()], timeout=10)
    assert platform.records() == []


def test_fault_slow(platform):
    device = register(platform)["deviceId"]
    platform.set_fault("slow", delay_s=2.0)
    with pytest.raises(TimeoutError):
        upload(platform, device, [record()], timeout=0.3)
    assert upload(platform, device, [record()], timeout=10)[1]["accepted"] == 1


def test_fault_reject_code(platform):
    device = register(platform)["deviceId"]
    platform.set_fault("reject_code", data_code="00-00-0000-011500-11")
    batch = [record(), record(dataCode="00-00-0000-011500-11")]
    reply = upload(platform, device, batch)[1]
    assert reply["responseCode"] == "1"
    assert [(e["index"], e["dataCode"]) for e in reply["errors"]] == [(1, "00-00-0000-011500-11")]
    assert "rejected by the platform" in reply["errors"][0]["reason"]
    assert upload(platform, device, batch[:1])[1]["accepted"] == 1


def test_close_releases_a_hung_request(clock):
    p = RefPlatform(db_path=":memory:", clock=clock).start()
    device = register(p)["deviceId"]
    p.set_fault("hang")
    t, box = _in_thread(lambda: upload(p, device, [record()], timeout=20))
    _wait_for_hit(p, "hang")
    p.close()
    t.join(20)
    assert not t.is_alive()
    assert isinstance(box.get("error"), ConnectionError)
    with pytest.raises(ConnectionError):
        socket.create_connection(("127.0.0.1", p.port), timeout=2).close()


def test_set_fault_validation(platform):
    for mode, params in (("nope", {}), ("slow", {"delay_s": -1}), ("hang", {"max_s": 0}),
                         ("http500", {"store_first": "yes"}), ("reject_code", {"data_code": []}),
                         ("ok", {"delay_s": 1})):
        with pytest.raises(ValueError):
            platform.set_fault(mode, **params)
    assert platform.fault == {"mode": "ok"}


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_prints_listening_and_accepted_batches(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "host"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nengjian_host.sim.refplatform", "--port", "0", "--db", str(tmp_path / "run" / "p.sqlite"),
         "--period", "900"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:"), first + proc.stderr.read()
        url = first.split()[-1]
        status, reply = call(url, "/api/register", {"region": REGION, "enterpriseCode": SAMPLE_ENTERPRISE})
        assert proc.stdout.readline().startswith("platform: registered %s" % SAMPLE_ENTERPRISE)
        now = datetime.now(CST).replace(tzinfo=None)
        slot = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0) - timedelta(minutes=15)
        rec = record(statDate=slot.strftime("%Y-%m-%d %H:%M:%S"), uploadDate=now.strftime("%Y-%m-%d %H:%M:%S"),
                     dataValue=1.25)
        body = {"deviceId": reply["deviceId"], "enterpriseCode": SAMPLE_ENTERPRISE, "data": [rec]}
        assert call(url, "/api/data", body)[1]["accepted"] == 1
        line = proc.stdout.readline().strip()
        assert line == "platform: accepted 1 record(s) from %s: 00-00-0000-023300-11 %s = 1.25" % (
            SAMPLE_ENTERPRISE, rec["statDate"])
        assert (tmp_path / "run" / "p.sqlite").exists()
        proc.terminate()
        assert proc.wait(10) == 0
        assert proc.stdout.read().strip() == "platform: stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# -- security variants -----------------------------------------------------------------------------
def _gmssl_ecb_hex(key_hex, text):
    """Test vector source per SPEC 3.2: gmssl's own ECB with PKCS#7."""
    c = CryptSM4()
    c.set_key(bytes.fromhex(key_hex), SM4_ENCRYPT)
    return c.crypt_ecb(text.encode("utf-8")).hex()


def _encrypted(rec, key_hex, valid_text):
    texts = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in rec.items()}
    texts["valid"] = valid_text
    return {k: _gmssl_ecb_hex(key_hex, t) for k, t in texts.items()}


def test_sm4_ecb_helper_matches_gmssl():
    key = "0123456789abcdeffedcba9876543210"
    for text in ("", "4", "123.45", "2021-10-08 00:15:00", "exactly16bytes!!"):
        assert sm4_ecb_encrypt_hex(key, text) == _gmssl_ecb_hex(key, text)


def test_sm4_ecb_variant(clock):
    with RefPlatform(db_path=":memory:", variant="sm4-ecb", valid_encoding="shandong", clock=clock) as p:
        reply = register(p)
        key = reply["secretKey"]
        assert len(key) == 32 and key == key.lower() and int(key, 16) >= 0
        device = reply["deviceId"]
        body = {"deviceId": device, "enterpriseCode": SAMPLE_ENTERPRISE,
                "data": [_encrypted(record(valid=DROP), key, "0")]}
        assert call(p.url, "/api/data", body)[1] == {"responseCode": "0", "responseMessage": "ok", "accepted": 1}
        [row] = p.records()
        assert (row["dataValue"], row["inputType"], row["statDate"], row["valid"]) == (
            123.45, 4, "2021-10-08 00:15:00", True)

        # a decrypted value that breaks a rule is a record error like any other
        body["data"] = [_encrypted(record(inputType=9, valid=DROP), key, "0")]
        reply = call(p.url, "/api/data", body)[1]
        assert reply["responseCode"] == "1" and "inputType" in reply["errors"][0]["reason"]

        # wrong key / upper-case hex / plain values: decryption failure for the whole batch
        other = "00112233445566778899aabbccddeeff"
        for data in ([_encrypted(record(valid=DROP), other, "0")],
                     [{k: v.upper() for k, v in _encrypted(record(valid=DROP), key, "0").items()}],
                     [record(valid="0")]):
            body["data"] = data
            reply = call(p.url, "/api/data", body)[1]
            assert reply["responseCode"] == "3" and reply["responseMessage"].startswith("decryption failed")
            assert "errors" not in reply
        assert len(p.records()) == 1


def _gmssl_yunnan_password(secret_key, enterprise, pin):
    block = ("%02d%s" % (len(pin), pin)).ljust(16, "F").encode()
    c = CryptSM4()
    c.set_key(secret_key[:16].encode(), SM4_ENCRYPT)
    # gmssl always pads CBC; the first cipher block is the unpadded CBC of our single block
    return c.crypt_cbc(enterprise[:16].encode(), block)[:16].hex()


def test_yunnan_password_helper_matches_gmssl():
    assert yunnan_password("a1b2c3d4e5f60718293a4b5c6d7e8f90", SAMPLE_ENTERPRISE, "123456") == \
        _gmssl_yunnan_password("a1b2c3d4e5f60718293a4b5c6d7e8f90", SAMPLE_ENTERPRISE, "123456")


def test_sm4_cbc_token_variant(clock):
    with RefPlatform(db_path=":memory:", variant="sm4-cbc-token", valid_encoding="yunnan", pin="8642",
                     token_ttl_s=600, clock=clock) as p:
        reply = register(p)
        device, key = reply["deviceId"], reply["secretKey"]
        assert reply["tokenURL"] == p.url + "/api/token"
        body = {"deviceId": device, "enterpriseCode": SAMPLE_ENTERPRISE, "data": [record(valid="1")]}

        status, reply = call(p.url, "/api/data", body)
        assert status == 401 and "missing" in reply["responseMessage"]

        wrong = {"deviceId": device, "enterpriseCode": SAMPLE_ENTERPRISE,
                 "password": _gmssl_yunnan_password(key, SAMPLE_ENTERPRISE, "0000")}
        assert call(p.url, "/api/token", wrong)[1]["responseMessage"] == "wrong password"
        garbage = dict(wrong, password="00" * 16)
        assert call(p.url, "/api/token", garbage)[1]["responseCode"] == "3"

        good = dict(wrong, password=_gmssl_yunnan_password(key, SAMPLE_ENTERPRISE, "8642"))
        status, reply = call(p.url, "/api/token", good)
        assert status == 200 and reply["responseCode"] == "0" and reply["expiresIn"] == 600
        auth = {"Authorization": "Bearer " + reply["token"]}

        assert call(p.url, "/api/data", body, headers=auth)[1]["accepted"] == 1
        assert call(p.url, "/api/dicVersion", {"deviceId": device}, headers=auth)[1]["responseCode"] == "0"
        assert call(p.url, "/api/data", body, headers={"Authorization": "Bearer nope"})[0] == 401

        clock.t += 600
        status, reply = call(p.url, "/api/data", body, headers=auth)
        assert (status, reply["responseMessage"]) == (401, "token expired")
        fresh = {"Authorization": "Bearer " + call(p.url, "/api/token", good)[1]["token"]}
        assert call(p.url, "/api/data", body, headers=fresh)[1]["accepted"] == 1
        assert p.records()[0]["receivedCount"] == 2


# -- TLS -------------------------------------------------------------------------------------------
def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-subj", "/CN=test-ca", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "srv.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subj, ext in (("srv", "/CN=127.0.0.1", ["-extfile", "srv.ext"]), ("cli", "/CN=" + SAMPLE_ENTERPRISE, [])):
        _openssl("req", *ec, "-subj", subj, "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", name + ".pem", *ext, cwd=d)
    return d


def test_https(pki, clock):
    with RefPlatform(certfile=str(pki / "srv.pem"), keyfile=str(pki / "srv.key"), clock=clock) as p:
        assert p.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        reply = register(p, context=ctx)
        assert reply["centerDataURL"] == p.url + "/api/data"
        assert upload(p, reply["deviceId"], [record()], context=ctx)[1]["accepted"] == 1
        with pytest.raises(ssl.SSLError):
            register(p, context=ssl.create_default_context())  # untrusted server certificate


def test_mutual_tls(pki, clock):
    with RefPlatform(variant="mtls", certfile=str(pki / "srv.pem"), keyfile=str(pki / "srv.key"),
                     client_ca=str(pki / "ca.pem"), clock=clock) as p:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            register(p, context=ctx)  # no client certificate
        ctx.load_cert_chain(str(pki / "cli.pem"), str(pki / "cli.key"))
        assert register(p, context=ctx)["responseCode"] == "0"
        assert p.stats()["tlsFailures"] >= 1


def test_variant_options_are_checked():
    with pytest.raises(ValueError):
        RefPlatform(variant="mtls")
    with pytest.raises(ValueError):
        RefPlatform(variant="sm2")
    with pytest.raises(ValueError):
        RefPlatform(valid_encoding="bool")


def test_fault_redirect_points_the_register_answer_elsewhere(platform):
    platform.set_fault("redirect", url="https://evil.example:8443/", fields=["centerDataURL", "tokenURL"])
    reply = register(platform)
    assert reply["centerDataURL"] == "https://evil.example:8443/api/data"
    assert reply["tokenURL"] == "https://evil.example:8443/api/tokenURL"  # added where the answer had none
    assert reply["loadDicVersionURL"] == platform.url + "/api/dicVersion"
    assert platform.stats()["faultHits"]["redirect"] == 1
    for bad in ({}, {"url": ""}, {"url": "https://x", "fields": ["deviceId"]}):
        with pytest.raises(ValueError):
            platform.set_fault("redirect", **bad)


def test_the_info_channel_takes_a_heartbeat_and_refuses_a_body_that_is_not_a_notice(platform):
    dev = register(platform)["deviceId"]
    beat = {"deviceId": dev, "enterpriseCode": SAMPLE_ENTERPRISE, "infoType": "heartbeat",
            "infoTime": "2026-12-02 00:15:00", "info": {"uptime_s": 60, "complete.city": 100.0}}
    status, reply = call(platform.url, "/api/centerInfo", beat)
    assert status == 200 and reply["responseCode"] == "0", reply
    for broken in ({"infoType": "status"}, {"infoTime": "2026-12-02"}, {"info": "uptime_s=60"}):
        status, reply = call(platform.url, "/api/centerInfo", dict(beat, **broken))
        assert reply["responseCode"] != "0", broken
    kept = platform.center_infos()
    assert len(kept) == 1 and kept[0]["infoType"] == "heartbeat" and kept[0]["info"]["complete.city"] == 100.0
