"""Platform profiles: the national-style `ndrc-json` session (SPEC.md 3.1) and its security
variants (SPEC.md 3.2), one option of the profile each.

Profile interface (what nengjian.uplink.delivery uses; another profile would offer the same):
  profile.name                        the destination's name
  await profile.ensure_session()      None when ready to upload, else a Result (RETRY) to back off with
                                      (a MemoryError there too: the batch is not what is short of heap)
  await profile.upload(batch, now)    Result for records [(seq, VALUE record)]; now = UTC seconds
  profile.encode(batch, now)          the upload body (a bytearray) exactly as upload sends it
  profile.status()                    a small dict for the console (security, deviceId, versions, ...)
Result (nengjian.uplink.result, its names importable from here too).kind: OK (the platform
acknowledged the batch), REJECTED (Result.rejected lists (index, reason) of records refused for good;
nothing else of the batch was taken, resend the rest), RETRY (anything else; Result.reason says why,
quoting the platform's body when the answer was not understood), OUT_OF_MEMORY (upload only: a
MemoryError while the batch was encoded or sent) or UNANSWERED (upload only: the batch went out
whole and a MemoryError came while the answer was read or judged: the platform may have it).
http.HttpError may escape both coroutines: a transport failure, retryable (its `timeout` flag is kept
for the batch-size logic). `build(...)` makes the profile a destination names.

Session. Register {"region", "enterpriseCode"} at the destination's URL -> deviceId, the service URLs,
uploadTime, secretKey (SM4 variants), tokenURL (token variant). Then the version check
{"deviceId"} at loadDicVersionURL -> regVersion, dicVersion, once per start: it also proves a session
kept from before a reboot is still known (an "unknown deviceId" answer registers again); a version
change is a ledger event (the platform's data-item dictionary may have moved); any other failure of
the check is logged and does not hold the data back. Data go to centerDataURL. The session is kept in
`session-NAME.json` on the data volume (nengjian.core.statefile, no version: the plain JSON dict that
firmware before statefile wrote and reads), so a reboot does not register again; a session that
cannot be written is an event and serves until the next restart. An answer saying the deviceId is
unknown or does not match drops it and registers anew.

Where the platform may send us. The service URLs of a register answer (and of a session on flash) are
used only when they are https - or http on a destination the site itself configured as plain http -
and name the destination's own host or one of its `hosts` (the platform's other servers, from the
site config). Anything else is refused and is a `security` event in the ledger (once per URL and
start): a refused centerDataURL keeps the destination in a clear error state (RETRY, "refused"),
registering again after the back-off, with every record kept on the gateway until an allowed URL
comes; another refused URL is dropped (no version check, no info channel, the configured token_url).
Without this a hostile answer could send every upload to any host chaining to the pinned CA, or to
any host at all on an http destination.

Secrets never go into a reason, a log line or an event: every quoted answer passes through _excerpt,
which masks the value of each member named like a secret (secretKey, token, password, pin, ...),
and reasons the platform's words go into are scrubbed of the session's own key, token and PIN.

Security (`security` in the destination):
- "plain"          JSON over HTTP(S). HTTPS always verifies the platform (see tlsctx).
- "mtls"           the same, and the TLS client presents the enterprise's certificate (tlsctx).
- "sm4-ecb"        every value of every data[] record is lower-case hex of SM4-ECB/PKCS#7 of its text
                   (the JSON token of the plain variant, strings without quotes) under the registration
                   secretKey; deviceId and enterpriseCode stay plain. A "decryption failed" answer
                   drops the session: registering again fetches the platform's current key.
- "sm4-cbc-token"  POST tokenURL {"deviceId", "enterpriseCode", "password"} (sm4.yunnan_password of
                   the configured PIN) -> token, sent as `Authorization: Bearer` on every later call;
                   renewed before its expiresIn runs out and on any 401 (one renewal and one resend per
                   call, no back-off).
SM4 runs here, in the delivery task, never on the poll path; encoding yields to the event loop after
every record so a long batch cannot stall the pollers.

Records: dataCode, dataValue (exact decimal text, never a float), inputType, statType, statDate
(period start, CST), uploadDate (now, CST), scope, valid encoded per the `valid` option: JSON
true/false ("json"), "0" = valid ("shandong"), "1" = valid ("yunnan").

Answers: success is responseCode == the destination's `success_code` ("0" by default; 200 in Yunnan)
on an HTTP 2xx; `errors: [{index, reason}]` names records refused for good (REJECTED); everything else
is RETRY with the reason and the body logged.
"""

import json
from binascii import hexlify

from nengjian.core import log, records, statefile, timeutil
from nengjian.core.compat import unload
from nengjian.net import http
from nengjian.uplink.result import (  # noqa: F401  (callers' names: ndrc.Stop, ndrc.SM4_ECB, ndrc.OK, ...)
    BODY_SHOWN,
    CONTENT_TYPE,
    OK,
    OUT_OF_MEMORY,
    REJECTED,
    RETRY,
    SM4_ECB,
    TOKEN,
    TOKEN_MARGIN_S,
    UNANSWERED,
    Result,
    Stop,
    _excerpt,
    _parse,
)

PLAIN = "plain"  # the default security; "mtls" is plain JSON too, its client certificate tls.build's

# Bytes kept per destination: the upload body streams through it (5 plain or 2 SM4 records a chunk)
# and the platform's answer is read through it. One TCP segment, the HTTP client's send slice
# (http._SEND_CHUNK): a larger buffer goes out in as many writes and holds the heap for nothing.
BODY_BUF = 1460


def build(dest, enterprise, state_dir, config_dir=".", event=None, credentials=None):
    """The profile object for one checked destination of the site config."""
    if dest["profile"] == "ndrc-json":
        return NdrcJson(dest, enterprise, state_dir, config_dir=config_dir, event=event, credentials=credentials)
    raise ValueError("unknown platform profile %r" % dest["profile"])


_quote = json.dumps  # a JSON string literal of s: the built-in itself, no function of ours


SESSION = "nengjian.uplink.session"


def _session():
    """The session steps (registration, token, version check, the session file at start): loaded for
    them, dropped by the caller after with unload(SESSION)."""
    from nengjian.uplink import session

    return session


class NdrcJson:
    def __init__(self, dest, enterprise, state_dir, ssl=None, config_dir=".", event=None, credentials=None):
        self.name = dest["name"]
        self.dest = dest
        self.url = dest["url"]
        self.timeout_ms = dest.get("timeout_ms", 15000)
        self.valid_encoding = dest.get("valid", "json")
        self.security = dest.get("security", PLAIN)
        self.success_code = str(dest.get("success_code", "0"))
        self.enterprise = enterprise
        self.config_dir = config_dir
        self.credentials = credentials  # the board's credentials(): read once, when TLS is set up
        self._event = event or (lambda kind, text, code=None: log.warn("event", "%s: %s" % (kind, text)))
        # Hosts the platform may send us to: the configured one and those the site names for it.
        self._hosts = [http.split_url(self.url)[1].lower()] + [h.lower() for h in dest.get("hosts", ())]
        self._refused = []  # (field, origin) already written to the ledger since start
        self.last_refusal = ""  # why the last centerDataURL was refused
        self.ssl = ssl
        self.tls_notes = []
        self._state_path = "%s/session-%s.json" % (state_dir, self.name)
        try:
            self.session = _session().load(self)
        finally:
            unload(SESSION)
        self._checked = False  # version check done since start
        self._token = None
        self._token_until = 0
        self._cipher = None
        self._cipher_key = None
        # Allocated at start, while the heap is whole: after hours of traffic a heap of about an
        # ESP32's size was seen with 12 KB free and no free block above 336 bytes (sim, 256k).
        self._body = bytearray(BODY_BUF)
        self._sent = False  # the last upload's body went out whole (what a MemoryError then means)
        if self.security in (SM4_ECB, TOKEN):
            # At start, while the heap is whole: the cipher's tables are one 4 KB block, which a
            # heap fragmented by hours of traffic may no longer offer.
            from nengjian.crypto import sm4  # noqa: F401
        if self.url.startswith("https://") and dest.get("insecure_self_signed"):
            from nengjian.net import tls as tlsctx

            # Every start, on purpose: this must stay visible in the ledger for as long as it is on.
            self._event("security", "%s: %s" % (self.name, tlsctx.INSECURE_WARNING), "security.tls_insecure")

    # ---- session state on flash
    def _save(self):
        # No version: the file stays the bare dict that firmware before statefile reads (a rollback).
        statefile.save(self._state_path, self.session, None, self._not_saved)

    def _not_saved(self, why):
        # Flash full or failing: the session in RAM still serves; only a restart registers again.
        self._event("uplink", "%s: session not saved (%s): it serves until a restart, which registers again"
                    % (self.name, why), "uplink.session_not_saved")

    def forget_session(self):
        self.session = None
        self._checked = False
        self._token = None
        self._cipher = None
        statefile.remove(self._state_path)  # with any NAME.new, which load would take up again

    def status(self):
        s = self.session or {}
        return {"security": self.security, "deviceId": s.get("deviceId"), "regVersion": s.get("regVersion"),
                "dicVersion": s.get("dicVersion"), "uploadTime": s.get("uploadTime"),
                "token": self._token is not None, "tls_verified": not self.dest.get("insecure_self_signed")}

    # ---- transport
    def _tls(self):
        if self.ssl is None:
            from nengjian.net import tls as tlsctx

            try:
                self.ssl, self.tls_notes = tlsctx.build(self.dest, self.config_dir, self.credentials)
            except tlsctx.TlsSetupError as e:
                raise Stop(Result(RETRY, "TLS set-up: %s" % e))
            for note in self.tls_notes:
                log.warn("uplink", "%s: %s" % (self.name, note))
        return self.ssl

    async def _request(self, url, body, headers, length=None):
        if url.startswith("https://"):
            ssl = self._tls()
        elif self.url.startswith("https://"):
            raise Stop(Result(RETRY, "the platform gave a plain http:// URL (%s) for an https:// destination: "
                                      "refusing to send in the clear" % url))
        else:
            ssl = None
        try:
            if length is not None:
                return await http.request("POST", url, body(), headers, self.timeout_ms, ssl, length=length,
                                          buf=self._body)
            return await http.request("POST", url, body, headers, self.timeout_ms, ssl, buf=self._body)
        except http.HttpError as e:
            from nengjian.net import tls as tlsctx

            text = str(e)
            clear = tlsctx.explain(text, self.dest, getattr(e, "errno", None))
            if clear != text:
                raise Stop(Result(RETRY, clear))
            raise

    async def _call(self, url, body, auth=True, length=None):
        """(status, body) of one POST; under the token variant with the bearer token, renewed and
        resent once on a 401. With `length`, body is a function giving the chunks anew for each send."""
        headers = {"Content-Type": CONTENT_TYPE}
        use_token = auth and self.security == TOKEN
        if use_token:
            if self._token is None or timeutil.now() >= self._token_until:
                await self._fetch_token()
            # _fetch_token set the token or raised: not None here
            headers["Authorization"] = "Bearer " + self._token  # type: ignore[operator]
        status, data = await self._request(url, body, headers, length)
        if status == 401 and use_token:
            log.info("uplink", "%s: token refused (%s): fetching a new one" % (self.name, self._scrub(_excerpt(data))))
            self._token = None
            await self._fetch_token()
            headers["Authorization"] = "Bearer " + self._token  # type: ignore[operator]  # as above
            status, data = await self._request(url, body, headers, length)
        return status, data

    async def exchange(self, url, body):
        """One POST of a JSON body to a URL the session names (the information channel's):
        (status, answer dict or None, why), why being "" on the platform's success code and the
        reason otherwise. Raises Stop when the exchange cannot be made (token, TLS set-up)."""
        status, data = await self._call(url, body)
        ans = _parse(data)
        if self._success(status, ans):
            return status, ans, ""
        return status, ans, self._unclear(status, data, ans)

    def _success(self, status, ans):
        return ans is not None and 200 <= status < 300 and str(ans.get("responseCode")) == self.success_code

    def _mismatch(self, ans):
        """When the answer says our deviceId is unknown or not ours: drop the session and stop the
        exchange (the next round registers again)."""
        msg = str(ans.get("responseMessage", ""))
        if "deviceid" in msg.lower().replace(" ", ""):
            dev = self.session.get("deviceId") if self.session else None
            msg = self._scrub(msg)
            self.forget_session()
            raise Stop(Result(RETRY, "platform no longer accepts deviceId %s (%s): registering again" % (dev, msg)))

    # ---- session
    async def ensure_session(self):
        """Register, fetch a token, check versions, as needed; None when uploads can go."""
        try:
            if self.url.startswith("https://"):
                self._tls()
            if not self.session:
                await _session().register(self)
            if self.security == TOKEN and (self._token is None or timeutil.now() >= self._token_until):
                await _session().fetch_token(self)
            if not self._checked:
                await _session().version_check(self)
        except Stop as s:
            return s.args[0]
        except MemoryError:
            # Loading the session steps or reading an answer: no batch is held yet, so a smaller one
            # would not help (delivery would halve it down to one record for nothing); backed off from.
            return Result(RETRY, "out of memory setting up the session (heap free %d)" % _mem_free())
        finally:
            unload(SESSION)
        return None

    async def _fetch_token(self):
        """A token for the token variant (nengjian.uplink.session), its code dropped after."""
        try:
            await _session().fetch_token(self)
        finally:
            unload(SESSION)

    # ---- records
    def _valid(self, v):
        if self.valid_encoding == "shandong":
            return "0" if v else "1"
        if self.valid_encoding == "yunnan":
            return "1" if v else "0"
        return "true" if v else "false"

    def _sm4(self):
        key = self.session.get("secretKey")
        if self._cipher is None or self._cipher_key != key:
            from nengjian.crypto import sm4

            try:
                self._cipher = sm4.SM4(sm4.key_from_hex(key))
            except (ValueError, TypeError) as e:
                self.forget_session()
                raise Stop(Result(RETRY, "secretKey from registration is unusable (%s): registering again" % e))
            self._cipher_key = key
        return self._cipher

    # The body is streamed: formatted record by record into the buffer kept since start and
    # sent a buffer at a time, with Content-Length measured beforehand. A body in one allocation of
    # its own size (20 KB for 50 SM4 records) needed a contiguous block that a heap the size of an
    # ESP32's, fragmented by hours of traffic, no longer had; measuring formats plain records twice
    # but SM4 fields only by length, and nothing larger than one record is ever allocated.
    def _plain(self, r, upload):
        """One plain data[] record as bytes; upload is the CST text of the upload time."""
        valid = self._valid(r[records.V_VALID])
        if self.valid_encoding != "json":
            valid = '"%s"' % valid
        return ('{"dataCode":%s,"dataValue":%s,"inputType":%d,"statType":%d,"statDate":"%s",'
                '"uploadDate":"%s","scope":%d,"valid":%s}' % (
                    _quote(r[records.V_CODE]), r[records.V_VALUE].text(), r[records.V_INPUT],
                    r[records.V_STAT_TYPE], timeutil.cst_text(r[records.V_STAT_START]), upload,
                    r[records.V_SCOPE], valid)).encode()

    def _texts(self, r, upload):
        """The field texts an SM4 record encrypts, in _SM4_KEYS order (all ASCII)."""
        return (r[records.V_CODE], r[records.V_VALUE].text(), str(r[records.V_INPUT]), str(r[records.V_STAT_TYPE]),
                timeutil.cst_text(r[records.V_STAT_START]), upload, str(r[records.V_SCOPE]),
                self._valid(r[records.V_VALID]))

    def _pieces(self, batch, now, measure=False):
        """The body piece by piece, as bytes; when measuring, an SM4 field is given as its length."""
        cipher = self._sm4() if self.security == SM4_ECB else None
        if cipher is not None and not measure:
            from nengjian.crypto.sm4 import ecb_encrypt as sm4_ecb
        upload = timeutil.cst_text(now)
        yield ('{"deviceId":%s,"enterpriseCode":%s,"data":[' % (
            _quote(self.session["deviceId"]), _quote(self.enterprise["code"]))).encode()
        for i, (_seq, r) in enumerate(batch):
            if i:
                yield b","
            if cipher is None:
                yield self._plain(r, upload)
                continue
            for k, text in enumerate(self._texts(r, upload)):
                yield _SM4_KEYS[k]
                yield 32 * (len(text) // 16 + 1) if measure else hexlify(sm4_ecb(cipher, text.encode()))
            yield b'"}'
        yield b"]}"

    def _size(self, batch, now):
        n = 0
        for p in self._pieces(batch, now, True):
            n += p if isinstance(p, int) else len(p)
        return n

    def _stream(self, batch, now):
        """The body in chunks of at most the kept buffer; each chunk is valid until the next one is
        asked for (the HTTP client sends a chunk completely before it asks)."""
        self._sent = False
        mv = memoryview(self._body)
        cap = len(mv)
        pos = 0
        for p in self._pieces(batch, now):
            n = len(p)
            if pos + n > cap:
                if pos:
                    yield mv[:pos]
                    pos = 0
                if n > cap:
                    yield p
                    continue
            mv[pos:pos + n] = p
            pos += n
        if pos:
            yield mv[:pos]
        # Asked for more after the last chunk: the HTTP client has sent the whole body.
        self._sent = True

    def encode(self, batch, now):
        """The whole upload body for records [(seq, VALUE record)], as a bytearray (tests, benches)."""
        out = bytearray()
        for chunk in self._stream(batch, now):
            out += chunk
        return out

    async def upload(self, batch, now):
        self._sent = False
        try:
            if not self.session:
                return Result(RETRY, "no session")
            size = self._size(batch, now)
            status, data = await self._call(self.session["centerDataURL"], lambda: self._stream(batch, now),
                                            length=size)
            return self._judge(status, data, len(batch))
        except Stop as s:
            return s.args[0]
        except MemoryError:
            if self._sent:
                # The platform has the batch and may have stored it: only its answer was lost here.
                # Delivery collects and sends the same batch again (SPEC 3.4: harmless), not half.
                return Result(UNANSWERED, "out of memory reading the answer to %d record(s) (heap free %d)"
                              % (len(batch), _mem_free()))
            # Delivery retries at once with half the batch (a local condition, not the platform's).
            return Result(OUT_OF_MEMORY, "out of memory sending %d record(s) (heap free %d)"
                          % (len(batch), _mem_free()))

    def _judge(self, status, data, n):
        ans = _parse(data)
        if self._success(status, ans):
            return Result(OK)
        if ans is not None:
            self._mismatch(ans)
            code = str(ans.get("responseCode"))
            msg = str(ans.get("responseMessage", ""))
            msg = self._scrub(msg)
            if self.security == SM4_ECB and ("decrypt" in msg.lower() or "\u89e3\u5bc6" in msg or code == "3"):
                self.forget_session()
                return Result(RETRY, "platform could not decrypt the batch (responseCode %s: %s): wrong secretKey? "
                                     "registering again to fetch the current key" % (code, msg))
            errs = ans.get("errors")
            if isinstance(errs, list) and errs:
                rejected = []
                for e in errs:
                    if isinstance(e, dict):
                        i = e.get("index")
                        if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n:
                            rejected.append((i, self._scrub(str(e.get("reason", msg)))))
                if rejected:
                    return Result(REJECTED, msg, rejected)
        return Result(RETRY, self._unclear(status, data, ans))

    def _unclear(self, status, data, ans):
        """Reason text for an answer that is not a success; logs the body."""
        log.warn("uplink", "%s: answer HTTP %d: %s" % (self.name, status, self._scrub(_excerpt(data, 400))))
        if ans is not None and "responseCode" in ans:
            why = "HTTP %d, responseCode %s: %s" % (status, ans.get("responseCode"), ans.get("responseMessage", ""))
        elif ans is not None:
            why = "HTTP %d, answer without responseCode: %s" % (status, _excerpt(data))
        else:
            why = "HTTP %d, unreadable answer: %s" % (status, _excerpt(data))
        return self._scrub(why)

    def _scrub(self, text):
        """text without the session's key, token and the configured PIN, should the platform quote them."""
        s = self.session or {}
        for secret in (s.get("secretKey"), self._token, self.dest.get("pin")):
            if isinstance(secret, str) and len(secret) >= 4 and secret in text:
                text = text.replace(secret, "***")
        return text


_SM4_KEYS = (b'{"dataCode":"', b'","dataValue":"', b'","inputType":"', b'","statType":"', b'","statDate":"',
             b'","uploadDate":"', b'","scope":"', b'","valid":"')


def _mem_free():
    import gc

    gc.collect()
    return gc.mem_free() if hasattr(gc, "mem_free") else -1
