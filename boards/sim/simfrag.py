"""The sim board's heap-fragmentation seam (NJ_FRAGMENT_HEAP, tests only): the heap of a gateway that
has run for weeks, on demand. A gateway in the field had 22 KB free and no free block over 448 bytes;
a fresh sim heap has blocks of tens of kilobytes, so without this no end-to-end test meets the
firmware's paths for a fragmented heap (an update check deferred to the restart, nengjian.ota).

Once the application has started (board.network_links(), called as it builds its destinations),
the first step of an asyncio task imports the modules named after the hole size, if any
("448:nengjian.ota.fetch,..."), then fills every free block with holes of `hole` bytes and smallest
blocks between them, then frees the holes: tens of kilobytes stay free, none in a block much over
`hole`. What it keeps is held until the process ends. Only a run that began at power-on is
fragmented (board.py): a reset gives the board a fresh heap, and the runs after one start whole, as
the firmware expects of the run it restarts into (the update check at its start, before weeks of
running fragment it); the boot path (main.py's install_pending, before network_links) is never
fragmented. It prints one line saying what it left (tests wait for it).

Loading a module wants blocks larger than such holes (its constant table: 728 bytes for
nengjian.ota.updater; sys.modules' own table when it grows: 1,168 bytes at 59 modules): an update
check that imports its code after the fill cannot, and restarts for a check in a whole heap
(nengjian.ota.resident). Naming its modules here has them loaded first, as on a gateway whose heap
fragmented while they were in: the check then reaches its signature check's own deferral.

Loaded only when NJ_FRAGMENT_HEAP is set, and kept loaded: its own code, freed after the fill,
would leave a block larger than the holes.
"""

import asyncio
import gc

_held = None


def later(spec):
    """Fragment the heap at the application's first yield, once per process. spec: NJ_FRAGMENT_HEAP,
    "HOLE" or "HOLE:module,module,...", the modules imported first (in the whole heap)."""
    global _held
    if _held is None:
        _held = ()
        hole, _, names = spec.partition(":")
        asyncio.create_task(_fragment(int(hole), [n for n in names.split(",") if n]))


def largest_free():
    """The largest block the heap can hand out now (bytes): a binary search of allocations."""
    gc.collect()
    lo, hi = 0, gc.mem_free() + 1
    while hi - lo > 16:
        mid = (lo + hi) // 2
        try:
            bytearray(mid)
            lo = mid
        except MemoryError:
            hi = mid
    gc.collect()
    return lo


async def _fragment(hole, modules=()):
    global _held
    for name in modules:
        __import__(name)
    before = (gc.mem_free(), largest_free())
    # Chains of pairs, not lists: a list of their size would itself want a block far above `hole`.
    keep = drop = None
    try:
        while True:
            drop = (drop, bytearray(hole))
            keep = (keep, bytearray(hole))
    except MemoryError:
        pass
    # What is left is filled with the smallest blocks: a gap beside a hole would make a larger one of it.
    pins = None
    try:
        while True:
            pins = (pins, bytearray(1))
    except MemoryError:
        pass
    drop = None
    _held = (keep, pins)
    keep = pins = None
    gc.collect()
    print("sim: heap fragmented (NJ_FRAGMENT_HEAP=%d): %d bytes free, largest free block %d bytes "
          "(before: %d free, largest %d)" % ((hole, gc.mem_free(), largest_free()) + before))
