"""Fixtures for end-to-end tests on the sim rig: a pty RS-485 wire with pymodbus meters, the
reference platform, and the real firmware on MicroPython. Time runs fast (SPEED x) on both the
gateway's RTC and the platform's clock, so minutes of periods pass in seconds."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from nengjian_host.sim.gateway import SimGateway, demo_site
from nengjian_host.sim.meters.modbus_meters import SimMeter, SimModbusMeters
from nengjian_host.sim.refplatform import RefPlatform
from nengjian_host.sim.wire import PtyWire

SPEED = 12  # a 60 s period passes in 5 s
PERIOD = 60
CST = timezone(timedelta(hours=8))


class SimRig:
    def __init__(self, tmp_path, units=(1, 2), power_kw=(600.0, 120.0), platform_kw=None):
        self.tmp = tmp_path
        self.t0 = time.time()
        # Start the simulated day a little before a period boundary.
        self.s0 = float(int(self.t0) - int(self.t0) % PERIOD + PERIOD - 3)
        self.wire = PtyWire().start()
        self.meters = SimModbusMeters(self.wire.meters_path,
                                      [SimMeter(u, power_kw=p, energy_kwh=5000.0 * u) for u, p in zip(units, power_kw)],
                                      speedup=SPEED).start()
        # platform_kw: further RefPlatform options (variant, certfile/keyfile, client_ca, success_code, ...)
        self.platform = RefPlatform(db_path=str(tmp_path / "platform.sqlite"), period_s=PERIOD, clock=self.now,
                                    **(platform_kw or {})).start()
        self.units = units
        self.gateway: SimGateway | None = None

    def now(self) -> float:
        return self.s0 + (time.time() - self.t0) * SPEED

    def site(self, **kw) -> dict:
        kw.setdefault("units", self.units)
        kw.setdefault("period_s", PERIOD)
        kw.setdefault("interval_s", 1)
        return demo_site(self.platform.url + "/api/register", **kw)

    def gateway_process(self, cfg=None, heap="320k") -> SimGateway:
        gw = SimGateway(self.tmp / "gw", {0: self.wire.gateway_path}, heap=heap,
                        env={"NJ_CLOCK_SPEED": SPEED, "NJ_CLOCK_T0": repr(self.t0), "NJ_CLOCK_S0": repr(self.s0)})
        gw.write_config(cfg if cfg is not None else self.site())
        self.gateway = gw
        return gw

    def wait_for(self, predicate, timeout=60.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.gateway and not self.gateway.alive():
                raise AssertionError(f"gateway exited while waiting for {what}:\n{self.gateway.output()[-3000:]}")
            time.sleep(0.2)
        out = self.gateway.output()[-3000:] if self.gateway else ""
        raise AssertionError(f"timed out waiting for {what}\n{out}")

    def close(self):
        if self.gateway:
            self.gateway.stop()
        self.platform.close()
        self.meters.stop()
        self.wire.close()


_POLL = re.compile(r" poll\s+(\S+) at (\S+): (.*)$")
_VALUE = re.compile(r" value\s+(\S+) (\S+ \S+) = (\S+)")


def nengjian(*argv) -> tuple[int, str]:
    """`nengjian ARGV...` run in this process: (exit code, what it printed)."""
    from contextlib import redirect_stdout
    from io import StringIO

    from nengjian_host import cli

    buf = StringIO()
    with redirect_stdout(buf):
        code = cli.main(list(argv))
    return code, buf.getvalue()


def wait_on(gw, predicate, timeout: float, what: str) -> None:
    """Until predicate() holds; fails with the gateway's output when it exits or `timeout` s pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if not gw.alive():
            raise AssertionError("gateway exited while waiting for %s:\n%s" % (what, gw.output()[-3000:]))
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s\n%s" % (what, gw.output()[-4000:]))


def readings_from_console(text: str) -> dict[str, list[tuple[int, str]]]:
    """meter id -> [(utc seconds, energy text)] from the gateway's poll lines."""
    out: dict[str, list[tuple[int, str]]] = {}
    for line in text.splitlines():
        m = _POLL.search(line)
        if not m:
            continue
        ts = int(datetime.strptime(m.group(2), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
        fields = dict(kv.split("=") for kv in m.group(3).split())
        if "energy_kwh" in fields:
            out.setdefault(m.group(1), []).append((ts, fields["energy_kwh"]))
    return out


def values_from_console(text: str) -> list[tuple[str, str, str]]:
    """(dataCode, statDate, value) the gateway says it produced."""
    return [m.groups() for m in map(_VALUE.search, text.splitlines()) if m]


def cst_to_utc(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())


def make_pki(path, host="127.0.0.1"):
    """Test certificates (EC P-256, written with `cryptography`) under `path`, PEM and DER:
    ca (trusted), rogue (another CA), srv (for `host`, by ca), rogue-srv (for `host`, by rogue),
    self (self-signed for `host`), cli (client, by ca), rogue-cli (client, by rogue); keys as NAME.key
    (PKCS#8 PEM) and NAME.key.der. Returns path."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    path.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    try:
        san = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    made = {}

    def one(name, cn, issuer=None, ca=False, server=False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        ikey, iname = (key, subject) if issuer is None else (made[issuer][0], made[issuer][1].subject)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(iname).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
             .not_valid_after(now + dt.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([san]), critical=False)
        cert = b.sign(ikey, hashes.SHA256())
        made[name] = (key, cert)
        (path / (name + ".pem")).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (path / (name + ".der")).write_bytes(cert.public_bytes(serialization.Encoding.DER))
        (path / (name + ".key")).write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (path / (name + ".key.der")).write_bytes(key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    one("ca", "nengjian test CA", ca=True)
    one("rogue", "rogue CA", ca=True)
    one("srv", host, "ca", server=True)
    one("rogue-srv", host, "rogue", server=True)
    one("self", host, server=True)
    one("cli", "91330000573973053F", "ca")
    one("rogue-cli", "91330000573973053F", "rogue")
    return path
