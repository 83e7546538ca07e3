"""The `esp32_eth` board: ESP32 (WROVER class), LAN8720 Ethernet PHY, RS-485, optional modem.

The device's `board` module: this board's pins and hardware facts, in one place. What every ESP32
board does with them (data volume, watchdog, ports, modem link, RTC, credentials) is
boards/common/esp32_common.py.
"""

import esp32_common as common
import machine
import network
from esp32_common import *  # noqa: F403 - the board API all ESP32 boards share (esp32_common.__all__)

NAME = "esp32_eth"  # = board.json "name": signed updates name the boards they are for by it

# ---- RS-485 and pulse inputs (nengjian.bus, nengjian.meters)
# Pin map *unsure* until checked against the PCB revision: keep the numbers here, in one place.
# UART1 remapped for the RS-485 transceiver (UART0 is the console, UART2 the optional modem);
# RX on input-only GPIO36. Pulse inputs on GPIO34/35: input-only, no internal pull-ups, so the
# board carries pull-up resistors.
RS485 = {"rs485_0": (1, 4, 36, 5)}  # name: (uart id, TX, RX, DE/RE)
PULSE = {"pulse_0": 34, "pulse_1": 35}

rs485_ports, pulse_inputs = common.io_from_pins(RS485, PULSE, pull_up=False)

# The service button: BOOT (GPIO0). *unsure* as above: where GPIO0 also carries the PHY's clock
# (ETH_REF_CLK below) it is read without taking it from the EMAC, and while the clock runs it never
# reads as held; such a PCB should give the button a GPIO of its own.
SERVICE_BUTTON = 0


def service_button_held():
    return common.button_held(SERVICE_BUTTON, configure=SERVICE_BUTTON != ETH_REF_CLK)


# ---- network (nengjian.net)
# LAN8720 wiring of the reference design (RMII fixed pins plus these); *unsure* until checked
# against the PCB: WT32-ETH01-style boards use phy_addr 1, power 16, clock in on GPIO0; Olimex
# ESP32-POE uses phy_addr 0, power 12, clock out on GPIO17.
ETH_MDC = 23
ETH_MDIO = 18
ETH_POWER = 16
ETH_PHY_ADDR = 1
ETH_REF_CLK = 0
ETH_REF_CLK_OUT = False
# Optional modem on UART2 (SPEC 6: "optional modem"); pins *unsure* as above.
MODEM_UART_ID = 2
MODEM_TX = 33
MODEM_RX = 32
MODEM_PWRKEY = 14
MODEM_BAUD = 115200


def _make_lan():
    return network.LAN(mdc=machine.Pin(ETH_MDC), mdio=machine.Pin(ETH_MDIO), power=machine.Pin(ETH_POWER),
                       phy_type=network.PHY_LAN8720, phy_addr=ETH_PHY_ADDR, ref_clk=machine.Pin(ETH_REF_CLK),
                       ref_clk_mode=machine.Pin.OUT if ETH_REF_CLK_OUT else machine.Pin.IN)


def network_links(cfg=None):
    """Ethernet first, then 4G where the modem is fitted. cfg is the site's network section; the
    modem is taken as fitted when it names an APN (the section has no other place to say so)."""
    from nengjian.net import links

    cfg = cfg or {}
    out = [links.NicLink("eth", _make_lan)]
    if cfg.get("apn"):
        out.append(common.cellular_link(cfg, MODEM_UART_ID, MODEM_TX, MODEM_RX, MODEM_PWRKEY, MODEM_BAUD))
    return out
