"""What differs between MicroPython and CPython, in one place, so other modules stay portable.

Firmware runs on MicroPython; its codecs are also imported by CPython for property tests.
"""

try:
    from micropython import const  # noqa: F401
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]  # the CPython stand-in: no generic signature
        return x


try:
    from time import ticks_add, ticks_diff, ticks_ms  # noqa: F401
except ImportError:  # CPython
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000) & 0x3FFFFFFF  # type: ignore[attr-defined]  # CPython's time

    def ticks_diff(a, b):  # type: ignore[no-redef]  # the CPython stand-in
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d & 0x20000000 else d

    def ticks_add(a, d):  # type: ignore[misc]  # the CPython stand-in
        return (a + d) & 0x3FFFFFFF


def unload(name):
    """Forget module `name` (dotted) so its code and data can be collected: a module loaded for one job
    (config checks, console commands) must not hold heap for the gateway's lifetime. The next import
    loads it again. Both references go: sys.modules and the attribute on its parent package."""
    import sys

    sys.modules.pop(name, None)
    parent, _, leaf = name.rpartition(".")
    pkg = sys.modules.get(parent)
    if pkg is not None and leaf in pkg.__dict__:
        delattr(pkg, leaf)
