"""The poller sorts a driver's failure by its class in the error trees (nengjian.bus.rs485 and
nengjian.proto.errors), on MicroPython: never by a class name or an attribute it happens to have. And
it needs the tree only, not the codecs of protocols a site does not use."""

from __future__ import annotations

import json

import pytest
from mpyrun import run_mpy

pytestmark = [pytest.mark.mpy]

SCRIPT = r"""
import asyncio, json
from nengjian.bus.rs485 import BusTimeout, Line
from nengjian.meters import poller
from nengjian.proto import cjt188, dlt645, errors, frame68, modbus, regvalue

def cjt188_abnormal():
    # a real CJ/T 188 abnormal reply (C = C1H), status word 0001H: the codec raises its refusal
    addr = bytes(7)
    f = bytearray([0x68, cjt188.T_COLD_WATER]) + addr + bytearray([0xC1, 2, 0x01, 0x00])
    f += bytearray([frame68.checksum(f, 0, len(f)), 0x16])
    cjt188.parse_read(f, len(f), cjt188.T_COLD_WATER, addr)

def nan_register():
    regvalue.mantissa(regvalue.decode(bytes.fromhex("7FC00000"), 0, "f32"), 1)

class Busy(errors.MeterRefused):  # a refusal with no .names
    def __init__(self):
        errors.MeterRefused.__init__(self, 6, "busy")

class Bug(Exception):  # a driver bug that happens to carry .names
    names = ("x",)

class CrcError(ValueError):  # the name of a check error, outside the tree: a driver bug
    pass

CASES = [
    ("timeout", lambda: BusTimeout(0), "timeouts"),
    ("modbus crc", lambda: modbus.CrcError("crc"), "crc"),
    ("645 checksum", lambda: dlt645.ChecksumError("cs"), "crc"),
    ("188 checksum", lambda: cjt188.ChecksumError("cs"), "crc"),
    ("wrong unit", lambda: modbus.WrongUnit("unit 5"), "frames"),
    ("truncated", lambda: modbus.Truncated("short"), "frames"),
    ("address", lambda: dlt645.AddressMismatch("other"), "frames"),
    ("unexpected", lambda: dlt645.UnexpectedReply("di"), "frames"),
    ("bcd", lambda: dlt645.BCDError("nibble"), "frames"),
    ("incomplete", lambda: frame68.IncompleteFrame("cut"), "frames"),
    ("nan", nan_register, "frames"),
    ("modbus exception", lambda: modbus.ModbusException(2), "exceptions"),
    ("645 error reply", lambda: dlt645.MeterErrorReply(2, ("no_such_data",), 0xD1), "exceptions"),
    ("188 abnormal reply", cjt188_abnormal, "exceptions"),
    ("refusal without names", Busy, "exceptions"),
    ("bug with names", Bug, "errors"),
    ("bug named CrcError", lambda: CrcError("x"), "errors"),
    ("bare ValueError", lambda: ValueError("bug"), "errors"),
    ("KeyError", lambda: KeyError("point"), "errors"),
]

class Driver:
    make = None
    async def read(self, bus, line, timeout_ms, gap_ms, out):
        e = self.make()
        if e is not None:  # a maker that raised itself (a real codec path) never gets here
            raise e

class Bus:
    name = "b0"

cfg = {"id": "m", "address": 1, "interval_s": 1, "timeout_ms": 100, "retries": 0, "gap_ms": 0,
       "fail_limit": 1000, "backoff_s": 60}
drv = Driver()
m = poller.PolledMeter(cfg, drv, Line(9600))
p = poller.BusPoller(Bus(), [m], lambda *a: None, lambda *a: None, lambda: True)
KINDS = ("timeouts", "crc", "exceptions", "frames", "errors")
out = []
async def main():
    for label, make, _want in CASES:
        drv.make = make
        before = dict(m.stats)
        await p.poll_once(m)
        out.append([label, [k for k in KINDS if m.stats[k] != before[k]], m.stats["failed"] - before["failed"],
                    m.last_error_code])
asyncio.run(main())
# The last error's code (what the laptop says it in Chinese by) follows the same sorting.
CODES = {"timeouts": "meter_error.timeout", "crc": "meter_error.check", "exceptions": "meter_error.refused",
         "frames": "meter_error.frame", "errors": "meter_error.other"}
print("RESULT " + json.dumps({"got": out, "want": [[c[0], [c[2]], 1, CODES[c[2]]] for c in CASES]}))
"""


def _result(stdout):
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError(stdout)


def test_failures_and_their_last_error_codes_are_sorted_by_class():
    r = _result(run_mpy(SCRIPT).stdout)
    wrong = [(g, w) for g, w in zip(r["got"], r["want"]) if g != w]
    assert wrong == [] and len(r["got"]) == len(r["want"])


def test_the_poller_loads_the_error_tree_not_the_codecs():
    out = run_mpy("import sys\nfrom nengjian.meters import poller\n"
                  "print('MODS', sorted(k for k in sys.modules if k.startswith('nengjian.proto')))").stdout
    mods = [line for line in out.splitlines() if line.startswith("MODS ")][0]
    assert mods == "MODS ['nengjian.proto', 'nengjian.proto.errors']", out
