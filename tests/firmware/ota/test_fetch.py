"""Updates fetched over the uplink from the signed static channel (firmware/nengjian/ota/fetch.py): the
channel read to flash and verified before anything in it is used, this board's entry, the staged
rollout, key rotation, the bundle downloaded and checked against the entry's size and SHA-256 and left
for the check at the restart; a version refused there not downloaded again, nothing fetched while a
version is on trial, nothing older than the minimum unless the entry is a signed downgrade, nothing
over plain http unless ota.insecure says so. Each hostile channel is a typed error with nothing left
on flash. CPython with a scripted HTTP server and a stand-in updater (the real one's rules) over
channels the host's `nengjian ota publish` code signs; on MicroPython below;
tests/e2e/test_ota_sim.py runs the real thing on the sim board behind a plain static file server."""

import asyncio
import hashlib
import json
import os
import time

import pytest
from nengjian import ota
from nengjian.console import status as console_status
from nengjian.ota import channel as otachannel
from nengjian.ota import fetch as otafetch
from nengjian.ota import resident
from nengjian.ota import updater as otaupdater
from nengjian_host.vendor import channel as host_channel
from nengjian_host.vendor import updates as host_ota

URL = "http://upd:8080/nj/stable/channel.njch"
BUNDLE_URL = "http://upd:8080/nj/stable/bundles/b.njota"
BUNDLE = b"NJOTA1\n\x00" + b"b" * 4992  # the fetcher checks size and hash only; the updater, the signature


def channel_bytes(vendor_pem, boards, key_id="test-vendor-1", **extra):
    man = {"format": 1, "key": key_id, "created": 1, "boards": boards, **extra}
    blob = json.dumps(man, separators=(",", ":")).encode()
    return host_channel.pack(blob, host_ota.sign(host_ota.load_private(vendor_pem), blob))


def entry(data=BUNDLE, version="0.2.0", **kw):
    return dict({"version": version, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                 "bundle": "bundles/b.njota"}, **kw)


@pytest.fixture(autouse=True)
def channel_kept(monkeypatch):
    """A check drops nengjian.ota.channel when done (its heap; the MicroPython test below shows it);
    kept here, so that its error classes are the ones this module imported."""
    monkeypatch.setattr(otafetch, "unload", lambda name: None)
    monkeypatch.setattr(resident, "unload", lambda name: None)


class Updater(otaupdater.Updater):
    """The real updater's rules (trial, minimum) over a pointer held here; files under tmp."""

    def __init__(self, vendor, tmp, refused=None, running="0.1.0", min_version=None):
        self.root = str(tmp / "app")
        self.keys = otaupdater.load_keys(str(vendor.pub))
        self.key = self.keys[0]
        self.key_path = None
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
        return self.root + "/" + otaupdater.INCOMING

    def defer(self, path, version=None):
        self.deferred.append((path, version))

    def take_refused(self):
        version, self.refused = self.refused, None
        return version

    def on_trial(self):
        return self.trial


class Server:
    """http.request as a static file server: GET of a known URL streams its bytes into the download's
    file (as the real client does, Content-Length = the file's size), anything else is a 404."""

    def __init__(self, files):
        self.files = dict(files)
        self.asked = []
        self.written = 0

    async def __call__(self, method, url, body=b"", headers=None, timeout_ms=0, ssl=None, max_body=None, into=None,
                       **kw):
        self.asked.append(url)
        data = self.files.get(url)
        if data is None:
            return 404, b""
        if callable(data):
            data = data()
        mv = memoryview(data)
        for i in range(0, len(data), 512):
            into.write(mv[i:i + 512])
            self.written += len(mv[i:i + 512])
        return 200, b""


def fetcher(monkeypatch, files, updater, url=URL, insecure=True, ssl=None, gateway_id=b"sim-0000"):
    events, restarts = [], []
    server = Server(files)
    monkeypatch.setattr(otafetch.http, "request", server)
    f = otafetch.OtaFetch(updater, url, "0.1.0", "sim", lambda k, t, c=None: events.append(t),
                          restart=lambda: restarts.append(1), ssl=ssl, insecure=insecure, gateway_id=gateway_id)
    return f, server, events, restarts


@pytest.fixture
def published(vendor):
    """{URL: a channel offering BUNDLE as 0.2.0 for sim, BUNDLE_URL: BUNDLE}"""
    return {URL: channel_bytes(vendor.pem, {"sim": entry()}), BUNDLE_URL: BUNDLE}


def _refused(coro, kind=ota.OtaError):
    try:
        asyncio.run(coro)
    except kind as e:
        return str(e)
    raise AssertionError("expected %s" % kind.__name__)


def _left(updater):
    return sorted(os.listdir(updater.root)) if os.path.isdir(updater.root) else []


def test_an_offered_bundle_is_downloaded_checked_and_left_for_the_check_at_the_restart(monkeypatch, tmp_path,
                                                                                      vendor, published):
    updater = Updater(vendor, tmp_path)
    f, server, events, restarts = fetcher(monkeypatch, published, updater)
    assert asyncio.run(f.check()) is True
    assert server.asked == [URL, BUNDLE_URL] and restarts == [1]  # the bundle relative to the channel file
    path = updater.incoming(0)
    assert updater.deferred == [(path, "0.2.0")] and open(path, "rb").read() == BUNDLE
    assert _left(updater) == [otaupdater.INCOMING]  # the channel file is gone once read
    assert events[-1] == "version 0.2.0 offered by the update channel: downloading"


def test_a_failed_download_leaves_nothing_behind(monkeypatch, tmp_path, vendor, published):
    updater = Updater(vendor, tmp_path)
    del published[BUNDLE_URL]
    f, _s, _e, restarts = fetcher(monkeypatch, published, updater)
    assert "HTTP 404" in _refused(f.check())
    assert not updater.deferred and not restarts and _left(updater) == []


def test_the_running_version_means_nothing_fetched(monkeypatch, tmp_path, vendor):
    files = {URL: channel_bytes(vendor.pem, {"sim": entry(version="0.1.0")})}
    f, server, _e, restarts = fetcher(monkeypatch, files, Updater(vendor, tmp_path))
    assert asyncio.run(f.check()) is False and asyncio.run(f.check()) is False
    assert server.asked == [URL, URL] and not restarts


def test_a_version_refused_at_this_boot_is_not_downloaded_again(monkeypatch, tmp_path, vendor, published):
    """The check at boot refused it (nengjian.ota.install_pending): the fetcher takes that once."""
    f, server, _e, restarts = fetcher(monkeypatch, published, Updater(vendor, tmp_path, refused="0.2.0"))
    assert f.refused == "0.2.0"
    assert asyncio.run(f.check()) is False and asyncio.run(f.check()) is False
    assert server.asked == [URL, URL] and not restarts


def test_a_version_rolled_back_here_is_not_fetched_again_by_every_check(monkeypatch, tmp_path, vendor, published):
    """It failed its trial on this gateway (say, no room to start in this heap): fetched again, it would
    be installed, fail and be rolled back at every check, three resets each time, for as long as the
    channel offers it. Told once; a crew can still push it, and the next version is fetched."""
    root = tmp_path / "app"
    root.mkdir()
    p = {"active": "a", "version": "0.2.0", "previous": "", "previous_version": None, "state": "trial",
         "boots": 2, "max_boots": 2}
    ota.write_pointer(str(root), p)
    assert ota.select(str(root)) is None  # rolled back to the built-in package
    updater = Updater(vendor, tmp_path)
    updater.p = ota.read_pointer(str(root))
    f, server, events, restarts = fetcher(monkeypatch, published, updater)
    assert asyncio.run(f.check()) is False and asyncio.run(f.check()) is False
    assert server.asked == [URL, URL] and not restarts and updater.deferred == []
    assert events == ["version 0.2.0 offered by the update channel: not fetched (it failed its trial on this "
                      "gateway and was rolled back)"]
    published[URL] = channel_bytes(vendor.pem, {"sim": entry(version="0.2.1")})
    f, server, events, restarts = fetcher(monkeypatch, published, updater)
    assert asyncio.run(f.check()) is True and updater.deferred == [(updater.incoming(0), "0.2.1")]


# ---- hostile channels: each a typed error, nothing downloaded past the channel, nothing left on flash
def _tampered(vendor):
    data = bytearray(channel_bytes(vendor.pem, {"sim": entry()}))
    at = data.index(b'"0.2.0"')
    data[at:at + 7] = b'"9.9.9"'  # same length: only the signature can tell
    return bytes(data)


def _other_key(make_vendor, tmp_path_factory):
    other = make_vendor(tmp_path_factory.mktemp("other"), bits=2048)
    return channel_bytes(other.pem, {"sim": entry()})


@pytest.mark.parametrize("case", ["tampered", "hash", "short", "long", "board", "rollout", "oversized",
                                  "huge", "other-key", "names-other-key", "garbled", "min-version", "no-size"])
def test_a_hostile_or_inapplicable_channel_is_a_typed_error_and_installs_nothing(monkeypatch, tmp_path, vendor,
                                                                                 make_vendor, tmp_path_factory, case):
    files = {BUNDLE_URL: BUNDLE}
    kind, text = otachannel.ChannelError, None
    if case == "tampered":
        files[URL], kind, text = _tampered(vendor), otachannel.ChannelSignatureError, "does not verify"
    elif case == "hash":
        files[URL] = channel_bytes(vendor.pem, {"sim": entry()})
        files[BUNDLE_URL] = BUNDLE[:-1] + b"X"
        kind, text = otachannel.BundleMismatch, "does not match the SHA-256 the signed channel gives"
    elif case in ("short", "long"):
        files[URL] = channel_bytes(vendor.pem, {"sim": entry()})
        files[BUNDLE_URL] = BUNDLE[:-100] if case == "short" else BUNDLE + b"x" * 5000
        kind, text = otachannel.BundleMismatch, "4900 bytes, the channel said 5000" if case == "short" else "longer"
    elif case == "board":
        files[URL] = channel_bytes(vendor.pem, {"esp32s3_4g": entry()})
        kind, text = otachannel.BoardNotInChannel, "no release for board sim (it has esp32s3_4g)"
    elif case == "rollout":
        files[URL] = channel_bytes(vendor.pem, {"sim": entry(rollout={"percent": 0, "gateways": ["NJ0009"]})})
        kind, text = otachannel.NotInRollout, "gateway sim-0000 is not in it yet"
    elif case == "oversized":
        files[URL] = lambda: channel_bytes(vendor.pem, {"sim": entry(pad="x" * otachannel.CHANNEL_MAX)})
        kind, text = otachannel.ChannelTooLarge, "this firmware reads at most 8192"
    elif case == "huge":
        files[URL] = lambda: channel_bytes(vendor.pem, {"sim": entry(pad="x" * 200000)})
        kind, text = otachannel.ChannelTooLarge, "longer than 9232 bytes: not read further"
    elif case == "other-key":
        files[URL], kind, text = _other_key(make_vendor, tmp_path_factory), otachannel.ChannelSignatureError, \
            "does not verify with a vendor key this gateway trusts (test-vendor-1)"
    elif case == "names-other-key":
        files[URL] = channel_bytes(vendor.pem, {"sim": entry()}, key_id="someone-else")
        kind, text = otachannel.ChannelSignatureError, "names key 'someone-else' but was signed with test-vendor-1"
    elif case == "garbled":
        files[URL], text = b"<html>not found</html>", "not a Nengjian update channel file"
    elif case == "min-version":
        files[URL] = channel_bytes(vendor.pem, {"sim": entry(min_version="0.1.5")})
        kind, text = otachannel.NotOffered, "needs a gateway running 0.1.5 or newer first (this one runs 0.1.0)"
    elif case == "no-size":
        e = entry()
        del e["size"]
        files[URL] = channel_bytes(vendor.pem, {"sim": e})
        text = "is not {version, size, sha256, bundle}"
    updater = Updater(vendor, tmp_path)
    f, server, _e, restarts = fetcher(monkeypatch, files, updater)
    why = _refused(f.check(), kind)
    assert text in why, why
    assert otafetch.CHANNEL_CAP == 16 + otaupdater.MAX_SIG + otachannel.CHANNEL_MAX
    assert isinstance(otachannel.ChannelError("x"), ota.OtaError) and issubclass(otachannel.BundleMismatch, ota.OtaError)
    assert updater.deferred == [] and restarts == [] and _left(updater) == []
    if case not in ("hash", "short", "long"):
        assert server.asked == [URL]  # the bundle was never asked for
    if case == "huge":
        assert server.written <= 9232 + 512  # cut off at the limit, never read on


def test_a_staged_release_reaches_the_gateways_listed_and_those_below_the_percentage(monkeypatch, tmp_path, vendor):
    ids = ["NJ%04d" % i for i in range(200)]
    for percent in (10, 50):
        inside = [i for i in ids if host_channel.rollout_bucket("0.2.0", i) < percent]
        assert 0 < len(inside) < len(ids)
        for gid in (inside[0], [i for i in ids if i not in inside][0]):
            files = {URL: channel_bytes(vendor.pem, {"sim": entry(rollout={"percent": percent, "salt": "0.2.0"})}),
                     BUNDLE_URL: BUNDLE}
            f, _s, _e, restarts = fetcher(monkeypatch, files, Updater(vendor, tmp_path), gateway_id=gid.encode())
            if gid in inside:
                assert asyncio.run(f.check()) is True and restarts == [1]
                os.remove(tmp_path / "app" / otaupdater.INCOMING)
            else:
                _refused(f.check(), otachannel.NotInRollout)
    # The same salt: each stage includes the one before.
    assert {i for i in ids if host_channel.rollout_bucket("s", i) < 10} <= {
        i for i in ids if host_channel.rollout_bucket("s", i) < 50}
    assert all(otachannel.rollout_bucket("s", i) == host_channel.rollout_bucket("s", i) for i in ids)
    files = {URL: channel_bytes(vendor.pem, {"sim": entry(rollout={"percent": 0, "gateways": ["sim-0000"]})}),
             BUNDLE_URL: BUNDLE}
    f, _s, _e, restarts = fetcher(monkeypatch, files, Updater(vendor, tmp_path))
    assert asyncio.run(f.check()) is True  # named: in, whatever its bucket
    # The id the rollout uses is the one `nengjian status` shows (a MAC as aa:bb:..., the sim's as text).
    for raw in (b"sim-0000", b"\x24\x0a\xc4\x01\x02\x03"):
        assert otachannel.text_id(raw) == console_status.text_id(raw)


def test_key_rotation_introduced_by_the_old_key_then_signed_by_the_new_and_the_old_retired(monkeypatch, tmp_path,
                                                                                          vendor):
    new_pem = tmp_path / "vendor-2027.pem"
    new_pub = host_ota.keygen(new_pem, tmp_path / "vendor-2027.pub.json", "vendor-2027", 2048)
    key_file = tmp_path / "ota_key.json"
    key_file.write_text(vendor.pub.read_text())
    events = []

    def check(data):
        updater = Updater(vendor, tmp_path)
        updater.keys = otaupdater.load_keys(str(key_file))
        updater.key_path = str(key_file)
        server = Server({URL: data, BUNDLE_URL: BUNDLE})
        monkeypatch.setattr(otafetch.http, "request", server)
        f = otafetch.OtaFetch(updater, URL, "0.1.0", "sim", lambda k, t, c=None: events.append(t), insecure=True)
        try:
            return asyncio.run(f.check()), updater
        finally:
            if os.path.exists(updater.incoming(0)):
                os.remove(updater.incoming(0))

    # Signed by the new key before the gateway knows it: refused.
    with pytest.raises(otachannel.ChannelSignatureError):
        check(channel_bytes(new_pem, {"sim": entry()}, key_id=new_pub["id"]))
    # The old key introduces the new one: trusted from then on, the file still readable as one key.
    ok, updater = check(channel_bytes(vendor.pem, {"sim": entry()}, keys=[new_pub]))
    assert ok and [k[3] for k in updater.keys] == ["test-vendor-1", new_pub["id"]]
    doc = json.loads(key_file.read_text())
    assert [k["id"] for k in doc["keys"]] == ["test-vendor-1", new_pub["id"]] and doc["id"] == "test-vendor-1"
    assert otaupdater.load_key(str(key_file))[3] == "test-vendor-1"
    assert "update keys: added %s (signed by test-vendor-1)" % new_pub["id"] in events
    # Signed by the new key, retiring the old: verified, and the old one is gone.
    ok, updater = check(channel_bytes(new_pem, {"sim": entry()}, key_id=new_pub["id"], retire=["test-vendor-1"]))
    assert ok and [k[3] for k in otaupdater.load_keys(str(key_file))] == [new_pub["id"]]
    # The retired key's signature is no longer taken.
    with pytest.raises(otachannel.ChannelSignatureError):
        check(channel_bytes(vendor.pem, {"sim": entry()}))
    # A key never retires the one that signed the manifest, nor the last one.
    ok, _u = check(channel_bytes(new_pem, {"sim": entry()}, key_id=new_pub["id"], retire=[new_pub["id"]]))
    assert ok and [k[3] for k in otaupdater.load_keys(str(key_file))] == [new_pub["id"]]


def _run_for(f, seconds, link_up=None, until=None, then=0.0):
    """Run the fetcher for `seconds`, or, given `until`, until it holds (at most `seconds`) and then
    `then` seconds more (room for a wrong retry to show): a test that waits for something to happen
    waits on it, not on the machine's speed."""
    async def main():
        task = asyncio.create_task(f.run(link_up))
        if until is None:
            await asyncio.sleep(seconds)
        else:
            end = time.monotonic() + seconds
            while not until() and time.monotonic() < end:
                await asyncio.sleep(0.01)
            await asyncio.sleep(then)
        task.cancel()

    asyncio.run(main())


def _fast(monkeypatch):
    """Steps of milliseconds instead of seconds; the check period stays a day. CPython's asyncio
    gets MicroPython's sleep_ms."""
    monkeypatch.setattr(asyncio, "sleep_ms", lambda ms: asyncio.sleep(ms / 1000), raising=False)
    monkeypatch.setattr(resident, "FIRST_CHECK_MS", 1)
    monkeypatch.setattr(resident, "WAIT_MS", 5)
    monkeypatch.setattr(resident, "RETRY_MS", 20)


def scheduled(monkeypatch, files, updater):
    """The gateway's resident part (nengjian.ota.resident) running checks with the stand-in updater."""
    _f, server, events, restarts = fetcher(monkeypatch, files, updater)
    res = resident.Resident(updater.root, None, "sim", "0.1.0", lambda k, t, c=None: events.append(t))
    res.load = lambda keys_needed=True: updater
    res.schedule(URL, 86400, None, lambda: restarts.append(1), insecure=True, gateway_id=b"sim-0000")
    return res, server, events, restarts


def test_a_channel_with_nothing_for_this_gateway_is_not_a_failed_check(monkeypatch, tmp_path, vendor):
    """Outside the rollout: told once, the check not retried within the hour as a failure would be."""
    _fast(monkeypatch)
    files = {URL: channel_bytes(vendor.pem, {"sim": entry(rollout={"percent": 0})})}
    f, server, events, _r = scheduled(monkeypatch, files, Updater(vendor, tmp_path))
    _run_for(f, 60, lambda: True, until=lambda: any("staged" in t for t in events), then=0.3)
    assert server.asked == [URL] and f.last_error == ""
    assert [t for t in events if "staged" in t] == [
        "update channel: version 0.2.0 is staged to part of the fleet; gateway sim-0000 is not in it yet"]


def test_a_check_skipped_while_the_link_is_down_happens_when_it_comes_back(monkeypatch, tmp_path, vendor):
    _fast(monkeypatch)
    files = {URL: channel_bytes(vendor.pem, {"sim": entry(version="0.1.0")})}
    f, server, _e, _r = scheduled(monkeypatch, files, Updater(vendor, tmp_path))
    calls = []

    def link_up():
        calls.append(1)
        return len(calls) > 3  # down for the first three looks

    _run_for(f, 60, link_up, until=lambda: server.asked, then=0.1)
    assert len(calls) >= 4 and server.asked == [URL]  # checked once the link came back, not a day later


def test_nothing_is_asked_while_a_version_is_on_trial(monkeypatch, tmp_path, vendor, published):
    _fast(monkeypatch)
    updater = Updater(vendor, tmp_path)
    updater.trial = True
    os.makedirs(updater.root)
    ota.write_pointer(updater.root, updater.p)  # what the resident part reads between checks
    f, server, _e, _r = scheduled(monkeypatch, published, updater)
    _run_for(f, 0.1, lambda: True)
    assert server.asked == []


def test_a_failed_check_is_tried_again_before_the_next_period(monkeypatch, tmp_path, vendor):
    _fast(monkeypatch)
    good = channel_bytes(vendor.pem, {"sim": entry(version="0.1.0")})
    answers = [None, good]  # the channel missing (404) once, then there
    f, server, _e, _r = scheduled(monkeypatch, {URL: lambda: answers.pop(0) or b"x"}, Updater(vendor, tmp_path))
    _run_for(f, 60, lambda: True, until=lambda: len(server.asked) >= 2 and f.last_error == "")
    assert len(server.asked) == 2 and f.last_error == ""


def test_a_full_flash_when_handing_over_leaves_nothing_and_does_not_restart(monkeypatch, tmp_path, vendor, published):
    updater = Updater(vendor, tmp_path)

    def full(path, version=None):
        raise OSError(28, "ENOSPC")

    updater.defer = full
    f, server, _e, restarts = fetcher(monkeypatch, published, updater)
    with pytest.raises(OSError):
        asyncio.run(f.check())
    assert server.asked == [URL, BUNDLE_URL] and not restarts and _left(updater) == []


def test_nothing_is_asked_or_downloaded_on_a_direct_check_during_a_trial(monkeypatch, tmp_path, vendor, published):
    """Not only the run loop waits: check() itself refuses, saying why (the fallback would be lost)."""
    updater = Updater(vendor, tmp_path)
    updater.trial = True
    f, server, _e, restarts = fetcher(monkeypatch, published, updater)
    why = _refused(f.check())
    assert "version 0.2.0 is on trial" in why and "no confirmed version to return to" in why
    assert server.asked == [] and restarts == [] and updater.sizes == []


def test_a_release_older_than_the_minimum_is_not_fetched_unless_it_is_a_signed_downgrade(monkeypatch, tmp_path,
                                                                                        vendor, published):
    updater = Updater(vendor, tmp_path, running="0.3.0-sim")  # nothing persisted: the running version is the minimum
    f, server, events, restarts = fetcher(monkeypatch, published, updater)
    assert asyncio.run(f.check()) is False and asyncio.run(f.check()) is False
    assert server.asked == [URL, URL] and restarts == []
    told = [t for t in events if "not fetched" in t]
    assert told == ["version 0.2.0 offered by the update channel: not fetched (version 0.2.0 is older than the "
                    "minimum 0.3.0-sim: a downgrade needs a bundle signed with replaces_down_to)"]  # once
    # The persisted minimum counts, not only the running version.
    f, server, _e, _r = fetcher(monkeypatch, published, Updater(vendor, tmp_path, running="0.1.0", min_version="0.2.1"))
    assert asyncio.run(f.check()) is False and server.asked == [URL]
    # A downgrade entry: fetched; the bundle's signed manifest decides at the restart.
    files = {URL: channel_bytes(vendor.pem, {"sim": entry(replaces_down_to="0.2.0")}), BUNDLE_URL: BUNDLE}
    f, server, _e, restarts = fetcher(monkeypatch, files, Updater(vendor, tmp_path, running="0.3.0"))
    assert asyncio.run(f.check()) is True and server.asked == [URL, BUNDLE_URL] and restarts == [1]


def test_plain_http_is_refused_unless_the_config_says_insecure(monkeypatch, tmp_path, vendor, published):
    f, server, events, _r = fetcher(monkeypatch, published, Updater(vendor, tmp_path), insecure=False)
    assert f.off and "plain http: refused" in _refused(f.check()) and server.asked == []
    res = resident.Resident(str(tmp_path / "app"), None, "sim", "0.1.0", lambda k, t, c=None: events.append(t))
    res.schedule(URL, 60, None, None, insecure=False)
    assert events == ["update server not asked (ota.url is plain http and ota.insecure is off): updates over USB only"]
    asyncio.run(res.run(lambda: True))  # returns at once: no task that asks now and then
    assert server.asked == []
    kinds = []
    for _ in range(2):  # each start
        resident.Resident(str(tmp_path / "app"), None, "sim", "0.1.0", lambda k, t, c=None: kinds.append((k, t))).schedule(
            URL, 60, None, None, insecure=True)
    assert kinds == [("security", "update server: " + resident.INSECURE_WARNING)] * 2


@pytest.mark.parametrize("name", ["http://elsewhere/b.njota", "/abs/b.njota", "../b.njota", "b.njota?x=1"])
def test_a_bundle_name_that_is_not_a_plain_relative_path_is_refused(monkeypatch, tmp_path, vendor, name):
    files = {URL: channel_bytes(vendor.pem, {"sim": entry(bundle=name)})}
    updater = Updater(vendor, tmp_path)
    f, server, _e, _r = fetcher(monkeypatch, files, updater)
    assert "no usable version, size, sha256 or bundle name" in _refused(f.check(), otachannel.ChannelError)
    assert server.asked == [URL] and updater.sizes == []


def _statvfs(monkeypatch, free):
    monkeypatch.setattr(otaupdater.os, "statvfs", lambda p: (1, 1, 10 ** 9, free, free, 0, 0, 0, 0, 255),
                        raising=False)


def test_a_release_larger_than_the_volume_can_take_beside_its_reserve_is_not_downloaded(monkeypatch, tmp_path, vendor):
    big = b"NJOTA1\n\x00" + b"z" * (200000 - 8)
    files = {URL: channel_bytes(vendor.pem, {"sim": entry(big)}), BUNDLE_URL: big}
    for free, ok in ((len(big) + otaupdater.RESERVE - 1, False), (len(big) + otaupdater.RESERVE, True)):
        _statvfs(monkeypatch, free)
        u = otaupdater.Updater(str(tmp_path / "app"), otaupdater.load_keys(str(vendor.pub)), "sim", None,
                               key_path=str(tmp_path / "k.json"), running="0.1.0")
        restarts = []
        f, server, _e, _r = fetcher(monkeypatch, files, u)
        f.restart = lambda r=restarts: r.append(1)
        if ok:
            assert asyncio.run(f.check()) is True and server.written >= len(big)
        else:
            assert "kept for the config" in _refused(f.check())
            assert server.asked == [URL]


FETCH_ON_MPY = r"""
import asyncio, json, os
from nengjian.net import http
from nengjian.ota import fetch, updater

ROOT = %r
FILES = {}
for name in os.listdir(%r) + ["bundles/b.njota"]:
    if name != "bundles":
        with open(%r + "/" + name, "rb") as f:
            FILES["http://upd/nj/" + name] = f.read()


async def request(method, url, body=b"", headers=None, timeout_ms=0, ssl=None, max_body=16384, into=None):
    data = FILES.get(url)
    if data is None:
        return 404, b""
    mv = memoryview(data)
    for i in range(0, len(data), 512):
        into.write(mv[i:i + 512])
    return 200, b""


http.request = request
out = []
u = updater.Updater(ROOT, updater.load_keys(%r), "sim", None, key_path=%r, running="0.1.0")
try:
    asyncio.run(fetch.OtaFetch(u, "http://upd/nj/good.njch", "0.1.0", "sim", lambda k, t, c=None: None).check())
    plain = "fetched"
except updater.OtaError as e:
    plain = str(e)
for name, gid in (("good.njch", "sim-0000"), ("tampered.njch", "sim-0000"), ("staged.njch", "sim-0000"),
                  ("staged.njch", "NJ0001"), ("big.njch", "sim-0000"), ("esp.njch", "sim-0000"),
                  ("badhash.njch", "sim-0000"), ("rotate.njch", "sim-0000")):
    u = updater.Updater(ROOT, updater.load_keys(%r), "sim", None, key_path=%r, running="0.1.0")
    u.defer = lambda path, version=None: None
    f = fetch.OtaFetch(u, "http://upd/nj/" + name, "0.1.0", "sim", lambda k, t, c=None: None, insecure=True, gateway_id=gid)
    try:
        asyncio.run(f.check())
        out.append([name, "ok", [k[3] for k in u.keys]])
    except updater.OtaError as e:
        out.append([name, type(e).__name__, str(e)[:60]])
    for left in os.listdir(ROOT):
        os.remove(ROOT + "/" + left)
import sys
out.append(plain)
out.append("nengjian.ota.channel" in sys.modules)
print(json.dumps(out))
"""


@pytest.mark.mpy
def test_the_channel_is_verified_and_its_refusals_typed_on_micropython(tmp_path, vendor):
    from mpyrun import run_mpy

    served = tmp_path / "served"
    served.mkdir()
    (served / "bundles").mkdir()
    (served / "bundles" / "b.njota").write_bytes(BUNDLE)
    other = json.loads(vendor.pub.read_text())
    other = dict(other, id="test-vendor-2")  # a second key to introduce (its numbers do not matter here)
    (served / "good.njch").write_bytes(channel_bytes(vendor.pem, {"sim": entry()}))
    (served / "tampered.njch").write_bytes(_tampered(vendor))
    (served / "staged.njch").write_bytes(channel_bytes(vendor.pem, {"sim": entry(rollout={"percent": 0,
                                                                                           "gateways": ["NJ0001"]})}))
    (served / "big.njch").write_bytes(channel_bytes(vendor.pem, {"sim": entry(pad="x" * otachannel.CHANNEL_MAX)}))
    (served / "esp.njch").write_bytes(channel_bytes(vendor.pem, {"esp32_eth": entry()}))
    (served / "badhash.njch").write_bytes(channel_bytes(vendor.pem, {"sim": entry(sha256="0" * 64)}))
    (served / "rotate.njch").write_bytes(channel_bytes(vendor.pem, {"sim": entry()}, keys=[other]))
    key_file = tmp_path / "ota_key.json"
    key_file.write_text(vendor.pub.read_text())
    root = tmp_path / "app"
    root.mkdir()
    code = FETCH_ON_MPY % (str(root), str(served), str(served), str(key_file), str(key_file), str(key_file),
                           str(key_file))
    got = json.loads(run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])
    assert got.pop() is False  # the channel's code is dropped after each check
    assert got.pop() == "http://upd/nj/good.njch is plain http: refused (ota.insecure is off)"
    got = [r[1:] for r in got]
    assert got[0] == ["ok", ["test-vendor-1"]]
    assert got[1][0] == "ChannelSignatureError"
    assert got[2][0] == "NotInRollout" and got[3] == ["ok", ["test-vendor-1"]]  # NJ0001 is named
    assert got[4][0] == "ChannelTooLarge"
    assert got[5][0] == "BoardNotInChannel"
    assert got[6][0] == "BundleMismatch"
    assert got[7] == ["ok", ["test-vendor-1", "test-vendor-2"]]
    assert [k["id"] for k in json.loads(key_file.read_text())["keys"]] == ["test-vendor-1", "test-vendor-2"]


@pytest.mark.parametrize("tampered", [False, True], ids=["good", "tampered"])
def test_a_heap_with_no_room_for_the_signature_check_leaves_the_channel_to_the_check_at_boot(
        monkeypatch, tmp_path, vendor, published, tampered):
    """Weeks of running fragment the heap (nengjian.ota): the channel's signature check then runs at
    the restart, in a fresh heap; the next check trusts the same bytes by their hash (or refuses them
    again) without a signature check and without another restart."""
    if tampered:
        published[URL] = _tampered(vendor)
    key_file = tmp_path / "ota_key.json"
    key_file.write_text(vendor.pub.read_text())
    updater = Updater(vendor, tmp_path)
    updater.key_path = str(key_file)
    real_verify = otaupdater.rsa_verify

    def no_room(*a):
        raise MemoryError("memory allocation failed, allocating 768 bytes")

    monkeypatch.setattr(otaupdater, "rsa_verify", no_room)
    f, server, events, restarts = fetcher(monkeypatch, published, updater)
    assert asyncio.run(f.check()) is True and restarts == [1] and server.asked == [URL]
    root = tmp_path / "app"
    assert json.loads((root / "pending.json").read_text()) == {"channel": str(root / "channel.njch"),
                                                               "key": str(key_file)}
    assert "checked at the restart" in events[-1] and updater.deferred == []
    # The boot: a fresh heap.
    monkeypatch.setattr(otaupdater, "rsa_verify", real_verify)
    ota.install_pending(str(root))
    assert sorted(os.listdir(root)) == ["channel.seen", ota.POINTER]  # channel file and pending.json gone
    log = ota.read_pointer(str(root))["log"]
    assert log == (["update channel refused at boot: channel signature does not verify with a vendor key this "
                    "gateway trusts (test-vendor-1)"] if tampered else
                   ["update channel checked at boot: signed by test-vendor-1"])
    # After it: the same bytes, no signature check (still no room), no second restart for them.
    monkeypatch.setattr(otaupdater, "rsa_verify", no_room)
    f, server, events, restarts = fetcher(monkeypatch, published, updater)
    if tampered:
        assert "channel refused at boot" in _refused(f.check(), otachannel.ChannelSignatureError)
        assert restarts == [] and server.asked == [URL] and updater.deferred == []
    else:
        assert asyncio.run(f.check()) is True and server.asked == [URL, BUNDLE_URL]
        assert updater.deferred == [(updater.incoming(0), "0.2.0")]
    # Other bytes (a new publish) are not trusted by that record: checked again.
    published[URL] = channel_bytes(vendor.pem, {"sim": entry(version="0.2.1")})
    f, server, events, restarts = fetcher(monkeypatch, published, updater)
    assert asyncio.run(f.check()) is True and restarts == [1] and server.asked == [URL]


def test_a_check_at_boot_that_records_nothing_leaves_no_restart_loop(monkeypatch, tmp_path, vendor, published):
    """The restart into the check at boot happened, but the check there never recorded an outcome (its
    key file gone; on MicroPython also no room to load its code: test_heap_deferral.py). The next
    check of the same bytes, the heap still without room, must not restart for them again."""
    key_file = tmp_path / "ota_key.json"
    key_file.write_text(vendor.pub.read_text())
    updater = Updater(vendor, tmp_path)
    updater.key_path = str(key_file)

    def no_room(*a):
        raise MemoryError("memory allocation failed, allocating 768 bytes")

    monkeypatch.setattr(otaupdater, "rsa_verify", no_room)
    root = tmp_path / "app"
    restarted = 0
    for _ in range(3):
        f, server, events, restarts = fetcher(monkeypatch, published, updater)
        try:
            asyncio.run(f.check())
        except ota.OtaError as e:
            assert str(e).startswith("channel not checked even at boot"), e
        restarted += len(restarts)
        if not restarts:
            break
        key_file.unlink()
        ota.install_pending(str(root))
        key_file.write_text(vendor.pub.read_text())
        assert "update channel not checked at boot: " in ota.read_pointer(str(root))["log"][-1]
    assert restarted == 1 and not (root / "pending.json").exists()
