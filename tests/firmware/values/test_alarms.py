"""Data-gap alarms (firmware/nengjian/values/alarms.py): warning after 24 h, alarm after 3 days without valid
data, cleared when data returns, each in the ledger, kept across reboots, told to the platform hook;
and a simulated month on MicroPython with a controllable clock."""

import json

import pytest
from mpyrun import run_mpy
from nengjian.core import records
from nengjian.core.decimal import Decimal
from nengjian.values import alarms
from nengjian.values.manual import cst_timestamp

A = "00-00-0000-023300-11"
B = "01-00-0000-023300-11"
T0 = cst_timestamp(2024, 5, 1)
H = 3600


def value(code, start, valid=True, stat=records.REALTIME):
    return [records.VALUE, start + 960, code, stat, start, Decimal(100, -2), valid, 4, 1]


class Rig:
    def __init__(self, path=None, opts=None, now=T0):
        self.events = []
        self.changes = []
        self.al = alarms.Alarms([A, B], 900, lambda k, t, c=None: self.events.append((k, t)), opts, path, now=now)
        self.al.subscribe(self.changes.append)

    def feed(self, code, start, valid=True):
        self.al.observe(value(code, start, valid))


def test_warning_then_alarm_then_clear():
    rig = Rig()
    rig.feed(A, T0)
    rig.feed(B, T0)
    assert rig.al.check(T0 + 24 * H) == []  # B: last data ended at T0 + 900, 23 h 45 min ago
    rig.feed(A, T0 + 24 * H)
    act = rig.al.check(T0 + 24 * H + 900)
    assert [(a["code"], a["level"]) for a in act] == [(B, "warning")]
    rig.al.check(T0 + 3 * 24 * H + 899)
    assert rig.al.active(T0 + 3 * 24 * H + 899)[0]["level"] == "warning"
    act = rig.al.check(T0 + 3 * 24 * H + 900)
    assert [(a["code"], a["level"]) for a in act] == [(B, "alarm"), (A, "warning")]  # worst first
    rig.feed(B, T0 + 3 * 24 * H + 900)
    assert [a["code"] for a in rig.al.active(T0 + 3 * 24 * H + 1000)] == [A]
    texts = [t for k, t in rig.events if k == "alarm"]
    assert texts[0].startswith("RAISED warning " + B)
    assert any(t.startswith("ESCALATED to alarm " + B) and "3 d" in t for t in texts)
    assert any(t.startswith("CLEARED alarm " + B) for t in texts)
    assert [(c["kind"], c["code"], c["level"]) for c in rig.changes if c["code"] == B] == [
        ("raised", B, "warning"), ("raised", B, "alarm"), ("cleared", B, "alarm")]


def test_invalid_values_are_no_data():
    rig = Rig()
    for k in range(4 * 24 * 4):
        rig.feed(A, T0 + 900 * k, valid=False)
        rig.feed(B, T0 + 900 * k)
    act = rig.al.check(T0 + 4 * 24 * H)
    assert [(a["code"], a["level"]) for a in act] == [(A, "alarm")]


def test_day_and_manual_values_count_as_data_for_their_span():
    rig = Rig()
    rig.al.observe(value(A, T0, stat=records.DAY))
    rig.al.observe([records.VALUE, T0, B, records.MONTH, T0, Decimal(1, 0), True, records.MANUAL, 1])
    assert rig.al.last[A] == T0 + 86400 and rig.al.last[B] == cst_timestamp(2024, 6, 1)


def test_thresholds_are_configurable():
    rig = Rig(opts={"warn_s": 2 * H, "alarm_s": 6 * H})
    assert [a["level"] for a in rig.al.check(T0 + 2 * H)] == ["warning", "warning"]
    assert [a["level"] for a in rig.al.check(T0 + 6 * H)] == ["alarm", "alarm"]


def test_clock_behind_the_data_raises_nothing():
    rig = Rig()
    rig.feed(A, T0 + 10 * 24 * H)
    rig.feed(B, T0 + 10 * 24 * H)
    assert rig.al.check(T0) == []


def test_reboot_neither_forgets_nor_raises_twice(tmp_path):
    path = str(tmp_path / "alarms.json")
    rig = Rig(path)
    rig.feed(A, T0)
    rig.al.check(T0 + 30 * H)
    assert len([e for e in rig.events if e[0] == "alarm"]) == 2
    rig2 = Rig(path, now=T0 + 31 * H)
    assert rig2.al.check(T0 + 31 * H) and [e for e in rig2.events if e[0] == "alarm"] == []
    rig2.feed(A, T0 + 31 * H)
    assert [t for k, t in rig2.events if k == "alarm"][0].startswith("CLEARED warning " + A)


def test_gateway_off_for_three_days_raises_then_clears(tmp_path):
    path = str(tmp_path / "alarms.json")
    rig = Rig(path)
    rig.feed(A, T0)
    rig.feed(B, T0)
    rig2 = Rig(path, now=T0 + 80 * H)  # powered off for 80 hours
    assert [a["level"] for a in rig2.al.check(T0 + 80 * H)] == ["alarm", "alarm"]
    rig2.feed(A, T0 + 80 * H)
    rig2.feed(B, T0 + 80 * H)
    assert rig2.al.active(T0 + 81 * H) == []
    assert [t.split()[0] for k, t in rig2.events if k == "alarm"] == ["RAISED", "RAISED", "CLEARED", "CLEARED"]


def test_torn_state_file_watches_every_item_from_now_with_an_event(tmp_path):
    path = str(tmp_path / "alarms.json")
    rig = Rig(path)
    rig.feed(A, T0)
    rig.al.check(T0 + 30 * H)  # both raised, saved
    whole = open(path).read()
    assert whole.startswith('{"v": 1, ')  # the format older firmware wrote and reads
    with open(path, "w") as f:
        f.write(whole[: len(whole) // 2])  # torn
    rig2 = Rig(path, now=T0 + 31 * H)
    assert [k for k, t in rig2.events] == ["alarm"] and "alarm state unreadable" in rig2.events[0][1]
    assert rig2.events[0][1].endswith(": watching every item from now")
    assert rig2.al.last == {A: T0 + 31 * H, B: T0 + 31 * H} and rig2.al.check(T0 + 32 * H) == []
    assert json.load(open(path))["last"] == {A: T0 + 31 * H, B: T0 + 31 * H}  # written whole again
    assert [a["code"] for a in rig2.al.check(T0 + 55 * H)] == [A, B]


def test_a_broken_hook_does_not_stop_alarms():
    rig = Rig()

    def bad(change):
        raise RuntimeError("profile bug")

    rig.al.subscribe(bad)
    assert len(rig.al.check(T0 + 25 * H)) == 2
    assert any("hook failed" in t for _k, t in rig.events)


@pytest.mark.mpy
def test_a_month_with_a_four_day_outage_on_micropython():
    code = r"""
import json
from nengjian.values import alarms
from nengjian.core import records, timeutil
from nengjian.core.decimal import Decimal
T0 = %d
clock = [T0]
timeutil.set_source(lambda: clock[0])
ev = []
al = alarms.Alarms(["%s", "%s"], 900, lambda k, t, c=None: ev.append(t), None, None)
while clock[0] < T0 + 31 * 86400:
    clock[0] += 900
    start = clock[0] - 900
    for code in al.codes:
        if code == "%s" and T0 + 10 * 86400 <= start < T0 + 14 * 86400:
            continue  # meter dead for four days
        al.observe([records.VALUE, clock[0], code, 0, start, Decimal(1, 0), True, 4, 1])
    if clock[0] %% 60 == 0:
        al.check(timeutil.now())
print(json.dumps(ev))
""" % (T0, A, B, B)
    ev = json.loads(run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])
    assert [e.split(" (since")[0] for e in ev] == [
        "RAISED warning %s: no valid data for 1 d 0 h" % B,
        "ESCALATED to alarm %s: no valid data for 3 d 0 h" % B,
        "CLEARED alarm %s: valid data again for 2024-05-15 00:00:00, after 4 d 0 h without" % B]


def test_config_wants_the_warning_before_the_alarm():
    from nengjian_host.common import siteconfig
    from nengjian_host.sim.gateway import demo_site

    cfg = demo_site("http://127.0.0.1:1/api/register")
    cfg["alarms"] = {"warn_s": 3 * 86400, "alarm_s": 86400}
    assert "warn_s" in siteconfig.check(cfg)[0]
    cfg["alarms"] = {"warn_s": 43200}
    assert siteconfig.check(cfg) == []
