"""Why a meter profile could not be loaded, in the installer's language: every reason the firmware's
profile loader gives (nengjian/meters/profile.py, `raise ValueError("..." % ...)`) has a `prof.*` entry in
the one catalogue whose English is the firmware's text, and check-config --lang zh says such a reason in
Chinese inside its Chinese frame (the gateway carries no catalogue: the laptop reads its English back)."""

from __future__ import annotations

import ast
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest
from nengjian_host import cli
from nengjian_host.common import messages, paths, siteconfig
from nengjian_host.sim.gateway import demo_site

CJK = re.compile(r"[\u4e00-\u9fff]")
SOURCE = paths.FIRMWARE / "nengjian" / "meters" / "profile.py"


def reasons(path=SOURCE) -> set[str]:
    """The % templates of every ValueError the profile module raises with a literal text."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                getattr(node.exc.func, "id", None) == "ValueError" and node.exc.args:
            arg = node.exc.args[0]
            text = arg.left if isinstance(arg, ast.BinOp) else arg
            if isinstance(text, ast.Constant) and isinstance(text.value, str):
                found.add(text.value)
    return found


def as_format(template: str) -> str:
    n = iter(range(100))
    return re.sub(r"%([srd%])", lambda m: "%" if m.group(1) == "%" else
                  "{%d%s}" % (next(n), "!r" if m.group(1) == "r" else ""), template)


REASONS = sorted(reasons())


def test_the_source_names_its_reasons():
    assert len(REASONS) >= 15 and "no profile %r in %s" in REASONS


@pytest.mark.parametrize("template", REASONS)
def test_every_reason_the_loader_gives_is_in_the_catalogue(template):
    en = as_format(template)
    keys = [k for k, (e, _zh) in messages.MESSAGES.items() if k.startswith("prof.") and e == en]
    assert keys, "the profile loader says %r: add a prof.* entry with English %r to messages.py" % (template, en)
    zh = messages.MESSAGES[keys[0]][1]
    assert CJK.search(zh) and messages.placeholders(zh) == messages.placeholders(en), keys[0]


@pytest.mark.parametrize("english, chinese", [
    ("no profile 'acme-x' in /flash/profiles", "/flash/profiles 中没有仪表模板 'acme-x'"),
    ("profile 'p1': points.e: fc missing", "仪表模板 'p1'：points.e：缺少 fc"),
    ("profile 'p1': points.e.fc: expected integer, got 'x'", "仪表模板 'p1'：points.e.fc：类型应为 integer，实际是 'x'"),
    ("profile 'p1' is not valid JSON (syntax error)", "仪表模板 'p1' 不是有效的 JSON（syntax error）"),
    ("something new the laptop does not know", "something new the laptop does not know"),
])
def test_a_reason_is_said_in_chinese_from_its_english(english, chinese):
    said = siteconfig.profile_reason(english)
    assert str(said) == english and said.zh == chinese


def test_check_config_lang_zh_says_why_a_profile_cannot_be_loaded_in_chinese(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for p in paths.PROFILES.glob("*.json"):
        (profiles / p.name).write_bytes(p.read_bytes())
    cfg = demo_site("http://127.0.0.1:1/api/register")
    broken = json.loads((profiles / ("%s.json" % cfg["meters"][0]["profile"])).read_text())
    name = next(iter(broken["points"]))
    del broken["points"][name]["fc"]
    (profiles / "broken.json").write_text(json.dumps(broken))
    cfg["meters"][0]["profile"] = "broken"
    cfg["meters"][1]["profile"] = "nowhere"
    problems = siteconfig.check(cfg, profiles)
    zh = [p.zh for p in problems if "profile" in str(p)]
    assert len(zh) == 2, problems
    assert any("缺少 fc" in z for z in zh) and any("没有仪表模板 'nowhere'" in z for z in zh), zh
    assert not any(re.search(r"[A-Za-z]{3,} [a-z]{3,}", z) for z in zh), zh  # no English sentence left
    f = tmp_path / "site.json"
    f.write_text(json.dumps(cfg))
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        cli.main(["--lang", "zh", "check-config", str(f)])
    assert "没有仪表模板" in err.getvalue() or "2 处问题" in err.getvalue()


def test_every_text_the_config_loader_gives_without_a_code_is_in_the_catalogue():
    """nengjian.config.load's own ConfigErrors (the file unreadable, not JSON) carry no code: the laptop
    says them back from their English (`cfgload.*`), in the status of a gateway in safe mode."""
    path = paths.FIRMWARE / "nengjian" / "config" / "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                getattr(node.exc.func, "id", None) == "ConfigError" and isinstance(node.exc.args[0], ast.BinOp):
            found.add(as_format(node.exc.args[0].left.value))
    ours = {e for k, (e, _zh) in messages.MESSAGES.items() if k.startswith("cfgload.")}
    assert found and found <= ours, found - ours


@pytest.mark.parametrize("template, args", [("read 9010 answered", ()), ("read address answered", ()),
                                            ("meter type 0x%02X", (0x10,)), ("garbled reply (%s)", ("bad length",)),
                                            ("register %d = %s", (1, "00FF")),
                                            ("CRC error: wrong line settings, or noise", ())])
def test_a_meters_scan_reply_is_said_in_chinese(template, args):
    """What a meter answered the bus scan (nengjian.meters.scan, the gateway's English) in `nengjian scan`'s
    table and the commissioning report: the firmware still says it so, and the laptop says it in Chinese."""
    from nengjian_host.common import messages
    from nengjian_host.install import scan

    assert '"%s"' % template in (paths.FIRMWARE / "nengjian" / "meters" / "scan.py").read_text()
    reply = template % args if args else template
    said = siteconfig.said_back(reply, "scanreply.")
    assert CJK.search(said.zh) and str(said) == reply, said.zh
    find = {"protocol": "dlt645-2007", "address": "000000001234", "baud": 2400, "bits": 8, "parity": "E", "stop": 1,
            "ok": True, "reply": reply}
    messages.set_lang("zh")
    try:
        text = scan.table([find])
    finally:
        messages.set_lang("en")
    assert said.zh in text and "应答" in text.splitlines()[0], text
