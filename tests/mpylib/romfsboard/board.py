"""A stand-in board module for the ROMFS update tests on MicroPython (tests/firmware/ota/
test_romfs_install.py, test_romfs_powercut.py): the test sets PARTS (the romfs_stores() answer: RAM
block devices), and reset() only counts, so a test sees each reset the update code asks for."""

PARTS = None
RESETS = []


def romfs_stores():
    return PARTS


def reset():
    RESETS.append(1)
