"""Modbus RTU master codec (firmware/nengjian/proto/modbus.py), register decoding
(proto/regvalue.py, meters/modbus_meter.decode_points) and read planning (meters/profile.py).

pymodbus is the independent peer: its RTU framer decodes the requests we build and builds the
replies we parse, so both directions are checked against someone else's reading of the standard.
"""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpyrun import run_mpy
from nengjian.core.decimal import Decimal
from nengjian.meters import profile
from nengjian.meters.modbus_meter import decode_points, to_decimal
from nengjian.proto import errors, modbus, regvalue
from nengjian.proto.crc import crc16
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterResponse,
)

TYPED = (modbus.FrameError, modbus.ModbusException)
SERVER = FramerRTU(DecodePDU(is_server=True))  # decodes requests
CLIENT = FramerRTU(DecodePDU(is_server=False))  # builds/decodes replies


def frame(fn, *args):
    b = bytearray(300)
    n = fn(b, *args)
    return bytes(b[:n])


def pdu_of(request):
    used, pdu = SERVER.handleFrame(request, 0, 0)
    assert used == len(request) and pdu is not None
    return pdu


def reply_bytes(pdu):
    return CLIENT.buildFrame(pdu)


def parse(data, unit, fc, count=0, echo=None):
    start, need = modbus.locate(data, len(data), unit, fc, modbus.data_bytes(fc, count) if count and fc <= 4 else -1)
    assert need == 0
    return modbus.parse_reply(data, start, len(data), unit, fc, count, echo)


# ---- requests against pymodbus -------------------------------------------------------------

def test_crc_known_vector():
    # The most quoted Modbus frame: read one holding register at 0 of unit 1.
    assert frame(modbus.build_read, 1, 3, 0, 1) == bytes.fromhex("010300000001840A")
    assert crc16(bytes.fromhex("0103000000")) == crc16(bytes.fromhex("0103000000"), 0, 5)


@given(st.integers(1, 247), st.sampled_from([1, 2, 3, 4]), st.integers(0, 0xFFFF), st.integers(1, 2000))
def test_read_requests_decode_in_pymodbus(unit, fc, address, count):
    limit = 125 if fc >= 3 else 2000
    if count > limit or address + count > 0x10000:
        with pytest.raises(ValueError):
            frame(modbus.build_read, unit, fc, address, count)
        return
    req = frame(modbus.build_read, unit, fc, address, count)
    pdu = pdu_of(req)
    assert (pdu.dev_id, pdu.function_code, pdu.address, pdu.count) == (unit, fc, address, count)


@given(st.integers(1, 247), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_write_single_decodes_in_pymodbus(unit, address, value):
    pdu = pdu_of(frame(modbus.build_write_single, unit, address, value))
    assert (pdu.dev_id, pdu.function_code, pdu.address, pdu.registers) == (unit, 6, address, [value])


@given(st.integers(1, 247), st.integers(0, 0xFF00), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=123))
def test_write_multiple_decodes_in_pymodbus(unit, address, values):
    pdu = pdu_of(frame(modbus.build_write_multiple, unit, address, values))
    assert (pdu.dev_id, pdu.function_code, pdu.address, pdu.count, pdu.registers) == (
        unit, 16, address, len(values), values)


def test_write_limits():
    with pytest.raises(ValueError):
        frame(modbus.build_write_multiple, 1, 0, [0] * 124)
    with pytest.raises(ValueError):
        frame(modbus.build_write_single, 1, 0, 0x10000)
    with pytest.raises(ValueError):
        frame(modbus.build_read, 248, 3, 0, 1)
    with pytest.raises(ValueError):
        frame(modbus.build_read, 1, 5, 0, 1)
    # negative register values go out as two's complement
    assert frame(modbus.build_write_single, 1, 0, -2)[4:6] == b"\xff\xfe"


# ---- replies built by pymodbus ---------------------------------------------------------------

@given(st.integers(1, 247), st.sampled_from([3, 4]), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125))
def test_register_replies_from_pymodbus(unit, fc, regs):
    cls = ReadHoldingRegistersResponse if fc == 3 else ReadInputRegistersResponse
    data = reply_bytes(cls(dev_id=unit, registers=regs))
    off, n = parse(data, unit, fc, len(regs))
    assert n == 2 * len(regs)
    assert list(struct.unpack(">%dH" % len(regs), data[off:off + n])) == regs


@given(st.integers(1, 247), st.sampled_from([1, 2]), st.lists(st.booleans(), min_size=1, max_size=2000))
def test_bit_replies_from_pymodbus(unit, fc, bits):
    cls = ReadCoilsResponse if fc == 1 else ReadDiscreteInputsResponse
    padded = bits + [False] * (-len(bits) % 8)
    data = reply_bytes(cls(dev_id=unit, bits=padded))
    off, _ = parse(data, unit, fc, len(bits))
    assert [modbus.bit(data, off, i) for i in range(len(bits))] == [int(b) for b in bits]


@pytest.mark.parametrize("code", [1, 2, 3, 4, 6, 11])
@pytest.mark.parametrize("fc", [1, 2, 3, 4, 6, 16])
def test_exception_replies_from_pymodbus_are_typed(fc, code):
    data = reply_bytes(ExceptionResponse(fc, exception_code=code, device_id=7))
    with pytest.raises(modbus.ModbusException) as e:
        parse(data, 7, fc, 1 if fc <= 4 else 0)
    assert e.value.code == code
    assert modbus.EXCEPTION_NAMES[code] in str(e.value)
    # a refusal, never taken for a bad frame (the poller counts them apart)
    assert isinstance(e.value, errors.MeterRefused) and not isinstance(e.value, errors.FrameError)


def test_write_echo_replies_from_pymodbus():
    req = frame(modbus.build_write_single, 3, 0x1234, 0xBEEF)
    data = reply_bytes(WriteSingleRegisterResponse(dev_id=3, address=0x1234, registers=[0xBEEF]))
    assert parse(data, 3, 6, echo=req) == (2, 4)
    req = frame(modbus.build_write_multiple, 3, 0x0100, [1, 2, 3])
    data = reply_bytes(WriteMultipleRegistersResponse(dev_id=3, address=0x0100, count=3))
    assert parse(data, 3, 16, echo=req) == (2, 4)
    bad = reply_bytes(WriteMultipleRegistersResponse(dev_id=3, address=0x0100, count=2))
    with pytest.raises(modbus.WrongFunction):
        parse(bad, 3, 16, echo=req)


# ---- rejections and resynchronisation --------------------------------------------------------

GOOD = reply_bytes(ReadHoldingRegistersResponse(dev_id=1, registers=[0x1234, 0x5678]))


def test_wrong_unit_wrong_function_crc_truncated():
    with pytest.raises(modbus.WrongUnit):
        modbus.parse_reply(GOOD, 0, len(GOOD), 2, 3, 2)
    with pytest.raises(modbus.WrongFunction):
        modbus.parse_reply(GOOD, 0, len(GOOD), 1, 4, 2)
    with pytest.raises(modbus.WrongFunction):  # byte count of another request
        modbus.parse_reply(GOOD, 0, len(GOOD), 1, 3, 3)
    bad = bytearray(GOOD)
    bad[4] ^= 0x40
    with pytest.raises(modbus.CrcError):
        modbus.parse_reply(bad, 0, len(bad), 1, 3, 2)
    for k in range(len(GOOD)):
        with pytest.raises(modbus.Truncated):
            modbus.parse_reply(GOOD[:k], 0, k, 1, 3, 2)
    exc = reply_bytes(ExceptionResponse(3, exception_code=2, device_id=1))
    with pytest.raises(modbus.WrongFunction):  # an exception to another function
        modbus.parse_reply(exc, 0, len(exc), 1, 4)
    with pytest.raises(modbus.CrcError):
        modbus.parse_reply(exc[:-1] + b"\x00", 0, 5, 1, 3)


def test_garbage_before_the_frame_is_skipped():
    noisy = b"\x00\xff\x01\x07\x55" + GOOD
    start, need = modbus.locate(noisy, len(noisy), 1, 3, 4)
    assert (start, need) == (5, 0)
    off, n = modbus.parse_reply(noisy, start, len(noisy), 1, 3, 2)
    assert noisy[off:off + n] == bytes.fromhex("12345678")


def test_noise_that_looks_like_a_frame_start_is_passed_over():
    # "01 03 04" then garbage: a candidate that completes with a bad CRC, then the real reply.
    fake = b"\x01\x03\x04\xde\xad\xbe\xef\x00\x00"
    data = fake + GOOD
    assert modbus.locate(data, len(data), 1, 3, 4) == (len(fake), 0)
    # Only the fake one complete so far: keep reading rather than fail at once.
    part = data[:len(fake) + 4]
    start, need = modbus.locate(part, len(part), 1, 3, 4)
    assert start == len(fake) and need == len(GOOD) - 4


def test_late_reply_of_another_unit_and_own_echo_are_skipped():
    other = reply_bytes(ReadHoldingRegistersResponse(dev_id=2, registers=[9, 9]))
    echo = frame(modbus.build_read, 1, 3, 0, 2)
    data = other + echo + GOOD
    start, need = modbus.locate(data, len(data), 1, 3, 4)
    assert need == 0 and data[start:] == GOOD


def test_only_a_damaged_reply_reports_crc():
    bad = bytearray(GOOD)
    bad[5] ^= 1
    start, need = modbus.locate(bad, len(bad), 1, 3, 4)
    assert (start, need) == (0, modbus.CHECK_FAILED)  # complete, but not a reply until the deadline
    with pytest.raises(modbus.CrcError):
        modbus.parse_reply(bad, start, len(bad), 1, 3, 2)


def test_bytes_needed_on_every_prefix():
    # Before the byte count arrives the framer asks for a minimal frame (5 bytes), then exactly the rest.
    for k in range(len(GOOD) + 1):
        start, need = modbus.locate(GOOD, k, 1, 3, 4)
        assert need == (5 - k if k < 3 else len(GOOD) - k), k
    exc = reply_bytes(ExceptionResponse(3, exception_code=6, device_id=1))
    assert modbus.bytes_needed(exc, 0, 2, 3) == 3
    assert modbus.bytes_needed(exc, 0, 5, 3) == 0
    w = reply_bytes(WriteSingleRegisterResponse(dev_id=1, address=1, registers=[1]))
    assert modbus.bytes_needed(w, 0, 3, 6) == 5


def test_diagnose_names_who_answered():
    other = reply_bytes(ReadHoldingRegistersResponse(dev_id=5, registers=[1]))
    assert isinstance(modbus.diagnose(other, len(other), 1, 3), modbus.WrongUnit)
    assert "unit 5" in str(modbus.diagnose(b"\x00" + other, len(other) + 1, 1, 3))
    fc4 = reply_bytes(ReadInputRegistersResponse(dev_id=1, registers=[1]))
    assert isinstance(modbus.diagnose(fc4, len(fc4), 1, 3), modbus.WrongFunction)
    assert modbus.diagnose(b"\x01\x03\x02\x00", 4, 1, 3) is None


# ---- property: any bytes give a value or a typed error ---------------------------------------

@st.composite
def replies_and_noise(draw):
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    unit = draw(st.sampled_from([1, 2, 247]))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        data = reply_bytes(ReadHoldingRegistersResponse(dev_id=unit, registers=draw(
            st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=20))))
    elif kind == 1:
        data = reply_bytes(ReadCoilsResponse(dev_id=unit, bits=[True] * 8 * draw(st.integers(1, 4))))
    elif kind == 2:
        data = reply_bytes(ExceptionResponse(draw(st.sampled_from([1, 3, 6, 16])),
                                             exception_code=draw(st.integers(0, 255)), device_id=unit))
    else:
        data = reply_bytes(WriteSingleRegisterResponse(dev_id=unit, address=1, registers=[2]))
    data = bytearray(draw(st.binary(max_size=8)) + data + draw(st.binary(max_size=8)))
    for _ in range(draw(st.integers(0, 2))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))])


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(replies_and_noise(), st.sampled_from([1, 2, 3, 4, 6, 16]), st.integers(0, 10))
def test_any_bytes_give_a_value_or_a_typed_error(data, fc, count):
    n = len(data)
    for start in range(n + 1):
        try:
            modbus.parse_reply(data, start, n, 1, fc, count if fc <= 4 else 0, b"\x01\x06\x00\x01\x00\x02")
        except TYPED:
            pass
    start, need = modbus.locate(data, n, 1, fc, modbus.data_bytes(fc, count) if fc <= 4 and count else -1)
    assert 0 <= start <= n and (need >= 0 or need == modbus.CHECK_FAILED)
    if need in (0, modbus.CHECK_FAILED) and start < n:
        try:
            off, ln = modbus.parse_reply(data, start, n, 1, fc, count if fc <= 4 else 0)
            assert start < off <= off + ln <= n
        except TYPED:
            pass
    assert modbus.diagnose(data, n, 1, fc) is None or isinstance(modbus.diagnose(data, n, 1, fc), modbus.FrameError)


# ---- register decoding, every type and word order --------------------------------------------

TYPES = ["u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64"]
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def _value_strategy(t):
    if t[0] == "f":
        width = 32 if t == "f32" else 64
        return st.floats(allow_nan=False, allow_infinity=False, width=width)
    bits = regvalue.SIZES[t] * 8
    if t[0] == "u":
        return st.integers(0, 2 ** bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@st.composite
def typed_values(draw):
    t = draw(st.sampled_from(TYPES))
    return t, draw(st.sampled_from(ORDERS)), draw(_value_strategy(t))


@given(typed_values(), st.binary(max_size=6))
def test_encode_decode_round_trip(tv, prefix):
    t, order, v = tv
    buf = prefix + regvalue.encode(v, t, order)
    assert regvalue.decode(buf, len(prefix), t, order) == v


def test_word_orders_by_hand():
    # 0x12345678 as meters send it in the four orders
    for order, wire in (("ABCD", "12345678"), ("CDAB", "56781234"), ("BADC", "34127856"), ("DCBA", "78563412")):
        assert regvalue.decode(bytes.fromhex(wire), 0, "u32", order) == 0x12345678
    # 64-bit: the four words reversed for CDAB
    assert regvalue.decode(bytes.fromhex("7788556633441122"), 0, "u64", "CDAB") == 0x1122334455667788
    assert regvalue.decode(bytes.fromhex("3F800000"), 0, "f32") == 1.0
    assert regvalue.decode(bytes.fromhex("0000803F"), 0, "f32", "DCBA") == 1.0
    assert regvalue.decode(bytes.fromhex("FFFE"), 0, "s16") == -2
    assert regvalue.decode(bytes.fromhex("FEFF"), 0, "s16", "BADC") == -2


def _points(spec, base=0):
    prof = {"id": "t", "protocol": "modbus-rtu", "max_registers": 125, "points": spec}
    profile.check(prof)
    blocks = profile.plan_modbus(prof, sorted(spec))
    assert len(blocks) == 1
    return blocks[0]


def decode(spec, regs_bytes):
    blk = _points(spec)
    return decode_points(regs_bytes, 0, blk.points, {})


@pytest.mark.parametrize("t,order,raw,decimals,mult,expected", [
    ("u16", "ABCD", 12345, 2, 1, Decimal(12345, -2)),
    ("s16", "ABCD", -12345, 1, 1, Decimal(-12345, -1)),
    ("u32", "CDAB", 123456789, 2, 1, Decimal(123456789, -2)),
    ("s32", "DCBA", -5, 3, 1, Decimal(-5, -3)),
    ("u64", "BADC", 2 ** 63 + 7, 0, 1, Decimal(2 ** 63 + 7, 0)),
    ("s64", "CDAB", -(2 ** 40), 4, 1, Decimal(-(2 ** 40), -4)),
    ("u32", "ABCD", 1234, 2, 80, Decimal(98720, -2)),  # CT ratio 80
    ("f32", "ABCD", 1234.5625, 2, 1, Decimal(123456, -2)),
    ("f32", "CDAB", -0.0078125, 3, 1, Decimal(-8, -3)),
    ("f64", "DCBA", 98765.4321, 4, 1, Decimal(987654321, -4)),
    ("f64", "ABCD", 2.5, 0, 1, Decimal(2, 0)),  # rounds half to even
])
def test_every_type_with_decimals_and_multiplier(t, order, raw, decimals, mult, expected):
    spec = {"p": {"fc": 3, "address": 0, "type": t, "order": order, "decimals": decimals, "multiplier": mult}}
    assert decode(spec, regvalue.encode(raw, t, order))["p"] == expected


def test_scale_offset_and_plus_part():
    # float holding 0.1 V counts, shown with one decimal
    spec = {"v": {"fc": 3, "address": 0, "type": "f32", "scale": -1, "decimals": 1}}
    assert decode(spec, regvalue.encode(2205.0, "f32"))["v"] == Decimal(2205, -1)
    # integer Wh shown as kWh with 3 decimals: exact
    spec = {"e": {"fc": 3, "address": 0, "type": "u32", "scale": -3, "decimals": 3}}
    assert decode(spec, regvalue.encode(1234567, "u32"))["e"] == Decimal(1234567, -3)
    # temperature in 0.1 degC counts with -40 offset
    spec = {"t": {"fc": 4, "address": 0, "type": "u16", "decimals": 1, "offset": "-40"}}
    assert decode(spec, regvalue.encode(655, "u16"))["t"] == Decimal(255, -1)
    # total = float hundreds part x 100 + float part below 100 (a gas flow totaliser)
    spec = {"q": {"fc": 3, "address": 8, "type": "f32", "scale": 2, "decimals": 2,
                  "plus": {"address": 10, "type": "f32"}}}
    blk = _points(spec)
    assert (blk.address, blk.count) == (8, 4)
    data = regvalue.encode(1234.0, "f32") + regvalue.encode(87.89, "f32")
    assert decode_points(data, 0, blk.points, {})["q"] == Decimal(12348789, -2)
    # integer part u32 (low word first) + fraction f32, as ultrasonic flow meters send it
    spec = {"f": {"fc": 3, "address": 0, "type": "s32", "order": "CDAB", "decimals": 3, "scale": 0,
                  "plus": {"address": 2, "type": "f32", "order": "CDAB"}}}
    data = regvalue.encode(1500, "s32", "CDAB") + regvalue.encode(0.25, "f32", "CDAB")
    assert decode(spec, data)["f"] == Decimal(1500250, -3)


def test_bits_from_fc01():
    spec = {"a": {"fc": 1, "address": 100, "type": "bit"}, "b": {"fc": 1, "address": 109, "type": "bit"}}
    blk = _points(spec)
    assert (blk.fc, blk.address, blk.count) == (1, 100, 10)
    out = decode_points(bytes([0b00000001, 0b00000010]), 0, blk.points, {})
    assert out == {"a": Decimal(1, 0), "b": Decimal(1, 0)}


def test_non_finite_float_is_a_typed_error():
    # A FrameError (so still a ValueError): the poller counts it with the frames, as a meter's fault,
    # not as a driver bug.
    spec = {"p": {"fc": 3, "address": 0, "type": "f32", "decimals": 1}}
    with pytest.raises(errors.FrameError):
        decode(spec, bytes.fromhex("7FC00000"))
    with pytest.raises(errors.FrameError):
        decode(spec, bytes.fromhex("7F800000"))


def test_profile_checks_catch_rounding_and_bad_offsets():
    bad = [
        {"fc": 3, "address": 0, "type": "u32", "scale": -3, "decimals": 2},  # would round an integer
        {"fc": 3, "address": 0, "type": "u16", "decimals": 1, "offset": "0.05"},
        {"fc": 3, "address": 0, "type": "bit"},
        {"fc": 1, "address": 0, "type": "u16"},
        {"fc": 3, "address": 0},
        {"fc": 3, "address": 0, "type": "f32", "decimals": 0, "plus": {"address": 2, "type": "u16", "scale": -1}},
    ]
    for p in bad:
        with pytest.raises(ValueError):
            profile.check({"id": "t", "protocol": "modbus-rtu", "points": {"p": p}})


@given(typed_values(), st.integers(0, 6), st.integers(1, 1000))
def test_integer_decoding_is_exact(tv, decimals, mult):
    t, order, v = tv
    if t[0] == "f":
        return
    out = decode({"p": {"fc": 3, "address": 0, "type": t, "order": order, "decimals": decimals,
                        "multiplier": mult}}, regvalue.encode(v, t, order))["p"]
    assert out == Decimal(v * mult, -decimals)


def test_to_decimal_helper():
    assert to_decimal(1234, 2) == Decimal(1234, -2)
    assert to_decimal(12.345678, 3) == Decimal(12346, -3)
    assert to_decimal(2205.0, 1, scale=-1) == Decimal(2205, -1)


# ---- block planning --------------------------------------------------------------------------

def plan(points, **kw):
    prof = {"id": "t", "protocol": "modbus-rtu", "points": points}
    prof.update(kw)
    profile.check(prof)
    return profile.plan_modbus(prof, sorted(points))


def test_adjacent_registers_merge():
    pts = {"a": {"fc": 3, "address": 0, "type": "u32"}, "b": {"fc": 3, "address": 2, "type": "f32"},
           "c": {"fc": 3, "address": 4, "type": "u16"}}
    blocks = plan(pts)
    assert [(b.fc, b.address, b.count) for b in blocks] == [(3, 0, 5)]
    assert [p[1] for p in blocks[0].points] == [0, 4, 8]


def test_gaps_functions_and_limits_split():
    pts = {"a": {"fc": 3, "address": 0, "type": "u16"}, "b": {"fc": 3, "address": 8, "type": "u16"},
           "c": {"fc": 3, "address": 30, "type": "u16"}, "d": {"fc": 4, "address": 0, "type": "u16"}}
    assert [(b.fc, b.address, b.count) for b in plan(pts)] == [(3, 0, 9), (3, 30, 1), (4, 0, 1)]
    assert [(b.fc, b.address, b.count) for b in plan(pts, max_gap=0)] == [
        (3, 0, 1), (3, 8, 1), (3, 30, 1), (4, 0, 1)]
    assert [(b.address, b.count) for b in plan(pts, max_gap=40, max_registers=10)][:2] == [(0, 9), (30, 1)]


@st.composite
def point_sets(draw):
    n = draw(st.integers(1, 25))
    pts = {}
    for i in range(n):
        t = draw(st.sampled_from(["u16", "u32", "f32", "u64"]))
        pts["p%d" % i] = {"fc": draw(st.sampled_from([3, 4])), "address": draw(st.integers(0, 300)), "type": t}
    return pts, draw(st.integers(4, 125)), draw(st.integers(0, 20))


@settings(max_examples=300)
@given(point_sets())
def test_plan_covers_every_point_within_limits(case):
    pts, limit, gap = case
    blocks = plan(pts, max_registers=limit, max_gap=gap)
    seen = set()
    for b in blocks:
        assert 1 <= b.count <= limit
        for p in b.points:
            name, off = p[0], p[1]
            spec = pts[name]
            assert spec["fc"] == b.fc
            assert 2 * (spec["address"] - b.address) == off
            assert spec["address"] + regvalue.registers(spec["type"]) <= b.address + b.count
            seen.add(name)
    assert seen == set(pts)
    # greedy merging leaves no two neighbouring blocks that could have been one read
    for a, b in zip(blocks, blocks[1:]):
        if a.fc == b.fc:
            end = max(a.address + a.count, b.address + b.count)
            assert b.address - (a.address + a.count) > gap or end - a.address > limit


# ---- on MicroPython --------------------------------------------------------------------------

@pytest.mark.mpy
def test_codec_and_decoding_on_micropython():
    code = r"""
from nengjian.proto import modbus, regvalue
from nengjian.meters import profile
from nengjian.meters.modbus_meter import decode_points
b = bytearray(64)
n = modbus.build_read(b, 1, 3, 0, 1)
assert bytes(b[:n]) == bytes.fromhex('010300000001840A')
good = bytes.fromhex('01030412345678')
from nengjian.proto.crc import crc16
c = crc16(good)
good = good + bytes([c & 255, c >> 8])
noisy = b'\x00\x01\x03\x04\xde\xad\xbe\xef\x00\x00' + good
s, need = modbus.locate(noisy, len(noisy), 1, 3, 4)
assert need == 0 and noisy[s:] == good, (s, need)
off, ln = modbus.parse_reply(noisy, s, len(noisy), 1, 3, 2)
assert regvalue.decode(noisy, off, 'u32') == 0x12345678
for t in ('u16','s16','u32','s32','u64','s64','f32','f64'):
    for o in regvalue.ORDERS:
        v = -3 if t[0] == 's' else (1.5 if t[0] == 'f' else 7)
        assert regvalue.decode(regvalue.encode(v, t, o), 0, t, o) == v, (t, o)
prof = {'id': 't', 'protocol': 'modbus-rtu', 'points': {
    'e': {'fc': 3, 'address': 0, 'type': 'u32', 'order': 'CDAB', 'decimals': 2, 'multiplier': 40},
    'q': {'fc': 3, 'address': 2, 'type': 'f32', 'scale': 2, 'decimals': 2, 'plus': {'address': 4, 'type': 'f32'}}}}
profile.check(prof)
blk = profile.plan_modbus(prof, ['e', 'q'])[0]
data = regvalue.encode(123456, 'u32', 'CDAB') + regvalue.encode(1234.0, 'f32') + regvalue.encode(87.89, 'f32')
out = decode_points(data, 0, blk.points, {})
print(out['e'].text(), out['q'].text())
try:
    modbus.parse_reply(good, 0, len(good), 2, 3, 2)
except modbus.WrongUnit as e:
    print('typed', e)
"""
    assert run_mpy(code, heap="256k").stdout.split("\n")[:2] == ["49382.40 123487.89", "typed reply from unit 1, asked 2"]
