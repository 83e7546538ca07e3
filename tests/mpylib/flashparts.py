"""One flash chip's partitions over one RAM block device, for the ROMFS tests on MicroPython
(tests/firmware/test_romcopy.py, tests/firmware/ota/test_romfs_powercut.py): the app filesystem and
the three ROMFS partitions (`romfs` as "active", the stores "a" and "b") are windows of its blocks,
so one count of program/erase operations covers both kinds of write, as on one power line."""


class Window:
    """Blocks start..start+count-1 of dev, as esp32.Partition offers a partition."""

    def __init__(self, dev, start, count):
        self.dev = dev
        self.start = start
        self.count = count

    def readblocks(self, block, buf, offset=0):
        return self.dev.readblocks(self.start + block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        return self.dev.writeblocks(self.start + block, buf, offset)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.count
        if op == 6:  # erase a block
            return self.dev.ioctl(6, self.start + arg)
        return self.dev.ioctl(op, arg)


def layout(dev, fs_blocks, part_blocks):
    """(the app filesystem's window, {"active", "a", "b"}: the ROMFS partitions after it)."""
    fs = Window(dev, 0, fs_blocks)
    parts = {"active": Window(dev, fs_blocks, part_blocks), "a": Window(dev, fs_blocks + part_blocks, part_blocks),
             "b": Window(dev, fs_blocks + 2 * part_blocks, part_blocks)}
    return fs, parts


def content(part, n, buf):
    """The first n bytes the partition holds, read a block (len(buf)) at a time."""
    out = bytearray()
    block = 0
    while len(out) < n:
        part.readblocks(block, buf, 0)
        out.extend(buf)
        block += 1
    return bytes(out[:n])
