"""The meters' calibration records and the crew's performance checks (nengjian.values.metrology): due
within 30 days and expired are alarms, raised once and cleared by a new record; a check beyond the
meter's class (class % of the reading plus one display digit) is an alarm a later check clears."""

import json

import pytest
from mpyrun import run_mpy
from nengjian.core.decimal import Decimal
from nengjian.values import metercheck, metrology
from nengjian.values.manual import cst_timestamp

NOW = cst_timestamp(2026, 12, 2, 9)


def meters(due="2026-12-20", accuracy="1"):
    return [{"id": "m1", "class": accuracy, "calibration": {"certificate": "DG-2021-0042", "date": "2021-12-20",
                                                          "due": due}},
            {"id": "m2"}]


def make(due="2026-12-20", path=None, accuracy="1"):
    ev = []
    return metrology.Metrology(meters(due, accuracy), lambda k, t, c=None: ev.append((k, t)), path), ev


def test_day_number_matches_the_calendar():
    assert metrology.day_number("1970-01-01") == 0
    assert metrology.day_number("2026-12-20") - metrology.cst_day(NOW) == 18
    assert metrology.cst_day(cst_timestamp(2026, 12, 2, 0)) == metrology.cst_day(cst_timestamp(2026, 12, 2, 23, 59))
    with pytest.raises(ValueError):
        metrology.day_number("2026-13-01")


@pytest.mark.parametrize("due, level, word", [("2026-12-20", "due", "in 18 day(s)"), ("2027-01-01", "due", "in 30"),
                                              ("2026-11-30", "expired", "2 day(s) ago"), ("2027-01-02", None, "")])
def test_due_within_30_days_or_expired_is_an_alarm(due, level, word):
    mt, ev = make(due)
    mt.tick(NOW)
    if level is None:
        assert mt.status_alarms() == [] and ev == []
        return
    assert mt.alarms["cal:m1"][0] == level and word in mt.status_alarms()[0]
    assert [k for k, _ in ev] == ["alarm"] and ev[0][1].startswith("CALIBRATION %s m1" % level.upper())
    mt.tick(NOW + 3600)  # the same day: nothing new
    mt.tick(NOW + 86400)  # the next day: the count moves, no second event
    assert len(ev) == 1


def test_alarm_survives_a_reboot_once_and_clears_with_a_new_record(tmp_path):
    path = str(tmp_path / "metrology.json")
    mt, ev = make("2026-12-20", path)
    mt.tick(NOW)
    again, ev2 = make("2026-12-20", path)
    again.tick(NOW)
    assert ev2 == [] and again.status_alarms()  # raised before the reboot: not twice
    renewed, ev3 = make("2032-12-20", path)
    renewed.tick(NOW)
    assert renewed.status_alarms() == [] and ev3[0][1].startswith("CLEARED CALIBRATION m1")


def test_check_allows_class_percent_of_reading_plus_one_digit():
    # class 1 at 12345.6 kWh: 123.456 + 0.1 (one digit of "12469.1") = 123.556
    diff, allowed, beyond = metercheck.compare(Decimal(123456, -1), Decimal(124691, -1), "1")
    assert (diff.text(), allowed.text(), beyond) == ("123.5", "123.556", False)
    assert metercheck.compare(Decimal(123456, -1), Decimal(124692, -1), "1")[2] is True  # 123.6 > 123.556
    assert metercheck.compare(Decimal(123456, -1), Decimal(124691, -1), "0.5S")[2] is True
    assert metercheck.compare(Decimal(123456, -1), Decimal(1247, 1), "1")[2] is False  # display of whole tens
    # a 10-digit register a 32-bit float cannot hold: the sum is exact
    assert metercheck.compare(Decimal(1234567891, -2), Decimal(1234567891 + 1, -2), "0.2S")[1].text() == "24691.36782"


def test_check_beyond_class_raises_and_a_good_one_clears():
    mt, ev = make("2030-01-01")
    ans = metercheck.check(mt, "m1", "energy_kwh", Decimal(10000, 0), NOW - 5, "10250", NOW, "Li Wei")
    assert ans["beyond"] and ans["difference"] == "+250" and ans["allowed"] == "101"
    assert ev[0][0] == "check" and "BEYOND CLASS" in ev[0][1] and "by Li Wei" in ev[0][1]
    assert ev[1] == ("alarm", "CHECK m1 energy_kwh beyond class 1: difference +250, allowed 101")
    assert "beyond class 1" in mt.status_alarms()[0]
    ok = metercheck.check(mt, "m1", "energy_kwh", Decimal(10240, 0), NOW, "10241", NOW)
    assert not ok["beyond"] and mt.status_alarms() == [] and ev[-1][1].startswith("CLEARED CHECK m1 energy_kwh")
    with pytest.raises(metercheck.MetrologyError, match="accuracy class"):
        metercheck.check(mt, "m2", "energy_kwh", Decimal(1, 0), NOW, "1", NOW)
    with pytest.raises(metercheck.MetrologyError, match="no reading"):
        metercheck.check(mt, "m1", "power_kw", None, 0, "1", NOW)


def test_on_micropython():
    code = """
import json
from nengjian.core.decimal import Decimal
from nengjian.values import metercheck, metrology
ev = []
mt = metrology.Metrology(%s, lambda k, t, c=None: ev.append(t))
mt.tick(%d)
a = metercheck.check(mt, "m1", "energy_kwh", Decimal(1234567891, -2), %d, "12345700.00", %d)
print(json.dumps([ev, a, mt.status_alarms()]))
""" % (json.dumps(meters()), NOW, NOW, NOW)
    ev, ans, active = json.loads(run_mpy(code, heap="128k").stdout.strip().splitlines()[-1])
    assert ev[0].startswith("CALIBRATION DUE m1: meter m1 calibration due on 2026-12-20, in 18 day(s)")
    assert ans["difference"] == "+21.09" and ans["allowed"] == "123456.7991" and not ans["beyond"]
    assert len(active) == 1


# A crew's new calibration (console `calibrate`): what the console refuses even when the laptop was skipped.
NEW_RECORD_CASES = [
    (("DG-7", "2026-11-28", "2032-11-27"), None),
    (("DG-7", "2026-11-28", "2026-11-28"), "not after"),
    (("DG-7", "2026-11-28", "2020-11-28"), "not after"),
    (("DG-7", "2026-12-03", "2032-12-01"), "in the future"),
    (("DG-7", "2026/11/28", "2032-11-27"), "not a date"),
    (("", "2026-11-28", "2032-11-27"), "certificate"),
    ((7, "2026-11-28", "2032-11-27"), "certificate"),
]


@pytest.mark.parametrize("args, why", NEW_RECORD_CASES)
def test_a_new_calibration_record_is_checked(args, why):
    today = metrology.cst_day(NOW)
    if why is None:
        assert metrology.new_record(*args, today=today) == dict(zip(("certificate", "date", "due"), args))
        return
    with pytest.raises(ValueError, match=why):
        metrology.new_record(*args, today=today)


def test_a_new_calibration_record_without_a_trusted_clock_skips_only_the_future_check():
    assert metrology.new_record("DG-7", "2026-12-03", "2032-12-01", None)["date"] == "2026-12-03"
    with pytest.raises(ValueError, match="not after"):
        metrology.new_record("DG-7", "2026-12-03", "2026-12-01", None)


@pytest.mark.mpy
def test_new_record_on_micropython():
    code = """
from nengjian.values import metrology
from nengjian.values.manual import cst_timestamp
today = metrology.cst_day(cst_timestamp(2026, 12, 2, 9))
for args in %s:
    try:
        print(metrology.new_record(args[0], args[1], args[2], today)["due"])
    except ValueError as e:
        print("refused:", e)
""" % json.dumps([list(a) for a, _ in NEW_RECORD_CASES])
    lines = run_mpy(code, heap="256k").stdout.strip().splitlines()
    assert len(lines) == len(NEW_RECORD_CASES), lines
    for line, (args, why) in zip(lines, NEW_RECORD_CASES):
        assert line == args[2] if why is None else (line.startswith("refused:") and why in line), (line, why)
