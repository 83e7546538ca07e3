"""The modem link of the ESP32 boards (nengjian.net: the board supplies the UART, PWRKEY and
network.PPP). Apart from esp32_common so that a board without a modem configured holds none of it:
esp32_common.cellular_link imports it where a board links a modem, and it stays loaded while the
link runs (its UARTs are kept for the whole run). On the device this is /lib/esp32_modem.mpy
(board.json "shared"). Imports nothing of `nengjian` at module level (see esp32_common).
"""

import machine
import network


class Ppp:
    """network.PPP on the modem's UART, started only after the driver saw CONNECT (SPEC 7: the
    application dials; MicroPython >= 1.26 for the disconnect fixes - board.json pins the minimum)."""

    def __init__(self, modem):
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


_uarts = {}


def modem_uart(uart_id, tx, rx, baud):
    """One machine.UART per id for the whole run: the links are rebuilt on a config reload."""
    u = _uarts.get(uart_id)
    if u is None:
        # timeout=0: reads return what is there; the AT driver polls. rxbuf holds a burst of URCs.
        u = machine.UART(uart_id, baudrate=baud, tx=tx, rx=rx, rxbuf=2048, timeout=0, timeout_char=0)
        _uarts[uart_id] = u
    return u


def cellular_link(cfg, uart_id, tx, rx, pwrkey, baud=115200):
    """The 4G link; cfg is the site's network section (apn, pin, dial)."""
    from nengjian.net import cellular, modem

    # The GPIO driving the modem's PWRKEY (through a transistor on our boards: high = pressed, so
    # released from the start); machine.Pin's on() and off() are the key the driver presses.
    key = machine.Pin(pwrkey, machine.Pin.OUT, value=0)
    m = modem.Modem(modem_uart(uart_id, tx, rx, baud), key, apn=cfg.get("apn", ""),
                    pin=cfg.get("pin"), dial=cfg.get("dial", "atd"))
    return cellular.CellularLink(m, Ppp, name="4g")
