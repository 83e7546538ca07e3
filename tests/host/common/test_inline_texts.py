"""The commands moved into the one catalogue keep no text of their own: no literal a person reads
(English words, or Chinese) goes to print, a progress line, a question, an error, a refusal,
argparse's help, description and epilog, or the commissioning report's headings and cells in these
modules; they say catalogue keys (messages.t, msg, both) instead, so every text has its English and
its Chinese and the language follows --lang (the report carries both, Chinese first)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from nengjian_host.common import messages

HOST = Path(messages.__file__).resolve().parents[1]
MODULES = ("install/commission.py", "install/commission_command.py", "install/commission_report.py",
           "vendor/commands.py", "sim/commands.py", "install/provision.py")
# where a text goes to a person: printing, progress, questions, errors, refusals, argparse, the report
SINKS = {"print", "emit", "note", "info", "to_stderr", "say", "need", "refuse", "fail", "add_parser",
         "add_argument", "CommissionError", "ValueError", "ProvisionError", "DeviceUnreachable", "append", "_table", "_th", "_both", "font_face"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _is_text(value: str) -> bool:
    """Words a person reads: Chinese, or English (a word of three letters in something with a space)."""
    return bool(CJK.search(value) or (re.search(r"[A-Za-z]{3}", value) and re.search(r"\s", value)))


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
