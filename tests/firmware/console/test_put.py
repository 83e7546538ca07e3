"""The console's `put` (firmware/nengjian/console/commands.py) writes a file all or nothing, through the
firmware's one atomic writer (nengjian.core.statefile): the bytes arrive beside the file, replace it
only once their sha256 matches, and nothing is left beside it otherwise. CPython with the real
Console; tests/e2e/test_console.py puts files on a running sim gateway."""

import asyncio
import hashlib
import json
from base64 import b64encode

import pytest
from nengjian.console import commands as consolecmd
from nengjian.console import protocol


class Board:
    NAME = "sim"

    def __init__(self, cdir):
        self.CONFIG_DIR = cdir


@pytest.fixture
def con(tmp_path, capsys):
    c = protocol.Console(Board(str(tmp_path)), "0.1.0")
    c.site = tmp_path / "site.json"
    c.site.write_bytes(b'{"old": true}')
    c.read = lambda: [json.loads(line[4:]) for line in capsys.readouterr().out.splitlines()
                      if line.startswith(protocol.PREFIX)]
    return c


def _run(con, cmd, args=(), text=""):
    asyncio.run(consolecmd.run(con, 1, cmd, list(args), text))
    return con.read()


def _beside(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def test_a_put_whose_hash_matches_replaces_the_file(con):
    new = b'{"site": {"name": "Plant 7"}}'
    assert _run(con, "put", (str(con.site), str(len(new)), hashlib.sha256(new).hexdigest()))[-1]["have"] == 0
    ans = _run(con, "+", text=b64encode(new).decode())[-1]
    assert ans["ok"] and ans["written"] == str(con.site)
    assert con.site.read_bytes() == new and _beside(con.site) == []


def test_a_put_that_hashes_otherwise_leaves_the_old_file_and_nothing_beside(con):
    new = b'{"x": 1}'
    _run(con, "put", (str(con.site), str(len(new)), "0" * 64))
    ans = _run(con, "+", text=b64encode(new).decode())[-1]
    assert not ans["ok"] and "nothing written" in ans["error"]
    assert con.site.read_bytes() == b'{"old": true}' and _beside(con.site) == []


def test_a_put_cut_short_by_another_command_leaves_the_old_file(con):
    _run(con, "put", (str(con.site), "800", "1" * 64))
    _run(con, "+", text=b64encode(b"half").decode())
    asyncio.run(con._handle(b"help"))  # any other request ends the put
    assert con.site.read_bytes() == b'{"old": true}' and _beside(con.site) == []


def test_what_a_put_hands_on_is_the_file_it_committed(con, tmp_path):
    """The `ota` push's path: the bundle is handed on under its own name once its hash matched."""
    got = []
    data = b"NJOTA1\n\x00" + b"\x00" * 40
    target = tmp_path / "incoming.njota"
    consolecmd._open_put(con, 1, str(target), len(data), hashlib.sha256(data).hexdigest(),
                         lambda c, rid, path: got.append((path, open(path, "rb").read())))
    consolecmd._put_data(con, 1, b64encode(data).decode())
    assert got == [(str(target), data)] and not (tmp_path / "incoming.njota.new").exists()
