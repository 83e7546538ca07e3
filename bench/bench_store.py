"""Benchmark of the record store (firmware/nengjian/store): prints figures, asserts nothing.

    .venv/bin/python bench/bench_store.py            # runs each phase on the project's MicroPython

Phases (each a MicroPython process, MICROPYPATH=firmware:boards/sim):
  speed     records/s appended (encode + frame + CRC only) and appended-and-flushed, on a RAM littlefs
  wear      a gateway's traffic (32 meters x 2 points polled every minute, 64 items' VALUEs every 15 min)
            on a 4 MiB littlefs2 volume of 4 KiB blocks (file-backed, counting device), for several
            durability windows: bytes programmed and blocks erased per stored byte and per record,
            and the flash lifetime that follows
  capacity  64 items' 15-minute VALUEs for days on the same 4 MiB volume with folding into history:
            bytes per value in history, days per MiB, and whether 6 months fit

The unix port on a PC is some 20-50 times faster than an ESP32: records/s are for comparing
changes, not a promise for the board. Byte and block counts do not depend on the host.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MPY = os.path.join(os.path.dirname(sys.executable), "micropython")
ENV = dict(os.environ, MICROPYPATH=os.pathsep.join([os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "sim")]))

COMMON = r'''
import json
import os
import time
import vfs
from nengjian.core import records as R
from nengjian.store.blockdev import FileBlockDevice, RAMBlockDevice
from nengjian.core.decimal import Decimal
from nengjian.store.store import Store

T0 = 1760000700
CODES = ["%02d-00-0000-023300-11" % i for i in range(64)]


class Rng:  # xorshift: the same numbers on every run and runtime
    def __init__(self, s):
        self.s = s

    def next(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x


def volume(path, blocks=1024, bs=4096):
    try:
        os.remove(path)
    except OSError:
        pass
    dev = FileBlockDevice(path, blocks, bs)
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), "/d")
    dev.reset_counters()
    return dev


BASES = []
rng = Rng(12345)
for i in range(64):  # 15-minute consumption of 64 items: 0.5 kWh .. 2,000 kWh, two decimals
    BASES.append(50 + rng.next() % 200000 // (1 + i % 7) ** 2)


def value_at(item, slot):
    b = BASES[item]
    return b + (rng.next() % (b // 5 + 1)) - b // 10  # +-10 % around the item's load
'''

SPEED = COMMON + r'''
dev = RAMBlockDevice(64, 4096)
vfs.VfsLfs2.mkfs(dev)
vfs.mount(vfs.VfsLfs2(dev), "/d")
s = Store("/d/st", ("city", "prov"), segment_bytes=16384, segments=12, flush_records=10 ** 6, flush_ms=10 ** 9,
          raw_segments=4, raw_segment_bytes=8192, max_pending=10 ** 7)
s.open()
n = 4000
recs = [[R.READING, T0 + i, "m%d" % (i % 32), "energy_kwh", Decimal(123456789 + i, -2), 0] for i in range(n)]
dt_append = 0
for k in range(0, n, 200):  # the RAM buffer is emptied between rounds (not timed), as a flush would
    t = time.ticks_us()
    for r in recs[k:k + 200]:
        s.append(r)
    dt_append += time.ticks_diff(time.ticks_us(), t)
    s._main.pend = bytearray()
    s._raw.pend = bytearray()
    s._main.pend_n = s._raw.pend_n = s._pending_count = 0
out = {"append_only": n * 1000000 // dt_append}
for fr in (1, 16, 64):
    s.flush_records = fr
    t = time.ticks_us()
    for r in recs[:1000]:
        s.append(r)
    s.flush()
    out["flush_%d" % fr] = 1000 * 1000000 // time.ticks_diff(time.ticks_us(), t)
vals = [[R.VALUE, T0 + i, CODES[i % 64], 0, T0 + 900 * (i // 64), Decimal(100 + i, -2), True, 4, 1] for i in range(1000)]
s.flush_records = 16
t = time.ticks_us()
for r in vals:
    s.append(r)
s.flush()
out["values_flush_16"] = 1000 * 1000000 // time.ticks_diff(time.ticks_us(), t)
t = time.ticks_us()
got = 0
while True:
    b, last = s.read("city", 50, (R.VALUE,))
    if not b:
        break
    got += len(b)
    s.ack("city", last)
out["read_ack_values"] = got * 1000000 // time.ticks_diff(time.ticks_us(), t)
s.close()
print("JSON" + json.dumps(out))
'''

WEAR = COMMON + r'''
# FLUSH_RECORDS, MINUTES, TIMER set by the runner
dev = volume(PATH)
s = Store("/d/st", ("city", "prov"), segment_bytes=65536, segments=48, flush_records=FLUSH_RECORDS, flush_ms=10 ** 9)
s.open()
dev.reset_counters()
n = 0
for minute in range(MINUTES):
    ts = T0 + minute * 60
    for m in range(32):
        s.append([R.READING, ts + m // 8, "m%02d" % m, "energy_kwh", Decimal(12345678 + minute * 37 + m, -2), 0])
        s.append([R.READING, ts + m // 8, "m%02d" % m, "power_kw", Decimal(81234 + minute % 97, -3), 0])
        n += 2
    if minute % 15 == 0:
        for i in range(64):
            s.append([R.VALUE, ts + 3, CODES[i], 0, ts - 900, Decimal(value_at(i, minute // 15), -2), True, 4, 1])
            n += 1
    if TIMER:
        s.flush()  # the flush timer (flush_ms) fires a few seconds after each poll burst
    if minute % 5 == 4:
        for d in ("city", "prov"):
            b, last = s.read(d, 64, (R.VALUE,))
            s.ack(d, last)
s.flush()
st = os.statvfs("/d")
out = {"records": n, "stored_bytes": s.stats["bytes"], "prog_bytes": dev.prog_bytes, "progs": dev.progs,
       "erases": dev.erases, "flushes": s.stats["flushes"], "blocks": 1024, "used_blocks": st[2] - st[3]}
s.close()
print("JSON" + json.dumps(out))
'''

CAPACITY = COMMON + r'''
# DAYS set by the runner
dev = volume(PATH)
s = Store("/d/st", ("city", "prov"), segment_bytes=65536, segments=SEGMENTS, flush_records=64, flush_ms=10 ** 9)
s.open()
dev.reset_counters()
main_bytes = 0
t = time.ticks_ms()
for slot in range(DAYS * 96):
    ts = T0 + slot * 900
    for i in range(64):
        s.append([R.VALUE, ts + 905, CODES[i], 0, ts, Decimal(value_at(i, slot), -2), True, 4, 1])
    s.flush()
    for d in ("city", "prov"):
        while True:
            b, last = s.read(d, 64, (R.VALUE,))
            s.ack(d, last)
            if len(b) < 64:
                break
secs = time.ticks_diff(time.ticks_ms(), t) / 1000
span = [10 ** 12, 0]


def spans(q, r):
    if r[0] == R.VALUE:
        span[0] = min(span[0], r[4])
        span[1] = max(span[1], r[4])


s.history(spans)
s.scan(1, spans)
hist_bytes = sum(g.size for g in s._hist.segs.values())
hist_values = [0]


def count(q, r):
    if q is None:
        hist_values[0] += 1


s.history(count)
st = os.statvfs("/d")
out = {"values": DAYS * 96 * 64, "folds": s.stats["folds"], "history_values": hist_values[0],
       "history_bytes": hist_bytes, "history_segments": len(s._hist.segs), "main_segments": len(s._main.segs),
       "pool": s.segment_count, "stored_bytes": s.stats["bytes"], "prog_bytes": dev.prog_bytes, "erases": dev.erases,
       "used_blocks": st[2] - st[3], "expired": s.stats["history_expired"], "secs": secs,
       "kept_days": (span[1] - span[0]) / 86400 + 1 / 96, "enospc": s.stats["enospc"], "lost": s.stats["lost"]}
s.close()
print("JSON" + json.dumps(out))
'''


def run(code, heap="256k", **params):
    head = "".join("%s = %r\n" % kv for kv in params.items())
    t = time.time()
    p = subprocess.run([MPY, "-X", "heapsize=" + heap, "-c", head + code], env=ENV, capture_output=True, text=True,
                       timeout=1800)
    if p.returncode:
        raise SystemExit("micropython failed:\n" + p.stdout[-2000:] + p.stderr[-2000:])
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("JSON")][-1]
    out = json.loads(line[4:])
    out["wall_s"] = time.time() - t
    return out


def main():
    print("Record store benchmark (MicroPython %s)" % subprocess.run([MPY, "-c", "import sys; print(sys.version)"],
                                                                   capture_output=True, text=True).stdout.strip())
    sp = run(SPEED, heap="2m")
    print("\n== speed (unix port on this PC; an ESP32 is 20-50x slower)")
    print("  append (encode, frame, CRC; no flush)     %8d records/s" % sp["append_only"])
    for fr in (1, 16, 64):
        print("  append + flush every %-3d records          %8d records/s" % (fr, sp["flush_%d" % fr]))
    print("  VALUEs appended, flush every 16           %8d records/s" % sp["values_flush_16"])
    print("  read + ack VALUEs (batches of 50)         %8d records/s" % sp["read_ack_values"])

    tmp = tempfile.mkdtemp(prefix="nj-bench-")
    minutes = 240
    print("\n== wear: 32 meters x 2 points every minute + 64 VALUEs every 15 min, %d simulated minutes," % minutes)
    print("   4 MiB littlefs2 of 4 KiB blocks (1024 blocks), 48 segments of 64 KiB")
    print("   %-34s %8s %8s %9s %9s %10s %10s" % ("durability window", "rec/flush", "WA bytes", "WA blocks",
                                                  "erases/rec", "erases/day", "lifetime y"))
    rows = []
    for label, fr, timer in (("flush every record", 1, False), ("every 16 records (app default)", 16, False),
                             ("every 64 records", 64, False), ("at the end of each poll burst", 10 ** 6, True)):
        w = run(WEAR, heap="512k", PATH=os.path.join(tmp, "wear.img"), FLUSH_RECORDS=fr, MINUTES=minutes, TIMER=timer)
        per_day = w["erases"] * 1440 / minutes
        # littlefs levels wear dynamically over every block it allocates: with all 1024 blocks in
        # rotation each can take 100,000 erase cycles (ESP32 flash data sheets) before it wears out.
        life = 1024 * 100000 / per_day / 365
        rows.append((label, w, per_day, life))
        print("   %-34s %8.1f %8.2f %9.1f %9.3f %10d %10.0f" % (
            label, w["records"] / max(1, w["flushes"]), w["prog_bytes"] / w["stored_bytes"],
            w["progs"] * 4096 / w["stored_bytes"], w["erases"] / w["records"], per_day, life))
    w0 = rows[0][1]
    print("   stored: %d records, %d bytes (%.1f bytes/record as framed); used blocks at the end: %d"
          % (w0["records"], w0["stored_bytes"], w0["stored_bytes"] / w0["records"], w0["used_blocks"]))
    print("   WA bytes = bytes programmed / bytes stored; WA blocks = program calls x 4096 / bytes stored")
    print("   (littlefs programs at most its 128-byte cache per call, so 'blocks' overstates the wear; erases")
    print("   are what ages flash). Lifetime assumes 100,000 cycles per 4 KiB sector and ideal leveling.")

    days = 12
    c = run(CAPACITY, heap="512k", PATH=os.path.join(tmp, "cap.img"), DAYS=days, SEGMENTS=56)
    bpv = c["history_bytes"] / max(1, c["history_values"])
    full = 54  # bytes of one VALUE record as framed (see docs/STORE.md)
    per_day = 64 * 96
    print("\n== capacity: 64 items x 96 VALUEs/day, %d simulated days, 4 MiB volume, pool of %d x 64 KiB"
          % (days, c["pool"]))
    print("   folds %d, values folded %d in %d bytes of history: %.2f bytes/value (%.0f %% of a full record)"
          % (c["folds"], c["history_values"], c["history_bytes"], bpv, 100 * bpv / full))
    print("   days of 15-min data for 64 items per MiB: full records %.1f, history %.1f"
          % (2 ** 20 / (per_day * full), 2 ** 20 / (per_day * bpv)))
    # The main ring works in 2 + 4 segments; a history segment takes whole folds (one commit each)
    # and starts anew when the next fold may not fit: it fills to k folds of the size seen.
    seg = 65536 - 8 * 16
    fold_out = c["history_bytes"] / max(1, c["folds"])
    k = max(1, int(seg / fold_out - 0.25))
    fill = min(1.0, k * fold_out / seg)
    hist_room = (c["pool"] - 6) * seg * fill
    print("   4 MiB volume, pool %d x 64 KiB: history %d segments filled to %.0f %% = %.2f MiB = %.0f days,"
          % (c["pool"], c["pool"] - 6, 100 * fill, hist_room / 2 ** 20, hist_room / (per_day * bpv)))
    print("   + %.1f days in the main ring" % (6 * 65536 / (per_day * full)))
    print("   6 months (183 days) of history need %.2f MiB at this rate" % (183 * per_day * bpv / 2 ** 20))
    print("   fold cost: %.2f bytes programmed per byte stored; simulated %d days in %.0f s on this PC"
          % (c["prog_bytes"] / c["stored_bytes"], days, c["secs"]))
    if "--long" in sys.argv:
        days = 230
        c = run(CAPACITY, heap="512k", PATH=os.path.join(tmp, "long.img"), DAYS=days, SEGMENTS=56)
        print("\n== capacity, measured: %d simulated days on the 4 MiB volume (%.0f s)" % (days, c["secs"]))
        print("   kept: %.1f days of values (%d in history, %.2f bytes each); history records expired %d;"
              % (c["kept_days"], c["history_values"], c["history_bytes"] / max(1, c["history_values"]), c["expired"]))
        print("   ENOSPC %d, lost %d, used blocks %d of 1024" % (c["enospc"], c["lost"], c["used_blocks"]))
    else:
        print("   (bench/bench_store.py --long simulates 230 days and measures what is kept: about 5 minutes)")


if __name__ == "__main__":
    main()
