"""Manual entries (firmware/nengjian/values/manual.py): what is refused and why, what is stored, and the
same on MicroPython with a controllable clock."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mpyrun import run_mpy
from nengjian.core import records, timeutil
from nengjian.core.decimal import Decimal
from nengjian.values import manual

COAL = "00-00-0000-010100-11"
NOW = manual.cst_timestamp(2024, 3, 15, 10, 30)
CST = timezone(timedelta(hours=8))


class ListStore:
    def __init__(self):
        self.recs = []

    def append(self, rec):
        self.recs.append(rec)
        return len(self.recs)


def test_day_entry_is_stored_as_manual_value_with_a_ledger_event():
    store = ListStore()
    seen = []
    seq, rec = manual.enter(store, COAL, records.DAY, "2024-03-14", "35.20", 1, now=NOW, observe=seen.append,
                            who="crew Li")
    assert rec == [records.VALUE, NOW, COAL, records.DAY, manual.cst_timestamp(2024, 3, 14), Decimal(3520, -2),
                   True, records.MANUAL, 1]
    assert store.recs[seq - 1] is rec and seen == [rec]
    ev = store.recs[-1]
    assert ev[0] == records.EVENT and ev[2] == "manual"
    assert "2024-03-14 00:00:00 = 35.20" in ev[3] and "crew Li" in ev[3]


@pytest.mark.parametrize("stat, start, want", [
    (records.DAY, "2024-03-14 00:00:00", "2024-03-14 00:00:00"),
    (records.MONTH, "2024-02", "2024-02-01 00:00:00"),
    (records.YEAR, "2023", "2023-01-01 00:00:00"),
    (records.DAY, manual.cst_timestamp(2024, 3, 1), "2024-03-01 00:00:00"),
])
def test_period_starts_in_every_form(stat, start, want):
    got, _v = manual.check(COAL, stat, start, "1", 1, now=NOW)
    assert timeutil.cst_text(got) == want


@pytest.mark.parametrize("code, stat, start, value, scope, why", [
    ("00-00-0000-010100", records.DAY, "2024-03-14", "1", 1, "16 digits"),
    ("01-00-0000-010100-11", records.DAY, "2024-03-14", "1", 1, "process 00"),
    (COAL, records.REALTIME, "2024-03-14", "1", 1, "real-time"),
    (COAL, 7, "2024-03-14", "1", 1, "statType"),
    (COAL, records.DAY, "2024-03-14 08:00:00", "1", 1, "00:00:00"),
    (COAL, records.MONTH, "2024-03-14", "1", 1, "1st"),
    (COAL, records.YEAR, "2024-03", "1", 1, "1 January"),
    (COAL, records.DAY, "2024-03-16", "1", 1, "not begun"),
    (COAL, records.DAY, "2022-03-14", "1", 1, "typo"),
    (COAL, records.DAY, "2024-02-30", "1", 1, "no such date"),
    (COAL, records.DAY, "14/03/2024", "1", 1, "yyyy-MM-dd"),
    (COAL, records.DAY, "2024-03-14", "-3", 1, "negative"),
    (COAL, records.DAY, "2024-03-14", "1e3", 1, "decimal"),
    (COAL, records.DAY, "2024-03-14", "3.", 1, "after the decimal point"),
    (COAL, records.DAY, "2024-03-14", "1.1234567", 1, "decimals"),
    (COAL, records.DAY, "2024-03-14", "nan", 1, "decimal"),
])
def test_refused_entries_say_why(code, stat, start, value, scope, why):
    store = ListStore()
    with pytest.raises(manual.ManualError) as e:
        manual.enter(store, code, stat, start, value, scope, now=NOW)
    assert why in str(e.value)
    assert store.recs == []


@given(st.integers(0, 6).flatmap(lambda p: st.decimals(min_value=-10 ** 8, max_value=10 ** 8, places=p,
                                                      allow_nan=False)))
def test_parse_decimal_is_exact(x):
    text = format(x, "f")
    d = manual.parse_decimal(text)
    assert D(d.text()) == x


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)))
def test_cst_timestamp_agrees_with_datetime(dt):
    dt = dt.replace(microsecond=0)
    want = int(dt.replace(tzinfo=CST).timestamp())
    assert manual.cst_timestamp(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second) == want


@pytest.mark.mpy
def test_entries_on_micropython_with_a_controllable_clock():
    code = r"""
import json
from nengjian.values import manual
from nengjian.core import records, timeutil
timeutil.set_source(lambda: %d)
class S:
    def __init__(self):
        self.recs = []
    def append(self, r):
        self.recs.append(r)
        return len(self.recs)
s = S()
out = []
manual.enter(s, "%s", 2, "2024-02", "1200.5", 1)
for args in ((1, "2024-03-16", "1"), (1, "2024-03-14", "x")):
    try:
        manual.enter(s, "%s", args[0], args[1], args[2], 1)
    except manual.ManualError as e:
        out.append(str(e))
r = s.recs[0]
print(json.dumps([r[1], r[3], r[4], r[5].text(), r[6], r[7], s.recs[1][2], out]))
""" % (NOW, COAL, COAL)
    got = json.loads(run_mpy(code, heap="256k").stdout.strip().splitlines()[-1])
    assert got[:7] == [NOW, records.MONTH, manual.cst_timestamp(2024, 2, 1), "1200.5", True, records.MANUAL, "manual"]
    assert "not begun" in got[7][0] and "not a decimal" in got[7][1]
