"""nengjian.config.validate names every problem of a site config at once (at most LIMIT), on CPython
and on MicroPython, where the gateway's safe-mode reason carries the first few; `nengjian check-config`
prints them all, and in --json as a list."""

import copy
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest
from mpyrun import run_mpy
from nengjian import config as fw_config
from nengjian.config import validate
from nengjian.meters import profile
from nengjian_host import cli
from nengjian_host.common import paths, siteconfig
from nengjian_host.sim.gateway import demo_site


def _site():
    return demo_site("http://127.0.0.1:1/api/register")


def three_cross_field_problems():
    """A bad credit-code check character, a meter on a bus that does not exist, a code mapped twice."""
    cfg = _site()
    cfg["enterprise"]["code"] = cfg["enterprise"]["code"][:-1] + ("X" if cfg["enterprise"]["code"][-1] != "X" else "Y")
    cfg["meters"][1]["bus"] = "bus9"
    cfg["items"][1]["code"] = cfg["items"][0]["code"]
    cfg["items"][1]["scope"] = 1
    return cfg, ("enterprise.code:", "meters[1].bus:", "items[1].code:")


def schema_and_cross_field_problems():
    """One field the schema refuses (an empty APN), one it refuses in a meter, one only the cross checks see."""
    cfg = _site()
    cfg["network"] = {"apn": ""}
    cfg["meters"][0]["address"] = 300
    cfg["destinations"][0]["url"] = "ftp://127.0.0.1/"
    return cfg, ("network.apn:", "meters[0].address:", "destinations[0].url:")


CASES = [three_cross_field_problems, schema_and_cross_field_problems]


def _load(name):
    return profile.load(str(paths.PROFILES), name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_every_problem_is_named_at_once(case):
    cfg, where = case()
    with pytest.raises(fw_config.ConfigError) as e:
        fw_config.check(copy.deepcopy(cfg), _load)
    found = getattr(e.value, "problems", [str(e.value)])
    assert [any(p.startswith(w) for p in found) for w in where] == [True] * 3, found
    assert all(w in str(e.value) for w in where)  # the safe-mode reason names the first three


def test_a_part_the_schema_refused_is_not_named_again():
    """A meter whose poll interval is not a number is not also told its bus is missing."""
    cfg = _site()
    cfg["meters"][0].update(interval_s="fast", bus="bus9")
    with pytest.raises(fw_config.ConfigError) as e:
        fw_config.check(cfg, _load)
    assert [p for p in e.value.problems if p.startswith("meters[0].")] == [
        "meters[0].interval_s: expected integer, got 'fast'"], e.value.problems
    assert not any(p.startswith("items[0].") for p in e.value.problems), e.value.problems


def test_the_list_stops_at_the_limit_and_counts_the_rest():
    cfg = _site()
    cfg["meters"] = [dict(cfg["meters"][0], id="m%d" % i, bus="nowhere") for i in range(validate.LIMIT + 10)]
    with pytest.raises(fw_config.ConfigError) as e:
        fw_config.check(cfg, _load)
    assert len(e.value.problems) == validate.LIMIT and e.value.more == 10
    assert str(e.value).endswith("(and %d more)" % (validate.LIMIT + 10 - 3))


def test_a_good_config_still_passes():
    assert fw_config.check(_site(), _load)["meters"][0]["fail_limit"] == 3
    assert siteconfig.check(_site()) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_check_config_prints_all_of_them(case, tmp_path):
    cfg, where = case()
    f = tmp_path / "site.json"
    f.write_text(json.dumps(cfg))
    for argv in (["check-config", str(f)], ["check-config", str(f), "--json"]):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(argv)
        assert code == cli.EXIT_FAILED
        if "--json" in argv:
            problems = json.loads(out.getvalue())["problems"]
            assert all(any(p.startswith(w) for p in problems) for w in where), problems
        else:
            lines = err.getvalue().splitlines()
            assert all(any(line.startswith("%s: %s" % (f, w)) for line in lines) for w in where), lines
            assert any("3 处问题" in line or "处问题" in line for line in lines)
    # in Chinese, every one of them (the laptop says each from its code: the gateway has no catalogue)
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert cli.main(["--lang", "zh", "check-config", str(f)]) == cli.EXIT_FAILED
    said = [line for line in err.getvalue().splitlines() if line.startswith("%s：" % f)]
    assert all(any(line.startswith("%s：%s" % (f, w[:-1])) for line in said) for w in where), said
    assert said and all(re.search(r"[\u4e00-\u9fff]", line.split("：", 2)[2]) for line in said), said


@pytest.mark.mpy
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_on_micropython(case):
    cfg, where = case()
    code = r"""
import gc, json
from nengjian import config
from nengjian.meters import profile
cfg = json.loads(%r)
gc.collect()
before = gc.mem_free()
try:
    config.check(cfg, lambda name: profile.load(%r, name))
    print("ACCEPTED")
except config.ConfigError as e:
    for p in getattr(e, "problems", [str(e)]):
        print("PROBLEM " + p)
    print("REASON " + str(e))
""" % (json.dumps(cfg), str(paths.PROFILES))
    out = run_mpy(code, heap="256k").stdout
    problems = [line[8:] for line in out.splitlines() if line.startswith("PROBLEM ")]
    assert all(any(p.startswith(w) for p in problems) for w in where), out
    reason = [line for line in out.splitlines() if line.startswith("REASON ")][0]
    assert all(w in reason for w in where), reason
