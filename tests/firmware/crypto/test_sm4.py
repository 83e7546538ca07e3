"""SM4 (firmware/nengjian/crypto/sm4.py) against the standard's example and against the `gmssl` package.

CPython runs the plain kernel with hypothesis; the MicroPython tests run the shipped viper kernel
(and the plain kernel again, there) on cases whose expected values gmssl computed here.

gmssl 3.2.2 behaviour the oracles below depend on (see test_gmssl_oracle_behaviour):
- CryptSM4() pads ECB with PKCS#7 by default (a full block when the length is a multiple of 16);
  with a padding_mode that is neither PKCS7 nor ZERO it does not pad.
- crypt_cbc always pads with PKCS#7 on encryption and always strips on decryption, whatever
  padding_mode says: unpadded CBC is built here from unpadded ECB and XOR.
- Its PKCS#7 strip does not check the padding (a last byte 0 returns b"").
"""

import json
import random
from binascii import hexlify, unhexlify

import pytest
from gmssl import sm4 as gm
from hypothesis import given
from hypothesis import strategies as st
from mpyrun import run_mpy
from nengjian.crypto import sm4

STD_KEY = unhexlify("0123456789abcdeffedcba9876543210")
STD_CIPHER = "681edf34d206965e86b3e94f536e4246"
STD_CIPHER_1M = "595298c7c6fd271f0402f804c33d3f66"


# --- gmssl oracles -------------------------------------------------------------------------------

def gm_ecb(key, data, pad=True):
    c = gm.CryptSM4(padding_mode=gm.PKCS7 if pad else -1)
    c.set_key(key, gm.SM4_ENCRYPT)
    return c.crypt_ecb(data)


def gm_cbc_nopad(key, iv, data):
    c = gm.CryptSM4(padding_mode=-1)
    c.set_key(key, gm.SM4_ENCRYPT)
    out = b""
    prev = iv
    for i in range(0, len(data), 16):
        prev = c.crypt_ecb(bytes(a ^ b for a, b in zip(data[i:i + 16], prev)))
        out += prev
    return out


def gm_cbc_pkcs7(key, iv, data):
    c = gm.CryptSM4()
    c.set_key(key, gm.SM4_ENCRYPT)
    return c.crypt_cbc(iv, data)


def gm_yunnan(secret_key, enterprise_code, pin):
    block = ("%02d" % len(pin) + pin + "F" * (14 - len(pin))).encode()
    return gm_cbc_nopad(secret_key[:16].encode(), enterprise_code[:16].encode(), block).hex()


keys = st.binary(min_size=16, max_size=16)
ivs = st.binary(min_size=16, max_size=16)
blocks_data = st.integers(0, 5).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n))
texts = st.text(max_size=60)
record_values = st.one_of(
    st.text(max_size=40), st.booleans(), st.integers(-(10 ** 12), 10 ** 12),
    st.floats(allow_nan=False, allow_infinity=False))


def test_gmssl_oracle_behaviour():
    k = bytes(16)
    assert len(gm_ecb(k, bytes(16))) == 32  # PKCS#7 adds a whole block
    assert len(gm_ecb(k, bytes(16), pad=False)) == 16
    c = gm.CryptSM4(padding_mode=-1)
    c.set_key(k, gm.SM4_ENCRYPT)
    assert len(c.crypt_cbc(bytes(16), bytes(16))) == 32  # CBC pads regardless of padding_mode
    assert gm_cbc_pkcs7(k, bytes(16), bytes(16))[:16] == gm_cbc_nopad(k, bytes(16), bytes(16))


# --- the standard --------------------------------------------------------------------------------

def test_standard_example():
    c = sm4.SM4(STD_KEY)
    out = bytearray(16)
    c.encrypt_block(STD_KEY, out)
    assert out.hex() == STD_CIPHER
    back = bytearray(16)
    c.decrypt_block(out, back)
    assert bytes(back) == STD_KEY
    c.encrypt_block(back, back)  # in place
    assert back.hex() == STD_CIPHER


def test_sbox_and_round_keys_match_gmssl():
    assert list(sm4.SBOX) == gm.SM4_BOXES_TABLE
    c = gm.CryptSM4()
    c.set_key(STD_KEY, gm.SM4_ENCRYPT)
    assert list(sm4.SM4(STD_KEY)._ctx[:32]) == c.sk


def test_t_table_constant_is_l_of_the_sbox():
    # T_BYTES is written out as a constant (so it stays in ROMFS): recompute it from the S-box.
    def rotl(x, n):
        return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF

    want = bytearray()
    for j in range(4):
        for b in range(256):
            x = gm.SM4_BOXES_TABLE[b] << (24 - 8 * j)
            want += (x ^ rotl(x, 2) ^ rotl(x, 10) ^ rotl(x, 18) ^ rotl(x, 24)).to_bytes(4, "little")
    assert sm4.T_BYTES == bytes(want)


@pytest.mark.slow
def test_standard_example_million_times_cpython():
    c = sm4.SM4(STD_KEY)
    buf = bytearray(STD_KEY)
    enc = c.encrypt_block
    for _ in range(1000000):
        enc(buf, buf)
    assert buf.hex() == STD_CIPHER_1M


# --- against gmssl on CPython --------------------------------------------------------------------

@given(keys, st.binary(max_size=80))
def test_ecb_pkcs7_matches_gmssl(key, data):
    ct = sm4.ecb_encrypt(key, data)
    assert ct == gm_ecb(key, data)
    assert sm4.ecb_decrypt(key, ct) == data


@given(keys, blocks_data)
def test_ecb_unpadded_matches_gmssl(key, data):
    ct = sm4.ecb_encrypt(key, data, pad=False)
    assert ct == gm_ecb(key, data, pad=False)
    assert sm4.ecb_decrypt(key, ct, pad=False) == data


@given(keys, texts)
def test_field_hex_matches_gmssl(key, text):
    h = sm4.encrypt_field_hex(key, text)
    assert h == gm_ecb(key, text.encode("utf-8")).hex()
    assert h == h.lower()
    assert sm4.ecb_decrypt(key, unhexlify(h)).decode("utf-8") == text


@given(keys, ivs, blocks_data)
def test_cbc_unpadded_matches_gmssl(key, iv, data):
    ct = sm4.cbc_encrypt(key, iv, data)
    assert ct == gm_cbc_nopad(key, iv, data)
    assert sm4.cbc_decrypt(key, iv, ct) == data


@given(keys, ivs, st.binary(max_size=80))
def test_cbc_pkcs7_matches_gmssl(key, iv, data):
    ct = sm4.cbc_encrypt(key, iv, data, pad=True)
    assert ct == gm_cbc_pkcs7(key, iv, data)
    assert sm4.cbc_decrypt(key, iv, ct, pad=True) == data


@given(keys, st.dictionaries(st.sampled_from(["dataCode", "dataValue", "inputType", "statType", "statDate",
                                               "uploadDate", "scope", "valid"]), record_values))
def test_record_every_value_encrypted(key, record):
    out = sm4.encrypt_record(key, record)
    assert list(out) == list(record)
    for name, value in record.items():
        assert out[name] == gm_ecb(key, sm4.field_text(value).encode("utf-8")).hex()


def test_key_schedule_cache_follows_key_changes():
    a, b = bytes(16), bytes(range(16))
    assert sm4.ecb_encrypt(a, b"x") == gm_ecb(a, b"x")
    assert sm4.ecb_encrypt(b, b"x") == gm_ecb(b, b"x")
    assert sm4.ecb_encrypt(bytearray(a), b"x") == gm_ecb(a, b"x")


# --- field_text ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (True, "true"), (False, "false"), (0, "0"), (4, "4"), (-17, "-17"), (123.45, "123.45"),
    (100.0, "100.0"), (1e16, "1e+16"), ("0", "0"), ("2021-10-08 00:15:00", "2021-10-08 00:15:00"),
    ("能耗", "能耗"), ("", ""),
])
def test_field_text(value, text):
    assert sm4.field_text(value) == text


@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans()))
def test_field_text_is_the_json_token(value):
    assert sm4.field_text(value) == json.dumps(value)


@pytest.mark.parametrize("value, exc", [
    (float("nan"), ValueError), (float("inf"), ValueError), (float("-inf"), ValueError),
    (None, TypeError), ([1], TypeError), (b"ab", TypeError),
])
def test_field_text_rejects(value, exc):
    with pytest.raises(exc):
        sm4.field_text(value)


# --- Yunnan password -----------------------------------------------------------------------------

YN_SECRET = "3f2a9c0d4b5e6f708192a3b4c5d6e7f8"
YN_CODE = "91330000573973053F"


@pytest.mark.parametrize("pin", ["1", "1234", "123456", "abcdefghijklmn"])
def test_yunnan_password_matches_gmssl(pin):
    expected = gm_yunnan(YN_SECRET, YN_CODE, pin)
    assert sm4.yunnan_password(YN_SECRET, YN_CODE, pin) == expected
    assert sm4.yunnan_password(YN_SECRET, YN_CODE, pin, upper=True) == expected.upper()
    # gmssl's own (padding) CBC agrees on the first block.
    block = ("%02d" % len(pin) + pin + "F" * (14 - len(pin))).encode()
    assert gm_cbc_pkcs7(YN_SECRET[:16].encode(), YN_CODE[:16].encode(), block)[:16].hex() == expected


def test_yunnan_block_layout():
    key, iv = YN_SECRET[:16].encode(), YN_CODE[:16].encode()
    plain = sm4.cbc_decrypt(key, iv, unhexlify(sm4.yunnan_password(YN_SECRET, YN_CODE, "1234")))
    assert plain == b"041234FFFFFFFFFF"


@given(st.text(alphabet="0123456789", min_size=1, max_size=14),
       st.text(alphabet="0123456789ABCDEFabcdef", min_size=16, max_size=32),
       st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=18, max_size=18))
def test_yunnan_password_random(pin, secret, code):
    assert sm4.yunnan_password(secret, code, pin) == gm_yunnan(secret, code, pin)


@pytest.mark.parametrize("secret, code, pin, match", [
    (YN_SECRET, YN_CODE, "123456789012345", "PIN too long"),
    (YN_SECRET, YN_CODE, "", "PIN is empty"),
    (YN_SECRET, YN_CODE, "12é4", "ASCII"),
    ("short", YN_CODE, "1234", "secretKey"),
    (YN_SECRET, "9133000057", "1234", "enterpriseCode"),
])
def test_yunnan_password_errors(secret, code, pin, match):
    with pytest.raises(ValueError, match=match):
        sm4.yunnan_password(secret, code, pin)


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 8, 15, 17, 32])
def test_wrong_key_length(n):
    with pytest.raises(ValueError, match="key must be 16 bytes"):
        sm4.SM4(bytes(n))
    with pytest.raises(ValueError, match="key must be 16 bytes"):
        sm4.ecb_encrypt(bytes(n), b"x")


def test_bad_arguments():
    c = sm4.SM4(STD_KEY)
    with pytest.raises(TypeError):
        sm4.SM4("0123456789abcdef")
    with pytest.raises(ValueError):
        c.encrypt_block(bytes(15), bytearray(16))
    with pytest.raises(ValueError):
        c.decrypt_block(bytes(16), bytearray(17))
    with pytest.raises(TypeError):
        c.encrypt_block(bytes(16), bytes(16))  # read-only destination
    with pytest.raises(ValueError, match="multiple of 16"):
        sm4.ecb_encrypt(STD_KEY, bytes(17), pad=False)
    with pytest.raises(ValueError, match="multiple of 16"):
        sm4.ecb_decrypt(STD_KEY, bytes(20))
    with pytest.raises(ValueError, match="multiple of 16"):
        sm4.ecb_decrypt(STD_KEY, b"")
    with pytest.raises(ValueError, match="IV must be 16 bytes"):
        sm4.cbc_encrypt(STD_KEY, bytes(8), bytes(16))
    with pytest.raises(TypeError):
        sm4.ecb_encrypt(STD_KEY, "text")
    with pytest.raises(TypeError):
        sm4.encrypt_field_hex(STD_KEY, 12)
    assert sm4.key_from_hex("0123456789ABCDEFfedcba9876543210") == STD_KEY
    with pytest.raises(ValueError):
        sm4.key_from_hex("0123")
    with pytest.raises(ValueError):
        sm4.key_from_hex("x" * 32)


@pytest.mark.parametrize("tail", [b"\x00", b"\x11", b"\x03\x02\x03", b"\x0f" + b"\x10" * 15])
def test_bad_padding(tail):
    block = (bytes(16) + tail)[-16:]
    ct = sm4.ecb_encrypt(STD_KEY, block, pad=False)
    with pytest.raises(ValueError, match="padding"):
        sm4.ecb_decrypt(STD_KEY, ct)
    with pytest.raises(ValueError, match="padding"):
        sm4.cbc_decrypt(STD_KEY, bytes(16), sm4.cbc_encrypt(STD_KEY, bytes(16), block), pad=True)


def test_full_block_of_padding_round_trips():
    ct = sm4.ecb_encrypt(STD_KEY, b"\x10" * 16)
    assert len(ct) == 32
    assert sm4.ecb_decrypt(STD_KEY, ct) == b"\x10" * 16
    assert sm4.ecb_decrypt(STD_KEY, sm4.ecb_encrypt(STD_KEY, b"")) == b""


# --- on MicroPython ------------------------------------------------------------------------------

MPY_RUNNER = r"""
import gc
from binascii import hexlify, unhexlify
from nengjian.crypto import sm4
if KERNEL == "plain":
    sm4._crypt = sm4._crypt_py
print("kernel", "viper" if sm4._crypt is not sm4._crypt_py else "plain")
with open(CASES) as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        kind = p[0]
        if kind == "yn":
            print(sm4.yunnan_password(p[1], p[2], p[3]), "ok")
            continue
        key = unhexlify(p[1])
        if kind == "ecb":
            d = unhexlify(p[2])
            ct = sm4.ecb_encrypt(key, d)
            print(hexlify(ct).decode(), "ok" if sm4.ecb_decrypt(key, ct) == d else "bad")
        elif kind == "ecbraw":
            d = unhexlify(p[2])
            ct = sm4.ecb_encrypt(key, d, pad=False)
            print(hexlify(ct).decode(), "ok" if sm4.ecb_decrypt(key, ct, pad=False) == d else "bad")
        elif kind == "field":
            text = unhexlify(p[2]).decode("utf-8")
            h = sm4.encrypt_field_hex(key, text)
            print(h, "ok" if sm4.ecb_decrypt(key, unhexlify(h)).decode("utf-8") == text else "bad")
        elif kind == "cbc" or kind == "cbcpad":
            iv = unhexlify(p[2])
            d = unhexlify(p[3])
            pad = kind == "cbcpad"
            ct = sm4.cbc_encrypt(key, iv, d, pad)
            print(hexlify(ct).decode(), "ok" if sm4.cbc_decrypt(key, iv, ct, pad) == d else "bad")
"""


def _mpy_cases(seed=20240601):
    rnd = random.Random(seed)
    cases, expected = [], []
    alphabet = "0123456789abcXYZ .:-_能耗电量天然气"

    def rb(n):
        return bytes(rnd.getrandbits(8) for _ in range(n))

    for n in list(range(0, 50)) + [63, 64, 65, 100]:
        key, data = rb(16), rb(n)
        cases.append("ecb\t%s\t%s" % (key.hex(), data.hex()))
        expected.append(gm_ecb(key, data).hex())
    for nb in range(0, 6):
        key, data = rb(16), rb(16 * nb)
        cases.append("ecbraw\t%s\t%s" % (key.hex(), data.hex()))
        expected.append(gm_ecb(key, data, pad=False).hex())
    fields = ["00-00-0000-023300-11", "123.45", "4", "0", "2021-10-08 00:15:00", "true", "false", ""]
    fields += ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 40))) for _ in range(40)]
    for text in fields:
        key = rb(16)
        cases.append("field\t%s\t%s" % (key.hex(), text.encode().hex()))
        expected.append(gm_ecb(key, text.encode()).hex())
    for nb in range(1, 6):
        key, iv, data = rb(16), rb(16), rb(16 * nb)
        cases.append("cbc\t%s\t%s\t%s" % (key.hex(), iv.hex(), data.hex()))
        expected.append(gm_cbc_nopad(key, iv, data).hex())
    for n in (0, 1, 15, 16, 17, 40):
        key, iv, data = rb(16), rb(16), rb(n)
        cases.append("cbcpad\t%s\t%s\t%s" % (key.hex(), iv.hex(), data.hex()))
        expected.append(gm_cbc_pkcs7(key, iv, data).hex())
    for pin in ("1", "1234", "123456", "12345678901234"):
        secret = rb(16).hex()
        code = "91" + "".join(rnd.choice("0123456789") for _ in range(16))
        cases.append("yn\t%s\t%s\t%s" % (secret, code, pin))
        expected.append(gm_yunnan(secret, code, pin))
    return cases, expected


@pytest.mark.mpy
@pytest.mark.parametrize("kernel", ["viper", "plain"])
def test_matches_gmssl_on_micropython(tmp_path, kernel):
    cases, expected = _mpy_cases()
    path = tmp_path / "cases.tsv"
    path.write_text("\n".join(cases) + "\n", encoding="utf-8")
    code = "KERNEL = %r\nCASES = %r\n" % (kernel, str(path)) + MPY_RUNNER
    lines = run_mpy(code, heap="256k").stdout.splitlines()
    assert lines[0] == "kernel " + kernel
    got = lines[1:]
    assert len(got) == len(expected)
    for case, want, line in zip(cases, expected, got):
        h, flag = line.split(" ")
        assert (h, flag) == (want, "ok"), case


@pytest.mark.mpy
def test_micropython_standard_example_block_api_and_no_allocation():
    code = r"""
import gc
from binascii import hexlify, unhexlify
from nengjian.crypto import sm4
k = unhexlify("0123456789abcdeffedcba9876543210")
c = sm4.SM4(k)
out = bytearray(16)
c.encrypt_block(k, out)
print(hexlify(out).decode())
back = bytearray(16)
c.decrypt_block(out, back)
print(back == k)
for bad in ((bytes(15), bytearray(16)), (bytes(16), bytearray(17))):
    try:
        c.encrypt_block(*bad)
        print("no error")
    except ValueError:
        print("ValueError")
try:
    c.encrypt_block(bytes(16), bytes(16))
    print("no error")
except TypeError:
    print("TypeError")
for n in (15, 17):
    try:
        sm4.SM4(bytes(n))
        print("no error")
    except ValueError:
        print("ValueError")

def run(enc, dec, s, n):
    for _ in range(n):
        enc(s, s)
        dec(s, s)
buf = bytearray(16)
enc = c.encrypt_block
dec = c.decrypt_block
run(enc, dec, buf, 10)
gc.collect()
a = gc.mem_alloc()
run(enc, dec, buf, 1000)
print("alloc", gc.mem_alloc() - a)

buf = bytearray(k)
f = sm4._crypt
ctx = c._ctx
for _ in range(1000000):
    f(ctx, buf, buf, 4)
print(hexlify(buf).decode())
print(sm4.field_text(123.45), sm4.field_text(True), sm4.field_text(False), sm4.field_text(7))
try:
    sm4.yunnan_password("0123456789abcdef", "91330000573973053F", "123456789012345")
    print("no error")
except ValueError:
    print("ValueError")
try:
    sm4.ecb_decrypt(k, sm4.ecb_encrypt(k, bytes(15) + b"\x02", pad=False))
    print("no error")
except ValueError:
    print("ValueError")
"""
    lines = run_mpy(code, heap="256k").stdout.splitlines()
    assert lines == [
        STD_CIPHER, "True", "ValueError", "ValueError", "TypeError", "ValueError", "ValueError",
        "alloc 0", STD_CIPHER_1M, "123.45 true false 7", "ValueError", "ValueError",
    ]


def test_hex_helpers_are_lower_case():
    assert sm4.encrypt_field_hex(STD_KEY, "0") == hexlify(gm_ecb(STD_KEY, b"0")).decode()
    assert sm4.yunnan_password(YN_SECRET, YN_CODE, "1234").islower()
