"""Console log: one line per event, UTC-stamped, with a tag naming the stage that speaks.

The console is what an installer sees on USB and what `make run` shows; it is not the ledger
(faults that must be kept go to the store as events, see nengjian.events).
"""

import sys

from nengjian.core import timeutil

DEBUG = 10
INFO = 20
WARN = 30
ERROR = 40
_NAMES = {DEBUG: "D", INFO: "I", WARN: "W", ERROR: "E"}

level = INFO


def log(lvl, tag, msg):
    if lvl < level:
        return
    sys.stdout.write("%s %s %-6s %s\n" % (timeutil.iso_utc(timeutil.now()), _NAMES.get(lvl, "?"), tag, msg))


def debug(tag, msg):
    if level <= DEBUG:
        log(DEBUG, tag, msg)


def info(tag, msg):
    log(INFO, tag, msg)


def warn(tag, msg):
    log(WARN, tag, msg)


def error(tag, msg):
    log(ERROR, tag, msg)
