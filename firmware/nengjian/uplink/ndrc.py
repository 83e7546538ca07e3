"""The national-style `ndrc-json` platform session: register, version check, data upload.

Wire format per SPEC.md 3.1: JSON over HTTP(S); register with region + enterpriseCode to get a
deviceId and the service URLs; upload {"deviceId", "enterpriseCode", "data": [records]} to
centerDataURL. The session is kept in a small file on the data volume so a reboot does not
register again; a "deviceId does not match" answer drops it and registers anew.

Values go on the wire as exact decimal text (never through a 32-bit float). `valid` is encoded
as the destination's option says: JSON true/false (default), "0"/"1" with "0" = valid (Shandong),
or "1" = valid (Yunnan).
"""

import json
import os

from nengjian import log, records, timeutil
from nengjian.uplink import http

OK = 0
REJECTED = 1
RETRY = 2


class Result:
    __slots__ = ("kind", "reason", "rejected")

    def __init__(self, kind, reason="", rejected=None):
        self.kind = kind
        self.reason = reason
        self.rejected = rejected or []  # (index in batch, reason)


def _quote(s):
    return json.dumps(s)


class NdrcJson:
    def __init__(self, dest, enterprise, state_dir, ssl=None):
        self.name = dest["name"]
        self.url = dest["url"]
        self.timeout_ms = dest["timeout_ms"]
        self.valid_encoding = dest["valid"]
        self.enterprise = enterprise
        self.ssl = ssl
        self._state_path = "%s/session-%s.json" % (state_dir, self.name)
        self.session = self._load()

    def _load(self):
        try:
            with open(self._state_path) as f:
                s = json.load(f)
            if s.get("enterpriseCode") == self.enterprise["code"] and s.get("registerURL") == self.url:
                return s
        except (OSError, ValueError):
            pass
        return None

    def _save(self):
        tmp = self._state_path + ".new"
        with open(tmp, "w") as f:
            json.dump(self.session, f)
        os.rename(tmp, self._state_path)

    def forget_session(self):
        self.session = None
        try:
            os.remove(self._state_path)
        except OSError:
            pass

    async def _post(self, url, body):
        return await http.request("POST", url, body, {"Content-Type": "application/json;charset=UTF-8"},
                                  self.timeout_ms, self.ssl)

    async def ensure_session(self):
        """Register if there is no session; returns None or a Result to give up this round with."""
        if self.session:
            return None
        body = json.dumps({"region": self.enterprise["region"], "enterpriseCode": self.enterprise["code"]})
        status, data = await self._post(self.url, body.encode())
        ans = _parse(status, data)
        if ans is None or not _success(ans):
            return Result(RETRY, "register refused: %s" % _describe(status, data, ans))
        dev = ans.get("deviceId")
        data_url = ans.get("centerDataURL")
        if not dev or not data_url:
            return Result(RETRY, "register answer lacks deviceId or centerDataURL")
        self.session = {"enterpriseCode": self.enterprise["code"], "registerURL": self.url,
                        "deviceId": dev, "centerDataURL": data_url,
                        "loadDicVersionURL": ans.get("loadDicVersionURL"),
                        "uploadTime": ans.get("uploadTime"), "secretKey": ans.get("secretKey")}
        self._save()
        log.info("uplink", "%s: registered, deviceId %s" % (self.name, dev))
        return None

    def _valid(self, v):
        if self.valid_encoding == "shandong":
            return '"0"' if v else '"1"'
        if self.valid_encoding == "yunnan":
            return '"1"' if v else '"0"'
        return "true" if v else "false"

    def encode(self, batch, now):
        """The upload body for records [(seq, VALUE record)], as bytes."""
        upload = _quote(timeutil.cst_text(now))
        parts = ['{"deviceId":', _quote(self.session["deviceId"]), ',"enterpriseCode":',
                 _quote(self.enterprise["code"]), ',"data":[']
        first = True
        for _seq, r in batch:
            if not first:
                parts.append(",")
            first = False
            parts.append('{"dataCode":%s,"dataValue":%s,"inputType":%d,"statType":%d,"statDate":%s,'
                         '"uploadDate":%s,"scope":%d,"valid":%s}' % (
                             _quote(r[records.V_CODE]), r[records.V_VALUE].text(), r[records.V_INPUT],
                             r[records.V_STAT_TYPE], _quote(timeutil.cst_text(r[records.V_STAT_START])),
                             upload, r[records.V_SCOPE], self._valid(r[records.V_VALID])))
        parts.append("]}")
        return "".join(parts).encode()

    async def upload(self, batch, now):
        status, data = await self._post(self.session["centerDataURL"], self.encode(batch, now))
        ans = _parse(status, data)
        if ans is not None and _success(ans):
            return Result(OK)
        if ans is not None:
            msg = str(ans.get("responseMessage", ""))
            if "deviceid" in msg.lower().replace(" ", ""):
                self.forget_session()
                return Result(RETRY, "platform dropped the session (%s): registering again" % msg)
            errs = ans.get("errors")
            if isinstance(errs, list) and errs:
                rejected = []
                for e in errs:
                    if isinstance(e, dict) and isinstance(e.get("index"), int) and 0 <= e["index"] < len(batch):
                        rejected.append((e["index"], str(e.get("reason", msg))))
                if rejected:
                    return Result(REJECTED, msg, rejected)
        return Result(RETRY, _describe(status, data, ans))


def _parse(status, data):
    try:
        ans = json.loads(data)
    except ValueError:
        return None
    return ans if isinstance(ans, dict) else None


def _success(ans):
    code = ans.get("responseCode")
    return code in ("0", 0, 200, "200")


def _describe(status, data, ans):
    if ans is not None and "responseMessage" in ans:
        return "HTTP %d, responseCode %s: %s" % (status, ans.get("responseCode"), ans.get("responseMessage"))
    return "HTTP %d: %r" % (status, bytes(data[:120]))
