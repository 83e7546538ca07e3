"""Updates fetched over the uplink (firmware/nengjian/ota/fetch.py): the offer exchange, the download
left for the check at the restart, a version refused there not downloaded again, nothing fetched
while a version is on trial, nothing older than the minimum unless offered as a signed downgrade,
nothing over plain http unless ota.insecure says so, and a download never longer than the offer's
size or than the volume can take beside its reserve. CPython with scripted HTTP and a stand-in
updater (the real one's rules); tests/e2e/test_ota_sim.py runs the real thing on the sim board."""

import asyncio
import json
import os

import pytest
from nengjian import ota
from nengjian.ota import fetch as otafetch
from nengjian.ota import updater as otaupdater


class Updater(otaupdater.Updater):
    """The real updater's rules (trial, minimum) over a pointer held here; files in /tmp."""

    def __init__(self, refused=None, running="0.1.0", min_version=None):
        self.refused = refused
        self.deferred = []
        self.sizes = []
        self.running = running
        self.max_boots = 2
        self.p = {"active": "", "state": "confirmed"}
        if min_version:
            self.p["min_version"] = min_version

    @property
    def trial(self):
        return self.p["state"] == "trial"

    @trial.setter
    def trial(self, on):
        self.p.update(state="trial" if on else "confirmed", version="0.2.0", boots=1)

    def state(self):
        return self.p

    def incoming(self, size):
        self.sizes.append(size)
        return "/tmp/nj-otafetch-test-%d.njota" % os.getpid()

    def defer(self, path, version=None):
        self.deferred.append((path, version))

    def discard(self, path):
        os.remove(path)

    def take_refused(self):
        version, self.refused = self.refused, None
        return version

    def on_trial(self):
        return self.trial


def fetcher(monkeypatch, answers, updater, url="http://upd:8080/offer", insecure=True, ssl=None):
    asked, downloaded, events, restarts = [], [], [], []

    async def request(method, url, body=b"", headers=None, timeout_ms=0, ssl=None, **kw):
        asked.append(url)
        status, doc = answers.pop(0)
        return status, json.dumps(doc).encode() if doc is not None else b""

    async def download(self, url, path, size):
        downloaded.append(url)
        open(path, "wb").close()
        return 0

    monkeypatch.setattr(otafetch.http, "request", request)
    monkeypatch.setattr(otafetch.OtaFetch, "download", download)
    f = otafetch.OtaFetch(updater, url, "0.1.0", "sim", lambda k, t: events.append(t),
                          restart=lambda: restarts.append(1), ssl=ssl, insecure=insecure)
    return f, asked, downloaded, events, restarts


OFFER = (200, {"version": "0.2.0", "url": "/bundles/b.njota", "size": 5000})


def test_an_offer_is_downloaded_and_left_for_the_check_at_the_restart(monkeypatch):
    updater = Updater()
    f, asked, downloaded, events, restarts = fetcher(monkeypatch, [OFFER], updater)
    assert asyncio.run(f.check()) is True
    assert asked == ["http://upd:8080/offer?board=sim&version=0.1.0"]
    assert downloaded == ["http://upd:8080/bundles/b.njota"] and restarts == [1]
    assert updater.deferred == [(updater.incoming(0), "0.2.0")] and os.path.exists(updater.incoming(0))
    os.remove(updater.incoming(0))
    assert events[-1] == "version 0.2.0 offered by the update server: downloading"


def test_a_failed_download_leaves_nothing_behind(monkeypatch):
    updater = Updater()
    f, _a, _d, _e, restarts = fetcher(monkeypatch, [OFFER], updater)

    async def broken(self, url, path, size):
        open(path, "wb").close()
        raise ota.OtaError("GET %s: HTTP 404" % url)

    monkeypatch.setattr(otafetch.OtaFetch, "download", broken)
    try:
        asyncio.run(f.check())
        raise AssertionError("expected OtaError")
    except ota.OtaError:
        pass
    assert not updater.deferred and not restarts and not os.path.exists(updater.incoming(0))


def test_nothing_offered_or_the_running_version_means_nothing_fetched(monkeypatch):
    f, asked, downloaded, _e, restarts = fetcher(monkeypatch, [(204, None), (200, {"version": "0.1.0", "url": "/x"})],
                                                 Updater())
    assert asyncio.run(f.check()) is False and asyncio.run(f.check()) is False
    assert len(asked) == 2 and not downloaded and not restarts


def test_a_version_refused_at_this_boot_is_not_downloaded_again(monkeypatch):
    """The check at boot refused it (nengjian.ota.install_pending): the fetcher takes that once."""
    f, asked, downloaded, _e, restarts = fetcher(monkeypatch, [OFFER, OFFER], Updater(refused="0.2.0"))
    assert f.refused == "0.2.0"
    assert asyncio.run(f.check()) is False and asyncio.run(f.check()) is False
    assert len(asked) == 2 and not downloaded and not restarts


def test_a_garbled_offer_is_an_error_not_a_download(monkeypatch):
    f, _a, downloaded, _e, _r = fetcher(monkeypatch, [(200, {"ver": 1})], Updater())
    try:
        asyncio.run(f.check())
        raise AssertionError("expected OtaError")
    except ota.OtaError as e:
        assert "not {version, url, size}" in str(e)
    assert not downloaded


def _run_for(f, seconds, link_up=None):
    async def main():
        task = asyncio.create_task(f.run(link_up))
        await asyncio.sleep(seconds)
        task.cancel()

    asyncio.run(main())


def _fast(monkeypatch):
    """Steps of milliseconds instead of seconds; the check period stays a day. CPython's asyncio
    gets MicroPython's sleep_ms."""
    monkeypatch.setattr(asyncio, "sleep_ms", lambda ms: asyncio.sleep(ms / 1000), raising=False)
    monkeypatch.setattr(otafetch, "FIRST_CHECK_MS", 1)
    monkeypatch.setattr(otafetch, "WAIT_MS", 5)
    monkeypatch.setattr(otafetch, "RETRY_MS", 20)


def test_a_check_skipped_while_the_link_is_down_happens_when_it_comes_back(monkeypatch):
    _fast(monkeypatch)
    f, asked, _d, _e, _r = fetcher(monkeypatch, [(204, None)], Updater())
    calls = []

    def link_up():
        calls.append(1)
        return len(calls) > 3  # down for the first three looks

    _run_for(f, 0.3, link_up)
    assert len(calls) >= 4 and len(asked) == 1  # checked once the link came back, not a day later


def test_nothing_is_asked_while_a_version_is_on_trial(monkeypatch):
    _fast(monkeypatch)
    updater = Updater()
    updater.trial = True
    f, asked, _d, _e, _r = fetcher(monkeypatch, [OFFER], updater)
    _run_for(f, 0.1, lambda: True)
    assert asked == []


def test_a_failed_check_is_tried_again_before_the_next_period(monkeypatch):
    _fast(monkeypatch)
    f, asked, _d, _e, _r = fetcher(monkeypatch, [(503, None), (204, None)], Updater())
    _run_for(f, 0.3, lambda: True)
    assert len(asked) == 2 and f.last_error == ""


def test_a_full_flash_when_handing_over_leaves_nothing_and_does_not_restart(monkeypatch):
    updater = Updater()

    def full(path, version=None):
        raise OSError(28, "ENOSPC")

    updater.defer = full
    f, _a, downloaded, _e, restarts = fetcher(monkeypatch, [OFFER], updater)
    try:
        asyncio.run(f.check())
        raise AssertionError("expected OSError")
    except OSError as e:
        assert e.args[0] == 28
    assert downloaded and not restarts and not os.path.exists(updater.incoming(0))


def _refused(coro):
    try:
        asyncio.run(coro)
    except ota.OtaError as e:
        return str(e)
    raise AssertionError("expected OtaError")


def test_nothing_is_asked_or_downloaded_on_a_direct_check_during_a_trial(monkeypatch):
    """Not only the run loop waits: check() itself refuses, saying why (the fallback would be lost)."""
    updater = Updater()
    updater.trial = True
    f, asked, downloaded, _e, restarts = fetcher(monkeypatch, [OFFER], updater)
    why = _refused(f.check())
    assert "version 0.2.0 is on trial" in why and "no confirmed version to return to" in why
    assert asked == [] and downloaded == [] and restarts == [] and updater.sizes == []


def test_an_offer_older_than_the_minimum_is_not_fetched_unless_offered_as_a_signed_downgrade(monkeypatch):
    older = (200, {"version": "0.2.0", "url": "/bundles/old.njota", "size": 5000})
    updater = Updater(running="0.3.0-sim")  # nothing persisted yet: the running version is the minimum
    f, asked, downloaded, events, restarts = fetcher(monkeypatch, [older, older], updater)
    assert asyncio.run(f.check()) is False and asyncio.run(f.check()) is False
    assert len(asked) == 2 and downloaded == [] and restarts == []
    told = [t for t in events if "not fetched" in t]
    assert told == ["version 0.2.0 offered by the update server: not fetched (version 0.2.0 is older than the "
                    "minimum 0.3.0-sim: a downgrade needs a bundle signed with replaces_down_to)"]  # once
    # The persisted minimum counts, not only the running version.
    f, _a, downloaded, _e, _r = fetcher(monkeypatch, [older], Updater(running="0.1.0", min_version="0.2.1"))
    assert asyncio.run(f.check()) is False and downloaded == []
    # Offered as a downgrade: fetched; the bundle's signed manifest decides at the restart.
    down = (200, dict(older[1], replaces_down_to="0.2.0"))
    updater = Updater(running="0.3.0")
    f, _a, downloaded, _e, restarts = fetcher(monkeypatch, [down], updater)
    assert asyncio.run(f.check()) is True and downloaded and restarts == [1]
    os.remove(updater.incoming(0))


def test_plain_http_is_refused_unless_the_config_says_insecure(monkeypatch):
    f, asked, _d, events, _r = fetcher(monkeypatch, [OFFER], Updater(), insecure=False)
    assert f.off and events == ["update server not asked (ota.url is plain http and ota.insecure is off): "
                                "updates over USB only"]
    assert "plain http: refused" in _refused(f.check()) and asked == []
    asyncio.run(f.run(lambda: True))  # returns at once: no task that asks now and then
    assert asked == []
    # insecure: allowed, and said at every start (each start makes its fetcher)
    kinds = []
    for _ in range(2):
        otafetch.OtaFetch(Updater(), "http://upd:8080/offer", "0.1.0", "sim", lambda k, t: kinds.append((k, t)),
                          insecure=True)
    assert kinds == [("security", "update server: " + otafetch.INSECURE_WARNING)] * 2
    # An https server offering a bundle over plain http: refused before anything is written.
    offer = (200, dict(OFFER[1], url="http://elsewhere/b.njota"))
    updater = Updater()
    f, asked, downloaded, _e, _r = fetcher(monkeypatch, [offer], updater, url="https://upd/offer", insecure=False,
                                           ssl=object())
    assert "http://elsewhere/b.njota is plain http: refused" in _refused(f.check())
    assert len(asked) == 1 and downloaded == [] and updater.sizes == []


def test_an_offer_without_a_usable_size_is_not_downloaded(monkeypatch):
    for size in (None, 0, -5, 16, "5000", True, 5000.0):
        doc = {"version": "0.2.0", "url": "/bundles/b.njota"}
        if size is not None:
            doc["size"] = size
        updater = Updater()
        f, _a, downloaded, _e, restarts = fetcher(monkeypatch, [(200, doc)], updater)
        assert "gives no size" in _refused(f.check()), size
        assert downloaded == [] and restarts == [] and updater.sizes == []


class Answer:
    """http.request as a server that sends `n` bytes of body into the download's file."""

    def __init__(self, n, offer=OFFER):
        self.n, self.offer, self.written = n, offer, 0

    async def __call__(self, method, url, body=b"", headers=None, timeout_ms=0, ssl=None, max_body=None, into=None,
                       **kw):
        if into is None:
            return self.offer[0], json.dumps(self.offer[1]).encode()
        chunk = memoryview(b"x" * 512)
        left = self.n
        while left:
            k = min(left, 512)
            into.write(chunk[:k])
            self.written += k
            left -= k
        return 200, b""


def _real_updater(tmp_path):
    """The real updater (its room check and hand-over); the key is never used: nothing is installed here."""
    return otaupdater.Updater(str(tmp_path / "app"), (3, 65537, 1, "k"), "sim", None,
                              key_path=str(tmp_path / "k.json"), running="0.1.0")


def _statvfs(monkeypatch, free):
    monkeypatch.setattr(otaupdater.os, "statvfs", lambda p: (1, 1, 10 ** 9, free, free, 0, 0, 0, 0, 255),
                        raising=False)


@pytest.mark.parametrize("sent", [5000 * 20, 4000])
def test_the_download_is_exactly_the_offered_size_never_more(monkeypatch, tmp_path, sent):
    """A server that sends more than it offered (or a Content-Length of anything) is cut off at the
    offer's size; one that sends less is refused too. Nothing is left on flash either way."""
    _statvfs(monkeypatch, 10 ** 9)
    answer = Answer(sent)
    monkeypatch.setattr(otafetch.http, "request", answer)
    events, restarts = [], []
    u = _real_updater(tmp_path)
    f = otafetch.OtaFetch(u, "http://upd:8080/offer", "0.1.0", "sim", lambda k, t: events.append(t),
                          restart=lambda: restarts.append(1), insecure=True)
    why = _refused(f.check())
    assert ("longer than the offer said" in why) if sent > 5000 else ("4000 bytes, the offer said 5000" in why)
    assert answer.written <= 5000 + 512 and restarts == []
    assert not (tmp_path / "app" / otaupdater.INCOMING).exists() and not (tmp_path / "app" / "pending.json").exists()


def test_an_offer_larger_than_the_volume_can_take_beside_its_reserve_is_not_downloaded(monkeypatch, tmp_path):
    size = 200000
    offer = (200, dict(OFFER[1], size=size))
    for free, ok in ((size + otaupdater.RESERVE - 1, False), (size + otaupdater.RESERVE, True)):
        _statvfs(monkeypatch, free)
        answer = Answer(size, offer)
        monkeypatch.setattr(otafetch.http, "request", answer)
        restarts = []
        f = otafetch.OtaFetch(_real_updater(tmp_path), "http://upd:8080/offer", "0.1.0", "sim",
                              lambda k, t: None, restart=lambda r=restarts: r.append(1), insecure=True)
        if ok:
            assert asyncio.run(f.check()) is True and restarts == [1] and answer.written == size
        else:
            assert "kept for the config" in _refused(f.check())
            assert answer.written == 0 and restarts == []


FETCH_ON_MPY = r"""
import asyncio, json, os
from nengjian.net import http
from nengjian.ota import fetch, updater

ROOT = %r
SENT = [0]


async def request(method, url, body=b"", headers=None, timeout_ms=0, ssl=None, max_body=16384, into=None):
    if into is None:
        return 200, json.dumps({"version": "0.2.0", "url": "/b.njota", "size": 5000}).encode()
    chunk = memoryview(bytearray(512))
    for _ in range(40):  # 20 kB for an offer of 5000 bytes
        into.write(chunk)
        SENT[0] += 512
    return 200, b""


http.request = request
u = updater.Updater(ROOT, (3, 65537, 1, ""), "sim", None, key_path=ROOT + "/k.json", running="0.1.0")
out = []
for url, insecure in (("http://upd/offer", False), ("http://upd/offer", True)):
    ev = []
    f = fetch.OtaFetch(u, url, "0.1.0", "sim", lambda k, t: ev.append(k), insecure=insecure)
    try:
        asyncio.run(f.check())
        out.append(["ok", ev])
    except updater.OtaError as e:
        out.append([str(e), ev])
out.append([SENT[0], sorted(os.listdir(ROOT))])
print(json.dumps(out))
"""


@pytest.mark.mpy
def test_plain_http_and_an_overlong_download_are_refused_on_micropython(tmp_path):
    from mpyrun import run_mpy

    root = tmp_path / "app"
    root.mkdir()
    got = json.loads(run_mpy(FETCH_ON_MPY % str(root), heap="256k").stdout.strip().splitlines()[-1])
    assert got[0] == ["http://upd/offer is plain http: refused (ota.insecure is off)", ["ota"]]
    assert got[1] == ["the download is longer than the offer said", ["security", "ota"]]
    assert got[2][0] <= 5000 + 512 and got[2][1] == []  # cut off at the offer's size; nothing left on flash


def test_an_offer_nested_past_the_json_limits_is_an_error_not_a_crash(monkeypatch):
    f, _a, downloaded, _e, _r = fetcher(monkeypatch, [], Updater())

    async def hostile(*a, **kw):
        return 200, b"[" * 8000  # inside the 16 KB body cap; json.loads alone runs out of stack or heap

    monkeypatch.setattr(otafetch.http, "request", hostile)
    with pytest.raises(ota.OtaError, match="not {version, url, size}"):
        asyncio.run(f.check())
    assert not downloaded
