"""The `esp32s3_4g` board: ESP32-S3, 16 MB flash, 8 MB PSRAM, RS-485 on a UART with DE/RE, and a
Cat-1/Cat-4 modem (Quectel EC800/EC20 or SIMCom SIM7600 class) on a second UART with PWRKEY.

The device's `board` module: this board's pins and hardware facts, in one place. What every ESP32
board does with them (data volume, watchdog, ports, modem link, RTC, credentials) is
boards/common/esp32_common.py.
"""

import esp32_common as common
from esp32_common import *  # noqa: F403 - the board API all ESP32 boards share (esp32_common.__all__)

NAME = "esp32s3_4g"  # = board.json "name": signed updates name the boards they are for by it

# ---- RS-485 and pulse inputs (nengjian.bus, nengjian.meters)
# Pin map *unsure* until checked against the PCB revision: keep the numbers here, in one place.
# UART2 for the RS-485 transceiver (UART1 is the modem's, below; the REPL is on native USB).
RS485 = {"rs485_0": (2, 4, 5, 6)}  # name: (uart id, TX, RX, DE/RE)
PULSE = {"pulse_0": 7, "pulse_1": 15}  # internal pull-ups: reed contacts and open collectors pull low

rs485_ports, pulse_inputs = common.io_from_pins(RS485, PULSE, pull_up=True)

# The service button: BOOT (GPIO0, a strapping pin, read only once the application runs).
SERVICE_BUTTON = 0


def service_button_held():
    return common.button_held(SERVICE_BUTTON)


# ---- network (nengjian.net)
# Pin numbers follow the reference schematic; *unsure* until checked against the PCB revision.
MODEM_UART_ID = 1
MODEM_TX = 17
MODEM_RX = 18
MODEM_PWRKEY = 21  # drives an NPN that pulls the module's PWRKEY low: pin high = key pressed
MODEM_BAUD = 115200


def network_links(cfg=None):
    """[the 4G link]; cfg is the site's network section (apn, pin, dial), all optional."""
    return [common.cellular_link(cfg or {}, MODEM_UART_ID, MODEM_TX, MODEM_RX, MODEM_PWRKEY, MODEM_BAUD)]
