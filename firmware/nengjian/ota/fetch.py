"""Signed updates fetched over the uplink from a static update channel: now and then read the vendor's
signed channel file, and when it offers this gateway a version to install, download that bundle and
hand it to the check at the next boot.

Owns: reading and trusting the channel (size limit, signature, this board's entry, the staged
rollout, the key rotation it carries), the download into the updater's incoming file checked against
the entry's size and hash, handing it to the check at the next boot (Updater.defer, then a restart),
and not fetching a version refused there again until the boot after; and what is not fetched at all:
anything while a version is on trial, a version older than the minimum (unless the entry says it is
a signed downgrade: the bundle's own signed manifest decides at the restart), a bundle larger than
the volume can take beside its reserve, and anything over plain http unless the config says
`ota.insecure` (then logged at every start). Verifying and switching the bundle belong to
nengjian.ota.updater: its signature check decides, whoever delivered the file (a crew's USB push or
this). Imported only where the site config names `ota.url` and the vendor key is provisioned.

The channel's format, what is trusted when, the staged rollout and key rotation are
nengjian.ota.channel's, imported for a check only and dropped after it (a check runs once a day; its
code need not hold heap in between).
"""


import asyncio
import gc

from nengjian.core import log
from nengjian.core.compat import unload
from nengjian.net import http
from nengjian.ota import slots
from nengjian.ota import updater as otaupdater

FIRST_CHECK_MS = 10000
DOWNLOAD_MS = 600000  # a whole bundle over a slow 4G link: one deadline for the transfer
WAIT_MS = 10000  # link down or a version on trial: look again this soon, not a whole check period later
RETRY_MS = 3600000  # a check that failed (server down, link flapping) is tried again within the hour
INSECURE_WARNING = ("INSECURE: updates over plain http (ota.insecure is on): offers and downloads can be "
                    "altered or held back on the way. Use https with a pinned ca.")
CHANNEL_FILE = "channel.njch"
CHANNEL_CAP = 16 + otaupdater.MAX_SIG + 8192  # the channel file: header, signature, channel.CHANNEL_MAX


class OtaFetch:
    def __init__(self, updater, url, running, board_name, event, every_s=86400, ssl=None, restart=None,
                 timeout_ms=60000, insecure=False, gateway_id=""):
        self.updater = updater
        self.url = url
        self.running = running
        self.board = board_name
        self.gateway_id = gateway_id  # bytes (board.unique_id()) or text: channel.text_id at a check
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
        self.declined = None  # the last answer not acted on (told once, not at every check)
        self.refused = updater.take_refused()  # refused at this boot: not fetched again until the next
        self.last_error = ""
        self.checks = 0
        self._hash = None

    def _bundle_url(self, name):
        return self.url[:self.url.rfind("/") + 1] + name

    async def download(self, url, path, size, cap=False):
        """GET url into the file path, streamed to flash by the uplink's HTTP client (one deadline for
        the whole transfer; the server must send Content-Length), hashed as it arrives. Exactly
        `size` bytes; with `cap`, at most `size` (the channel file). A longer answer is cut off
        there, never written on. The SHA-256 of what was written is left in self._hash."""
        if not size or size <= otaupdater.HEAD:
            raise otaupdater.OtaError("a download needs the bundle's size")
        self._left = size
        self._got = 0
        self._cap = cap
        self._hash = otaupdater.sha256()
        try:
            with open(path, "wb") as self._out:
                status, _ = await http.request("GET", url, b"", None, DOWNLOAD_MS if not cap else self.timeout_ms,
                                               self.ssl, max_body=size, into=self)
        finally:
            self._out = None
        if status != 200:
            raise otaupdater.OtaError("GET %s: HTTP %d" % (url, status))
        if self._left and not cap:
            from nengjian.ota import channel

            raise channel.BundleMismatch("GET %s: %d bytes, the channel said %d" % (url, size - self._left, size))

    def write(self, b):
        # The download's file, as http.request sees it: it never grows past the size allowed.
        n = len(b)
        if n > self._left:
            from nengjian.ota import channel

            if self._cap:
                raise channel.ChannelTooLarge("channel file longer than %d bytes: not read further" % (
                    self._left + self._got))
            raise channel.BundleMismatch("the download is longer than the channel said")
        self._left -= n
        self._got += n
        self._hash.update(b)
        return self._out.write(b)

    def _plain_refused(self, url):
        if url.startswith("https://") or self.insecure:
            return
        raise otaupdater.OtaError("%s is plain http: refused (ota.insecure is off)" % url.split("?")[0])

    def _tell(self, what, text):
        if what != self.declined:
            self.declined = what
            self._event("ota", text)

    async def read(self, channel):
        """The channel's manifest, downloaded to flash and verified (channel.read_channel); its key
        changes applied."""
        up = self.updater
        path = up.root + "/" + CHANNEL_FILE
        otaupdater._makedirs(up.root)
        kept = False
        try:
            await self.download(self.url, path, CHANNEL_CAP, cap=True)
            whole = otaupdater._hex(self._hash.digest())
            mv = memoryview(bytearray(256))
            last = channel.seen(up.root)
            if last is not None and last.get("sha256") == whole:  # these bytes were checked at a boot
                if not last.get("ok"):
                    raise channel.ChannelSignatureError("channel refused at boot: %s" % last.get("why"))
                man = channel.read_channel(path, up.keys, mv, last.get("key"))
            else:
                try:
                    man = channel.read_channel(path, up.keys, mv)
                except MemoryError:
                    if self.restart is None or getattr(up, "key_path", None) is None:
                        raise
                    # No heap block for the signature check: checked at the restart (channel.SEEN).
                    slots.write_json(up.root + "/" + slots.PENDING, {"channel": path, "key": up.key_path})
                    kept = True
                    self._event("ota", "update channel: no room in the heap for its signature check now: "
                                       "checked at the restart")
                    return None
        finally:
            if not kept:
                slots.remove(path)
        if getattr(up, "key_path", None) is not None:
            keys = channel.rotate_keys(up.key_path, up.keys, man, self._event)
            if keys:
                up.keys = keys
                up.key = keys[0]
        return man

    async def check(self):
        """One round: read the channel, and download what it offers this gateway for the check at the
        restart. True if a bundle was downloaded (the gateway restarts into the check); a NotOffered
        error (nengjian.ota.channel) when the channel has nothing for it."""
        self.checks += 1
        why = self.updater.refusal()
        if why:
            raise otaupdater.OtaError("update server not asked: " + why)
        self._plain_refused(self.url)
        from nengjian.ota import channel

        try:
            return await self._check(channel)
        finally:
            unload("nengjian.ota.channel")

    async def _check(self, channel):
        man = await self.read(channel)
        if man is None:  # left for the check at the restart
            self.restart()
            return True
        version, size, digest, name, down_to = channel.entry_for(man, self.board, channel.text_id(self.gateway_id),
                                                                 self.running)
        man = None
        if version == self.running or version == self.refused:
            return False
        why = self.updater.refusal(version, down_to)
        if why:
            self._tell(version, "version %s offered by the update channel: not fetched (%s)" % (version, why))
            return False
        url = self._bundle_url(name)
        self._plain_refused(url)
        path = self.updater.incoming(size)  # OtaError when the volume cannot take it beside its reserve
        self._event("ota", "version %s offered by the update channel: downloading" % version)
        gc.collect()  # the download runs beside polling and uploads: start it from a collected heap
        handed_over = False
        try:
            await self.download(url, path, size)
            if otaupdater._hex(self._hash.digest()) != digest.lower():
                raise channel.BundleMismatch("%s does not match the SHA-256 the signed channel gives for it" % name)
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
                if getattr(e, "not_offered", False):  # the channel was read and trusted: nothing for us now
                    self.last_error = ""
                    self._tell(str(e), "update channel: %s" % e)
                    await asyncio.sleep_ms(wait_ms)
                    continue
                self.last_error = "%s: %s" % (type(e).__name__, e)
                log.warn("ota", "update check failed: %s" % self.last_error)
                wait_ms = min(wait_ms, RETRY_MS)
            await asyncio.sleep_ms(wait_ms)
