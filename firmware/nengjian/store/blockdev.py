"""Block devices for the sim board and the store's tests: RAM- or file-backed, counting every read,
program and erase, and able to cut the power at the Nth program or erase.

Owns: the littlefs block-device protocol (readblocks/writeblocks with an offset, ioctl 1-6) for
devices that are not real flash, NOR-flash program semantics (a program only clears bits), and the
fault model of a power cut:

    CLEAN   operations 1..N persist; N+1 and later do not
    TORN    operation N persists only in part: a program writes the first half of its bytes, an
            erase blanks the first half of the block (the rest keeps its old bytes)
    ERASED  the cut lands between an erase and the programs meant to fill the block: an erase at N
            persists, a program at N does not (its bytes stay erased)

After the cut every call returns -5 (EIO), as a dead chip would fail, until power_on().

littlefs calls these methods from C, sometimes with the MicroPython heap locked (a file closed by
the garbage collector): readblocks, writeblocks and ioctl allocate nothing. Copies go through viper
helpers on MicroPython (slicing a memoryview would allocate); the RAM image is preallocated,
one bytearray per block.
"""

import sys

from nengjian.store.filedev import FileDevice, geometry

EIO = -5
CLEAN = 0
TORN = 1
ERASED = 2
MODES = ("clean", "torn", "erased")

if False:  # names the viper emitter provides; declared here for linters only
    ptr8 = None

if sys.implementation.name == "micropython":
    import micropython

    @micropython.viper
    def _program(dst, doff: int, src, n: int):
        # NOR flash: programming can only clear bits.
        d = ptr8(dst)
        s = ptr8(src)
        i = 0
        while i < n:
            d[doff + i] = d[doff + i] & s[i]
            i += 1

    @micropython.viper
    def _read(dst, src, soff: int, n: int):
        d = ptr8(dst)
        s = ptr8(src)
        i = 0
        while i < n:
            d[i] = s[soff + i]
            i += 1

    @micropython.viper
    def _fill(dst, off: int, n: int):
        d = ptr8(dst)
        i = 0
        while i < n:
            d[off + i] = 0xFF
            i += 1

    @micropython.viper
    def _blank(src, off: int, n: int) -> int:
        s = ptr8(src)
        i = 0
        while i < n:
            if s[off + i] != 0xFF:
                return 0
            i += 1
        return 1

else:  # CPython: allocation does not matter there

    def _program(dst, doff, src, n):
        dst[doff:doff + n] = bytes(a & b for a, b in zip(dst[doff:doff + n], src[:n]))

    def _read(dst, src, soff, n):
        dst[:n] = src[soff:soff + n]

    def _fill(dst, off, n):
        dst[off:off + n] = b"\xff" * n

    def _blank(src, off, n):
        return 1 if src[off:off + n] == b"\xff" * n else 0


class _Device:
    """What both devices share: the littlefs protocol (readblocks/writeblocks/ioctl), the counters
    and the power cut. A subclass stores the bytes: _get(block, buf, offset), _put(block, buf,
    offset, n) programs the first n bytes of buf, _wipe(block, n) erases the first n bytes of a
    block, _flush()."""

    if False:  # what a subclass provides, declared for the type checker only (compiled to nothing)
        blocks = 0
        block_size = 0

        def _get(self, block, buf, offset): ...

        def _put(self, block, buf, offset, n): ...

        def _wipe(self, block, n): ...

        def _flush(self): ...

    def _init_faults(self):
        self.reads = 0
        self.progs = 0
        self.prog_bytes = 0
        self.erases = 0
        self.ops = 0  # programs + erases since the counters were reset
        self.cut = False
        self._cut_at = 0
        self._mode = CLEAN
        self.cut_op = 0  # the op the power died on, and what it was ("prog"/"erase")
        self.cut_kind = ""
        self._dead = False

    def reset_counters(self):
        self.reads = self.progs = self.prog_bytes = self.erases = self.ops = 0

    def arm(self, n, mode=CLEAN):
        """Cut the power at the nth program/erase from now (n >= 1); 0 disarms."""
        if self._dead:
            raise OSError(EIO)
        self._cut_at = self.ops + n if n else 0
        self._mode = mode
        self.cut = False

    def power_on(self):
        if self._dead:
            raise OSError(EIO)
        self.cut = False
        self._cut_at = 0

    def kill(self):
        """Cut the power for good: littlefs objects still holding this device (files the garbage
        collector has yet to close) can never write again, whatever device is made next."""
        self.cut = True
        self._dead = True

    def _step(self):
        """Count one program/erase and say what to do with it: 0 do it, 1 do half of it (the cut,
        torn), 2 fail it (after the cut), 3 the cut in erased mode (an erase is done, a program is not)."""
        if self.cut:
            return 2
        self.ops += 1
        if self._cut_at and self.ops >= self._cut_at:
            self.cut = True
            self.cut_op = self.ops
            if self._mode == TORN:
                return 1
            if self._mode == ERASED:
                return 3
            return 0
        return 0

    # ---- the littlefs block-device protocol
    def readblocks(self, block, buf, offset=0):
        if self.cut:
            return EIO
        self.reads += 1
        self._get(block, buf, offset)
        return 0

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            offset = 0
        act = self._step()
        if act == 2:
            return EIO
        n = len(buf)
        self.progs += 1
        self.prog_bytes += n
        if act:
            self.cut_kind = "prog"
            if act == 3:
                return EIO
            n = n // 2
        self._put(block, buf, offset, n)
        return EIO if act else 0

    def ioctl(self, op, arg):
        if op == 6:
            act = self._step()
            if act == 2:
                return EIO
            self.erases += 1
            n = self.block_size
            if act:
                self.cut_kind = "erase"
                if act == 1:
                    n = n // 2
            self._wipe(arg, n)
            return EIO if act == 1 else 0
        if op == 3:
            if self.cut:
                return EIO
            self._flush()
        return geometry(self, op)


class RAMBlockDevice(_Device):
    """A littlefs block device in RAM: one preallocated bytearray per block (littlefs never reads or
    writes across a block boundary, and many small buffers fit a fragmented heap where one large one
    would not)."""

    def __init__(self, blocks, block_size=4096, data=None):
        self.blocks = blocks
        self.block_size = block_size
        if data is None:
            data = [bytearray(block_size) for _ in range(blocks)]
            for b in data:
                _fill(b, 0, block_size)
        self.data = data  # may be shared: a new device object on the same image after a cut
        self._init_faults()

    def _get(self, block, buf, offset):
        _read(buf, self.data[block], offset, len(buf))

    def _put(self, block, buf, offset, n):
        _program(self.data[block], offset, buf, n)

    def _wipe(self, block, n):
        _fill(self.data[block], 0, n)

    def _flush(self):
        pass

    # ---- outside littlefs callbacks (these may allocate)
    def snapshot(self):
        """The image as [(block, bytes)] for the blocks that are not blank: cheap to keep."""
        bs = self.block_size
        return [(i, bytes(b)) for i, b in enumerate(self.data) if not _blank(b, 0, bs)]

    def restore(self, snap):
        for b in self.data:
            _fill(b, 0, self.block_size)
        for i, content in snap:
            self.data[i][:] = content
        self.power_on()

    def image(self):
        return b"".join(bytes(b) for b in self.data)

    def save(self, path):
        with open(path, "wb") as f:
            for b in self.data:
                f.write(b)

    def load(self, path):
        with open(path, "rb") as f:
            for b in self.data:
                f.readinto(b)


class FileBlockDevice(_Device, FileDevice):
    """A littlefs block device backed by a host file (nengjian.store.filedev, the sim board's), with
    the same counters and power cut."""

    def __init__(self, path, blocks, block_size=4096):
        FileDevice.__init__(self, path, blocks, block_size)
        self._init_faults()
