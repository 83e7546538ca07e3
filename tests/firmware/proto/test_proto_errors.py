"""The error tree of what a meter's bytes can cause (firmware/nengjian/proto/errors.py), and the layer
bases of the bus and the net layer: every class derives where callers sort it, on MicroPython (which
refuses a class of two built-in exception bases) as on CPython, and every error class a codec defines
hangs in the tree."""

from __future__ import annotations

import ast
import json

import pytest
from mpyrun import FIRMWARE, run_mpy

# (module, class, the tree class it must derive from)
TREE = [
    ("nengjian.proto.errors", "ProtocolError", "ValueError"),
    ("nengjian.proto.errors", "FrameError", "ProtocolError"),
    ("nengjian.proto.errors", "CheckError", "FrameError"),
    ("nengjian.proto.errors", "MeterRefused", "ProtocolError"),
    ("nengjian.proto.modbus", "CrcError", "CheckError"),
    ("nengjian.proto.modbus", "WrongUnit", "FrameError"),
    ("nengjian.proto.modbus", "WrongFunction", "FrameError"),
    ("nengjian.proto.modbus", "Truncated", "FrameError"),
    ("nengjian.proto.modbus", "ModbusException", "MeterRefused"),
    ("nengjian.proto.frame68", "IncompleteFrame", "FrameError"),
    ("nengjian.proto.frame68", "ChecksumError", "CheckError"),
    ("nengjian.proto.dlt645", "AddressMismatch", "FrameError"),
    ("nengjian.proto.dlt645", "UnexpectedReply", "FrameError"),
    ("nengjian.proto.dlt645", "BCDError", "FrameError"),
    ("nengjian.proto.dlt645", "MeterErrorReply", "MeterRefused"),
    ("nengjian.bus.rs485", "BusTimeout", "BusError"),
    ("nengjian.net.http", "HttpError", "NetError"),
    ("nengjian.net.tls", "TlsSetupError", "NetError"),
]
BASES = {"ProtocolError": "nengjian.proto.errors", "FrameError": "nengjian.proto.errors",
         "CheckError": "nengjian.proto.errors", "MeterRefused": "nengjian.proto.errors",
         "BusError": "nengjian.bus.rs485", "NetError": "nengjian.net.http"}
# Must NOT derive from these: a refusal is no bad frame, a bad frame no noise, net errors no ValueErrors
NOT = [("ModbusException", "FrameError"), ("MeterErrorReply", "FrameError"), ("WrongUnit", "CheckError"),
       ("IncompleteFrame", "CheckError"), ("HttpError", "ValueError"), ("TlsSetupError", "ValueError"),
       ("BusTimeout", "ValueError")]

SCRIPT = r"""
import json
TREE = json.loads(%r)
BASES = json.loads(%r)
NOT = json.loads(%r)
def cls(mod, name):
    if name == "ValueError":
        return ValueError
    m = __import__(mod, None, None, [name])
    return getattr(m, name)
where = {}
for mod, name, base in TREE:
    where[name] = mod
out = {"tree": [], "not": [], "same": []}
for mod, name, base in TREE:
    out["tree"].append([name, base, issubclass(cls(mod, name), cls(BASES.get(base, ""), base))])
for name, other in NOT:
    out["not"].append([name, other, issubclass(cls(where[name], name), cls(BASES.get(other, ""), other))])
# one class per concept: the codecs re-export the tree's classes, they do not define look-alikes
from nengjian.proto import errors, modbus, frame68, dlt645, cjt188
out["same"] = [modbus.FrameError is errors.FrameError, frame68.FrameError is errors.FrameError,
               dlt645.FrameError is errors.FrameError, cjt188.FrameError is errors.FrameError,
               cjt188.MeterErrorReply is dlt645.MeterErrorReply, cjt188.ChecksumError is frame68.ChecksumError]
e = modbus.ModbusException(2)
r = dlt645.MeterErrorReply(0x02, ("no_such_data",), 0xD1)
out["refusals"] = [[e.code, str(e), list(e.args)], [r.code, str(r), list(r.names), r.control]]
print("RESULT " + json.dumps(out))
"""


def _result(stdout):
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError(stdout)


def _check(out):
    assert [x for x in out["tree"] if not x[2]] == [], out["tree"]
    assert [x for x in out["not"] if x[2]] == [], out["not"]
    assert all(out["same"]), out["same"]
    assert out["refusals"] == [[2, "modbus exception 2 (illegal data address)", ["modbus exception 2 (illegal data address)"]],
                               [2, "meter error 0x02 no_such_data", ["no_such_data"], 0xD1]]


def _script():
    return SCRIPT % (json.dumps(TREE), json.dumps(BASES), json.dumps(NOT))


@pytest.mark.mpy
def test_the_tree_on_micropython():
    _check(_result(run_mpy(_script()).stdout))


def test_the_tree_on_cpython(capsys):
    exec(compile(_script(), "tree", "exec"), {"__name__": "tree"})
    _check(_result(capsys.readouterr().out))


def _exception_classes(path):
    """Names of the classes defined at the top of a file with a base (the test keeps the exceptions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.bases:
            yield node.name


def test_every_error_class_of_a_codec_is_in_the_tree():
    """A codec that grows a new error class must hang it under the tree (or the poller calls it a
    driver bug): every class of proto/ that is an exception is listed in TREE above."""
    import importlib

    listed = {(m, n) for m, n, _ in TREE}
    missing = []
    for path in sorted((FIRMWARE / "nengjian" / "proto").glob("*.py")):
        mod = "nengjian.proto." + path.stem
        m = importlib.import_module(mod)
        for name in _exception_classes(path):
            c = getattr(m, name)
            if isinstance(c, type) and issubclass(c, BaseException) and (mod, name) not in listed:
                missing.append("%s.%s" % (mod, name))
    assert missing == []
