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

    def event(self, kind, text):
        self.events.append("%s: %s" % (kind, text))
