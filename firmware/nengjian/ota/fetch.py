"""Signed updates fetched over the uplink: now and then ask the vendor's update server whether a
bundle newer than the running version waits for this board, download it and install it.

Owns: the offer request and its answer, the download into the updater's incoming file, handing it
to the check at the next boot (Updater.defer, then a restart), and not fetching a version refused
there again until the boot after; and what is not fetched at all: anything while a version is on
trial, a version older than the minimum (unless the offer says it is a signed downgrade: the
manifest's signature decides at the restart), a download larger than the offer's size or than the
volume can take beside its reserve, and anything over plain http unless the config says
`ota.insecure` (then logged at every start). Verifying and switching belong to
nengjian.ota.updater: its signature check decides, whoever delivered the file (a crew's USB push or
this).
Imported only where the site config names `ota.url` and the vendor key is provisioned.

Offer (our format; the vendor runs the server, `nengjian_host.sim.updateserver` is the reference one):
    GET <ota.url>?board=<board>&version=<running>
    -> 200 {"version": "0.2.0", "url": bundle URL (absolute, or a path on the same server),
            "size": bytes (required, > 0),
            "replaces_down_to": version}           a version to install (the last only for a
                                                   deliberate downgrade, as its manifest says)
    -> 204, or 200 with the running version        nothing to do
"""

import asyncio
import gc
import json

from nengjian.core import log
from nengjian.net import http
from nengjian.ota import updater as otaupdater

FIRST_CHECK_MS = 10000
DOWNLOAD_MS = 600000  # a whole bundle over a slow 4G link: one deadline for the transfer
WAIT_MS = 10000  # link down or a version on trial: look again this soon, not a whole check period later
RETRY_MS = 3600000  # a check that failed (server down, link flapping) is tried again within the hour
INSECURE_WARNING = ("INSECURE: updates over plain http (ota.insecure is on): offers and downloads can be "
                    "altered or held back on the way. Use https with a pinned ca.")


class OtaFetch:
    def __init__(self, updater, url, running, board_name, event, every_s=86400, ssl=None, restart=None,
                 timeout_ms=60000, insecure=False):
        self.updater = updater
        self.url = url
        self.running = running
        self.board = board_name
        self._event = event
        self.every_ms = every_s * 1000
        self.ssl = ssl
        self.restart = restart  # the app flushes the store and resets into the check at boot
        self.timeout_ms = timeout_ms
        self.insecure = bool(insecure)
        self.off = not (url.startswith("https://") or insecure)
        if self.off:
            event("ota", "update server not asked (ota.url is plain http and ota.insecure is off): "
                         "updates over USB only")
        elif insecure:
            # Every start, on purpose: this must stay visible in the ledger for as long as it is on.
            event("security", "update server: " + INSECURE_WARNING)
        self.declined = None  # the last offer not fetched (told once, not at every check)
        self.refused = updater.take_refused()  # refused at this boot: not fetched again until the next
        self.last_error = ""
        self.checks = 0

    def _offer_url(self):
        return "%s%sboard=%s&version=%s" % (self.url, "&" if "?" in self.url else "?", self.board, self.running)

    def _bundle_url(self, where):
        if "://" in where:
            return where
        scheme, host, port, _path = http.split_url(self.url)
        return "%s://%s:%d%s" % (scheme, host, port, where if where.startswith("/") else "/" + where)

    async def download(self, url, path, size):
        """GET url into the file path, streamed to flash by the uplink's HTTP client (one deadline for
        the whole transfer; the server must send Content-Length). Exactly `size` bytes, the offer's
        (the caller checked that they fit): a longer answer is cut off there, never written on."""
        if not size or size <= otaupdater.HEAD:
            raise otaupdater.OtaError("a download needs the bundle's size")
        self._left = size
        try:
            with open(path, "wb") as self._out:
                status, _ = await http.request("GET", url, b"", None, DOWNLOAD_MS, self.ssl, max_body=size,
                                               into=self)
        finally:
            self._out = None
        if status != 200:
            raise otaupdater.OtaError("GET %s: HTTP %d" % (url, status))
        if self._left:
            raise otaupdater.OtaError("GET %s: %d bytes, the offer said %d" % (url, size - self._left, size))

    def write(self, b):
        # The download's file, as http.request sees it: it never grows past the offer's size.
        n = len(b)
        if n > self._left:
            raise otaupdater.OtaError("the download is longer than the offer said")
        self._left -= n
        return self._out.write(b)

    def _plain_refused(self, url):
        if url.startswith("https://") or self.insecure:
            return
        raise otaupdater.OtaError("%s is plain http: refused (ota.insecure is off)" % url.split("?")[0])

    async def check(self):
        """One round: ask, and download what is offered for the check at the restart. True if a
        bundle was downloaded (the gateway restarts into the check)."""
        self.checks += 1
        why = self.updater.refusal()
        if why:
            raise otaupdater.OtaError("update server not asked: " + why)
        self._plain_refused(self.url)
        status, body = await http.request("GET", self._offer_url(), b"", None, self.timeout_ms, self.ssl)
        if status == 204:
            return False
        if status != 200:
            raise otaupdater.OtaError("update server answered HTTP %d" % status)
        try:
            http.check_json(body)  # json.loads itself fails with MemoryError on a hostile nesting
            offer = json.loads(body)
            version, where = offer["version"], offer["url"]
            size, down_to = offer.get("size"), offer.get("replaces_down_to")
        except (ValueError, KeyError, TypeError, AttributeError, http.HttpError):
            raise otaupdater.OtaError("update server's offer is not {version, url, size}: %r" % bytes(body[:80]))
        if version == self.running or version == self.refused:
            return False
        if type(size) is not int or size <= otaupdater.HEAD:  # no size would be no bound on the download
            raise otaupdater.OtaError("update server's offer of %s gives no size (%r): not downloaded" % (
                version, size))
        why = self.updater.refusal(version, down_to)
        if why:
            if version != self.declined:
                self.declined = version
                self._event("ota", "version %s offered by the update server: not fetched (%s)" % (version, why))
            return False
        url = self._bundle_url(where)
        self._plain_refused(url)
        path = self.updater.incoming(size)  # OtaError when the volume cannot take it beside its reserve
        self._event("ota", "version %s offered by the update server: downloading" % version)
        gc.collect()  # the download runs beside polling and uploads: start it from a collected heap
        handed_over = False
        try:
            await self.download(url, path, size)
            # Checked at the restart, in a fresh heap (nengjian.ota: a long-running heap is too
            # fragmented for the signature check); a refusal comes back through take_refused().
            self.updater.defer(path, version)
            handed_over = True
        finally:
            if not handed_over:  # failed or cancelled: no partial bundle left on flash
                self.updater.discard(path)
        if self.restart is not None:
            self.restart()
        return True

    async def run(self, link_up=None):
        if self.off:
            return
        await asyncio.sleep_ms(FIRST_CHECK_MS)  # the start-up traffic (registration, back-fill) goes first
        while True:
            # One update at a time: a version on trial is confirmed or rolled back first. A check
            # skipped for either reason waits for the link, not for the next period (a day by default).
            if self.updater.on_trial() or (link_up is not None and not link_up()):
                await asyncio.sleep_ms(WAIT_MS)
                continue
            wait_ms = self.every_ms
            try:
                await self.check()
                self.last_error = ""
            except Exception as e:  # noqa: BLE001 - a failed check is tried again later
                self.last_error = "%s: %s" % (type(e).__name__, e)
                log.warn("ota", "update check failed: %s" % self.last_error)
                wait_ms = min(wait_ms, RETRY_MS)
            await asyncio.sleep_ms(wait_ms)
