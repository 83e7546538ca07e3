"""A stand-in gateway and clock for the meter-clock tests on MicroPython (tests/firmware/meters/
test_meterclock.py, test_modbusclock.py): the gateway clock is clock[0], from NOON (12:00 CST) on;
events are kept as "kind: text"."""

from nengjian.core import timeutil

NOON = timeutil.timestamp(2026, 12, 2, 4, 0)  # 12:00 CST
clock = [NOON]
timeutil.set_source(lambda: clock[0])


class Gw:
    items_by_point = {}

    def __init__(self, data_dir=None, pollers=()):
        self.events = []
        self.data_dir = data_dir
        self.pollers = pollers

    def event(self, kind, text, code=None):
        self.events.append("%s: %s" % (kind, text))


class _Meter:
    def __init__(self, drv):
        self.driver = drv
        self.cfg = {}


class _Bus:
    name = "bus0"


class _Poller:
    def __init__(self, drv):
        self.meters = [_Meter(drv)]
        self.bus = _Bus()


def boot(drv, data_dir, day):
    """A gateway restarted at noon `day` days after NOON, whose bus0 has the one meter driver drv,
    with memwatch attached as the app attaches it."""
    from nengjian.meters import memwatch

    clock[0] = NOON + day * 86400
    gw = Gw(data_dir, [_Poller(drv)])
    gw.day = clock[0] - 12 * 3600  # the CST day it restarted on
    memwatch.attach(gw, lambda: True)
    return gw


def report(gw, **counts):
    """What a boot left, as the tests' last line: counts, the events, the meter's status, the day."""
    import json

    counts.update(events=gw.events, status=gw.watches["m1"].status(), day=gw.day)
    print(json.dumps(counts))
