"""AT-command driver for Cat-1/Cat-4 modems (Quectel EC800/EC20, SIMCom SIM7600 class) up to data mode.

Owns the modem's command channel: power-on through PWRKEY, AT sync, echo off, SIM and PIN check,
signal (CSQ), registration (CEREG/CGREG/CREG), APN (CGDCONT), dialling into data mode (ATD*99#
or AT+CGDATA) and hanging up again. After CONNECT the UART belongs to the PPP stack (see
nengjian.net.cellular); this driver does not touch it until `hangup()`.

Every wait has a timeout (`timing`); every answer and unsolicited result code (URC) updates
`diag`, a dict an installer reads on the console or through the CLI to see at which stage and why
the modem stopped: no SIM, PIN required or rejected, searching, registration denied, weak
signal, dial refused, modem silent. A rejected PIN is never retried automatically (three wrong
PINs lock the SIM behind its PUK).

The port is any object with write(buf), any() and readinto(buf) that never blocks (machine.UART
with timeout=0, the sim board's pty); PWRKEY is an object with on()/off() (machine.Pin, the sim
board's control file), `on()` meaning "key pressed".
"""

import asyncio
import time

from nengjian.core import log
from nengjian.core.compat import ticks_add, ticks_diff, ticks_ms

TIMING = {
    "at_ms": 500,  # one AT sync attempt
    "cmd_ms": 5000,  # an ordinary command
    "sync_tries": 6,
    "pwrkey_on_ms": 600,  # Quectel EC800/EC20 >= 500 ms, SIM7600 >= 500 ms; < 650 ms (see _pulse)
    "pwrkey_off_ms": 800,  # Quectel: >= 650 ms switches a running module off (older ones: < 1 s)
    "pwrkey_off_simcom_ms": 3000,  # SIMCom SIM7600: 2.5 s to 5 s
    "boot_ms": 15000,  # from PWRKEY to an answer ("RDY"); EC20 ~ 13 s, SIM7600 ~ 15 s
    "off_ms": 3000,  # settle after power-off before the next pulse
    "sim_ms": 10000,  # SIM busy after boot / after PIN entry
    "reg_ms": 120000,  # network registration
    "reg_poll_ms": 2000,
    "dial_ms": 30000,  # ATD / CGDATA until CONNECT
    "guard_ms": 1100,  # silence around +++
    "poll_ms": 10,  # UART poll interval while waiting
}

REG_STATES = {0: "not registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown", 5: "roaming"}
_REG_RANK = {3: 3, 2: 2, 0: 1}  # what to report when no domain is registered: denied > searching
FINAL_OK = ("OK",)
FINAL_ERR = ("ERROR", "NO CARRIER", "NO DIALTONE", "BUSY", "NO ANSWER")
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


def parse_reg(line):
    """stat of a '+CxREG: <n>,<stat>[,...]' answer or '+CxREG: <stat>[,...]' URC, or None."""
    colon = line.find(":")
    if colon < 0:
        return None
    fields = line[colon + 1:].split(",")
    try:
        # '<n>,<stat>[,...]' answers the read command; a URC is '<stat>[,"lac","ci"...]'.
        if len(fields) >= 2 and fields[1].strip().isdigit():
            return int(fields[1])
        return int(fields[0])
    except ValueError:
        return None


class Modem:
    def __init__(self, port, pwrkey=None, apn="", pin=None, dial="atd", event=None, timing=None, name="modem"):
        self.port = port
        self.pwrkey = pwrkey
        self.apn = apn
        self.pin = pin
        self.dial_mode = dial  # "atd" (ATD*99#) or "cgdata" (AT+CGDATA="PPP",1)
        self._event = event
        self.name = name
        self.t = dict(TIMING)
        if timing:
            self.t.update(timing)
        self._buf = bytearray()
        self._rx = bytearray(128)
        self.data_mode = False
        self.carrier_lost = False
        self.pin_rejected = False
        self._off_presses = 0
        self.diag = {"stage": "off", "state": "unknown", "error": "", "model": "", "vendor": "", "imei": "",
                     "iccid": "", "sim": "", "csq": None, "rssi_dbm": None, "signal": "", "reg": "", "reg_via": "",
                     "operator": "", "apn": apn, "dials": 0, "dial_failures": 0, "power_cycles": 0, "restarts": 0,
                     "pwrkey_pulses": 0, "urcs": 0, "last_urc": ""}

    # ---- ledger / console
    def _note(self, kind, text):
        log.info("modem", text)
        if self._event is not None:
            self._event(kind, "%s: %s" % (self.name, text))

    def _fail(self, stage, error):
        self.diag["stage"] = stage
        self.diag["error"] = error
        self._note("modem", "%s failed: %s" % (stage, error))
        return False

    # ---- line I/O
    def _pull(self):
        n = self.port.readinto(self._rx) if self.port.any() else 0
        if n:
            self._buf.extend(memoryview(self._rx)[:n])
            if len(self._buf) > 1024:  # garbage without line ends: keep the tail
                self._buf = self._buf[-256:]
        return n or 0

    def _take_line(self):
        """Next complete non-empty line in the buffer, or None."""
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                return None
            raw = bytes(self._buf[:i])
            self._buf = self._buf[i + 1:]
            try:
                line = raw.decode().strip()
            except UnicodeError:
                continue
            if line:
                return line

    async def _line(self, deadline):
        """Next line before `deadline` (ticks), or None. The UART is read before the deadline is
        checked: an answer that arrived while another task held the loop is not a timeout."""
        while True:
            line = self._take_line()
            if line is not None:
                return line
            if self._pull():
                continue
            if ticks_diff(deadline, ticks_ms()) <= 0:
                return None
            await asyncio.sleep_ms(self.t["poll_ms"])

    def drain_urcs(self):
        """Handle whatever the modem said on its own."""
        while self._pull():
            pass
        while True:
            line = self._take_line()
            if line is None:
                return
            self._urc(line)

    def _urc(self, line):
        if line.startswith("AT") or "+CPIN=" in line:
            # An echo that came late or garbled (no URC starts so, no answer holds "+CPIN="): not shown,
            # not logged, since it may be AT+CPIN="<the SIM PIN>".
            return
        d = self.diag
        d["urcs"] += 1
        d["last_urc"] = line[:40]
        if line == "RDY":
            if self.data_mode:
                # In a call, and we pressed nothing: the module restarted by itself (a supply dip
                # when the radio draws its 2 A bursts) and the call is gone. Only a data call
                # counts: in command mode a module still booting may answer AT before its RDY.
                # (While network.PPP owns the UART this line goes to PPP instead: there the PPP
                # session ending, or the supervisor's keepalive, finds the same.)
                d["restarts"] += 1
                self._note("modem", "modem restarted by itself (supply dip?) during a data call")
                self.carrier_lost = True
                self.data_mode = False
            d["state"] = "booted"
        elif line.startswith("NO CARRIER"):
            self.carrier_lost = True
            self.data_mode = False
            self._note("modem", "data call dropped (NO CARRIER)")
        elif "POWERED DOWN" in line or line.startswith("NORMAL POWER DOWN"):
            d["state"] = "off"
            self.data_mode = False
        elif line.startswith("+CPIN:"):
            d["sim"] = line[6:].strip()
        elif line.startswith("+CEREG:") or line.startswith("+CGREG:") or line.startswith("+CREG:"):
            stat = parse_reg(line)
            if stat is not None:
                d["reg"] = REG_STATES.get(stat, str(stat))
        log.debug("modem", "URC " + line)

    def _write(self, text):
        self.port.write(text.encode() if isinstance(text, str) else text)

    async def cmd(self, text, timeout_ms=None, prefix=None):
        """Send `text` + CR; return (final, lines): final is "OK", an error text, "CONNECT..." or
        None on timeout; lines are the intermediate answers (those starting with `prefix` if given)."""
        self.drain_urcs()
        self._write(text + "\r")
        deadline = ticks_add(ticks_ms(), timeout_ms or self.t["cmd_ms"])
        lines = []
        while True:
            line = await self._line(deadline)
            if line is None:
                return None, lines
            if line == text:  # echo
                continue
            if line in FINAL_OK or line.startswith("CONNECT") or line in FINAL_ERR \
                    or line.startswith("+CME ERROR") or line.startswith("+CMS ERROR"):
                return line, lines
            if prefix is None or line.startswith(prefix):
                if prefix is None and _looks_urc(line, text):
                    self._urc(line)
                else:
                    lines.append(line)
            else:
                self._urc(line)

    # ---- power
    async def sync(self, tries=None):
        """True once the modem answers AT."""
        for _ in range(tries or self.t["sync_tries"]):
            final, _lines = await self.cmd("AT", self.t["at_ms"])
            if final == "OK":
                self.diag["state"] = "on"
                return True
        return False

    async def _pulse(self, ms, exact=False):
        """Hold PWRKEY for `ms`. An `exact` press blocks the loop for its length: an on-press that
        another task stretched past ~650 ms would switch a running Quectel module off instead, so
        its upper bound matters; a long off-press only needs its lower bound and yields. (The
        block holds the loop like a TLS handshake does: at worst one bus transaction is retried.)"""
        self.diag["pwrkey_pulses"] += 1
        self.pwrkey.on()
        try:
            if exact:
                time.sleep_ms(ms)
            else:
                await asyncio.sleep_ms(ms)
        finally:
            self.pwrkey.off()

    async def _await_boot(self):
        deadline = ticks_add(ticks_ms(), self.t["boot_ms"])
        while ticks_diff(deadline, ticks_ms()) > 0:
            line = await self._line(ticks_add(ticks_ms(), min(1000, max(1, ticks_diff(deadline, ticks_ms())))))
            if line is not None:
                self._urc(line)
                if line == "RDY":
                    break
                continue
            if await self.sync(1):
                return True
        return await self.sync(3)

    async def power_on(self):
        """Make the modem answer AT: sync, else PWRKEY pulses (the first may switch a hung modem off)."""
        self.diag["stage"] = "power"
        if await self.sync(2):
            return True
        if self.pwrkey is None:
            return False
        for _ in range(2):
            self.diag["state"] = "switching on"
            await self._pulse(self.t["pwrkey_on_ms"], exact=True)
            if await self._await_boot():
                self._note("modem", "powered on by PWRKEY")
                return True
            await asyncio.sleep_ms(self.t["off_ms"])
        self.diag["state"] = "silent"
        return False

    async def power_off(self):
        """Orderly power-off command if the modem answers, else a long PWRKEY press."""
        self.data_mode = False
        if await self.sync(1):
            cmd = "AT+CPOF" if self.diag["vendor"] == "SIMCOM" else "AT+QPOWD=1"
            final, _ = await self.cmd(cmd, 3000)
            if final == "OK":
                await asyncio.sleep_ms(self.t["off_ms"])
                self.diag["state"] = "off"
                return True
        if self.pwrkey is not None:
            await self._pulse(self._off_press_ms())
            await asyncio.sleep_ms(self.t["off_ms"])
            self.diag["state"] = "off"
            return True
        return False

    def _off_press_ms(self):
        """How long to hold PWRKEY to switch a running module off: the makers disagree (Quectel
        0.65-1 s, SIMCom 2.5-5 s). A modem that never answered ATI since boot is unknown: the
        presses alternate between the two, so a later power cycle reaches whichever it is."""
        vendor = self.diag["vendor"]
        if vendor == "SIMCOM":
            return self.t["pwrkey_off_simcom_ms"]
        if vendor == "QUECTEL":
            return self.t["pwrkey_off_ms"]
        self._off_presses += 1
        return self.t["pwrkey_off_ms"] if self._off_presses % 2 else self.t["pwrkey_off_simcom_ms"]

    async def power_cycle(self):
        """Off and on again: the cure for a modem that stopped answering or a stuck network stack."""
        self.diag["power_cycles"] += 1
        self._note("modem", "power cycle %d" % self.diag["power_cycles"])
        await self.power_off()
        self._buf = bytearray()
        return await self.power_on()

    # ---- the bring-up stages
    async def identify(self):
        await self.cmd("ATE0", 1000)
        await self.cmd("AT+CMEE=2", 1000)
        final, lines = await self.cmd("ATI", 2000)
        if final == "OK" and lines:
            text = " ".join(lines)
            self.diag["model"] = text[:48]
            up = text.upper()
            self.diag["vendor"] = "QUECTEL" if "QUECTEL" in up else ("SIMCOM" if "SIMCOM" in up else "")
        final, lines = await self.cmd("AT+CGSN", 2000)
        if final == "OK" and lines:
            self.diag["imei"] = lines[0].replace("+CGSN:", "").strip()

    async def check_sim(self):
        """True when the SIM is ready (entering the configured PIN once if asked)."""
        self.diag["stage"] = "sim"
        deadline = ticks_add(ticks_ms(), self.t["sim_ms"])
        pin_sent = False
        while True:
            final, lines = await self.cmd("AT+CPIN?", 5000, "+CPIN:")
            state = lines[0][6:].strip() if final == "OK" and lines else (final or "no answer")
            self.diag["sim"] = state
            if state == "READY":
                final, lines = await self.cmd("AT+QCCID" if self.diag["vendor"] != "SIMCOM" else "AT+CICCID",
                                              2000)
                if final == "OK" and lines:
                    self.diag["iccid"] = lines[0].split(":")[-1].strip()
                return True
            up = state.upper()
            if "NOT INSERTED" in up or up.endswith(": 10") or "NO SIM" in up:
                self.diag["sim"] = "not inserted"
                return self._fail("sim", "no SIM card (check the card and its holder)")
            if "PUK" in up:
                return self._fail("sim", "SIM locked: PUK required (enter it with a phone)")
            if "PIN" in up and "PIN2" not in up:
                if self.pin_rejected:
                    return self._fail("sim", "PIN was rejected before: not retried (fix the PIN in the config)")
                if not self.pin:
                    return self._fail("sim", "SIM PIN required but none configured")
                if pin_sent:
                    return self._fail("sim", "SIM still asks for its PIN after entering it")
                final, _ = await self.cmd('AT+CPIN="%s"' % self.pin, 5000)
                pin_sent = True
                if final != "OK":
                    self.pin_rejected = True
                    return self._fail("sim", "PIN rejected (%s): not retried, to keep the SIM from locking" % final)
                self._note("modem", "SIM PIN accepted")
                continue
            # SIM busy, not ready yet, or no answer: ask again until the SIM deadline.
            if ticks_diff(deadline, ticks_ms()) <= 0:
                return self._fail("sim", "SIM not ready: %s" % state)
            await asyncio.sleep_ms(1000)

    async def signal(self):
        """(csq, dBm) and updates diag."""
        final, lines = await self.cmd("AT+CSQ", 2000, "+CSQ:")
        csq = None
        if final == "OK" and lines:
            try:
                csq = int(lines[0][5:].split(",")[0])
            except ValueError:
                pass
        dbm = csq_to_dbm(csq)
        self.diag["csq"] = csq
        self.diag["rssi_dbm"] = dbm
        self.diag["signal"] = signal_word(dbm)
        return csq, dbm

    async def registration(self):
        """Best registration state over EPS, GPRS and CS domains: (stat, via)."""
        best, via, rank = None, "", -1
        for c in ("CEREG", "CGREG", "CREG"):
            final, lines = await self.cmd("AT+%s?" % c, 2000, "+%s:" % c)
            if final != "OK" or not lines:
                continue
            stat = parse_reg(lines[0])
            if stat in (1, 5):
                return stat, c
            r = _REG_RANK.get(stat, 0)
            if r > rank:
                best, via, rank = stat, c, r
        return best, via

    async def register(self):
        self.diag["stage"] = "registration"
        deadline = ticks_add(ticks_ms(), self.t["reg_ms"])
        denied = 0
        while True:
            stat, via = await self.registration()
            self.diag["reg"] = REG_STATES.get(stat, "no answer") if stat is not None else "no answer"
            self.diag["reg_via"] = via
            if stat in (1, 5):
                final, lines = await self.cmd("AT+COPS?", 3000, "+COPS:")
                if final == "OK" and lines:
                    parts = lines[0].split(",")
                    if len(parts) >= 3:
                        self.diag["operator"] = parts[2].strip().strip('"')
                return True
            if stat == 3:
                denied += 1
                if denied >= 3:  # the network said no three times: stop, an installer must act
                    return self._fail("registration", "registration denied by the network (SIM barred or "
                                      "not provisioned for data); signal %s" % self._dbm_text())
            await self.signal()
            if ticks_diff(deadline, ticks_ms()) <= 0:
                return self._fail("registration", "not registered after %d s (%s); signal %s" % (
                    self.t["reg_ms"] // 1000, self.diag["reg"], self._dbm_text()))
            await asyncio.sleep_ms(self.t["reg_poll_ms"])

    def _dbm_text(self):
        d = self.diag["rssi_dbm"]
        return "unknown (CSQ 99)" if d is None else "%d dBm (%s)" % (d, self.diag["signal"])

    async def set_apn(self):
        self.diag["stage"] = "apn"
        final, _ = await self.cmd('AT+CGDCONT=1,"IP","%s"' % self.apn, 5000)
        if final != "OK":
            return self._fail("apn", "APN %r refused: %s" % (self.apn, final or "no answer"))
        return True

    async def dial(self):
        self.diag["stage"] = "dial"
        self.diag["dials"] += 1
        text = 'AT+CGDATA="PPP",1' if self.dial_mode == "cgdata" else "ATD*99#"
        final, _ = await self.cmd(text, self.t["dial_ms"])
        if final is not None and final.startswith("CONNECT"):
            self.data_mode = True
            self.carrier_lost = False
            self.diag["stage"] = "data"
            self.diag["state"] = "data"
            self.diag["error"] = ""
            return True
        self.diag["dial_failures"] += 1
        return self._fail("dial", "dial refused: %s" % (final or "no answer within %d s" % (self.t["dial_ms"] // 1000)))

    async def start(self):
        """Whole bring-up to data mode; True on CONNECT. On False, diag names the stage and the cause."""
        self.diag["error"] = ""
        self.data_mode = False
        if not await self.power_on():
            return self._fail("power", "modem does not answer AT (power, PWRKEY, UART wiring or baud)"
                              if self.pwrkey is not None else "modem does not answer AT (no PWRKEY to power it)")
        await self.identify()
        if not await self.check_sim():
            return False
        await self.signal()
        if self.diag["rssi_dbm"] is None or self.diag["rssi_dbm"] < WEAK_DBM:
            self._note("signal", "weak signal: %s" % self._dbm_text())
        if not await self.register():
            return False
        await self.signal()
        if self.apn and not await self.set_apn():
            return False
        return await self.dial()

    async def hangup(self):
        """Leave data mode (+++ with guard times, then ATH); True if the modem is in command mode."""
        if self.data_mode:
            await asyncio.sleep_ms(self.t["guard_ms"])
            self.drain_urcs()  # a PPP that ended its session leaves the modem saying NO CARRIER
        if self.data_mode:
            self._write(b"+++")
            await asyncio.sleep_ms(self.t["guard_ms"])
            self.data_mode = False
        self._buf = bytearray()
        final, _ = await self.cmd("ATH", 3000)
        if final is None:
            return await self.sync(2)
        return True


def _looks_urc(line, sent):
    """An intermediate line that cannot be the answer to `sent` (a known URC)."""
    if line in ("RDY", "SMS Ready", "Call Ready", "PB DONE", "+CPIN: READY", "NO CARRIER") or "POWERED DOWN" in line:
        return True
    if line.startswith("+QIND") or line.startswith("+CGEV") or line.startswith("+PACSP"):
        return True
    for c in ("+CEREG:", "+CGREG:", "+CREG:"):
        if line.startswith(c) and not sent.startswith("AT" + c[:-1]):
            return True
    return False
