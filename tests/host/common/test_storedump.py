"""The host decoder (host/nengjian_host/common/storedump.py) against stores the firmware wrote.

The firmware runs on MicroPython and writes its store on the sim board's data partition (a littlefs2
image in a file, through boards/sim/board.py as the app does); it prints what it appended. The host
decoder, which shares no code with the firmware (littlefs-python, cbor2, its own framing), must read
back every stored record exactly: from the image, from the image inside a larger flash dump, and from
a pulled directory.
"""

import csv
import io
import json
import sys
from decimal import Decimal

import pytest
from mpyrun import run_mpy
from nengjian_host.common import paths, storedump

WRITER = r'''
import json
import board
from nengjian.core import records as R
from nengjian.core.decimal import Decimal
from nengjian.store.store import Store

mnt = board.mount_data()
s = Store(mnt + "/store", ("city", "prov"), segment_bytes=4096, segments=12, flush_records=16, flush_ms=10 ** 9,
          raw_segments=3, raw_segment_bytes=2048, main_keep=2, fold=2)
s.open()


def put(rec):
    q = s.append(rec)  # each record goes to stdout: the heap holds no list of them
    print("R" + json.dumps([q, [x if not isinstance(x, Decimal) else {"m": x.mantissa, "e": x.exponent} for x in rec]]))


T0 = 1760000700
for i in range(600):
    ts = T0 + i * 300
    put([R.READING, ts, "m%d" % (i % 3), "energy_kwh", Decimal(12345678 + i * 911, -2), 0])
    if i % 3 == 2:
        for item in range(2):
            put([R.VALUE, ts + 5, "0%d-00-0000-023300-11" % item, 0, ts - ts % 900, Decimal((i * 7919 + item * 131) % 5000 - 100, -2),
                 i % 13 != 0, 4, 1 + item])
    if i % 50 == 7:
        put([R.EVENT, ts, "meter", "m2: 3 timeouts, skipped for 300 s; 电表离线"])
    if i % 8 == 7:
        s.flush()
        recs, last = s.read("city", 40, (R.VALUE,))
        s.ack("city", last)
        if i < 450:
            recs, last = s.read("prov", 40, (R.VALUE,))
            s.ack("prov", last)
s.close()
print("JSON" + json.dumps({"durable": s.durable_seq, "cursors": {d: s.cursor(d) for d in ("city", "prov")},
                           "folds": s.stats["folds"], "raw_expired": s.stats["expired_raw"]}))
'''


def _value(x):
    return Decimal(x["m"]).scaleb(x["e"]) if isinstance(x, dict) else x


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    proc = run_mpy(WRITER, heap="256k", env={"NJ_SIM_DIR": str(d), "NJ_DATA_KB": "256"})
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("JSON")][-1]
    w = json.loads(line[4:])
    w["records"] = [json.loads(ln[1:]) for ln in proc.stdout.splitlines() if ln.startswith("R")]
    assert w["folds"] >= 1 and w["raw_expired"] > 0  # the image holds all three rings
    return d / "data.img", w


def _check(recs, w):
    """Every durable record the firmware appended is decoded exactly once, and nothing else is."""
    wrote = {q: rec for q, rec in w["records"] if q <= w["durable"]}
    live = {r["seq"]: r for r in recs if r["seq"] is not None}
    folded = {(r["fields"]["code"], r["fields"]["statStart"]): r for r in recs if r["seq"] is None}
    assert len(folded) == len([r for r in recs if r["seq"] is None])  # no value twice in history
    assert len(live) == len([r for r in recs if r["seq"] is not None])
    names = {1: "READING", 2: "VALUE", 3: "EVENT"}
    oldest_raw = min(q for q, r in live.items() if r["kind"] == "READING")
    matched = from_history = 0
    for q, rec in wrote.items():
        kind = names[rec[0]]
        want = [_value(x) for x in rec[1:]]
        if q in live:
            got = live[q]
            assert got["kind"] == kind
            assert list(got["fields"].values()) == want, (q, got, rec)
            matched += 1
        elif kind == "VALUE" and (rec[2], rec[4]) in folded:
            f = folded[(rec[2], rec[4])]["fields"]
            assert [f["code"], f["statType"], f["statStart"], f["value"], f["valid"], f["inputType"], f["scope"]] == want[1:]
            matched += 1
            from_history += 1
        else:
            assert kind == "READING" and q < oldest_raw, f"record {q} ({kind}) not decoded"
    assert set(live) <= set(wrote)
    assert from_history >= 50
    assert all((c, s) in {(r[1][2], r[1][4]) for r in w["records"] if r[1][0] == 2} for c, s in folded)
    return matched


def test_decoder_reads_the_image_the_firmware_wrote(written):
    img, w = written
    recs = list(storedump.iter_records(img))
    matched = _check(recs, w)
    assert matched > 500
    assert any(r["ring"] == "history" for r in recs) and any(r["ring"] == "raw" for r in recs)
    assert storedump.cursors(img) == w["cursors"]
    assert w["cursors"]["prov"] < w["cursors"]["city"]
    ev = [r for r in recs if r["kind"] == "EVENT"]
    assert ev and ev[0]["fields"]["text"].endswith("电表离线")


def test_decoder_reads_the_image_inside_a_merged_flash_dump(written, tmp_path):
    img, w = written
    data = img.read_bytes()
    offset = 0x90000
    dump = tmp_path / "flash.bin"
    dump.write_bytes(b"\x5a" * offset + data + b"\xff" * 0x30000)
    for kw in ({"offset": offset, "size": len(data)}, {"offset": offset}):  # size from the superblock
        src = storedump.open_source(dump, **kw)
        _check(list(storedump.iter_records(src)), w)
        assert storedump.cursors(src) == w["cursors"]


def test_decoder_reads_a_pulled_directory(written, tmp_path):
    img, w = written
    src = storedump.open_source(img)
    pulled = tmp_path / "pulled" / "store"
    pulled.mkdir(parents=True)
    for name in src.files():
        (pulled / name).write_bytes(src.read(name))
    _check(list(storedump.iter_records(pulled.parent)), w)  # the directory above the store also works
    assert storedump.cursors(pulled) == w["cursors"]


def test_decoder_skips_damage_and_says_where(written, tmp_path):
    img, w = written
    src = storedump.open_source(img)
    d = tmp_path / "store"
    d.mkdir()
    for name in src.files():
        (d / name).write_bytes(src.read(name))
    seg = sorted(p for p in d.glob("s*.seg") if p.stat().st_size > 200)[0]
    data = bytearray(seg.read_bytes())
    frames = list(storedump.iter_frames(bytes(data)))
    victim = frames[2][0]
    off = 0
    for _q, payload in frames[:2]:
        off += 7 + len(payload) + 4
    data[off + 9] ^= 0x01
    seg.write_bytes(bytes(data))
    (d / "c-city").write_text("12 999\n")
    rep = storedump.scan_report(d)
    prob = [p for p in rep["problems"] if p["segment"] == seg.name]
    assert prob and prob[0]["bytes"] == 7 + len(frames[2][1]) + 4 and prob[0]["after_seq"] == frames[1][0]
    seqs = [r["seq"] for r in storedump.iter_records(d, dedupe=False) if r["segment"] == seg.name]
    assert victim not in seqs and frames[3][0] in seqs
    assert storedump.cursors(d)["city"] is None


def test_csv_and_json_exports(written, tmp_path):
    img, w = written
    recs = list(storedump.iter_records(img))
    buf = io.StringIO()
    n = storedump.write_csv(recs, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert n == len(rows) == len(recs)
    v = next(r for r in rows if r["kind"] == "VALUE" and r["seq"])
    assert v["code"].endswith("-023300-11") and Decimal(v["value"]) == next(
        r["fields"]["value"] for r in recs if r["seq"] == int(v["seq"]))
    assert v["statStart_cst"] and v["ts_cst"]
    out = tmp_path / "o.json"
    assert storedump.main([str(img), "--json", str(out), "--csv", str(tmp_path / "o.csv")]) == 0
    j = json.loads(out.read_text())
    assert len(j["records"]) == len(recs) and j["cursors"] == w["cursors"]
    assert (tmp_path / "o.csv").read_text().count("\n") == len(recs) + 1


def test_decoder_reads_a_store_written_by_cpython_firmware(tmp_path):
    """The same firmware code under CPython into a host directory: the decoder reads it too."""
    sys.path.insert(0, str(paths.FIRMWARE))
    from nengjian.core import records as R
    from nengjian.core.decimal import Decimal as FD
    from nengjian.store.store import Store

    s = Store(str(tmp_path / "store"), ("city",), segment_bytes=1024, segments=6, fold=2, raw_segments=2,
              raw_segment_bytes=1024)
    s.open()
    for i in range(300):
        s.append([R.VALUE, 1760000000 + i, "00-00-0000-023300-11", 0, 1760000700 + 900 * i, FD(i, -1), True, 4, 1])
        if i % 10 == 9:
            s.flush()
            s.ack("city", s.read("city", 100, (R.VALUE,))[1])
    s.close()
    vals = [r for r in storedump.iter_records(tmp_path) if r["kind"] == "VALUE"]
    assert [r["fields"]["value"] for r in vals] == [Decimal(i).scaleb(-1) for i in range(300)]
    assert any(r["ring"] == "history" for r in vals)


def test_not_a_store_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\xff" * 65536)
    with pytest.raises(storedump.StoreFormatError):
        storedump.open_source(junk)
    assert storedump.main([str(junk)]) == 2
