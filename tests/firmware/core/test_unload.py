"""Modules loaded for one job are dropped after it (nengjian.core.compat.unload), on MicroPython: the
config checks and schemas after a config is checked, the console's commands after a request. A module
left in sys.modules, or as an attribute of its package, keeps its code and data in the heap for good."""

import pytest
from mpyrun import run_mpy

pytestmark = pytest.mark.mpy

CHECK = r"""
import sys
from nengjian import config
from nengjian.config import schema, schemas, validate
pkg = sys.modules['nengjian.config']
assert all(('nengjian.config.' + n) in sys.modules for n in ('validate', 'schema', 'schemas'))
assert 'nengjian.core.identity' in sys.modules
config.release_validators()
left = [n for n in ('validate', 'schema', 'schemas') if ('nengjian.config.' + n) in sys.modules or n in pkg.__dict__]
left += [n for n in ('nengjian.core.identity',) if n in sys.modules or 'identity' in sys.modules['nengjian.core'].__dict__]
print('left', left)
"""

CONSOLE = r"""
import sys
from nengjian.console import protocol
from nengjian.console import commands
class Holder:
    _cmds = commands
h = Holder()
protocol.Console._unload(h)
pkg = sys.modules['nengjian.console']
print('left', [x for x in ('nengjian.console.commands',) if x in sys.modules] + (['attr'] if 'commands' in pkg.__dict__ else []),
      h._cmds)
"""


def test_config_checks_are_unloaded_after_a_check():
    assert run_mpy(CHECK).stdout.split("\n")[0] == "left []"


def test_console_commands_are_unloaded_after_a_request():
    assert run_mpy(CONSOLE).stdout.split("\n")[0] == "left [] None"


SCAN = r"""
import asyncio, sys
from nengjian.console import commands
class Bus:
    name = "b"
class Poller:
    bus = Bus()
class Gw:
    cfg = {"buses": [{"name": "b", "port": "rs485_0"}]}
    pollers = [Poller()]
class Con:
    gw = Gw()
    answers = []
    def answer(self, rid, obj, end=False, ok=True):
        self.answers.append((obj, end))
con = Con()
asyncio.run(commands._scan(con, 1, '{"modbus": false, "dlt645": false}'))
pkg = sys.modules['nengjian.meters']
print('end', con.answers[-1][0]['found'], con.answers[-1][1])
print('left', [x for x in ('nengjian.meters.scan',) if x in sys.modules] + (['attr'] if 'scan' in pkg.__dict__ else []))
"""


def test_the_bus_scanner_is_unloaded_after_a_console_scan():
    out = run_mpy(SCAN).stdout.split("\n")
    assert out[:2] == ["end 0 True", "left []"]


IDLE = r"""
import asyncio, sys
from nengjian.console import protocol
class Board:
    NAME = "sim"
async def main():
    protocol.start(Board(), "0")
    await asyncio.sleep_ms(50)
    print('loaded', 'nengjian.console.commands' in sys.modules)
asyncio.run(main())
"""


def test_console_commands_are_not_loaded_until_a_request():
    """They hold some 12 KB: imported by the first request, dropped after a quiet UNLOAD_MS."""
    assert run_mpy(IDLE).stdout.split("\n")[0] == "loaded False"


DRIVERS = r"""
import sys
from nengjian.meters import cjt188_meter, dlt645_meter, modbus_meter, pulse
print('hold', [m.__name__ for m in (cjt188_meter, dlt645_meter, modbus_meter, pulse) if 'profiles' in m.__dict__],
      'nengjian.meters.profile' in sys.modules)
"""


def test_the_drivers_leave_the_profile_loader_to_boot():
    """The app drops nengjian.meters.profile after the drivers are built: none of them may keep it."""
    assert run_mpy(DRIVERS).stdout.split("\n")[0] == "hold [] False"

