"""host/nengjian_host/common/messages.py, the one catalogue: every message has its English and its
Chinese (with the same placeholders, Chinese in the Chinese one), the Chinese says the regulation's
terms as the regulation does, the language follows --lang or the locale, and no command hands fail() an
English text without its Chinese (a catalogue key, a messages.msg, or zh=...)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from nengjian_host import cli
from nengjian_host.common import messages, output

HOST = Path(messages.__file__).resolve().parents[1]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("key", sorted(messages.MESSAGES))
def test_every_message_has_both_languages(key):
    en, zh = messages.MESSAGES[key]
    assert en.strip() and zh.strip(), key
    assert not CJK.search(en), "the English text of %s has Chinese in it" % key
    assert CJK.search(zh), "the Chinese text of %s has no Chinese in it" % key
    assert messages.placeholders(en) == messages.placeholders(zh), key
    assert en.count("%(") == zh.count("%("), key  # argparse's %(default)s in help strings


def test_the_regulations_terms_are_used_as_written():
    for name, (english, chinese) in messages.GLOSSARY.items():
        assert english and CJK.search(chinese), name
    words = {zh for _en, zh in messages.MESSAGES.values()}
    for name, wrong in messages.AVOID.items():
        for bad in wrong:
            said = [zh for zh in words if bad in zh.replace(messages.GLOSSARY[name][1], "")]
            assert not said, "say %s, not %s: %s" % (messages.GLOSSARY[name][1], bad, said)
    assert any(messages.GLOSSARY["data_item"][1] in zh for zh in words)
    assert any(messages.GLOSSARY["ledger"][1] in zh for zh in words)


def test_the_language_follows_lang_then_the_locale():
    assert messages.lang_from_env({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert messages.lang_from_env({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}) == "en"  # LC_ALL wins
    assert messages.lang_from_env({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN"}) == "zh"
    assert messages.lang_from_env({}) == "en"
    try:
        assert messages.set_lang("zh", env={"LANG": "C"}) == "zh" and messages.t("exit.0") == "完成"
        assert messages.set_lang(None, env={"LANG": "en_GB"}) == "en" and messages.t("exit.0") == "done"
        with pytest.raises(ValueError):
            messages.set_lang("fr")
    finally:
        messages.set_lang("en")


def test_fail_with_a_key_prints_the_chosen_language_first_and_json_carries_both(capsys):
    import argparse

    try:
        messages.set_lang("zh")
        assert output.fail(argparse.Namespace(json=False), 2, "err.scan.which") == 2
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith("错误：要说明扫描哪台网关") and err[1].startswith("error: say which gateway")
        output.fail(argparse.Namespace(json=True), 2, messages.msg("err.provision.missing", options="mac"))
        doc = json.loads(capsys.readouterr().out)
        assert doc == {"ok": False, "exit_code": 2, "error": "give --mac (or --batch sites.csv)",
                       "error_zh": "缺少 --mac（或用 --batch sites.csv 批量）", "error_key": "err.provision.missing"}
    finally:
        messages.set_lang("en")


def _help(*argv, env=None):
    import os

    run_env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE")}
    run_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "nengjian_host.cli", *argv], capture_output=True, text=True,
                          env=run_env, check=True).stdout


def test_help_in_chinese_by_option_and_by_locale_in_english_otherwise():
    zh = _help("--lang", "zh", "--help")
    assert zh.startswith("用法：nengjian") and messages.MESSAGES["help.nengjian.desc"][1] in zh
    by_locale = _help("check-config", "--help", env={"LANG": "zh_CN.UTF-8"})
    assert messages.MESSAGES["help.check-config.file"][1] in by_locale and "一次列出全部问题" in by_locale
    assert "站点配置下发到网关之前先检查" in _help("--help", env={"LANG": "zh_CN.UTF-8"})
    en = _help("check-config", "--help", env={"LANG": "C.UTF-8"})
    assert en.startswith("usage: nengjian check-config") and not CJK.search(en)
    assert _help("check-config", "--lang", "en", "--help", env={"LANG": "zh_CN.UTF-8"}).startswith("usage:")


def test_json_keeps_english_keys_in_chinese(tmp_path, capsys):
    bad = tmp_path / "site.json"
    bad.write_text("{}")
    assert cli.main(["--lang", "zh", "check-config", str(bad), "--json"]) == cli.EXIT_FAILED
    doc = json.loads(capsys.readouterr().out)
    assert {"file", "ok", "problems", "summary", "summary_zh"} <= set(doc) and CJK.search(doc["summary_zh"])
    assert not CJK.search(doc["summary"])
    assert messages.get_lang() == "en"  # main() leaves the library speaking English


def _english_literal(node) -> bool:
    """A string (or f-string, or % of one) of English words: what a person would read."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return _english_literal(node.left) or _english_literal(node.right)
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and re.search(r"[A-Za-z]{3}", v.value) for v in node.values)
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value not in messages.MESSAGES \
        and bool(re.search(r"[A-Za-z]{3}", node.value))


def fail_calls_without_chinese(root: Path = HOST) -> list[str]:
    """Every fail(args, code, TEXT) in the host package whose TEXT is an English literal with no zh=."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "fail"):
                continue
            if len(node.args) >= 3 and _english_literal(node.args[2]) and len(node.args) < 4 \
                    and not any(k.arg == "zh" for k in node.keywords):
                found.append("%s:%d" % (path.relative_to(root.parent), node.lineno))
    return found


def test_no_english_text_goes_to_fail_without_its_chinese():
    assert fail_calls_without_chinese() == []


def test_the_scan_finds_a_planted_one(tmp_path):
    pkg = tmp_path / "nengjian_host"
    pkg.mkdir()
    (pkg / "x.py").write_text('def f(args):\n    return fail(args, 2, "give --board")\n'
                              'def g(args):\n    return fail(args, 2, "give --board", zh="缺少 --board")\n'
                              'def h(args):\n    return fail(args, 2, "err.scan.which")\n')
    assert fail_calls_without_chinese(pkg) == ["nengjian_host/x.py:2"]
