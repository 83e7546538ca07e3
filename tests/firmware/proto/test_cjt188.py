"""CJ/T 188 codec (firmware/nengjian/proto/cjt188.py) and the simulated CJ/T 188 meter.

Worked frames from public material: a water-meter read and reply (DI sent 1F 90; the published reply
has a wrong checksum, 08 where the bytes sum to 13) and a heat-meter trace with DI sent 90 1F whose
vendor puts each unit byte before its value (a variant the codec must refuse, not misread).
"""

import os
import select
import time

import pytest
from frame68_cases import assert_bytes_needed_agrees, assert_only_typed_errors, frames_and_noise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpyrun import run_mpy
from nengjian.proto import cjt188 as c
from nengjian.proto import dlt645, dlt645x
from nengjian_host.sim.meters import Cjt188Meter, Dlt645Meter, SimBus, close_pty, open_pty, start
from nengjian_host.sim.meters.cjt188_meter import FIELDS, addr_to_wire, make_frame

WATER_ADDR = "78330011223344"
WATER_WIRE = bytes.fromhex("44332211003378")
WATER_REQUEST = bytes.fromhex("FE FE FE FE 68 10 44 33 22 11 00 33 78 01 03 1F 90 00 80 16")
WATER_REPLY_BODY = bytes.fromhex(
    "68 10 44 33 22 11 00 33 78 81 16 1F 90 00 00 77 66 55 2C 00 77 66 55 2C 31 01 22 11 05 15 20 21 84")
HEAT_REQUEST = bytes.fromhex("FE FE FE FE 68 20 32 41 31 40 00 00 00 01 03 90 1F 01 20 16")
HEAT_UNIT_FIRST_REPLY = bytes.fromhex(
    "FE FE FE FE 68 20 32 41 31 40 00 00 00 81 2E 90 1F 01 08 02 00 00 00 08 02 00 00 00 17 00 00 00 00"
    " 35 00 00 00 00 2C 34 10 00 00 35 25 00 66 25 00 00 00 00 53 00 12 10 07 15 20 00 00 31 16")

# The simulated meter is a thread of this process: on a loaded machine its answer may take seconds.
# The loops end as soon as the reply is whole; this bounds only a meter that never answers.
REPLY_S = 30


def build(fn, *args, **kw):
    out = bytearray(128)
    n = fn(out, *args, **kw)
    return bytes(out[:n])


def with_tail(body, preamble=4):
    return b"\xfe" * preamble + body + bytes([sum(body) & 0xFF, 0x16])


# ---- worked frames ---------------------------------------------------------------------------

def test_water_read_request_matches_public_frame():
    assert build(c.build_read, c.T_COLD_WATER, WATER_ADDR) == WATER_REQUEST
    assert build(c.build_read, 0x10, WATER_WIRE, c.DI_READ, 0, 4, True) == WATER_REQUEST


def test_heat_read_request_high_byte_first():
    assert build(c.build_read, c.T_HEAT, "0040314132", ser=1, di_low_first=False) == HEAT_REQUEST


def test_public_water_reply_has_a_wrong_checksum():
    published = b"\xfe" * 4 + WATER_REPLY_BODY + bytes([0x08, 0x16])
    with pytest.raises(c.ChecksumError):
        c.parse_read(published, None, 0x10, WATER_ADDR)
    assert sum(WATER_REPLY_BODY) & 0xFF == 0x13


def test_water_reply_decoded():
    r = c.parse_read(with_tail(WATER_REPLY_BODY), None, 0x10, WATER_ADDR)
    assert r.meter_type == 0x10 and r.ser == 0
    assert (r.flow, r.flow_unit) == (55667700, c.U_M3)  # 556677.00 m3
    assert (r.settle_flow, r.settle_flow_unit) == (55667700, 0x2C)
    assert r.time == (2015, 5, 11, 22, 1, 31)
    assert r.status == 0x8421
    assert c.status_names(r.status) == ("valve_closed", "status_bit5", "status_bit10", "status_bit15")
    assert r.heat is None and r.supply_temp is None
    assert c.unit_name(r.flow_unit) == "m3"


def test_unit_first_heat_variant_is_refused_not_misread():
    assert sum(HEAT_UNIT_FIRST_REPLY[4:-2]) & 0xFF == HEAT_UNIT_FIRST_REPLY[-2]  # the trace itself is sound
    with pytest.raises(c.BCDError):
        c.parse_read(HEAT_UNIT_FIRST_REPLY, None, c.T_HEAT, "0040314132")


def test_reply_echo_in_either_di_order():
    body = bytearray(WATER_REPLY_BODY)
    body[11], body[12] = 0x90, 0x1F
    assert c.parse_read(with_tail(bytes(body)), None, 0x10, WATER_ADDR).flow == 55667700
    body[11], body[12] = 0x90, 0x10
    with pytest.raises(c.UnexpectedReply):
        c.parse_read(with_tail(bytes(body)), None, 0x10, WATER_ADDR)


def test_short_water_reply_accepted():
    reply = make_frame(0x10, WATER_WIRE, 0x81, bytes.fromhex("1F90 05 00123400 2C"))
    r = c.parse_read(reply, None, 0x10, WATER_ADDR)
    assert (r.flow, r.ser, r.settle_flow, r.time, r.status) == (341200, 5, None, None, None)
    with pytest.raises(c.UnexpectedReply):
        c.parse_read(make_frame(0x10, WATER_WIRE, 0x81, bytes.fromhex("1F90 05 001234")), None, 0x10, WATER_ADDR)


def test_time_not_bcd_is_none_but_values_stay():
    data = bytes.fromhex("1F90 00 00776655 2C 00776655 2C FFFFFFFFFFFFFF 0000")
    r = c.parse_read(make_frame(0x10, WATER_WIRE, 0x81, data), None, 0x10, WATER_ADDR)
    assert r.flow == 55667700 and r.time is None and r.status == 0


def test_heat_layout():
    data = bytes.fromhex(
        "1F90 07 78563412 05 00000000 05 50120000 17 34120000 35 10000000 2C 006500 054300 123400 "
        "31012211051520 0400")
    r = c.parse_read(make_frame(0x20, WATER_WIRE, 0x81, data, 3), None, c.T_HEAT, WATER_ADDR)
    assert (r.settle_heat, r.settle_heat_unit) == (12345678, c.U_KWH)  # 123456.78 kWh
    assert (r.heat, r.power, r.power_unit) == (0, 1250, c.U_KW)  # 12.50 kW
    assert (r.flow_rate, r.flow_rate_unit) == (1234, c.U_M3_H)  # 0.1234 m3/h
    assert (r.flow, r.flow_unit) == (10, c.U_M3)
    assert (r.supply_temp, r.return_temp, r.work_hours) == (6500, 4305, 3412)  # 65.00, 43.05 degC, 3412 h
    assert r.time == (2015, 5, 11, 22, 1, 31)
    assert c.status_names(r.status) == ("battery_low",)


def test_read_address():
    frame = build(c.build_read_address, preamble=3)
    body = bytes.fromhex("68 AA AA AA AA AA AA AA AA 03 03 0A 81 00")
    assert frame == with_tail(body, 3)
    reply = make_frame(0x10, WATER_WIRE, 0x83, bytes.fromhex("0A81 00"))
    assert c.parse_address_reply(reply) == (0x10, WATER_ADDR)


def test_abnormal_reply():
    reply = make_frame(0x10, WATER_WIRE, 0xC1, bytes([0x00, 0x05, 0x00]))
    with pytest.raises(c.MeterErrorReply) as e:
        c.parse_read(reply, None, 0x10, WATER_ADDR)
    assert e.value.code == 0x0005 and e.value.names == ("valve_closed", "battery_low")
    assert e.value.control == 0xC1


def test_validation():
    good = with_tail(WATER_REPLY_BODY)
    with pytest.raises(c.AddressMismatch):
        c.parse_read(good, None, 0x30, WATER_ADDR)  # gas meter asked, water meter answered
    with pytest.raises(c.AddressMismatch):
        c.parse_read(good, None, 0x10, "78330011223345")
    assert c.parse_read(good, None, c.T_ANY, c.ADDR_WILDCARD).flow == 55667700
    assert c.parse_read(good, None, None, None).flow == 55667700
    with pytest.raises(c.UnexpectedReply):
        c.parse_read(WATER_REQUEST, None, 0x10, WATER_ADDR)  # direction: our own request
    with pytest.raises(c.UnexpectedReply):
        c.parse_reply(good, None, 0x10, WATER_ADDR, c.C_READ_ADDR)
    bad_end = good[:-1] + b"\x17"
    with pytest.raises(c.FrameError):
        c.parse_read(bad_end, None, 0x10, WATER_ADDR)
    for k in range(len(good)):
        with pytest.raises(c.IncompleteFrame):
            c.parse_read(good[:k], None, 0x10, WATER_ADDR)


def test_errors_are_one_hierarchy():
    assert c.FrameError is dlt645.FrameError and c.MeterErrorReply is dlt645.MeterErrorReply
    assert issubclass(c.ChecksumError, ValueError)


def test_bytes_needed_prefixes():
    frame = with_tail(WATER_REPLY_BODY)
    b = bytearray(frame) + bytearray(8)
    for k in range(len(frame) + 1):
        need = c.bytes_needed(b, k)
        have = k - 4
        if have >= 11:
            assert need == len(frame) - k
        else:
            assert 0 < need <= max(c.MIN_FRAME, len(frame) - k)
    assert c.bytes_needed(b, len(frame)) == 0
    with pytest.raises(c.FrameError):
        c.bytes_needed(bytearray(frame[:20]), 20)


def test_units():
    assert [c.unit_name(u) for u in (0x02, 0x05, 0x08, 0x0A, 0x01, 0x0B, 0x0E, 0x11, 0x13, 0x14, 0x17,
                                      0x1A, 0x29, 0x2C, 0x32, 0x35)] == [
        "Wh", "kWh", "MWh", "MWh*100", "J", "kJ", "MJ", "GJ", "GJ*100", "W", "kW", "MW", "L", "m3",
        "L/h", "m3/h"]
    assert c.unit_name(0x00) is None


# ---- property tests --------------------------------------------------------------------------

addresses = st.integers(0, 10 ** 14 - 1).map(lambda v: "%014d" % v).filter(lambda a: a != "9" * 14)
meter_types = st.sampled_from([0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x30])


@st.composite
def field_values(draw):
    return {name: draw(st.integers(0, 10 ** (2 * n) - 1)) for name, (n, _) in FIELDS.items()}


@given(meter_types, addresses, field_values(), st.integers(0, 0xFFFF), st.booleans(), st.integers(0, 255))
def test_round_trip_through_simulated_meter(t, addr, raws, status, low_first, ser):
    meter = Cjt188Meter(t, addr, status=status, clock=lambda: 0.0, now=lambda: (2024, 2, 29, 23, 59, 58))
    for name, raw in raws.items():
        meter.set_raw(name, raw)
    reply = meter.respond(build(c.build_read, t, addr, ser=ser, di_low_first=low_first))
    assert reply[reply.index(0x68) + 11:][:2] == (b"\x1f\x90" if low_first else b"\x90\x1f")
    r = c.parse_read(reply, None, t, addr)
    assert (r.meter_type, r.ser, r.status, r.time) == (t, ser, status, (2024, 2, 29, 23, 59, 58))
    assert (r.flow, r.flow_unit) == (raws["flow"], c.U_M3)
    if c.is_heat(t):
        assert (r.heat, r.settle_heat, r.power, r.flow_rate) == (
            raws["heat"], raws["settle_heat"], raws["power"], raws["flow_rate"])
        assert (r.supply_temp, r.return_temp, r.work_hours) == (
            raws["supply_temp"], raws["return_temp"], raws["work_hours"])
        assert r.heat_unit == c.U_KWH and r.flow_rate_unit == c.U_M3_H
    else:
        assert r.settle_flow == raws["settle_flow"] and r.heat is None


@st.composite
def frames(draw):
    t = draw(st.sampled_from([0x10, 0x20, 0x30, 0xAA]))
    ctrl = draw(st.sampled_from([0x81, 0xC1, 0x83, 0x01, 0x03]))
    data = draw(st.sampled_from([b"\x1f\x90", b"\x90\x1f", b"\x0a\x81", b""])) + draw(st.binary(max_size=50))
    return make_frame(t, WATER_WIRE, ctrl, data, draw(st.integers(0, 4)))


FRAMES_AND_NOISE = frames_and_noise(frames())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(FRAMES_AND_NOISE)
def test_any_bytes_give_a_value_or_a_typed_error(data):
    assert_only_typed_errors(c, (lambda b: c.parse_read(b, None, 0x10, WATER_ADDR),
                                 lambda b: c.parse_read(b, None, None, None),
                                 lambda b: c.parse_read(b, None, 0x20, None, into=c.Reading()),
                                 lambda b: c.parse_address_reply(b)), data)


@settings(max_examples=300)
@given(FRAMES_AND_NOISE)
def test_bytes_needed_agrees_with_parse_on_every_prefix(data):
    assert_bytes_needed_agrees(c, lambda b, k: c.parse_reply(b, k, None, None, c.C_READ), data)


# ---- simulated meter -------------------------------------------------------------------------

def test_sim_silence_rules():
    m = Cjt188Meter(0x10, WATER_ADDR)
    assert m.respond(build(c.build_read, 0x10, "78330011223345")) is None  # other address
    assert m.respond(build(c.build_read, 0x30, WATER_ADDR)) is None  # other type
    assert m.respond(build(c.build_read, 0x10, "9" * 14)) is None  # broadcast
    assert m.respond(build(c.build_read_address)) is None  # wildcard, not the only meter
    assert m.respond(build(c.build_read, 0x10, c.ADDR_WILDCARD)) is None
    assert m.respond(with_tail(WATER_REPLY_BODY)) is None  # another meter's reply
    assert m.respond(WATER_REQUEST[:-2] + b"\x00\x16") is None  # bad checksum
    assert m.respond(build(c.build_read, c.T_ANY, WATER_ADDR)) is not None  # AA type, own address
    m.online = False
    assert m.respond(WATER_REQUEST) is None


def test_sim_only_meter_answers_wildcard_and_address():
    m = Cjt188Meter(0x10, WATER_ADDR, values={"flow": "12.34"}, only_meter=True)
    assert c.parse_address_reply(m.respond(build(c.build_read_address))) == (0x10, WATER_ADDR)
    r = c.parse_read(m.respond(build(c.build_read, c.T_ANY, c.ADDR_WILDCARD)), None, c.T_ANY, c.ADDR_WILDCARD)
    assert r.flow == 1234


def test_sim_picky_di_order():
    m = Cjt188Meter(0x10, WATER_ADDR, di_order="high_first")
    assert m.respond(build(c.build_read, 0x10, WATER_ADDR)) is None
    assert m.respond(build(c.build_read, 0x10, WATER_ADDR, di_low_first=False)) is not None


def test_sim_unknown_request_gets_abnormal_reply():
    m = Cjt188Meter(0x10, WATER_ADDR, status=0x0004)
    out = bytearray(32)
    n = c.build_read(out, 0x10, WATER_ADDR, di=0x1234)
    with pytest.raises(c.MeterErrorReply) as e:
        c.parse_read(m.respond(out[:n]), None, 0x10, WATER_ADDR, di=0x1234)
    assert e.value.names == ("battery_low",)


def test_sim_counters_advance_and_roll_over():
    now = [0.0]
    m = Cjt188Meter(0x10, WATER_ADDR, values={"flow": "999999.98"}, rates={"flow": "0.01"}, clock=lambda: now[0])
    assert c.parse_read(m.respond(WATER_REQUEST), None, 0x10, WATER_ADDR).flow == 99999998
    now[0] = 3.0
    assert c.parse_read(m.respond(WATER_REQUEST), None, 0x10, WATER_ADDR).flow == 1


def test_mixed_bus_on_one_pty():
    master, path = open_pty()
    meters = [Cjt188Meter(0x10, WATER_ADDR, values={"flow": "5"}),
              Dlt645Meter("123456789012", {0x00010000: "1234.56"})]
    thread, stop = start(master, meters)
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    b = bytearray(256)

    def exchange(request, need_fn):
        os.write(fd, request)
        n = 0
        deadline = time.monotonic() + REPLY_S
        while time.monotonic() < deadline and (n == 0 or need_fn(b, n)):
            try:
                chunk = os.read(fd, 256 - n)
            except BlockingIOError:
                chunk = b""
            b[n:n + len(chunk)] = chunk
            n += len(chunk)
        return bytes(b[:n])

    os.set_blocking(fd, False)
    try:
        r = c.parse_read(exchange(WATER_REQUEST, c.bytes_needed), None, 0x10, WATER_ADDR)
        assert r.flow == 500
        req = bytearray(32)
        n = dlt645.build_read(req, "123456789012", 0x00010000)
        reply = exchange(bytes(req[:n]), dlt645.bytes_needed)
        assert dlt645x.parse_read(reply, None, "123456789012", 0x00010000)[0] == 123456
    finally:
        stop.set()
        thread.join(2)
        os.close(fd)
        close_pty(master)


def test_simbus_on_a_device_path():
    gateway, meters_end = os.openpty()
    path = os.ttyname(meters_end)
    try:
        with SimBus(path, [Cjt188Meter(0x30, WATER_ADDR, values={"flow": "42.5"})]):
            os.write(gateway, build(c.build_read, c.T_GAS, WATER_ADDR))
            b = bytearray(128)
            n = 0
            deadline = time.monotonic() + REPLY_S
            while time.monotonic() < deadline and (n == 0 or c.bytes_needed(b, n)):
                r, _, _ = select.select([gateway], [], [], 0.05)
                if r:
                    chunk = os.read(gateway, 128 - n)
                    b[n:n + len(chunk)] = chunk
                    n += len(chunk)
            assert c.parse_read(b, n, c.T_GAS, WATER_ADDR).flow == 4250
    finally:
        os.close(gateway)
        os.close(meters_end)


def test_addr_to_wire_agrees():
    assert addr_to_wire(WATER_ADDR) == WATER_WIRE


# ---- on MicroPython --------------------------------------------------------------------------

@pytest.mark.mpy
def test_codec_on_micropython():
    code = """
from nengjian.proto import cjt188 as c
b = bytearray(64)
n = c.build_read(b, 0x10, '78330011223344')
assert bytes(b[:n]) == bytes.fromhex('FEFEFEFE6810443322110033780103' + '1F90008016')
n = c.build_read(b, 0x20, '0040314132', ser=1, di_low_first=False)
assert bytes(b[:n]) == bytes.fromhex('FEFEFEFE6820324131400000000103901F012016')
rep = bytes.fromhex('FEFEFEFE68104433221100337881161F9000007766552C007766552C3101221105152021841316')
assert c.bytes_needed(rep) == 0
r = c.parse_read(rep, None, 0x10, '78330011223344', into=c.Reading())
assert (r.flow, r.flow_unit, r.time, r.status) == (55667700, 0x2C, (2015, 5, 11, 22, 1, 31), 0x8421)
try:
    c.parse_read(rep[:-2] + b'\\x08\\x16', None, 0x10, '78330011223344')
    raise SystemExit('no error')
except c.ChecksumError:
    pass
print('ok', c.unit_name(r.flow_unit))
"""
    assert run_mpy(code, heap="256k").stdout.strip() == "ok m3"
