"""DL/T 645-2007/-1997 codec (firmware/nengjian/proto/dlt645.py) and the simulated 645 meter.

Worked frames come from SPEC section 5 (checked here byte for byte, checksums recomputed) and, for
1997, from a public device manual's trace (68 03 00 00 00 00 00 68 01 02 44 E9 03 16 reading B611).
Replies in property tests come from the simulated meter, an independent implementation.
"""

import os
import select
import time

import pytest
from frame68_cases import assert_bytes_needed_agrees, assert_only_typed_errors, frames_and_noise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpyrun import run_mpy
from nengjian.proto import dlt645 as d
from nengjian.proto import dlt645x as dx
from nengjian.proto import errors
from nengjian_host.sim.meters import Dlt645Meter, close_pty, open_pty, start
from nengjian_host.sim.meters.dlt645_meter import ITEMS_1997, ITEMS_2007, addr_to_wire, make_frame

ADDR = "123456789012"
WIRE = bytes.fromhex("129078563412")
SPEC_REQUEST = bytes.fromhex("FE FE FE FE 68 12 90 78 56 34 12 68 11 04 33 33 34 33 68 16")
SPEC_REPLY = bytes.fromhex("68 12 90 78 56 34 12 68 91 08 33 33 34 33 89 67 45 33 54 16")
SPEC_READ_ADDRESS = bytes.fromhex("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16")


def buf(size=256):
    return bytearray(size)


def build(fn, *args, **kw):
    out = buf()
    n = fn(out, *args, **kw)
    return bytes(out[:n])


def cs(frame_without_tail):
    return sum(frame_without_tail) & 0xFF


# ---- SPEC worked frames ----------------------------------------------------------------------

def test_spec_frames_checksums_are_right():
    # SPEC's frames are correct: CS = sum from the first 68 to the last data byte.
    assert cs(SPEC_REQUEST[4:-2]) == SPEC_REQUEST[-2] == 0x68
    assert cs(SPEC_REPLY[:-2]) == SPEC_REPLY[-2] == 0x54
    assert cs(SPEC_READ_ADDRESS[4:-2]) == SPEC_READ_ADDRESS[-2] == 0xDF


def test_build_read_matches_spec():
    assert build(d.build_read, ADDR, d.DI_FORWARD_ACTIVE) == SPEC_REQUEST
    assert build(d.build_read, WIRE, 0x00010000) == SPEC_REQUEST
    assert build(d.build_read, ADDR, 0x00010000, preamble=False) == SPEC_REQUEST[4:]


def test_parse_spec_reply_is_1234_56_kwh():
    raw, decimals, more = dx.parse_read(SPEC_REPLY, None, ADDR, 0x00010000)
    assert (raw, decimals, more) == (123456, 2, False)
    assert dx.scaled(raw, decimals) == pytest.approx(1234.56)


def test_build_read_address_matches_spec():
    assert build(d.build_read_address) == SPEC_READ_ADDRESS


def test_read_address_reply():
    reply = make_frame(WIRE, 0x93, WIRE, preamble=2)
    assert d.parse_address_reply(reply) == ADDR
    other = make_frame(WIRE, 0x93, bytes.fromhex("010000000000"))
    with pytest.raises(d.UnexpectedReply):
        d.parse_address_reply(other)


def test_time_sync_is_ss_mm_hh_dd_mm_yy_low_first():
    frame = build(d.build_time_sync, (2025, 3, 4, 5, 6, 7, 1, 63), preamble=False)
    body = bytes.fromhex("68 99 99 99 99 99 99 68 08 06 3A 39 38 37 36 58")
    assert frame == body + bytes([cs(body), 0x16])
    with pytest.raises(ValueError):
        build(d.build_time_sync, (2025, 13, 4, 5, 6, 7))


def test_read_next_frame():
    frame = build(d.build_read_next, ADDR, 0x00010000, 2, preamble=False)
    body = bytes.fromhex("68 12 90 78 56 34 12 68 12 05 33 33 34 33 35")
    assert frame == body + bytes([cs(body), 0x16])


def test_build_frame_generic():
    assert build(dx.build_frame, ADDR, 0x11, bytes.fromhex("00000100")) == SPEC_REQUEST


# ---- 1997 ------------------------------------------------------------------------------------

def test_1997_public_trace():
    assert build(d.build_read97, "000000000003", 0xB611, preamble=0) == bytes.fromhex(
        "68 03 00 00 00 00 00 68 01 02 44 E9 03 16")
    reply = bytes.fromhex("68 03 00 00 00 00 00 68 81 04 44 E9 33 34 EC 16")
    assert dx.parse_read97(reply, None, "3", 0xB611) == (100, 0, False)


def test_1997_forward_energy_request():
    frame = build(d.build_read97, ADDR, 0x9010, preamble=False)
    body = bytes.fromhex("68 12 90 78 56 34 12 68 01 02 43 C3")
    assert frame == body + bytes([cs(body), 0x16])


def test_1997_error_names():
    reply = make_frame(WIRE, 0xC1, bytes([0x02]))
    with pytest.raises(d.MeterErrorReply) as e:
        dx.parse_read97(reply, None, ADDR, 0x9010)
    assert e.value.names == ("wrong_di",)


# ---- error replies and validation ------------------------------------------------------------

@pytest.mark.parametrize("code,names", [
    (0x01, ("other",)),
    (0x02, ("no_such_data",)),
    (0x04, ("unauthorised",)),
    (0x08, ("baud_unchangeable",)),
    (0x10, ("too_many_year_zones",)),
    (0x20, ("too_many_day_periods",)),
    (0x40, ("too_many_tariffs",)),
    (0x06, ("no_such_data", "unauthorised")),
])
def test_error_reply_decoded(code, names):
    reply = make_frame(WIRE, 0xD1, bytes([code]), preamble=4)
    with pytest.raises(d.MeterErrorReply) as e:
        dx.parse_read(reply, None, ADDR, 0x00010000)
    assert e.value.code == code
    assert e.value.names == names
    assert e.value.control == 0xD1
    assert isinstance(e.value, errors.MeterRefused) and not isinstance(e.value, errors.FrameError)


def test_error_reply_without_byte_is_a_frame_error():
    with pytest.raises(d.UnexpectedReply):
        dx.parse_read(make_frame(WIRE, 0xD1, b""), None, ADDR, 0x00010000)


def mutate(frame, i, value):
    b = bytearray(frame)
    b[i] = value
    return bytes(b)


def test_checksum_error():
    with pytest.raises(d.ChecksumError):
        dx.parse_read(mutate(SPEC_REPLY, 14, 0x8A), None, ADDR, 0x00010000)


def test_missing_end_byte():
    with pytest.raises(d.FrameError):
        dx.parse_read(mutate(SPEC_REPLY, 19, 0x17), None, ADDR, 0x00010000)


def test_direction_bit():
    # our own request (echo) is not a reply
    with pytest.raises(d.UnexpectedReply):
        dx.parse_read(make_frame(WIRE, 0x11, bytes.fromhex("00000100")), None, ADDR, 0x00010000)


def test_address_mismatch_and_wildcards():
    with pytest.raises(d.AddressMismatch):
        dx.parse_read(SPEC_REPLY, None, "123456789013", 0x00010000)
    assert dx.parse_read(SPEC_REPLY, None, d.ADDR_WILDCARD, 0x00010000)[0] == 123456
    assert dx.parse_read(SPEC_REPLY, None, None, 0x00010000)[0] == 123456
    # per-byte wildcard: AA stands for any byte, the others must match
    assert dx.parse_read(SPEC_REPLY, None, "AAAAAAAA9012", 0x00010000)[0] == 123456
    with pytest.raises(d.AddressMismatch):
        dx.parse_read(SPEC_REPLY, None, "AAAAAAAA9013", 0x00010000)


def test_control_and_di_echo_and_length():
    with pytest.raises(d.UnexpectedReply):  # reply to a different function
        d.parse_reply(SPEC_REPLY, None, ADDR, d.C_READ_ADDR)
    with pytest.raises(d.UnexpectedReply):  # DI echo differs
        dx.parse_read(SPEC_REPLY, None, ADDR, 0x00020000)
    short = make_frame(WIRE, 0x91, bytes.fromhex("00000100 563412"))
    with pytest.raises(d.UnexpectedReply):
        dx.parse_read(short, None, ADDR, 0x00010000)
    with pytest.raises(ValueError):  # DI outside the table is the caller's mistake, not the bytes'
        dx.parse_read(SPEC_REPLY, None, ADDR, 0x04000101)


def test_not_bcd():
    bad = make_frame(WIRE, 0x91, bytes.fromhex("00000100 5A341200"))
    with pytest.raises(d.BCDError):
        dx.parse_read(bad, None, ADDR, 0x00010000)


def test_garbage_before_and_after():
    # a stray 68 whose partner 68 is not 7 bytes on is skipped
    noisy = b"\x00\xff\x68\x01" + SPEC_REQUEST[:4] + SPEC_REPLY + b"\x00\x16"
    assert dx.parse_read(noisy, None, ADDR, 0x00010000) == (123456, 2, False)
    assert d.frame_start(noisy) == 8


def test_incomplete():
    for k in range(len(SPEC_REPLY)):
        with pytest.raises(d.IncompleteFrame):
            dx.parse_read(SPEC_REPLY[:k], None, ADDR, 0x00010000)


def test_follow_up_flag_and_read_next():
    more = make_frame(WIRE, 0xB1, bytes.fromhex("00000100 56341200"))
    assert dx.parse_read(more, None, ADDR, 0x00010000) == (123456, 2, True)
    nxt = make_frame(WIRE, 0x92, bytes.fromhex("00000100 56341200 02"))
    assert dx.parse_read(nxt, None, ADDR, 0x00010000, seq=2) == (123456, 2, False)
    with pytest.raises(d.UnexpectedReply):
        dx.parse_read(nxt, None, ADDR, 0x00010000, seq=3)


def test_read_raw_any_di():
    block = make_frame(WIRE, 0x91, bytes.fromhex("00FF0102") + bytes.fromhex("0022 1022 0522"))
    out = bytearray(16)
    n = d.read_raw(block, None, ADDR, 0x0201FF00, out)
    assert bytes(out[:n]) == bytes.fromhex("0022 1022 0522")
    assert [d.decode_bcd(out[i:i + 2], 1) for i in range(0, n, 2)] == [220.0, 221.0, 220.5]


# ---- values, signs, BCD, addresses -----------------------------------------------------------

@pytest.mark.parametrize("di,data,expected", [
    (0x02020100, "341280", (-1234, 3)),  # -1.234 A
    (0x02020100, "341200", (1234, 3)),
    (0x02030000, "563492", (-123456, 4)),  # -12.3456 kW
    (0x02060000, "0085", (-500, 3)),  # PF -0.500
    (0x02010100, "0522", (2205, 1)),  # 220.5 V (no sign bit)
    (0x00000000, "01000080", (-1, 2)),  # combined active energy is signed
    (0x00010000, "99999999", (99999999, 2)),  # forward energy is not
    (0x02800002, "0050", (5000, 2)),  # 50.00 Hz
])
def test_sign_bits_and_formats(di, data, expected):
    plain = bytes([(di >> (8 * k)) & 0xFF for k in range(4)]) + bytes.fromhex(data)
    raw, dec, _ = dx.parse_read(make_frame(WIRE, 0x91, plain), None, ADDR, di)
    assert (raw, dec) == expected


def test_decode_bcd():
    assert d.decode_bcd(bytes.fromhex("56341200"), 2) == pytest.approx(1234.56)
    assert d.decode_bcd(bytes.fromhex("341280"), 3, True) == pytest.approx(-1.234)
    assert d.decode_bcd(bytes.fromhex("341280"), 3, False) == pytest.approx(801.234)
    assert d.decode_bcd(b"\x99", 0) == 99
    with pytest.raises(d.BCDError):
        d.decode_bcd(b"\x1a", 0)


def test_encode_bcd_limits():
    out = bytearray(4)
    d.encode_bcd(out, 0, -1234, 3, True, 0)
    assert bytes(out[:3]) == bytes.fromhex("341280")
    with pytest.raises(ValueError):
        d.encode_bcd(out, 0, 800000, 3, True, 0)  # top digit 8 would collide with the sign bit
    with pytest.raises(ValueError):
        d.encode_bcd(out, 0, -1, 2, False, 0)
    with pytest.raises(ValueError):
        d.encode_bcd(out, 0, 10000, 2, False, 0)


def test_addresses():
    assert d.address_bytes(ADDR) == WIRE
    assert d.address_bytes("1") == bytes.fromhex("010000000000")
    assert d.address_bytes(d.ADDR_WILDCARD) == b"\xaa" * 6
    assert d.decode_address(WIRE) == ADDR
    for bad in ("1234567890123", "12345678901x", "12345678901A", b"\x01"):
        with pytest.raises(ValueError):
            d.address_bytes(bad)


# ---- bytes_needed ----------------------------------------------------------------------------

def test_bytes_needed_every_prefix_of_spec_reply():
    frame = SPEC_REQUEST[:4] + SPEC_REPLY
    b = bytearray(64)
    b[:len(frame)] = frame
    for k in range(len(frame) + 1):
        need = d.bytes_needed(b, k)
        have_from_start = max(0, k - 4)
        if have_from_start >= 10:
            assert need == len(SPEC_REPLY) - have_from_start
        else:
            assert 0 < need <= len(frame) - k or (k < 4 and need == d.MIN_FRAME)
    assert d.bytes_needed(b, len(frame)) == 0


def test_bytes_needed_raises_when_frame_cannot_fit():
    small = bytearray(SPEC_REPLY[:12]) + bytearray(4)
    with pytest.raises(d.FrameError):
        d.bytes_needed(small, 12)
    noise = bytearray(b"\x00" * 8)
    with pytest.raises(d.FrameError):
        d.bytes_needed(noise, 8)
    assert d.bytes_needed(bytearray(b"\x00" * 8 + bytes(64)), 8) == d.MIN_FRAME


# ---- property tests --------------------------------------------------------------------------

def field_raw(draw, nbytes, signed):
    top = 10 ** (2 * nbytes - 1) * 8 - 1 if signed else 10 ** (2 * nbytes) - 1
    return draw(st.integers(-top if signed else 0, top))


@st.composite
def meter_value(draw, table):
    di = draw(st.sampled_from(sorted(table)))
    nbytes, _, signed = table[di]
    return di, field_raw(draw, nbytes, signed)


addresses = st.integers(0, 10 ** 12 - 2).map(lambda v: "%012d" % v)  # 99..99 is the broadcast


@given(meter_value(ITEMS_2007), addresses, st.integers(0, 4))
def test_round_trip_2007_through_simulated_meter(dv, addr, pre):
    di, raw = dv
    meter = Dlt645Meter(addr, preamble=pre, clock=lambda: 0.0)
    meter.set_raw(di, raw)
    reply = meter.respond(build(d.build_read, addr, di, preamble=pre))
    assert d.bytes_needed(bytearray(reply) + bytearray(8), len(reply)) == 0
    assert dx.parse_read(reply, None, addr, di) == (raw, ITEMS_2007[di][1], False)


@given(meter_value(ITEMS_1997), addresses)
def test_round_trip_1997_through_simulated_meter(dv, addr):
    di, raw = dv
    meter = Dlt645Meter(addr, v1997=True, clock=lambda: 0.0)
    meter.set_raw(di, raw)
    reply = meter.respond(build(d.build_read97, addr, di))
    assert dx.parse_read97(reply, None, addr, di) == (raw, ITEMS_1997[di][1], False)


@st.composite
def frames(draw):
    """A valid frame: random address, control and data."""
    addr = bytes(draw(st.sampled_from([WIRE, b"\xaa" * 6, bytes.fromhex("010000000000")])))
    ctrl = draw(st.sampled_from([0x91, 0xB1, 0xD1, 0x93, 0x81, 0xC1, 0x11, 0x92, 0xD2, 0x13]))
    data = draw(st.binary(max_size=12))
    if draw(st.booleans()):
        data = bytes([0, 0, 1, 0]) + data
    return make_frame(addr, ctrl, data, draw(st.integers(0, 4)))


FRAMES_AND_NOISE = frames_and_noise(frames())
PARSERS = [
    lambda b: dx.parse_read(b, None, ADDR, 0x00010000),
    lambda b: dx.parse_read(b, None, None, 0x02020100),
    lambda b: dx.parse_read(b, None, d.ADDR_WILDCARD, 0x00010000, seq=1),
    lambda b: dx.parse_read97(b, None, ADDR, 0x9010),
    lambda b: d.parse_address_reply(b),
    lambda b: d.parse_reply(b, None, None, 0x11),
    lambda b: d.read_raw(b, None, None, 0x00010000, bytearray(32)),
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(FRAMES_AND_NOISE)
def test_any_bytes_give_a_value_or_a_typed_error(data):
    assert_only_typed_errors(d, PARSERS, data)


@settings(max_examples=300)
@given(FRAMES_AND_NOISE)
def test_bytes_needed_agrees_with_parse_on_every_prefix(data):
    assert_bytes_needed_agrees(d, lambda b, k: d.parse_reply(b, k, None, 0x11), data)


@given(meter_value(ITEMS_2007), st.binary(max_size=5).filter(lambda b: 0x68 not in b))
def test_bytes_needed_exact_once_length_known(dv, noise):
    di, raw = dv
    meter = Dlt645Meter(ADDR, preamble=0, clock=lambda: 0.0)
    meter.set_raw(di, raw)
    frame = noise + meter.respond(build(d.build_read, ADDR, di))
    b = bytearray(frame) + bytearray(16)
    for k in range(len(frame) + 1):
        have = k - len(noise)
        need = d.bytes_needed(b, k)
        assert need <= len(frame) - k or have <= 0
        if have >= 10:
            assert need == len(frame) - k


# ---- simulated meter -------------------------------------------------------------------------

def test_sim_meter_silence_rules():
    m = Dlt645Meter(ADDR, {0x00010000: "1234.56"})
    assert m.respond(build(d.build_read, "123456789013", 0x00010000)) is None  # another meter
    assert m.respond(build(d.build_read_address)) is None  # wildcard, not the only meter
    assert m.respond(build(d.build_read, d.ADDR_WILDCARD, 0x00010000)) is None
    assert m.respond(build(dx.build_frame, d.ADDR_BROADCAST, 0x11, bytes.fromhex("00000100"))) is None
    assert m.respond(SPEC_REPLY) is None  # another slave's reply
    assert m.respond(b"\x68\x00\x16") is None
    assert m.respond(mutate(SPEC_REQUEST, 18, 0x00)) is None  # bad checksum
    m.online = False
    assert m.respond(SPEC_REQUEST) is None


def test_sim_meter_bad_checksum_fault():
    m = Dlt645Meter(ADDR, {0x00010000: "1234.56"})
    m.bad_checksum = True
    with pytest.raises(d.ChecksumError):
        dx.parse_read(m.respond(SPEC_REQUEST), None, ADDR, 0x00010000)


def test_sim_meter_only_meter_answers_wildcards():
    m = Dlt645Meter(ADDR, {0x00010000: "1234.56"}, only_meter=True)
    assert d.parse_address_reply(m.respond(build(d.build_read_address))) == ADDR
    reply = m.respond(build(d.build_read, d.ADDR_WILDCARD, 0x00010000))
    assert dx.parse_read(reply, None, d.ADDR_WILDCARD, 0x00010000)[0] == 123456


def test_sim_meter_time_sync_recorded_without_reply():
    m = Dlt645Meter(ADDR)
    assert m.respond(build(d.build_time_sync, (2025, 3, 4, 5, 6, 7))) is None
    assert m.synced_time == (25, 3, 4, 5, 6, 7)


def test_sim_meter_unknown_di_is_no_such_data():
    m = Dlt645Meter(ADDR)
    with pytest.raises(d.MeterErrorReply) as e:
        dx.parse_read(m.respond(SPEC_REQUEST), None, ADDR, 0x00010000)
    assert e.value.names == ("no_such_data",)


def test_sim_meter_counter_advances_and_rolls_over():
    now = [100.0]
    m = Dlt645Meter(ADDR, {0x00010000: "999999.00"}, rates={0x00010000: "0.5"}, clock=lambda: now[0])
    assert dx.parse_read(m.respond(SPEC_REQUEST), None, ADDR, 0x00010000)[0] == 99999900
    now[0] += 1.0
    assert dx.parse_read(m.respond(SPEC_REQUEST), None, ADDR, 0x00010000)[0] == 99999950
    now[0] += 3.0  # 4 s at 0.5 kWh/s: 999999.00 + 2.00 rolls over to 1.00
    assert dx.parse_read(m.respond(SPEC_REQUEST), None, ADDR, 0x00010000)[0] == 100
    m.set(0x00010000, 42)
    assert dx.parse_read(m.respond(SPEC_REQUEST), None, ADDR, 0x00010000)[0] == 4200


def read_reply(fd, timeout=2.0):
    """Read from fd until a complete 645 frame is there (the codec tells how much is missing)."""
    b = bytearray(256)
    n = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if n and d.bytes_needed(b, n) == 0:
            return bytes(b[:n])
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            chunk = os.read(fd, 256 - n)
            b[n:n + len(chunk)] = chunk
            n += len(chunk)
    return bytes(b[:n])


def test_serve_two_meters_on_one_pty():
    master, path = open_pty()
    meters = [Dlt645Meter(ADDR, {0x00010000: "1234.56"}), Dlt645Meter("000000000007", {0x00010000: "7"})]
    thread, stop = start(master, meters)
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, SPEC_REQUEST)
        assert dx.parse_read(read_reply(fd), None, ADDR, 0x00010000)[0] == 123456
        os.write(fd, build(d.build_read, "7", 0x00010000))
        assert dx.parse_read(read_reply(fd), None, "7", 0x00010000)[0] == 700
        os.write(fd, build(d.build_read, "8", 0x00010000))  # nobody: silence
        assert read_reply(fd, timeout=0.3) == b""
        os.write(fd, b"\x00\x68\x01")  # noise, then a good request: still answered
        time.sleep(0.3)
        os.write(fd, SPEC_REQUEST)
        assert dx.parse_read(read_reply(fd), None, ADDR, 0x00010000)[0] == 123456
    finally:
        stop.set()
        thread.join(2)
        os.close(fd)
        close_pty(master)
    assert meters[0].requests == 2 and meters[1].requests == 1


def test_addr_to_wire_agrees():
    assert addr_to_wire(ADDR) == WIRE == d.address_bytes(ADDR)


# ---- on MicroPython --------------------------------------------------------------------------

@pytest.mark.mpy
def test_codec_on_micropython():
    code = """
from nengjian.proto import dlt645 as d
from nengjian.proto import dlt645x as dx
b = bytearray(64)
n = d.build_read(b, '123456789012', 0x00010000)
assert bytes(b[:n]) == bytes.fromhex('FEFEFEFE68129078563412681104333334336816'), bytes(b[:n])
n = d.build_read_address(b)
assert bytes(b[:n]) == bytes.fromhex('FEFEFEFE68AAAAAAAAAAAA681300DF16')
r = bytes.fromhex('68129078563412689108333334338967453354' + '16')
assert dx.parse_read(r, None, '123456789012', 0x00010000) == (123456, 2, False)
for k in range(len(r)):
    assert d.bytes_needed(bytearray(r[:k]) + bytearray(32), k) > 0
assert d.bytes_needed(r) == 0
e = bytes.fromhex('6812907856341268D10135') + bytes([(0x68*2+0x12+0x90+0x78+0x56+0x34+0x12+0xD1+0x01+0x35) & 255, 0x16])
try:
    dx.parse_read(e, None, '123456789012', 0x00010000)
    raise SystemExit('no error')
except d.MeterErrorReply as x:
    assert x.code == 2 and x.names == ('no_such_data',), x.names
try:
    dx.parse_read(r[:-2] + b'\\x00\\x16', None, '123456789012', 0x00010000)
except d.ChecksumError:
    pass
assert dx.parse_read97(bytes.fromhex('6803000000000068810444E93334EC16'), None, '3', 0xB611) == (100, 0, False)
n = d.build_read(b, '123456789012', 0x02020100)
print('ok', d.decode_bcd(b'\\x34\\x12\\x80', 3, True))
"""
    out = run_mpy(code, heap="256k").stdout
    assert out.strip() == "ok -1.234"
