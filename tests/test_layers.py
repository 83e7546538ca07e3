"""The architecture as a test: the import graph of firmware/, boards/ and host/ has no circle, and each
layer imports only what it may.

Every import statement counts, also one inside a function (a lazy import is still a dependency, and a
lazy circle is still a circle). The graph is read from the source with `ast`, never by importing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
HOST = ROOT / "host"
BOARDS = ROOT / "boards"

# (importer's package, what it must not import, why)
FORBIDDEN = [
    ("nengjian.proto", ("nengjian.store", "nengjian.uplink", "nengjian.net", "nengjian.meters", "nengjian.bus"),
     "codecs know bytes and values, nothing of transport, storage or meters"),
    ("nengjian.store", ("nengjian.meters", "nengjian.uplink", "nengjian.net", "nengjian.bus", "nengjian.proto"),
     "the store knows records, not meters or platforms"),
    ("nengjian.uplink", ("nengjian.bus", "nengjian.meters", "nengjian.proto"),
     "the uplink knows nothing of RS-485"),
    ("nengjian.net", ("nengjian.bus", "nengjian.meters", "nengjian.proto", "nengjian.store", "nengjian.uplink"),
     "links carry bytes for the uplink; they know nothing above them"),
    ("nengjian.meters", ("nengjian.store", "nengjian.uplink", "nengjian.net", "nengjian.values"),
     "meters hand readings to the app; they know nothing of storage, values or platforms"),
    ("nengjian.values", ("nengjian.meters", "nengjian.bus", "nengjian.proto", "nengjian.store", "nengjian.uplink",
                         "nengjian.net"), "values are computed from records, whatever meter or platform"),
    ("nengjian.core", ("nengjian.",), "core is the bottom layer: it imports no other part of the firmware"),
    ("nengjian.crypto", ("nengjian.",), "ciphers are pure functions of bytes"),
]
CORE_OK = ("nengjian.core",)  # what the bottom layers may still import from the package


def _modules(top: Path, package: str) -> dict[str, Path]:
    """dotted name -> file, for every module of the package under top."""
    out = {}
    for path in sorted((top / package).rglob("*.py")):
        rel = path.relative_to(top).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The modules of `known` that the file imports, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known:
                    found.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join(pkg + ([node.module] if node.module else []))
            for a in node.names:
                sub = base + "." + a.name
                if sub in known:
                    found.add(sub)  # `from pkg import module`
                elif base in known:
                    found.add(base)  # `from module import name`
    found.discard(name)
    return found


def graph(top: Path, package: str) -> dict[str, set[str]]:
    known = _modules(top, package)
    return {name: _imports(path, name, known) for name, path in known.items()}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), as a sorted list."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def violations(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(g.items()):
        for pkg, banned, why in FORBIDDEN:
            if mod != pkg and not mod.startswith(pkg + "."):
                continue
            for dep in sorted(deps):
                if dep == pkg or dep.startswith(pkg + "."):
                    continue  # inside its own layer
                if banned == ("nengjian.",):
                    if dep.startswith("nengjian.") and not dep.startswith(CORE_OK):
                        bad.append("%s imports %s: %s" % (mod, dep, why))
                elif any(dep == b or dep.startswith(b + ".") for b in banned):
                    bad.append("%s imports %s: %s" % (mod, dep, why))
    return bad


PIN_WORDS = ("Pin", "UART")


def hardware_touches(top: Path, package: str) -> list[str]:
    """Firmware files outside boards/ that name machine.Pin or machine.UART (only boards know pins)."""
    bad = []
    for path in sorted((top / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "machine":
                bad += ["%s: from machine import %s" % (path.relative_to(ROOT), a.name)
                        for a in node.names if a.name in PIN_WORDS]
            elif (isinstance(node, ast.Attribute) and node.attr in PIN_WORDS
                  and isinstance(node.value, ast.Name) and node.value.id == "machine"):
                bad.append("%s:%d: machine.%s" % (path.relative_to(ROOT), node.lineno, node.attr))
    return bad


def test_firmware_has_no_import_circle():
    assert circles(graph(FIRMWARE, "nengjian")) == []


def test_host_has_no_import_circle():
    assert circles(graph(HOST, "nengjian_host")) == []


def test_firmware_layers_import_only_downwards():
    assert violations(graph(FIRMWARE, "nengjian")) == []


def test_only_boards_touch_pins_and_uarts():
    assert hardware_touches(FIRMWARE, "nengjian") == []


def test_main_imports_only_the_app_and_the_updater():
    """firmware/main.py is never updated on a gateway: it may rely on nothing but board, nengjian.ota
    and nengjian.app (tests/firmware/ota/test_boot_names.py pins the names it uses)."""
    tree = ast.parse((FIRMWARE / "main.py").read_text())
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            used |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            used |= {"%s.%s" % (node.module, a.name) for a in node.names}
    assert used == {"sys", "board", "nengjian.ota", "nengjian.app"}


# ---- the checks themselves can fail: each planted fault is caught
def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for d in list(tmp_path.rglob("*")):
        if d.is_dir() and not (d / "__init__.py").exists():
            (d / "__init__.py").write_text("")
    return tmp_path


@pytest.mark.parametrize("importer,imported,text", [
    ("proto/modbus.py", "nengjian.store", "from nengjian.store import store\n"),
    ("proto/modbus.py", "nengjian.meters", "def f():\n    from nengjian.meters import poller\n"),
    ("store/store.py", "nengjian.uplink", "from nengjian.uplink import delivery\n"),
    ("store/store.py", "nengjian.meters", "import nengjian.meters.poller\n"),
    ("uplink/delivery.py", "nengjian.bus", "from nengjian.bus import rs485\n"),
    ("uplink/delivery.py", "nengjian.meters", "from nengjian.meters.poller import Poller\n"),
])
def test_a_planted_layer_violation_is_caught(tmp_path, importer, imported, text):
    files = {"nengjian/store/store.py": "", "nengjian/uplink/delivery.py": "", "nengjian/bus/rs485.py": "",
             "nengjian/meters/poller.py": "", "nengjian/proto/modbus.py": ""}
    files["nengjian/" + importer] = text
    top = _plant(tmp_path, files)
    bad = violations(graph(top, "nengjian"))
    assert len(bad) == 1 and imported in bad[0], bad


def test_a_planted_circle_is_caught(tmp_path):
    top = _plant(tmp_path, {"nengjian/a.py": "from nengjian import b\n",
                            "nengjian/b.py": "def f():\n    from . import c\n",
                            "nengjian/c.py": "import nengjian.a\n"})
    assert circles(graph(top, "nengjian")) == [["nengjian.a", "nengjian.b", "nengjian.c"]]


@pytest.mark.parametrize("text", ["from machine import Pin\n", "import machine\nu = machine.UART(1)\n"])
def test_a_planted_pin_outside_boards_is_caught(tmp_path, text):
    top = _plant(tmp_path, {"nengjian/meters/pulse.py": text})
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(hardware_touches(top, "nengjian")) == 1
    finally:
        ROOT = saved
