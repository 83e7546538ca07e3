"""SM4 block cipher (GB/T 32907-2016) and the two provincial uses of it (SPEC.md section 3.2).

Owns: the cipher (key schedule, block encryption and decryption), ECB and CBC with optional PKCS#7
padding, Shandong field encryption (`field_text`, `encrypt_field_hex`, `encrypt_record`) and the
Yunnan login password (`yunnan_password`).

Written from the algorithm description in the standard. The round function T(x) = L(tau(x)) is
linear after the S-box, so it is folded into four 256-entry word tables (the T-table method, 4 KB
built once at import): a round is four look-ups and XORs instead of four S-box look-ups plus four
32-bit rotations.

On MicroPython the block kernel is a viper function on machine words: an ESP32 keeps small ints in
31 bits, so in plain Python every word >= 2**30 would be a heap-allocated long int; the viper kernel
allocates nothing per block. CPython (host property tests) uses the plain kernel `_crypt_py`, which
has the same contract and also runs on MicroPython (tests cross-check the two there). The viper
decorator needs a port with a native emitter (ESP32 xtensawin and unix x64 have one); precompiling
with mpy-cross therefore needs -march.
"""

import json
import sys
from array import array
from binascii import hexlify, unhexlify

if False:  # names the viper emitter provides; declared here for linters only
    ptr8 = ptr32 = uint = None

# S-box of the standard, one row of 16 bytes per line.
SBOX = unhexlify(
    "d690e9fecce13db716b614c228fb2c05"
    "2b679a762abe04c3aa44132649860699"
    "9c4250f491ef987a33540b43edcfac62"
    "e4b31ca9c908e89580df94fa758f3fa6"
    "4707a7fcf37317ba83593c19e6854fa8"
    "686b81b27164da8bf8eb0f4b70569d35"
    "1e240e5e6358d1a225227c3b01217887"
    "d40046579fd327524c3602e7a0c4c89e"
    "eabf8ad240c738b5a3f7f2cef96115a1"
    "e0ae5da49b341a55ad933230f58cb1e3"
    "1df6e22e8266ca60c02923ab0d534e6f"
    "d5db3745defd8e2f03ff6a726d6c5b51"
    "8d1baf92bbddbc7f11d95c411f105ad8"
    "0ac13188a5cd7bbd2d74d012b8e5b4b0"
    "8969974a0c96777e65b9f109c56ec684"
    "18f07dec3adc4d2079ee5f3ed7cb3948"
)
_FK = (0xA3B1BAC6, 0x56AA3350, 0x677D9197, 0xB27022DC)

# Layout of the per-key context array (array('I')) the kernels read: encryption round keys,
# the same keys reversed for decryption, then the CBC chaining value (the last cipher block).
_RK_DEC = 32
_CHAIN = 64
_CTX_WORDS = 68
# Kernel flags, packed with the block count as (nblocks << 2) | flags.
_DEC = 1
_CBC = 2


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def _tau(x):
    s = SBOX
    return (s[x >> 24] << 24) | (s[(x >> 16) & 0xFF] << 16) | (s[(x >> 8) & 0xFF] << 8) | s[x & 0xFF]


def _make_tables():
    # _T[256 * j + b] = L(S(b) placed in byte j of the word, j = 0 for the top byte).
    t = array("I", bytes(4 * 1024))
    for b in range(256):
        for j in range(4):
            x = SBOX[b] << (24 - 8 * j)
            t[256 * j + b] = x ^ _rotl(x, 2) ^ _rotl(x, 10) ^ _rotl(x, 18) ^ _rotl(x, 24)
    return t


_T = _make_tables()


def _crypt_py(ctx, src, dst, nm):
    """Plain-Python kernel. ctx: context array('I'); src, dst: buffers of 16 * nblocks bytes (may be
    the same object); nm = (nblocks << 2) | flags (_DEC, _CBC). CBC reads and updates ctx[_CHAIN:]."""
    t = _T
    k0 = _RK_DEC if nm & _DEC else 0
    cbc = nm & _CBC
    dec = nm & _DEC
    o = 0
    for _ in range(nm >> 2):
        x0 = (src[o] << 24) | (src[o + 1] << 16) | (src[o + 2] << 8) | src[o + 3]
        x1 = (src[o + 4] << 24) | (src[o + 5] << 16) | (src[o + 6] << 8) | src[o + 7]
        x2 = (src[o + 8] << 24) | (src[o + 9] << 16) | (src[o + 10] << 8) | src[o + 11]
        x3 = (src[o + 12] << 24) | (src[o + 13] << 16) | (src[o + 14] << 8) | src[o + 15]
        if cbc:
            if dec:
                c0, c1, c2, c3 = x0, x1, x2, x3
            else:
                x0 ^= ctx[64]
                x1 ^= ctx[65]
                x2 ^= ctx[66]
                x3 ^= ctx[67]
        for i in range(k0, k0 + 32, 4):
            r = x1 ^ x2 ^ x3 ^ ctx[i]
            x0 ^= t[r >> 24] ^ t[256 + ((r >> 16) & 255)] ^ t[512 + ((r >> 8) & 255)] ^ t[768 + (r & 255)]
            r = x2 ^ x3 ^ x0 ^ ctx[i + 1]
            x1 ^= t[r >> 24] ^ t[256 + ((r >> 16) & 255)] ^ t[512 + ((r >> 8) & 255)] ^ t[768 + (r & 255)]
            r = x3 ^ x0 ^ x1 ^ ctx[i + 2]
            x2 ^= t[r >> 24] ^ t[256 + ((r >> 16) & 255)] ^ t[512 + ((r >> 8) & 255)] ^ t[768 + (r & 255)]
            r = x0 ^ x1 ^ x2 ^ ctx[i + 3]
            x3 ^= t[r >> 24] ^ t[256 + ((r >> 16) & 255)] ^ t[512 + ((r >> 8) & 255)] ^ t[768 + (r & 255)]
        # The output is the last four words in reverse order (the R transformation).
        if cbc:
            if dec:
                x3 ^= ctx[64]
                x2 ^= ctx[65]
                x1 ^= ctx[66]
                x0 ^= ctx[67]
                ctx[64] = c0
                ctx[65] = c1
                ctx[66] = c2
                ctx[67] = c3
            else:
                ctx[64] = x3
                ctx[65] = x2
                ctx[66] = x1
                ctx[67] = x0
        dst[o] = x3 >> 24
        dst[o + 1] = (x3 >> 16) & 255
        dst[o + 2] = (x3 >> 8) & 255
        dst[o + 3] = x3 & 255
        dst[o + 4] = x2 >> 24
        dst[o + 5] = (x2 >> 16) & 255
        dst[o + 6] = (x2 >> 8) & 255
        dst[o + 7] = x2 & 255
        dst[o + 8] = x1 >> 24
        dst[o + 9] = (x1 >> 16) & 255
        dst[o + 10] = (x1 >> 8) & 255
        dst[o + 11] = x1 & 255
        dst[o + 12] = x0 >> 24
        dst[o + 13] = (x0 >> 16) & 255
        dst[o + 14] = (x0 >> 8) & 255
        dst[o + 15] = x0 & 255
        o += 16


_crypt = _crypt_py

if sys.implementation.name == "micropython":
    import micropython

    @micropython.viper
    def _crypt_viper(ctx: ptr32, src: ptr8, dst: ptr8, nm: int):
        # Same contract as _crypt_py. No bounds checks here: callers guarantee the lengths.
        # Every look-up index is masked with 255, so the signedness of 32-bit loads on the target
        # and the upper half of 64-bit registers on the unix port cannot matter.
        t = ptr32(_T)
        k0 = (nm & 1) << 5
        cbc = nm & 2
        dec = nm & 1
        n = nm >> 2
        o = 0
        c0 = uint(0)
        c1 = uint(0)
        c2 = uint(0)
        c3 = uint(0)
        while n > 0:
            x0 = (uint(src[o]) << 24) | (uint(src[o + 1]) << 16) | (uint(src[o + 2]) << 8) | uint(src[o + 3])
            x1 = (uint(src[o + 4]) << 24) | (uint(src[o + 5]) << 16) | (uint(src[o + 6]) << 8) | uint(src[o + 7])
            x2 = (uint(src[o + 8]) << 24) | (uint(src[o + 9]) << 16) | (uint(src[o + 10]) << 8) | uint(src[o + 11])
            x3 = (uint(src[o + 12]) << 24) | (uint(src[o + 13]) << 16) | (uint(src[o + 14]) << 8) | uint(src[o + 15])
            if cbc:
                if dec:
                    c0 = x0
                    c1 = x1
                    c2 = x2
                    c3 = x3
                else:
                    x0 ^= uint(ctx[64])
                    x1 ^= uint(ctx[65])
                    x2 ^= uint(ctx[66])
                    x3 ^= uint(ctx[67])
            i = k0
            e = k0 + 32
            while i < e:
                r = x1 ^ x2 ^ x3 ^ uint(ctx[i])
                x0 ^= (uint(t[(r >> 24) & 255]) ^ uint(t[256 + ((r >> 16) & 255)])
                       ^ uint(t[512 + ((r >> 8) & 255)]) ^ uint(t[768 + (r & 255)]))
                r = x2 ^ x3 ^ x0 ^ uint(ctx[i + 1])
                x1 ^= (uint(t[(r >> 24) & 255]) ^ uint(t[256 + ((r >> 16) & 255)])
                       ^ uint(t[512 + ((r >> 8) & 255)]) ^ uint(t[768 + (r & 255)]))
                r = x3 ^ x0 ^ x1 ^ uint(ctx[i + 2])
                x2 ^= (uint(t[(r >> 24) & 255]) ^ uint(t[256 + ((r >> 16) & 255)])
                       ^ uint(t[512 + ((r >> 8) & 255)]) ^ uint(t[768 + (r & 255)]))
                r = x0 ^ x1 ^ x2 ^ uint(ctx[i + 3])
                x3 ^= (uint(t[(r >> 24) & 255]) ^ uint(t[256 + ((r >> 16) & 255)])
                       ^ uint(t[512 + ((r >> 8) & 255)]) ^ uint(t[768 + (r & 255)]))
                i += 4
            if cbc:
                if dec:
                    x3 ^= uint(ctx[64])
                    x2 ^= uint(ctx[65])
                    x1 ^= uint(ctx[66])
                    x0 ^= uint(ctx[67])
                    ctx[64] = c0
                    ctx[65] = c1
                    ctx[66] = c2
                    ctx[67] = c3
                else:
                    ctx[64] = x3
                    ctx[65] = x2
                    ctx[66] = x1
                    ctx[67] = x0
            dst[o] = x3 >> 24
            dst[o + 1] = x3 >> 16
            dst[o + 2] = x3 >> 8
            dst[o + 3] = x3
            dst[o + 4] = x2 >> 24
            dst[o + 5] = x2 >> 16
            dst[o + 6] = x2 >> 8
            dst[o + 7] = x2
            dst[o + 8] = x1 >> 24
            dst[o + 9] = x1 >> 16
            dst[o + 10] = x1 >> 8
            dst[o + 11] = x1
            dst[o + 12] = x0 >> 24
            dst[o + 13] = x0 >> 16
            dst[o + 14] = x0 >> 8
            dst[o + 15] = x0
            o += 16
            n -= 1

    _crypt = _crypt_viper


def _check_len(what, buf, n):
    if len(buf) != n:
        raise ValueError("SM4 %s must be %d bytes, got %d" % (what, n, len(buf)))


def _check_block(what, buf):
    _check_len(what, buf, 16)
    if isinstance(buf, str):
        raise TypeError("SM4 %s must be a bytes-like buffer, not str" % what)


def _bad_blocks(src, dst):
    _check_block("source block", src)
    _check_block("destination block", dst)


class SM4:
    """One SM4 key. Round keys are computed once here; blocks then cost no allocation."""

    def __init__(self, key):
        _check_block("key", key)
        ctx = array("I", bytes(4 * _CTX_WORDS))
        k = [0, 0, 0, 0]
        for j in range(4):
            k[j] = ((key[4 * j] << 24) | (key[4 * j + 1] << 16) | (key[4 * j + 2] << 8) | key[4 * j + 3]) ^ _FK[j]
        for i in range(32):
            # CK_i: byte j is (4i + j) * 7 mod 256.
            b = 28 * i
            ck = ((b & 255) << 24) | (((b + 7) & 255) << 16) | (((b + 14) & 255) << 8) | ((b + 21) & 255)
            x = _tau(k[(i + 1) & 3] ^ k[(i + 2) & 3] ^ k[(i + 3) & 3] ^ ck)
            rk = k[i & 3] ^ x ^ _rotl(x, 13) ^ _rotl(x, 23)
            k[i & 3] = rk
            ctx[i] = rk
            ctx[_RK_DEC + 31 - i] = rk
        self._ctx = ctx

    def encrypt_block(self, src, dst):
        """Encrypt the 16 bytes of src into dst (a writable 16-byte buffer; may be src itself)."""
        if len(src) != 16 or len(dst) != 16 or isinstance(src, str):
            _bad_blocks(src, dst)
        dst[0] = dst[0]  # raises TypeError for a read-only buffer before the kernel writes to it
        _crypt(self._ctx, src, dst, 4)

    def decrypt_block(self, src, dst):
        """Decrypt the 16 bytes of src into dst (a writable 16-byte buffer; may be src itself)."""
        if len(src) != 16 or len(dst) != 16 or isinstance(src, str):
            _bad_blocks(src, dst)
        dst[0] = dst[0]
        _crypt(self._ctx, src, dst, 4 | _DEC)


# One-entry cache: the uplink encrypts many fields with the same key; the key schedule costs far
# more than a block.
_last = [None, None]  # type: list  # [key bytes, SM4]


def _cipher(key):
    if isinstance(key, SM4):
        return key
    if isinstance(key, str):
        raise TypeError("SM4 key must be 16 bytes, not str (see key_from_hex)")
    key = bytes(key)
    if _last[0] != key:
        c = SM4(key)  # validates before the cache is touched
        _last[0] = key
        _last[1] = c
    return _last[1]


def _buffer(data, total):
    if isinstance(data, str):
        raise TypeError("SM4 data must be bytes-like, not str (encode the text first)")
    buf = bytearray(total)
    buf[0:len(data)] = data
    return buf


def _padded(data, pad):
    n = len(data)
    if not pad:
        if n % 16:
            raise ValueError("SM4 data length %d is not a multiple of 16 and padding is off" % n)
        return _buffer(data, n)
    total = (n // 16 + 1) * 16  # PKCS#7 always adds 1..16 bytes
    buf = _buffer(data, total)
    p = total - n
    for i in range(n, total):
        buf[i] = p
    return buf


def _unpadded(buf, pad):
    if not pad:
        return bytes(buf)
    n = len(buf)
    p = buf[n - 1] if n else 0
    if p < 1 or p > 16 or p > n:
        raise ValueError("bad PKCS#7 padding (last byte %d)" % p)
    for i in range(n - p, n):
        if buf[i] != p:
            raise ValueError("bad PKCS#7 padding (pad bytes differ)")
    return bytes(buf[0:n - p])


def _check_cipher_len(data, pad):
    n = len(data)
    if n % 16 or (pad and n == 0):
        raise ValueError("SM4 cipher text length %d is not a positive multiple of 16" % n)


def _set_chain(c, iv):
    _check_block("IV", iv)
    ctx = c._ctx
    for j in range(4):
        ctx[_CHAIN + j] = (iv[4 * j] << 24) | (iv[4 * j + 1] << 16) | (iv[4 * j + 2] << 8) | iv[4 * j + 3]


def ecb_encrypt(key, data, pad=True):
    """SM4-ECB of data; PKCS#7 padding unless pad is False (then len(data) must be a multiple of 16).
    key: 16 bytes or an SM4 instance."""
    c = _cipher(key)
    buf = _padded(data, pad)
    _crypt(c._ctx, buf, buf, (len(buf) >> 4) << 2)
    return bytes(buf)


def ecb_decrypt(key, data, pad=True):
    """Inverse of ecb_encrypt; ValueError for a bad length or bad PKCS#7 padding."""
    c = _cipher(key)
    _check_cipher_len(data, pad)
    buf = _buffer(data, len(data))
    _crypt(c._ctx, buf, buf, ((len(buf) >> 4) << 2) | _DEC)
    return _unpadded(buf, pad)


def cbc_encrypt(key, iv, data, pad=False):
    """SM4-CBC of data with a 16-byte IV; no padding unless pad is True (then PKCS#7)."""
    c = _cipher(key)
    _set_chain(c, iv)
    buf = _padded(data, pad)
    _crypt(c._ctx, buf, buf, ((len(buf) >> 4) << 2) | _CBC)
    return bytes(buf)


def cbc_decrypt(key, iv, data, pad=False):
    """Inverse of cbc_encrypt; ValueError for a bad length or (pad=True) bad PKCS#7 padding."""
    c = _cipher(key)
    _set_chain(c, iv)
    _check_cipher_len(data, pad)
    buf = _buffer(data, len(data))
    _crypt(c._ctx, buf, buf, ((len(buf) >> 4) << 2) | _CBC | _DEC)
    return _unpadded(buf, pad)


def key_from_hex(secret_key):
    """The 16-byte key of a 32-hex-digit secretKey (Shandong registration reply)."""
    if len(secret_key) != 32:
        raise ValueError("SM4 secretKey must be 32 hex digits, got %d characters" % len(secret_key))
    try:
        return unhexlify(secret_key)
    except ValueError:
        raise ValueError("SM4 secretKey is not hex")


def field_text(value):
    """The text of one record value before field encryption: exactly the JSON token the plain
    variant would put on the wire for it (json.dumps on this device; ESP32 floats are single
    precision, so a float gives the same digits the device would otherwise send), except that a
    string gives its content without quotes. bool -> 'true'/'false'; int -> decimal digits.
    None, NaN and infinities are rejected: every record field is required and JSON has no NaN."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value - value != 0.0:  # NaN or an infinity
            raise ValueError("field value is not a finite number")
        return json.dumps(value)
    raise TypeError("field value must be str, bool, int or float, not %s" % type(value).__name__)


def encrypt_field_hex(key, text):
    """Lower-case hex of SM4-ECB with PKCS#7 of the UTF-8 bytes of text (Shandong field encryption).
    key: 16 bytes or an SM4 instance (pass the instance in loops)."""
    if not isinstance(text, str):
        raise TypeError("encrypt_field_hex takes str; convert values with field_text()")
    c = _cipher(key)
    buf = _padded(text.encode("utf-8"), True)
    _crypt(c._ctx, buf, buf, (len(buf) >> 4) << 2)
    return hexlify(buf).decode()


def encrypt_record(key, record):
    """A copy of one data[] record with every value replaced by encrypt_field_hex(field_text(value))."""
    c = _cipher(key)
    out = {}
    for name in record:
        out[name] = encrypt_field_hex(c, field_text(record[name]))
    return out


def yunnan_password(secret_key, enterprise_code, pin, upper=False):
    """Yunnan login password: hex of SM4-CBC (no padding) of one block "NN" + pin + "F" * (14 - len),
    NN the 2-digit PIN length; key = first 16 ASCII characters of secret_key, IV = first 16 of
    enterprise_code. Lower-case hex by default: no sample shows the case (SPEC 3.2 gives lower case
    for Shandong only), so it is a profile setting (upper=True)."""
    key = _ascii16("secretKey", secret_key)
    iv = _ascii16("enterpriseCode", enterprise_code)
    if not pin:
        raise ValueError("PIN is empty")
    if len(pin) > 14:
        raise ValueError("PIN too long: %d characters, at most 14 fit the block" % len(pin))
    block = ("%02d" % len(pin) + pin + "F" * (14 - len(pin))).encode("utf-8")
    if len(block) != 16:
        raise ValueError("PIN must be ASCII")
    h = hexlify(cbc_encrypt(key, iv, block)).decode()
    return h.upper() if upper else h


def _ascii16(what, text):
    if len(text) < 16:
        raise ValueError("%s must have at least 16 characters, got %d" % (what, len(text)))
    b = text[0:16].encode("utf-8")
    if len(b) != 16:
        raise ValueError("the first 16 characters of %s must be ASCII" % what)
    return b
