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

Power and bring-up (`start`, `power_cycle`) run at boot and after a lost link only: their stages are
nengjian.net.modemup, loaded while they run; this module keeps the command channel and URCs.
"""

import asyncio

from nengjian.core import log
from nengjian.core.compat import ticks_add, ticks_diff, ticks_ms, unload

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
FINAL_OK = ("OK",)
FINAL_ERR = ("ERROR", "NO CARRIER", "NO DIALTONE", "BUSY", "NO ANSWER")
UP = "nengjian.net.modemup"


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
    # The bring-up stages (modemup) read registration answers with these: it does not import this module.
    parse_reg = staticmethod(parse_reg)
    REG_STATES = REG_STATES

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
    def _note(self, kind, text, code):
        log.info("modem", text)
        if self._event is not None:
            self._event(kind, "%s: %s" % (self.name, text), code)

    def _fail(self, stage, error):
        self.diag["stage"] = stage
        self.diag["error"] = error
        self._note("modem", "%s failed: %s" % (stage, error), "modem.failed")
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
                self._note("modem", "modem restarted by itself (supply dip?) during a data call", "modem.restarted")
                self.carrier_lost = True
                self.data_mode = False
            d["state"] = "booted"
        elif line.startswith("NO CARRIER"):
            self.carrier_lost = True
            self.data_mode = False
            self._note("modem", "data call dropped (NO CARRIER)", "modem.dropped")
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

    async def sync(self, tries=None):
        """True once the modem answers AT."""
        for _ in range(tries or self.t["sync_tries"]):
            final, _lines = await self.cmd("AT", self.t["at_ms"])
            if final == "OK":
                self.diag["state"] = "on"
                return True
        return False

    # ---- power and bring-up (nengjian.net.modemup: loaded while they run, dropped after)
    async def start(self):
        """Whole bring-up to data mode; True on CONNECT. On False, diag names the stage and the cause."""
        from nengjian.net import modemup

        try:
            return await modemup.start(self)
        finally:
            unload(UP)

    async def power_cycle(self):
        """Off and on again: the cure for a modem that stopped answering or a stuck network stack."""
        from nengjian.net import modemup

        try:
            return await modemup.power_cycle(self)
        finally:
            unload(UP)

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
