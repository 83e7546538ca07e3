"""The modem's power and bring-up stages (nengjian.net.modem): power-on through PWRKEY and power-off,
identity, SIM and PIN, signal, registration, APN and dialling, as functions of a modem.Modem `m`.
Modem.start() and Modem.power_cycle() load this module while they run and drop it after: the stages
run at boot and after a lost link, the command channel all the time.
"""

import asyncio
import time

from nengjian.core.compat import ticks_add, ticks_diff, ticks_ms

_REG_RANK = {3: 3, 2: 2, 0: 1}  # what to report when no domain is registered: denied > searching
WEAK_DBM = -105


def csq_to_dbm(csq):
    """RSSI in dBm of an AT+CSQ value (0..31), None for 99 (not known)."""
    if csq is None or csq == 99 or csq < 0 or csq > 31:
        return None
    return -113 + 2 * csq


def signal_word(dbm):
    if dbm is None:
        return "none"
    if dbm >= -70:
        return "excellent"
    if dbm >= -85:
        return "good"
    if dbm >= -100:
        return "fair"
    if dbm >= WEAK_DBM:
        return "poor"
    return "weak"


async def _pulse(m, ms, exact=False):
    """Hold PWRKEY for `ms`. An `exact` press blocks the loop for its length: an on-press that
    another task stretched past ~650 ms would switch a running Quectel module off instead, so
    its upper bound matters; a long off-press only needs its lower bound and yields. (The
    block holds the loop like a TLS handshake does: at worst one bus transaction is retried.)"""
    m.diag["pwrkey_pulses"] += 1
    m.pwrkey.on()
    try:
        if exact:
            time.sleep_ms(ms)
        else:
            await asyncio.sleep_ms(ms)
    finally:
        m.pwrkey.off()


async def _await_boot(m):
    deadline = ticks_add(ticks_ms(), m.t["boot_ms"])
    while ticks_diff(deadline, ticks_ms()) > 0:
        line = await m._line(ticks_add(ticks_ms(), min(1000, max(1, ticks_diff(deadline, ticks_ms())))))
        if line is not None:
            m._urc(line)
            if line == "RDY":
                break
            continue
        if await m.sync(1):
            return True
    return await m.sync(3)


async def power_on(m):
    """Make the modem answer AT: sync, else PWRKEY pulses (the first may switch a hung modem off)."""
    m.diag["stage"] = "power"
    if await m.sync(2):
        return True
    if m.pwrkey is None:
        return False
    for _ in range(2):
        m.diag["state"] = "switching on"
        await _pulse(m, m.t["pwrkey_on_ms"], exact=True)
        if await _await_boot(m):
            m._note("modem", "powered on by PWRKEY", "modem.powered_on")
            return True
        await asyncio.sleep_ms(m.t["off_ms"])
    m.diag["state"] = "silent"
    return False


async def power_off(m):
    """Orderly power-off command if the modem answers, else a long PWRKEY press."""
    m.data_mode = False
    if await m.sync(1):
        cmd = "AT+CPOF" if m.diag["vendor"] == "SIMCOM" else "AT+QPOWD=1"
        final, _ = await m.cmd(cmd, 3000)
        if final == "OK":
            await asyncio.sleep_ms(m.t["off_ms"])
            m.diag["state"] = "off"
            return True
    if m.pwrkey is not None:
        await _pulse(m, _off_press_ms(m))
        await asyncio.sleep_ms(m.t["off_ms"])
        m.diag["state"] = "off"
        return True
    return False


def _off_press_ms(m):
    """How long to hold PWRKEY to switch a running module off: the makers disagree (Quectel
    0.65-1 s, SIMCom 2.5-5 s). A modem that never answered ATI since boot is unknown: the
    presses alternate between the two, so a later power cycle reaches whichever it is."""
    vendor = m.diag["vendor"]
    if vendor == "SIMCOM":
        return m.t["pwrkey_off_simcom_ms"]
    if vendor == "QUECTEL":
        return m.t["pwrkey_off_ms"]
    m._off_presses += 1
    return m.t["pwrkey_off_ms"] if m._off_presses % 2 else m.t["pwrkey_off_simcom_ms"]


async def power_cycle(m):
    """Off and on again: the cure for a modem that stopped answering or a stuck network stack."""
    m.diag["power_cycles"] += 1
    m._note("modem", "power cycle %d" % m.diag["power_cycles"], "modem.power_cycle")
    await power_off(m)
    m._buf = bytearray()
    return await power_on(m)


async def identify(m):
    await m.cmd("ATE0", 1000)
    await m.cmd("AT+CMEE=2", 1000)
    final, lines = await m.cmd("ATI", 2000)
    if final == "OK" and lines:
        text = " ".join(lines)
        m.diag["model"] = text[:48]
        up = text.upper()
        m.diag["vendor"] = "QUECTEL" if "QUECTEL" in up else ("SIMCOM" if "SIMCOM" in up else "")
    final, lines = await m.cmd("AT+CGSN", 2000)
    if final == "OK" and lines:
        m.diag["imei"] = lines[0].replace("+CGSN:", "").strip()


async def check_sim(m):
    """True when the SIM is ready (entering the configured PIN once if asked)."""
    m.diag["stage"] = "sim"
    deadline = ticks_add(ticks_ms(), m.t["sim_ms"])
    pin_sent = False
    while True:
        final, lines = await m.cmd("AT+CPIN?", 5000, "+CPIN:")
        state = lines[0][6:].strip() if final == "OK" and lines else (final or "no answer")
        m.diag["sim"] = state
        if state == "READY":
            final, lines = await m.cmd("AT+QCCID" if m.diag["vendor"] != "SIMCOM" else "AT+CICCID",
                                          2000)
            if final == "OK" and lines:
                m.diag["iccid"] = lines[0].split(":")[-1].strip()
            return True
        up = state.upper()
        if "NOT INSERTED" in up or up.endswith(": 10") or "NO SIM" in up:
            m.diag["sim"] = "not inserted"
            return m._fail("sim", "no SIM card (check the card and its holder)")
        if "PUK" in up:
            return m._fail("sim", "SIM locked: PUK required (enter it with a phone)")
        if "PIN" in up and "PIN2" not in up:
            if m.pin_rejected:
                return m._fail("sim", "PIN was rejected before: not retried (fix the PIN in the config)")
            if not m.pin:
                return m._fail("sim", "SIM PIN required but none configured")
            if pin_sent:
                return m._fail("sim", "SIM still asks for its PIN after entering it")
            final, _ = await m.cmd('AT+CPIN="%s"' % m.pin, 5000)
            pin_sent = True
            if final != "OK":
                m.pin_rejected = True
                return m._fail("sim", "PIN rejected (%s): not retried, to keep the SIM from locking" % final)
            m._note("modem", "SIM PIN accepted", "modem.pin_accepted")
            continue
        # SIM busy, not ready yet, or no answer: ask again until the SIM deadline.
        if ticks_diff(deadline, ticks_ms()) <= 0:
            return m._fail("sim", "SIM not ready: %s" % state)
        await asyncio.sleep_ms(1000)


async def signal(m):
    """(csq, dBm) and updates diag."""
    final, lines = await m.cmd("AT+CSQ", 2000, "+CSQ:")
    csq = None
    if final == "OK" and lines:
        try:
            csq = int(lines[0][5:].split(",")[0])
        except ValueError:
            pass
    dbm = csq_to_dbm(csq)
    m.diag["csq"] = csq
    m.diag["rssi_dbm"] = dbm
    m.diag["signal"] = signal_word(dbm)
    return csq, dbm


async def registration(m):
    """Best registration state over EPS, GPRS and CS domains: (stat, via)."""
    best, via, rank = None, "", -1
    for c in ("CEREG", "CGREG", "CREG"):
        final, lines = await m.cmd("AT+%s?" % c, 2000, "+%s:" % c)
        if final != "OK" or not lines:
            continue
        stat = m.parse_reg(lines[0])
        if stat in (1, 5):
            return stat, c
        r = _REG_RANK.get(stat, 0)
        if r > rank:
            best, via, rank = stat, c, r
    return best, via


async def register(m):
    m.diag["stage"] = "registration"
    deadline = ticks_add(ticks_ms(), m.t["reg_ms"])
    denied = 0
    while True:
        stat, via = await registration(m)
        m.diag["reg"] = m.REG_STATES.get(stat, "no answer") if stat is not None else "no answer"
        m.diag["reg_via"] = via
        if stat in (1, 5):
            final, lines = await m.cmd("AT+COPS?", 3000, "+COPS:")
            if final == "OK" and lines:
                parts = lines[0].split(",")
                if len(parts) >= 3:
                    m.diag["operator"] = parts[2].strip().strip('"')
            return True
        if stat == 3:
            denied += 1
            if denied >= 3:  # the network said no three times: stop, an installer must act
                return m._fail("registration", "registration denied by the network (SIM barred or "
                                  "not provisioned for data); signal %s" % _dbm_text(m))
        await signal(m)
        if ticks_diff(deadline, ticks_ms()) <= 0:
            return m._fail("registration", "not registered after %d s (%s); signal %s" % (
                m.t["reg_ms"] // 1000, m.diag["reg"], _dbm_text(m)))
        await asyncio.sleep_ms(m.t["reg_poll_ms"])


def _dbm_text(m):
    d = m.diag["rssi_dbm"]
    return "unknown (CSQ 99)" if d is None else "%d dBm (%s)" % (d, m.diag["signal"])


async def set_apn(m):
    m.diag["stage"] = "apn"
    final, _ = await m.cmd('AT+CGDCONT=1,"IP","%s"' % m.apn, 5000)
    if final != "OK":
        return m._fail("apn", "APN %r refused: %s" % (m.apn, final or "no answer"))
    return True


async def dial(m):
    m.diag["stage"] = "dial"
    m.diag["dials"] += 1
    text = 'AT+CGDATA="PPP",1' if m.dial_mode == "cgdata" else "ATD*99#"
    final, _ = await m.cmd(text, m.t["dial_ms"])
    if final is not None and final.startswith("CONNECT"):
        m.data_mode = True
        m.carrier_lost = False
        m.diag["stage"] = "data"
        m.diag["state"] = "data"
        m.diag["error"] = ""
        return True
    m.diag["dial_failures"] += 1
    return m._fail("dial", "dial refused: %s" % (final or "no answer within %d s" % (m.t["dial_ms"] // 1000)))


async def start(m):
    """Whole bring-up to data mode; True on CONNECT. On False, diag names the stage and the cause."""
    m.diag["error"] = ""
    m.data_mode = False
    if not await power_on(m):
        return m._fail("power", "modem does not answer AT (power, PWRKEY, UART wiring or baud)"
                          if m.pwrkey is not None else "modem does not answer AT (no PWRKEY to power it)")
    await identify(m)
    if not await check_sim(m):
        return False
    await signal(m)
    if m.diag["rssi_dbm"] is None or m.diag["rssi_dbm"] < WEAK_DBM:
        m._note("signal", "weak signal: %s" % _dbm_text(m), "modem.weak_signal")
    if not await register(m):
        return False
    await signal(m)
    if m.apn and not await set_apn(m):
        return False
    return await dial(m)
