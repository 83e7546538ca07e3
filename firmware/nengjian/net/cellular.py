"""The 4G link: the AT driver dials the modem into data mode, then a PPP session carries IP.

`make_ppp(modem)` is the board's: on the ESP32 it returns network.PPP on the modem's UART; on the
sim board (no network.PPP in the unix port) an object that treats the host network as the data
path. The PPP object needs connect(), isconnected(), disconnect() (and may offer ifconfig()).
Losing carrier (PPP down, or the modem's NO CARRIER seen by the sim stand-in) makes is_up() false;
the supervisor then re-dials and, after repeated failures, power-cycles the modem.
"""

import asyncio

from nengjian.core.compat import ticks_diff, ticks_ms
from nengjian.net import links


class CellularLink(links.Link):
    kind = "cellular"
    max_batch = 100  # records per upload: a Cat-1 uplink moves ~20 KiB well within a 15 s timeout

    def __init__(self, modem, make_ppp, name="4g", ppp_timeout_ms=30000):
        links.Link.__init__(self)
        self.name = name
        self.modem = modem
        self._make_ppp = make_ppp
        self.ppp = None
        self.ppp_timeout_ms = ppp_timeout_ms

    async def up(self):
        self.state = links.STARTING
        if self.ppp is not None:
            await self.down()
        if not await self.modem.start():
            return self._failed(self.modem.diag["error"])
        try:
            self.ppp = self._make_ppp(self.modem)
            self.ppp.connect()
        except (OSError, ValueError, RuntimeError) as e:
            await self.down()
            return self._failed("PPP will not start: %s" % e)
        start = ticks_ms()
        while not self.ppp.isconnected():
            if self.modem.carrier_lost or ticks_diff(ticks_ms(), start) > self.ppp_timeout_ms:
                await self.down()
                return self._failed("PPP did not come up within %d s" % (self.ppp_timeout_ms // 1000))
            await asyncio.sleep_ms(200)
        self.state = links.UP
        self.ups += 1
        self.failures = 0
        self.last_error = ""
        return True

    def _failed(self, why):
        self.state = links.FAILED
        self.last_error = why
        self.failures += 1
        return False

    def is_up(self):
        if self.state != links.UP or self.ppp is None:
            return False
        try:
            return bool(self.ppp.isconnected()) and not self.modem.carrier_lost
        except OSError:
            return False

    async def down(self):
        self.state = links.DOWN
        ppp, self.ppp = self.ppp, None
        if ppp is not None:
            try:
                ppp.disconnect()
            except (OSError, AttributeError):
                pass
        await self.modem.hangup()

    async def power_cycle(self):
        await self.down()
        await self.modem.power_cycle()

    def rssi(self):
        return self.modem.diag["rssi_dbm"]

    def status(self):
        s = links.Link.status(self)
        s["modem"] = self.modem.diag
        if self.ppp is not None and hasattr(self.ppp, "ifconfig"):
            try:
                s["ifconfig"] = self.ppp.ifconfig()
            except OSError:
                pass
        return s
