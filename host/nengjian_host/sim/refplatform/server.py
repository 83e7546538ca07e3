"""HTTP(S) front of the reference platform and its in-process Python API (RefPlatform).

Owns: the threaded server, request parsing (content type, length, strict JSON), the fault behaviour on
the wire, the admin endpoints, TLS set-up and clean shutdown. Session logic lives in service.py.

Admin endpoints (/admin/fault, /admin/records, /admin/stats, /admin/devices, /admin/clear) are off
unless `admin_port` is given: they list every device's secretKey and switch faults, so they never
share the API port (a gateway, or anyone who reaches the API, cannot call them) and each request
needs `Authorization: Bearer <admin_token>`. They listen on loopback unless `admin_host` says
otherwise. Tests and `make run` use the in-process API (records(), set_fault(), ...) instead.

Bounded: at most `max_workers` connections are served at once (each in its own thread); one more is
closed at once without an answer, counted in stats()["busyRefusals"]. A request must arrive whole
within `request_timeout_s` (a client that dribbles its request line, headers or body is cut off, as
is one that goes quiet for IDLE_TIMEOUT_S).
"""

import hmac
import io
import json
import secrets
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from urllib.parse import parse_qs, urlsplit

from . import validate as v
from .faults import NO_ANSWER_MODES, FaultSwitch, redirected
from .service import Service
from .store import Store
from .variants import VARIANTS

MAX_BODY = 4 * 1024 * 1024
IDLE_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0  # one whole request: line, headers and body
MAX_WORKERS = 32  # connections served at once, each a thread


class RequestError(Exception):
    """A request the platform cannot read at all: answered with this HTTP status and a JSON body."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def _unique_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key %r" % key)
        obj[key] = value
    return obj


def parse_json_body(raw):
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys, an object at the top."""
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        raise RequestError(400, "body is not UTF-8") from None
    except ValueError as exc:
        raise RequestError(400, "malformed JSON: %s" % exc) from None
    if not isinstance(obj, dict):
        raise RequestError(400, "body must be a JSON object")
    return obj


class _DeadlineReader(io.RawIOBase):
    """The socket as the handler reads it: each read waits at most until the current request's deadline
    (and never longer than the idle timeout), so a request dribbled a byte at a time still ends."""

    def __init__(self, sock, handler):
        io.RawIOBase.__init__(self)
        self._sock = sock
        self._handler = handler

    def readable(self):
        return True

    def readinto(self, buf):
        left = self._handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not complete within %s s" % self._handler.server.request_timeout_s)
        self._sock.settimeout(min(left, IDLE_TIMEOUT_S))
        return self._sock.recv_into(buf)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # close() joins the workers itself, after it has shut their connections (a keep-alive worker would
    # otherwise hold server_close() for the whole idle timeout).
    block_on_close = False
    # A bound-then-closed port must be reusable at once by the next test.
    allow_reuse_address = True

    def __init__(self, address, platform, admin=False, max_workers=MAX_WORKERS, request_timeout_s=REQUEST_TIMEOUT_S):
        self.platform = platform
        self.admin = admin  # this server answers the admin endpoints only (and asks for the token)
        self.request_timeout_s = request_timeout_s
        self._slots = threading.BoundedSemaphore(max_workers)
        self._conn_lock = threading.Lock()
        self._connections = set()
        self._workers = set()
        ThreadingHTTPServer.__init__(self, address, _Handler)

    def process_request(self, request, client_address):
        # A thread per connection, but only so many: past that a connection is closed unanswered (the
        # client sees the connection end, which a gateway retries like any network fault).
        if not self._slots.acquire(blocking=False):
            self.platform._count_busy()
            self.shutdown_request(request)
            return
        try:
            ThreadingHTTPServer.process_request(self, request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            ThreadingHTTPServer.process_request_thread(self, request, client_address)
        finally:
            self._slots.release()

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall for seconds.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        worker = threading.current_thread()
        with self._conn_lock:
            self._connections.add(request)
            self._workers.add(worker)
        try:
            ctx = self.platform.ssl_context
            if ctx is not None:
                request.settimeout(IDLE_TIMEOUT_S)
                try:
                    tls = ctx.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    self.platform._count_tls_failure()
                    return
                with self._conn_lock:
                    self._connections.discard(request)
                    self._connections.add(tls)
                request = tls
            try:
                _Handler(request, client_address, self)
            finally:
                if request is not None and ctx is not None:
                    request.close()
        finally:
            with self._conn_lock:
                self._connections.discard(request)
                self._workers.discard(worker)

    def handle_error(self, request, client_address):
        # A client that gave up (timeout, reset) is normal traffic for a fault-injecting server;
        # anything else is a platform bug and must show.
        if isinstance(sys.exc_info()[1], OSError):
            return
        self.platform.service.count_internal_error()
        traceback.print_exc(file=sys.stderr)

    def close_connections(self):
        with self._conn_lock:
            conns, workers = list(self._connections), list(self._workers)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return workers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NengjianRefPlatform/0.1"
    timeout = IDLE_TIMEOUT_S
    deadline = 0.0

    def log_message(self, format, *args):
        pass

    def date_time_string(self, timestamp=None):
        # The Date header is the platform's time, which a gateway may set its clock from
        # (nengjian.net.http, over verified TLS): the platform's own clock, that a test may run fast.
        if timestamp is None:
            timestamp = self.server.platform.service.clock()
        return BaseHTTPRequestHandler.date_time_string(self, timestamp)

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        plain = self.rfile
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))
        plain.close()  # only the file object: the socket stays open for ours

    def handle_one_request(self):
        self.deadline = time.monotonic() + self.server.request_timeout_s
        BaseHTTPRequestHandler.handle_one_request(self)

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def do_DELETE(self):
        self._route("DELETE")

    # -- wire helpers -----------------------------------------------------------------------------
    def _send(self, status, payload):
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.connection.settimeout(IDLE_TIMEOUT_S)  # the answer gets its own time, not what the read left
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _abort(self):
        """Drop the connection with a TCP reset and no answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def _drop(self):
        """Close the connection without an answer (orderly FIN)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_body(self, require_json=True):
        """The parsed JSON object; RequestError for anything unreadable."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            self.close_connection = True
            raise RequestError(411, "Content-Length required")
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise RequestError(400, "bad Content-Length") from None
        if n > MAX_BODY:
            self.close_connection = True
            raise RequestError(413, "body larger than %d bytes" % MAX_BODY)
        raw = self.rfile.read(n)
        if len(raw) != n:
            self.close_connection = True
            raise RequestError(400, "body shorter than Content-Length")
        ctype = self.headers.get("Content-Type", "")
        if require_json or ctype:
            _check_content_type(ctype)
        return parse_json_body(raw)

    def _base_url(self):
        host = self.headers.get("Host")
        if not host:
            host = "%s:%d" % (self.server.platform.host, self.server.platform.port)
        scheme = "https" if self.server.platform.ssl_context is not None else "http"
        return "%s://%s" % (scheme, host)

    def _bearer(self):
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    # -- routing ----------------------------------------------------------------------------------
    def _route(self, method):
        parts = urlsplit(self.path)
        if not self.server.admin:
            self._api(method, parts.path)  # /admin/... is no endpoint here: 404 like any unknown path
        elif not self._admin_allowed():
            self.close_connection = True
            self._send(401, {"responseCode": "401", "responseMessage": "admin endpoints need Authorization: "
                                                                       "Bearer <admin token>"})
        else:
            self._admin(method, parts.path, parse_qs(parts.query))

    def _admin_allowed(self):
        token = self._bearer()
        want = self.server.platform.admin_token
        return token is not None and want is not None and hmac.compare_digest(token.encode(), want.encode())

    def _api(self, method, path):
        platform = self.server.platform
        faults = platform.faults
        generation, mode, params = faults.snapshot()
        if mode == "down":
            faults.count_hit(mode)
            self._abort()
            return
        try:
            if method != "POST":
                raise RequestError(405, "use POST")
            body = self._read_body()
            parse_error = None
        except RequestError as exc:
            body, parse_error = None, exc
        response = None
        while True:
            if mode == "slow":
                faults.count_hit(mode)
                faults.pause(params["delay_s"])
            if faults.closing:
                self._abort()
                return
            if response is None and (mode not in NO_ANSWER_MODES or params["store_first"]):
                if parse_error is not None:
                    response = (parse_error.status,
                                {"responseCode": str(parse_error.status), "responseMessage": parse_error.message})
                else:
                    response = self._handle_api(path, body, params["data_code"] if mode == "reject_code" else ())
                    if mode == "register_partial" and path == "/api/register":
                        faults.count_hit(mode)
                        response = (response[0], {k: v for k, v in response[1].items() if k not in params["drop"]})
                    if mode == "redirect" and path == "/api/register" and response[0] == 200:
                        faults.count_hit(mode)
                        response = (response[0], redirected(response[1], params))
            if mode not in NO_ANSWER_MODES:
                break
            faults.count_hit(mode)
            platform._log("platform: fault %s on %s" % (mode, path))
            if mode == "http500":
                self.close_connection = True
                self._send(500, {"responseCode": "500", "responseMessage": "internal server error (fault switch)"})
                return
            if mode == "reset":
                self._abort()
                return
            # hang: wait for the switch to move, then carry on under the new mode
            if not faults.wait_change(generation, params["max_s"]):
                self._drop()
                return
            generation, mode, params = faults.snapshot()
        self._send(*response)

    def _handle_api(self, path, body, rejects):
        platform = self.server.platform
        try:
            return platform.service.handle(path, body, self._base_url(), self._bearer(), rejects)
        except Exception:
            # A bug in the platform must be visible to the test that hit it, not look like a fault.
            platform.service.count_internal_error()
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            return 500, {"responseCode": "500", "responseMessage": "reference platform internal error"}

    def _admin(self, method, path, query):
        platform = self.server.platform
        try:
            if path == "/admin/fault" and method == "POST":
                body = self._read_body(require_json=False)
                mode = body.pop("mode", None)
                if not isinstance(mode, str):
                    raise RequestError(400, "mode required")
                try:
                    state = platform.set_fault(mode, **body)
                except (TypeError, ValueError) as exc:
                    raise RequestError(400, str(exc)) from None
                self._send(200, {"responseCode": "0", "responseMessage": "ok", "fault": state})
            elif path == "/admin/fault" and method == "GET":
                self._send(200, platform.faults.state())
            elif path == "/admin/records" and method == "GET":
                ent = query.get("enterpriseCode", [None])[0]
                code = query.get("dataCode", [None])[0]
                self._send(200, platform.records(enterprise_code=ent, data_code=code))
            elif path == "/admin/stats" and method == "GET":
                self._send(200, platform.stats())
            elif path == "/admin/devices" and method == "GET":
                self._send(200, platform.devices())
            elif path == "/admin/clear" and method == "POST":
                body = self._read_body(require_json=False)
                platform.clear(devices=bool(body.get("devices", False)))
                self._send(200, {"responseCode": "0", "responseMessage": "ok"})
            else:
                raise RequestError(404, "no such admin endpoint %s %s" % (method, path))
        except RequestError as exc:
            self._send(exc.status, {"responseCode": str(exc.status), "responseMessage": exc.message})


def _check_content_type(ctype):
    fields = [f.strip().lower() for f in ctype.split(";")]
    if fields[0] != "application/json":
        raise RequestError(400, "Content-Type must be application/json, got %r" % ctype)
    for param in fields[1:]:
        if param.startswith("charset=") and param[8:].strip('"') not in ("utf-8", "utf8"):
            raise RequestError(400, "charset must be UTF-8, got %r" % ctype)


class RefPlatform:
    """The reference platform, in-process: ``with RefPlatform(...) as p: ... p.url ...``.

    Arguments (all keyword-friendly):
      db_path            SQLite file, or ":memory:" (default)
      host, port         listen address; port 0 picks a free port (see .port / .url)
      period_s           real-time period statDate must align to (default 900; divides a day, whole minutes)
      valid_encoding     "json" (true/false), "shandong" ("0" valid), "yunnan" ("1" valid)
      variant            "plain", "mtls", "sm4-ecb", "sm4-cbc-token" (see variants.py)
      upload_time        daily slot returned at registration
      success_code       responseCode of a success (default "0"; Yunnan answers 200)
      certfile, keyfile  serve HTTPS with this certificate
      client_ca          CA file for client certificates (required by, and only with, variant "mtls")
      pin, token_ttl_s   Yunnan password PIN and token lifetime (variant "sm4-cbc-token")
      hang_s             default max_s of the "hang" fault
      future_tolerance_s how far statDate/uploadDate may lie ahead of server time
      max_batch          reject batches with more records (default: no limit)
      clock              callable returning POSIX seconds (default time.time); sets "server time"
      log                callable(str) for one-line event reports (default: silent)
      reg_version, dic_version  returned by /api/dicVersion
      coefficients       {energy code: kgce per unit} served by /api/centerInfoDownload as
                         data: [{"energyCode", "convertRation"}] (our reading of Yunnan's convertRation)
      admin_port         serve the admin endpoints on this port (0 = any free; see .admin_url); None
                         (default): no admin endpoints over HTTP
      admin_host         their listen address (default 127.0.0.1)
      admin_token        the Bearer token they ask for (default: a random one, .admin_token)
      max_workers        connections served at once (default MAX_WORKERS)
      request_timeout_s  time for one whole request to arrive (default REQUEST_TIMEOUT_S)

    Methods: start(), close() (or use as a context manager), set_fault(mode, **params), fault (property),
    records(enterprise_code=None, data_code=None), devices(), stats(), clear(devices=False),
    expire_tokens(), tokens_issued(); properties url and port (the real port once started), admin_url,
    admin_token.
    """

    def __init__(self, db_path=":memory:", host="127.0.0.1", port=0, period_s=900, valid_encoding="json",
                 variant="plain", upload_time="01:38:00", success_code="0", certfile=None, keyfile=None,
                 client_ca=None, pin="123456", token_ttl_s=3600, hang_s=60.0, future_tolerance_s=300,
                 max_batch=None, clock=None, log=None, reg_version="1", dic_version="1", coefficients=None,
                 admin_port=None, admin_host="127.0.0.1", admin_token=None, max_workers=None,
                 request_timeout_s=None):
        if variant not in VARIANTS:
            raise ValueError("unknown variant %r (one of %s)" % (variant, ", ".join(VARIANTS)))
        if valid_encoding not in v.VALID_ENCODINGS:
            raise ValueError("unknown valid encoding %r (one of %s)" % (valid_encoding, ", ".join(v.VALID_ENCODINGS)))
        if not (isinstance(period_s, int) and period_s > 0 and period_s % 60 == 0 and 86400 % period_s == 0):
            raise ValueError("period_s must be whole minutes that divide a day, got %r" % (period_s,))
        if (variant == "mtls") != (client_ca is not None):
            raise ValueError("variant 'mtls' needs client_ca, and client_ca needs variant 'mtls'")
        if client_ca is not None and certfile is None:
            raise ValueError("mutual TLS needs certfile/keyfile too")
        self.host = host
        self._requested_port = port
        self.variant = variant
        self._log_fn = log
        self._log_lock = threading.Lock()
        self.ssl_context = None
        if certfile is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            if client_ca is not None:
                ctx.load_verify_locations(client_ca)
                ctx.verify_mode = ssl.CERT_REQUIRED
            self.ssl_context = ctx
        self.faults = FaultSwitch(hang_s)
        self.store = Store(db_path)
        self.service = Service(
            self.store, variant=variant, period_s=period_s, valid_encoding=valid_encoding,
            upload_time=upload_time, success_code=success_code, reg_version=reg_version,
            dic_version=dic_version, pin=pin, token_ttl_s=token_ttl_s,
            future_tolerance_s=future_tolerance_s, max_batch=max_batch, clock=clock, log=self._log,
            coefficients=coefficients)
        self._server = None
        self._thread = None
        self._tls_failures = 0
        self._busy_refusals = 0
        self._started_at = None
        # Read when the platform is made, so a test can lower the module's bounds for one platform.
        self._max_workers = MAX_WORKERS if max_workers is None else max_workers
        self._request_timeout_s = REQUEST_TIMEOUT_S if request_timeout_s is None else request_timeout_s
        self._admin_address = None if admin_port is None else (admin_host, admin_port)
        self.admin_token = None
        if admin_port is not None:
            self.admin_token = admin_token or secrets.token_urlsafe(24)
        self._admin_server = None
        self._admin_thread = None

    # -- life cycle -------------------------------------------------------------------------------
    def start(self):
        if self._server is not None:
            return self
        bounds = {"max_workers": self._max_workers, "request_timeout_s": self._request_timeout_s}
        self._server = _Server((self.host, self._requested_port), self, **bounds)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="refplatform", daemon=True)
        self._thread.start()
        if self._admin_address is not None:
            self._admin_server = _Server(self._admin_address, self, admin=True, **bounds)
            self._admin_thread = threading.Thread(target=self._admin_server.serve_forever,
                                                  kwargs={"poll_interval": 0.02}, name="refplatform-admin",
                                                  daemon=True)
            self._admin_thread.start()
        self._started_at = time.time()
        return self

    def close(self):
        """Stop serving: release hung requests, close every connection, close the database."""
        if self._server is None:
            return
        self.faults.close()
        servers = [(self._server, self._thread)]
        if self._admin_server is not None:
            servers.append((self._admin_server, self._admin_thread))
        for server, _thread in servers:
            server.shutdown()
            server.server_close()
        for server, thread in servers:
            for worker in server.close_connections():
                worker.join(5.0)
            thread.join(5.0)
        self._server = self._admin_server = None
        self.store.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @property
    def port(self):
        return self._server.server_address[1] if self._server else self._requested_port

    @property
    def url(self):
        """Base URL, e.g. http://127.0.0.1:8080 (register at url + "/api/register")."""
        scheme = "https" if self.ssl_context is not None else "http"
        host = self.host if self.host not in ("", "0.0.0.0") else "127.0.0.1"
        return "%s://%s:%d" % (scheme, host, self.port)

    @property
    def admin_url(self):
        """Base URL of the admin endpoints (plain HTTP), or None when they are off."""
        if self._admin_server is None:
            return None
        host, port = self._admin_server.server_address[:2]
        return "http://%s:%d" % ("127.0.0.1" if host in ("", "0.0.0.0") else host, port)

    # -- test-facing API --------------------------------------------------------------------------
    def set_fault(self, mode, **params):
        """Switch the fault mode (see faults.py); returns the new state dict."""
        state = self.faults.set(mode, **params)
        self._log("platform: fault mode now %s" % json.dumps(state, sort_keys=True))
        return state

    @property
    def fault(self):
        return self.faults.state()

    def records(self, enterprise_code=None, data_code=None):
        return self.store.records(enterprise_code=enterprise_code, data_code=data_code)

    def devices(self):
        return self.store.devices()

    def center_infos(self):
        """Bodies posted to centerInfoURL (a gateway's notices), oldest first, with receivedAt."""
        return self.store.center_infos()

    def stats(self):
        out = self.service.counters()
        counts = self.store.counts()
        out.update(keys=counts["keys"], duplicates=counts["repeats"], devices=counts["devices"],
                   fault=self.faults.state(), faultHits=self.faults.hit_counts(),
                   tlsFailures=self._tls_failures, busyRefusals=self._busy_refusals)
        return out

    def clear(self, devices=False):
        self.store.clear(devices=devices)

    def expire_tokens(self):
        """Forget every issued bearer token (the next data call gets 401)."""
        self.service.tokens.expire_all()

    def tokens_issued(self):
        """Every bearer token this platform has issued, expired ones too (for tests that look for them
        where they must not be)."""
        return self.service.tokens.issued()

    def _count_tls_failure(self):
        with self._log_lock:
            self._tls_failures += 1

    def _count_busy(self):
        with self._log_lock:
            self._busy_refusals += 1

    def _log(self, line):
        if self._log_fn is not None:
            with self._log_lock:
                self._log_fn(line)
