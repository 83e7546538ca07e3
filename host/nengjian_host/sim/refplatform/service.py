"""The platform's session logic, independent of HTTP: register, version check, token, data upload.

Owns the request/response JSON of each API endpoint and the batch policy: a data batch is stored only
when every record is valid (see the package docstring). Each handler takes the parsed JSON body and
returns (http_status, response_dict).
"""

import json
import threading
import time

from . import validate as v
from .variants import SECRET_KEY_VARIANTS, DecryptError, TokenBook, decrypt_record, yunnan_pin_from_password

# responseCode values for failures; success is the configured success_code ("0" by default).
CODE_BAD_RECORDS = "1"
CODE_BAD_REQUEST = "2"
CODE_DECRYPT = "3"

DEVICE_MISMATCH = "deviceId does not match enterpriseCode"

API_PATHS = {
    "/api/register": "register",
    "/api/dicVersion": "dicVersion",
    "/api/data": "data",
    "/api/centerInfo": "centerInfo",
    "/api/centerInfoDownload": "centerInfoDownload",
    "/api/token": "token",
}
_NEEDS_TOKEN = ("dicVersion", "data", "centerInfo", "centerInfoDownload")


class Service:
    def __init__(self, store, variant="plain", period_s=900, valid_encoding="json", upload_time="01:38:00",
                 success_code="0", reg_version="1", dic_version="1", pin="123456", token_ttl_s=3600,
                 future_tolerance_s=300, max_batch=None, clock=None, log=None, coefficients=None):
        self.store = store
        self.variant = variant
        self.period_s = period_s
        self.valid_encoding = valid_encoding
        self.upload_time = upload_time
        self.success_code = success_code
        self.versions = {"regVersion": reg_version, "dicVersion": dic_version}
        self.pin = pin
        self.tokens = TokenBook(token_ttl_s)
        self.future_tolerance_s = future_tolerance_s
        self.max_batch = max_batch
        self.coefficients = dict(coefficients or {})
        self.clock = clock or time.time
        self._log = log or (lambda line: None)
        self._lock = threading.Lock()
        self._counters = {"batchesAccepted": 0, "batchesRejected": 0, "recordsAccepted": 0,
                          "recordsRejected": 0, "internalErrors": 0, "requests": {}}

    # -- plumbing ---------------------------------------------------------------------------------
    def now_cst(self):
        return v.cst_now(self.clock())

    def now_text(self):
        return v.format_wire_time(self.now_cst())

    def _ok(self, **fields):
        return 200, dict({"responseCode": self.success_code, "responseMessage": "ok"}, **fields)

    @staticmethod
    def _fail(code, message, **fields):
        return 200, dict({"responseCode": code, "responseMessage": message}, **fields)

    def _count(self, key, n=1):
        with self._lock:
            self._counters[key] += n

    def count_internal_error(self):
        self._count("internalErrors")

    def counters(self):
        with self._lock:
            return json.loads(json.dumps(self._counters))

    def handle(self, path, body, base_url, bearer=None, reject_codes=()):
        """Dispatch one parsed API request. `bearer` is the Authorization token (or None)."""
        name = API_PATHS.get(path)
        if name is None or (name == "token" and self.variant != "sm4-cbc-token"):
            return 404, {"responseCode": "404", "responseMessage": "no such endpoint %s" % path}
        with self._lock:
            requests = self._counters["requests"]
            requests[name] = requests.get(name, 0) + 1
        token_device = None
        if self.variant == "sm4-cbc-token" and name in _NEEDS_TOKEN:
            try:
                if not bearer:
                    raise ValueError("missing Authorization: Bearer token")
                token_device = self.tokens.check(bearer, self.clock())
            except ValueError as exc:
                return 401, {"responseCode": "401", "responseMessage": str(exc)}
            if isinstance(body, dict) and body.get("deviceId") != token_device:
                return 401, {"responseCode": "401", "responseMessage": "token does not belong to deviceId"}
        if name == "register":
            return self.register(body, base_url)
        if name == "dicVersion":
            return self.dic_version(body)
        if name == "data":
            return self.data(body, reject_codes)
        if name == "token":
            return self.token(body)
        if name == "centerInfo":
            return self.center_info(body)
        return self.center_info_download(body)

    def _exact_keys(self, body, keys):
        """None if `body` is an object with exactly `keys`, else a failure response."""
        if not isinstance(body, dict):
            return self._fail(CODE_BAD_REQUEST, "request body must be a JSON object")
        missing = [k for k in keys if k not in body]
        extra = sorted(set(body) - set(keys))
        if missing or extra:
            parts = []
            if missing:
                parts.append("missing field(s) " + ", ".join(missing))
            if extra:
                parts.append("unexpected field(s) " + ", ".join(extra))
            return self._fail(CODE_BAD_REQUEST, "; ".join(parts))
        return None

    def _known_device(self, body):
        """(device, None) for a well-formed known deviceId, else (None, failure response)."""
        problem = v.check_device_id(body["deviceId"])
        if problem:
            return None, self._fail(CODE_BAD_REQUEST, problem)
        device = self.store.device(body["deviceId"])
        if device is None:
            return None, self._fail(CODE_BAD_REQUEST, "unknown deviceId (register first)")
        return device, None

    def _device_request(self, body, keys):
        """(device, None) for an object with exactly `keys` naming a known deviceId, else (None, failure
        response)."""
        bad = self._exact_keys(body, keys)
        if bad:
            return None, bad
        return self._known_device(body)

    # -- endpoints --------------------------------------------------------------------------------
    def register(self, body, base_url):
        bad = self._exact_keys(body, ("region", "enterpriseCode"))
        if bad:
            return bad
        problem = v.check_region(body["region"]) or v.check_enterprise_code(body["enterpriseCode"])
        if problem:
            return self._fail(CODE_BAD_REQUEST, problem)
        device_id, secret_key, new = self.store.register(body["enterpriseCode"], body["region"],
                                                         self.now_text())
        if new:
            self._log("platform: registered %s region %s as device %s" % (
                body["enterpriseCode"], body["region"], device_id))
        reply = {
            "deviceId": device_id,
            "loadDicVersionURL": base_url + "/api/dicVersion",
            "centerDataURL": base_url + "/api/data",
            "centerInfoURL": base_url + "/api/centerInfo",
            "centerInfoDownloadURL": base_url + "/api/centerInfoDownload",
            "uploadTime": self.upload_time,
        }
        if self.variant in SECRET_KEY_VARIANTS:
            reply["secretKey"] = secret_key
        if self.variant == "sm4-cbc-token":
            reply["tokenURL"] = base_url + "/api/token"
        return self._ok(**reply)

    def dic_version(self, body):
        _, bad = self._device_request(body, ("deviceId",))
        if bad:
            return bad
        return self._ok(**self.versions)

    def token(self, body):
        device, bad = self._device_request(body, ("deviceId", "enterpriseCode", "password"))
        if bad:
            return bad
        if device["enterpriseCode"] != body["enterpriseCode"]:
            return self._fail(CODE_BAD_REQUEST, DEVICE_MISMATCH)
        try:
            pin = yunnan_pin_from_password(device["secretKey"], device["enterpriseCode"], body["password"])
        except DecryptError as exc:
            return self._fail(CODE_DECRYPT, "decryption failed: %s" % exc)
        if pin != self.pin:
            return self._fail(CODE_BAD_REQUEST, "wrong password")
        token = self.tokens.issue(device["deviceId"], self.clock())
        return self._ok(token=token, expiresIn=self.tokens.ttl_s)

    def center_info(self, body):
        if not isinstance(body, dict) or "deviceId" not in body:
            return self._fail(CODE_BAD_REQUEST, "missing field(s) deviceId")
        device, bad = self._known_device(body)
        if bad:
            return bad
        # The notice body is the gateway's (nengjian/uplink/centerinfo.py; SPEC 3.1 names only the URL):
        # what a platform that takes alarms and heartbeats would check before keeping one.
        kind, at, info = body.get("infoType"), body.get("infoTime"), body.get("info")
        if kind not in ("alarm", "heartbeat") or not isinstance(info, dict) or not isinstance(at, str) or len(at) != 19:
            return self._fail(CODE_BAD_REQUEST, "infoType alarm|heartbeat, infoTime yyyy-MM-dd HH:mm:ss and an info "
                                                "object are required")
        self.store.store_center_info(device["deviceId"], json.dumps(body, ensure_ascii=False),
                                     self.now_text())
        return self._ok()

    def center_info_download(self, body):
        _, bad = self._device_request(body, ("deviceId",))
        if bad:
            return bad
        return self._ok(data=[{"energyCode": code, "convertRation": ratio}
                              for code, ratio in sorted(self.coefficients.items())])

    def data(self, body, reject_codes=()):
        bad = self._exact_keys(body, ("deviceId", "enterpriseCode", "data"))
        if bad:
            return self._rejected(body, bad)
        problem = v.check_enterprise_code(body["enterpriseCode"]) or v.check_device_id(body["deviceId"])
        if problem:
            return self._rejected(body, self._fail(CODE_BAD_REQUEST, problem))
        device = self.store.device(body["deviceId"])
        if device is None or device["enterpriseCode"] != body["enterpriseCode"]:
            return self._rejected(body, self._fail(CODE_BAD_REQUEST, DEVICE_MISMATCH))
        records = body["data"]
        if not isinstance(records, list) or not records:
            return self._rejected(body, self._fail(CODE_BAD_REQUEST, "data must be a non-empty array"))
        if self.max_batch is not None and len(records) > self.max_batch:
            return self._rejected(body, self._fail(
                CODE_BAD_REQUEST, "batch of %d records exceeds the limit of %d" % (len(records), self.max_batch)))
        if self.variant == "sm4-ecb":
            try:
                records = [self._decrypt(i, rec, device["secretKey"]) for i, rec in enumerate(records)]
            except DecryptError as exc:
                return self._rejected(body, self._fail(CODE_DECRYPT, "decryption failed: %s" % exc))

        now = self.now_cst()
        errors = []
        for i, rec in enumerate(records):
            problems = v.check_record(rec, self.period_s, self.valid_encoding, now, self.future_tolerance_s)
            code = rec.get("dataCode") if isinstance(rec, dict) else None
            if code in reject_codes:
                problems.append("dataCode %s rejected by the platform (fault switch reject_code)" % code)
            if problems:
                errors.append({"index": i, "dataCode": code if isinstance(code, str) else None,
                               "reason": "; ".join(problems)})
        if errors:
            message = "%d of %d record(s) invalid; nothing stored" % (len(errors), len(records))
            return self._rejected(body, self._fail(CODE_BAD_RECORDS, message, errors=errors), len(records))

        normal = [self._normalise(rec) for rec in records]
        repeats = self.store.store_batch(device["deviceId"], body["enterpriseCode"], normal, self.now_text())
        self._count("batchesAccepted")
        self._count("recordsAccepted", len(normal))
        self._log(describe_batch(body["enterpriseCode"], normal, repeats))
        return self._ok(accepted=len(normal))

    def _decrypt(self, index, rec, key_hex):
        if not isinstance(rec, dict):
            raise DecryptError("record %d is not a JSON object" % index)
        try:
            return decrypt_record(rec, key_hex, self.valid_encoding)
        except DecryptError as exc:
            raise DecryptError("record %d %s" % (index, exc)) from None

    def _normalise(self, rec):
        out = {name: rec[name] for name in v.RECORD_FIELDS}
        out["valid"] = v.decode_valid(rec["valid"], self.valid_encoding)
        return out

    def _rejected(self, body, response, n_records=0):
        self._count("batchesRejected")
        self._count("recordsRejected", n_records)
        who = body.get("enterpriseCode") if isinstance(body, dict) else None
        payload = response[1]
        line = "platform: rejected batch from %s: %s" % (who if isinstance(who, str) else "?",
                                                         payload["responseMessage"])
        for err in payload.get("errors", ())[:5]:
            line += "\n  [%d] %s: %s" % (err["index"], err["dataCode"], err["reason"])
        self._log(line)
        return response


def describe_batch(enterprise_code, records, repeats=0, shown=3):
    """One readable line for an accepted batch (what `make run` shows)."""
    items = []
    for rec in records[:shown]:
        kind = "" if rec["statType"] == 0 else v.STAT_TYPE_NAMES[rec["statType"]] + " "
        value = rec["dataValue"]
        items.append("%s %s%s = %s%s" % (rec["dataCode"], kind, rec["statDate"], value,
                                         "" if rec["valid"] else " (invalid)"))
    text = "platform: accepted %d record(s) from %s: %s" % (len(records), enterprise_code, ", ".join(items))
    if len(records) > shown:
        text += ", ... (+%d more)" % (len(records) - shown)
    if repeats:
        text += " [%d already stored]" % repeats
    return text
