"""The Link interface every network path of a board offers, and the Ethernet-style link over a NIC.

A link is one way to the internet: Ethernet (`network.LAN`), 4G (modem + `network.PPP`, see
nengjian.net.cellular), or the sim's host network. The supervisor (nengjian.net.failover) brings
links up in preference order and watches them; the uplink only asks "is the active link up".

Interface: `name`, `kind` ("ethernet" | "cellular" | "host"), `max_batch` (records per upload this
link carries comfortably, 0 = no cap), `async up()` -> bool (bounded by the link's own timeouts),
`is_up()`, `async down()`, `status()` -> dict for installers, `rssi()` -> dBm or None.
"""

import asyncio

from nengjian.core.compat import ticks_diff, ticks_ms

DOWN = "down"
STARTING = "starting"
UP = "up"
FAILED = "failed"


class Link:
    name = "link"
    kind = "ethernet"
    max_batch = 0

    def __init__(self):
        self.state = DOWN
        self.last_error = ""
        self.ups = 0
        self.failures = 0  # failed bring-ups in a row

    async def up(self):
        raise NotImplementedError

    def is_up(self):
        return self.state == UP

    async def down(self):
        self.state = DOWN

    async def power_cycle(self):
        """Hardest recovery this link knows (modem PWRKEY, PHY reset); default: down."""
        await self.down()

    def rssi(self):
        return None

    def status(self):
        # "rssi" is what the heartbeat's rssi.NAME is taken from (None: no signal figure; left out)
        return {"link": self.name, "kind": self.kind, "state": self.state, "up": self.is_up(),
                "error": self.last_error, "ups": self.ups, "failures": self.failures, "rssi": self.rssi()}


class NicLink(Link):
    """A link over a MicroPython network interface (network.LAN): active, carrier, DHCP address.

    `make_nic()` builds the interface on first use (constructing network.LAN raises when the PHY
    does not answer: that is a failed bring-up, not a crash)."""

    kind = "ethernet"

    def __init__(self, name, make_nic, up_timeout_ms=20000):
        Link.__init__(self)
        self.name = name
        self._make = make_nic
        self.nic = None
        self.up_timeout_ms = up_timeout_ms

    async def up(self):
        self.state = STARTING
        try:
            if self.nic is None:
                self.nic = self._make()
            self.nic.active(True)
        except (OSError, ValueError, RuntimeError) as e:
            self.state = FAILED
            self.last_error = "interface will not start: %s" % e
            self.failures += 1
            return False
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < self.up_timeout_ms:
            if self.nic.isconnected() and self._addr() not in (None, "0.0.0.0"):
                self.state = UP
                self.ups += 1
                self.failures = 0
                self.last_error = ""
                return True
            await asyncio.sleep_ms(250)
        self.state = FAILED
        self.last_error = "no carrier or no DHCP address within %d s" % (self.up_timeout_ms // 1000)
        self.failures += 1
        return False

    def is_up(self):
        return self.state == UP and self.nic is not None and self.nic.isconnected()

    async def down(self):
        self.state = DOWN
        if self.nic is not None:
            try:
                self.nic.active(False)
            except OSError:
                pass

    def _addr(self):
        try:
            return self.nic.ifconfig()[0]
        except (OSError, AttributeError):
            return None

    def status(self):
        s = Link.status(self)
        if self.nic is not None:
            try:
                s["ifconfig"] = self.nic.ifconfig()
            except (OSError, AttributeError):
                pass
        return s
