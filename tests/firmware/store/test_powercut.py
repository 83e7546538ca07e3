"""Power cut at every write, on MicroPython itself.

A realistic workload (READING/VALUE/EVENT appends with flushes, two destinations acknowledging at
different paces, a clock that jumps back, segment rotations in both rings and a fold into history)
runs on littlefs2 (vfs.VfsLfs2) over the fault-injecting RAM block device. The workload is run once
to count its program/erase operations W; then, for every N in 1..W and each fault mode (clean cut,
torn last operation, erased-but-unwritten block), the image is restored from its freshly formatted
snapshot, the power dies at operation N, and the surviving image is remounted and checked:

- the volume mounts (no mkfs);
- every record whose seq was <= a durable_seq the writer saw is there exactly once with the same
  bytes (a VALUE already folded into history: its fields in history, exactly once);
- records beyond it that survived are exactly what was appended under that seq;
- cursors are >= every ack() that returned True, and <= the data;
- the next seq is above everything seen durable or present; append, flush, read and ack work.

The "slow" workload lets one destination fall far behind on a small pool, so that the store grows
its main ring, drops unacknowledged segments into history (loss events) and expires history: there
records may be missing, but only as a prefix of the oldest ones (what retention drops) and only when
the store said so.
"""

import re

import pytest
from powercut import run_sweep

pytestmark = [pytest.mark.mpy, pytest.mark.slow]

HARNESS = r'''
import gc
import sys
from binascii import crc32

import cutsweep
import vfs
from nengjian.core import records as R
from nengjian.store import cbor
from nengjian.store.blockdev import RAMBlockDevice
from nengjian.core.decimal import Decimal
from nengjian.store.store import Store

gc.collect()
DATA = RAMBlockDevice(NB, BS).data  # early, while the heap is whole
import nengjian.store.cold  # noqa: F401  held loaded: Store.open would load it anew for every run
MNT = "/pc"
DESTS = ("city", "prov")
T0 = 1760000000 - 1760000000 % 900
VKEY = (2, 3, 4, 5, 6, 7, 8)
CAP = ROUNDS * 8
OBS = {"app": [0] * CAP, "kinds": bytearray(CAP), "vkey": [None] * CAP, "acked": {}}
LIVE = bytearray(CAP)


def make_store(events):
    return Store(MNT + "/st", DESTS, segment_bytes=1024, segments=POOL, flush_records=12, flush_ms=10 ** 9,
                 raw_segments=RAW, raw_segment_bytes=1024, main_keep=2, fold=2,
                 on_event=lambda k, t, c=None: events.append(k))


def new_obs():
    o = OBS
    for i in range(CAP):
        o["app"][i] = 0
        o["kinds"][i] = 0
        o["vkey"][i] = None
    for d in DESTS:
        o["acked"][d] = 0
    o["durable"] = 0
    o["said"] = 0
    return o


def workload(dev, obs):
    ev = []
    s = make_store(ev)
    try:
        s.open()
    except OSError:
        if not dev.cut:
            raise
        return  # the power died while the store opened: nothing was promised yet
    app = obs["app"]
    kinds = obs["kinds"]
    vkey = obs["vkey"]

    def put(rec):
        seq = s.append(rec)
        app[seq] = crc32(cbor.encode(rec))
        kinds[seq] = rec[0]
        if rec[0] == R.VALUE:
            vkey[seq] = ((rec[2], rec[4]), crc32(cbor.encode([rec[i] for i in VKEY])))

    after = -1
    ts = T0
    for r in range(ROUNDS):
        ts += 60
        if r == ROUNDS // 2:
            ts -= 7200  # the clock jumps back two hours
        for m in ("m1", "m2"):
            for p in ("kwh", "kw"):
                put([R.READING, ts, m, p, Decimal(100000 + r * 37 + len(p), -2), 0])
        for i in range(2 if r % 2 else 1):
            put([R.VALUE, ts, "00-00-0000-0%d3300-11" % i, 0, T0 + (r * 2 + i) * 900, Decimal(r * 13 + i, -2),
                 r % 5 != 1, 4, 1])
        if r % 9 == 4:
            put([R.EVENT, ts, "gap", "m2: no reading for %d s" % r])
        if r % 3 == 2:
            s.flush()
        obs["durable"] = max(obs["durable"], s.durable_seq)
        if r % 4 == 3:
            for d in DESTS:
                if d == "prov" and r % PROV_EVERY != PROV_EVERY - 1:
                    continue
                recs, last = s.read(d, 6, (R.VALUE,))
                if s.ack(d, last):
                    obs["acked"][d] = max(obs["acked"][d], last)
        if dev.cut and after < 0:
            after = 3  # a few more steps with a dead chip: nothing may claim to be stored
        if after >= 0:
            after -= 1
            if after < 0:
                break
    s.close()
    obs["durable"] = max(obs["durable"], s.durable_seq)
    obs["stats"] = s.stats
    obs["said"] = ev.count("loss") + s.stats["history_expired"] + s.stats["expired_raw"]


def mount(dev):
    vfs.mount(vfs.VfsLfs2(dev), MNT)


def umount():
    try:
        vfs.umount(MNT)
    except OSError:
        pass


def verify(dev, obs):
    try:
        mount(dev)
    except OSError as e:
        return "volume does not mount: %r" % (e,)
    ev = []
    s = make_store(ev)
    try:
        s.open()
        app = obs["app"]
        kinds = obs["kinds"]
        durable = obs["durable"]
        hist_upto = s._hist.upto
        live = LIVE
        for i in range(CAP):
            live[i] = 0
        bad = []
        top = [0]

        def see(seq, rec):
            if seq >= CAP or app[seq] != crc32(cbor.encode(rec)):
                bad.append("seq %d on flash is not what was appended" % seq)
                return True
            if live[seq]:
                bad.append("seq %d twice in the rings" % seq)
            live[seq] = 1
            top[0] = max(top[0], seq)

        s.scan(1, see)
        if bad:
            return bad[0]
        hist_vals = {}
        hist_seq = {}

        def hsee(seq, rec):
            if seq is None:
                k = (rec[2], rec[4])
                if k in hist_vals:
                    bad.append("history value %r twice" % (k,))
                hist_vals[k] = crc32(cbor.encode([rec[i] for i in VKEY]))
            else:
                if seq in hist_seq:
                    bad.append("history record %d twice" % seq)
                hist_seq[seq] = crc32(cbor.encode(rec))

        s.history(hsee)
        if bad:
            return bad[0]
        present_main = present_raw = False
        for seq in range(1, durable + 1):
            k = kinds[seq]
            if seq <= hist_upto and k != R.READING:
                if k == R.VALUE:
                    key, want = obs["vkey"][seq]
                    ok = hist_vals.get(key) == want
                else:
                    ok = hist_seq.get(seq) == app[seq]
            else:
                ok = live[seq] == 1
            if k == R.READING:
                if ok:
                    present_raw = True
                elif present_raw or not obs["said"]:
                    return "durable READING %d (of %d) missing" % (seq, durable)
            else:
                if ok:
                    present_main = True
                elif present_main or not obs["said"]:
                    return "durable record %d (kind %d, of %d) missing" % (seq, k, durable)
        if s.last_seq < durable:
            return "last_seq %d below durable %d" % (s.last_seq, durable)
        top = max(durable, hist_upto, top[0])
        for d in DESTS:
            c = s.cursor(d)
            if c < obs["acked"][d]:
                return "cursor of %s went back: %d < acked %d" % (d, c, obs["acked"][d])
            if c > s.last_seq:
                return "cursor of %s past the data: %d > %d" % (d, c, s.last_seq)
        n1 = s.append([R.VALUE, T0, "99-00-0000-023300-11", 0, T0, Decimal(1, 0), True, 4, 1])
        n2 = s.append([R.READING, T0, "m9", "kwh", Decimal(5, 0), 0])
        n3 = s.append([R.EVENT, T0, "boot", "after the cut"])
        if n1 <= top:
            return "seq %d repeats (highest seen %d)" % (n1, top)
        s.flush()
        if s.durable_seq != n3:
            return "flush after recovery did not store (durable %d, want %d)" % (s.durable_seq, n3)
        got = []
        s.scan(n1, lambda q, r: got.append(q))
        if got != [n1, n2, n3]:
            return "records after recovery read back as %r" % (got,)
        for d in DESTS:  # each destination drains its queue, and the new VALUE comes last
            final = 0
            for _ in range(1000):
                recs, last = s.read(d, 8, (R.VALUE,))
                if recs:
                    final = recs[-1][0]
                if not s.ack(d, last):
                    return "ack after recovery failed"
                if last >= n3:
                    break
            if final != n1 or s.cursor(d) != n3:
                return "%s drained to %d (last VALUE %d), want %d (%d)" % (d, s.cursor(d), final, n3, n1)
        s.close()
    except Exception as e:
        sys.print_exception(e)
        return "exception: %r" % (e,)
    finally:
        umount()
    return None


def describe(obs):
    st = obs["stats"]
    return ("durable=%d folds=%d expired_raw=%d history_expired=%d lost=%d loss_events=%d acked=%d,%d"
            % (obs["durable"], st["folds"], st["expired_raw"], st["history_expired"], st["lost"],
               st["loss_events"], obs["acked"]["city"], obs["acked"]["prov"]))


cutsweep.run(NB, BS, DATA, MODES, PART, NPART, new_obs, mount, umount, workload, verify, describe)
'''

CONFIGS = {
    # block size, blocks, heap, pool segments, raw segments, prov acks every N rounds, rounds
    "512B-std": dict(BS=512, NB=128, heap="256k", POOL=10, RAW=12, PROV_EVERY=8, ROUNDS=60),
    "4096B-std": dict(BS=4096, NB=64, heap="1m", POOL=10, RAW=12, PROV_EVERY=8, ROUNDS=60),
    "512B-slow": dict(BS=512, NB=128, heap="256k", POOL=5, RAW=6, PROV_EVERY=24, ROUNDS=60),
}
MODES = {"clean": 0, "torn": 1, "erased": 2}
# Every write is cut in every mode; the cut points of one (configuration, mode) are shared among PARTS
# tests so that each is a process of its own that xdist can place on any worker, and none has to fit a
# whole sweep into one timeout on a slow or busy machine.
PARTS = 3
# One part replays the workload up to a few hundred times; on an idle 2-core machine that is under a
# minute. The limit is for a machine several times slower or loaded, not a speed target.
PART_TIMEOUT_S = 900


def _sweep(cfg, modes, part, nparts):
    c = dict(CONFIGS[cfg])
    heap = c.pop("heap")
    return run_sweep(dict(c, MODES=tuple(modes), PART=part, NPART=nparts), HARNESS, heap, PART_TIMEOUT_S)


@pytest.mark.timeout(PART_TIMEOUT_S + 60)
@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("cfg", list(CONFIGS))
def test_power_cut_at_every_write(cfg, mode, part):
    _sweep(cfg, [MODES[mode]], part, PARTS).assert_clean(part, PARTS)


@pytest.fixture(scope="module")
def counts():
    """The workload of each configuration run once without a cut: its COUNT line."""
    return {cfg: _sweep(cfg, [], 0, 1).count_line for cfg in CONFIGS}


def test_workloads_reach_the_paths_they_claim(counts):
    """The sweeps mean something only if the workloads rotate, fold, and (slow) drop and expire."""
    std = counts["512B-std"]
    slow = counts["512B-slow"]
    num = lambda line, k: int(re.search(k + r"=(\d+)", line).group(1))  # noqa: E731
    assert num(std, "folds") >= 1 and num(std, "expired_raw") == 0 and num(std, "lost") == 0
    assert num(counts["4096B-std"], "folds") >= 1
    assert num(slow, "loss_events") >= 1 and num(slow, "expired_raw") >= 1
    assert num(slow, "W") >= 400 and num(std, "W") >= 400
