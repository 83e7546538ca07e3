"""The info channel of a destination (firmware/nengjian/uplink/centerinfo.py): notices out to
centerInfoURL, coefficients in from centerInfoDownloadURL, and never in the way of the data.
CPython with a scripted HTTP layer here; tests/e2e/test_info_channel.py runs it on the sim board."""

import asyncio
import calendar
import json

from nengjian.uplink import centerinfo, ndrc

ENT = {"code": "91330000573973053F", "region": "441900"}
DEVICE = "0ef6ecea08bf84c7b639c3e9b84ed546"
SESSION = {"enterpriseCode": ENT["code"], "region": ENT["region"], "registerURL": "http://p/api/register",
           "deviceId": DEVICE, "centerDataURL": "http://p/api/data", "loadDicVersionURL": None,
           "centerInfoURL": "http://p/api/centerInfo", "centerInfoDownloadURL": "http://p/api/centerInfoDownload"}


class Http:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    async def request(self, method, url, body=b"", headers=None, timeout_ms=15000, ssl=None, max_body=16384,
                      length=None, buf=None):
        self.calls.append((url.rsplit("/", 1)[-1], json.loads(bytes(body))))
        status, payload = self.answers.pop(0)
        return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def profile(tmp_path, session=SESSION):
    (tmp_path / "session-city.json").write_text(json.dumps(session))
    return ndrc.NdrcJson({"name": "city", "profile": "ndrc-json", "url": "http://p/api/register"}, ENT,
                         str(tmp_path))


def channel(tmp_path, monkeypatch, answers, session=SESSION, **kw):
    http = Http(answers)
    monkeypatch.setattr(ndrc.http, "request", http.request)
    events, coeffs = [], []
    ch = centerinfo.CenterInfo(profile(tmp_path, session), kw.pop("notices", ("alarm", "heartbeat")),
                               kw.pop("coefficients", False), lambda c, r: coeffs.append((c, r)),
                               lambda k, t, c=None: events.append((k, t)))
    return ch, http, events, coeffs


def step(ch):
    return asyncio.run(ch.step())


SINCE = calendar.timegm((2026, 11, 21, 1, 0, 0))  # 09:00 CST
RAISED = {"kind": "raised", "code": "01-00-0000-023300-11", "level": "alarm", "since": SINCE,
          "at": SINCE + 3 * 86400 + 1800}


def test_an_alarm_goes_out_with_its_gap_and_cst_times(tmp_path, monkeypatch):
    ch, http, events, _ = channel(tmp_path, monkeypatch, [(200, {"responseCode": "0"})])
    ch.alarm(RAISED)
    assert ch.due() and step(ch).kind == ndrc.OK and not ch.queue
    name, body = http.calls[0]
    assert name == "centerInfo"
    assert body == {"deviceId": DEVICE, "enterpriseCode": ENT["code"], "infoType": "alarm",
                    "infoTime": "2026-11-24 09:30:00",
                    "info": {"dataCode": RAISED["code"], "level": "alarm", "state": "raised",
                             "lastValid": "2026-11-21 09:00:00", "gapHours": 72}}
    assert ch.stats["sent"] == 1 and not events


def test_only_the_newest_heartbeat_waits_and_kinds_not_chosen_are_never_queued(tmp_path, monkeypatch):
    ch, http, _, _ = channel(tmp_path, monkeypatch, [], notices=("heartbeat",))
    ch.alarm(RAISED)
    ch.heartbeat({"uptime_s": 60})
    ch.heartbeat({"uptime_s": 120})
    assert [(k, info) for k, info, _ in ch.queue] == [("heartbeat", {"uptime_s": 120})]


def test_a_platform_error_keeps_the_notice_and_holds_the_channel(tmp_path, monkeypatch):
    ch, http, _, _ = channel(tmp_path, monkeypatch, [(503, b"busy")])
    ch.alarm(RAISED)
    r = step(ch)
    assert r.kind == ndrc.RETRY and "503" in r.reason
    assert len(ch.queue) == 1 and not ch.due()  # held: the data go on at their own pace


def test_a_platform_without_the_endpoint_gets_it_once_and_the_ledger_says_so(tmp_path, monkeypatch):
    ch, http, events, _ = channel(tmp_path, monkeypatch, [(404, b"<html>not found</html>")])
    ch.alarm(RAISED)
    assert step(ch).kind == ndrc.OK and not ch.queue
    assert events and "refused, not resent" in events[0][1] and "404" in events[0][1]


def test_no_info_url_drops_the_queue_with_one_event(tmp_path, monkeypatch):
    ch, http, events, _ = channel(tmp_path, monkeypatch, [], session=dict(SESSION, centerInfoURL=None))
    ch.alarm(RAISED)
    ch.heartbeat({"uptime_s": 1})
    assert step(ch).kind == ndrc.OK and not ch.queue and not http.calls
    assert len(events) == 1 and "no centerInfoURL" in events[0][1]


def test_a_session_from_older_firmware_registers_again(tmp_path, monkeypatch):
    old = {k: v for k, v in SESSION.items() if not k.startswith("centerInfo")}
    ch, http, _, _ = channel(tmp_path, monkeypatch, [], session=old)
    ch.alarm(RAISED)
    assert step(ch).kind == ndrc.RETRY and ch.profile.session is None and not http.calls


def test_coefficients_are_read_once_per_session_and_bad_entries_skipped(tmp_path, monkeypatch):
    data = [{"energyCode": "3300", "convertRation": 0.1229}, {"energyCode": "1500", "convertRation": "1.2143"},
            {"energyCode": "33", "convertRation": 1}, {"energyCode": "0100", "convertRation": True}, "junk"]
    ch, http, _, coeffs = channel(tmp_path, monkeypatch, [(200, {"responseCode": "0", "data": data})],
                                  notices=(), coefficients=True)
    assert ch.due() and step(ch).kind == ndrc.OK
    assert http.calls == [("centerInfoDownload", {"deviceId": DEVICE})]
    assert coeffs == [("3300", 0.1229), ("1500", "1.2143")]
    assert not ch.due()  # once per session


def test_a_failed_coefficient_download_is_tried_again_later(tmp_path, monkeypatch):
    ch, http, _, coeffs = channel(tmp_path, monkeypatch, [(200, {"responseCode": "9", "responseMessage": "later"})],
                                  notices=(), coefficients=True)
    r = step(ch)
    assert r.kind == ndrc.RETRY and "later" in r.reason and not coeffs
    ch._hold = None
    assert ch.due()


def test_a_dead_connection_keeps_the_notice_and_holds_the_channel(tmp_path, monkeypatch):
    ch, _http, _events, _ = channel(tmp_path, monkeypatch, [])

    async def refused(*a, **kw):
        raise ndrc.http.HttpError("connect: ECONNREFUSED")

    monkeypatch.setattr(ndrc.http, "request", refused)
    ch.alarm(RAISED)
    r = step(ch)
    assert r.kind == ndrc.RETRY and "ECONNREFUSED" in r.reason
    assert len(ch.queue) == 1 and not ch.due()
