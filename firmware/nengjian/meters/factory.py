"""Builds the meter side from a checked site config: one Bus per RS-485 port, one driver per meter
(chosen by its profile's protocol), one BusPoller per bus."""

from nengjian import config
from nengjian.bus.rs485 import Bus
from nengjian.meters import modbus_meter, poller


def _driver(m, prof, wanted):
    proto = prof["protocol"]
    if proto == "modbus-rtu":
        return modbus_meter.ModbusMeter(m, prof, wanted)
    raise config.ConfigError("meters: protocol %s not built into this firmware" % proto)


def build_pollers(cfg, board, sink, event):
    ports = board.rs485_ports()
    wanted = {}
    for it in cfg["items"]:
        wanted.setdefault(it["meter"], []).append(it["point"])
    pollers = []
    for b in cfg["buses"]:
        factory = ports.get(b["port"])
        if factory is None:
            raise config.ConfigError("buses: board %s has no port %r (has %s)"
                                     % (board.NAME, b["port"], ", ".join(sorted(ports)) or "none"))
        meters = []
        for m in cfg["meters"]:
            if m["bus"] != b["name"]:
                continue
            prof = cfg["_profiles"][m["profile"]]
            drv = _driver(m, prof, sorted(set(wanted.get(m["id"], ()))))
            meters.append(poller.PolledMeter(m, drv, poller.make_line(prof, m)))
        if meters:
            pollers.append(poller.BusPoller(Bus(b["name"], factory()), meters, sink, event, board.clock_trusted))
    return pollers
