"""The gateway's USB console on the rig: line commands beside the running application, Ctrl-C to the
REPL for mpremote, and the host tools (`nengjian status/console`) over the same port."""

import json
import subprocess
import sys
import time

import pytest
from nengjian_host.common.device import Console, DeviceError, DeviceGone, RawRepl, ServiceButtonNeeded
from simrig import nengjian

pytestmark = [pytest.mark.e2e]


def _nengjian(*argv, timeout=60):
    return subprocess.run([sys.executable, "-m", "nengjian_host.cli"] + list(argv), capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.needs("console")
def test_status_events_and_cli_while_the_gateway_runs(dut, bus):
    bus.silence(2)
    cfg = dut.site()
    cfg["meters"][1]["backoff_s"] = 5
    dut.start(cfg)
    dut.expect(r"event\s+meter: meter m2 offline", timeout=30)
    dut.expect(r"poll\s+m1 at", timeout=20)

    code, out = nengjian("status", "--port", dut.port, "--json")
    assert code == 0
    st = json.loads(out)
    assert st["mode"] == "run" and st["board"] == dut.status()["board"]
    assert st["firmware"] and st["gateway_id"] and st["uptime_s"] >= 0
    meters = {m["id"]: m for m in st["meters"]}
    assert not meters["m1"]["offline"] and meters["m1"]["values"]["energy_kwh"]
    assert meters["m2"]["offline"] and meters["m2"]["last_error"]
    assert "city" in st["store"]["backlog"] and st["destinations"][0]["name"] == "city"
    assert any("meter m2 offline" in a for a in st["alarms"])
    assert st["heap_free"] > 0 and st["flash"]["free"] <= st["flash"]["size"]

    # --check turns alarms into exit 1; the human rendering names the offline meter.
    code, out = nengjian("status", "--port", dut.port, "--check")
    assert code == 1 and "m2" in out and "offline" in out

    events = dut.events(10)
    kinds = [(e["kind"], e["text"]) for e in events]
    assert any(k == "boot" and t.startswith("started firmware %s (reset cause: " % st["firmware"]) for k, t in kinds)
    assert any(k == "meter" and "m2 offline" in t for k, t in kinds)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    # The application never stopped for any of this.
    n = len(dut.lines)
    dut.wait_for(lambda: any(" poll " in line for line in dut.lines[n:]), timeout=20, what="polling going on")
    assert dut.alive()


@pytest.mark.needs("console")
def test_bad_requests_get_errors_and_the_console_goes_on(dut):
    dut.start()
    dut.expect(r"poll\s+m1 at", timeout=30)
    con = dut.console()
    with pytest.raises(DeviceError, match="unknown command"):
        con.request("frobnicate")
    with pytest.raises(DeviceError, match="bad arguments"):
        con.request("get")
    with pytest.raises(DeviceError, match="ENOENT|No such|Errno 2"):
        con.request("get %s/no/such/file 0 10" % con.status()["paths"]["data"])
    with pytest.raises(DeviceError, match="refused"):
        con.request("get /no/such/file 0 10")
    con._write(b"#1 " + b"x" * 3000 + b"\n\x00\xff\xfe garbage\r\n")  # too long, binary junk
    with pytest.raises(DeviceError, match="put writes only"):
        con.put_file("/data/store/s00.seg", b"nope")
    assert con.status()["mode"] == "run"


@pytest.mark.needs("console")
def test_heap_figures_without_the_commands_module(dut):
    """`heap`: micropython.mem_info()'s lines (the largest free block the bench reads after a day),
    answered by the console itself, as `status` is."""
    dut.start()
    dut.expect(r"poll\s+m1 at", timeout=30)
    con = dut.console()
    lines = []
    con.on_line = lines.append
    try:
        [ans] = con.request("heap")
    finally:
        con.on_line = None
    assert ans["free"] > 0 and ans["used"] > 0
    [blocks] = [int(x.rsplit("max free sz:", 1)[1]) for x in lines if "max free sz:" in x]
    assert 0 < blocks * 16 <= ans["free"]  # GC blocks: 32 bytes on the 64-bit sim, 16 on an ESP32
    assert con.status()["mode"] == "run"


@pytest.mark.needs("console", "files")
def test_put_is_all_or_nothing(dut):
    dut.start()
    dut.expect(r"poll\s+m1 at", timeout=30)
    con = dut.console()
    cdir = con.status()["paths"]["config"]
    before = dut.read_file("config/site.json")
    # A put whose bytes do not hash as announced leaves the old file.
    con.request("put %s/site.json 4 %s" % (cdir, "0" * 64))
    with pytest.raises(DeviceError, match="sha256"):
        con.request("+AAAAAA==")
    assert dut.read_file("config/site.json") == before
    # A put that stops half way (another command comes) leaves it too.
    con.request("put %s/site.json 800 %s" % (cdir, "1" * 64))
    con.request("+" + "QUFB" * 10)
    con.status()
    assert dut.read_file("config/site.json") == before
    new = json.loads(before)
    new["site"]["name"] = "renamed"
    ans = dut.put_config(new)
    assert ans["applies"] == "after reset"
    assert json.loads(dut.read_file("config/site.json"))["site"]["name"] == "renamed"


@pytest.mark.needs("console", "files", "service_button")
def test_the_console_keeps_to_its_volumes_hides_secrets_and_guards_trust_anchors(dut):
    """docs/SECURITY.md, the console: no path out of the data volume and the config's JSON files, no
    PIN in what it shows, and no trust anchor replaced on a provisioned gateway without the button."""
    cfg = dut.site()
    cfg["network"] = {"apn": "cmnet", "pin": "4711"}  # the SIM PIN (the sim's host link has no SIM)
    dut.start(cfg)
    dut.expect(r"poll\s+m1 at", timeout=30)
    con = dut.console()
    paths = con.status()["paths"]
    up = "../" * 12
    for path in (up + "etc/hostname", "%s/%setc/hostname" % (paths["config"], up),
                 "%s/%setc/hostname" % (paths["data"], up), "/etc/hostname", paths["config"] + "/../data.img"):
        for request in ("get %s 0 100" % path, "sha256 %s" % path):
            with pytest.raises(DeviceError, match="refused"):
                con.request(request)
    site = dut.read_file("config/site.json")
    assert len(site) == dut.gateway.config_path.stat().st_size and b"4711" not in site
    assert json.loads(site)["network"] == {"apn": "cmnet", "pin": "****"}
    # The update key: a provisioned gateway takes a new one only while the service button is held.
    key = json.dumps({"alg": "rsa-pkcs1v15-sha256", "kid": "attacker", "n": "AQAB", "e": 65537}).encode()
    anchor = dut.gateway.dir / "config" / "ota_key.json"
    with pytest.raises(ServiceButtonNeeded, match="service button") as refused:
        con.put("config/ota_key.json", key)
    assert "维护按键" in refused.value.zh and not anchor.exists()
    dut.service_button(True)
    try:
        assert con.put("config/ota_key.json", key)["written"].endswith("/ota_key.json")
    finally:
        dut.service_button(False)
    assert anchor.read_bytes() == key
    assert con.status()["mode"] == "run"


@pytest.mark.needs("console", "mpremote", "reset")
def test_ctrl_c_lets_mpremote_in_without_a_power_cycle(dut):
    dut.start()
    dut.expect(r"poll\s+m2 at", timeout=30)
    # mpremote's own connect sequence (Ctrl-C, Ctrl-A) gets the raw REPL from the running gateway.
    cmd = [sys.executable, "-m", "mpremote", "connect", dut.port, "resume",
           "exec", "import os; print(sorted(os.listdir('/data/store')))"]
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "s00.seg" in p.stdout and time.monotonic() - t < 20
    dut.expect(r"stopped from the console", timeout=5)
    dut.expect(r"store flushed: last record \d+", timeout=5)
    # The transport layer below mpremote: raw REPL with raw-paste, file reads and hashes.
    with RawRepl(dut.port) as repl:
        assert repl.eval("1 + 1") == 2
        site = repl.read_file(repl.eval("__import__('board').CONFIG_DIR") + "/site.json")
        assert json.loads(site)["site"]["name"]
        seg = repl.read_file("/data/store/s00.seg")
        assert repl.sha256("/data/store/s00.seg") == __import__("hashlib").sha256(seg).hexdigest()
    # In the REPL the line console is gone: a status request gets no answer.
    con = Console(dut.port, timeout=2)
    with pytest.raises(DeviceGone, match="REPL"):
        con.status()
    # Ctrl-D in the REPL starts the gateway again (a soft reset on the ESP32; on the sim the
    # process exits and the board boots it again).
    con._write(b"\x04")
    dut.expect(r"nengjian \S+ on board", timeout=20)
    dut.expect(r"poll\s+m1 at", timeout=30)
    assert con.status()["mode"] == "run"
    con.close()


@pytest.mark.needs("console", "reset")
def test_console_reset_and_piped_console(dut, tmp_path):
    dut.start()
    dut.expect(r"poll\s+m1 at", timeout=30)
    dut.console().reset()
    dut.expect(r"nengjian \S+ on board", timeout=20)
    dut.expect(r"poll\s+m1 at", timeout=30)
    # `nengjian console` with a pipe: what a script sends, the gateway answers (a human line is echoed).
    p = subprocess.run([sys.executable, "-m", "nengjian_host.cli", "console", "--port", dut.port, "--wait", "1.5"],
                       input="help\n", capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "help\n" in p.stdout and "events N" in p.stdout and '"commands"' in p.stdout


def test_cli_reports_an_unreachable_gateway(tmp_path):
    code, _ = nengjian("status", "--port", str(tmp_path / "nothing"))
    assert code == 3
    code, _ = nengjian("status", "--port", "sim:%s" % tmp_path)
    assert code == 3


@pytest.mark.needs("console")
def test_scan_through_the_running_gateway(dut):
    dut.start()
    dut.expect(r"poll\s+m1 at", timeout=30)
    p = _nengjian("scan", "--console", dut.port, "--addresses", "1-4", "--bauds", "9600", "--parities", "N",
                  "--no-dlt645", "--json")
    assert p.returncode == 0, p.stderr
    finds = [json.loads(line) for line in p.stdout.splitlines()]
    assert sorted(f["address"] for f in finds if f["ok"]) == [1, 2]
    # The scan shared the bus with the pollers, which went on.
    n = len(dut.lines)
    dut.wait_for(lambda: any(" poll " in line for line in dut.lines[n:]), timeout=20, what="polling going on")
    # A human gets the table and the meters array for the site config.
    p = _nengjian("scan", "--console", dut.port, "--addresses", "2-2", "--bauds", "9600", "--parities", "N",
                  "--no-dlt645")
    assert p.returncode == 0 and '"address": 2' in p.stdout, p.stdout + p.stderr
    p = _nengjian("scan", "--console", dut.port, "--port", "rs485_7", "--no-dlt645")
    assert p.returncode == 1 and "rs485_7" in p.stderr


def test_nothing_in_the_firmware_blocks_ctrl_c():
    """Ctrl-C is how mpremote gets in: no module may disable the interrupt character or swallow
    KeyboardInterrupt (a bare except, or BaseException) - SPEC 7, field tools."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bad = []
    for f in sorted((root / "firmware").rglob("*.py")) + sorted((root / "boards").rglob("*.py")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"kbd_intr\(\s*-1|except\s*:|except\s+\(?[^)]*\bBaseException\b", code):
                bad.append("%s:%d: %s" % (f.relative_to(root), n, line.strip()))
    assert not bad, "\n".join(bad)


@pytest.mark.needs("console")
def test_status_says_why_the_gateway_is_in_safe_mode_in_chinese_and_english(dut):
    """The gateway gives its config's problems with their codes (the status's "safe"); `nengjian status`
    says them in the installer's language first, the English below for the vendor's support."""
    cfg = dut.site()
    cfg["meters"][0]["bus"] = "bus9"
    dut.start(cfg)
    dut.expect(r"SAFE MODE: config: ", timeout=30)
    code, out = nengjian("status", "--port", dut.port, "--json")
    st = json.loads(out)
    assert code == 0 and st["mode"] == "safe" and st["safe"]["code"] == "config", st
    assert "meters[0].bus：没有名为 'bus9' 的总线" in st["safe_reason_zh"], st["safe_reason_zh"]
    code, out = nengjian("--lang", "zh", "status", "--port", dut.port)
    lines = out.splitlines()
    zh = next(i for i, x in enumerate(lines) if x.startswith("安全模式：站点配置不可用"))
    en = next(i for i, x in enumerate(lines) if x.startswith("safe mode: the site config cannot be used"))
    assert zh < en and "meters[0].bus: no bus named 'bus9'" in out, out
