"""The data volume: mounting littlefs on a board's block device, formatting only a blank one.

Owns the one rule every board follows (esp32_common and the sim board call this): a blank device
is formatted, a damaged one is never wiped. Kept apart from nengjian.store.blockdev so a board
with real flash does not load the simulated devices to mount its partition.
"""


def mount(dev, mount_point, format_if_blank=True):
    """Mount the littlefs volume on `dev` at mount_point; returns the mount point.

    A blank device (all 0xFF where littlefs keeps its superblocks) is formatted first; a damaged one
    raises OSError and is left as it is, for a crew to pull, never wiped: the app starts safe mode
    instead."""
    import vfs

    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        if not format_if_blank or not is_blank(dev):
            raise
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, mount_point)
    return mount_point


def is_blank(dev):
    """Whether the start of both superblocks (blocks 0 and 1) is erased."""
    buf = bytearray(64)
    for block in (0, 1):
        dev.readblocks(block, buf)
        for b in buf:
            if b != 0xFF:
                return False
    return True
