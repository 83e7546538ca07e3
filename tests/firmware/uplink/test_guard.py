"""nengjian.uplink.guard: the redirect rule for a register answer's service URLs and the masking of
secrets in quoted answers, on CPython and on MicroPython (ndrc's tests drive both through the profile)."""

import json

import pytest
from mpyrun import run_mpy
from nengjian.uplink import guard

REDACTED = [
    ('{"a": "1", "secretKey": "abc", "Token":7, "pin" : "12\\"34", "b": "key"}',
     '{"a": "1", "secretKey": "***", "Token":"***", "pin" : "***", "b": "key"}'),
    ('{"password": "abc', '{"password": "***"'),  # cut inside the value
    ('{"responseMessage": "secretKey: x"}', '{"responseMessage": "secretKey: x"}'),  # a value, not a name
    ('{"sm4Key":"00ff","ok":true,"accessToken":"t"}', '{"sm4Key":"***","ok":true,"accessToken":"***"}'),
]

URLS = [
    ("https://p/api/data", None),
    ("https://P:8443/api/data", None),  # the destination's host on another port
    ("https://data.example/x", None),
    ("http://p/api/data", "plain http for an https destination"),
    ("https://evil.example/x", "host evil.example is neither"),
    ("https://p@evil.example/x", "not a plain host name"),
    ("https://p/x y", "spaces or control characters"),
    ("https://p:x/", "not a URL"),
    ("gopher://p/", "not https"),
]


def test_redaction_and_the_url_rule_on_micropython():
    code = """
import json
from nengjian.uplink import guard
texts = json.loads(%r)
urls = json.loads(%r)
print(json.dumps([[guard.redact(t) for t in texts], [guard.refusal(u, "https://p/api/register", ["p", "data.example"])
                                                     for u in urls]]))
""" % (json.dumps([t for t, _ in REDACTED]), json.dumps([u for u, _ in URLS]))
    redacted, refusals = json.loads(run_mpy(code).stdout.strip().splitlines()[-1])
    assert redacted == [want for _, want in REDACTED]
    for (url, want), got in zip(URLS, refusals):
        assert (got is None) if want is None else (got is not None and want in got), (url, got)


@pytest.mark.parametrize("text,want", REDACTED)
def test_redaction(text, want):
    assert guard.redact(text) == want


def test_check_urls_copies_the_allowed_and_reports_the_refused():
    refused = []
    ans = {"centerDataURL": "https://p/d", "centerInfoURL": "https://evil.example/secret/path?k=1", "tokenURL": None}
    into = {}
    why = guard.check_urls(ans, into, "https://p/r", ["p"], lambda *a: refused.append(a))
    assert why is None and into == {"centerDataURL": "https://p/d", "loadDicVersionURL": None, "tokenURL": None,
                                    "centerInfoURL": None, "centerInfoDownloadURL": None}
    assert refused == [("centerInfoURL", "https://evil.example", "host evil.example is neither the destination's "
                                                                 "nor one of its hosts")]
    why = guard.check_urls({"centerDataURL": "https://evil.example/d"}, {}, "https://p/r", ["p"], lambda *a: None)
    assert why.startswith("centerDataURL https://evil.example refused: host evil.example")
