"""The `esp32s3-4g` board: ESP32-S3, 16 MB flash, 8 MB PSRAM, RS-485 on a UART with DE/RE, and a
Cat-1/Cat-4 modem (Quectel EC800/EC20 or SIMCom SIM7600 class) on a second UART with PWRKEY.

This file is shared: each section is owned by the module that uses it. Edit only your section.
"""

NAME = "esp32s3-4g"

# ---- RS-485, pulse inputs, storage, watchdog, identity (bus colleague: nengjian.bus, .meters) ---
# Pin map *unsure* until checked against the PCB revision: keep the numbers here, in one place.
# UART2 for the RS-485 transceiver (UART1 is the modem's, below; the REPL is on native USB).
RS485 = {"rs485_0": (2, 4, 5, 6)}  # name: (uart id, TX, RX, DE/RE)
PULSE = {"pulse_0": 7, "pulse_1": 15}  # internal pull-ups: reed contacts and open collectors pull low
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
        out[name] = (lambda g=gpio: machine.Pin(g, machine.Pin.IN, machine.Pin.PULL_UP))
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
# Pin numbers follow the reference schematic; *unsure* until checked against the PCB revision:
# keep them here, in one place.
MODEM_UART_ID = 1
MODEM_TX = 17
MODEM_RX = 18
MODEM_PWRKEY = 21  # drives an NPN that pulls the module's PWRKEY low: pin high = key pressed
MODEM_BAUD = 115200


class _PwrKey:
    def __init__(self, pin_no):
        import machine

        self._pin = machine.Pin(pin_no, machine.Pin.OUT, value=0)

    def on(self):
        self._pin.value(1)

    def off(self):
        self._pin.value(0)


_uart = None


def _modem_uart():
    global _uart
    if _uart is None:
        import machine

        # timeout=0: reads return what is there; the AT driver polls. rxbuf holds a burst of URCs.
        _uart = machine.UART(MODEM_UART_ID, baudrate=MODEM_BAUD, tx=MODEM_TX, rx=MODEM_RX, rxbuf=2048,
                             timeout=0, timeout_char=0)
    return _uart


class _Ppp:
    """network.PPP on the modem's UART, started only after the driver saw CONNECT (SPEC 7: the
    application dials; MicroPython >= 1.26 for the disconnect fixes - board.json pins the minimum)."""

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
    """[the 4G link]; cfg is the site's network section (apn, pin, dial), all optional."""
    from nengjian.net import cellular, modem

    cfg = cfg or {}
    m = modem.Modem(_modem_uart(), _PwrKey(MODEM_PWRKEY), apn=cfg.get("apn", ""), pin=cfg.get("pin"),
                    dial=cfg.get("dial", "atd"))
    return [cellular.CellularLink(m, _Ppp, name="4g")]


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
