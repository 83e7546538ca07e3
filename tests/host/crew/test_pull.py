"""`nengjian pull`: the store and config of a running gateway, copied over its console, checked by
sha256 against the gateway's own hash, decoded (the session files, which hold the platform's key, stay
behind); a gateway that goes away mid-pull; flash dumps as a source. A hostile gateway's file names:
tests/host/crew/test_pull_safety.py."""

import hashlib
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from nengjian_host import cli
from nengjian_host.common import bundle, storedump
from nengjian_host.common.device import Console
from nengjian_host.crew import pull

pytestmark = [pytest.mark.e2e]


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _delivered(dut, platform, n=2):
    dut.wait_for(lambda: len(platform.records()) >= n, timeout=60, what="%d values at the platform" % n)


def _pulls(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.needs("console", "files", "flash_image")
def test_pull_of_a_running_gateway_is_complete_and_verified(dut, platform, tmp_path):
    dut.start()
    _delivered(dut, platform)
    out = tmp_path / "pulls"
    code, text, err = _cli("pull", "--port", dut.port, "--out", out, "--json")
    assert code == 0, err or text
    res = json.loads(text)
    final = Path(res["dir"])
    assert _pulls(out) == [final] and not list(out.glob(".partial-*"))
    kinds = {f["kind"] for f in res["files"]}
    assert kinds == {"store", "config"}
    for f in res["files"]:
        assert hashlib.sha256((final / f["file"]).read_bytes()).hexdigest() == f["sha256"]
    assert (final / "config" / "site.json").read_bytes() == dut.gateway.config_path.read_bytes()  # no secrets
    assert [s["path"].rsplit("/", 1)[-1] for s in res["skipped"]] == ["session-city.json"]
    assert not (final / "session").exists()
    # The gateway kept running through the pull.
    n = len(dut.lines)
    dut.wait_for(lambda: any(" poll " in line for line in dut.lines[n:]), timeout=20, what="polling after the pull")

    # Decoded: every value the platform holds that was stored by then is in the export, same number.
    assert res["decoded"]["ok"] and res["decoded"]["kinds"]["EVENT"] >= 1
    rows = json.loads((final / "records.json").read_text())["records"]
    values = {(r["code"], r["statStart_cst"]): r["value"] for r in rows if r["kind"] == "VALUE"}
    at_platform = {(r["dataCode"], r["statDate"]): r["dataValue"] for r in platform.records()}
    common = set(values) & set(at_platform)
    assert common and all(float(values[k]) == at_platform[k] for k in common)
    assert (final / "records.csv").read_text().splitlines()[0].startswith("seq,ring,kind")
    assert json.loads((final / "cursors.json").read_text())["city"] >= 1
    # The gateway's own score, as its console status gave it: the store does not hold it.
    score = json.loads((final / "quality.json").read_text())
    assert [d["name"] for d in score["destinations"]] == ["city"] == res["quality"]["destinations"]
    q = score["destinations"][0]["quality"]
    assert q["days"] and q["days"][0]["due"] >= 0 and q["invalid"] == 0
    assert hashlib.sha256((final / "quality.json").read_bytes()).hexdigest() == res["quality"]["sha256"]

    # Checked independently: the store only appends, so each pulled segment is a prefix of the same
    # file on the flash image once the gateway has stopped.
    dut.stop()
    files, _what = pull.read_dump(dut.gateway.image_path)
    for f in res["files"]:
        if f["kind"] == "store" and f["file"].endswith(".seg"):
            assert files[f["file"]].startswith((final / f["file"]).read_bytes()), f["file"]


@pytest.mark.needs("console", "files", "power_cut")
def test_a_gateway_gone_mid_pull_leaves_nothing_and_the_retry_resumes(dut, platform, tmp_path, monkeypatch):
    dut.start()
    _delivered(dut, platform)
    monkeypatch.setattr(pull, "WINDOW", 256)  # many requests per file, so the cut lands inside one
    real = Console.get_range
    calls = {"n": 0, "bytes": 0, "cut": True}

    def cut_after_three(self, path, offset, length):
        calls["n"] += 1
        if calls["n"] == 4 and calls["cut"]:
            dut.power_off()  # kill -9: the console goes silent mid-file
        data, size = real(self, path, offset, length)
        calls["bytes"] += len(data)
        return data, size

    monkeypatch.setattr(Console, "get_range", cut_after_three)
    out = tmp_path / "pulls"
    code, _text, err = _cli("pull", "--port", dut.port, "--out", out, "--timeout", "3")
    assert code == 3
    assert "resume" in err and "no answer" in err
    assert _pulls(out) == []  # nothing half-written where the crew looks
    partial = list(out.glob(".partial-*"))
    assert len(partial) == 1
    kept = sum(p.stat().st_size for p in partial[0].rglob("*") if p.is_file())
    assert kept > 0  # what three answers brought, kept for the retry

    dut.power_on()
    dut.expect(r"event\s+boot: started", timeout=30)
    calls.update(n=0, bytes=0, cut=False)
    code, text, err = _cli("pull", "--port", dut.port, "--out", out, "--json")
    assert code == 0, err or text
    res = json.loads(text)
    final = Path(res["dir"])
    total = sum(f["size"] for f in res["files"])
    assert calls["bytes"] < total  # what the first attempt verified was not fetched again
    for f in res["files"]:
        assert hashlib.sha256((final / f["file"]).read_bytes()).hexdigest() == f["sha256"]
    assert not list(out.glob(".partial-*")) and _pulls(out) == [final]


def _whole_flash(data_img: bytes, config: bytes) -> bytes:
    """What `esptool read-flash 0 0x800000 dump.bin` gives for an esp32_eth gateway."""
    board = bundle.load_board("esp32_eth")
    flash = bytearray(b"\xff" * 0x800000)
    table = bundle.partition_table_bin(board.partitions)
    flash[0x8000:0x8000 + len(table)] = table
    vfs = board.part("vfs")
    app_fs = bundle.make_lfs_image({"config/site.json": config, "main.py": b"import app\n"}, vfs.size)
    flash[vfs.offset:vfs.offset + len(app_fs)] = app_fs
    data = board.part("data")
    flash[data.offset:data.offset + len(data_img)] = data_img
    return bytes(flash)


@pytest.mark.needs("flash_image")
def test_pull_reads_flash_dumps(dut, platform, tmp_path):
    dut.start()
    _delivered(dut, platform)
    dut.stop()
    image = dut.gateway.image_path.read_bytes()
    config = dut.gateway.config_path.read_bytes()
    want = list(storedump.iter_records(storedump.open_source(dut.gateway.image_path)))

    dump = tmp_path / "dump.bin"
    dump.write_bytes(_whole_flash(image, config))
    out = tmp_path / "pulls"
    code, text, err = _cli("pull", "--dump", dump, "--gateway", "NJ-0042", "--out", out, "--json")
    assert code == 0, err or text
    res = json.loads(text)
    final = Path(res["dir"])
    assert final.name.startswith("NJ-0042-") and "vfs" in res["source"] and "data" in res["source"]
    assert (final / "config" / "site.json").read_bytes() == config
    assert not (final / "session").exists() and [s["kind"] for s in res["skipped"]] == ["session"]
    assert res["decoded"]["records"] == len(want)

    # Just the data partition (esptool read-flash 0x400000 0x400000) is a littlefs image: no config.
    code, text, err = _cli("pull", "--dump", dut.gateway.image_path, "--out", out, "--json")
    assert code == 0, err or text
    assert {f["kind"] for f in json.loads(text)["files"]} == {"store"}

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 8192)
    code, _text, err = _cli("pull", "--dump", junk, "--out", out)
    assert code == 2 and "littlefs" in err


def test_pull_from_nowhere_is_exit_3(tmp_path):
    code, _text, err = _cli("pull", "--port", tmp_path / "ttyNONE", "--out", tmp_path / "pulls")
    assert code == 3 and "does not exist" in err
    assert not (tmp_path / "pulls").exists()
