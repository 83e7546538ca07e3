"""The commands moved into the one catalogue keep no text of their own: no literal a person reads
(English words, or Chinese) goes to print, a progress line, a question, an error, a refusal,
argparse's help, description and epilog, or the commissioning report's headings and cells in these
modules; they say catalogue keys (messages.t, msg, both) instead, so every text has its English and
its Chinese and the language follows --lang (the report carries both, Chinese first). Every other host
module may say no more such texts than it says today (NOT_YET), so a new one is caught anywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from nengjian_host.common import messages

HOST = Path(messages.__file__).resolve().parents[1]
MODULES = ("install/commission.py", "install/commission_command.py", "install/commission_report.py",
           "vendor/commands.py", "sim/commands.py", "install/provision.py", "install/commands.py",
           "crew/commands.py", "crew/status.py", "crew/entries.py", "common/device.py", "crew/pull.py",
           "install/flash.py", "common/gatewaytext.py", "common/bundle.py")
# The modules not moved into the catalogue yet, with how many lines of their own text each still says (they
# go down, never up): none is left, so a new text anywhere in host/ outside the catalogue fails here.
NOT_YET: dict[str, int] = {}
# where a text goes to a person: printing, progress, questions, errors, refusals, argparse, the report, a table
SINKS = {"print", "emit", "note", "info", "to_stderr", "say", "need", "refuse", "fail", "add_parser",
         "add_argument", "CommissionError", "ValueError", "ProvisionError", "DeviceUnreachable", "append", "_table",
         "_th", "_both", "font_face", "add_column", "add_row", "Table", "row", "LedgerError", "EntryError",
         "CalibrationError", "PullError", "UnsafeName", "DeviceError", "DeviceGone", "FlashError", "BundleError",
         "UpdateError", "StoreFormatError"}
CJK = re.compile(r"[\u4e00-\u9fff]")
MARKUP = re.compile(r"\[/?[a-z ]*\]")  # rich's [bold red] ... [/bold red]: a style, not words


def _is_text(value: str) -> bool:
    """Words a person reads: Chinese, or English (a lower-case word of three letters in something with a
    space; an acronym such as IMEI is not one)."""
    value = MARKUP.sub("", value)
    return bool(CJK.search(value) or (re.search(r"[a-z]{3}", value) and re.search(r"\s", value)))


def _texts(node, consts: dict) -> list[int]:
    """Line numbers of the literal texts in an argument (a dict is a --json document: its keys and
    values are for scripts; an index such as r["html"] is a key)."""
    if isinstance(node, (ast.Dict, ast.Subscript)):
        return []
    if isinstance(node, ast.Name) and node.id in consts:
        return [node.lineno] if _is_text(consts[node.id]) else []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.lineno] if _is_text(node.value) and node.value not in messages.MESSAGES else []
    if isinstance(node, ast.JoinedStr):
        return [node.lineno] if _is_text("".join(v.value for v in node.values if isinstance(v, ast.Constant))) else []
    if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "t", "msg", "both", "t_in"):
        return []  # a catalogue key (its arguments are values)
    found = []
    for child in ast.iter_child_nodes(node):
        found += _texts(child, consts)
    return found


def inline_texts(path: Path) -> list[int]:
    """Line numbers of texts a person reads that `path` says itself instead of through the catalogue."""
    tree = ast.parse(path.read_text(), str(path))
    consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
              and isinstance(n.value.value, str) for t in n.targets if isinstance(t, ast.Name)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in SINKS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                found.update(_texts(arg, consts))
    return sorted(found)


@pytest.mark.parametrize("module", MODULES)
def test_no_text_outside_the_catalogue(module):
    lines = inline_texts(HOST / module)
    assert not lines, "%s says these itself, not through messages.py: lines %s" % (module, lines)


def _host_modules() -> list[str]:
    return sorted(p.relative_to(HOST).as_posix() for p in HOST.rglob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("module", [m for m in _host_modules() if m not in MODULES and not m.startswith("sim/")])
def test_no_module_says_more_of_its_own_text_than_before(module):
    """A module outside MODULES (the sim rig aside: its texts are for developers) says no more texts of
    its own than NOT_YET allows: a new one goes through the catalogue (messages.t, msg, both)."""
    lines = inline_texts(HOST / module)
    allowed = NOT_YET.get(module, 0)
    assert len(lines) <= allowed, ("%s says %d texts itself, not through messages.py (lines %s; %d allowed): "
                                   "put the new one in the catalogue" % (module, len(lines), lines, allowed))


def test_the_scan_sees_a_table_and_an_exception_but_not_markup(tmp_path):
    planted = tmp_path / "y.py"
    planted.write_text(
        'def f(t, c, e):\n'
        '    t.add_column("last reading")\n'                   # 2
        '    c.print("[bold red]%s[/bold red] %s" % (a, b))\n'  # 3: markup only
        '    raise LedgerError("no records in the data")\n'     # 4
        '    t.add_row("IMEI " + e)\n')                         # 5: an acronym
    assert inline_texts(planted) == [2, 4]


def test_the_scan_finds_each_kind(tmp_path):
    planted = tmp_path / "x.py"
    planted.write_text(
        'DESC = "调试一台网关 / commission one gateway"\n'
        'def f(args, ctx, st, sub):\n'
        '    print(f"{args.out}: version {args.v} for all")\n'                        # 3
        '    ctx.say("scan", "%s: scanned before (kept)" % args.name)\n'              # 4
        '    st.refuse("codes", args.code, "not collected here", "不由本网关采集")\n'    # 5
        '    sub.add_parser("x", help="a command", description=DESC)\n'               # 6
        '    emit(args, {"ok": True, "report": "a b c d"}, [t("out.x"), "  report: %s" % args.r])\n'  # 7
        '    ctx.say("scan", t("out.scan.progress", scan=1, baud=2, parity="N", found=0))\n'  # 8: a key
        '    return fail(args, 2, "err.scan.which")\n')                              # 9: a key
    assert inline_texts(planted) == [3, 4, 5, 6, 7]
