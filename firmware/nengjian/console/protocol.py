"""USB console: line commands for a crew's laptop and the host tools, served while the gateway runs.

Owns: reading the console (stdin) without blocking the application, the protocol and the answer
format. The commands themselves live in nengjian.console.commands (imported by a request and dropped
after a quiet minute, see UNLOAD_MS). It never touches Ctrl-C: MicroPython's interrupt character (0x03) stops the application
with KeyboardInterrupt and gives the REPL, so `mpremote` gets into the raw REPL without a power
cycle (SPEC 7, field tools). On the ESP32 the USB/UART driver turns 0x03 into KeyboardInterrupt
before the byte reaches stdin (a pending exception the VM raises between two bytecodes). On the sim
board 0x03 reaches this reader, which raises KeyboardInterrupt itself, with the same effect: the
launcher never makes it a SIGINT, which the unix port would raise inside whatever C code runs (the
garbage collector, left locked; littlefs, left half way; nengjian_host.sim.gateway).

Protocol (one request per line, CR or LF ends it)
-------------------------------------------------
    [#ID ]COMMAND [ARGS...]

Every answer is one line `@nj ` + a JSON object carrying the request's "id" (null without one); the
last answer to a request has "end": true and "ok": true or false (then "error" says why). Log lines
never start with "@nj ", so a host picks answers out of the console stream. Lines a human types
(not starting with '#') are echoed as typed; machine requests are not.

    help                    the commands, as text lines
    status                  one answer: uptime, firmware, board, id, mode, clock, links, meters,
                            store, destinations, alarms, heap and flash
    events N                the last N ledger events, oldest first, one answer each
    files                   what a pull copies (store, session files, config): path, size, kind;
                            flushes the store first so every record taken so far is on flash
    get PATH OFF LEN        LEN bytes (at most 65536) of PATH from OFF as "data" answers of at
                            most 384 bytes: {"off", "n", "crc" (crc32), "b64"}; the last has the
                            file's "size" now. Only files on the data volume and the config's
                            site.json, identity.json and ota_key.json, JSON secrets masked
                            (nengjian.console.guard)
    sha256 PATH [LEN]       sha256 of PATH as `get` shows it, or of its first LEN bytes, computed here
    put PATH SIZE SHA256    write a file directly in the config directory: the host then sends lines
                            `[#ID ]+BASE64`, each answered with {"have": n}; after SIZE bytes whose
                            sha256 matches, PATH is replaced (PATH.new renamed over it:
                            nengjian.core.statefile); else nothing changes. On a provisioned gateway
                            a trust anchor (update key, CA, client key or certificate, the trust
                            site.json sets) is replaced only while the service button is held
    scan JSON               search a bus for meters (nengjian.meters.scan; JSON: its options and
                            "port", default rs485_0): "find" and "progress" answers, then the count.
                            Through the gateway's own Bus when it polls that port (the scan takes
                            the bus lock per probe), else on a fresh one
    visit TEXT              record a crew's inspection visit in the ledger
    manual JSON             store a manual entry (coal/oil delivery) as a value to upload
    ota [SIZE SHA256]       without arguments: the update slots; with them: receive a signed
                            bundle as `put` does, verify it, install it in the spare slot
    heap [map]              micropython.mem_info()'s lines (map: with the block map; "max free sz"
                            is the largest free block, in GC blocks of 4 machine words: 32 bytes
                            on the 64-bit sim, 16 on an ESP32), then {"free", "used"}
    `status` and `heap` are served here, not by the commands module: a heap too fragmented to load
    that still answers them, and `heap` allocates nothing to find out what is left.
    reset                   answer, then reset the board

Long answers (get, sha256, events) give the scheduler back between lines, so polling and delivery
go on while a crew pulls data.
"""

import asyncio
import gc
import json
import sys

from nengjian.core import log, statefile
from nengjian.core.compat import ticks_diff, ticks_ms, unload

PREFIX = "@nj "
LINE_MAX = 1024
IDLE_MS = 20
# The commands module (some 12 KB of heap on the sim, 6 KB on an ESP32) is imported by a request and
# dropped after UNLOAD_MS without one: a crew visits once a month, the gateway runs in between, and an
# ESP32 without PSRAM cannot keep it. Its import is many small objects, not one block, so a heap
# that runs the gateway still takes it; if it does not, the request is answered with the
# MemoryError and the next one tries again. 0: imported at start and kept.
UNLOAD_MS = 60000
# What the console may read and write (nengjian.console.guard) is loaded by the requests that need it
# and dropped after a quiet minute: a crew visits once a month, the gateway runs in between.
GUARD = "nengjian.console.guard"
GUARD_MS = 60000

_BOOT_MS = ticks_ms()


class Console:
    def __init__(self, board, version):
        self.board = board
        self.version = version
        self.gw = None
        self.safe_reason = None
        self.safe_why = None
        # The line is gathered in a buffer allocated once, at start: growing one byte by byte needs
        # ever larger contiguous blocks, which a long-running gateway's heap may no longer have.
        self._line = bytearray(LINE_MAX)
        self._n = 0
        self._human = False
        self._over = False
        self._b1 = bytearray(1)
        self._up_ms = ticks_diff(ticks_ms(), _BOOT_MS)  # since the firmware was imported
        self._up_last = ticks_ms()
        self._cmds = None  # nengjian.console.commands while loaded
        self._last_ms = 0
        self._put = None  # [path, size, sha, file, hasher, have]
        self._put_ms = 0
        self.requests = 0

    # ---- state fed by the application
    def attach(self, gw):
        self.gw = gw
        self.safe_reason = None
        self.safe_why = None

    def safe(self, reason, why=None):
        """Safe mode for `reason` (English); `why` is what the laptop says it from in the installer's
        language (the status's "safe": {"code", ...}): the gateway carries no catalogue."""
        self.safe_reason = reason
        self.safe_why = why
        if reason is not None:
            self.gw = None

    # ---- output
    def answer(self, rid, obj, end=False, ok=True):
        obj["id"] = rid
        if end:
            obj["end"] = True
            obj["ok"] = ok
        # Streamed: no string of the whole answer is built (a status is over 1 KB).
        out = sys.stdout
        out.write(PREFIX)
        json.dump(obj, out)
        out.write("\n")

    def fail(self, rid, message):
        self.answer(rid, {"error": message}, True, False)

    # ---- input
    def load(self):
        if self._cmds is None:
            gc.collect()
            from nengjian.console import commands as consolecmd

            self._cmds = consolecmd

    def uptime_s(self):
        """Seconds since boot, monotonic across the ticks' wrap-around (a bare ticks_diff from boot wraps
        after about 6.2 days on an ESP32) as long as it is called more often than that: the idle loop
        calls it on every pass. The gateway's own figure is the supervisor's, counted the same way."""
        now = ticks_ms()
        self._up_ms += max(0, ticks_diff(now, self._up_last))
        self._up_last = now
        return self._up_ms // 1000

    async def run(self):
        import select

        stdin = getattr(sys.stdin, "buffer", sys.stdin)
        poller = select.poll()
        poller.register(sys.stdin, select.POLLIN)
        b1 = self._b1
        while True:
            if not poller.poll(0):
                self.uptime_s()  # every idle pass, far more often than the ticks wrap
                if self._put and ticks_diff(ticks_ms(), self._put_ms) > 30000:
                    self._abort_put()
                if UNLOAD_MS and self._cmds is not None and ticks_diff(ticks_ms(), self._last_ms) > UNLOAD_MS:
                    self._unload()
                if GUARD in sys.modules and not self._put and ticks_diff(ticks_ms(), self._last_ms) > GUARD_MS:
                    unload(GUARD)
                await asyncio.sleep_ms(IDLE_MS)
                continue
            try:
                n = stdin.readinto(b1)  # type: ignore[misc]  # MicroPython's sys.stdin has readinto
            except OSError:
                n = 0
            if not n:
                await asyncio.sleep_ms(IDLE_MS)
                continue
            c = b1[0]
            if c == 3:
                raise KeyboardInterrupt
            if c == 10 or c == 13:
                if self._human:
                    sys.stdout.write("\r\n")
                line = bytes(memoryview(self._line)[:self._n])
                self._n = 0
                self._human = False
                if self._over:
                    self._over = False
                    self.fail(None, "line longer than %d bytes: ignored" % LINE_MAX)
                elif line:
                    try:
                        await self._handle(line)
                    except Exception as e:  # the console must outlive any one request
                        self._crashed(None, "console", e)
                continue
            if not self._n:
                self._human = c != 35  # '#': a host's request, not echoed
            if c == 8 or c == 127:
                if self._n:
                    self._n -= 1
                    if self._human:
                        sys.stdout.write("\b \b")
                continue
            if self._n < LINE_MAX:
                self._line[self._n] = c
                self._n += 1
                if self._human and 32 <= c < 127:
                    sys.stdout.write(chr(c))
            else:
                self._over = True

    async def _handle(self, raw):
        self.requests += 1
        try:
            text = raw.decode()
        except UnicodeError:
            self.fail(None, "request is not UTF-8")
            return
        rid = None
        if text.startswith("#"):
            head, _, text = text.partition(" ")
            try:
                rid = int(head[1:])
            except ValueError:
                rid = head[1:]
        text = text.strip()
        if text.startswith("+"):
            cmd, args, text = "+", (), text[1:]
        else:
            if self._put:
                self._abort_put()
            words = text.split()
            if not words:
                return
            cmd, args, text = words[0], words[1:], text[len(words[0]):].strip()
        self._last_ms = ticks_ms()
        if cmd == "heap":
            self._heap(rid, args)
            return
        if cmd == "status":
            # Served here, not by the commands module: its import needs a block for its globals (about
            # 1 KB on the sim) that a heap fragmented by a day of running may not have, and a crew's
            # status must answer even then (nengjian.console.status is loaded with the application).
            from nengjian.console import status

            try:
                self.answer(rid, status.full(self), True)
            except Exception as e:  # MemoryError included: answer, and keep the console
                self._crashed(rid, cmd, e)
            return
        try:
            self.load()
            await self._cmds.run(self, rid, cmd, args, text)
        except (IndexError, ValueError) as e:
            self.fail(rid, "bad arguments for %s: %s (try help)" % (cmd, e))
        except OSError as e:
            self.fail(rid, "%s: %s" % (cmd, e))
        except Exception as e:  # MemoryError included: answer, and keep the console
            self._crashed(rid, cmd, e)

    def _heap(self, rid, args):
        import micropython

        gc.collect()
        if args and args[0] == "map":
            micropython.mem_info(1)
        else:
            micropython.mem_info()
        self.answer(rid, {"free": gc.mem_free(), "used": gc.mem_alloc()}, True)

    def _unload(self):
        self._cmds = None
        unload("nengjian.console.commands")
        unload(GUARD)
        gc.collect()

    def _crashed(self, rid, cmd, e):
        gc.collect()
        sys.stdout.write("\n")  # end an answer line cut short
        try:  # where it failed, for the crew's report: a log line, never an answer
            sys.print_exception(e)  # type: ignore[attr-defined]  # MicroPython's sys has it
        except Exception:  # noqa: BLE001 - the answer below matters more
            pass
        try:
            self.fail(rid, "%s failed: %s %s (heap free %d)" % (cmd, type(e).__name__, e, gc.mem_free()))
        except Exception:  # nothing more to be done; the next request tries again
            pass

    def _abort_put(self):
        p = self._put
        self._put = None
        if p:
            p[3].close()
            statefile.abandon(p[0])  # what arrived so far never replaces the file

    # ---- Ctrl-C
    def stopped(self):
        """The application stopped on Ctrl-C: make what was taken durable and say how to go on."""
        mounted = ""
        if self.gw is not None:
            self.gw.store.close()
            log.info("console", "store flushed: last record %d" % self.gw.store.durable_seq)
            mounted = "%s stays mounted for file access; " % self.board.DATA_MOUNT
        log.info("console", "application stopped: MicroPython REPL; %s"
                 "Ctrl-D (soft reset) or a reset starts the gateway again" % mounted)


# One console per gateway; the application wires it with these.
_console = None


def start(board, version):
    """Create the console and run it as a task of the running event loop."""
    global _console
    _console = Console(board, version)
    if not UNLOAD_MS:
        try:
            _console.load()
        except MemoryError:  # the first request tries again
            pass
    asyncio.create_task(_console.run())
    return _console


def attach(gw):
    if _console is not None:
        _console.attach(gw)


def safe(reason, why=None):
    if _console is not None:
        _console.safe(reason, why)


def stopped():
    if _console is not None:
        _console.stopped()
