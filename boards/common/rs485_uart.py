"""An RS-485 port on an ESP32 UART: machine.UART plus the transceiver's DE/RE pin.

MicroPython's ESP32 UART has no hardware RS-485 mode, so direction is driven by hand: the Bus
raises DE, writes, waits until `txdone()` says the shift register is empty, and drops DE (see
nengjian.bus.rs485). DE and /RE are tied together on the boards we target (receiver off while we
drive), so our own request never echoes back. The RX buffer is sized for 256-byte frames plus
slack, since a long reply must fit while the event loop is busy elsewhere.

Same calls as the sim board's PtyPort: configure(baud, bits, parity, stop), de(on), write(buf),
txdone(), any(), readinto(buf) (never blocks; 0 when nothing is there). de=None suits a transceiver
with automatic direction control.
"""

RXBUF = 1024


class UartPort:
    def __init__(self, uart_id, tx, rx, de=None, de_active=1, baud=9600, rxbuf=RXBUF, txbuf=256):
        from machine import UART, Pin

        self._de_active = de_active
        self._de = None
        if de is not None:
            self._de = Pin(de, Pin.OUT, value=0 if de_active else 1)  # receiving from the start
        # timeout=0 and timeout_char=0: reads return what is there, the Bus does the waiting
        self.uart = UART(uart_id, baudrate=baud, bits=8, parity=None, stop=1, tx=tx, rx=rx,
                         rxbuf=rxbuf, txbuf=txbuf, timeout=0, timeout_char=0)
        self.line = (baud, 8, "N", 1)

    def configure(self, baud, bits, parity, stop):
        # ESP32 UART.init keeps the pins and buffers it was built with; parity: None, 0 even, 1 odd
        self.uart.init(baudrate=baud, bits=bits, parity=None if parity == "N" else (0 if parity == "E" else 1),
                       stop=stop, timeout=0, timeout_char=0)
        self.line = (baud, bits, parity, stop)

    def de(self, on):
        if self._de is not None:
            self._de.value(self._de_active if on else 1 - self._de_active)

    def write(self, buf):
        return self.uart.write(buf)

    def txdone(self):
        return self.uart.txdone()

    def any(self):
        return self.uart.any()

    def readinto(self, buf):
        n = self.uart.any()
        if not n:
            return 0
        if n > len(buf):
            n = len(buf)
        return self.uart.readinto(buf, n) or 0
