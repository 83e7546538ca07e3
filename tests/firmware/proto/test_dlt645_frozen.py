"""DL/T 645-2007 frozen data, meter clock and broadcast time sync in the codec
(firmware/nengjian/proto/dlt645_frozen.py, frames by dlt645.py), against the simulated meter's memory (an independent reading
of SPEC section 5)."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpyrun import run_mpy
from nengjian.proto import dlt645 as d
from nengjian.proto import dlt645_frozen as f
from nengjian_host.sim.meters import Dlt645Meter

ADDR = "123456789012"
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, tzinfo=CST).timestamp()


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def ask(meter, di):
    out = bytearray(64)
    n = d.build_read(out, ADDR, di)
    return meter.respond(bytes(out[:n]))


def meter_at(start, offset=0.0, **kw):
    clock = Clock(start)
    m = Dlt645Meter(ADDR, {0x00010000: "1234.56", 0x00010100: "11.00"}, rates={0x00010000: 0.01}, clock=clock,
                    memory=True, clock_offset=offset, **kw)
    return m, clock


def test_frozen_di_counts_back_from_the_latest():
    assert f.frozen_di(0x05040001, 1) == 0x05040001
    assert f.frozen_di(0x05040001, 3) == 0x05040003
    assert f.frozen_di(0x05060000, 1) == 0x05060000  # a meter that numbers the latest 00
    assert f.frozen_di(0x00010001, 12) == 0x0001000C
    for bad in (0, 256):
        with pytest.raises(ValueError):
            f.frozen_di(0x05040001, bad)
    out = bytearray(32)
    n = f.build_read_frozen(out, ADDR, 0x05040101, 2)
    assert bytes(out[:n]).hex() == bytes.fromhex("FEFEFEFE68129078563412681104" "35343738").hex() + "%02x16" % (
        sum(bytes.fromhex("68129078563412681104" "35343738")) & 0xFF)


@settings(max_examples=60, deadline=None)
@given(hours=st.integers(1, 40), minutes=st.integers(1, 59), offset=st.integers(-90, 90), n=st.integers(1, 12))
def test_freeze_time_and_energy_read_back_as_the_meter_froze_them(hours, minutes, offset, n):
    m, clock = meter_at(T0 + 10)
    m.clock_offset = offset
    clock.t = T0 + hours * 3600 + minutes * 60
    hourly = ask(m, f.frozen_di(0x05040001, n))
    if n > len(m.freezes["hourly"]):
        with pytest.raises(d.MeterErrorReply) as e:
            f.parse_freeze_time(hourly, len(hourly), ADDR, f.frozen_di(0x05040001, n))
        assert "no_such_data" in e.value.names
        return
    b, raw = m.freezes["hourly"][n - 1]
    t = datetime.fromtimestamp(b, CST)
    assert f.parse_freeze_time(hourly, len(hourly), ADDR, f.frozen_di(0x05040001, n)) == (
        t.year, t.month, t.day, t.hour, t.minute)
    energy = ask(m, f.frozen_di(0x05040101, n))
    assert f.parse_frozen_energy(energy, len(energy), ADDR, f.frozen_di(0x05040101, n)) == (raw, 2)
    assert m.frozen("hourly", b) * 100 == raw
    # the daily freeze's block: total first, then tariffs
    if m.freezes["daily"]:
        daily = ask(m, 0x05060101)
        assert f.parse_frozen_energy(daily, len(daily), ADDR, 0x05060101) == (m.freezes["daily"][0][1], 2)
        assert len(daily) == 4 + 12 + 4 + 20  # preamble, frame, DI, five totals


@settings(max_examples=60, deadline=None)
@given(seconds=st.integers(0, 400 * 86400), offset=st.integers(-3600, 3600))
def test_meter_clock_reads_as_its_own_time(seconds, offset):
    m, _clock = meter_at(T0 + seconds, offset)
    date = ask(m, f.DI_CLOCK_DATE)
    tm = ask(m, f.DI_CLOCK_TIME)
    t = datetime.fromtimestamp(int(T0 + seconds + offset), CST)
    assert f.parse_clock(date, len(date), tm, len(tm), ADDR) == (t.year, t.month, t.day, t.hour, t.minute, t.second)


@given(st.binary(min_size=5, max_size=5))
def test_garbage_freeze_time_raises_only_typed_errors(b):
    try:
        t = f.decode_freeze_time(b)
    except (d.BCDError, d.UnexpectedReply):  # the codec's own error tree
        return
    assert 1 <= t[1] <= 12 and 1 <= t[2] <= 31 and t[3] <= 23 and t[4] <= 59


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 86399), dev=st.integers(-600, 600))
def test_the_simulated_meter_takes_a_broadcast_only_as_spec_says(start, dev):
    m, clock = meter_at(T0 + start, offset=-dev)
    out = bytearray(32)
    sent = datetime.fromtimestamp(int(clock.t), CST)
    n = d.build_time_sync(out, (sent.year, sent.month, sent.day, sent.hour, sent.minute, sent.second))
    assert m.respond(bytes(out[:n])) is None  # a broadcast gets no reply
    local = (T0 + start - dev) - T0  # the meter's time of day before the sync
    taken = abs(dev) <= 300 and 300 <= local % 86400 <= 86100
    assert m.syncs == (1 if taken else 0)
    assert abs(m.meter_time() - int(clock.t)) < 1 if taken else m.clock_offset == -dev
    m.respond(bytes(out[:n]))
    assert m.syncs <= 1  # at most once a day


def test_frozen_reads_on_micropython():
    m, clock = meter_at(T0 - 7200 + 10)
    clock.t = T0 + 5 * 3600 + 30
    replies = {di: ask(m, di).hex() for di in (0x05040001, 0x05040101, 0x05060001, 0x05060101,
                                               f.DI_CLOCK_DATE, f.DI_CLOCK_TIME)}
    code = r"""
from nengjian.proto import dlt645 as d
from nengjian.proto import dlt645_frozen as f
R = %r
def b(di):
    x = bytes.fromhex(R[di])
    return x, len(x)
print(f.parse_freeze_time(*b(0x05040001), %r, 0x05040001))
print(f.parse_frozen_energy(*b(0x05040101), %r, 0x05040101))
print(f.parse_freeze_time(*b(0x05060001), %r, 0x05060001))
print(f.parse_frozen_energy(*b(0x05060101), %r, 0x05060101))
print(f.parse_clock(*(b(f.DI_CLOCK_DATE) + b(f.DI_CLOCK_TIME) + (%r,))))
""" % (replies, ADDR, ADDR, ADDR, ADDR, ADDR)
    lines = run_mpy(code, heap="256k").stdout.split("\n")
    assert lines[0].strip() == "(2026, 11, 20, 5, 0)"
    assert lines[1].strip() == "(%d, 2)" % m.freezes["hourly"][0][1]
    assert lines[2].strip() == "(2026, 11, 20, 0, 0)"
    assert lines[3].strip() == "(%d, 2)" % m.freezes["daily"][0][1]
    assert lines[4].strip() == "(2026, 11, 20, 5, 0, 30)"
