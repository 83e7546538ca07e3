"""Type-check the firmware against the MicroPython API it meets on each board.

Run by `make lint`. Each board is checked on its own, because every board directory holds a module
named `board` (the firmware imports `board`, and only the board decides what that is):

- the ESP32 boards (boards/esp32*) with `micropython-esp32-stubs`, together with `firmware/` and
  `boards/common`;
- the sim board with `micropython-unix-stubs`, together with `firmware/`.

The stubs are pinned in requirements-typings.lock and installed with `pip --target` under
build/typings/ (never into .venv: the stub packages ship top-level `requests`, `socket`, `time`
... stubs that must not sit beside CPython's packages). Where a stub is narrower or wider than the
port it describes, `_STUB_FIXES` corrects it, each with the MicroPython source that shows the real
signature; a fix that no longer applies fails the check rather than passing silently.

    python tools/typecheck.py                      # every board
    python tools/typecheck.py esp32_eth            # one board
    python tools/typecheck.py esp32_eth --board-dir DIR --common-dir DIR --cache-dir DIR
                                                   # the board's board.py (and boards/common) from
                                                   # elsewhere: how tests/test_typecheck.py plants errors

Exit status: 0 clean, 1 type errors, 2 set-up failed (stubs could not be installed or patched, or
mypy itself failed).
"""

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TYPINGS = ROOT / "build" / "typings"
LOCK = ROOT / "requirements-typings.lock"
STDLIB = "micropython-stdlib-stubs"  # installed beside each board's stubs; its fixes apply to all

# (board directory, stub package, whether boards/common is checked with it)
BOARDS = [
    ("esp32_eth", "micropython-esp32-stubs", True),
    ("esp32s3_4g", "micropython-esp32-stubs", True),
    ("sim", "micropython-unix-stubs", False),
]

# Corrections to the stubs: (packages, stub file, text the stub has (every occurrence is replaced),
# what the port has, where the port says so). Paths are MicroPython's source tree.
_STUB_FIXES = [
    # The stub takes LAN's arguments from another port's docs. Only the ESP32 and ESP32-S3 entries:
    # the ESP32-P4's RMII pins (crs_dv ... clk_out) are left out, so a board naming one is caught.
    (("micropython-esp32-stubs",), "network.pyi",
     "    def __init__(self, id, *, phy_type=0, phy_addr=0, ref_clk_mode=0) -> None: ...",
     "    def __init__(self, id=None, *, mdc=None, mdio=None, reset=None, power=None, phy_addr: int,\n"
     "                 phy_type: int, spi=None, cs=None, int=None, ref_clk_mode: int = -1,\n"
     "                 ref_clk=None) -> None: ...",
     "ports/esp32/network_lan.c, get_lan(): the allowed_args table"),
    # pull=None configures the pin with neither pull-up nor pull-down (-1, the default, leaves the
    # pulls as they are). Also Signal(), which passes its arguments to Pin.
    (("micropython-esp32-stubs",), "machine.pyi",
     "        pull: int = -1,\n",
     "        pull: int | None = -1,\n",
     "ports/esp32/machine_pin.c, machine_pin_obj_init_helper(): 'configure pull'"),
    (("micropython-esp32-stubs", "micropython-unix-stubs"), "tls.pyi",
     "class SSLContext:\n",
     "class SSLContext:\n    verify_mode: int\n",
     "extmod/modtls_mbedtls.c, ssl_context_attr(): verify_mode is read and set as an attribute"),
    # VfsLfs2 is a filesystem that takes a block device, not a block device itself (the stub's
    # base class made it abstract: "cannot instantiate").
    (("micropython-esp32-stubs", "micropython-unix-stubs"), "vfs.pyi",
     "class VfsLfs2(AbstractBlockDev):\n",
     "class VfsLfs2:\n",
     "extmod/vfs_lfsx.c, MP_DEFINE_CONST_OBJ_TYPE(MP_TYPE_VFS_LFSx ...): no parent type"),
    # The stub is CPython's (ssl= only as a keyword, limit=); MicroPython takes ssl and server_hostname
    # by position.
    ((STDLIB,), "stdlib/asyncio/streams.pyi",
     "    async def open_connection(\n"
     "        host: str | None = None,\n"
     "        port: int | str | None = None,\n"
     "        *,\n"
     "        limit: int = 65536,\n"
     "        ssl_handshake_timeout: float | None = ...,\n"
     "        **kwds: Any,\n"
     "    ) -> tuple[StreamReader, StreamWriter]: ...\n",
     "    async def open_connection(\n"
     "        host: str,\n"
     "        port: int,\n"
     "        ssl: Incomplete | None = None,\n"
     "        server_hostname: str | None = None,\n"
     "    ) -> tuple[StreamReader, StreamWriter]: ...\n",
     "extmod/asyncio/stream.py: def open_connection(host, port, ssl=None, server_hostname=None)"),
    # VfsRom is a filesystem over a buffer, made with VfsRom(buffer), not a block device to subclass.
    (("micropython-unix-stubs",), "vfs.pyi",
     "class VfsRom(AbstractBlockDev):\n",
     "class VfsRom:\n    def __init__(self, buffer) -> None: ...\n",
     "extmod/vfs_rom.c: vfs_rom_make_new() takes one object with the buffer protocol"),
]

# Settings shared by every board's run. The firmware is plain untyped MicroPython: the checks that
# matter are calls against the board's API (a misspelled keyword, a missing attribute, a wrong
# argument count), so the codes that only ask for annotations or Optional narrowing of attributes
# first set to None are off.
_CONFIG = """[mypy]
python_version = 3.12
custom_typeshed_dir = {stubs}
mypy_path = {path}
follow_imports = silent
check_untyped_defs = True
no_site_packages = True
warn_unused_ignores = False
cache_dir = {cache}
disable_error_code = var-annotated, union-attr, assignment, has-type

[mypy-machine,vfs,network,esp32,socket,tls,select,time,os,micropython,_mpy_shed.*,stdlib.*]
ignore_errors = True

# @micropython.viper functions: ptr8/ptr32/uint are the emitter's types, unknown to a checker.
[mypy-nengjian.crypto.sm4,nengjian.store.blockdev]
disable_error_code = var-annotated, union-attr, assignment, has-type, index, valid-type, operator
"""


def _setup_failed(text):
    print("typecheck: " + text, file=sys.stderr)
    raise SystemExit(2)


def _requirement(package):
    for line in LOCK.read_text().splitlines():
        if line.split("==")[0].strip() == package:
            return line.strip()
    _setup_failed("%s is not pinned in %s" % (package, LOCK.name))


def _fixes(package):
    return [f for f in _STUB_FIXES if package in f[0] or STDLIB in f[0]]


def install(package):
    """The stub package and the stdlib stubs, pinned and corrected, under build/typings/<package>;
    installed again only when a pin or a fix changes."""
    reqs = [_requirement(package), _requirement(STDLIB)]
    fixes = _fixes(package)
    want = "\n".join(reqs) + "\n" + hashlib.sha256(repr(fixes).encode()).hexdigest() + "\n"
    target = TYPINGS / package
    stamp = target / ".installed"
    if stamp.exists() and stamp.read_text() == want:
        return target
    # Built beside the target and moved into place, so a run that starts meanwhile never sees a
    # half-installed or half-patched tree.
    tmp = TYPINGS / ("%s.tmp-%d" % (package, os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--target", str(tmp)] + reqs, check=True)
    for _, name, old, new, why in fixes:
        f = tmp / name
        text = f.read_text()
        if old not in text:
            shutil.rmtree(tmp, ignore_errors=True)
            _setup_failed("the fix for %s in %s (%s) no longer applies: check the new stubs"
                          % (name, package, why))
        f.write_text(text.replace(old, new))
    (tmp / ".installed").write_text(want)
    old_tree = TYPINGS / ("%s.old-%d" % (package, os.getpid()))
    try:
        if target.exists():
            target.rename(old_tree)
        tmp.rename(target)
    except OSError:
        # Another run installed it at the same moment: keep theirs if it is the same.
        if not (stamp.exists() and stamp.read_text() == want):
            raise
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old_tree, ignore_errors=True)
    return target


def check(board, package, with_common, board_dir=None, common_dir=None, cache_dir=None):
    """(mypy's exit status, its report less the lines about the stubs themselves) for one board."""
    stubs = install(package)
    board_dir = Path(board_dir).resolve() if board_dir else ROOT / "boards" / board
    extra = [Path(common_dir).resolve() if common_dir else ROOT / "boards" / "common"] if with_common else []
    path = os.pathsep.join([str(stubs), str(ROOT / "firmware"), str(board_dir)] + [str(e) for e in extra])
    cache = Path(cache_dir).resolve() if cache_dir else TYPINGS / ("cache-" + board)
    cfg = cache.parent / ("mypy-%s-%d.ini" % (board, os.getpid()))
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(_CONFIG.format(stubs=stubs, path=path, cache=cache))
    # Relative where they can be, so the report names files as the repository does.
    targets = [os.path.relpath(t, ROOT) if ROOT in t.parents else str(t)
               for t in [ROOT / "firmware" / "nengjian"] + sorted(board_dir.glob("*.py")) + extra]
    try:
        r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(cfg)] + targets, cwd=ROOT,
                           capture_output=True, text=True)
    finally:
        cfg.unlink()
    summary = r.stdout.strip().splitlines()[-1:] or [""]
    if r.returncode not in (0, 1) or not summary[0].startswith(("Success:", "Found ")):
        raise RuntimeError("mypy failed (exit %d): %s" % (r.returncode, (r.stderr or r.stdout).strip()))
    lines = [x for x in r.stdout.splitlines() if not x.startswith(str(stubs))]
    return r.returncode, lines


def main(argv=None):
    ap = argparse.ArgumentParser(description="type-check the firmware against each board's MicroPython stubs")
    ap.add_argument("boards", nargs="*", metavar="BOARD", help="boards to check (default: all)")
    ap.add_argument("--board-dir", help="take board.py from DIR instead of boards/BOARD (one board only)")
    ap.add_argument("--common-dir", help="take boards/common from DIR (one board only)")
    ap.add_argument("--cache-dir", help="mypy's cache (default: build/typings/cache-BOARD)")
    a = ap.parse_args(argv)
    known = [b for b, _, _ in BOARDS]
    wanted = a.boards or known
    unknown = [b for b in wanted if b not in known]
    if unknown:
        ap.error("unknown board %s (boards: %s)" % (", ".join(unknown), ", ".join(known)))
    if (a.board_dir or a.common_dir or a.cache_dir) and len(wanted) != 1:
        ap.error("--board-dir, --common-dir and --cache-dir need exactly one board")
    if importlib.util.find_spec("mypy") is None:
        print("typecheck: mypy is not installed in %s (it is pinned in requirements.lock)" % sys.executable)
        return 2
    failed = False
    for board, package, with_common in BOARDS:
        if board not in wanted:
            continue
        try:
            rc, lines = check(board, package, with_common, a.board_dir, a.common_dir, a.cache_dir)
        except subprocess.CalledProcessError as e:
            print("typecheck: installing %s failed (%s): is the package registry reachable?" % (package, e))
            return 2
        except RuntimeError as e:
            print("typecheck %s: %s" % (board, e))
            return 2
        print("typecheck %-11s against %s: %s" % (board, package, lines[-1] if lines else "no output"))
        if rc:
            failed = True
            print("\n".join(lines[:-1]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
