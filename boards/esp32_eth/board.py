"""The `esp32-eth` board: ESP32 (WROVER class), LAN8720 Ethernet PHY, RS-485, optional modem.

This file is shared: each section is owned by the module that uses it. Edit only your section.
"""

NAME = "esp32-eth"

# ---- RS-485, pulse inputs, storage, watchdog, identity (bus colleague: nengjian.bus, .meters) ---
# Pin map *unsure* until checked against the PCB revision: keep the numbers here, in one place.
# UART1 remapped for the RS-485 transceiver (UART0 is the console, UART2 the optional modem);
# RX on input-only GPIO36. Pulse inputs on GPIO34/35: input-only, no internal pull-ups, so the
# board carries pull-up resistors.
RS485 = {"rs485_0": (1, 4, 36, 5)}  # name: (uart id, TX, RX, DE/RE)
PULSE = {"pulse_0": 34, "pulse_1": 35}
DATA_MOUNT = "/data"
CONFIG_DIR = "/config"
PROFILE_DIR = "/profiles"
DATA_LABEL = "data"


def rs485_ports():
    """name -> factory of the port: machine.UART plus the DE/RE pin (nengjian.bus.uart_port)."""
    from nengjian.bus.uart_port import UartPort

    out = {}
    for name, (uart, tx, rx, de) in RS485.items():
        out[name] = (lambda u=uart, t=tx, r=rx, d=de: UartPort(u, t, r, d))
    return out


def pulse_inputs():
    """name -> factory of the input pin (nengjian.meters.pulse attaches an IRQ on both edges)."""
    import machine

    out = {}
    for name, gpio in PULSE.items():
        out[name] = (lambda g=gpio: machine.Pin(g, machine.Pin.IN, None))
    return out


def mount_data(format_if_blank=True):
    """Mount the littlefs data partition at DATA_MOUNT; returns the mount point.

    A blank partition (all 0xFF) is formatted; a damaged one raises OSError and is left as it is
    for a crew to pull, never wiped: the app starts safe mode instead (stored data lives on its own
    partition because the stock boot code loops forever on a corrupt root filesystem).
    """
    import esp32
    import vfs

    parts = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=DATA_LABEL)
    if not parts:
        raise OSError(19, "no partition labelled %s" % DATA_LABEL)
    dev = parts[0]
    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        if not format_if_blank or not _is_blank(dev):
            raise
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, DATA_MOUNT)
    return DATA_MOUNT


def _is_blank(dev):
    buf = bytearray(64)
    for block in (0, 1):
        dev.readblocks(block, buf)
        for b in buf:
            if b != 0xFF:
                return False
    return True


class Watchdog:
    """machine.WDT: once started it cannot be stopped; the app's supervisor feeds it."""

    def __init__(self, timeout_ms):
        import machine

        self._wdt = machine.WDT(timeout=timeout_ms)
        self.timeout_ms = timeout_ms

    def feed(self):
        self._wdt.feed()


def unique_id():
    import machine

    return machine.unique_id()


def reset():
    import machine

    machine.reset()


# ---- network (owned by the uplink: nengjian.net) ----------------------------------------------
# LAN8720 wiring of the reference design (RMII fixed pins plus these); *unsure* until checked
# against the PCB: WT32-ETH01-style boards use phy_addr 1, power 16, clock in on GPIO0; Olimex
# ESP32-POE uses phy_addr 0, power 12, clock out on GPIO17.
ETH_MDC = 23
ETH_MDIO = 18
ETH_POWER = 16
ETH_PHY_ADDR = 1
ETH_REF_CLK = 0
ETH_REF_CLK_OUT = False
# Optional modem on UART2 (SPEC 6: "optional modem"); used when the site's network section says so.
MODEM_UART_ID = 2
MODEM_TX = 33
MODEM_RX = 32
MODEM_PWRKEY = 14
MODEM_BAUD = 115200


def _make_lan():
    import machine
    import network

    return network.LAN(mdc=machine.Pin(ETH_MDC), mdio=machine.Pin(ETH_MDIO), power=machine.Pin(ETH_POWER),
                       phy_type=network.PHY_LAN8720, phy_addr=ETH_PHY_ADDR, ref_clk=machine.Pin(ETH_REF_CLK),
                       ref_clk_mode=machine.Pin.OUT if ETH_REF_CLK_OUT else machine.Pin.IN)


class _PwrKey:
    def __init__(self, pin_no):
        import machine

        self._pin = machine.Pin(pin_no, machine.Pin.OUT, value=0)

    def on(self):
        self._pin.value(1)

    def off(self):
        self._pin.value(0)


class _Ppp:
    def __init__(self, modem):
        import network

        self._ppp = network.PPP(modem.port)
        if hasattr(self._ppp, "active"):
            self._ppp.active(True)

    def connect(self):
        self._ppp.connect()

    def isconnected(self):
        return self._ppp.isconnected()

    def disconnect(self):
        try:
            self._ppp.disconnect()
        finally:
            if hasattr(self._ppp, "active"):
                self._ppp.active(False)

    def ifconfig(self):
        return self._ppp.ifconfig()


def network_links(cfg=None):
    """Ethernet first, then 4G if the site has the modem fitted (cfg["modem"] true)."""
    from nengjian.net import links

    cfg = cfg or {}
    out = [links.NicLink("eth", _make_lan)]
    if cfg.get("modem"):
        import machine
        from nengjian.net import cellular, modem

        uart = machine.UART(MODEM_UART_ID, baudrate=MODEM_BAUD, tx=MODEM_TX, rx=MODEM_RX, rxbuf=2048,
                            timeout=0, timeout_char=0)
        m = modem.Modem(uart, _PwrKey(MODEM_PWRKEY), apn=cfg.get("apn", ""), pin=cfg.get("pin"),
                        dial=cfg.get("dial", "atd"))
        out.append(cellular.CellularLink(m, _Ppp, name="4g"))
    return out


# ---- time (owned by nengjian.clocksync) --------------------------------------------------------
def clock_trusted():
    from nengjian import clocksync

    return clocksync.trusted()


def set_utc(seconds):
    """Set the RTC to UTC seconds since 1970 (the ESP32 port's epoch is 2000 before 1.22 builds)."""
    import time

    import machine

    shift = 0 if time.gmtime(0)[0] == 1970 else 946684800
    t = time.gmtime(seconds - shift)
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))
