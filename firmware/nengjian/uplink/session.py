"""A platform's session (SPEC 3.1): the session file taken up at start, registration, the token of the
token variant and the version check, for nengjian.uplink.ndrc's NdrcJson (`self` here).

Owns nothing of its own: the functions were NdrcJson's methods. They run at a start, when the platform
forgets the gateway and, for the token variant, about once an hour, so ndrc loads this module for
them and drops it after (nengjian.core.compat.unload): some 5 KB of heap on the sim that a gateway
uploading its data does not need in between.
"""

import json

from nengjian.core import log, statefile, timeutil
from nengjian.core.compat import unload
from nengjian.uplink.result import (
    CONTENT_TYPE,
    RETRY,
    SM4_ECB,
    TOKEN,
    TOKEN_MARGIN_S,
    Result,
    Stop,
    _excerpt,
    _parse,
)


def load(self):
    s = statefile.load(self._state_path, None)
    if not isinstance(s, dict):
        return None
    if (s.get("enterpriseCode") != self.enterprise["code"] or s.get("registerURL") != self.url
            or s.get("region", self.enterprise["region"]) != self.enterprise["region"]):
        return None
    if self.security in (SM4_ECB, TOKEN) and not s.get("secretKey"):
        return None  # kept from a plain session: the key only comes with a registration
    if not s.get("deviceId") or not s.get("centerDataURL"):
        return None
    if not allowed_urls(self, s, s):  # kept by firmware that took any URL, or the site's hosts changed
        return None
    return s


def allowed_urls(self, ans, into):
    """Copies the service URLs of `ans` into `into`, each refused one as None (a ledger event);
    False when centerDataURL is refused (last_refusal says why). The rule (uplink.guard) is loaded
    for this and dropped again: registrations and starts are rare."""
    from nengjian.uplink import guard

    try:
        why = guard.check_urls(ans, into, self.url, self._hosts, lambda f, o, w: refuse(self, f, o, w))
    finally:
        unload("nengjian.uplink.guard")
    if why:
        self.last_refusal = why
    return why is None


def refuse(self, field, origin, why):
    """A refused URL is a ledger event, once per URL since start (registration retries repeat it)."""
    if (field, origin) in self._refused:
        return
    if len(self._refused) < 8:
        self._refused.append((field, origin))
    self._event("security", "%s: the platform's %s (%s) refused: %s; %s" % (
        self.name, field, origin, why, "no uploads until it names an allowed one, the data stay on the "
        "gateway" if field == "centerDataURL" else "not used"), "uplink.field_refused")


async def register(self):
    ent = self.enterprise
    body = json.dumps({"region": ent["region"], "enterpriseCode": ent["code"]}).encode()
    status, data = await self._request(self.url, body, {"Content-Type": CONTENT_TYPE})
    ans = _parse(data)
    if not self._success(status, ans):
        raise Stop(Result(RETRY, "register refused: %s" % self._unclear(status, data, ans)))
    dev = ans.get("deviceId")
    data_url = ans.get("centerDataURL")
    if not isinstance(dev, str) or not dev or not isinstance(data_url, str) or not data_url:
        raise Stop(Result(RETRY, "register answer lacks deviceId or centerDataURL: %s" % _excerpt(data)))
    key = ans.get("secretKey")
    if self.security in (SM4_ECB, TOKEN):
        if not isinstance(key, str) or len(key) < 16:
            raise Stop(Result(RETRY, "register answer has no usable secretKey for security %s: %s" % (
                self.security, _excerpt(data))))
    session = {"enterpriseCode": ent["code"], "region": ent["region"], "registerURL": self.url,
               "deviceId": dev, "uploadTime": ans.get("uploadTime"), "secretKey": key}
    if not allowed_urls(self, ans, session):
        raise Stop(Result(RETRY, "register answer: %s; registering again later, the data stay on the gateway"
                          % self.last_refusal))
    self.session = session
    self._save()
    self._checked = False
    self._token = None
    self._cipher = None
    log.info("uplink", "%s: registered, deviceId %s, upload slot %s" % (self.name, dev, ans.get("uploadTime")))


async def fetch_token(self):
    s = self.session
    url = s.get("tokenURL") or self.dest.get("token_url")
    if not url:
        raise Stop(Result(RETRY, "no token URL: the register answer has no tokenURL and the destination "
                                  "sets no token_url"))
    from nengjian.crypto import sm4

    try:
        password = sm4.yunnan_password(s["secretKey"], self.enterprise["code"], self.dest.get("pin", ""),
                                       self.dest.get("password_upper", False))
    except ValueError as e:
        raise Stop(Result(RETRY, "cannot form the token password: %s" % e))
    body = json.dumps({"deviceId": s["deviceId"], "enterpriseCode": self.enterprise["code"],
                       "password": password}).encode()
    status, data = await self._request(url, body, {"Content-Type": CONTENT_TYPE})
    ans = _parse(data)
    token = ans.get("token") if ans is not None else None
    if self._success(status, ans) and isinstance(token, str) and token:
        self._token = token
        ttl = ans.get("expiresIn")
        ttl = ttl if isinstance(ttl, int) and ttl > 0 else 3600
        margin = TOKEN_MARGIN_S if ttl > 2 * TOKEN_MARGIN_S else ttl // 2
        self._token_until = timeutil.now() + ttl - margin
        log.info("uplink", "%s: token issued for %d s" % (self.name, ttl))
        return
    if ans is not None:
        self._mismatch(ans)
    raise Stop(Result(RETRY, "token refused: %s" % self._unclear(status, data, ans)))


async def version_check(self):
    s = self.session
    url = s.get("loadDicVersionURL")
    if not url:
        self._checked = True
        return
    body = json.dumps({"deviceId": s["deviceId"]}).encode()
    status, data = await self._call(url, body)
    ans = _parse(data)
    if not self._success(status, ans):
        if ans is not None:
            self._mismatch(ans)
        self._checked = True
        self._event("uplink", "%s: version check failed (uploading anyway): %s" % (
            self.name, self._unclear(status, data, ans)), "uplink.version_check_failed")
        return
    reg, dic = ans.get("regVersion"), ans.get("dicVersion")
    old = (s.get("regVersion"), s.get("dicVersion"))
    self._checked = True
    if old != (reg, dic):
        if old != (None, None):
            self._event("uplink", "%s: platform versions changed: regVersion %s -> %s, dicVersion %s -> %s; "
                                  "check the data-item codes with the platform" % (self.name, old[0], reg, old[1], dic), "uplink.versions_changed")
        s["regVersion"] = reg
        s["dicVersion"] = dic
        self._save()
    log.info("uplink", "%s: version check: regVersion %s, dicVersion %s" % (self.name, reg, dic))
