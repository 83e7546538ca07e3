"""Every problem the gateway's config checks can name has a code with its English and Chinese in the one
catalogue (`cfg.CODE` in host/nengjian_host/common/messages.py): the codes are read from the firmware's
source (config/validate.py, config/schema.py, core/identity.py), the catalogue's English is the
firmware's own text with its % fields as {0}, {1!r} ..., and `nengjian check-config --lang zh` says
several problems of one config all in Chinese."""

from __future__ import annotations

import ast
import copy
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from nengjian_host import cli
from nengjian_host.common import messages, paths, siteconfig
from nengjian_host.sim.gateway import demo_site

SOURCES = ("nengjian/config/validate.py", "nengjian/config/schema.py", "nengjian/core/identity.py")
CJK = re.compile(r"[\u4e00-\u9fff]")
FORWARD = ("add", "put", "issue", "_bad")


def _literal(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def problem_codes(root: Path = paths.FIRMWARE) -> dict[str, set[str]]:
    """{code: {English template}} of every problem the sources can make: Problems.add/put(path, CODE,
    TEXT, ...), schema._bad(problems, path, CODE, TEXT, ...) and identity's (CODE, TEXT, args) issues.
    A call whose code or text is not a literal is an error: its code could not be checked."""
    found: dict[str, set[str]] = {}
    for rel in SOURCES:
        path = root / rel
        tree = ast.parse(path.read_text(), str(path))
        # the collector's own methods pass a code on; they make none
        passing = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in FORWARD
                   for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in passing:
                continue
            pair = None
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                at = {"add": 1, "put": 1, "_bad": 2}.get(name)
                if at is not None and len(node.args) > at + 1:
                    pair = (_literal(node.args[at]), _literal(node.args[at + 1]))
                    if None in pair:
                        raise AssertionError("%s:%d: a problem without a literal code and text" % (rel, node.lineno))
            elif isinstance(node, ast.Tuple) and len(node.elts) == 3 and isinstance(node.elts[2], ast.Tuple):
                pair = (_literal(node.elts[0]), _literal(node.elts[1]))
                if None in pair:
                    pair = None
            if pair:
                found.setdefault(pair[0], set()).add(pair[1])
    return found


def as_format(template: str) -> str:
    """A % template as the catalogue writes it: %s/%d -> {n}, %r -> {n!r}, %% -> %."""
    n = iter(range(100))
    return re.sub(r"%([srd%])", lambda m: "%" if m.group(1) == "%" else
                  "{%d%s}" % (next(n), "!r" if m.group(1) == "r" else ""), template.replace("{", "{{").replace("}", "}}"))


CODES = problem_codes()


def test_the_sources_name_their_codes():
    assert len(CODES) >= 40 and {"type", "required", "twice", "no_bus", "uscc_check", "scope_unit"} <= set(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_the_firmware_emits_is_in_the_catalogue(code):
    key = "cfg." + code
    assert key in messages.MESSAGES, "the firmware emits problem code %r: add %s to messages.py" % (code, key)
    assert len(CODES[code]) == 1, "code %r has two English texts: %s" % (code, CODES[code])
    en, zh = messages.MESSAGES[key]
    assert en == as_format(next(iter(CODES[code]))), key  # what the laptop renders is what the gateway says
    assert CJK.search(zh) and messages.placeholders(zh) == messages.placeholders(en), key


def test_the_enumeration_sees_a_code_missing(tmp_path):
    """A planted check with a code the catalogue lacks is found (and so is one without a literal code)."""
    for rel in SOURCES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((paths.FIRMWARE / rel).read_text())
    v = tmp_path / SOURCES[0]
    v.write_text(v.read_text() + '\n\ndef _planted(found):\n    found.put("x", "no_such_code", "planted %r", (1,))\n')
    planted = problem_codes(tmp_path)
    assert set(planted) - set(CODES) == {"no_such_code"} and "cfg.no_such_code" not in messages.MESSAGES
    v.write_text(v.read_text() + '\n\ndef _planted2(found, c):\n    found.put("x", c, "planted")\n')
    with pytest.raises(AssertionError, match="literal code"):
        problem_codes(tmp_path)


def several_problems():
    """Schema and cross-field problems of one config: a credit code's check character, a meter on a bus
    that does not exist, a data-item code against its scope (which is then also mapped twice), an
    unknown field, a poll interval out of range."""
    cfg = demo_site("http://127.0.0.1:1/api/register")
    code = cfg["enterprise"]["code"]
    cfg["enterprise"]["code"] = code[:-1] + ("X" if code[-1] != "X" else "Y")
    cfg["meters"][1]["bus"] = "bus9"
    cfg["items"][0]["scope"] = 1
    cfg["items"][0]["code"] = "01-00-0000-023300-11"
    cfg["site"]["colour"] = "blue"
    cfg["meters"][0]["interval_s"] = 0
    return cfg


def test_check_config_lang_zh_says_every_problem_in_chinese(tmp_path):
    f = tmp_path / "site.json"
    f.write_text(json.dumps(several_problems()))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["--lang", "zh", "check-config", str(f)])
    assert code == cli.EXIT_FAILED
    lines = [line[len(str(f)) + 1:].strip() for line in err.getvalue().splitlines() if line.startswith(str(f) + "：")]
    want = ["enterprise.code：校验位", "meters[1].bus：没有名为 'bus9' 的总线", "items[0].code：统计范围 1",
            "items[1].code：对应了两次", "site.colour：未知字段", "meters[0].interval_s：小于下限"]
    assert all(any(line.startswith(w.split("：")[0] + "：") and w.split("：")[1] in line for line in lines)
               for w in want), lines
    assert len(lines) >= len(want) and all(CJK.search(line) for line in lines), lines
    assert not any(re.search(r"[A-Za-z]{4,} [a-z]{3,}", line.split("：", 1)[1]) for line in lines), lines
    assert "6 处问题" in err.getvalue()


def test_check_config_in_english_is_what_the_gateway_says():
    from nengjian import config as fw_config
    from nengjian.meters import profile

    cfg = several_problems()
    with pytest.raises(fw_config.ConfigError) as e:
        fw_config.check(copy.deepcopy(cfg), lambda n: profile.load(str(paths.PROFILES), n))
    problems = siteconfig.check(cfg)
    assert [str(p) for p in problems] == e.value.problems and not any(CJK.search(p) for p in problems)
    assert all(CJK.search(p.zh) for p in problems)


def test_what_only_the_full_jsonschema_finds_is_still_named(monkeypatch):
    """Where the gateway's small validator and jsonschema disagree, jsonschema's find is kept (its
    English in both languages, a secret's value never shown)."""
    cfg = demo_site("http://127.0.0.1:1/api/register")
    cfg["meters"][0]["interval_s"] = 0
    cfg["network"] = {"pin": 12345678}
    monkeypatch.setattr(siteconfig.fw_config, "check", lambda c, loader: c)  # the gateway saw nothing
    problems = siteconfig.check(cfg)
    assert [p.split(": ")[0] for p in problems] == ["meters[0].interval_s", "network.pin"], problems
    assert "minimum" in problems[0] and problems[0].zh == str(problems[0]).replace(": ", "：", 1)
    assert "12345678" not in problems[1] + problems[1].zh and CJK.search(problems[1].zh)
