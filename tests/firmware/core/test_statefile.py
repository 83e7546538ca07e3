"""Small state files (firmware/nengjian/core/statefile.py) on MicroPython: round trip, a missing file,
every torn prefix of a file, another version, leftover NAME.new files of a save cut before its
rename, saves that fail, the bare-number format without a version, and remove."""

import json

import pytest
from mpyrun import run_mpy

pytestmark = pytest.mark.mpy

PRELUDE = r"""
import json, os
from nengjian.core import statefile
D = %r
errs = []
def text(p):
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return None
def put(p, s):
    with open(p, "w") as f:
        f.write(s)
def exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
out = {}
"""


def mpy(tmp_path, body):
    code = PRELUDE % str(tmp_path) + body + "\nprint(json.dumps(out))\n"
    return json.loads(run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])


def test_round_trip_keeps_v_first_and_the_callers_dict(tmp_path):
    got = mpy(tmp_path, r"""
p = D + "/a.json"
doc = {"last": {"x": 1}, "level": {}, "n": [1, 2.5, "t", None, True]}
out["ok"] = statefile.save(p, doc, 1, errs.append)
out["text"] = text(p)
out["doc"] = statefile.load(p, 1, errs.append)
out["caller"] = sorted(doc)
out["new_left"] = exists(p + ".new")
doc["v"] = 7  # the caller's own "v" is replaced by the version
statefile.save(p, doc, 1, errs.append)
out["v"] = statefile.load(p, 1, errs.append)["v"]
out["errs"] = errs
""")
    assert got["ok"] is True and got["errs"] == [] and not got["new_left"]
    assert got["text"].startswith('{"v": 1, ')
    assert got["doc"] == {"v": 1, "last": {"x": 1}, "level": {}, "n": [1, 2.5, "t", None, True]}
    assert got["caller"] == ["last", "level", "n"]  # no "v" added to the caller's dict
    assert got["v"] == 1


def test_missing_file_is_none_and_quiet(tmp_path):
    got = mpy(tmp_path, r"""
out["doc"] = statefile.load(D + "/none.json", 1, errs.append)
out["errs"] = errs
""")
    assert got == {"doc": None, "errs": []}


def test_every_torn_prefix_is_refused_and_reported(tmp_path):
    got = mpy(tmp_path, r"""
p = D + "/t.json"
statefile.save(p, {"sums": {"1:1709222400": {"a": [1, -2, True]}}, "sent": {"k": "0.1"}}, 1)
whole = text(p)
loaded = []
for n in range(len(whole)):
    put(p, whole[:n])
    before = len(errs)
    loaded.append(statefile.load(p, 1, errs.append) is not None or len(errs) != before + 1)
put(p, whole[:-1] + "\x00\x00\xff")
bad = statefile.load(p, 1, errs.append)
out["n"] = len(whole)
out["loaded"] = sum(1 for x in loaded if x)
out["bad"] = bad
out["errs"] = len(errs)
out["first"] = errs[0]
""")
    # every prefix: None and on_error exactly once; garbage at the end likewise
    assert got["loaded"] == 0 and got["bad"] is None and got["errs"] == got["n"] + 1
    assert got["first"].startswith("not complete JSON")


def test_another_version_or_not_an_object_is_refused(tmp_path):
    got = mpy(tmp_path, r"""
p = D + "/v.json"
statefile.save(p, {"x": 1}, 2)
out["v2"] = statefile.load(p, 1, errs.append)
put(p, "[1, 2]")
out["list"] = statefile.load(p, 1, errs.append)
put(p, '{"x": 1}')
out["nov"] = statefile.load(p, 1, errs.append)
out["errs"] = errs
""")
    assert got["v2"] is None and got["list"] is None and got["nov"] is None
    assert got["errs"] == ["version 2, this firmware reads 1", "not a JSON object",
                           "version None, this firmware reads 1"]


def test_leftover_new_files(tmp_path):
    got = mpy(tmp_path, r"""
p = D + "/s.json"
# 1. NAME and a whole NAME.new (a save cut before its rename): NAME, the committed one, wins
statefile.save(p, {"n": 1}, 1)
put(p + ".new", '{"v": 1, "n": 2}')
out["both"] = statefile.load(p, 1, errs.append)["n"]
# 2. first save cut before its rename: no NAME, a whole NAME.new is taken up and renamed
os.remove(p)
out["only_new"] = statefile.load(p, 1, errs.append)["n"]
out["promoted"] = [exists(p), exists(p + ".new")]
# 3. no NAME, a torn NAME.new: nothing was ever committed, no state and nothing to report
os.remove(p)
put(p + ".new", '{"v": 1, "n": ')
out["torn_new"] = statefile.load(p, 1, errs.append)
# 4. NAME torn (not on littlefs, but on a volume without atomic rename) and a whole NAME.new
put(p, '{"v": 1, "n')
put(p + ".new", '{"v": 1, "n": 3}')
out["torn_name"] = statefile.load(p, 1, errs.append)["n"]
# 5. no NAME, a NAME.new of another version: not taken
os.remove(p)
put(p + ".new", '{"v": 2, "n": 4}')
out["other_version"] = statefile.load(p, 1, errs.append)
# 6. a save after a leftover NAME.new: overwrites it
statefile.save(p, {"n": 5}, 1)
out["after"] = [statefile.load(p, 1)["n"], exists(p + ".new")]
out["errs"] = errs
""")
    assert got["both"] == 1
    assert got["only_new"] == 2 and got["promoted"] == [True, False]
    assert got["torn_new"] is None
    assert got["torn_name"] == 3
    assert got["other_version"] is None
    assert got["after"] == [5, False]
    assert got["errs"] == []  # NAME.new rescues are logged to the console, not the caller's fallback


def test_failing_saves_return_false_and_report(tmp_path):
    got = mpy(tmp_path, r"""
# a parent directory that does not exist
out["no_dir"] = statefile.save(D + "/nodir/x.json", {"a": 1}, 1, errs.append)
# NAME is a directory: the write works, the rename fails, and the NAME.new is cleaned up
os.mkdir(D + "/isdir")
out["rename"] = statefile.save(D + "/isdir", {"a": 1}, 1, errs.append)
out["new_left"] = exists(D + "/isdir.new")
# no on_error: logged to the console, still no exception
out["quiet"] = statefile.save(D + "/nodir/y.json", 3, None)
out["errs"] = errs
""")
    assert got["no_dir"] is False and got["rename"] is False and got["quiet"] is False
    assert not got["new_left"]
    assert len(got["errs"]) == 2 and "ENOENT" in got["errs"][0] and got["errs"][0].startswith("[Errno")


def test_default_report_goes_to_the_console(tmp_path):
    code = PRELUDE % str(tmp_path) + r"""
put(D + "/c.json", '{"v": 1')
print(statefile.load(D + "/c.json", 1))
"""
    lines = run_mpy(code, heap="256k").stdout.strip().splitlines()
    assert lines[-1] == "None"
    assert " W state " in lines[0] and "c.json: not complete JSON" in lines[0]


def test_without_version_any_json_value_as_saved(tmp_path):
    got = mpy(tmp_path, r"""
p = D + "/boots"
put(p, "3\n")  # the boot counter as older firmware wrote it
out["legacy"] = statefile.load(p, None, errs.append)
statefile.save(p, 4, None, errs.append)
out["text"] = text(p)
s = D + "/session.json"
statefile.save(s, {"deviceId": "d1"}, None, errs.append)
out["session"] = [text(s), statefile.load(s, None, errs.append)]
statefile.remove(s)
put(s + ".new", '{"deviceId": "old"}')
statefile.remove(s)
out["removed"] = [exists(s), exists(s + ".new"), statefile.load(s, None, errs.append)]
out["errs"] = errs
""")
    assert got["legacy"] == 3 and got["text"] == "4"
    assert got["session"] == ['{"deviceId": "d1"}', {"deviceId": "d1"}]
    assert got["removed"] == [False, False, None]  # remove: no NAME.new left to take up later
    assert got["errs"] == []


@pytest.mark.parametrize("version", [1, None])
def test_same_on_cpython(tmp_path, version):
    from nengjian.core import statefile

    p = str(tmp_path / "c.json")
    errs = []
    assert statefile.save(p, {"a": [1, "x"]}, version, errs.append)
    want = {"a": [1, "x"]} if version is None else {"v": 1, "a": [1, "x"]}
    assert statefile.load(p, version, errs.append) == want
    (tmp_path / "c.json").write_text('{"v": 1, "a": [1')
    assert statefile.load(p, version, errs.append) is None
    assert not statefile.save(str(tmp_path / "no" / "c.json"), {}, version, errs.append)
    assert len(errs) == 2 and errs[0].startswith("not complete JSON") and "No such file" in errs[1]
