"""host/nengjian_host/cli.py and the commands each package registers: every command's --help works
and teaches (what it does, an example), and the error paths that need no gateway end with the right
exit code through common/output.py. The commands on a running gateway are driven end to end in
tests/e2e/ (test_console, test_crew_entries, test_ota_sim) and tests/host/crew/test_pull.py."""

from __future__ import annotations

import argparse
import json

import pytest
from nengjian_host import cli
from nengjian_host.vendor import updates


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every (sub)command of the parser, by its words: ("status",), ("ota", "push") ..."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[path + (name,)] = sub
                found.update(commands(sub, path + (name,)))
    return found


COMMANDS = commands(cli.build_parser())
ALL = sorted(COMMANDS)


def test_every_command_is_still_there():
    assert {" ".join(p) for p in ALL} >= {
        "sim", "check-config", "schema", "bundle", "flash", "provision", "inventory", "scan", "ledger", "status",
        "pull", "console", "visit", "manual", "ota", "ota keygen", "ota build", "ota verify", "ota push", "ota state"}


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage: nengjian")
    assert all(words[0] in out for words in ALL)
    assert "exit codes: 0 done" in out


def test_no_command_prints_the_help_and_is_a_usage_error(capsys):
    assert cli.main([]) == cli.EXIT_USAGE
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("words", ALL, ids=" ".join)
def test_every_command_help_works(words, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*words, "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("usage: nengjian " + " ".join(words))


@pytest.mark.parametrize("words", ALL, ids=" ".join)
def test_every_command_help_says_what_it_does_and_shows_an_example(words):
    p, command = COMMANDS[words], "nengjian " + " ".join(words)
    assert p.description and len(p.description) > 40, "say what `%s` does" % command
    examples = [line.strip() for line in (p.epilog or "").splitlines() if line.strip().startswith(command)]
    assert examples, "show an example of `%s` on a line of its own in the epilog" % command
    assert "\n  " + examples[0] in p.format_help()  # printed as written (output.HelpFormatter)


# ---- error paths that need no gateway
def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    c = capsys.readouterr()
    return code, c.out, c.err


def test_check_config_names_each_problem(tmp_path, capsys):
    bad = tmp_path / "site.json"
    bad.write_text("{}")
    code, out, err = _run(capsys, "check-config", bad)
    assert code == cli.EXIT_FAILED and out == "" and str(bad) in err and "错误" in err
    code, out, _err = _run(capsys, "check-config", bad, "--json")
    doc = json.loads(out)
    assert code == cli.EXIT_FAILED and doc["ok"] is False and doc["problems"] and doc["file"] == str(bad)


def test_scan_without_a_gateway_is_a_usage_error(capsys):
    code, _out, err = _run(capsys, "scan")
    assert code == cli.EXIT_USAGE and "--console PORT" in err and "--sim-bus" in err


def test_status_of_no_gateway_is_exit_3_also_as_json(tmp_path, capsys):
    code, _out, err = _run(capsys, "status", "--port", tmp_path / "ttyNONE")
    assert code == cli.EXIT_UNREACHABLE and "does not exist" in err
    code, out, err = _run(capsys, "status", "--port", tmp_path / "ttyNONE", "--json")
    assert code == cli.EXIT_UNREACHABLE and err == "" and json.loads(out)["exit_code"] == 3


def test_console_and_ota_state_of_no_gateway_are_exit_3(tmp_path, capsys):
    assert _run(capsys, "console", "--port", tmp_path / "ttyNONE")[0] == cli.EXIT_UNREACHABLE
    assert _run(capsys, "ota", "state", "--port", "sim:%s" % tmp_path)[0] == cli.EXIT_UNREACHABLE


def test_entries_the_gateway_would_refuse_never_reach_it(tmp_path, capsys):
    nowhere = ["--port", tmp_path / "ttyNONE"]
    code, _out, err = _run(capsys, "visit", "--who", "Li Wei", " ", *nowhere)
    assert code == cli.EXIT_USAGE and "--who" in err
    code, _out, err = _run(capsys, "manual", "--code", "00-00-0000-010100-11", "--period", "month", "--start",
                           "2026-11-20", "--value", "1", *nowhere)
    assert code == cli.EXIT_USAGE
    code, out, _err = _run(capsys, "manual", "--code", "00-00-0000-010100-11", "--start", "2026-11-20", "--value",
                           "35.20", "--dry-run", *nowhere)
    assert code == cli.EXIT_OK and out.startswith("would enter 00-00-0000-010100-11 day 2026-11-20")


def test_flash_refuses_the_sim_board_and_provision_wants_its_inputs(tmp_path, capsys, monkeypatch):
    code, out, _err = _run(capsys, "flash", "--board", "sim", "--json")
    assert code == cli.EXIT_USAGE and "--sync DIR" in json.loads(out)["error"]
    monkeypatch.setenv("NENGJIAN_HOME", str(tmp_path / "home"))
    code, _out, err = _run(capsys, "provision", "--serial", "NJ1")
    assert code == cli.EXIT_USAGE and "give --config, --mac, --board" in err


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A small signed bundle (no firmware collected), its key pair and a copy with one byte changed."""
    d = tmp_path_factory.mktemp("ota")
    updates.keygen(d / "v.pem", d / "v.pub.json", "test-vendor")
    files = [("nengjian/app.py", b'VERSION = "9.9.9"\n')]
    man = updates.manifest(files, "9.9.9", ["sim"])
    data = updates.pack(man, updates.sign(updates.load_private(d / "v.pem"), man), files)
    (d / "good.njota").write_bytes(data)
    (d / "bad.njota").write_bytes(data[:-1] + b"!")
    return d


def test_ota_verify_keygen_and_push_refusals(signed, tmp_path, capsys):
    code, out, _err = _run(capsys, "ota", "verify", signed / "good.njota", "--pub", signed / "v.pub.json")
    assert code == cli.EXIT_OK and "verify" in out
    code, _out, err = _run(capsys, "ota", "verify", signed / "bad.njota", "--pub", signed / "v.pub.json")
    assert code == cli.EXIT_FAILED and "does not match its hash" in err
    code, _out, err = _run(capsys, "ota", "verify", tmp_path / "none.njota", "--pub", signed / "v.pub.json")
    assert code == cli.EXIT_USAGE
    code, _out, err = _run(capsys, "ota", "keygen", "--id", "v", "--out", signed)
    assert code == cli.EXIT_USAGE and "refusing to overwrite" in err
    assert (signed / "v.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    code, out, _err = _run(capsys, "ota", "push", signed / "v.pub.json", "--port", tmp_path / "ttyNONE", "--json")
    assert code == cli.EXIT_USAGE and "not a Nengjian update bundle" in json.loads(out)["error"]
