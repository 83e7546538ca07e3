"""What one exchange with a platform came to: the Result a profile returns and delivery acts on.

Result.kind:
  OK             the platform acknowledged the batch
  REJECTED       Result.rejected lists (index, reason) of records refused for good; nothing else of the
                 batch was taken: resend the rest
  RETRY          anything else; Result.reason says why (the platform's words when it answered)
  OUT_OF_MEMORY  the batch did not fit the heap while it was encoded or sent: a local condition,
                 not the platform's (delivery retries at once with a smaller batch)
  UNANSWERED     the batch went out whole, but the heap had no room left to read or judge the
                 platform's answer: it may have been stored (delivery collects and resends the same
                 batch at once; a resend after a lost acknowledgement is harmless, SPEC 3.4)

Also what the NDRC JSON profile (nengjian.uplink.ndrc) and its session steps (nengjian.uplink.session)
both need of the wire: the security names, the content type, the early-exit exception, and how an
answer is parsed and quoted. Here, not in ndrc, so that the session steps, loaded only while they
run, need not import ndrc back (an import circle); in this module rather than one of their own,
since every gateway with a destination loads both (a module costs heap of its own).
"""

import json

from nengjian.core.compat import const
from nengjian.net import http

OK = const(0)
REJECTED = const(1)
RETRY = const(2)
OUT_OF_MEMORY = const(3)
UNANSWERED = const(4)


class Result:
    __slots__ = ("kind", "reason", "rejected")

    def __init__(self, kind, reason="", rejected=None):
        self.kind = kind
        self.reason = reason
        self.rejected = rejected or []  # (index in batch, reason)


# ---- the NDRC JSON wire (ndrc and session)
SM4_ECB = "sm4-ecb"
TOKEN = "sm4-cbc-token"
CONTENT_TYPE = "application/json;charset=UTF-8"
TOKEN_MARGIN_S = 60  # renew a token this long before the platform says it runs out
BODY_SHOWN = 200  # bytes of an answer quoted in a reason


class Stop(Exception):
    """Ends an exchange early with the Result in args[0] (a session to make again, TLS set-up)."""


def _parse(data):
    try:
        http.check_json(data)  # json.loads itself fails with MemoryError on a hostile nesting
        ans = json.loads(data)
    except (ValueError, TypeError, http.HttpError):
        return None
    return ans if isinstance(ans, dict) else None


def _excerpt(data, n=BODY_SHOWN):
    """The first n bytes of an answer, for a reason or the log, with secret members masked."""
    if not data:
        return "(empty body)"
    from nengjian.uplink.guard import redact

    b = bytes(data[:n])
    try:
        text = b.decode()
    except UnicodeError:
        return redact(repr(b))
    text = " ".join(text.split())
    return redact(text) + (" ..." if len(data) > n else "")
