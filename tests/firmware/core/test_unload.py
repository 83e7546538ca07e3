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
config.release_validators()
left = [n for n in ('validate', 'schema', 'schemas') if ('nengjian.config.' + n) in sys.modules or n in pkg.__dict__]
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
