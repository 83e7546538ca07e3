"""`nengjian visit` and `nengjian manual`: what a crew writes into a gateway's own ledger and store.

Both go through the running gateway's USB console (the application keeps polling): a visit is a
ledger event the 30-day inspection rule asks for; a manual entry is a day/month/year value no
meter measures (a coal or oil delivery), checked here with the firmware's own rules first, then
stored by the gateway with input type 5 and uploaded like any other value.
"""

from __future__ import annotations

import json
import sys

from nengjian_host.common import paths

if str(paths.FIRMWARE) not in sys.path:
    sys.path.insert(0, str(paths.FIRMWARE))

STAT_TYPES = {"day": 1, "month": 2, "year": 3}


class EntryError(ValueError):
    """An entry the gateway would refuse: nothing was sent. The text names the fix."""


def visit_command(who: str, note: str) -> str:
    """The console command that records a visit by `who` (what was checked: `note`)."""
    text = note.strip()
    if not who or not text:
        raise EntryError("say who visited (--who) and what was checked (the note)")
    return "visit %s: %s" % (who, text.replace("\n", " "))


def manual_entry(code: str, period: str, start: str, value: str, scope: int = 1, who: str = "") -> tuple[str, str]:
    """(what the entry is, for a person; the console command that stores it), checked with the
    firmware's own rules (nengjian.values.manual). EntryError if they refuse it."""
    from nengjian.core import timeutil
    from nengjian.values import manual

    stat = STAT_TYPES[period]
    try:
        stat_start, checked = manual.check(code, stat, start, value, scope)
    except manual.ManualError as e:
        raise EntryError(str(e)) from None
    what = f"{code} {period} {timeutil.cst_text(stat_start)} = {checked.text()} (scope {scope})"
    req = {"code": code, "stat_type": stat, "stat_start": stat_start, "value": value, "scope": scope, "who": who}
    return what, "manual " + json.dumps(req, separators=(",", ":"))


def send(con, command: str) -> dict:
    """Run one entry's console command on the gateway (a device.Console); its answer (with "seq", the
    record it became). DeviceError if the gateway refuses it."""
    return con.request(command)[-1]
