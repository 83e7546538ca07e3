"""The console's ledger commands (visit, check, calibrate, manual in firmware/nengjian/console/commands.py)
in safe mode, where no application runs: each is refused with what that costs the crew, and nothing
is recorded. CPython with a stand-in console."""

import asyncio

import pytest
from nengjian.console import commands as consolecmd


class Con:
    gw = None

    def __init__(self):
        self.answers, self.failures = [], []

    def answer(self, rid, doc, end):
        self.answers.append(doc)

    def fail(self, rid, text):
        self.failures.append(text)


@pytest.mark.parametrize("cmd,text,why", [
    ("visit", "Zhang: meters read", "nothing to record into"),
    ("check", '{"meter": "m1", "point": "energy_kwh", "displayed": "1.0"}', "no readings to compare"),
    ("calibrate", '{"meter": "m1", "certificate": "C1", "date": "2026-11-01", "due": "2027-11-01"}',
     "nothing to record into"),
    ("manual", '{"code": "x", "stat_type": 1, "stat_start": "2026-12-01", "value": "1"}',
     "manual entries need the store"),
])
def test_a_ledger_command_in_safe_mode_is_refused_with_the_reason(cmd, text, why):
    con = Con()
    asyncio.run(consolecmd.run(con, 1, cmd, [], text))
    assert con.failures == ["the application is not running (safe mode): " + why] and con.answers == []
