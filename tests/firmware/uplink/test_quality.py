"""The on-device quality score (nengjian.uplink.quality), on MicroPython: its arithmetic (completeness,
timeliness, a value sent twice counted once, day against its real-time values, month against its
days, statistics-time alignment), the alarms naming item and day, its heap, and its file across a
power cut at every write (littlefs over the fault-injecting RAM block device, as the store's and the
update slots' sweeps do)."""

import json

import pytest
from mpyrun import run_mpy
from powercut import run_sweep

pytestmark = pytest.mark.mpy

COMMON = r'''
import gc
import json
from nengjian.core import records, timeutil
from nengjian.core.decimal import Decimal
from nengjian.uplink import quality

D = timeutil.timestamp(2026, 11, 1) - 8 * 3600   # 2026-11-01 00:00 CST
E = "00-00-0000-023300-11"
G = "00-00-0000-011500-11"
P = 900


def rt(code, start, hundredths):
    return (0, [records.VALUE, start + P, code, records.REALTIME, start, Decimal(hundredths, -2), True, 4, 1])


def day(code, start, hundredths):
    return (0, [records.VALUE, start + 86400, code, records.DAY, start, Decimal(hundredths, -2), True, 4, 1])


def month(code, start, hundredths):
    return (0, [records.VALUE, start, code, records.MONTH, start, Decimal(hundredths, -2), True, 4, 1])
'''


def _run(code, heap="256k"):
    out = run_mpy(COMMON + code, heap=heap).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_completeness_timeliness_resends_and_agreement_of_a_day(tmp_path):
    got = _run(r'''
events = []
q = quality.Quality("city", [E, G], P, %r, lambda k, t, c=None: events.append([k, t]), now=D - 30)
# E: every period, on time, its day value equal to the sum; G: 80 of 96 periods, late, day 10 %% off.
for p in range(96):
    q.accepted([rt(E, D + p * P, 125)], D + (p + 1) * P + 5)
q.accepted([rt(G, D + p * P, 100) for p in range(80)], D + 86400 + 3600)
q.accepted([rt(E, D + p * P, 125) for p in range(10)], D + 86400 + 3600)  # a resend: counted once
q.accepted([day(E, D, 12000), day(G, D, 8800)], D + 86400 + 60)
now = D + 86400 + 1800
r = q.report(now)
d = [x for x in r["days"] if x["start"] == D][0]
q.tick(D + 86400 + 600, caught_up=True)   # not settled yet: nothing judged
before = len(events)
q.tick(now + 7200, caught_up=False)       # settled, but values still on their way: not judged
mid = len(events)
q.tick(now + 7200, caught_up=True)
q.tick(now + 7300, caught_up=True)        # judged once
print(json.dumps({"day": d, "before": before, "mid": mid, "events": events}))
''' % str(tmp_path / "q.bin"))
    d = got["day"]
    e, g = d["items"]["00-00-0000-023300-11"], d["items"]["00-00-0000-011500-11"]
    assert d["period"] == "2026-11-01"
    assert e == [97, 97, 0.0]
    assert g == [81, 97, None]  # not all real-time values: not compared
    assert (d["accepted"], d["due"], d["on_time"]) == (178, 194, 97 + 1)  # E's 96 + E's day + G's day
    assert d["timeliness"] == round(98 * 1000 / 178) / 10
    assert got["before"] == 0 and got["mid"] == 0
    assert got["events"] == [["alarm", "QUALITY city 00-00-0000-011500-11 day 2026-11-01: completeness 83.5 % "
                                        "(81 of 97 values due), below 90 %"]]


def test_a_day_figure_apart_from_its_real_time_values_and_a_month_apart_from_its_days(tmp_path):
    got = _run(r'''
events = []
q = quality.Quality("prov", [E], P, %r, lambda k, t, c=None: events.append(t), settle_s=0, now=D - 1)
for k in range(30):
    d0 = D + k * 86400
    q.accepted([rt(E, d0 + p * P, 100) for p in range(96)], d0 + 86400)
    q.accepted([day(E, d0, 9600 if k else 10600)], d0 + 86400)   # day 1 is 10.4 %% above its 96.00
    q.tick(d0 + 86400 + 1)
M = D + 30 * 86400  # 2026-12-01
q.accepted([month(E, D, 300000)], M + 10)  # the days add up to 2890.00: 3.7 %% apart, no alarm
q.tick(M + 1)
m = q.report(M + 2)["months"]
nov = [x for x in m if x["period"] == "2026-11"][0]
print(json.dumps({"events": events, "nov": nov, "beat": q.beat(M - 1)}))
''' % str(tmp_path / "q.bin"))
    assert got["events"] == ["QUALITY prov 00-00-0000-023300-11 day 2026-11-01: day value and the sum of its "
                             "real-time values 9.4 % apart, above 5 %"]
    nov = got["nov"]
    assert (nov["accepted"], nov["due"], nov["apart_max"], nov["misaligned"]) == (30 * 97 + 1, 30 * 97 + 1, 3.7, 0)
    assert got["beat"][0] == 100.0


def test_statistics_times_off_their_boundary_are_counted_and_named(tmp_path):
    got = _run(r'''
events = []
q = quality.Quality("city", [E], P, %r, lambda k, t, c=None: events.append(t), settle_s=0, now=D - 1)
q.accepted([day(E, D + 90, 100)], D + 86400)            # 90 s after midnight: misaligned
q.accepted([day(E, D + 86400 - 30, 100)], D + 2 * 86400)  # 30 s before the next midnight: that day, aligned
q.tick(D + 3 * 86400)
r = q.report(D + 3 * 86400)
print(json.dumps({"events": events, "days": [(x["period"], x["misaligned"]) for x in r["days"]]}))
''' % str(tmp_path / "q.bin"))
    assert ("2026-11-01", 1) in [tuple(x) for x in got["days"]] and ("2026-11-02", 0) in [tuple(x) for x in got["days"]]
    assert any("day 2026-11-01: day value's statistics time not within 1 min of 00:00" in t for t in got["events"])
    assert not any("2026-11-02: day value's" in t for t in got["events"])


def test_an_estimate_sent_as_invalid_is_not_a_value_accepted(tmp_path):
    """SPEC 2 counts values uploaded against values due; a value the gateway itself sends as invalid (an
    estimate, unless intervals.estimated_valid) gives the platform no figure for its period, so it is
    not counted complete: 10 invalid estimates of 96 periods leave the day at 87 of 97, below 90 %. A valid
    resend of such a period later counts."""
    got = _run(r"""
events = []
q = quality.Quality("city", [E], P, %r, lambda k, t, c=None: events.append(t), settle_s=0, now=D - 30)
batch = [rt(E, D + p * P, 100) for p in range(96)]
for p in range(40, 50):
    batch[p][1][records.V_VALID] = False  # estimated across a gap
q.accepted(batch, D + 86400)
q.accepted([day(E, D, 9600)], D + 86400 + 60)
r = q.report(D + 86400 + 120)
d = [x for x in r["days"] if x["start"] == D][0]
q.tick(D + 86400 + 120)
q2 = quality.Quality("prov", [E], P, %r, lambda k, t, c=None: None, settle_s=0, now=D - 30)
q2.accepted([rt(E, D + 40 * P, 100)], D + 86400)
q2.accepted(batch[40:41], D + 86400)  # invalid first, then the valid value: counted once
q2.accepted([(0, [records.VALUE, D + 41 * P, E, records.REALTIME, D + 41 * P, Decimal(100, -2), False, 4, 1])],
            D + 86400)
q2.accepted([rt(E, D + 41 * P, 100)], D + 86400)
d2 = [x for x in q2.report(D + 86400 + 120)["days"] if x["start"] == D][0]
print(json.dumps({"item": d["items"][E], "invalid": r.get("invalid"), "events": events, "resent": d2["items"][E][0],
                  "invalid2": getattr(q2, "invalid", None)}))
""" % (str(tmp_path / "q.bin"), str(tmp_path / "q2.bin")))
    assert got["item"] == [87, 97, None]  # not every real-time value accepted: the day is not compared
    assert got["invalid"] == 10
    assert got["events"] == ["QUALITY city 00-00-0000-023300-11 day 2026-11-01: completeness 89.7 % "
                             "(87 of 97 values due), below 90 %"]
    assert got["resent"] == 2 and got["invalid2"] == 2


@pytest.mark.parametrize("period, late", [(900, 120), (300, 60), (3600, 120), (60, 12)])
def test_the_first_period_due_counts_from_a_boundary_within_the_tolerance(tmp_path, period, late):
    """Quality.first(): a gateway that begins to watch up to the interval engine's tolerance after a
    boundary (min(period // 5, 120) s) still takes that boundary's reading, so the period starting there
    is the first one due; one second later it is the next."""
    got = _run(r"""
out = []
for since in (D - 1, D, D + LATE, D + LATE + 1, D + PERIOD - 1):
    q = quality.Quality("city", [E], PERIOD, "/dev/null/none", lambda k, t, c=None: None, now=since)
    out.append(q.first() - D)
print(json.dumps(out))
""".replace("PERIOD", str(period)).replace("LATE", str(late)))
    assert got == [0, 0, 0, period, period]


def test_timeliness_is_within_one_period_of_falling_due(tmp_path):
    """A real-time value falls due at its period's end and is on time up to one period later; a day value
    likewise within a day of its day's end (our reading, see the module): at the limit on time, a second
    past it late, for the day figures and the month's."""
    got = _run(r"""
q = quality.Quality("city", [E], P, %r, lambda k, t, c=None: None, settle_s=0, now=D - 30)
q.accepted([rt(E, D, 100)], D + 2 * P)             # due at D + P: on time at the limit
q.accepted([rt(E, D + P, 100)], D + 3 * P + 1)     # one second past it
q.accepted([day(E, D, 200)], D + 2 * 86400)
q.accepted([day(E, D + 86400, 200)], D + 3 * 86400 + 1)
r = q.report(D + 3 * 86400 + 2)
d0 = [x for x in r["days"] if x["start"] == D][0]
d1 = [x for x in r["days"] if x["start"] == D + 86400][0]
m = r["months"][0]
print(json.dumps([[d0["accepted"], d0["on_time"]], [d1["accepted"], d1["on_time"]], [m["accepted"], m["on_time"],
                  m["timeliness"]]]))
""" % str(tmp_path / "q.bin"))
    assert got == [[3, 2], [1, 0], [4, 2, 50.0]]


def test_the_figures_code_is_loaded_only_while_it_runs(tmp_path):
    # Always loaded: the tables and what feeds them; the figures, alarms and file reading come and go.
    got = _run(r'''
import sys
def held():
    return "nengjian.uplink.qualityfig" in sys.modules or "qualityfig" in sys.modules["nengjian.uplink"].__dict__
seen = []
q = quality.Quality("city", [E], P, %r, lambda k, t, c=None: seen.append(held()), now=D - 30)
seen.append(held())
q.accepted([rt(E, D + p * P, 125) for p in range(80)], D + 86400)
seen.append(held())
q.tick(D + 2 * 86400)  # settled: judged (an alarm: 80 of 97), the figures' code loaded meanwhile
seen.append(held())
r = q.report(D + 2 * 86400)
seen.append(held())
print(json.dumps({"seen": seen, "alarms": r["alarms"], "beat": q.beat(D + 2 * 86400), "after": held()}))
''' % str(tmp_path / "q.bin"))
    assert got["seen"] == [False, False, True, False, False]  # True: in the alarm's event, while judging
    assert len(got["alarms"]) == 1 and got["beat"][0] is not None and got["after"] is False


def test_heap_of_a_table_of_sixteen_items():
    got = _run(r'''
codes = ["00-00-0000-0233%02d-11" % i for i in range(16)]
# The file reading a Quality loads at its start interns its names once per boot: code, not table.
quality.Quality("warm", codes[:1], P, "/dev/null/none", lambda k, t, c=None: None, now=D)
gc.collect()
a = gc.mem_alloc()
q = quality.Quality("city", codes, P, "/dev/null/none", lambda k, t, c=None: None, now=D)
gc.collect()
b = gc.mem_alloc()
values = [rt(c, D + p * P, 100) for c in codes for p in range(4)]
gc.collect()
c = gc.mem_alloc()
q.accepted(values, D + 5 * P)
q.accepted(values, D + 5 * P)
gc.collect()
print(json.dumps({"table": b - a, "after_values": gc.mem_alloc() - c}))
''')
    print("quality table, 16 items, unix port: %d bytes" % got["table"])
    # 16 x 122 bytes of tables plus the object, its index dict and array headers; nothing per value
    assert got["table"] < 4096
    assert got["after_values"] <= 64  # values taken: nothing kept per value


HARNESS = r'''
import gc

import cutsweep
import vfs
from nengjian.core import records
from nengjian.core.decimal import Decimal
from nengjian.store.blockdev import RAMBlockDevice
from nengjian.uplink import quality

gc.collect()
DATA = RAMBlockDevice(NB, BS).data
MNT = "/qpc"
PATH = MNT + "/quality-city.bin"
D = 1793462400  # 2026-11-01 00:00 CST
CODES = ["00-00-0000-023300-11", "00-00-0000-011500-11"]


def batch(k):
    """The k-th batch the platform accepts: 8 periods of both items, then the day values."""
    if k == 12:
        return [(0, [records.VALUE, D + 86400, c, records.DAY, D, Decimal(9600, -2), True, 4, 1]) for c in CODES]
    return [(0, [records.VALUE, D, c, records.REALTIME, D + p * 900, Decimal(100, -2), True, 4, 1])
            for c in CODES for p in range(8 * k, 8 * k + 8)]


def accept_from(q, first, dev=None, obs=None):
    for k in range(first, 13):
        q.accepted(batch(k), D + 86400 + 10)
        if dev is not None and dev.cut:
            return
        if obs is not None:
            obs["acked"] = k + 1  # delivery moves its cursor only now


def figures(q):
    r = q.report(D + 86400 + 20)
    return [(x["period"], x["accepted"], x["on_time"], x["apart_max"]) for x in r["days"]]


def workload(dev, obs):
    q = quality.Quality("city", CODES, 900, PATH, obs["events"].append2, now=D - 60)
    if dev.cut:
        return
    obs["saved"] = True
    accept_from(q, 0, dev, obs)


def mount(dev):
    cutsweep.mount(dev, MNT)


def umount():
    cutsweep.umount(MNT)


class Events(list):
    def append2(self, kind, text, code=None):
        self.append((kind, text))


def survived(obs):
    ev = Events()
    q = quality.Quality("city", CODES, 900, PATH, ev.append2, now=D + 99999)
    if obs["saved"] and q.since != D - 60:
        return "the score started again (since %d): %r" % (q.since, ev)
    if ev and obs["saved"]:
        return "events on load: %r" % ev
    accept_from(q, obs["acked"])  # the delivery resends what was not acknowledged
    got = figures(q)
    if obs["saved"] and got != WANT:
        return "after the resend %r, uncut %r" % (got, WANT)
    q2 = quality.Quality("city", CODES, 900, PATH, ev.append2, now=D + 99999)
    if figures(q2) != got:
        return "saved %r, in RAM %r" % (figures(q2), got)
    return None


def verify(dev, obs):
    return cutsweep.checked(dev, mount, umount, lambda: survived(obs))


def new_obs():
    OBS.update(acked=0, saved=False, events=Events())
    return OBS


OBS = {}
dev0 = RAMBlockDevice(NB, BS, data=DATA)
vfs.VfsLfs2.mkfs(dev0)
mount(dev0)
q0 = quality.Quality("city", CODES, 900, PATH, Events().append2, now=D - 60)
accept_from(q0, 0)
WANT = figures(q0)
umount()
dev0.kill()
print("WANT", WANT)
cutsweep.run(NB, BS, DATA, MODES, PART, NPART, new_obs, mount, umount, workload, verify)
'''

BS, NB = 512, 64
MODES = {"clean": 0, "torn": 1, "erased": 2}
PART_TIMEOUT_S = 600  # a bound for a loaded machine, not a speed target


@pytest.mark.timeout(PART_TIMEOUT_S + 60)
@pytest.mark.parametrize("mode", list(MODES))
def test_power_cut_at_every_write_keeps_the_score_and_a_resend_counts_once(mode):
    sweep = run_sweep(dict(NB=NB, BS=BS, MODES=(MODES[mode],), PART=0, NPART=1), HARNESS, "512k", PART_TIMEOUT_S)
    assert "WANT [('2026-11-01', 194, 4, 0.0)]" in sweep.text, sweep.text[:400]
    assert sweep.writes >= 40, sweep.count_line
    sweep.assert_clean(0, 1)


def test_day_and_month_values_wait_for_the_upload_slot_real_time_values_do_not():
    """nengjian.uplink.delivery's hold, where the destination sets upload_slot: a day value of day D goes
    at D+1 plus the slot, a month value at the 1st of the next month plus the slot, a real-time value at
    once; a slot the platform did not give (or an unusable one) holds nothing."""
    got = _run(r'''
from nengjian.uplink import delivery


class Profile:
    name = "anhui"
    session = {"uploadTime": "01:38:00"}


events = []
d = delivery.Destination(Profile(), None, 50, lambda k, t, c=None: events.append(t))
dv = day(E, D, 100)[1]
mv = month(E, D, 100)[1]
rv = rt(E, D + 86400 - P, 100)[1]
N = D + 30 * 86400  # 2026-12-01 00:00 CST
out = [d._held(dv, D + 86400 + 5), d._held(dv, D + 86400 + 5880 - 1), d._held(dv, D + 86400 + 5880),
       d._held(rv, D + 86400 + 5), d._held(mv, N + 60), d._held(mv, N + 5880)]
Profile.session = {"uploadTime": "25:00"}
out.append(d._held(dv, D + 86400 + 5))
Profile.session = None
out.append(d._held(dv, D + 86400 + 5))
print(json.dumps({"held": out, "events": events}))
''')
    assert got["held"] == [True, True, False, False, True, False, False, False]
    assert got["events"] == ["anhui: upload slot '25:00' unusable: day and month values sent as due"]


@pytest.mark.parametrize("offered", [False, True])
def test_the_cursor_waits_before_a_held_day_value_while_the_real_time_values_after_it_go(tmp_path, offered):
    """The delivery's cursor lane with a day value waiting for the slot: the real-time values stored after
    it go at once (remembered as sent ahead), the cursor stays before the day value until the slot, then
    the day value goes and nothing goes twice, whether or not the fresh lane was offered them too; the
    score counts each value once."""
    got = _run(r'''
import asyncio
from nengjian.store.store import Store
from nengjian.uplink import delivery
from nengjian.uplink.result import OK, Result

clock = [D + 86400 + 60]
timeutil.set_source(lambda: clock[0])
sent = []


class Profile:
    name = "anhui"
    session = {"uploadTime": "01:38:00"}

    async def ensure_session(self):
        return None

    async def upload(self, batch, now):
        sent.append([(r[records.V_CODE][:2], r[records.V_STAT_TYPE], r[records.V_STAT_START] - D) for _s, r in batch])
        return Result(OK)


store = Store(%r, ["anhui"], segment_bytes=4096, segments=4)
store.open()
for p in range(92, 96):
    store.append(rt(E, D + p * P, 100)[1])
store.append(day(E, D, 9600)[1])
offers = []
for p in range(0, 4):
    rec = rt(E, D + 86400 + p * P, 100)[1]
    offers.append((store.append(rec), rec))
store.flush()
d = delivery.Destination(Profile(), store, 3, lambda k, t, c=None: None)
if OFFERED:
    for seq, rec in offers:
        d.offer(seq, rec)
d.upload_slot = True
d.quality = quality.Quality("anhui", [E], P, %r, lambda k, t, c=None: None, now=D - 10)


async def rounds(n):
    for _ in range(n):
        d.wake.set()
        try:
            await asyncio.wait_for_ms(d._round(), 200)
        except asyncio.TimeoutError:
            pass

asyncio.run(rounds(6))
before = {"sent": sent[:], "cursor": store.cursor("anhui"), "caught_up": d.caught_up}
clock[0] = D + 86400 + 5880
del sent[:]
asyncio.run(rounds(4))
r = d.quality.report(clock[0])
day0 = [x for x in r["days"] if x["start"] == D][0]
print(json.dumps({"before": before, "after": sent, "cursor": store.cursor("anhui"), "last": store.last_seq,
                  "day": day0["items"][E], "caught_up": d.caught_up}))
'''.replace("OFFERED", str(offered)) % (str(tmp_path / "store"), str(tmp_path / "q.bin")))
    first = [v for batch in got["before"]["sent"] for v in batch]
    assert ["00", 1, 0] not in first, "the day value went before its slot"
    assert len(first) == 8 and len({tuple(v) for v in first}) == 8  # every real-time value, once
    assert got["before"]["cursor"] == 4 and not got["before"]["caught_up"]  # stopped before the day value
    assert [v for batch in got["after"] for v in batch] == [["00", 1, 0]]
    assert got["cursor"] == got["last"] and got["caught_up"]
    assert got["day"][:2] == [5, 97]  # its 4 last periods and its day value, each counted once, of 97 due
