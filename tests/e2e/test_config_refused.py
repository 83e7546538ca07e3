"""A site config with a malformed data-item code, or a code that breaks the scope rule (SPEC 3.3: scope 1
forces process 00, scopes 1-2 unit 00, scopes 1-3 equipment 0000), is refused by the firmware itself
on MicroPython: the gateway boots into safe mode naming the item and the rule, polls nothing, and
starts once the config is fixed."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e]

REFUSALS = [
    # (item index, field, bad value, scope, what the refusal says)
    (0, "code", "00-00-0000-02330-11", 1, r"items\[0\]\.code: '00-00-0000-02330-11' is shorter than 20"),
    (0, "code", "00-00-0000-0233OO-11", 1, r"items\[0\]\.code: must be 16 digits written 2-2-4-6-2 with hyphens"),
    (0, "code", "03-00-0000-023300-11", 1, r"items\[0\]\.code: scope 1 \(whole plant\) needs process 00"),
    (1, "code", "01-02-0000-023300-11", 2, r"items\[1\]\.code: scope 2 needs process unit 00"),
    (1, "code", "01-02-0007-023300-11", 3, r"items\[1\]\.code: scope 3 needs equipment 0000"),
]


def test_bad_code_or_broken_scope_rule_is_refused_on_micropython_then_fixed(rig, dut):
    good = dut.site()
    for i, (item, field, value, scope, refusal) in enumerate(REFUSALS):
        cfg = dut.site()
        cfg["items"][item].update({field: value, "scope": scope})
        if i == 0:
            dut.start(cfg)
        else:
            dut.put_config(cfg)  # over the console, as an installer fixes it; safe mode re-reads the file
        dut.expect(r"SAFE MODE: config: " + refusal, timeout=60)
        if i == 0:
            refused_at = len(dut.output())  # a desk rig's gateway may have polled its old config before
        assert dut.alive()
    assert " poll " not in dut.output()[refused_at:], "a refused config must not poll"
    dut.put_config(good)
    dut.expect(r"config is valid now", timeout=60)
    dut.expect(r" poll\s+m1 at ", timeout=30)
    dut.stop()
    assert "Traceback" not in dut.output()
