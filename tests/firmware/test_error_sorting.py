"""Errors are sorted by type: firmware code (firmware/, boards/ apart) never tells exceptions apart by
the text of a class name, an attribute they happen to have, or their message.

Read from the source with `ast`, never by importing. Caught:
- `type(e).__name__` or `e.__class__.__name__` anywhere but as an operand of `%` formatting or an
  f-string (printing a class name in a log line is fine; comparing it, looking it up or keeping it
  is classifying);
- `hasattr(e, ...)` where e is bound by `except ... as e` (or assigned from such a name);
- a text test on `str(e)`, `repr(e)` or `e.args` of such a name: `in` / `not in`, `==` / `!=` with a
  string, or startswith / endswith / find (an errno test like `e.args[0] == 2` is type, not text).
Sort with isinstance on the layers' bases instead (nengjian.proto.errors, nengjian.bus.rs485.BusError,
nengjian.net.http.NetError, nengjian.uplink.result kinds).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"


def _parents(tree):
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child._parent = node


def _is_class_name(node):
    """node is `type(x).__name__` or `x.__class__.__name__`."""
    if not (isinstance(node, ast.Attribute) and node.attr == "__name__"):
        return False
    v = node.value
    if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "type":
        return True
    return isinstance(v, ast.Attribute) and v.attr == "__class__"


def _formatted(node):
    """node is only printed: the right of a `%`, directly or in its tuple, or an f-string field."""
    p = getattr(node, "_parent", None)
    if isinstance(p, ast.Tuple):
        node, p = p, getattr(p, "_parent", None)
    if isinstance(p, ast.BinOp) and isinstance(p.op, ast.Mod) and p.right is node:
        return True
    return isinstance(p, ast.FormattedValue)


def _error_names(scope):
    """Names bound by `except ... as NAME` in a function (or module), and plain aliases of them."""
    names = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    grew = True
    while grew:
        grew = False
        for node in ast.walk(scope):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in names):
                for t in node.targets:
                    if isinstance(t, ast.Name) and t.id not in names:
                        names.add(t.id)
                        grew = True
    return names


def _text_of(node, names):
    """node is str(e) / repr(e) / e.args / e.args[i] of an error name."""
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute) and node.attr == "args":
        return isinstance(node.value, ast.Name) and node.value.id in names
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("str", "repr")
            and len(node.args) == 1 and isinstance(node.args[0], ast.Name) and node.args[0].id in names)


_TEXT_METHODS = ("startswith", "endswith", "find", "index", "count")


def _text_test(node, names):
    """node tests the text of an error: `"x" in str(e)`, `str(e) == "x"`, `str(e).startswith("x")`."""
    if isinstance(node, ast.Compare):
        operands = [node.left] + node.comparators
        if not any(_text_of(x, names) for x in operands):
            return False
        return (any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)
                or any(isinstance(x, ast.Constant) and isinstance(x.value, str) for x in operands))
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _TEXT_METHODS
            and _text_of(node.func.value, names))


def classifying(top: Path) -> list[str]:
    """file:line: what, for every place under top that sorts exceptions by name, attribute or text."""
    bad = []
    for path in sorted(top.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        _parents(tree)
        rel = path.relative_to(top)
        for node in ast.walk(tree):
            if _is_class_name(node) and not _formatted(node):
                bad.append("%s:%d: compares or keeps an exception's class name" % (rel, node.lineno))
        scopes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        seen = set()
        for scope in scopes:
            names = _error_names(scope)
            if not names:
                continue
            for node in ast.walk(scope):
                if id(node) in seen:
                    continue
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr"
                        and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in names):
                    seen.add(id(node))
                    bad.append("%s:%d: hasattr(%s, ...) on an exception" % (rel, node.lineno, node.args[0].id))
                elif _text_test(node, names):
                    seen.add(id(node))
                    bad.append("%s:%d: decides by an exception's message" % (rel, node.lineno))
    return bad


def test_firmware_sorts_errors_by_type():
    assert classifying(FIRMWARE) == []


# ---- the check itself can fail: each planted fault is caught, and printing a name is not one
PLANTED = [
    'def f(read):\n    try:\n        read()\n    except ValueError as e:\n'
    '        return "crc" if type(e).__name__ in ("CrcError", "ChecksumError") else "frames"\n',
    'def f(read):\n    try:\n        read()\n    except Exception as e:\n        if e.__class__.__name__ == "ModbusException":\n'
    '            return 1\n',
    'KIND = {"CrcError": "crc"}\ndef f(e):\n    return KIND.get(type(e).__name__)\n',
    'def f(e):\n    name = type(e).__name__\n    return name\n',
    'def f(read):\n    try:\n        read()\n    except Exception as e:\n        if hasattr(e, "names"):\n            return 1\n',
    'def f(read):\n    err = None\n    try:\n        read()\n    except Exception as e:\n        err = e\n'
    '    return hasattr(err, "code")\n',
    'def f(read):\n    try:\n        read()\n    except MemoryError as e:\n        pass\n'
    'def g(read):\n    try:\n        read()\n    except Exception as e:\n        return "out of memory" in str(e)\n',
    'def f(read):\n    try:\n        read()\n    except OSError as e:\n        return "ENOENT" in e.args\n',
    'def f(read):\n    try:\n        read()\n    except Exception as e:\n        return str(e).startswith("TLS")\n',
    'def f(read):\n    try:\n        read()\n    except Exception as e:\n        return repr(e) == "X()"\n',
]
ALLOWED = [
    'def f(read, log):\n    try:\n        read()\n    except Exception as e:\n'
    '        log("driver error %s: %s" % (type(e).__name__, e))\n',
    'def f(v):\n    raise TypeError("not %s" % type(v).__name__)\n',
    'def f(read, log):\n    try:\n        read()\n    except Exception as e:\n        log(f"{e.__class__.__name__}: {e}")\n',
    'def f(read, table):\n    try:\n        read()\n    except ValueError as e:\n        return getattr(e, "code", None), str(e)\n',
    'def f(pin, gc):\n    return hasattr(pin, "irq") and hasattr(gc, "mem_free")\n',
    'if __name__ == "__main__":\n    pass\n',
    'def f(read):\n    try:\n        read()\n    except OSError as e:\n        return e.args[0] == 2\n',
]


@pytest.mark.parametrize("text", PLANTED)
def test_a_planted_classification_is_caught(tmp_path, text):
    (tmp_path / "nengjian").mkdir()
    (tmp_path / "nengjian" / "m.py").write_text(text)
    bad = classifying(tmp_path)
    assert len(bad) >= 1 and all(b.startswith("nengjian/m.py:") for b in bad), bad


@pytest.mark.parametrize("text", ALLOWED)
def test_printing_a_class_name_is_not_classifying(tmp_path, text):
    (tmp_path / "m.py").write_text(text)
    assert classifying(tmp_path) == []
