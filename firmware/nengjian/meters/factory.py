"""Builds the meter side from a checked site config: one Bus per RS-485 port, one driver per meter
(chosen by its profile's protocol), one BusPoller per bus.

A pulse meter names a bus too (the site schema wants one) and is polled on that bus's schedule,
but its driver never touches the bus: its counts come from a board pulse input.
"""

from nengjian import config
from nengjian.bus.rs485 import Bus
from nengjian.meters import modbus_meter, poller

PROTOCOLS = ("modbus-rtu", "dlt645-2007", "dlt645-1997", "cjt188", "pulse")


def _driver(m, prof, wanted, board=None):
    proto = prof["protocol"]
    if proto == "modbus-rtu":
        return modbus_meter.ModbusMeter(m, prof, wanted)
    if proto in ("dlt645-2007", "dlt645-1997"):
        from nengjian.meters import dlt645_meter

        return dlt645_meter.Dlt645Meter(m, prof, wanted, v1997=proto == "dlt645-1997")
    if proto == "cjt188":
        from nengjian.meters import cjt188_meter

        return cjt188_meter.Cjt188Meter(m, prof, wanted)
    if proto == "pulse":
        from nengjian.meters import pulse

        return pulse.PulseMeter(m, prof, wanted, board)
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
            try:
                drv = _driver(m, prof, sorted(set(wanted.get(m["id"], ()))), board)
            except (ValueError, KeyError) as e:
                raise config.ConfigError("meters: meter %s (profile %s): %s" % (m["id"], m["profile"], e))
            except MemoryError:
                # Safe mode with a reason beats a crash loop: a crew can drop meters or protocols.
                raise config.ConfigError("meters: not enough memory for meter %s (%s driver)"
                                         % (m["id"], prof["protocol"]))
            meters.append(poller.PolledMeter(m, drv, poller.make_line(prof, m)))
        if meters:
            pollers.append(poller.BusPoller(Bus(b["name"], factory()), meters, sink, event, board.clock_trusted))
    return pollers
