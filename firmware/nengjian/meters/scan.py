"""Bus scan: what answers on an RS-485 port, at which address and line settings.

- Modbus RTU: for each baud and parity, a FC 03 (or the given function) read of one register at
  every address in the range. Any well-formed reply from that address counts as present, an
  exception reply included (the register may simply not exist). A reply with a bad CRC is
  reported as `ok: false` (often the right address at the wrong line settings). An address found
  once is not probed again at other settings.
- DL/T 645-2007: read address (13H) to the AA..AA wildcard at each baud; -1997 meters, which have no
  read-address function, get a read of DI 9010 to the wildcard and are known by the address in the
  reply header. Only one meter may answer a wildcard: two at once garble each other, which is
  reported as such (read their addresses from the nameplates then).
- CJ/T 188 (optional): read address (03H) to type AAH and the wildcard address.

`run(port_factory, ...)` is a coroutine returning a list of finds (dicts: protocol, address, baud,
bits, parity, stop, ok, reply, hex); `main(args_json)` runs it and prints one JSON line per find,
`{"find": {...}}`, progress lines `{"progress": {...}}` and a final `{"done": {...}}`, so that a host
tool can drive it through the console (mpremote exec). Pass `bus=` to scan through a Bus the
gateway already owns: the scan then takes its lock per probe and the pollers wait in between.
"""

import asyncio
import json

from nengjian.bus.rs485 import Bus, BusTimeout, Line
from nengjian.core.compat import ticks_diff, ticks_ms
from nengjian.proto import modbus

DEFAULTS = {
    "modbus": True,
    "addresses": [1, 247],
    "bauds": [9600, 19200, 4800, 2400],
    "parities": ["N", "E"],
    "stop": 1,
    "fc": 3,
    "register": 0,
    "timeout_ms": 100,
    "dlt645": True,
    "dlt645_bauds": [2400, 1200, 4800, 9600],
    "dlt645_parity": "E",
    "cjt188": False,
    "cjt188_bauds": [2400],
    "cjt188_parity": "E",
}


probes = 0  # probes sent by the last run()


def _hex(buf, start, end):
    return "".join("%02X" % buf[i] for i in range(start, min(end, start + 64)))


def _find(protocol, address, line, ok, reply, hexdata):
    return {"protocol": protocol, "address": address, "baud": line.baud, "bits": line.bits,
            "parity": line.parity, "stop": line.stop, "ok": ok, "reply": reply, "hex": hexdata}


class Scanner:
    def __init__(self, bus, opts, on_find=None, on_progress=None):
        self.bus = bus
        self.o = opts
        self.on_find = on_find
        self.on_progress = on_progress
        self.finds = []
        self.probes = 0
        self._unit = 0
        self._fc = 3

    def _add(self, f):
        self.finds.append(f)
        if self.on_find:
            self.on_find(f)

    def _progress(self, what, line):
        if self.on_progress:
            self.on_progress({"scan": what, "baud": line.baud, "parity": line.parity, "found": len(self.finds)})

    def _modbus_framer(self, rx, n):
        start, need = modbus.locate(rx, n, self._unit, self._fc, -1)
        self._start = start
        return need

    async def _exchange(self, line, n, framer, timeout_ms):
        self.probes += 1
        async with self.bus.lock:
            try:
                return await self.bus.transact(line, n, framer, timeout_ms)
            except BusTimeout as e:
                return -1 - e.received

    async def modbus(self):
        o = self.o
        first, last = o["addresses"]
        fc = o["fc"]
        seen = set()
        for baud in o["bauds"]:
            for parity in o["parities"]:
                line = Line(baud, 8, parity, o["stop"])
                self._progress("modbus-rtu", line)
                # the reply must fit in the timeout too: at 1200 baud one register takes 60 ms
                timeout = o["timeout_ms"] + line.wire_ms(7)
                for unit in range(first, last + 1):
                    if unit in seen:
                        continue
                    self._unit = unit
                    self._fc = fc
                    tx = modbus.build_read(self.bus.tx, unit, fc, o["register"], 1)
                    got = await self._exchange(line, tx, self._modbus_framer, timeout)
                    if got < 0:
                        continue
                    rx = self.bus.rx
                    try:
                        off, ln = modbus.parse_reply(rx, self._start, got, unit, fc)
                        reply = "register %d = %s" % (o["register"], _hex(rx, off, off + ln))
                        ok = True
                    except modbus.ModbusException as e:
                        reply = str(e)
                        ok = True
                    except modbus.CrcError:
                        reply = "CRC error: wrong line settings, or noise"
                        ok = False
                    except modbus.FrameError:
                        continue  # another unit's or another function's reply: not this address
                    if ok:
                        seen.add(unit)
                    self._add(_find("modbus-rtu", unit, line, ok, reply, _hex(rx, self._start, got)))

    async def dlt645(self):
        from nengjian.proto import dlt645

        o = self.o
        for baud in o["dlt645_bauds"]:
            line = Line(baud, 8, o["dlt645_parity"], 1)
            self._progress("dlt645", line)
            timeout = o["timeout_ms"] * 3 + line.wire_ms(30)  # meters answer 645 slowly
            for v1997 in (False, True):
                if v1997:
                    tx = dlt645.build_read97(self.bus.tx, dlt645.ADDR_WILDCARD, dlt645.DI97_FORWARD_ACTIVE)
                else:
                    tx = dlt645.build_read_address(self.bus.tx)
                got = await self._exchange(line, tx, dlt645.bytes_needed, timeout)
                if got == -1:
                    continue  # silence
                rx = self.bus.rx
                n = got if got >= 0 else -1 - got
                proto = "dlt645-1997" if v1997 else "dlt645-2007"
                try:
                    if got < 0:
                        raise dlt645.FrameError("incomplete")
                    if v1997:
                        _, d, _ = dlt645.parse_reply(rx, n, dlt645.ADDR_WILDCARD, dlt645.C97_READ)
                        addr = dlt645.decode_address(rx, d - 9)
                        reply = "read 9010 answered"
                    else:
                        addr = dlt645.parse_address_reply(rx, n)
                        reply = "read address answered"
                    self._add(_find(proto, addr, line, True, reply, _hex(rx, 0, n)))
                    await self._second_answer(line, proto, dlt645)
                except dlt645.MeterErrorReply as e:
                    s = dlt645.frame_start(rx, n)
                    self._add(_find(proto, dlt645.decode_address(rx, s + 1), line, True, str(e), _hex(rx, 0, n)))
                except dlt645.FrameError as e:
                    self._add(_find(proto, None, line, False,
                                    "garbled reply (%s): several meters answering the wildcard at once?" % e,
                                    _hex(rx, 0, n)))
                    continue
                break  # a 2007 meter answered: no 1997 probe at this baud

    async def _second_answer(self, line, proto, codec):
        """A wildcard is answered by every meter that hears it: listen one more reply time."""
        async with self.bus.lock:
            await asyncio.sleep_ms(self.o["timeout_ms"] + line.wire_ms(40))
            rx = self.bus.rx
            n = self.bus.port.readinto(rx)
        if not n:
            return
        try:
            s = codec.frame_start(rx, n)
            addr = codec.decode_address(rx, s + 1)
        except (ValueError, IndexError):
            addr = None
        self._add(_find(proto, addr, line, False, "also answered the wildcard: on a real bus the replies "
                        "collide; read each meter's address from its nameplate", _hex(rx, 0, n)))

    async def cjt188(self):
        from nengjian.proto import cjt188

        o = self.o
        for baud in o["cjt188_bauds"]:
            line = Line(baud, 8, o["cjt188_parity"], 1)
            self._progress("cjt188", line)
            tx = cjt188.build_read_address(self.bus.tx)
            got = await self._exchange(line, tx, cjt188.bytes_needed, o["timeout_ms"] * 3 + line.wire_ms(30))
            if got == -1:
                continue
            rx = self.bus.rx
            n = got if got >= 0 else -1 - got
            try:
                if got < 0:
                    raise cjt188.FrameError("incomplete")
                t, addr = cjt188.parse_address_reply(rx, n)
                self._add(_find("cjt188", addr, line, True, "meter type 0x%02X" % t, _hex(rx, 0, n)))
            except (cjt188.FrameError, cjt188.MeterErrorReply) as e:
                self._add(_find("cjt188", None, line, False, "garbled reply (%s)" % e, _hex(rx, 0, n)))


async def run(port_factory=None, bus=None, on_find=None, on_progress=None, **opts):
    """Scan a port (a fresh Bus on port_factory(), or an existing `bus`); returns the finds."""
    o = dict(DEFAULTS)
    for k, v in opts.items():
        if k not in DEFAULTS:
            raise ValueError("unknown scan option %r" % k)
        o[k] = v
    if bus is None:
        bus = Bus("scan", port_factory())
    s = Scanner(bus, o, on_find, on_progress)
    if o["modbus"]:
        await s.modbus()
    if o["dlt645"]:
        await s.dlt645()
    if o["cjt188"]:
        await s.cjt188()
    global probes
    probes = s.probes
    return s.finds


def main(args_json="{}"):
    """Console entry: scan the board port named in args ("port", default rs485_0), print JSON lines."""
    t0 = ticks_ms()
    try:
        opts = json.loads(args_json) if isinstance(args_json, str) else dict(args_json)
        import board

        name = opts.pop("port", "rs485_0")
        factory = board.rs485_ports().get(name)
        if factory is None:
            raise ValueError("board %s has no port %r" % (board.NAME, name))
        finds = asyncio.run(run(factory, on_find=lambda f: print(json.dumps({"find": f})),
                                on_progress=lambda p: print(json.dumps({"progress": p})), **opts))
    except (ValueError, OSError) as e:
        print(json.dumps({"error": str(e)}))
        return
    print(json.dumps({"done": {"found": len(finds), "probes": probes,
                               "seconds": ticks_diff(ticks_ms(), t0) // 1000}}))
