"""A simulated Cat-1/Cat-4 AT modem (Quectel EC20/EC800 or SIMCom SIM7600 flavour) on a pty.

The gateway's driver opens `path` (give it to the sim board as NJ_MODEM); this thread answers
on the other end the way a real module does: result codes framed by CR LF, echo until ATE0, URCs
after boot (RDY, +CPIN: READY), registration that takes a while, CONNECT into data mode, +++ back
to command mode, NO CARRIER when the call drops. PWRKEY presses arrive through a control file
(`ctl_path`, NJ_MODEM_CTL): the sim board appends "pulse <ms>" per press; a press of at least
`on_ms` switches an off module on (RDY after `boot_s`), one of at least `off_ms` switches a
running (or hung) module off.

States a test sets (attributes, any time):
  sim       "ready" | "pin" (PIN required, `pin` is right) | "puk" | "absent"
  reg       "home" | "roaming" | "searching" | "denied" | "none"; `reg_delay_s` of searching first
  csq       0..31 or 99
  hung      True: the module ignores everything until power-cycled by PWRKEY (stays hung after
            a cycle only if `hang_persists`)
  dial_failures  the next N dials answer NO CARRIER
  late_echo True: the module echoes every command, ATE0 or not, and each echo comes out only when
            the next command arrives, in place of that one's (a UART that hands it over late)
  drop_call()    a data call in progress ends with NO CARRIER
  brown_out()    the module restarts by itself (RDY again, the data call gone)
The data itself goes over the host network (the sim board has no PPP): in data mode the module
only listens for +++.
"""

from __future__ import annotations

import os
import select
import threading
import time

from nengjian_host.sim.ptys import PtyDevice, open_raw_pty

CRLF = b"\r\n"

MODELS = {
    "quectel": {"ati": ["Quectel", "EC20F", "Revision: EC20CEFAR06A03M4G"], "ccid": "+QCCID",
                "off": "AT+QPOWD"},
    "simcom": {"ati": ["Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM7600G-H",
                       "Revision: LE20B04SIM7600G22"], "ccid": "+ICCID", "off": "AT+CPOF"},
}
REG_CODES = {"home": 1, "roaming": 5, "searching": 2, "denied": 3, "none": 0}


class SimModem(PtyDevice):
    thread_name = "sim-modem"

    def __init__(self, ctl_path: str | None = None, model: str = "quectel", powered: bool = True,
                 boot_s: float = 0.3, on_ms: int = 500, off_ms: int = 650, pin: str = "1234",
                 guard_s: float = 1.0):
        self.model = MODELS[model]
        self.ctl_path = ctl_path
        self.on_ms = on_ms
        self.off_ms = off_ms
        self.boot_s = boot_s
        self.guard_s = guard_s  # silence after +++ before the escape counts (S12)
        self.pin = pin
        self.pin_tries = 3
        self.sim = "ready"
        self.reg = "home"
        self.reg_delay_s = 0.0
        self.csq = 22
        self.hung = False
        self.hang_persists = False
        self.dial_failures = 0
        self.late_echo = False
        self._held_echo = b""
        self.apn = ""
        # state
        self.powered = powered
        self.booted_at = time.monotonic() if powered else None
        self._rdy_due = None
        self.echo = True
        self.cmee = 0
        self.mode = "command"
        self.sim_ready_at = 0.0
        # counters a test reads
        self.pulses: list[int] = []
        self.boots = 1 if powered else 0
        self.dials = 0
        self.commands: list[str] = []
        self._master, self._slave, self.path = open_raw_pty(raw_master=True)
        super().__init__(self._master, self._slave)
        self._lock = threading.RLock()
        self._ctl_seen = 0
        self._line = bytearray()
        self._plus = 0
        self._last_rx = time.monotonic()
        if ctl_path:
            open(ctl_path, "a").close()
            self._ctl_seen = os.path.getsize(ctl_path)

    # -- test-facing (and start(), close(), with: PtyDevice) ---------------------------------------
    def drop_call(self) -> bool:
        """End a data call from the network side (NO CARRIER); False if none is up."""
        with self._lock:
            if self.mode != "data" or not self.powered:
                return False
            self.mode = "command"
            self._send(b"NO CARRIER")
            return True

    def brown_out(self) -> None:
        """The supply dips and the module restarts by itself: any data call is gone, settings are
        back to their defaults, RDY comes after `boot_s` (nothing answers before)."""
        with self._lock:
            self._power_off()
            self.powered = True
            self.boots += 1
            self.booted_at = time.monotonic()
            self._rdy_due = self.booted_at + self.boot_s

    def urc(self, text: str) -> None:
        with self._lock:
            self._send(text.encode())

    # -- wire -------------------------------------------------------------------------------------
    def _send(self, text: bytes) -> None:
        try:
            os.write(self._master, CRLF + text + CRLF)
        except OSError:
            pass

    def _run(self):
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        while not self._stop.is_set():
            events = poller.poll(20)
            with self._lock:
                self._check_ctl()
                self._check_boot()
                self._check_escape()
                for _fd, _ev in events:
                    try:
                        data = os.read(self._master, 1024)
                    except OSError:
                        data = b""
                    if data:
                        self._rx(data)

    def _check_ctl(self):
        if not self.ctl_path:
            return
        try:
            size = os.path.getsize(self.ctl_path)
        except OSError:
            return
        if size <= self._ctl_seen:
            return
        with open(self.ctl_path) as f:
            f.seek(self._ctl_seen)
            text = f.read()
        self._ctl_seen = size
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "pulse":
                self._pulse(int(parts[1]))

    def _pulse(self, ms: int):
        self.pulses.append(ms)
        if self.powered and ms >= self.off_ms:
            if not self.hung:
                self._send(b"POWERED DOWN")
            self._power_off()
        elif not self.powered and ms >= self.on_ms:
            self.powered = True
            self.boots += 1
            self.booted_at = time.monotonic()
            self._rdy_due = self.booted_at + self.boot_s
            self.hung = self.hung and self.hang_persists

    def _power_off(self):
        self.powered = False
        self.mode = "command"
        self.echo = True
        self.cmee = 0
        self._rdy_due = None
        self._line.clear()

    def _check_boot(self):
        if self._rdy_due is not None and time.monotonic() >= self._rdy_due:
            self._rdy_due = None
            if not self.hung:
                self._send(b"RDY")
                if self.sim == "ready":
                    self._send(b"+CPIN: READY")

    def _booting(self) -> bool:
        return self._rdy_due is not None

    def _check_escape(self):
        # "+++" followed by a second of silence returns to command mode.
        if self.mode == "data" and self._plus >= 3 and time.monotonic() - self._last_rx >= self.guard_s:
            self._plus = 0
            self.mode = "command"
            self._send(b"OK")

    def _rx(self, data: bytes):
        now = time.monotonic()
        if not self.powered or self.hung or self._booting():
            self._last_rx = now
            return
        if self.mode == "data":
            for b in data:
                self._plus = self._plus + 1 if b == 0x2B else 0
            self._last_rx = now
            return
        self._last_rx = now
        for b in data:
            if b in (0x0D, 0x0A):
                if self._line:
                    line = self._line.decode("latin-1")
                    self._line.clear()
                    if self.echo or self.late_echo:
                        echo = line.encode("latin-1") + b"\r"
                        if self.late_echo:
                            echo, self._held_echo = self._held_echo, echo
                        os.write(self._master, echo)
                    self._command(line.strip())
            else:
                self._line.append(b)
                if len(self._line) > 512:
                    self._line.clear()

    # -- commands ---------------------------------------------------------------------------------
    def _ok(self, *lines: str):
        for line in lines:
            self._send(line.encode())
        self._send(b"OK")

    def _cme(self, code: int, text: str):
        self._send(("+CME ERROR: %s" % (text if self.cmee == 2 else code)).encode())

    def _reg_code(self) -> int:
        if self.sim != "ready" or time.monotonic() < self.sim_ready_at:
            return 0
        if self.reg in ("home", "roaming") and time.monotonic() - (self.booted_at or 0) < self.reg_delay_s:
            return 2
        return REG_CODES[self.reg]

    def _command(self, line: str):
        self.commands.append(line)
        up = line.upper()
        if not up.startswith("AT"):
            self._send(b"ERROR")
            return
        body = up[2:]
        if body == "":
            self._ok()
        elif body in ("E0", "E1"):
            self.echo = body == "E1"
            self._ok()
        elif body.startswith("+CMEE="):
            self.cmee = int(body[6:] or 0)
            self._ok()
        elif body == "I":
            self._ok(*self.model["ati"])
        elif body == "+CGSN":
            self._ok("866123456789012")
        elif body == "+CPIN?":
            if self.sim == "absent":
                self._cme(10, "SIM not inserted")
            elif self.sim == "pin":
                self._ok("+CPIN: SIM PIN")
            elif self.sim == "puk":
                self._ok("+CPIN: SIM PUK")
            elif time.monotonic() < self.sim_ready_at:
                self._cme(14, "SIM busy")
            else:
                self._ok("+CPIN: READY")
        elif body.startswith("+CPIN="):
            given = line[8:].strip().strip('"')
            if self.sim != "pin":
                self._cme(3, "operation not allowed")
            elif given == self.pin:
                self.sim = "ready"
                self.sim_ready_at = time.monotonic() + 0.2
                self._ok()
                self._send(b"+CPIN: READY")
            else:
                self.pin_tries -= 1
                if self.pin_tries <= 0:
                    self.sim = "puk"
                self._cme(16, "incorrect password")
        elif body in ("+QCCID", "+CICCID", "+CCID"):
            if self.sim != "ready":
                self._cme(10, "SIM not inserted")
            else:
                self._ok("%s: 89860012345678901234" % self.model["ccid"])
        elif body == "+CSQ":
            self._ok("+CSQ: %d,99" % self.csq)
        elif body in ("+CEREG?", "+CGREG?", "+CREG?"):
            self._ok("%s: 0,%d" % (line[2:-1].upper(), self._reg_code()))
        elif body == "+COPS?":
            if self._reg_code() in (1, 5):
                self._ok('+COPS: 0,0,"CHINA MOBILE",7')
            else:
                self._ok("+COPS: 0")
        elif body.startswith("+CGDCONT="):
            parts = line.split(",")
            self.apn = parts[2].strip().strip('"') if len(parts) >= 3 else ""
            self._ok()
        elif body.startswith("D*99") or body.startswith("+CGDATA"):
            self.dials += 1
            if self._reg_code() not in (1, 5):
                self._send(b"NO CARRIER")
            elif self.dial_failures > 0:
                self.dial_failures -= 1
                self._send(b"NO CARRIER")
            else:
                self._send(b"CONNECT 150000000")
                self.mode = "data"
                self._plus = 0
        elif body == "H" or body == "H0":
            self.mode = "command"
            self._ok()
        elif body.startswith("+QPOWD") or body == "+CPOF":
            self._ok()
            self._send(b"POWERED DOWN")
            self._power_off()
        else:
            self._send(b"ERROR")
