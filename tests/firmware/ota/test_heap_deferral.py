"""An update check in a heap with no block for the signature check, on MicroPython with the real
update code (nengjian.ota.resident, fetch, channel, updater and the boot path of nengjian.ota): the
check defers to the restart and the update then completes, on trial and confirmed; a check that
cannot be done even at the restart gives up, says so in the ledger, and never resets again for it.

Each "boot" is a micropython process of its own, so each starts in a fresh heap, as after a reset.
The long-running heap is real, not a flag: fragment() fills the heap with blocks of HOLE bytes and
frees every other one, which leaves tens of kilobytes free and no block for the check's integers
(a gateway that ran two minutes had 22 KB free and no free block over 448 bytes; ARCHITECTURE's
heap figures). A stand-in `board` ends a boot where the firmware resets (board.reset()); the
uplink's http.request is a static file server reading from a directory."""

import hashlib
import json

import pytest
from mpyrun import run_mpy
from nengjian_host.vendor import channel as host_channel
from nengjian_host.vendor import updates as host_ota

pytestmark = pytest.mark.mpy

HEAP = "256k"
HOLE = 448  # bytes per hole: the figure measured on the sim; the check's integers want 768
URL = "http://upd/nj/channel.njch"

COMMON = r"""
import gc, json, os, sys
sys.path.insert(0, %(board)r)
P = json.loads(%(params)r)


def fragment():
    # The heap of a gateway that ran for a while: HOLE-sized holes between live blocks, nothing bigger.
    gc.collect()
    keep = [None] * 4096
    small = [None] * 2048
    n = 0
    try:
        while n < len(keep):
            keep[n] = bytearray(P["hole"])
            n += 1
    except MemoryError:
        pass
    # The gaps too small for a hole are filled with the smallest blocks: a gap left beside a hole would
    # make a larger one of it when the hole is freed.
    m = 0
    try:
        while m < len(small):
            small[m] = bytearray(1)
            m += 1
    except MemoryError:
        pass
    for i in range(0, n, 2):
        keep[i] = None
    gc.collect()
    try:
        bytearray(768)
        big = True
    except MemoryError:
        big = False
    print("FRAG " + json.dumps([gc.mem_free(), big]))
    return keep, small
"""

# The running application's update check (nengjian.app schedules it through Resident).
RUNNING = COMMON + r"""
import asyncio
from nengjian.net import http
from nengjian.ota import resident
if not P["cold"]:
    from nengjian.ota import channel, fetch, updater  # loaded before the heap fills, as the check's are

BUF = bytearray(256)


async def request(method, url, body=b"", headers=None, timeout_ms=0, ssl=None, max_body=16384, into=None):
    name = url[len("http://upd/nj/"):]
    try:
        f = open(P["www"] + "/" + name, "rb")
    except OSError:
        return 404, b""
    mv = memoryview(BUF)
    with f:
        while True:
            n = f.readinto(BUF)
            if not n:
                return 200, b""
            into.write(mv[:n])


http.request = request
events, restarts = [], []
r = resident.Resident(P["root"], P["key"], "sim", "0.1.0", lambda k, t, c=None: events.append(t))
r.schedule(P["url"], 86400, None, lambda: restarts.append(1), insecure=True, gateway_id="sim-0000")
if P["keys"]:
    r.load(False)  # an earlier job of this boot loaded the vendor keys, in a heap with room for them
channel = fetch = updater = None
gc.collect()
keep = fragment() if P["fragment"] else None
try:
    got = asyncio.run(r.check())
except Exception as e:
    got = "%%s: %%s" %% (type(e).__name__, e)
keep = None
gc.collect()
print("RUN " + json.dumps({"got": got, "restarts": len(restarts), "events": events,
                           "loaded": [m for m in resident.JOB if m in sys.modules and m != "nengjian.ota"]}))
"""

# main.py's boot path up to the application: install_pending() and activate().
BOOT = COMMON + r"""
import board  # main.py's first import
from nengjian import ota
if P["fragment"]:
    if P["preload"]:
        from nengjian.ota import channel, updater  # the check's code is in: only its integers lack room
    keep = fragment()
ota.install_pending(P["root"])
keep = None
slot = ota.activate(P["root"])
try:
    import nengjian.ota_marker as m
    mark = m.VERSION
except ImportError:
    mark = None
print("BOOT " + json.dumps([slot, mark]))
"""

CONFIRM = COMMON + r"""
from nengjian.ota import resident
events = []
r = resident.Resident(P["root"], P["key"], "sim", "0.1.0", lambda k, t, c=None: events.append(t))
print("CONFIRM " + json.dumps([r.trial, r.confirm(), events]))
"""

# A crew's push over USB (the console's `ota`), in a heap with room for its check.
PUSH = COMMON + r"""
from nengjian.ota import resident
r = resident.Resident(P["root"], P["key"], "sim", "0.1.0", lambda k, t, c=None: None)
man = r.load().install_file(P["bundle"])
print("PUSH " + json.dumps(man["version"]))
"""


class Gateway:
    """The update files of one gateway (its APP_DIR and key) and a static server's directory."""

    def __init__(self, tmp_path, vendor):
        self.vendor = vendor
        self.root = tmp_path / "app"
        self.root.mkdir()
        self.www = tmp_path / "www"
        (self.www / "bundles").mkdir(parents=True)
        self.key = tmp_path / "ota_key.json"
        self.key.write_text(vendor.pub.read_text())
        self.board = tmp_path / "board"
        self.board.mkdir()
        # Where the firmware resets, this boot ends (the next process is the next boot, in a fresh heap).
        (self.board / "board.py").write_text('def reset():\n    print("@reset")\n    raise SystemExit(0)\n')
        self.resets = 0

    def publish(self, version):
        data = self.vendor.bundle(version).read_bytes()
        (self.www / "bundles" / "b.njota").write_bytes(data)
        entry = {"version": version, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                 "bundle": "bundles/b.njota"}
        man = json.dumps({"format": 1, "key": "test-vendor-1", "created": 1, "boards": {"sim": entry}},
                         separators=(",", ":")).encode()
        sig = host_ota.sign(host_ota.load_private(self.vendor.pem), man)
        (self.www / "channel.njch").write_bytes(host_channel.pack(man, sig))

    def _run(self, script, tag, **params):
        p = dict(root=str(self.root), key=str(self.key), www=str(self.www), url=URL, hole=HOLE, fragment=False,
                 preload=False, keys=True, cold=False)
        p.update(params)
        out = run_mpy(script % {"board": str(self.board), "params": json.dumps(p)}, heap=HEAP).stdout
        lines = out.splitlines()
        self.resets += lines.count("@reset")
        for line in lines:
            if line.startswith("FRAG "):
                free, big = json.loads(line[5:])
                assert free > 20000 and not big, "the heap is not fragmented as meant: %s" % line
        found = [json.loads(line[len(tag) + 1:]) for line in lines if line.startswith(tag + " ")]
        return found[0] if found else None

    def check(self, fragment=True, keys=True, cold=False):
        """One update check of the running application; {"got", "restarts", "events", "loaded"}. keys:
        an earlier check of this boot loaded the vendor keys (False: this is the boot's first). cold:
        the check's code is not loaded when the heap fragments (it must import it into the holes)."""
        got = self._run(RUNNING, "RUN", fragment=fragment, keys=keys and not cold, cold=cold)
        assert got["loaded"] == [], "the check's modules stay loaded: %s" % got["loaded"]
        return got

    def boot(self, fragment=False, preload=False):
        """main.py's boot path; None when it reset (into a fresh heap) before the application, else
        [slot, the version the slot's package says it is]."""
        return self._run(BOOT, "BOOT", fragment=fragment, preload=preload)

    def pending(self):
        try:
            return json.loads((self.root / "pending.json").read_text())
        except FileNotFoundError:
            return None

    def seen(self):
        return json.loads((self.root / "channel.seen").read_text())

    def pointer(self):
        return json.loads((self.root / "current").read_text())


@pytest.fixture
def gw(tmp_path, vendor):
    g = Gateway(tmp_path, vendor)
    g.publish("0.2.0")
    return g


@pytest.mark.parametrize("keys", [True, False], ids=["keys-loaded", "no-room-for-the-keys"])
def test_no_heap_block_for_the_signature_check_defers_to_the_restart_then_the_update_runs_and_confirms(gw, keys):
    # The running heap: the channel cannot be verified, so it is left for the check at the restart.
    # (Without room to load the vendor key, its 768 hex digits, the same; that check used to fail
    # with a MemoryError every hour instead, and the update never came.)
    got = gw.check(keys=keys)
    assert got["got"] is True and got["restarts"] == 1, got
    assert "no room in the heap for its signature check now: checked at the restart" in got["events"][-1]
    assert gw.pending() == {"channel": str(gw.root / "channel.njch"), "key": str(gw.key)}
    # The restart: checked in a fresh heap, then one more reset so the application's heap is fresh too.
    assert gw.boot() is None and gw.resets == 1
    assert gw.pending() is None and gw.seen()["ok"] is True
    # The application again, its heap as fragmented as before: the same bytes are trusted by their
    # hash, the bundle downloaded and left for the check at the next restart.
    got = gw.check()
    assert got["got"] is True and got["restarts"] == 1, got
    assert "update channel checked at boot: signed by test-vendor-1" in got["events"]  # the ledger
    assert got["events"][-1] == "bundle 0.2.0 received: verified and installed at the restart"
    assert gw.pending()["bundle"] == str(gw.root / "incoming.njota")
    # That restart: the bundle's signature checked in a fresh heap, switched in and run on trial.
    assert gw.boot() == [str(gw.root / "a"), "0.2.0"] and gw.resets == 1
    p = gw.pointer()
    assert (p["version"], p["state"], p["boots"]) == ("0.2.0", "trial", 1)
    trial, confirmed, events = gw._run(CONFIRM, "CONFIRM")
    assert trial and confirmed
    assert any(t.startswith("installed 0.2.0 in slot a") for t in events)
    assert "version 0.2.0 confirmed healthy: kept" in events
    assert (gw.pointer()["state"], gw.boot()) == ("confirmed", [str(gw.root / "a"), "0.2.0"])
    assert gw.resets == 1  # the boots after it are ordinary: none resets


def test_a_check_with_no_room_even_at_the_restart_gives_up_and_never_resets_for_it_again(gw):
    """The fresh heap has no block for the check either (here: the boot fragmented it first): the
    check at boot records that it gave up; no check after it restarts, whatever the channel holds,
    and the gateway runs on with the firmware it has."""
    assert gw.check()["restarts"] == 1
    assert gw.boot(fragment=True, preload=True) is None  # the fresh-heap reset still comes: pending is gone
    assert gw.seen()["gave_up"] is True and gw.pending() is None
    for n in range(3):
        got = gw.check()
        assert got["restarts"] == 0 and gw.pending() is None, got
        assert got["got"].startswith("ChannelError: channel not checked even at boot"), got
        if n == 0:  # the ledger says why, once
            assert [t for t in got["events"] if "MemoryError" in t and "not checked at boot" in t], got
        assert gw.boot() == [None, None]  # the built-in package runs; no reset
    gw.publish("0.2.1")  # other bytes: not trusted by the record, and no restart to check them either
    got = gw.check()
    assert got["restarts"] == 0 and gw.pending() is None, got
    assert "nor at the last restart" in got["got"] and "nor at the last restart" in got["events"][-1], got
    assert gw.resets == 1
    # Once the running heap has room, the check runs there and the update goes through.
    got = gw.check(fragment=False)
    assert got["got"] is True and got["events"][-1] == "bundle 0.2.1 received: verified and installed at the restart"
    # ... and it no longer gives up: these bytes verified, recorded as a check at boot would have.
    assert gw.seen() == {"sha256": hashlib.sha256((gw.www / "channel.njch").read_bytes()).hexdigest(), "ok": True,
                         "key": "test-vendor-1"}
    assert gw.boot() == [str(gw.root / "a"), "0.2.1"]


def test_a_check_with_no_room_to_load_its_code_restarts_once_for_a_whole_heap_and_never_loops(gw):
    """The check's modules were dropped after the last check and the heap fragmented since: it cannot
    even import them. It restarts for the check at the start of the next run, once: a run after that
    restart with no room either gives up (no restart, a check later still tried), until one loads."""
    got = gw.check(cold=True)
    assert got["got"] is True and got["restarts"] == 1, got
    assert got["events"][-1] == "update check: no room in the heap to load its code now: checked after a restart"
    assert gw.seen()["gave_up"] is True and gw.seen()["code"] is True and gw.pending() is None
    assert gw.boot() == [None, None] and gw.resets == 0  # an ordinary boot: nothing to check there
    for _ in range(2):  # that run fragmented too: no room again, and no second restart
        got = gw.check(cold=True)
        assert got["restarts"] == 0 and got["got"].startswith("MemoryError: no room in the heap to load"), got
        assert "nor after the last restart: not checked, no restart for it" in got["events"][-1], got
    # A run whose heap has room: the code loads, the record goes, the update comes.
    got = gw.check(fragment=False, keys=False)
    assert got["got"] is True and got["events"][-1] == "bundle 0.2.0 received: verified and installed at the restart"
    assert not (gw.root / "channel.seen").exists()
    assert gw.boot() == [str(gw.root / "a"), "0.2.0"]


def test_a_version_installed_over_usb_clears_a_check_that_gave_up(gw):
    """Given up (no room for the channel's check even at the restart) is about the heap of the firmware
    that gave up: a crew's push installs another, whose checks may restart for a check at boot again."""
    assert gw.check()["restarts"] == 1
    assert gw.boot(fragment=True, preload=True) is None
    assert gw.seen()["gave_up"] is True
    gw._run(PUSH, "PUSH", bundle=str(gw.vendor.bundle("0.2.0")))
    assert not (gw.root / "channel.seen").exists()
    assert gw.boot() == [str(gw.root / "a"), "0.2.0"]
    assert gw._run(CONFIRM, "CONFIRM")[1] is True
    gw.publish("0.2.1")
    got = gw.check()  # the pushed version's check, short of room: deferred to the restart again
    assert got["restarts"] == 1 and gw.pending()["channel"] == str(gw.root / "channel.njch"), got


@pytest.mark.parametrize("why", ["key-file-gone", "pending-note-torn"])
def test_a_check_at_the_restart_that_recorded_nothing_is_not_retried_by_another_restart(gw, why):
    """The check at boot did not get as far as recording an outcome: the key file it names is gone,
    or a power cut tore the note that names the channel. Without a record the next check in the
    running heap would defer again and reset, each time, for ever: each channel's bytes get one."""
    restarts = 0
    for _ in range(3):
        got = gw.check()
        restarts += got["restarts"]
        if got["restarts"] == 0:
            break
        if why == "key-file-gone":
            saved = gw.key.read_text()
            gw.key.unlink()
            assert gw.boot() is None  # reset into a fresh heap, the check not done
            gw.key.write_text(saved)
        else:
            (gw.root / "pending.json").write_text('{"channel": "')
            assert gw.boot() == [None, None]  # the note dropped: an ordinary boot
    assert restarts == 1, "%d restarts into a check at boot for the same channel" % restarts
    assert got["restarts"] == 0 and gw.pending() is None, got
    assert gw.seen()["gave_up"] is True
    assert got["got"].startswith("ChannelError: channel not checked even at boot"), got


def test_a_bundle_with_no_room_for_its_check_even_at_the_restart_is_refused_once_and_the_gateway_runs_on(gw):
    """The bundle's own check at boot finds no room (the boot's heap fragmented here): refused, said in
    the ledger, the firmware it had runs on, and that version is not fetched again in this boot, so
    there is no reset after it (the next ordinary boot may try once more)."""
    assert gw.check(fragment=False)["restarts"] == 1  # room for the channel: the bundle is fetched at once
    assert gw.pending()["bundle"] == str(gw.root / "incoming.njota")
    assert gw.boot(fragment=True, preload=True) == [None, None] and gw.resets == 0
    assert gw.pending() is None and not (gw.root / "incoming.njota").exists()
    p = gw.pointer()
    assert p["refused"] == "0.2.0" and p["state"] == "confirmed" and not p.get("active")
    got = gw.check(fragment=False)  # the application of that boot: told, and nothing fetched
    assert got["got"] is False and got["restarts"] == 0 and gw.pending() is None, got
    assert [t for t in got["events"] if t.startswith("update refused: MemoryError")], got
