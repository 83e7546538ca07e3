"""What the NDRC JSON profile (nengjian.uplink.ndrc) and its session steps (nengjian.uplink.session)
both need of the wire: the security names, the content type, the early-exit exception, and how an
answer is parsed and quoted. A module of its own so that the session steps, loaded only while they
run, need not import ndrc back (an import circle)."""

import json

from nengjian.net import http

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
