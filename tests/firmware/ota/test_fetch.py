"""Updates fetched over the uplink (firmware/nengjian/ota/fetch.py): the offer exchange, the download
left for the check at the restart, a version refused there not downloaded again, nothing fetched
while a version is on trial. CPython with scripted HTTP
and a stand-in updater; tests/e2e/test_ota_sim.py runs the real thing on the sim board."""

import asyncio
import json
import os

from nengjian import ota
from nengjian.ota import fetch as otafetch
from nengjian.ota import updater as otaupdater


class Updater:
    def __init__(self, refused=None):
        self.refused = refused
        self.deferred = []
        self.trial = False

    def incoming(self, size):
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


def fetcher(monkeypatch, answers, updater):
    asked, downloaded, events, restarts = [], [], [], []

    async def request(method, url, body=b"", headers=None, timeout_ms=0, ssl=None, **kw):
        asked.append(url)
        status, doc = answers.pop(0)
        return status, json.dumps(doc).encode() if doc is not None else b""

    async def download(url, path, timeout_ms=0, ssl=None):
        downloaded.append(url)
        open(path, "wb").close()
        return 0

    monkeypatch.setattr(otafetch.http, "request", request)
    monkeypatch.setattr(otaupdater, "download", download)
    f = otafetch.OtaFetch(updater, "http://upd:8080/offer", "0.1.0", "sim", lambda k, t: events.append(t),
                          restart=lambda: restarts.append(1))
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

    async def broken(url, path, timeout_ms=0, ssl=None):
        open(path, "wb").close()
        raise ota.OtaError("GET %s: HTTP 404" % url)

    monkeypatch.setattr(otaupdater, "download", broken)
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
