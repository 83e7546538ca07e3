"""Signed updates fetched over the uplink from a static update channel: now and then read the vendor's
signed channel file, and when it offers this gateway a version to install, download that bundle and
hand it to the check at the next boot.

Owns: reading and trusting the channel (size limit, signature, this board's entry, the staged
rollout, the key rotation it carries), the download into the updater's incoming file checked against
the entry's size and hash, handing it to the check at the next boot (Updater.defer, then a restart),
and not fetching a version refused there again until the boot after, nor one that failed its trial
here and was rolled back (slots' "rolled_back"); and what is not fetched at all:
anything while a version is on trial, a version older than the minimum (unless the entry says it is
a signed downgrade: the bundle's own signed manifest decides at the restart), a bundle larger than
the volume can take beside its reserve, and anything over plain http unless the config says
`ota.insecure` (then logged at every start). Verifying and switching the bundle belong to
nengjian.ota.updater: its signature check decides, whoever delivered the file (a crew's USB push or
this). Imported for one check where the site config names `ota.url` and the vendor key is
provisioned, and dropped after it with the updater (nengjian.ota.resident schedules the checks and
keeps what one check tells the next: the version refused at this boot, the answer last told).

The channel's format, what is trusted when, the staged rollout and key rotation are
nengjian.ota.channel's, imported for a check only and dropped after it (a check runs once a day; its
code need not hold heap in between).
"""


import gc

from nengjian.core.compat import unload
from nengjian.net import http
from nengjian.ota import slots
from nengjian.ota import updater as otaupdater

DOWNLOAD_MS = 600000  # a whole bundle over a slow 4G link: one deadline for the transfer
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
        self.ssl = ssl
        self.restart = restart  # the app flushes the store and resets into the check at boot
        self.timeout_ms = timeout_ms
        self.insecure = bool(insecure)
        # Said once per boot by the resident part (nengjian.ota.resident), which makes one of these per check.
        self.off = not (url.startswith("https://") or insecure)
        self.declined = None  # the last answer not acted on (told once, not at every check)
        self.refused = updater.take_refused()  # refused at this boot: not fetched again until the next
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
            self._event("ota", text, "ota")

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
                if last.get("gave_up"):
                    raise channel.ChannelError("channel %s" % last.get("why"))
                if not last.get("ok"):
                    raise channel.ChannelSignatureError("channel refused at boot: %s" % last.get("why"))
                if up.keys is None:  # the key must still be trusted: without room for it, tried again later
                    raise MemoryError("no room in the heap for the vendor key")
                man = channel.read_channel(path, up.keys, mv, last.get("key"))
            else:
                try:
                    if up.keys is None:  # no room even for the key (Resident.load): nor for the check
                        raise MemoryError("no room in the heap for the vendor key")
                    man = channel.read_channel(path, up.keys, mv)
                except MemoryError:
                    if self.restart is None or getattr(up, "key_path", None) is None:
                        raise
                    if last is not None and last.get("gave_up"):
                        # The check at the last restart could not run either: another would loop.
                        self._tell("gave up", "update channel: no room in the heap for its signature check, "
                                              "nor at the last restart: not checked, no restart for it")
                        raise channel.ChannelError("no room in the heap for the channel's signature check "
                                                   "(nor at the last restart)")
                    # No heap block for the signature check: checked at the restart (channel.SEEN).
                    pending = up.root + "/" + slots.PENDING
                    slots.write_json(pending, {"channel": path, "key": up.key_path})
                    try:
                        # Given up unless the check at the restart records its outcome over this: one that
                        # never gets that far (no room to load its code, the key file gone) must not
                        # leave the next check to restart for the same bytes again, and so for ever.
                        slots.write_json(up.root + "/" + channel.SEEN, {
                            "sha256": whole, "ok": False, "gave_up": True,
                            "why": "not checked even at boot (the check there did not finish)"})
                    except OSError:
                        slots.remove(pending)
                        raise
                    kept = True
                    self._event("ota", "update channel: no room in the heap for its signature check now: "
                                       "checked at the restart", "ota.no_heap_now")
                    return None
                if last is not None and last.get("gave_up"):
                    # It fitted after all: a later check short of heap may restart for its check again.
                    try:
                        slots.write_json(up.root + "/" + channel.SEEN, {"sha256": whole, "ok": True, "key": man["key"]})
                    except OSError:
                        pass  # still given up: no restart for a check, which is the safe side
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
        if version == self.updater.state().get("rolled_back"):
            self._tell(version, "version %s offered by the update channel: not fetched (it failed its trial on "
                                "this gateway and was rolled back)" % version)
            return False
        why = self.updater.refusal(version, down_to)
        if why:
            self._tell(version, "version %s offered by the update channel: not fetched (%s)" % (version, why))
            return False
        url = self._bundle_url(name)
        self._plain_refused(url)
        path = self.updater.incoming(size)  # OtaError when the volume cannot take it beside its reserve
        self._event("ota", "version %s offered by the update channel: downloading" % version, "ota.downloading")
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
