"""host/nengjian_host/common/output.py: the one home of the exit codes, and how a command reports an
error (English and Chinese on stderr, or one JSON object with --json) and its progress."""

from __future__ import annotations

import argparse
import ast
import io
import json
import sys
from pathlib import Path

import pytest
from nengjian_host.common import output

ROOT = Path(__file__).resolve().parents[3]
OUTPUT = ROOT / "host" / "nengjian_host" / "common" / "output.py"
SEARCHED = ("host", "tests", "bench")


def exit_assignments(top: Path, skip: Path | None = None) -> list[str]:
    """file:line of every assignment to a name starting with EXIT_ under `top` (ast: imports are no
    assignment, so `from ...output import EXIT_OK` is fine; `EXIT_OK = 0` and `A, EXIT_B = ...` are not)."""
    found = []
    for path in sorted(top.rglob("*.py")):
        if skip is not None and path == skip or ".venv" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                targets = [node.target]
            else:
                continue
            for t in targets:
                for name in ast.walk(t):
                    if isinstance(name, ast.Name) and name.id.startswith("EXIT_"):
                        found.append("%s:%d: %s" % (path.relative_to(top), node.lineno, name.id))
    return found


def test_exit_codes_are_defined_only_in_output():
    bad = [hit for d in SEARCHED for hit in exit_assignments(ROOT / d, skip=OUTPUT)]
    assert bad == [], "define exit codes only in common/output.py; import them from there:\n" + "\n".join(bad)


@pytest.mark.parametrize("text,hits", [("EXIT_OK = 0\n", 1), ("EXIT_A, EXIT_B = 1, 2\n", 2), ("EXIT_C: int = 3\n", 1),
                                       ("def f():\n    EXIT_D = 4\n", 1), ("class K:\n    EXIT_E = 5\n", 1)])
def test_a_planted_exit_constant_is_caught(tmp_path, text, hits):
    (tmp_path / "mod.py").write_text("from nengjian_host.common.output import EXIT_OK\n" + text)
    assert len(exit_assignments(tmp_path)) == hits


def test_the_numbers_scripts_rely_on():
    assert (output.EXIT_OK, output.EXIT_FAILED, output.EXIT_USAGE, output.EXIT_UNREACHABLE) == (0, 1, 2, 3)
    assert set(output.MEANING) == {0, 1, 2, 3}


def _args(**kw):
    return argparse.Namespace(**kw)


def test_fail_prints_english_and_chinese_on_stderr(capsys):
    assert output.fail(_args(json=False), 2, "give --board (e.g. --board sim)", zh="缺少 --board") == 2
    c = capsys.readouterr()
    assert c.out == ""
    assert c.err.splitlines() == ["error: give --board (e.g. --board sim)", "错误：缺少 --board"]


def test_fail_without_its_own_chinese_says_what_the_code_means(capsys):
    output.fail(_args(), 3, "no gateway answers on /dev/ttyACM0")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: no gateway answers on /dev/ttyACM0"
    assert err[1].startswith("错误：" + output.MEANING[3][0])


def test_fail_with_json_is_one_object_on_stdout(capsys):
    code = output.fail(_args(json=True), 1, "verify failed", zh="校验失败", installed={"slot": "a"})
    c = capsys.readouterr()
    assert code == 1 and c.err == ""
    assert json.loads(c.out) == {"ok": False, "error": "verify failed", "exit_code": 1, "error_zh": "校验失败",
                                 "installed": {"slot": "a"}}


def test_an_error_gets_out_where_chinese_cannot_be_shown(monkeypatch):
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(raw, encoding="ascii"))
    output.fail(_args(), 2, "bad input", zh="输入有误")
    sys.stderr.flush()
    text = raw.getvalue().decode("ascii")
    assert "error: bad input" in text and "\\u8f93" in text


def test_emit_and_progress_lines(capsys):
    output.emit(_args(json=True), {"ok": True, "path": Path("x")}, ["for a person"])
    output.emit(_args(json=False), {"ok": True}, ["for a person"])
    step = output.steps(_args(json=False), None, "flash")
    step("write", total=10)
    output.steps(_args(json=True), None, "flash")("never shown")
    c = capsys.readouterr()
    assert c.out.splitlines() == ['{"ok": true, "path": "x"}', "for a person"]
    assert c.err == "... write\n"
    with output.progress(_args(json=True)) as prog:
        assert prog is None  # --json: nothing but the JSON document
