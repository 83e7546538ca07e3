"""Run-time fault switch of the reference platform (for the gateway's uplink tests).

Owns the current fault mode, its parameters and the waiting primitives the HTTP handler uses. Modes
(parameters with defaults):

- ``ok``                               answer normally
- ``http500``  store_first=False       answer HTTP 500
- ``hang``     max_s=<hang_s, 60>, store_first=False
                                       read the request and never answer, until the mode changes
                                       (then the request proceeds under the new mode) or max_s
                                       passes (then the connection is closed without an answer)
- ``reset``    store_first=False       read the request, then reset the TCP connection (RST)
- ``slow``     delay_s=5.0             wait delay_s, then answer normally
- ``reject_code`` data_code=<str or list, required>
                                       every record with one of these dataCodes is reported invalid
- ``down``                             reset each API connection as soon as its request line is read
- ``register_partial`` drop=["centerDataURL"]
                                       a registration succeeds, but its answer lacks these fields (the
                                       rest, secretKey included, is there): a platform's broken answer
- ``redirect`` url=<str, required>, fields=["centerDataURL"]
                                       a hostile or compromised platform: the register answer points
                                       these service URLs at ``url`` (scheme://host[:port]) + their path

``store_first=True`` makes the platform process (and store) the request before failing to answer:
the "acknowledgement lost" case that must not create duplicates. Admin endpoints never fail.
"""

import threading
from urllib.parse import urlsplit

FAULT_MODES = ("ok", "http500", "hang", "reset", "slow", "reject_code", "down", "register_partial", "redirect")
SERVICE_URLS = ("centerDataURL", "loadDicVersionURL", "tokenURL", "centerInfoURL", "centerInfoDownloadURL")
NO_ANSWER_MODES = ("http500", "hang", "reset")

_PARAMS = {
    "ok": {},
    "http500": {"store_first": False},
    "hang": {"max_s": None, "store_first": False},
    "reset": {"store_first": False},
    "slow": {"delay_s": 5.0},
    "reject_code": {"data_code": None},
    "down": {},
    "register_partial": {"drop": None},
    "redirect": {"url": None, "fields": ["centerDataURL"]},
}


class FaultSwitch:
    def __init__(self, hang_s=60.0):
        self._cond = threading.Condition()
        self._hang_s = float(hang_s)
        self._generation = 0
        self._closing = False
        self._mode = "ok"
        self._params = {}
        self.hits = {}

    def set(self, mode, **params):
        """Switch to `mode`; ValueError on an unknown mode or a bad parameter. Returns the new state."""
        if mode not in _PARAMS:
            raise ValueError("unknown fault mode %r (one of %s)" % (mode, ", ".join(FAULT_MODES)))
        unknown = sorted(set(params) - set(_PARAMS[mode]))
        if unknown:
            raise ValueError("fault mode %s takes no parameter %s" % (mode, ", ".join(unknown)))
        full = dict(_PARAMS[mode])
        full.update(params)
        if "store_first" in full and not isinstance(full["store_first"], bool):
            raise ValueError("store_first must be true or false")
        if mode == "hang":
            full["max_s"] = self._hang_s if full["max_s"] is None else full["max_s"]
            _check_seconds("max_s", full["max_s"], positive=True)
        if mode == "slow":
            _check_seconds("delay_s", full["delay_s"], positive=False)
        if mode == "reject_code":
            codes = full["data_code"]
            if isinstance(codes, str):
                codes = [codes]
            if not (isinstance(codes, (list, tuple)) and codes and all(isinstance(c, str) for c in codes)):
                raise ValueError("reject_code needs data_code: a dataCode string or a list of them")
            full["data_code"] = list(codes)
        if mode == "register_partial":
            drop = ["centerDataURL"] if full["drop"] is None else full["drop"]
            if isinstance(drop, str):
                drop = [drop]
            if not (isinstance(drop, (list, tuple)) and drop and all(isinstance(f, str) for f in drop)):
                raise ValueError("register_partial needs drop: a field name or a list of them")
            full["drop"] = list(drop)
        if mode == "redirect":
            if not isinstance(full["url"], str) or not full["url"]:
                raise ValueError("redirect needs url: where the register answer should point the service URLs")
            fields = full["fields"]
            if not (isinstance(fields, (list, tuple)) and fields and all(f in SERVICE_URLS for f in fields)):
                raise ValueError("redirect fields: a list of %s" % ", ".join(SERVICE_URLS))
            full["fields"] = list(fields)
        with self._cond:
            self._mode, self._params = mode, full
            self._generation += 1
            self._cond.notify_all()
        return self.state()

    def state(self):
        """{"mode": ..., **params} — also what GET /admin/fault returns."""
        with self._cond:
            return dict(self._params, mode=self._mode)

    def snapshot(self):
        """(generation, mode, params) read atomically."""
        with self._cond:
            return self._generation, self._mode, dict(self._params)

    def count_hit(self, mode):
        with self._cond:
            self.hits[mode] = self.hits.get(mode, 0) + 1

    def hit_counts(self):
        with self._cond:
            return dict(self.hits)

    def wait_change(self, generation, timeout):
        """Block until the mode changes after `generation` or the platform closes; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._closing or self._generation != generation, timeout=timeout)

    def pause(self, seconds):
        """Sleep `seconds` unless the platform closes first."""
        with self._cond:
            self._cond.wait_for(lambda: self._closing, timeout=seconds)

    @property
    def closing(self):
        return self._closing

    def close(self):
        with self._cond:
            self._closing = True
            self._cond.notify_all()


def redirected(reply, params):
    """A register answer with the service URLs `params["fields"]` moved to `params["url"]` + their path
    (a URL the answer does not carry is added)."""
    out = dict(reply)
    for field in params["fields"]:
        old = out.get(field)
        path = urlsplit(old).path if old else "/api/" + field
        out[field] = params["url"].rstrip("/") + path
    return out


def _check_seconds(name, value, positive):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("%s must be a number of seconds" % name)
    if value < 0 or (positive and value == 0):
        raise ValueError("%s must be %s" % (name, "positive" if positive else "zero or more"))
