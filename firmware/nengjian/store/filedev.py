"""The sim board's flash: a littlefs block device backed by a host file (its data partition,
data.img, and its ROMFS partitions), and nothing more.

Owns the file's side of the littlefs block-device protocol (readblocks/writeblocks with an offset,
ioctl 3-6). A program is written as given (the file is trusted to hold erased bytes where littlefs
programs). A missing or short file is made up to size with erased blocks; what it holds already
stays. The counters and the power cut of the store's tests are nengjian.store.blockdev's
(FileBlockDevice adds them to this one): a module apart, so that a sim gateway does not load them.

littlefs calls these methods from C, sometimes with the MicroPython heap locked (a file closed by
the garbage collector): they allocate nothing.
"""


def geometry(dev, op):
    """ioctl 4 (the block count) and 5 (the block size) of any block device with `blocks` and
    `block_size`; 0 for every other op (nengjian.store.blockdev's devices answer through it too)."""
    if op == 4:
        return dev.blocks
    if op == 5:
        return dev.block_size
    return 0


class FileDevice:
    def __init__(self, path, blocks, block_size=4096):
        self.block_size = block_size
        self.blocks = blocks
        try:
            self._f = open(path, "r+b")
        except OSError:
            self._f = open(path, "w+b")
        self._erased = b"\xff" * block_size
        self._one = bytearray(1)
        end = self._f.seek(0, 2)
        want = blocks * block_size
        if end < want:
            self._f.seek(end - end % block_size)
            for _ in range((want - end + block_size - 1) // block_size):
                self._f.write(self._erased)

    # ---- the littlefs block-device protocol, without counters or a power cut
    def readblocks(self, block, buf, offset=0):
        self._get(block, buf, offset)
        return 0

    def writeblocks(self, block, buf, offset=None):
        self._put(block, buf, offset or 0, len(buf))
        return 0

    def ioctl(self, op, arg):
        if op == 6:
            self._wipe(arg, self.block_size)
        elif op == 3:
            self._f.flush()
        return geometry(self, op)

    # ---- the file's bytes (nengjian.store.blockdev's devices call these too)
    def _get(self, block, buf, offset):
        self._f.seek(block * self.block_size + offset)
        self._f.readinto(buf)

    def _put(self, block, buf, offset, n):
        self._f.seek(block * self.block_size + offset)
        if n == len(buf):
            self._f.write(buf)
            return
        one = self._one
        for i in range(n):  # byte by byte: a slice of buf would allocate
            one[0] = buf[i]
            self._f.write(one)

    def _wipe(self, block, n):
        self._f.seek(block * self.block_size)
        if n == self.block_size:
            self._f.write(self._erased)
            return
        one = self._one
        one[0] = 0xFF
        for _ in range(n):
            self._f.write(one)

    def _flush(self):
        self._f.flush()

    def close(self):
        self._f.close()
