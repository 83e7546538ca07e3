"""Signed updates, the part a running gateway keeps loaded (nengjian.app): the trial it booted into -
confirmed once healthy (health.Supervisor), rolled back when not healthy within its window - the
ledger texts the boot path left in the pointer, and the schedule of update checks.

Everything else is loaded for one job and dropped with every reference when it is done (load(),
drop()): an update check (nengjian.ota.fetch, nengjian.ota.channel and nengjian.ota.updater: the
download, the signature check) and a crew's push (the console's `ota`, nengjian.ota.updater). A
check runs once a day by default: between checks their code holds no heap, only the names it
interned, and the vendor keys, which the first job loads (tests/firmware/ota/test_resident.py bounds
what a check leaves; bench/bench_heap.py measures the rest). The pointer and its format are
nengjian.ota.slots'. A check in a heap with no room for the signature check defers it to the restart,
and one that cannot be done even there gives up (nengjian.ota.channel.seen; on MicroPython with a
fragmented heap: tests/firmware/ota/test_heap_deferral.py). So does one with no room to load its
code (_no_room_for_code): the restart's own first check, in a whole heap, is its check.

The trial this gateway booted into is the only one it confirms or rolls back: a version a crew
pushes while it runs is on trial from the next boot, and is not rolled back before it ever ran.
"""

import asyncio
import gc
import os

from nengjian.core import log
from nengjian.core.compat import unload
from nengjian.ota import slots

FIRST_CHECK_MS = 10000
WAIT_MS = 10000  # link down or a version on trial: look again this soon, not a whole check period later
RETRY_MS = 3600000  # a check that failed (server down, link flapping) is tried again within the hour
INSECURE_WARNING = ("INSECURE: updates over plain http (ota.insecure is on): offers and downloads can be "
                    "altered or held back on the way. Use https with a pinned ca.")
NO_CODE = "code"  # channel.seen's mark of a record left by a check that could not load its code
# What a check or an install loads; the package itself too, which a job's import brings back.
JOB = ("nengjian.ota.fetch", "nengjian.ota.channel", "nengjian.ota.updater", "nengjian.ota.proof", "nengjian.ota")


def drop():
    """Forget every module of an update job, so that their code and data can be collected."""
    for name in JOB:
        unload(name)
    gc.collect()


def announce(url, insecure, event):
    """Say at the start how updates are fetched; True if the update server is not to be asked."""
    if not (url.startswith("https://") or insecure):
        event("ota", "update server not asked (ota.url is plain http and ota.insecure is off): "
                     "updates over USB only", "ota.plain_http")
        return True
    if insecure:
        # Every start, on purpose: this must stay visible in the ledger for as long as it is on.
        event("security", "update server: %s" % INSECURE_WARNING, "security.ota_insecure")
    return False


class Resident:
    """gw.updater of nengjian.app: the trial it booted into, and (schedule()) the update checks."""

    def __init__(self, root, key_path, board_name, running, event, window_s=1800, max_boots=2):
        self.root = root
        self.key_path = key_path
        self.board = board_name
        self.running = running
        self._event = event
        self.window_s = window_s
        self.max_boots = max_boots
        slots.take_log(root, event)
        self.trial = slots.on_trial(root)  # booted into a trial: this one is confirmed or rolled back
        self.refused = slots.take_refused(root)  # refused at this boot: not fetched again until the next
        self.url = None
        self.declined = None  # the last answer not acted on (told once, not at every check)
        self.last_error = ""
        self.checks = 0
        # The vendor keys, loaded by the first job and kept (some hundred bytes a key): a key's modulus
        # is read as one string of 768 hex digits, and a heap that has run for a while may have no
        # block for it, which would fail every check before it could defer its signature check.
        self.keys = None

    def confirm(self):
        if not self.trial:
            return False
        self.trial = False
        return slots.confirm(self.root, self._event)

    def check_trial(self, uptime_s):
        if not self.trial or not slots.check_trial(self.root, uptime_s, self.window_s, self._event):
            return False
        self.trial = False
        return True

    def load(self, keys_needed=True):
        """A nengjian.ota.updater.Updater for one job (drop() when done). With keys_needed False its keys
        may be None: no room to load them (an update check then leaves the signature check to the
        restart, nengjian.ota.fetch)."""
        from nengjian.ota import updater

        if self.keys is None:
            try:
                self.keys = updater.load_keys(self.key_path)
            except MemoryError:
                if keys_needed:
                    raise
        return updater.Updater(self.root, self.keys, self.board, self._event, self.window_s,
                               self.max_boots, self.key_path, self.running)

    def drop(self):
        drop()

    def defer(self, path, version=None):
        """A crew's push the running heap has no room to check (not even for the updater's code):
        left to the check at the next boot, as the updater's defer() leaves it."""
        if slots.on_trial(self.root):
            raise slots.OtaError("a version is on trial: it must be confirmed healthy or rolled back first")
        slots.defer_bundle(self.root, path, version, self.key_path, self.board, self.window_s, self.max_boots,
                     self.running, self._event)

    def discard(self, path):
        slots.remove(path)

    def schedule(self, url, every_s, ssl, restart, insecure=False, gateway_id=""):
        """Ask the update channel at `url` every `every_s` (run()); said at every start (announce)."""
        self.url = url
        self.every_ms = every_s * 1000
        self.ssl = ssl
        self.restart = restart
        self.insecure = bool(insecure)
        self.gateway_id = gateway_id
        self.off = announce(url, insecure, self._event)

    async def check(self):
        """One update check (nengjian.ota.fetch.OtaFetch.check), with its modules loaded for it and
        dropped after it whatever the outcome."""
        self.checks += 1
        try:
            try:
                # channel too, which fetch imports only once the check is under way: all of its code in now.
                from nengjian.ota import channel, fetch

                up = self.load(False)
            except MemoryError as e:
                return self._no_room_for_code(e)
            del channel  # held by sys.modules until drop(), which fetch.check() leaves it to
            self._code_loaded()
            f = fetch.OtaFetch(up, self.url, self.running, self.board, self._event, 0, self.ssl,
                               self.restart, insecure=self.insecure, gateway_id=self.gateway_id)
            fetch = None
            f.refused, f.declined = self.refused, self.declined
            try:
                return await f.check()
            finally:
                self.declined = f.declined
                self.keys = f.updater.keys or self.keys  # the channel may have rotated them
        finally:
            f = up = None
            drop()

    def _no_room_for_code(self, e):
        """The check could not import its code: loading a module takes one block for its constant table
        (2 bytes a name and 8 an object on the sim; nengjian.ota.updater's: 728 bytes, about 560 on an
        ESP32), and sys.modules one for its own table when it grows (1,168 bytes from 59 modules to 60);
        a heap that has run for a while may have no free block that large. Checked after a
        restart, in a heap as whole as at boot, as a channel with no room for its signature check is
        (nengjian.ota.fetch); once: the record left for it says given up unless a check there loads its
        code (_code_loaded)."""
        log.warn("ota", "update check: its code not loaded: MemoryError: %s" % e)
        e = None
        gc.collect()
        if self.restart is None:
            raise MemoryError("no room in the heap to load the update check's code")
        if slots.seen_gave_up(self.root):
            # The restart for it came and did not help, or a check at boot gave up: another would loop.
            if self.declined != NO_CODE:
                self.declined = NO_CODE
                self._event("ota", "update check: no room in the heap to load its code, nor after the last "
                                   "restart: not checked, no restart for it", "ota.no_heap_code_gave_up")
            raise MemoryError("no room in the heap to load the update check's code (nor after the last restart)")
        try:
            os.mkdir(self.root)  # no update has been installed yet: the directory may not be there
        except OSError:
            pass  # there already (if it could not be made, the record's write says so)
        slots.write_json(self.root + "/" + slots.SEEN, {
            "sha256": None, "ok": False, "gave_up": True, NO_CODE: True,
            "why": "not checked even after a restart (no room in the heap to load the update check's code)"})
        self._event("ota", "update check: no room in the heap to load its code now: checked after a restart",
                    "ota.no_heap_code")
        self.restart()
        return True

    def _code_loaded(self):
        last = slots.seen_gave_up(self.root)
        if last is not None and last.get(NO_CODE):
            slots.remove(self.root + "/" + slots.SEEN)  # it loaded: a later one short of room may restart again

    async def run(self, link_up=None):
        if self.url is None or self.off:
            return
        await asyncio.sleep_ms(FIRST_CHECK_MS)  # the start-up traffic (registration, back-fill) goes first
        while True:
            # One update at a time: a version on trial is confirmed or rolled back first. A check
            # skipped for either reason waits for the link, not for the next period (a day by default).
            if slots.on_trial(self.root) or (link_up is not None and not link_up()):
                await asyncio.sleep_ms(WAIT_MS)
                continue
            wait_ms = self.every_ms
            try:
                await self.check()
                self.last_error = ""
            except Exception as e:  # noqa: BLE001 - a failed check is tried again later
                if getattr(e, "not_offered", False):  # the channel was read and trusted: nothing for us now
                    self.last_error = ""
                    if str(e) != self.declined:
                        self.declined = str(e)
                        self._event("ota", "update channel: %s" % e, "ota.channel")
                else:
                    self.last_error = "%s: %s" % (type(e).__name__, e)
                    log.warn("ota", "update check failed: %s" % self.last_error)
                    wait_ms = min(wait_ms, RETRY_MS)
            await asyncio.sleep_ms(wait_ms)
