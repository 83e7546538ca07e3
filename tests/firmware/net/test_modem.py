"""The firmware's AT driver, 4G link and link supervisor on MicroPython, against the simulated modem on a pty.

Each modem state (no SIM, PIN, PUK, searching, denied, weak signal, dropped call, a modem that stops
answering, a modem switched off) must end in the right diagnostic and, where the gateway can act,
the right recovery (re-dial, PWRKEY power cycle), with the state changes logged as ledger events.
Timeouts are shortened through NJ_MODEM_TIMING; the driver's logic is unchanged.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from mpyrun import run_mpy
from nengjian_host.sim.modem import SimModem

pytestmark = [pytest.mark.mpy]

# The simulated modules' switch-off thresholds, and the driver's presses: a 60 ms on-press stays far
# under both (a loaded machine stretches a blocking sleep by a few ms, not 140), the off presses over.
QUECTEL_OFF_MS = 200
SIMCOM_OFF_MS = 350
TIMING = {"at_ms": 150, "boot_ms": 800, "off_ms": 200, "pwrkey_on_ms": 60, "pwrkey_off_ms": 250,
          "pwrkey_off_simcom_ms": 400,
          "sim_ms": 1500, "reg_ms": 1500, "reg_poll_ms": 100, "dial_ms": 1500, "guard_ms": 250}

BRING_UP = """
import asyncio, json, board
link = board.network_links()[0]
async def main():
    ok = await link.up()
    print("RESULT " + json.dumps({"ok": ok, "up": link.is_up(), "error": link.last_error,
                                  "diag": link.modem.diag, "status": link.status()}))
asyncio.run(main())
"""

# The supervisor drives the link until it has come up WANT times (or LIMIT ms pass); events are
# printed as the ledger would record them.
SUPERVISE = """
import asyncio, json, time, board
from nengjian.net import failover as supervisor
def ev(kind, text, code=None):
    print("EVENT %s: %s" % (kind, text))
link = board.network_links()[0]
link.modem._event = ev
sup = supervisor.Supervisor([link], ev, keepalive_s=3600, retry_s=0, check_ms=50, power_cycle_after=PCA)
async def main():
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < LIMIT:
        await sup.step()
        if sup.is_up():
            print("UP %d" % link.ups)
            if link.ups >= WANT:
                break
    print("RESULT " + json.dumps({"up": sup.is_up(), "ups": link.ups, "diag": link.modem.diag,
                                  "stats": sup.stats}))
asyncio.run(main())
"""


@pytest.fixture
def modem(tmp_path):
    m = SimModem(str(tmp_path / "pwrkey"), on_ms=50, off_ms=QUECTEL_OFF_MS, boot_s=0.2, guard_s=0.2).start()
    yield m
    m.close()


def _env(m, **extra):
    env = {"NJ_MODEM": m.path, "NJ_MODEM_CTL": m.ctl_path, "NJ_MODEM_TIMING": json.dumps(TIMING)}
    env.update(extra)
    return env


def _result(proc):
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError("no RESULT line\n--- stdout\n%s\n--- stderr\n%s" % (proc.stdout, proc.stderr))


def bring_up(m, **extra):
    return _result(run_mpy(BRING_UP, env=_env(m, **extra), timeout=60))


def supervise(m, want=1, limit_ms=20000, power_cycle_after=2, **extra):
    code = SUPERVISE.replace("PCA", str(power_cycle_after)).replace("LIMIT", str(limit_ms)).replace("WANT", str(want))
    proc = run_mpy(code, env=_env(m, **extra), timeout=90)
    return _result(proc), proc.stdout


def when(predicate, action, timeout=20.0):
    """Run `action` in the background as soon as `predicate()` holds (a test's hand on the modem)."""
    def loop():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                action()
                return
            time.sleep(0.01)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("model,vendor,ccid_cmd", [("quectel", "QUECTEL", "AT+QCCID"), ("simcom", "SIMCOM", "AT+CICCID")])
def test_bring_up_to_data_mode(tmp_path, model, vendor, ccid_cmd):
    with SimModem(str(tmp_path / "pwrkey"), model=model, on_ms=50, off_ms=QUECTEL_OFF_MS) as m:
        r = bring_up(m, NJ_APN="cmiot")
        assert r["ok"] and r["up"], r
        d = r["diag"]
        assert d["stage"] == "data" and d["state"] == "data" and d["error"] == ""
        assert d["vendor"] == vendor and d["imei"] == "866123456789012" and d["iccid"] == "89860012345678901234"
        assert d["sim"] == "READY" and d["reg"] == "home" and d["operator"] == "CHINA MOBILE"
        assert d["csq"] == 22 and d["rssi_dbm"] == -69
        assert m.apn == "cmiot" and m.mode == "data" and m.dials == 1
        # Echo goes off before anything is parsed; the SIM is checked before registration, the APN set before dialling.
        cmds = m.commands
        assert cmds.index("ATE0") < cmds.index("AT+CPIN?") < cmds.index("AT+CEREG?") \
            < cmds.index('AT+CGDCONT=1,"IP","cmiot"') < cmds.index("ATD*99#")
        assert ccid_cmd in cmds


def test_no_sim(modem):
    modem.sim = "absent"
    r = bring_up(modem)
    assert not r["ok"]
    assert r["diag"]["stage"] == "sim" and r["diag"]["sim"] == "not inserted"
    assert "no SIM card" in r["error"]
    assert modem.dials == 0


def _rendered(status: dict) -> str:
    """What `nengjian status` prints for this link status (the console's `links` entry)."""
    import io

    from nengjian_host.crew.status import render
    from rich.console import Console

    out = Console(record=True, width=140, color_system=None, file=io.StringIO())
    render({"gateway_id": "NJ-1", "mode": "run", "links": [status]}, console=out)
    return out.export_text()


@pytest.mark.parametrize("state,stage,problem,shown", [
    ({"sim": "absent"}, "sim (module on)", "no SIM card", ["not measured yet", "not checked yet"]),
    ({"hung": True}, "power (module silent)", "modem does not answer AT",
     ["not identified", "2 PWRKEY press(es)"]),
    ({"csq": 99, "reg": "none"}, "registration", "not registered after", ["unknown (CSQ 99)"]),
], ids=["no-sim", "silent", "no-signal"])
def test_status_shows_an_installer_why_4g_is_not_up(modem, state, stage, problem, shown):
    for k, v in state.items():
        setattr(modem, k, v)
    text = _rendered(bring_up(modem)["status"])
    assert "modem (4g)" in text and "'stage'" not in text  # a table, not a dict dump
    assert problem in next(line for line in text.splitlines() if "problem" in line), text
    assert stage in next(line for line in text.splitlines() if "stage" in line), text
    assert all(s in text for s in shown), text


def test_status_shows_signal_operator_and_recoveries_when_up(modem):
    text = _rendered(bring_up(modem)["status"])
    assert "-69 dBm, excellent (CSQ 22)" in text
    assert "home, CHINA MOBILE" in text and "ICCID 89860012345678901234" in text
    assert "1 dialled, 0 refused" in text and "0 power cycle(s), 0 restart(s) by itself" in text
    assert "problem" in text and "none" in text.split("problem", 1)[1].splitlines()[0]


def test_pin_required_and_configured(modem):
    modem.sim = "pin"
    r = bring_up(modem, NJ_SIM_PIN="1234")
    assert r["ok"], r
    assert 'AT+CPIN="1234"' in modem.commands


def test_pin_required_but_missing(modem):
    modem.sim = "pin"
    r = bring_up(modem)
    assert not r["ok"] and r["diag"]["stage"] == "sim"
    assert "PIN required but none configured" in r["error"]


def test_wrong_pin_is_never_retried(modem):
    """Three wrong PINs lock the SIM: the supervisor keeps trying the link, but the PIN goes out once."""
    modem.sim = "pin"
    r, out = supervise(modem, limit_ms=2500, power_cycle_after=0, NJ_SIM_PIN="9999")
    assert not r["up"]
    assert sum(1 for c in modem.commands if c.startswith("AT+CPIN=")) == 1
    assert modem.pin_tries == 2 and modem.sim == "pin"
    assert "PIN rejected" in out and "not retried" in out


def test_puk_locked(modem):
    modem.sim = "puk"
    r = bring_up(modem, NJ_SIM_PIN="1234")
    assert not r["ok"] and "PUK" in r["error"]
    assert not any(c.startswith("AT+CPIN=") for c in modem.commands)


def test_searching_then_registered(modem):
    modem.reg_delay_s = 0.6
    r = bring_up(modem)
    assert r["ok"], r
    assert modem.commands.count("AT+CEREG?") >= 2


def test_never_registers(modem):
    modem.reg = "searching"
    r = bring_up(modem)
    assert not r["ok"]
    assert r["diag"]["stage"] == "registration" and r["diag"]["reg"] == "searching"
    assert "not registered after 1 s (searching)" in r["error"] and "dBm" in r["error"]
    assert modem.dials == 0


def test_registration_denied(modem):
    modem.reg = "denied"
    r = bring_up(modem)
    assert not r["ok"] and r["diag"]["reg"] == "denied"
    assert "denied by the network" in r["error"]


def test_weak_signal_is_reported(modem):
    modem.csq = 3
    r = bring_up(modem)
    assert r["ok"]  # weak is not fatal while the network keeps us registered
    assert r["diag"]["rssi_dbm"] == -107 and r["diag"]["signal"] == "weak"


def test_no_signal_and_not_registered(modem):
    modem.csq = 99
    modem.reg = "none"
    r = bring_up(modem)
    assert not r["ok"]
    assert r["diag"]["rssi_dbm"] is None and r["diag"]["signal"] == "none"
    assert "unknown (CSQ 99)" in r["error"]


def test_dropped_call_is_redialled(modem):
    # Drop the call once the link has settled in data mode (not in the middle of its bring-up).
    when(lambda: modem.mode == "data", lambda: (time.sleep(0.5), modem.drop_call()))
    r, out = supervise(modem, want=2)
    assert r["up"] and r["ups"] == 2, out
    assert modem.dials == 2
    assert "data call dropped (NO CARRIER)" in out
    assert "EVENT link: 4g lost: carrier gone" in out
    assert out.count("EVENT link: using 4g (cellular), signal -69 dBm") == 2


def test_modem_restarting_by_itself_is_noticed_and_redialled(modem):
    # A supply dip restarts the module mid-call: RDY again, no NO CARRIER (the module forgot the call).
    when(lambda: modem.mode == "data", modem.brown_out)
    r, out = supervise(modem, want=2)
    assert r["up"] and r["ups"] == 2, out
    assert modem.boots == 2 and modem.dials == 2
    assert r["diag"]["restarts"] == 1 and r["diag"]["power_cycles"] == 0
    assert "modem restarted by itself (supply dip?) during a data call" in out


def test_dial_refused_then_redialled(modem):
    modem.dial_failures = 1
    r, out = supervise(modem)
    assert r["up"], out
    assert modem.dials == 2 and r["diag"]["dial_failures"] == 1
    assert "dial refused: NO CARRIER" in out


def test_hung_modem_is_power_cycled(modem):
    modem.hung = True
    r, out = supervise(modem, power_cycle_after=2)
    assert r["up"], out
    # Two failed bring-ups (no answer even to PWRKEY presses too short to switch a running module off),
    # then a long press switched it off and a short one on again.
    assert "modem does not answer AT" in out
    assert "2 failed bring-ups in a row: power-cycling" in out
    assert modem.boots == 2 and not modem.hung
    assert any(ms >= QUECTEL_OFF_MS for ms in modem.pulses)
    assert r["diag"]["power_cycles"] == 1 and r["stats"]["power_cycles"] == 1


def test_hung_modem_of_unknown_make_gets_both_makers_off_press(tmp_path):
    # A SIMCom module needs 2.5 s or more on PWRKEY to switch off, a Quectel one 0.65-1 s; one that
    # hung before it ever answered ATI is unknown, so the power cycles alternate between the two.
    with SimModem(str(tmp_path / "pwrkey"), model="simcom", on_ms=50, off_ms=SIMCOM_OFF_MS, boot_s=0.2, guard_s=0.2) as m:
        m.hung = True
        r, out = supervise(m, power_cycle_after=2, limit_ms=60000)
        assert r["up"], out
        assert r["diag"]["power_cycles"] == 2 and r["diag"]["vendor"] == "SIMCOM"
        long_presses = [ms for ms in m.pulses if ms >= QUECTEL_OFF_MS]
        assert len(long_presses) == 2 and long_presses[0] < SIMCOM_OFF_MS <= long_presses[1], m.pulses
        assert m.boots == 2 and not m.hung


KNOWN_MAKE_CYCLE = """
import asyncio, json, sys, board
link = board.network_links()[0]
async def main():
    ok = await link.up()
    held = "nengjian.net.modemup" in sys.modules
    print("UP " + link.modem.diag["vendor"])
    await asyncio.sleep_ms(400)  # the test hangs the module meanwhile
    cycled = await link.modem.power_cycle()
    held = [held, "nengjian.net.modemup" in sys.modules]
    print("RESULT " + json.dumps({"ok": ok, "cycled": cycled, "diag": link.modem.diag, "held": held}))
asyncio.run(main())
"""


@pytest.mark.parametrize("model,off_ms,press_ms", [("simcom", SIMCOM_OFF_MS, TIMING["pwrkey_off_simcom_ms"]),
                                                   ("quectel", QUECTEL_OFF_MS, TIMING["pwrkey_off_ms"])])
def test_hung_modem_of_known_make_gets_its_off_press(tmp_path, model, off_ms, press_ms):
    with SimModem(str(tmp_path / "pwrkey"), model=model, on_ms=50, off_ms=off_ms, boot_s=0.2, guard_s=0.2) as m:
        def hang():
            m.hung = True
        when(lambda: m.mode == "data", hang)
        r = _result(run_mpy(KNOWN_MAKE_CYCLE, env=_env(m), timeout=60))
        assert r["ok"] and r["cycled"], r
        assert len(m.pulses) == 2 and press_ms <= m.pulses[0] < press_ms + 150 and m.pulses[1] < off_ms, m.pulses
        assert m.boots == 2 and r["diag"]["power_cycles"] == 1
        assert r["held"] == [False, False]  # the bring-up stages are dropped once they have run


def test_modem_off_at_boot_is_switched_on(tmp_path):
    with SimModem(str(tmp_path / "pwrkey"), powered=False, on_ms=50, off_ms=QUECTEL_OFF_MS, boot_s=0.2) as m:
        r = bring_up(m)
        assert r["ok"], r
        assert m.boots == 1 and len(m.pulses) == 1 and 50 <= m.pulses[0] < QUECTEL_OFF_MS
        assert r["diag"]["pwrkey_pulses"] == 1


BUSY_LOOP_BRING_UP = """
import asyncio, json, time, board
link = board.network_links()[0]
async def hog():
    # Another task that holds the loop for 300 ms at a time (a TLS handshake on an ESP32 does).
    while True:
        await asyncio.sleep_ms(5)
        time.sleep_ms(300)
async def main():
    asyncio.create_task(hog())
    ok = await link.up()
    print("RESULT " + json.dumps({"ok": ok, "diag": link.modem.diag}))
asyncio.run(main())
"""


def test_power_on_press_stays_short_while_another_task_holds_the_loop(tmp_path):
    # Pressed for longer than off_ms, a power-on press switches a running module off: a busy loop
    # must not stretch it.
    with SimModem(str(tmp_path / "pwrkey"), powered=False, on_ms=50, off_ms=QUECTEL_OFF_MS, boot_s=0.2) as m:
        r = _result(run_mpy(BUSY_LOOP_BRING_UP, env=_env(m), timeout=60))
        assert r["ok"], r
        assert m.pulses and all(50 <= ms < QUECTEL_OFF_MS for ms in m.pulses), m.pulses


def test_hangup_returns_to_command_mode(modem):
    code = """
import asyncio, json, board
link = board.network_links()[0]
async def main():
    ok = await link.up()
    await link.down()
    final, _ = await link.modem.cmd("AT", 500)
    print("RESULT " + json.dumps({"ok": ok, "up": link.is_up(), "at": final}))
asyncio.run(main())
"""
    r = _result(run_mpy(code, env=_env(modem), timeout=60))
    assert r == {"ok": True, "up": False, "at": "OK"}
    assert modem.mode == "command" and "ATH" in modem.commands


def test_csq_and_reg_parsing():
    from nengjian.net import modem as drv
    from nengjian.net import modemup

    assert modemup.csq_to_dbm(0) == -113 and modemup.csq_to_dbm(31) == -51 and modemup.csq_to_dbm(99) is None
    assert drv.parse_reg("+CEREG: 0,1") == 1
    assert drv.parse_reg("+CREG: 2,5,\"1A2B\",\"01C3\",7") == 5
    assert drv.parse_reg("+CEREG: 3") == 3  # URC form
    assert drv.parse_reg('+CGREG: 1,"1A2B","01A2B3C4",7') == 1  # URC form with location
    assert drv.parse_reg("+CREG: x") is None


LATE_ECHO = """
import asyncio, json, board
from nengjian.core import log
log.level = log.DEBUG
link = board.network_links()[0]
m = link.modem
urc = m._urc
shown = []
def spy(line):
    urc(line)
    shown.append(m.diag["last_urc"])  # what a status taken just then would show
m._urc = spy
async def main():
    ok = await link.up()
    print("RESULT " + json.dumps({"ok": ok, "shown": shown, "diag": m.diag, "status": link.status()}))
asyncio.run(main())
"""


def test_a_late_echo_of_the_pin_is_neither_shown_nor_logged(modem):
    """A module whose echo of AT+CPIN="<PIN>" comes out during the next command: the driver took it for
    a URC, so the PIN became the status's "last URC" and a line of the log (at debug level, which a
    crew turns on to see the AT dialogue)."""
    modem.sim, modem.pin = "pin", "7391"  # not the default 1234: that is in the simulated ICCID
    modem.late_echo = True
    proc = run_mpy(LATE_ECHO, env=_env(modem, NJ_SIM_PIN="7391"), timeout=60)
    r = _result(proc)
    assert r["ok"], r
    assert 'AT+CPIN="7391"' in modem.commands  # the PIN went out, and its echo came back late
    assert r["shown"] and "URC" in proc.stdout  # URCs were seen and logged
    assert "7391" not in json.dumps(r["shown"]) + json.dumps(r["diag"]) + json.dumps(r["status"])
    assert "7391" not in proc.stdout.replace(json.dumps(r), "") + proc.stderr


HEARTBEAT = """
import asyncio, json, board
from nengjian.system import health
link = board.network_links()[0]
async def main():
    await link.up()
    snap = {"heap_free": 1, "destinations": [], "backlog": [], "links": [link.status()]}
    print("RESULT " + json.dumps(health.picked(snap)))
asyncio.run(main())
"""


@pytest.mark.parametrize("csq,want", [(22, [["rssi.4g", -69]]), (0, [["rssi.4g", -113]]), (99, [])],
                         ids=["csq22", "csq0", "unknown"])
def test_heartbeat_carries_the_cellular_signal(modem, csq, want):
    """rssi.NAME of the 4G link, in dBm from its AT+CSQ (27.007: -113 + 2 * csq; 99, not known: none)."""
    modem.csq = csq
    got = _result(run_mpy(HEARTBEAT, env=_env(modem), timeout=60))
    assert [f for f in got if f[0].startswith("rssi.")] == want, got
    assert ["link.4g", "up"] in got, got  # registered: up, whatever the signal
