"""Benchmark of nengjian.crypto.sm4 (prints figures; asserts nothing about speed).

    .venv/bin/micropython -X heapsize=256k bench/bench_sm4.py
    .venv/bin/python bench/bench_sm4.py          # CPython, plain kernel only

Prints microseconds per 16-byte block for the firmware kernels and for per-byte alternatives kept
here only to show why the firmware uses T-tables, microseconds per data[] record of 8 fields encrypted
as the Shandong variant does, and heap allocated per block and per record (measured outside the
timed loops: gc.mem_alloc() scans the heap). Then the uplink's own figures: the ndrc-json profile
building a whole upload body (nengjian.uplink.ndrc encode) for 1 and 50 records, plain and sm4-ecb,
and what SM4 adds per record and per 50-record batch.
"""

import gc
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here + "/../firmware")

from nengjian.crypto import sm4  # noqa: E402

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b


MPY = sys.implementation.name == "micropython"
if False:  # viper names, for linters only
    ptr8 = ptr32 = uint = None

RECORD = {
    "dataCode": "00-00-0000-023300-11",
    "dataValue": 123.45,
    "inputType": 4,
    "statType": 0,
    "statDate": "2021-10-08 00:15:00",
    "uploadDate": "2021-10-08 00:31:02",
    "scope": 1,
    "valid": "0",
}


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def per_byte_py(ctx, src, dst, nm):
    """Alternative kernel (encryption, one block): S-box per byte, then L by four rotations."""
    s = sm4.SBOX
    x0 = (src[0] << 24) | (src[1] << 16) | (src[2] << 8) | src[3]
    x1 = (src[4] << 24) | (src[5] << 16) | (src[6] << 8) | src[7]
    x2 = (src[8] << 24) | (src[9] << 16) | (src[10] << 8) | src[11]
    x3 = (src[12] << 24) | (src[13] << 16) | (src[14] << 8) | src[15]
    for i in range(32):
        r = x1 ^ x2 ^ x3 ^ ctx[i]
        b = (s[r >> 24] << 24) | (s[(r >> 16) & 255] << 16) | (s[(r >> 8) & 255] << 8) | s[r & 255]
        x0, x1, x2, x3 = x1, x2, x3, x0 ^ b ^ _rotl(b, 2) ^ _rotl(b, 10) ^ _rotl(b, 18) ^ _rotl(b, 24)
    for j, x in enumerate((x3, x2, x1, x0)):
        dst[4 * j] = x >> 24
        dst[4 * j + 1] = (x >> 16) & 255
        dst[4 * j + 2] = (x >> 8) & 255
        dst[4 * j + 3] = x & 255


per_byte_viper = None
if MPY:
    import micropython

    @micropython.viper
    def per_byte_viper(ctx: ptr32, src: ptr8, dst: ptr8, nm: int):
        s = ptr8(sm4.SBOX)
        m = (uint(0xFFFF) << 16) | uint(0xFFFF)  # 0xFFFFFFFF does not fit a small int on ESP32
        x0 = (uint(src[0]) << 24) | (uint(src[1]) << 16) | (uint(src[2]) << 8) | uint(src[3])
        x1 = (uint(src[4]) << 24) | (uint(src[5]) << 16) | (uint(src[6]) << 8) | uint(src[7])
        x2 = (uint(src[8]) << 24) | (uint(src[9]) << 16) | (uint(src[10]) << 8) | uint(src[11])
        x3 = (uint(src[12]) << 24) | (uint(src[13]) << 16) | (uint(src[14]) << 8) | uint(src[15])
        i = 0
        while i < 32:
            r = x1 ^ x2 ^ x3 ^ uint(ctx[i])
            b = ((uint(s[(r >> 24) & 255]) << 24) | (uint(s[(r >> 16) & 255]) << 16)
                 | (uint(s[(r >> 8) & 255]) << 8) | uint(s[r & 255]))
            y = (x0 ^ b ^ (((b << 2) | (b >> 30)) & m) ^ (((b << 10) | (b >> 22)) & m)
                 ^ (((b << 18) | (b >> 14)) & m) ^ (((b << 24) | (b >> 8)) & m))
            x0 = x1
            x1 = x2
            x2 = x3
            x3 = y
            i += 1
        dst[0] = x3 >> 24
        dst[1] = x3 >> 16
        dst[2] = x3 >> 8
        dst[3] = x3
        dst[4] = x2 >> 24
        dst[5] = x2 >> 16
        dst[6] = x2 >> 8
        dst[7] = x2
        dst[8] = x1 >> 24
        dst[9] = x1 >> 16
        dst[10] = x1 >> 8
        dst[11] = x1
        dst[12] = x0 >> 24
        dst[13] = x0 >> 16
        dst[14] = x0 >> 8
        dst[15] = x0


def _loop_kernel(f, ctx, src, dst, n):
    for _ in range(n):
        f(ctx, src, dst, 4)


def _loop_block(e, src, dst, n):
    for _ in range(n):
        e(src, dst)


def _loop_record(c, n):
    for _ in range(n):
        sm4.encrypt_record(c, RECORD)


def timed(fn, n, *args):
    t = ticks_us()
    fn(*args, n)
    return ticks_diff(ticks_us(), t) / n


def allocated(fn, n, *args):
    """Heap bytes per iteration of fn(*args, n), net of the loop's own setup (n = 0)."""
    if not hasattr(gc, "mem_alloc"):
        return None
    used = []
    for k in (0, n):
        gc.collect()
        a = gc.mem_alloc()
        fn(*args, k)
        used.append(gc.mem_alloc() - a)
    return (used[1] - used[0]) / n


def show_alloc(name, per, unit):
    if per is None:
        print("%-50s %8s" % (name, "n/a"))
    else:
        print("%-50s %8.1f bytes/%s" % (name, per, unit))


def main():
    print("SM4 benchmark on", sys.implementation.name, sys.version.split(" ")[0], sys.platform)
    key = bytes(range(16))
    c = sm4.SM4(key)
    ctx = c._ctx
    src = bytearray(b"0123456789abcdef")
    dst = bytearray(16)
    expect = bytearray(16)
    sm4._crypt_py(ctx, src, expect, 4)
    n_fast = 20000 if MPY else 2000
    n_slow = 2000 if MPY else 500

    native = sm4._crypt is not sm4._crypt_py
    kernels = [("firmware kernel (%s)" % ("viper T-table" if native else "plain T-table"), sm4._crypt, n_fast)]
    if native:
        kernels.append(("plain T-table kernel (_crypt_py)", sm4._crypt_py, n_slow))
    if per_byte_viper is not None:
        kernels.append(("alternative: per-byte S-box + rotations, viper", per_byte_viper, n_fast))
    kernels.append(("alternative: per-byte S-box + rotations, plain", per_byte_py, n_slow))
    for name, f, n in kernels:
        f(ctx, src, dst, 4)
        assert dst == expect, name
        print("%-50s %8.2f us/block" % (name, timed(_loop_kernel, n, f, ctx, src, dst)))

    e = c.encrypt_block
    print("%-50s %8.2f us/block" % ("SM4.encrypt_block (checks + kernel)", timed(_loop_block, n_fast, e, src, dst)))
    show_alloc("heap per encrypt_block", allocated(_loop_block, 1000, e, src, dst), "block")

    blocks = 0
    for name in RECORD:
        blocks += len(sm4.field_text(RECORD[name]).encode()) // 16 + 1
    n_rec = 2000 if MPY else 500
    print("%-50s %8.2f us/record" % ("encrypt_record, 8 fields (%d blocks)" % blocks, timed(_loop_record, n_rec, c)))
    show_alloc("heap per record (result dict and hex strings)", allocated(_loop_record, 10, c), "record")

    bulk = bytearray(16 * 64)
    t = ticks_us()
    for _ in range(50):
        sm4._crypt(ctx, bulk, bulk, 64 << 2)
    print("%-50s %8.2f us/block" % ("ECB bulk, 64 blocks per kernel call", ticks_diff(ticks_us(), t) / (50 * 64)))

    t = ticks_us()
    for _ in range(50):
        sm4.SM4(key)
    print("%-50s %8.1f us" % ("key schedule (SM4(key))", ticks_diff(ticks_us(), t) / 50))
    print("%-50s %8d bytes" % ("T-table size (a constant: in flash from ROMFS)", len(sm4.T_BYTES)))


def _batch(n):
    from nengjian.core import records
    from nengjian.core.decimal import Decimal

    t0 = 1633622400  # 2021-10-07 16:00 UTC, a period start
    return [(i + 1, [records.VALUE, t0 + 900 * i, "00-00-0000-023300-11", records.REALTIME, t0 + 900 * i,
                     Decimal(1234500 + i, -2), True, records.FIELD_INSTRUMENT, 1]) for i in range(n)]


def _encode_loop(p, b, now, n):
    for _ in range(n):
        p.encode(b, now)


def profile_bodies():
    from nengjian.uplink import ndrc

    now = 1633622400 + 50 * 900
    per = {}
    for security in ("plain", "sm4-ecb"):
        p = ndrc.NdrcJson({"name": "bench", "profile": "ndrc-json", "url": "http://p/api/register",
                           "security": security, "valid": "shandong"},
                          {"code": "91330000573973053F", "region": "441900"}, "/nonexistent")
        p.session = {"deviceId": "0ef6ecea08bf84c7b639c3e9b84ed546", "centerDataURL": "http://p/api/data",
                     "secretKey": "0123456789abcdeffedcba9876543210"}
        for n in (1, 50):
            b = _batch(n)
            size = len(p.encode(b, now))
            reps = (400 if MPY else 100) // n + 1
            us = timed(_encode_loop, reps, p, b, now)
            per[(security, n)] = us
            print("%-50s %8.1f us (%d bytes)" % ("profile body, %s, %d record(s)" % (security, n), us, size))
        if hasattr(gc, "mem_alloc"):
            b = _batch(50)
            gc.collect()
            a = gc.mem_alloc()
            p.encode(b, now)  # garbage included; a collection in between would hide some of it
            print("%-50s %8d bytes" % ("heap allocated building a 50-record %s body" % security, gc.mem_alloc() - a))
    sm4_50 = per[("sm4-ecb", 50)] - per[("plain", 50)]
    print("%-50s %8.1f us" % ("SM4 cost per record (sm4-ecb - plain, 50)", sm4_50 / 50))
    print("%-50s %8.1f us" % ("SM4 cost per 50-record batch", sm4_50))


main()
profile_bodies()
