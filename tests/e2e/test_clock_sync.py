"""Clock sync end to end on the sim board with a settable RTC (NJ_RTC), as on an ESP32: a local NTP
server and the platform's Date header (over verified TLS) set the gateway's clock. Nothing is stamped
before the first sync; a drift within clock.max_step_s is corrected from NTP alone; a large step is held
until a second source (the platform's Date header) agrees. Every setting is a clock event in the
gateway's ledger, read back here through the console and the host ledger's parser, and the RTC offset
the board wrote is what the launcher reads back."""

from __future__ import annotations

import re

import pytest
from nengjian_host.crew import ledger
from nengjian_host.sim.ntp import SimNtpServer
from simrig import cst_to_utc, make_pki

pytestmark = [pytest.mark.e2e]

DAYS_OFF = 2 * 86400  # the RTC at boot: two days behind (an RTC that lost its time)
SLACK = 4  # s of simulated time a loaded host may put between the server's answer and its use


def _clock_events(dut) -> list[dict]:
    events = [{"event": e["kind"], "text": e["text"], "ts": e["ts"]} for e in dut.events(200)]
    return ledger._clock_steps(events)


def _near(value: int, want: int) -> bool:
    return abs(value - want) <= SLACK


@pytest.mark.clock(speed=6)
def test_ntp_trusts_then_corrects_a_drift_and_holds_a_lone_large_step(rig, dut, platform):
    if rig.spec.kind != "sim":
        pytest.skip("needs the sim board's settable RTC")
    with SimNtpServer(clock=rig.now) as ntp:
        cfg = dut.site()
        cfg["clock"] = {"ntp": [ntp.address], "sync_s": 10, "max_step_s": 300}
        dut.gateway.settable_rtc(-DAYS_OFF)
        ntp.silent = True  # until the gateway has shown that an untrusted clock stamps nothing
        dut.start(cfg)
        dut.expect(r"clock not trusted: reading of m1 not stored", timeout=60)
        ntp.silent = False
        m = dut.expect(r"event\s+clock: clock trusted from ntp %s \(\S+, step ([+-]\d+) s\)" % re.escape(ntp.address),
                       timeout=60)
        assert _near(int(m.group(1)), DAYS_OFF)
        assert _near(dut.gateway.rtc_offset(), 0), "the board's RTC file was not set"
        # Values come with the right statistics times: the platform (whose clock is the true one)
        # takes them, each for a period near now, none two days back.
        rig.wait_for(lambda: len(platform.records()) >= 2, timeout=60, what="values at the platform")
        for row in platform.records():
            assert abs(cst_to_utc(row["statDate"]) - rig.now()) < 3600, row

        ntp.offset_s = 40  # the gateway's RTC drifted 40 s behind: corrected from NTP alone
        m = dut.expect(r"event\s+clock: clock stepped by ([+-]\d+) s from ntp %s" % re.escape(ntp.address),
                       timeout=60)
        assert _near(int(m.group(1)), 40)
        assert _near(dut.gateway.rtc_offset(), 40)

        ntp.offset_s = 40 + 3600  # a lone source says the clock is an hour off: held, the clock untouched
        m = dut.expect(r"event\s+clock: clock not stepped: ntp %s puts the clock ([+-]\d+) s off, more than "
                       r"clock.max_step_s \(300 s\)" % re.escape(ntp.address), timeout=60)
        assert _near(int(m.group(1)), 3600)
        assert _near(dut.gateway.rtc_offset(), 40)

        steps = _clock_events(dut)
        assert [(c["what"].split(" /")[0], c["taken"]) for c in steps] == [
            ("first sync after boot", True), ("stepped", True), ("refused: one source only", False)], steps
        assert _near(steps[1]["step_s"], 40) and not steps[1]["flag"]
        dut.stop()
    assert "Traceback" not in dut.output()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.clock(speed=6)
@pytest.mark.sim_heap("384k")  # TLS to the platform (see test_platform_variants.HEAP)
def test_the_platform_date_header_trusts_the_clock_and_confirms_a_large_ntp_step(rig, dut, bus, tmp_path, pki):
    if rig.spec.kind != "sim":
        pytest.skip("needs the sim board's settable RTC")
    from nengjian_host.sim.refplatform import RefPlatform

    shift = [0.0]  # what the platform's clock is ahead of the rig's true time
    tls = RefPlatform(db_path=str(tmp_path / "tls.sqlite"), period_s=rig.period, clock=lambda: rig.now() + shift[0],
                      certfile=str(pki / "srv.pem"), keyfile=str(pki / "srv.key")).start()
    try:
        with SimNtpServer(clock=rig.now) as ntp:
            ntp.silent = True  # the site's NTP server is down at boot: the platform's time is all there is
            cfg = dut.site()
            cfg["destinations"][0].update(url=tls.url + "/api/register", ca="platform-ca.pem")
            # agree_s: two sources measured a few simulated seconds apart agree (the clock runs x6)
            cfg["clock"] = {"ntp": [ntp.address], "sync_s": 10, "max_step_s": 300, "agree_s": 20}
            (dut.gateway.dir / "config").mkdir(parents=True, exist_ok=True)
            (dut.gateway.dir / "config" / "platform-ca.pem").write_bytes((pki / "ca.pem").read_bytes())
            dut.gateway.settable_rtc(-DAYS_OFF)
            dut.start(cfg)
            m = dut.expect(r"event\s+clock: clock trusted from Date header of 127\.0\.0\.1 \(\S+, step ([+-]\d+) s\)",
                           timeout=90)
            assert _near(int(m.group(1)), DAYS_OFF)
            assert _near(dut.gateway.rtc_offset(), 0)
            rig.wait_for(lambda: len(tls.records()) >= 2, timeout=60, what="values at the platform")

            # NTP comes back and says the clock is an hour behind: one source, held ...
            ntp.offset_s = 3600
            ntp.silent = False
            dut.expect(r"event\s+clock: clock not stepped: ntp %s puts the clock \+\d+ s off" % re.escape(ntp.address),
                       timeout=60)
            assert _near(dut.gateway.rtc_offset(), 0)
            # ... until the platform's Date header says the same: the step is taken on both words.
            shift[0] = 3600
            m = dut.expect(r"event\s+clock: clock stepped by ([+-]\d+) s from Date header of 127\.0\.0\.1 \+ ntp %s"
                           % re.escape(ntp.address), timeout=60)
            assert _near(int(m.group(1)), 3600)
            assert _near(dut.gateway.rtc_offset(), 3600)
            steps = _clock_events(dut)
            assert [(c["taken"], c["flag"]) for c in steps] == [(True, False), (False, False), (True, True)], steps
            dut.stop()
    finally:
        tls.close()
    assert "Traceback" not in dut.output()
