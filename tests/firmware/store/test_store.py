"""The record store's recovery rules and space policy (firmware/nengjian/store/: store.py, ring.py, history.py, cursors.py).

Each scenario below is plain firmware-style Python that runs twice: on CPython over a host directory,
and on MicroPython over littlefs2 on a RAM block device (heap 256k). Both runs must give the same
facts, which the tests check. MicroPython-only tests cover what a host directory cannot show:
ENOSPC from littlefs, a flash that stops answering, and block-device methods under a locked heap.
"""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpyrun import run_mpy
from nengjian.core import records as R
from nengjian.core.decimal import Decimal
from nengjian.store import cbor, store

SCENARIOS = r'''
import os
from nengjian.core import records as R
from nengjian.store import cbor
from nengjian.core.decimal import Decimal
from nengjian.store.store import HEAD, TAIL, Store

T0 = 1760000700  # a 15-minute boundary
CODE = "00-00-0000-023300-11"


def mk(root, ev, **kw):
    args = dict(segment_bytes=1024, segments=8, flush_records=8, flush_ms=10 ** 9, raw_segments=4,
                raw_segment_bytes=1024, main_keep=2, fold=2)
    args.update(kw)
    return Store(root, kw.pop("dests", ("city", "prov")), on_event=lambda k, t, c=None: ev.append([k, t]), **args)


def opened(root, ev=None, **kw):
    """mk() and open(): the store and the list its events go to (a new one unless given)."""
    if ev is None:
        ev = []
    s = mk(root, ev, **kw)
    s.open()
    return s, ev


def ten_values(root):
    """The recovery scenarios' start: values 0-9 appended to a new store, which is left open."""
    s, _ = opened(root)
    for i in range(10):
        s.append(value(i))
    return s


def value(i, code=CODE, exp=-2, valid=True, ts=None, start=None):
    return [R.VALUE, ts if ts is not None else T0 + i * 900 + 905, code, 0,
            start if start is not None else T0 + i * 900, Decimal(1000 + i * 7, exp), valid, 4, 1]


def seqs_of(s):
    out = []
    s.scan(1, lambda q, r: out.append(q))
    return out


def file_of(root, name):
    with open(root + "/" + name, "rb") as f:
        return f.read()


def put_file(root, name, data):
    with open(root + "/" + name, "wb") as f:
        f.write(data)


def frames(data):
    """(offset, length) of each record in a segment file, by its header only."""
    out = []
    pos = 0
    while pos + HEAD <= len(data):
        n = HEAD + (data[pos + 1] | (data[pos + 2] << 8)) + TAIL
        out.append((pos, n))
        pos += n
    return out


def sc_torn_tail(root):
    s = ten_values(root)
    s.close()
    good = file_of(root, "s00.seg")
    put_file(root, "s00.seg", good + b"\xa5\x30\x00\x0b\x00\x00\x00\x82\x02")
    s, ev = opened(root)
    got = seqs_of(s)
    n = s.append(value(10))
    s.flush()
    size = len(file_of(root, "s00.seg"))
    s.close()
    return {"events": ev, "seqs": got, "next": n, "size_ok": size > len(good), "cut": s.stats["recovered_cut"]}


def sc_middle(root):
    s = ten_values(root)
    s.close()
    data = bytearray(file_of(root, "s00.seg"))
    off, n = frames(data)[4]
    data[off + HEAD + 5] ^= 0x40  # one bit of record 5's payload
    put_file(root, "s00.seg", data)
    s, ev = opened(root)
    got = seqs_of(s)
    recs, last = s.read("city", 100, (R.VALUE,))
    n2 = s.append(value(10))
    s.close()
    return {"events": ev, "seqs": got, "read": [q for q, _ in recs], "last": last, "next": n2, "len5": n,
            "skipped": s.stats["skipped_bytes"]}


def sc_cursor_damaged(root):
    s = ten_values(root)
    s.flush()
    s.ack("city", 6)
    s.ack("prov", 8)
    s.close()
    put_file(root, "c-city", b"7 123\n")
    s, ev = opened(root)
    recs, last = s.read("city", 3)
    out = {"events": ev, "city": s.cursor("city"), "prov": s.cursor("prov"), "first_read": [q for q, _ in recs]}
    s.close()
    return out


def sc_cursor_past(root):
    s = ten_values(root)
    s.close()
    import binascii
    put_file(root, "c-city", b"1000 %d\n" % binascii.crc32(b"1000"))
    s, ev = opened(root)
    out = {"events": ev, "city": s.cursor("city"), "prov": s.cursor("prov"), "next": s.append(value(10))}
    s.flush()
    recs, last = s.read("city", 10)
    out["city_reads"] = [q for q, _ in recs]
    s.close()
    return out


def sc_clock_back(root):
    s, ev = opened(root, flush_records=4)
    ts = [T0 + 3600 - 60 * i for i in range(40)]  # every record older than the one before
    want = []
    for i, t in enumerate(ts):
        rec = value(i, ts=t, start=t - t % 900 - 900 * (i % 3))
        want.append(cbor.encode(rec))
        s.append(rec)
        s.append([R.READING, t, "m1", "kwh", Decimal(5000 - i, -1), 0])
    s.flush()
    order = []
    s.scan(1, lambda q, r: order.append(q))
    got = []
    while True:
        recs, last = s.read("city", 7, (R.VALUE,))
        got.extend(cbor.encode(r) for q, r in recs)
        s.ack("city", last)
        s.ack("prov", last)
        if not recs:
            break
    for i in range(40, 120):  # enough more to fold the first segments into history
        s.append(value(i))
        if i % 8 == 0:
            s.flush()
            recs, last = s.read("city", 100, (R.VALUE,))
            s.ack("city", last)
            s.ack("prov", last)
    s.flush()
    hist = []
    s.history(lambda q, r: hist.append(r))
    back = [cbor.encode(v) for v in (value(i, ts=t, start=t - t % 900 - 900 * (i % 3)) for i, t in enumerate(ts))]
    keyed = {}
    for r in hist:
        keyed[(r[2], r[4], r[5].mantissa)] = r
    folded_ok = all(
        (cbor.decode(b)[2], cbor.decode(b)[4], cbor.decode(b)[5].mantissa) in keyed for b in back[:10])
    s.close()
    return {"events": ev, "in_order": order == sorted(order) and len(order) == 80, "all_read": got == want,
            "folds": s.stats["folds"], "folded_ok": folded_ok}


def sc_full_unacked(root):
    s, ev = opened(root, segments=5)
    seqs = []
    for i in range(200):
        seqs.append(s.append(value(i)))
        if i % 4 == 3:
            s.flush()
            recs, last = s.read("city", 100, (R.VALUE,))
            s.ack("city", last)  # prov is down the whole time
    s.flush()
    live = seqs_of(s)
    hist = []
    s.history(lambda q, r: hist.append(r[4]))
    recs, last = s.read("prov", 1000, (R.VALUE,))
    out = {"events": ev, "alarm": s.alarms.get("loss"), "lost": s.stats["lost"], "live": live,
           "hist_starts": hist, "last": s.last_seq, "prov_first": recs[0][0] if recs else 0,
           "prov_cursor": s.cursor("prov"), "n_main": len(s._main.segs), "n_hist": len(s._hist.segs)}
    s.close()
    return out


def sc_retention(root):
    s, ev = opened(root, segments=6, segment_bytes=512)
    n = 900
    for i in range(n):
        s.append(value(i // 2, code="00-00-0000-0%d3300-11" % (i % 2)))
        if i % 8 == 7:
            s.flush()
            for d in ("city", "prov"):
                recs, last = s.read(d, 100, (R.VALUE,))
                s.ack(d, last)
    s.flush()
    have = bytearray(n)

    def mark(q, r):
        if r[0] == R.VALUE:
            have[(r[4] - T0) // 900 * 2 + int(r[2][12])] += 1

    s.history(mark)
    s.scan(1, mark)
    first = 0
    while first < n and not have[first]:
        first += 1
    out = {"events": ev, "stats": s.stats, "first_kept": first, "holes": [i for i in range(first, n) if have[i] != 1],
           "loss": s.alarms.get("loss")}
    s.close()
    return out


def sc_raw_expiry(root):
    s, ev = opened(root, raw_segments=3, raw_segment_bytes=512)
    for i in range(300):
        s.append([R.READING, T0 + i * 60, "m1", "kwh", Decimal(100000 + i, -2), 0])
        if i % 30 == 0:
            s.append(value(i))
        if i % 10 == 9:
            s.flush()
    s.flush()
    raw = []
    vals = []
    s.scan(1, lambda q, r: (raw if r[0] == R.READING else vals).append(q))
    recs, last = s.read("city", 100, (R.VALUE,))
    out = {"events": ev, "expired": s.stats["expired_raw"], "raw_n": len(raw), "raw_last": raw[-1],
           "vals": len(vals), "read": len(recs), "last": last, "durable": s.durable_seq,
           "backlog_after_ack": 0}
    s.ack("city", last)
    out["backlog_after_ack"] = s.backlog("city")
    s.close()
    return out


def sc_fold_runs(root):
    import binascii

    def key_crc(r):
        return binascii.crc32(cbor.encode([r[i] for i in (2, 3, 4, 5, 6, 7, 8)]))

    s, _ = opened(root, segments=12)
    want = {}
    start = T0
    for i in range(150):
        code = "00-00-0000-0%d3300-11" % (i % 3)
        exp = -3 if 60 <= i < 70 else -2
        if i == 90:
            start += 900 * 4  # a gap of four periods
        rec = [R.VALUE, start + 905, code, 0, start, Decimal((i * 7919) % 50000 - 100, exp), i % 11 != 3, 4, 1 + i % 2]
        if i % 3 == 2:
            start += 900
        want[(i % 3, rec[4])] = (i, key_crc(rec))
        s.append(rec)
        if i % 10 == 0:
            s.append([R.EVENT, start, "visit", "crew on site %d" % i])
        if i % 6 == 5:
            s.flush()
            recs, last = s.read("city", 100, (R.VALUE,))
            s.ack("city", last)
            s.ack("prov", last)
    s.close()
    folds = s.stats["folds"]
    s, _ = opened(root, segments=12)
    seen = bytearray(150)
    events = [0, 0, 0]  # events, values in history, values matching nothing

    def h(q, r):
        if r[0] != R.VALUE:
            events[0] += 1
            return
        i, crc = want.get((int(r[2][12]), r[4]), (-1, 0))
        if i < 0 or crc != key_crc(r):
            events[2] += 1
        else:
            seen[i] += 1
        events[1] += 1

    s.history(h)
    n_hist = events[1]
    s.scan(1, lambda q, r: h(q, r) if r[0] == R.VALUE else None)
    bad = [i for i in range(150) if seen[i] != 1] + ["unmatched"] * events[2]
    s.close()
    return {"bad": bad, "n_hist": n_hist, "events_in_history": events[0], "folds": folds}


def sc_restarts(root):
    ev = []
    seen = []
    for boot in range(6):
        s, _ = opened(root, ev)
        for i in range(17):
            seen.append(s.append(value(boot * 17 + i)))
        s.flush()
        recs, last = s.read("city", 5, (R.VALUE,))
        s.ack("city", last)
        s.close()
    s, _ = opened(root, ev)
    names = sorted(os.listdir(root))
    out = {"seen": seen, "last": s.last_seq, "city": s.cursor("city"), "prov": s.cursor("prov"),
           "names": names, "events": ev}
    s.close()
    return out


def sc_long_event(root):
    s, ev = opened(root)
    n = s.append([R.EVENT, T0, "rejected", "city refused: " + "x" * 3000])
    s.flush()
    got = []
    s.scan(1, lambda q, r: got.append(r))
    s.close()
    return {"n": n, "len": len(got[0][3]), "tail": got[0][3][-6:]}


def sc_read_kinds(root):
    s, ev = opened(root, flush_records=100)
    for i in range(12):
        s.append([R.READING, T0 + i, "m1", "kwh", Decimal(i, 0), 0])
        s.append(value(i))
        s.append([R.EVENT, T0 + i, "x", "y"])
    before = s.read("city", 100)
    s.flush()
    v, lv = s.read("city", 5, (R.VALUE,))
    e, le = s.read("city", 100, (R.EVENT,))
    a, la = s.read("city", 100)
    b, lb = s.read("city", 100, None, 60)
    r, lr = s.read("city", 100, (R.READING,))
    out = {"before": [len(before[0]), before[1]], "v": [q for q, _ in v], "lv": lv, "e": len(e), "le": le,
           "a": len(a), "la": la, "b": len(b), "lb": lb, "r": len(r), "lr": lr, "durable": s.durable_seq}
    s.close()
    return out


ALL = [sc_torn_tail, sc_middle, sc_cursor_damaged, sc_cursor_past, sc_clock_back, sc_full_unacked, sc_retention,
       sc_raw_expiry, sc_fold_runs, sc_restarts, sc_long_event, sc_read_kinds]
'''

MPY_RUN = r'''
import json
import vfs
from nengjian.store.blockdev import RAMBlockDevice

dev = RAMBlockDevice(96, 512)
vfs.VfsLfs2.mkfs(dev)
vfs.mount(vfs.VfsLfs2(dev), "/v")
print("JSON" + json.dumps(SCENARIO("/v/st")))
'''


def _run_cpython(tmp_path):
    ns = {}
    exec(compile(SCENARIOS, "scenarios", "exec"), ns)
    out = {}
    for fn in ns["ALL"]:
        root = tmp_path / fn.__name__ / "st"
        root.parent.mkdir(parents=True)
        out[fn.__name__] = json.loads(json.dumps(fn(str(root)), default=str))
    return out


@pytest.fixture(scope="module")
def mpy_results():
    """Each scenario in its own MicroPython process, on a fresh littlefs2 volume. The heap is roomy
    (512k) on purpose: a scenario keeps every record it wrote to compare, and at 256k whether the
    last 1 KB fitted hung on fragmentation, so on the checkout's path length (it failed in one
    directory and passed in another). What the store costs is bench_heap's to say."""
    ns = {}
    exec(compile(SCENARIOS, "scenarios", "exec"), ns)
    out = {}
    for fn in ns["ALL"]:
        proc = run_mpy(SCENARIOS + "\nSCENARIO = %s\n" % fn.__name__ + MPY_RUN, heap="512k", timeout=300)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("JSON")][-1]
        out[fn.__name__] = json.loads(line[4:])
    return out


@pytest.fixture(scope="module")
def cpy_results(tmp_path_factory):
    return _run_cpython(tmp_path_factory.mktemp("scen"))


@pytest.fixture(params=["cpython", "micropython"])
def res(request, cpy_results, mpy_results):
    return cpy_results if request.param == "cpython" else mpy_results


def _texts(r):
    return [t for _k, t in r["events"]]


def test_torn_tail_is_cut_by_crc(res):
    r = res["sc_torn_tail"]
    assert r["seqs"] == list(range(1, 11))
    assert r["next"] == 11  # continues, never repeats
    assert any("cut 9 damaged tail bytes after record 10" in t for t in _texts(r)), r["events"]
    assert r["cut"] == 9 and r["size_ok"]


def test_damaged_middle_record_is_skipped_with_its_size(res):
    r = res["sc_middle"]
    assert r["seqs"] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert r["read"] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert r["next"] == 11
    assert r["skipped"] == r["len5"]
    assert any("skipped %d damaged bytes after record 4" % r["len5"] in t for t in _texts(r)), r["events"]


def test_damaged_cursor_resends_from_the_oldest(res):
    r = res["sc_cursor_damaged"]
    assert any("cursor of city damaged" in t for t in _texts(r)), r["events"]
    assert r["city"] == 0 and r["first_read"] == [1, 2, 3]  # never skips data
    assert r["prov"] == 8


def test_cursor_past_the_data_is_clamped_and_seq_stays_above_it(res):
    r = res["sc_cursor_past"]
    assert any("cursor of city (1000) past the newest record (10): clamped" in t for t in _texts(r)), r["events"]
    assert r["city"] == 10 and r["prov"] == 0
    assert r["next"] == 1001  # a platform may hold an ack for 1000: that seq is never issued again
    assert r["city_reads"] == [1001]


def test_clock_jumping_back_keeps_seq_order_and_every_record(res):
    r = res["sc_clock_back"]
    assert r["in_order"] and r["all_read"]
    assert r["folds"] >= 1 and r["folded_ok"]


def test_full_store_drops_oldest_unacknowledged_with_exact_range(res):
    r = res["sc_full_unacked"]
    loss = [t for k, t in r["events"] if k == "loss"]
    assert loss and r["alarm"] == loss[-1]
    import re

    ranges = [tuple(int(x) for x in re.search(r"records (\d+)\.\.(\d+)", t).groups()) for t in loss]
    assert all("prov" in t and "city" not in t.split("before")[1].split("acknowledged")[0] for t in loss)
    assert all(re.search(r"\(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \.\. \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST\)", t) for t in loss)
    lost = sum(b - a + 1 for a, b in ranges)
    assert r["lost"] == lost
    # the ranges are contiguous from the start; everything after them is still in the main ring
    assert ranges[0][0] == 1 and all(ranges[i + 1][0] == ranges[i][1] + 1 for i in range(len(ranges) - 1))
    assert r["live"] == list(range(ranges[-1][1] + 1, r["last"] + 1))
    assert r["prov_first"] == ranges[-1][1] + 1
    # ... and the dropped values are still on the gateway, in history
    assert len(r["hist_starts"]) == lost


def test_history_retention_keeps_the_newest(res):
    """History is a ring too: when it is full the oldest folds go (an event says which times), and
    what stays is every value from some point on, each exactly once, in history or the main ring."""
    r = res["sc_retention"]
    st_ = r["stats"]
    assert st_["history_expired"] > 0 and st_["lost"] == 0 and r["loss"] is None
    assert any("history from" in t and "expired: history is full" in t for t in _texts(r)), r["events"]
    assert 0 < r["first_kept"] and r["holes"] == []
    # what is kept is far more than the pool could hold as full 54-byte records
    assert 900 - r["first_kept"] > 2 * (6 * 512 // 54)


def test_raw_readings_expire_quietly(res):
    r = res["sc_raw_expiry"]
    assert r["expired"] > 0 and not [e for e in r["events"] if e[0] == "loss"]
    assert r["raw_last"] == r["durable"] or r["vals"]
    assert r["read"] == 10 and r["last"] == r["durable"]  # a reader of VALUEs passes over readings
    assert r["backlog_after_ack"] == 0


def test_fold_keeps_every_value_exactly(res):
    r = res["sc_fold_runs"]
    assert r["bad"] == []
    assert r["n_hist"] >= 60 and r["events_in_history"] >= 3 and r["folds"] >= 2


def test_restarts_continue_numbering_and_leave_no_temporaries(res):
    r = res["sc_restarts"]
    assert r["seen"] == list(range(1, 103)) and r["last"] == 102
    assert r["city"] > 0 and r["prov"] == 0
    assert not [n for n in r["names"] if n.endswith(".new") or n.endswith(".tmp")]


def test_overlong_event_is_shortened_not_refused(res):
    r = res["sc_long_event"]
    assert r["n"] == 1 and r["len"] < 1024 and r["tail"] == " [cut]"


def test_read_by_kind_and_scanned_position(res):
    r = res["sc_read_kinds"]
    assert r["before"] == [0, 0]  # nothing durable before the flush
    assert r["v"] == [2, 5, 8, 11, 14] and r["lv"] == 14
    assert r["e"] == 12 and r["le"] == r["durable"] == 36
    assert r["a"] == 36 and r["la"] == 36
    assert 0 < r["b"] < 36 and r["lb"] < 36
    assert r["r"] == 12 and r["lr"] == 36


# ---- MicroPython only: littlefs out of space, a flash that stops answering, a locked heap

def test_enospc_frees_space_and_keeps_accepting():
    """The store has been running (history, raw and main segments on flash); then something else
    fills the volume. littlefs answers ENOSPC: the store gives up history first, then old raw
    segments, then the oldest main segment (a loss event with the exact range), and goes on storing;
    it never raises to the poller."""
    code = r'''
import vfs
from nengjian.core import records as R
from nengjian.store.blockdev import RAMBlockDevice
from nengjian.core.decimal import Decimal
from nengjian.store.store import Store
dev = RAMBlockDevice(96, 512)
vfs.VfsLfs2.mkfs(dev)
vfs.mount(vfs.VfsLfs2(dev), "/v")
ev = []
s = Store("/v/st", ("city",), segment_bytes=1024, segments=40, flush_records=8, flush_ms=10 ** 9,
          raw_segments=3, raw_segment_bytes=1024, fold=2, on_event=lambda k, t, c=None: ev.append((k, t)))
s.open()
def put(i):
    s.append([R.VALUE, 1760000000 + i * 900, "00-00-0000-023300-11", 0, 1760000000 + i * 900, Decimal(i, 0), True, 4, 1])
    s.append([R.READING, 1760000000 + i * 900, "m1", "kwh", Decimal(i, 0), 0])


for i in range(160):
    put(i)
    if i % 4 == 3:
        s.flush()
        recs, last = s.read("city", 100, (R.VALUE,))
        if i < 100:
            s.ack("city", last)
print("BEFORE", len(s._hist.segs), len(s._raw.segs), len(s._main.segs), s.stats["folds"])
fill = open("/v/filler", "wb")  # another writer takes every free block
try:
    while True:
        fill.write(b"x" * 256)
        fill.flush()
except OSError:
    pass
fill.close()
raised = None
try:
    for i in range(160, 400):
        put(i)
        if i % 4 == 3:
            s.flush()
except Exception as e:
    raised = repr(e)
s.flush()
live = []
s.scan(1, lambda q, r: live.append(q) if r[0] == R.VALUE else None)
print("RAISED", raised)
print("FIT", [t for k, t in ev if "do not fit" in t])
print("LOSS", [t for k, t in ev if k == "loss"][:2])
print("HIST", [t for k, t in ev if "expired: the volume is full" in t][:1])
print("STATS", s.stats["enospc"], s.stats["lost"], s.stats["shed"], s.durable_seq, s.last_seq, live[0], live[-1], len(live))
s.close()
'''
    out = run_mpy(code, heap="256k").stdout
    assert "RAISED None" in out, out
    assert "do not fit" in out  # the pool was sized down to the volume at open
    assert "HIST ['history from" in out  # delivered history went first
    stats = [int(x) for x in out.split("STATS ")[1].split()]
    enospc, lost, shed, durable, last, first_live, last_live, n_live = stats
    assert enospc > 0 and shed == 0  # every ENOSPC was answered by freeing space, not by shedding
    assert durable == last == 800 and last_live == 799  # every append stored in the end
    assert n_live == (last_live - first_live) // 2 + 1  # no hole after the oldest kept
    loss = out.split("LOSS ")[1].splitlines()[0]
    if lost:
        assert "the volume is full: records" in loss, out


def test_dead_flash_never_raises_and_sheds_with_an_event():
    code = r'''
from nengjian.core import records as R
from nengjian.store.blockdev import RAMBlockDevice
from nengjian.core.decimal import Decimal
from nengjian.store.store import Store
import vfs
dev = RAMBlockDevice(64, 1024)
vfs.VfsLfs2.mkfs(dev)
vfs.mount(vfs.VfsLfs2(dev), "/v")
ev = []
s = Store("/v/st", ("city",), segment_bytes=2048, segments=8, flush_records=8, flush_ms=0, max_pending=4096,
          on_event=lambda k, t, c=None: ev.append((k, t)))
s.open()
for i in range(20):
    s.append([R.READING, 1760000000 + i, "m1", "kwh", Decimal(i, 0), 0])
s.flush()
ok_before = s.durable_seq
dev.arm(1)  # the chip dies on its next write
raised = None
try:
    for i in range(400):
        s.append([R.VALUE, 1760000000 + i * 900, "00-00-0000-023300-11", 0, 1760000000 + i * 900, Decimal(i, 0), True, 4, 1])
        s.flush()
        s.read("city", 10)
        s.ack("city", s.durable_seq)
except Exception as e:
    raised = repr(e)
print("RAISED", raised)
print("DURABLE", ok_before, s.durable_seq)
print("ALARMS", sorted(s.alarms))
print("EVENTS", [t for k, t in ev][:4])
print("SHED", s.stats["shed"], s.stats["write_errors"])
'''
    out = run_mpy(code, heap="256k").stdout
    assert "RAISED None" in out, out
    assert "DURABLE 20 20" in out  # nothing claimed stored after the chip died
    assert "'flash'" in out and "'loss'" in out
    assert "flash write failed (errno 5)" in out
    assert "dropped from RAM" in out
    shed = int(out.split("SHED ")[1].split()[0])
    assert shed > 0


# One block-device method called as littlefs may call it, with the heap locked (a file closed by the
# garbage collector): (what it returned, False when it tried to allocate).
LOCKED_CALL = r'''
import micropython
def locked(dev, name, buf, rd):
    r = 0
    ok = False
    micropython.heap_lock()
    try:
        if name == "erase":
            r = dev.ioctl(6, 1)
        elif name == "prog":
            r = dev.writeblocks(1, buf, 512)
        elif name == "read":
            r = dev.readblocks(1, rd, 512)
        elif name == "count":
            r = dev.ioctl(4, 0)
        elif name == "size":
            r = dev.ioctl(5, 0)
        else:
            r = dev.ioctl(3, 0)
        ok = True
    except MemoryError:
        pass
    micropython.heap_unlock()
    return r, ok
'''


def test_block_device_methods_allocate_nothing():
    """littlefs may call the block device with the heap locked: prove no method allocates, in every
    state (normal, the cut itself, after the cut) for both devices."""
    code = LOCKED_CALL + r'''
import os
from nengjian.store.blockdev import CLEAN, TORN, ERASED, FileBlockDevice, RAMBlockDevice
try:
    os.remove("/tmp/nj_bd_heap.img")
except OSError:
    pass
buf = bytearray(256)
for b in range(256):
    buf[b] = b
rd = bytearray(256)
calls = 0
allocs = []
eio = 0
for dev in (RAMBlockDevice(8, 4096), FileBlockDevice("/tmp/nj_bd_heap.img", 8, 4096)):
    for mode in (CLEAN, TORN, ERASED):
        for cut in (1, 2, 3):
            dev.power_on()
            dev.arm(cut, mode)
            for k in range(4):
                for name in ("erase", "prog", "read", "count", "sync"):
                    r, ok = locked(dev, name, buf, rd)
                    calls += 1
                    if r == -5:
                        eio += 1
                    if not ok:
                        allocs.append((type(dev).__name__, mode, cut, k, name))
print("CALLS", calls, "EIO", eio, "ALLOCS", allocs)
'''
    out = run_mpy(code, heap="256k").stdout
    assert "CALLS 360 " in out and "ALLOCS []" in out, out
    assert int(out.split("EIO ")[1].split()[0]) > 100  # the calls after each cut did fail


def test_fault_device_modes_persist_what_they_claim():
    code = r'''
from nengjian.store.blockdev import CLEAN, TORN, ERASED, RAMBlockDevice
res = {}
for mode in (CLEAN, TORN, ERASED):
    d = RAMBlockDevice(4, 64)
    d.writeblocks(0, b"\x00" * 64, 0)
    d.arm(2, mode)
    r1 = d.ioctl(6, 1)
    r2 = d.writeblocks(1, b"\x0f" * 32, 0)
    r3 = d.writeblocks(2, b"\x0f" * 32, 0)
    res[mode] = [r1, r2, r3, bytes(d.data[1][:32]).hex(), bytes(d.data[2][:4]).hex(), d.cut, d.cut_op]
    d2 = RAMBlockDevice(4, 64)
    d2.writeblocks(3, b"\x00" * 64, 0)
    d2.arm(1, mode)
    r = d2.ioctl(6, 3)
    res[mode + 10] = [r, bytes(d2.data[3]).hex().count("ff")]
print(res)
'''
    out = run_mpy(code, heap="256k").stdout
    res = eval(out.strip().splitlines()[-1])
    # (the first program, before arm(), is op 1) clean: op 3, the program, persists; op 4 fails
    assert res[0] == [0, 0, -5, "0f" * 32, "ffffffff", True, 3]
    # torn: op 3 persists half
    assert res[1] == [0, -5, -5, "0f" * 16 + "ff" * 16, "ffffffff", True, 3]
    # erased: the program at the cut does not happen (the block stays erased)
    assert res[2] == [0, -5, -5, "ff" * 32, "ffffffff", True, 3]
    # an erase at the cut: done (clean, erased) or half done (torn); "ff" counts hex pairs twice
    assert res[10] == [0, 64] and res[12] == [0, 64]
    assert res[11] == [-5, 32]


# ---- history runs: invalid values, and no record over MAX_PAYLOAD is ever written

FOLD_ONE_ITEM = r"""
import json
import os
import vfs
from nengjian.core import records as R
from nengjian.store import history
from nengjian.store.blockdev import RAMBlockDevice
from nengjian.store.cbor import Decimal
from nengjian.store.ring import HEAD, MAX_PAYLOAD, TAIL
from nengjian.store.store import Store

T0 = 1760000700

if RUN_MAX is not None:
    history.RUN_MAX_BYTES = RUN_MAX  # the fold's own limit out of the way: only the writer guards


def valid_at(i):
    if MODE == "offline":  # the meter is offline 15 hours a day
        return i % 96 >= 60
    if MODE == "all":
        return False
    if MODE == "flaky":  # two polls in three fail, the last value is sent again, flagged
        return i % 3 == 0
    return True


def mant_at(i):
    if MODE == "offline":
        return 125000 + 37 * i if valid_at(i) else 0
    if MODE == "all":
        return 0
    if MODE == "flaky":
        return 125000 + 37 * (i - i % 3)
    return 125000 + 37 * i + (i * 7919) % 50


dev = RAMBlockDevice(384, 512)
vfs.VfsLfs2.mkfs(dev)
vfs.mount(vfs.VfsLfs2(dev), "/v")
ev = []


EVERY = 64 if len(CODE) < 100 else 8  # records per flush (and read), within max_pending


def mk():
    return Store("/v/st", ("city",), segment_bytes=16384, segments=10, flush_records=EVERY, flush_ms=10 ** 9,
                 raw_segments=0, main_keep=2, fold=FOLD, on_event=lambda k, t, c=None: ev.append([k, t]))


def value(i):
    return [R.VALUE, T0 + i * 900 + 905, CODE, 0, T0 + i * 900, Decimal(mant_at(i), -2), valid_at(i), 4, 1]


s = mk()
s.open()
for i in range(N):
    s.append(value(i))
    if i % EVERY == EVERY - 1:
        s.flush()
        recs, last = s.read("city", 100, (R.VALUE,))
        s.ack("city", last)
s.flush()
recs, last = s.read("city", 100, (R.VALUE,))
s.ack("city", last)
s.close()
st = s.stats

biggest = 0  # the longest payload written to history, by the framing headers alone
for name in os.listdir("/v/st"):
    if name.startswith("h"):
        with open("/v/st/" + name, "rb") as f:
            data = f.read()
        pos = 0
        while pos + HEAD <= len(data):
            n = data[pos + 1] | (data[pos + 2] << 8)
            biggest = max(biggest, n)
            pos += HEAD + n + TAIL

s = mk()
s.open()  # the boot scan checks every history record
seen = bytearray(N)
wrong = []


def visit(q, r):
    if r[0] != R.VALUE:
        return
    i = (r[4] - T0) // 900
    if not 0 <= i < N or r[4] != T0 + i * 900:
        wrong.append(r[4])
        return
    seen[i] = min(seen[i] + 1, 9)
    want = value(i)
    if [r[2], r[3], r[5], r[6], r[7], r[8]] != [want[2], want[3], want[5], want[6], want[7], want[8]]:
        wrong.append(i)


s.history(visit)
s.scan(1, visit)
s.close()
print("JSON" + json.dumps({
    "n": N, "folded": st["history_values"], "once": sum(1 for c in seen if c == 1), "missing": sum(1 for c in seen if c == 0),
    "twice": sum(1 for c in seen if c > 1), "wrong": wrong[:5], "n_wrong": len(wrong),
    "invalid": sum(1 for i in range(N) if not valid_at(i)), "biggest": biggest, "max_payload": MAX_PAYLOAD,
    "damaged": [t for k, t in ev if "damaged" in t][:3], "loss": [t for k, t in ev if k == "loss"][:3],
    "expired": st["history_expired"], "lost": st["lost"] + st["shed"],
    "skipped": s.stats["skipped_bytes"], "cut": s.stats["recovered_cut"]}))
"""

STD_CODE = "00-00-0000-023300-11"


def _fold_one_item(mode, code=STD_CODE, run_max=None, n=5040, fold=2):
    """MODE's N values of one item (5,040: 52.5 days of 15-minute values) appended, delivered and
    folded (FOLD main segments of 16 KiB at a time), then read back after a reboot."""
    head = "MODE = %r\nCODE = %r\nRUN_MAX = %r\nN = %d\nFOLD = %d\n" % (mode, code, run_max, n, fold)
    proc = run_mpy(head + FOLD_ONE_ITEM, heap="1m", timeout=300)  # 1m: the 192 KiB RAM volume is on the heap
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("JSON")][-1]
    return json.loads(line[4:])


def _assert_every_value_once(r):
    assert r["damaged"] == [] and r["skipped"] == 0 and r["cut"] == 0, r
    assert r["expired"] == 0 and r["lost"] == 0 and r["loss"] == [], r  # it fits: nothing may be missing
    assert r["folded"] > r["n"] // 2, r  # most of it went through history
    assert (r["once"], r["missing"], r["twice"], r["n_wrong"]) == (r["n"], 0, 0, 0), r
    assert r["biggest"] <= r["max_payload"], r


@pytest.mark.parametrize("mode", ["offline", "all", "flaky", "valid"])
def test_fold_keeps_every_value_and_its_validity_whatever_share_is_invalid(mode):
    """One item, 5,040 values folded into history: a meter offline 15 hours a day (63 % invalid),
    all invalid, two in three invalid (last value resent), all valid. Every value comes back exactly
    once with its validity, after a reboot's scan, and no history record is over MAX_PAYLOAD."""
    r = _fold_one_item(mode)
    _assert_every_value_once(r)
    assert r["invalid"] == {"offline": 3168, "all": 5040, "flaky": 3360, "valid": 0}[mode]


@pytest.mark.parametrize("case", ["no run limit", "long code"])
def test_history_writer_never_writes_a_record_over_max_payload(case):
    """The writer's own guard, with the fold's run limit out of the way (RUN_MAX_BYTES raised so runs
    grow to a whole fold) or beaten (an item whose code is 900 characters): a run that would not fit
    a record is written as several, so every value still comes back, and nothing unreadable is written."""
    if case == "no run limit":
        r = _fold_one_item("offline", run_max=10 ** 6)
    else:
        r = _fold_one_item("offline", code="x" * 900, n=600, fold=4)
    _assert_every_value_once(r)


def test_framing_refuses_a_record_over_max_payload():
    """ring.frame() (how history runs are framed) raises StoreError for a payload over MAX_PAYLOAD and
    leaves the buffer as it was; a payload of exactly MAX_PAYLOAD is framed."""
    code = r"""
from nengjian.store.ring import HEAD, MAX_PAYLOAD, TAIL, StoreError, frame
out = []
for extra in (0, 1):
    buf = bytearray(b"ab")
    try:
        n = frame(buf, [16, b"x" * (MAX_PAYLOAD - 5 + extra)], 7)  # array, 16, bytes head (3): 5 + len
        out.append(["framed", n, len(buf)])
    except StoreError as e:
        out.append(["refused", str(e), bytes(buf).decode()])
print(out)
"""
    for text in (run_mpy(code, heap="256k").stdout, _run_cpython_text(code)):
        got = eval(text.strip().splitlines()[-1])
        assert got[0] == ["framed", 7 + 1024 + 4, 2 + 7 + 1024 + 4], got
        assert got[1] == ["refused", "record of 1025 bytes exceeds 1024", "ab"], got


def _run_cpython_text(code):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "framing", "exec"), {})
    return buf.getvalue()


# ---- CPython: a model-checked property over random operation sequences

ops = st.lists(st.tuples(st.sampled_from(["v", "r", "e", "flush", "ack_c", "ack_p", "reopen"]),
                         st.integers(0, 5)), min_size=5, max_size=120)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_random_operations_against_a_model(tmp_path_factory, seq_ops):
    """Whatever the order of appends, flushes, acks and restarts: every record flushed is read back
    exactly, cursors never go back, numbers never repeat."""
    root = str(tmp_path_factory.mktemp("prop") / "st")
    kw = dict(segment_bytes=600, segments=8, flush_records=5, flush_ms=10 ** 9, raw_segments=6,
              raw_segment_bytes=600, main_keep=2, fold=2)
    s = store.Store(root, ("c", "p"), **kw)
    s.open()
    model = {}
    durable_seen = 0
    acked = {"c": 0, "p": 0}
    issued = set()
    rnd = random.Random(len(seq_ops))
    for op, k in seq_ops:
        if op in "vre":
            rec = {"v": [R.VALUE, 1760000000 + k, "00-00-0000-023300-11", 0, 1760000000 + 900 * len(model),
                         Decimal(rnd.randint(0, 10 ** 6), -2), True, 4, 1],
                   "r": [R.READING, 1760000000 + k, "m1", "kwh", Decimal(k, -1), 0],
                   "e": [R.EVENT, 1760000000 + k, "x", "t" * k]}[op]
            q = s.append(rec)
            assert q not in issued or q > durable_seen
            issued.add(q)
            model[q] = cbor.encode(rec)
        elif op == "flush":
            s.flush()
        elif op.startswith("ack"):
            d = op[-1]
            recs, last = s.read(d, k + 1, (R.VALUE,))
            assert [q for q, _ in recs] == sorted(q for q, _ in recs)
            for q, r in recs:
                assert cbor.encode(r) == model[q]
            if s.ack(d, last):
                acked[d] = max(acked[d], last)
        else:
            s.close()
            for q in [q for q in model if q > s.durable_seq]:
                del model[q]  # never flushed: gone with the power
            s = store.Store(root, ("c", "p"), **kw)
            s.open()
            for d in acked:
                assert s.cursor(d) >= acked[d]
        durable_seen = max(durable_seen, s.durable_seq)
    s.flush()
    got = {}
    s.scan(1, lambda q, r: got.__setitem__(q, cbor.encode(r)))
    hist = []
    s.history(lambda q, r: hist.append(r))
    for q, b in got.items():
        assert model[q] == b
    missing = [q for q in model if q not in got]
    # whatever is not in the rings was folded into history (delivered VALUEs and EVENTs) or expired raw
    assert len([q for q in missing if cbor.decode(model[q])[0] == R.VALUE]) <= len([h for h in hist if h[0] == R.VALUE])
    s.close()


def test_sim_flash_methods_allocate_nothing(tmp_path):
    """The sim board's flash (nengjian.store.filedev, without the tests' counters and power cut) is
    called by littlefs the same way: none of its methods may allocate with the heap locked."""
    code = LOCKED_CALL + r'''
from nengjian.store.filedev import FileDevice
dev = FileDevice("%s", 8, 4096)
buf = bytearray(256)
rd = bytearray(256)
allocs = []
for name in ("erase", "prog", "read", "count", "size", "sync"):
    if not locked(dev, name, buf, rd)[1]:
        allocs.append(name)
print("ALLOCS", allocs, "BLOCKS", dev.ioctl(4, 0), dev.ioctl(5, 0))
''' % (tmp_path / "flash.img")
    out = run_mpy(code, heap="256k").stdout
    assert "ALLOCS [] BLOCKS 8 4096" in out, out


def test_boot_and_operator_code_is_not_kept_loaded():
    """Store.open and Store.history run nengjian.store.cold's code and drop the module after: the
    gateway holds no heap for code that runs at boot or on an operator's request."""
    code = r'''
import sys
import vfs
from nengjian.core import records as R
from nengjian.core.decimal import Decimal
from nengjian.store.blockdev import RAMBlockDevice
from nengjian.store.store import Store

dev = RAMBlockDevice(64, 512)
vfs.VfsLfs2.mkfs(dev)
vfs.mount(vfs.VfsLfs2(dev), "/v")
s = Store("/v/st", ("city",), segment_bytes=1024, segments=8, flush_records=4)
s.open()
print("AFTER OPEN", "nengjian.store.cold" in sys.modules)
for i in range(40):
    s.append([R.VALUE, 1760000700 + 900 * i, "C", 0, 1760000700 + 900 * i, Decimal(i, -2), True, 1, 1])
s.flush()
s.ack("city", s.durable_seq)
for i in range(40):
    s.append([R.VALUE, 1760100000 + 900 * i, "C", 0, 1760100000 + 900 * i, Decimal(i, -2), True, 1, 1])
s.flush()
seen = []
s.history(lambda seq, rec: seen.append(rec[0]))
print("AFTER HISTORY", "nengjian.store.cold" in sys.modules)
s.close()
s = Store("/v/st", ("city",), segment_bytes=1024, segments=8, flush_records=4)
s.open()
print("REOPENED", s.cursor("city") > 0, "nengjian.store.cold" in sys.modules)
'''
    out = run_mpy(code, heap="512k").stdout
    assert "AFTER OPEN False" in out and "AFTER HISTORY False" in out and "REOPENED True False" in out, out


BATCH_READS = r'''
import json
from nengjian.core import records as R
from nengjian.core.decimal import Decimal
from nengjian.store.batch import Batch
from nengjian.store.store import Store

s = Store(%r, ["city"], segment_bytes=65536, segments=8)
s.open()
for i in range(30):
    code = "x" * 600 if i in (3, 4, 20) else "%%02d-00-0000-023300-11" %% i  # 3 too large for a chunk
    s.append([R.VALUE, 1760000700 + i, code, R.REALTIME, 1760000700 + i, Decimal(i, -2), True, R.FIELD_INSTRUMENT, 2])
s.flush()
b = Batch(10)
b.unwanted = lambda seq: seq in (8, 9)
got = []
while True:
    recs, last = s.read("city", 10, (R.VALUE,), 0, b)
    if not len(recs):
        break
    plain, _ = s.read("city", 12, (R.VALUE,))
    got.append({"seqs": [seq for seq, _r in recs], "same": [list(x) for x in recs] == [list(x) for x in plain
                                                                                      if x[0] not in (8, 9)][:len(recs)],
                "last": last, "by_index": recs[len(recs) - 1][0]})
    s.ack("city", last)
print(json.dumps(got))
'''


def test_a_batch_read_keeps_records_as_stored_in_order(tmp_path):
    """Store.read into a Batch (nengjian.store.batch): records decoded equal to a plain read's, in seq
    order, those its reader passes over not counted against the limit, and one too large for a chunk
    sent alone, decoded, never out of order."""
    got = json.loads(run_mpy(BATCH_READS % str(tmp_path)).stdout.strip().splitlines()[-1])
    assert [g["seqs"] for g in got] == [[1, 2, 3], [4], [5], [6, 7, 10, 11, 12, 13, 14, 15, 16, 17],
                                        [18, 19, 20], [21], [22, 23, 24, 25, 26, 27, 28, 29, 30]]
    assert all(g["same"] and g["last"] == g["seqs"][-1] == g["by_index"] for g in got), got


BATCH_ROUNDS = r'''
import gc, json
from nengjian.core import records as R
from nengjian.core.decimal import Decimal
from nengjian.store import batch
from nengjian.store.store import Store

s = Store(%r, ["city"], segment_bytes=65536, segments=8)
s.open()
for i in range(400):
    s.append([R.VALUE, 1760000700 + i, "%%02d-00-0000-023300-11" %% (i %% 100), R.REALTIME, 1760000700 + i,
              Decimal(i, -2), True, R.FIELD_INSTRUMENT, 2])
s.flush()
_, last = s.read("city", 1, (R.VALUE,))  # the reader's own state (its walk hint, its cursor) exists
s.ack("city", last)
got = {"kept": [], "delta": 0, "chunk": batch.CHUNK}  # no growth inside the figure
b = batch.Batch(50)
recs = last = None
gc.collect()
base = gc.mem_alloc()
for limit in (1, 11, 50, 2, 50, 50, 50):  # a gateway keeping up, then a back-fill filling every chunk
    recs, last = s.read("city", limit, (R.VALUE,), 0, b)
    got["kept"].append(len(recs))
    s.ack("city", last)
    recs = last = None
gc.collect()
got["delta"] = gc.mem_alloc() - base
print(json.dumps(got))
'''


def test_a_batch_takes_no_storage_after_it_is_made(tmp_path):
    """A Batch holds its chunks from construction (a destination's boot) and takes no heap after: rounds
    small and full leave the heap where the made batch left it. Storage taken later and kept (a chunk
    at the first record, another as a back-fill grew the batch) is what fragmented a day-long heap;
    the smallest such growth is one chunk, so anything under that is the rounds' own noise."""
    got = json.loads(run_mpy(BATCH_ROUNDS % str(tmp_path)).stdout.strip().splitlines()[-1])
    assert got["kept"][:2] == [1, 11] and max(got["kept"]) > 11, got  # the rounds did fill chunks
    assert abs(got["delta"]) < got["chunk"], got
