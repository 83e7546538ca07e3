"""What a platform's answer may make the gateway do, and what of an answer may be quoted.

Owns the redirect rule for the service URLs a register answer gives (`check_urls`): https - or http
on a destination the site itself configured as plain http - on the destination's own host or one of
the hosts its `hosts` option names; and the masking of secrets in quoted answers (`redact`): the
value of each JSON member named like a secret (secretKey, token, password, pin, ...) becomes "***",
also in an answer cut short.

Apart from nengjian.uplink.ndrc, and imported only when needed, because a gateway whose platform
behaves needs neither for long: the URL rule runs at a registration and when a session is taken
from flash (ndrc drops the module again after), redaction only when an answer is quoted.
"""

from nengjian.net import http

# The service URLs of a register answer; centerDataURL is the one a session cannot do without.
URL_FIELDS = ("centerDataURL", "loadDicVersionURL", "tokenURL", "centerInfoURL", "centerInfoDownloadURL")
# How a member's name ends (lower case) when its value is a secret.
SECRET_NAMES = ("key", "secret", "token", "password", "passwd", "pwd", "pin")


def refusal(url, dest_url, hosts):
    """Why a service URL from the platform may not be used by the destination at `dest_url`, whose
    allowed hosts (lower case) are `hosts`; None when it may."""
    if not isinstance(url, str):
        return "not a URL"
    for ch in url:
        if ch <= " " or ch > "~":
            return "spaces or control characters in it"
    if url.startswith("http://") and dest_url.startswith("https://"):
        return "plain http for an https destination: refusing to send in the clear"
    if not (url.startswith("https://") or url.startswith("http://")):
        return "not https"
    try:
        host = http.split_url(url)[1].lower()  # the parser the request itself connects with
    except ValueError:
        return "not a URL"
    for ch in host:
        if not (ch.isalpha() or ch.isdigit() or ch in ".-"):
            return "not a plain host name"
    if host not in hosts:
        return "host %s is neither the destination's nor one of its hosts" % host
    return None


def check_urls(ans, into, dest_url, hosts, refuse):
    """Copies the service URLs of `ans` into the session `into` (into may be ans), each refused one as
    None after refuse(field, origin, why); the reason centerDataURL was refused, or None."""
    data_refused = None
    for field in URL_FIELDS:
        url = ans.get(field)
        why = refusal(url, dest_url, hosts) if url else None
        if why:
            o = origin(url)
            refuse(field, o, why)
            if field == "centerDataURL":
                data_refused = "%s %s refused: %s" % (field, o, why)
            into[field] = None
        elif into is not ans:
            into[field] = url or None
    return data_refused


def origin(url):
    """scheme://host[:port] of a URL, printable and short: what the ledger may quote of a refused one
    (a path could carry anything)."""
    if not isinstance(url, str):
        return "(not a string)"
    end = url.find("/", url.find("://") + 3) if "://" in url else -1
    text = url if end < 0 else url[:end]
    return "".join(ch if " " < ch <= "~" else "?" for ch in text[:80])


def _string_end(text, i):
    """Index of the quote that closes the JSON string whose text starts at i, or -1."""
    while True:
        e = text.find('"', i)
        if e < 0:
            return -1
        b = e
        while b > i and text[b - 1] == "\\":
            b -= 1
        if (e - b) % 2 == 0:
            return e
        i = e + 1


def redact(text):
    """JSON text (whole or cut short) with the value of each member named like a secret as "***";
    a text cut inside such a value loses the rest of it."""
    out = []
    i = 0
    n = len(text)
    while True:
        q = text.find('"', i)
        e = _string_end(text, q + 1) if q >= 0 else -1
        if e < 0:
            break
        j = e + 1
        while j < n and text[j] == " ":
            j += 1
        if j < n and text[j] == ":" and text[q + 1:e].lower().endswith(SECRET_NAMES):
            j += 1
            while j < n and text[j] == " ":
                j += 1
            out.append(text[i:j])
            out.append('"***"')
            if j < n and text[j] == '"':
                k = _string_end(text, j + 1)
                i = n if k < 0 else k + 1
            else:
                while j < n and text[j] not in ",}]":
                    j += 1
                i = j
            continue
        out.append(text[i:e + 1])
        i = e + 1
    out.append(text[i:])
    return "".join(out)
