"""The ESP32 board modules (boards/esp32_eth, boards/esp32s3_4g, boards/common/esp32_common.py).

Real: the board modules and the firmware modules they build on (rs485_uart, nengjian.net),
NVS images made by esp-idf-nvs-partition-gen through nengjian_host.install.provision, read back by the
board's own NVS reader under CPython and on the MicroPython unix port. Faked: the ESP32 port's
`machine`, `network`, `esp32` and `vfs` modules (small recorders injected into sys.modules), since
no ESP32 is attached in CI; they check the calls the boards make, not the hardware's answers.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import importlib.util
import io
import json
import random
import re
import sys
import types

import pytest
from esp_idf_nvs_partition_gen import nvs_partition_gen as nvsgen
from mpyrun import run_mpy
from nengjian.system import health
from nengjian_host.common import bundle, paths
from nengjian_host.install import provision

BOARDS = ("esp32_eth", "esp32s3_4g")
COMMON = paths.BOARDS / "common"
# Attributes only the sim has: its stand-ins (files, ptys, the host network) and the fast clock. The
# firmware looks for utc_now and link_status with hasattr (an ESP32 reads time.time() and reports its
# links through the app).
SIM_ONLY = {"BLOCK_SIZE", "data_device", "PtyPort", "SimPin", "HostLink", "SimPwrKey", "SimPPP",
            "sim_modem_link", "RESET_LINE", "utc_now"}
OPTIONAL = {"utc_now", "link_status", "GC_THRESHOLD"}


# ---- fakes of the ESP32 port's modules
class Hw:
    """What the board asked of the hardware."""

    def __init__(self):
        self.pins, self.uarts, self.wdts, self.rtc, self.resets = [], [], [], [], 0
        self.lans, self.ppps, self.mounts, self.mkfs = [], [], [], []
        self.partitions: dict[str, BlockDev] = {}
        self.lines: dict = {}  # GPIO -> callable giving the level an input reads
        self.modules = {"machine": self._machine(), "network": self._network(), "esp32": self._esp32(),
                        "vfs": self._vfs()}

    def _machine(self):
        hw = self
        m = types.ModuleType("machine")

        class Pin:
            IN, OUT, PULL_UP, PULL_DOWN = 1, 3, 2, 4

            def __init__(self, id, mode=None, pull=None, value=None):
                self.id, self.mode, self.pull, self.level = id, mode, pull, value
                hw.pins.append(self)

            def value(self, v=None):
                if v is None:
                    line = hw.lines.get(self.id)  # an input the test drives: level now
                    return line() if line is not None else self.level
                self.level = v

            def on(self):
                self.level = 1

            def off(self):
                self.level = 0

        class UART:
            def __init__(self, id, **kw):
                self.id, self.kw, self.inits = id, kw, []
                hw.uarts.append(self)

            def init(self, **kw):
                self.inits.append(kw)

            def any(self):
                return 0

            def txdone(self):
                return True

        class WDT:
            def __init__(self, timeout):
                self.timeout, self.feeds = timeout, 0
                hw.wdts.append(self)

            def feed(self):
                self.feeds += 1

        class RTC:
            def datetime(self, t):
                hw.rtc.append(t)

        def reset():
            hw.resets += 1

        m.Pin, m.UART, m.WDT, m.RTC, m.reset = Pin, UART, WDT, RTC, reset
        # The ESP32 port's values (modmachine.h's MP_*_RESET); 0 is ESP_RST_UNKNOWN
        m.PWRON_RESET, m.HARD_RESET, m.WDT_RESET, m.DEEPSLEEP_RESET, m.SOFT_RESET = 1, 2, 3, 4, 5
        m.reset_cause = lambda: hw.reset_cause
        hw.reset_cause = m.PWRON_RESET
        m.unique_id = lambda: b"\x24\x0a\xc4\x00\x00\x01"
        return m

    def _network(self):
        hw = self
        n = types.ModuleType("network")
        n.PHY_LAN8720 = "LAN8720"

        class LAN:
            def __init__(self, **kw):
                self.kw, self.on = kw, False
                hw.lans.append(self)

            def active(self, on):
                self.on = on

            def isconnected(self):
                return self.on

            def ifconfig(self):
                return ("192.168.7.20", "255.255.255.0", "192.168.7.1", "192.168.7.1")

        class PPP:
            def __init__(self, stream):
                self.stream, self.calls = stream, []
                hw.ppps.append(self)

            def active(self, on):
                self.calls.append(("active", on))

            def connect(self):
                self.calls.append("connect")

            def isconnected(self):
                return "connect" in self.calls

            def disconnect(self):
                self.calls.append("disconnect")

        n.LAN, n.PPP = LAN, PPP
        return n

    def _esp32(self):
        hw = self
        e = types.ModuleType("esp32")

        class Partition:
            TYPE_APP, TYPE_DATA = 0, 1

            @staticmethod
            def find(type=TYPE_APP, subtype=0xFF, label=None):
                assert type == Partition.TYPE_DATA
                return [hw.partitions[label]] if label in hw.partitions else []

        e.Partition = Partition
        return e

    def _vfs(self):
        hw = self
        v = types.ModuleType("vfs")

        class VfsLfs2:
            def __init__(self, dev):
                if bytes(dev.data[:8]) != b"littlefs":
                    raise OSError(19, "no littlefs")
                self.dev = dev

            @staticmethod
            def mkfs(dev):
                hw.mkfs.append(dev)
                dev.data[:8] = b"littlefs"

        v.VfsLfs2 = VfsLfs2
        v.mount = lambda fs, path: hw.mounts.append((fs.dev, path))
        return v


class BlockDev:
    """esp32.Partition's block protocol over bytes (4096-byte blocks)."""

    def __init__(self, data: bytes):
        self.data = bytearray(data)

    def readblocks(self, n, buf, off=0):
        at = n * 4096 + off
        buf[:] = self.data[at:at + len(buf)]

    def ioctl(self, op, arg):
        return {4: len(self.data) // 4096, 5: 4096}.get(op, 0)


@pytest.fixture
def hw(monkeypatch):
    h = Hw()
    for name, mod in h.modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    for mod in ("esp32_common", "esp32_modem"):  # bind this test's fakes
        monkeypatch.delitem(sys.modules, mod, raising=False)
    monkeypatch.syspath_prepend(str(COMMON))
    yield h
    for mod in ("esp32_common", "esp32_modem"):
        sys.modules.pop(mod, None)


def load(name: str):
    spec = importlib.util.spec_from_file_location("board_" + name, paths.BOARDS / name / "board.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def firmware_uses() -> set[str]:
    """Every attribute the firmware reads off the board module (board.X, hasattr/getattr(board, "X"))."""
    names = set()
    for src in (paths.FIRMWARE).rglob("*.py"):
        text = src.read_text()
        names |= set(re.findall(r"\bboard\.([A-Za-z_]\w*)", text))
        names |= set(re.findall(r"(?:has|get)attr\((?:\w+\.)?board, \"(\w+)\"", text))
    return names - {"py", "json"}


def sim_api() -> set[str]:
    tree = ast.parse((paths.BOARDS / "sim" / "board.py").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return {n for n in names if not n.startswith("_")}


# ---- the API
@pytest.mark.parametrize("name", BOARDS)
def test_board_offers_what_the_firmware_uses(hw, name):
    used = firmware_uses()
    assert {"NAME", "CONFIG_DIR", "mount_data", "rs485_ports", "network_links", "Watchdog"} <= used  # the scan works
    b = load(name)
    missing = sorted(n for n in used - OPTIONAL if not hasattr(b, n))
    assert not missing, "board %s lacks %s (the firmware uses them)" % (name, missing)
    missing = sorted(sim_api() - SIM_ONLY - set(dir(b)))
    assert not missing, "board %s lacks %s that the sim board has: add them, or list them in SIM_ONLY" % (name, missing)
    assert b.NAME == name == json.loads((paths.BOARDS / name / "board.json").read_text())["name"]
    # Nothing of nengjian bound at import: main.py imports board before choosing the update slot.
    for mod in (b, sys.modules["esp32_common"]):
        assert not [k for k, v in vars(mod).items() if isinstance(v, types.ModuleType)
                    and v.__name__.startswith("nengjian")], mod


@pytest.mark.parametrize("name", BOARDS)
def test_board_takes_only_the_shared_api_from_esp32_common_on_micropython(tmp_path, name):
    """The boards `from esp32_common import *`: MicroPython (as CPython) binds only __all__ there, not
    the helpers and modules esp32_common uses itself."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for mod in ("esp32", "network"):  # the unix port has machine, not these
        (stubs / (mod + ".py")).write_text("")
    code = """
import board, esp32_common
print(sorted(k for k in dir(board) if not k.startswith("_")))
print(sorted(k for k in dir(esp32_common) if not k.startswith("_")))
print(sorted(esp32_common.__all__))
"""
    path = ":".join(str(p) for p in (stubs, paths.BOARDS / name, COMMON, paths.FIRMWARE))
    out = run_mpy(code, heap="256k", env={"MICROPYPATH": path}).stdout.split("\n")
    public, common, shared = (set(ast.literal_eval(line)) for line in out[:3])
    assert shared <= public and {"NAME", "rs485_ports", "pulse_inputs", "network_links"} <= public
    # The board's own names that esp32_common has too: what the board defines or imports itself.
    leaked = (common - shared) & public - {"rs485_ports", "pulse_inputs", "machine", "network"}
    assert not leaked and "nvs_read" in common


@pytest.mark.parametrize("name", BOARDS)
def test_paths_match_the_bundle_and_update_slots_have_their_place(hw, name):
    b = load(name)
    board = bundle.load_board(name)
    files = bundle.collect(board, compile=False).files
    assert "lib/board.py" in files and files["lib/esp32_common.py"] == (COMMON / "esp32_common.py").read_bytes()
    assert any(p.startswith(b.PROFILE_DIR.lstrip("/") + "/") and p.endswith(".json") for p in files)
    assert b.CONFIG_DIR == "/config"  # provision writes config/...; flash carries config/ across a reflash
    # Update slots: on the app filesystem (mounted before main.py runs), apart from what bundles write.
    assert b.APP_DIR.lstrip("/") + "/" == bundle.RESERVED
    assert not any(p.startswith(bundle.RESERVED) for p in files)
    assert not b.APP_DIR.startswith(b.DATA_MOUNT + "/")
    with pytest.raises(bundle.BundleError, match="update slots"):
        bundle.collect(board, compile=False, extra={"app/current": b"{}"})
    assert "lib/esp32_common.py" not in bundle.collect(bundle.load_board("sim"), compile=False).files


@pytest.mark.parametrize("name", BOARDS)
def test_pins_are_used_once_and_uarts_do_not_collide(hw, name):
    b = load(name)
    pins = [p for (_u, tx, rx, de) in b.RS485.values() for p in (tx, rx, de)] + list(b.PULSE.values())
    pins += [b.MODEM_TX, b.MODEM_RX, b.MODEM_PWRKEY]
    pins += [getattr(b, k) for k in ("ETH_MDC", "ETH_MDIO", "ETH_POWER", "ETH_REF_CLK") if hasattr(b, k)]
    assert len(pins) == len(set(pins)), pins
    uarts = [u for (u, *_rest) in b.RS485.values()] + [b.MODEM_UART_ID]
    assert len(uarts) == len(set(uarts)) and 0 not in uarts  # UART0: the console on the ESP32


# ---- data volume, watchdog, RTC
@pytest.mark.parametrize("name", BOARDS)
def test_mount_data_formats_only_a_blank_partition(hw, name):
    b = load(name)
    with pytest.raises(OSError, match="no partition labelled data"):
        b.mount_data()
    hw.partitions["data"] = blank = BlockDev(b"\xff" * 16 * 4096)
    with pytest.raises(OSError):
        b.mount_data(format_if_blank=False)
    assert b.mount_data() == "/data" == b.DATA_MOUNT
    assert hw.mkfs == [blank] and hw.mounts == [(blank, "/data")]
    assert b.mount_data() == "/data" and len(hw.mkfs) == 1  # formatted once, then mounted as it is
    hw.partitions["data"] = damaged = BlockDev(b"\x00" * 4096 + b"\xff" * 15 * 4096)
    with pytest.raises(OSError):
        b.mount_data()
    assert len(hw.mkfs) == 1 and bytes(damaged.data[:4096]) == bytes(4096)  # left for a crew to pull


@pytest.mark.parametrize("name", BOARDS)
def test_romfs_stores_are_the_partitions_the_table_names(hw, name):
    b = load(name)
    spec = json.loads((paths.BOARDS / name / "board.json").read_text())["romfs"]
    assert b.romfs_stores() == {}  # a gateway flashed before the ROMFS partitions: no switch at boot
    labels = {"active": spec["label"], "a": spec["stores"][0], "b": spec["stores"][1]}
    for label in labels.values():
        hw.partitions[label] = BlockDev(b"\xff" * 4096)
    got = b.romfs_stores()
    assert {k: v for k, v in got.items()} == {k: hw.partitions[v] for k, v in labels.items()}
    del hw.partitions[spec["stores"][1]]
    assert b.romfs_stores() == {}  # a table with only some of them is not one to copy in
    assert b.ROM_MOUNT == "/rom" and b.ROMFS_BYTES == 0


@pytest.mark.parametrize("name", BOARDS)
def test_watchdog_reset_identity_and_rtc(hw, name):
    b = load(name)
    w = b.Watchdog(30000)
    w.feed()
    w.feed()
    assert [(x.timeout, x.feeds) for x in hw.wdts] == [(30000, 2)] and w.timeout_ms == 30000
    b.reset()
    assert hw.resets == 1
    assert b.unique_id() == b"\x24\x0a\xc4\x00\x00\x01"
    # The port's reset causes, board-neutral: a brown-out is PWRON_RESET there, a panic HARD_RESET.
    m = hw.modules["machine"]
    got = {}
    for hw.reset_cause in (m.PWRON_RESET, m.HARD_RESET, m.WDT_RESET, m.DEEPSLEEP_RESET, m.SOFT_RESET, 0):
        got[hw.reset_cause] = b.reset_cause()
    assert got == {1: health.POWER_ON, 2: health.RESET, 3: health.WATCHDOG, 4: health.UNKNOWN,
                   5: health.SOFT_REBOOT, 0: health.UNKNOWN}
    b.set_utc(int(dt.datetime(2026, 1, 1, 8, 30, 5, tzinfo=dt.timezone.utc).timestamp()))
    assert hw.rtc == [(2026, 1, 1, 3, 8, 30, 5, 0)]  # weekday 3: a Thursday (Monday = 0)


# ---- the service button
@pytest.mark.parametrize("name", BOARDS)
def test_service_button_is_boot_held_low_and_a_clock_on_it_is_never_held(hw, name):
    b = load(name)
    hw.lines[0] = lambda: 1  # released: BOOT's pull-up
    assert b.SERVICE_BUTTON == 0 and b.service_button_held() is False
    hw.lines[0] = lambda: 0  # pressed
    assert b.service_button_held() is True
    pins = [p for p in hw.pins if p.id == 0]
    if name == "esp32_eth":
        # GPIO0 is the PHY's clock input here: read as it is, never taken from the EMAC.
        assert b.ETH_REF_CLK == 0 and all(p.mode is None and p.pull is None for p in pins)
    else:
        assert all((p.mode, p.pull) == (1, 2) for p in pins)  # input with the pull-up
    clock = iter([0] * 40 + [1, 0] * 100)  # a clock on the pin: low for a while, then toggling
    hw.lines[0] = lambda: next(clock)
    assert b.service_button_held() is False


# ---- RS-485 and pulse inputs
WIRING = {"esp32_eth": ((1, 4, 36, 5), (34, 35), None), "esp32s3_4g": ((2, 4, 5, 6), (7, 15), 2)}


@pytest.mark.parametrize("name", BOARDS)
def test_rs485_port_and_pulse_inputs_on_their_pins(hw, name):
    b = load(name)
    (uart, tx, rx, de), pulse_pins, pull = WIRING[name]
    ports = b.rs485_ports()
    assert sorted(ports) == ["rs485_0"] and not hw.uarts  # factories: nothing opened yet
    port = ports["rs485_0"]()
    [u] = hw.uarts
    assert (u.id, u.kw["tx"], u.kw["rx"], u.kw["timeout"], u.kw["timeout_char"]) == (uart, tx, rx, 0, 0)
    [de_pin] = hw.pins
    assert (de_pin.id, de_pin.mode, de_pin.level) == (de, 3, 0)  # receiving from the start
    port.de(True)
    assert de_pin.level == 1
    port.configure(9600, 8, "E", 1)
    assert u.inits[-1]["parity"] == 0 and u.inits[-1]["baudrate"] == 9600
    inputs = b.pulse_inputs()
    assert sorted(inputs) == ["pulse_0", "pulse_1"]
    made = [inputs[k]() for k in sorted(inputs)]
    assert [(p.id, p.mode, p.pull) for p in made] == [(g, 1, pull) for g in pulse_pins]


# ---- network
def test_eth_board_links_ethernet_then_the_modem_when_an_apn_is_given(hw):
    b = load("esp32_eth")
    [eth] = b.network_links({"dial": "atd", "keepalive_s": 300, "failback_s": 900})
    assert (eth.name, eth.kind) == ("eth", "ethernet") and not hw.lans  # the PHY is started on up()
    assert asyncio.run(eth.up()) and eth.is_up()
    [lan] = hw.lans
    assert lan.kw["phy_type"] == "LAN8720" and lan.kw["phy_addr"] == 1
    assert (lan.kw["mdc"].id, lan.kw["mdio"].id, lan.kw["power"].id, lan.kw["ref_clk"].id) == (23, 18, 16, 0)
    assert lan.kw["ref_clk_mode"] == 1  # Pin.IN: the clock comes from the board's oscillator
    eth2, cell = b.network_links({"apn": "cmnet", "pin": "1234", "dial": "cgdata"})
    assert (eth2.name, cell.name, cell.kind) == ("eth", "4g", "cellular")
    _check_modem(hw, cell, uart=2, tx=33, rx=32, pwrkey=14)
    assert (cell.modem.apn, cell.modem.pin, cell.modem.dial_mode) == ("cmnet", "1234", "cgdata")


def test_4g_board_links_the_modem_and_keeps_one_uart(hw):
    b = load("esp32s3_4g")
    [cell] = b.network_links()
    assert (cell.name, cell.kind) == ("4g", "cellular")
    _check_modem(hw, cell, uart=1, tx=17, rx=18, pwrkey=21)
    [again] = b.network_links({"apn": "cmiot"})  # a config reload builds the links anew
    assert again.modem.port is cell.modem.port and len(hw.uarts) == 1 and again.modem.apn == "cmiot"


def _check_modem(hw, cell, uart, tx, rx, pwrkey):
    u = cell.modem.port
    assert (u.id, u.kw["tx"], u.kw["rx"], u.kw["baudrate"], u.kw["timeout"]) == (uart, tx, rx, 115200, 0)
    key = [p for p in hw.pins if p.id == pwrkey][-1]
    assert (key.mode, key.level) == (3, 0)  # output, key released
    cell.modem.pwrkey.on()
    assert key.level == 1
    cell.modem.pwrkey.off()
    ppp = cell._make_ppp(cell.modem)
    [raw] = hw.ppps[-1:]
    assert raw.stream is u and raw.calls == [("active", True)]
    ppp.connect()
    assert ppp.isconnected()
    ppp.disconnect()
    assert raw.calls[-2:] == ["disconnect", ("active", False)]


# ---- credentials
def _provisioned_image(tmp_path, board):
    """nj_keys.bin as `nengjian provision` builds it for `board`, with a certificate issued for the key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    from nengjian_host.sim import gateway as sim

    ks = provision.KeyStore(tmp_path / "keys")
    gw = provision.Gateway(serial="NJ0001", mac="24:0a:c4:00:00:01", board=board,
                           config=sim.demo_site("https://127.0.0.1:9/api", enterprise="91330000573973053F"))
    key, _ = ks.load_or_create(gw.gateway)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gw.gateway)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    gw.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    files, _row = provision.build_files(gw, ks)
    want = {"key": provision._key_pem(key), "cert": gw.cert_pem, "gateway": gw.gateway,
            "enterprise": "91330000573973053F"}
    return files["nj_keys.bin"], want


@pytest.mark.parametrize("name", BOARDS)
def test_credentials_from_the_provisioned_nvs_partition(hw, tmp_path, name):
    b = load(name)
    with pytest.raises(OSError, match="nj_keys"):
        b.credentials()
    hw.partitions["nj_keys"] = BlockDev(b"\xff" * 0x10000)
    assert b.credentials() == {}  # never provisioned
    image, want = _provisioned_image(tmp_path, name)
    hw.partitions["nj_keys"] = BlockDev(image)
    assert b.credentials() == want


def test_nvs_reader_multi_page_blobs_other_namespaces_and_damage(hw, tmp_path):
    load("esp32_eth")
    common = sys.modules["esp32_common"]
    big = random.Random(1).randbytes(10240)  # 10 KiB: chunks on three pages
    entries = {"cert": big, "key": b"k" * 300, "gateway": "NJ-1", "enterprise": "E" * 18, "empty": ""}
    image = provision.build_nvs(entries, 0x10000)
    assert common.nvs_read(BlockDev(image), "nj") == entries
    pages = [n for n in range(16) if big[5000:5032] in image[n * 4096:(n + 1) * 4096]]
    assert pages and pages[0] > image.index(big[:32]) // 4096  # the blob does span pages
    assert common.nvs_read(BlockDev(image), "other") == {}
    # A second namespace holding the same key stays apart.
    out = io.BytesIO()
    nvs = nvsgen.nvs_open(out, 0x6000 - 0x1000, nvsgen.Page.VERSION2)
    nvsgen.write_entry(nvs, "phy", "namespace", "", "")
    nvsgen.write_entry(nvs, "gateway", "data", "string", "not-ours")
    nvsgen.write_entry(nvs, "nj", "namespace", "", "")
    nvsgen.write_entry(nvs, "gateway", "data", "string", "NJ-2")
    nvsgen.write_entry(nvs, "count", "data", "u8", "7")
    nvsgen.nvs_close(nvs)
    assert common.nvs_read(BlockDev(out.getvalue()), "nj") == {"gateway": "NJ-2"}
    assert common.nvs_read(BlockDev(out.getvalue()), "phy") == {"gateway": "not-ours"}
    # Damage: a flipped bit in a value's bytes or in an entry header drops that entry, nothing else.
    at = image.index(b"k" * 300)
    bad = bytearray(image)
    bad[at + 5] ^= 1
    got = common.nvs_read(BlockDev(bad), "nj")
    assert "key" not in got and got["cert"] == big and got["gateway"] == "NJ-1"
    at = image.index(b"gateway\0")
    bad = bytearray(image)
    bad[at + 6] ^= 1  # the key's last letter: only the header CRC tells
    got = common.nvs_read(BlockDev(bad), "nj")
    assert sorted(got) == sorted(set(entries) - {"gateway"}) and got["key"] == entries["key"]
    at = image.index(big[4000:4100])
    bad = bytearray(image)
    bad[at] ^= 1  # a middle chunk of the big blob: the blob is gone, not returned short
    assert "cert" not in common.nvs_read(BlockDev(bad), "nj")


def test_nvs_reader_runs_on_micropython(tmp_path):
    image, want = _provisioned_image(tmp_path, "esp32s3_4g")
    (tmp_path / "nj_keys.bin").write_bytes(image)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for mod in ("esp32", "network"):  # the unix port has machine and vfs, not these
        (stubs / (mod + ".py")).write_text("")
    code = f"""
import binascii, json
import esp32_common
class Dev:
    def __init__(self):
        self.f = open({str(tmp_path / "nj_keys.bin")!r}, "rb")
    def readblocks(self, n, buf, off=0):
        self.f.seek(n * 4096 + off)
        self.f.readinto(buf)
    def ioctl(self, op, arg):
        return 16 if op == 4 else 0
got = esp32_common.nvs_read(Dev(), "nj")
print(json.dumps({{k: (v if isinstance(v, str) else "hex:" + binascii.hexlify(v).decode()) for k, v in got.items()}}))
import esp32_cold
print(esp32_cold.crc32 is not None)
"""
    out = run_mpy(code, heap="256k", env={"MICROPYPATH": "%s:%s" % (stubs, COMMON)}).stdout.split("\n")
    got = {k: bytes.fromhex(v[4:]) if v.startswith("hex:") else v for k, v in json.loads(out[0]).items()}
    assert got == want and out[1] == "True"  # with the CRC checks on
