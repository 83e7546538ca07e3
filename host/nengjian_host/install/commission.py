"""`nengjian commission`: from a gateway in its box to a value the platform accepted, in one sitting.

Owns the commissioning flow and its state; every stage reuses the library that owns the step:

    find          the gateway by USB serial number or MAC (common.device.resolve_port; never a bare tty)
    scan          each bus (install.scan: the firmware's own scan, Modbus addresses, the DL/T 645
                  wildcard address read, CJ/T 188 addresses)
    identify      each meter against the profile library (DL/T 645 and CJ/T 188 answer with their
                  kind; a Modbus meter cannot say what it is: the answers file or the installer says)
    codes         the platform's data-item codes (数据采集项) from its CSV, each mapped to a meter point,
                  checked with the firmware's own code format and scope rule (core.identity)
    config        the site config, written to the work folder and checked (common.siteconfig.check)
    flash         the bundle onto the gateway (install.flash; the sim board: its folder, as
                  `nengjian flash --board sim --sync DIR`)
    provision     keys, identity and the site config (install.provision)
    first_values  wait until every destination accepted a value (console status; the platform's
                  records where a test can read them)
    report        the commissioning report (install.commission_report: HTML and PDF), and the
                  gateway's first ledger entry, a `commission` event through the console

State: `<work>/commission-state.json` holds each finished stage's result. A stage that fails raises
CommissionError (its text names the fix, in English and Chinese) and leaves the state of every
earlier stage: run the same command again and it goes on from the stage that failed. A bus whose
scan finished is not scanned again.

Answers file (JSON; every key optional where a prompt can ask it instead)::

    {"gateway": {"board": "sim", "usb_serial": "NJ0001", "mac": "24:0a:c4:00:00:01",
                 "sim_dir": "gw"},                       # sim_dir only for the sim board
     "site": {"name": "...", "gateway": "NJ-DG-0001"},
     "enterprise": {"code": "<18-char USCC>", "region": "441900"},
     "realtime_period_s": 60,
     "buses": [{"name": "bus0", "port": "rs485_0", "scan": {<nengjian scan options>},
                "expect": 2}],                           # expect: meters that must answer
     "meters": [{"bus": "bus0", "address": 1, "profile": "sim-energy", "id": "m1"}],
     "codes_csv": "codes.csv",                          # relative to the answers file
     "destinations": [{"name": "city", "profile": "ndrc-json", "url": "http://..."}],
     "interval_s": 5,                                   # meter poll interval (default 5)
     "first_value_timeout_s": 300,
     "firmware": "path or version",                     # real boards: the MicroPython image (flash)
     "platform_records": {"url": ".../admin/records", "token": "..."},   # optional, see records_reader
     "sim": {"buses": {"0": "/dev/pts/7"}, "env": {}, "heap": "320k"}}

On a real board the scan runs through the gateway's console (`scan`), which answers in safe mode too,
so the gateway needs a Nengjian firmware of any version before `commission` (a blank chip: `nengjian
flash` first); the flash stage then writes this checkout's. The sim board's scan runs the same
firmware scan in a process of its own, and the sim gateway is booted from its folder for the wait.

Codes CSV (UTF-8, a header row; the platform's issue pasted as it comes, extra columns ignored)::

    code,name,scope,meter,point
    00-00-0000-023300-11,全厂用电,1,m1,energy_kwh

`scope` (统计范围: 1 whole plant, 2 process, 3 process unit, 4 equipment) may be empty: then the most
specific non-zero part of the code decides. `meter` and `point` may be empty: the answers file's
"map" {code: "meter.point"} or the installer fills them, and a code mapped to "skip" is listed as
refused (not collected by this gateway).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

from nengjian_host.common import paths
from nengjian_host.common.output import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE

STAGES = ("find", "scan", "identify", "codes", "config", "flash", "provision", "first_values", "report")
STAGE_ZH = {"find": "查找网关", "scan": "扫描总线", "identify": "识别仪表", "codes": "对应数据采集项",
            "config": "生成并检查站点配置", "flash": "写入固件", "provision": "写入身份与配置",
            "first_values": "等待平台接收首个数据", "report": "生成调试报告"}
STATE_FILE = "commission-state.json"
MODBUS_PREFIX = "m"
ID_PREFIX = {"modbus-rtu": "m", "dlt645-2007": "e", "dlt645-1997": "e", "cjt188": "w"}


class CommissionError(Exception):
    """A stage could not finish: nothing after it was done, nothing before it is lost."""

    def __init__(self, stage: str, code: int, message: str, zh: str):
        super().__init__(message)
        self.stage = stage
        self.exit_code = code
        self.zh = zh


def scope_of(code: str) -> int:
    """The scope a data-item code's own parts imply: its most specific non-zero part."""
    if code[6:10] != "0000":
        return 4
    if code[3:5] != "00":
        return 3
    if code[0:2] != "00":
        return 2
    return 1


def read_codes(path: Path) -> list[dict]:
    """The platform's codes CSV: [{code, name, scope, meter, point, row}]. CommissionError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise CommissionError("codes", EXIT_USAGE, "cannot read the codes CSV %s: %s" % (path, e.strerror),
                              "读不到数据采集项编码表 %s：%s" % (path, e.strerror)) from None
    rows = []
    for n, r in enumerate(csv.DictReader(text.splitlines()), start=2):
        r = {(k or "").strip().lower(): (v or "").strip() for k, v in r.items()}
        if not r.get("code"):
            continue
        scope = r.get("scope") or ""
        rows.append({"row": n, "code": r["code"], "name": r.get("name", ""),
                     "scope": int(scope) if scope.isdigit() else None,
                     "meter": r.get("meter", ""), "point": r.get("point", "")})
    if not rows:
        raise CommissionError("codes", EXIT_USAGE, "%s has no codes: it needs a header row "
                              "code,name,scope,meter,point and one row per data-item code" % path,
                              "%s 中没有编码：第一行应为 code,name,scope,meter,point，之后每行一个数据采集项编码" % path)
    return rows


@dataclass
class Context:
    """What a run works with: the answers, the work folder, how to ask and how to say progress."""

    answers: dict
    work: Path
    base: Path  # paths in the answers file are relative to it
    ask: object = None  # ask(question_zh, question_en, default) -> str, or None: never ask
    step: object = None  # step(stage, text) for the progress line
    platform_records: object = None  # () -> the platform's accepted records (the sim's refplatform)

    def say(self, stage: str, text: str) -> None:
        if self.step:
            self.step(stage, text)

    def need(self, stage: str, where: str, question_zh: str, question_en: str, default=None):
        """An answer: from the answers file (dotted key `where`), else the installer, else an error."""
        node = self.answers
        for part in where.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node not in (None, ""):
            return node
        if self.ask:
            got = self.ask(question_zh, question_en, default)
            if got not in (None, ""):
                return got
        if default is not None:
            return default
        raise CommissionError(stage, EXIT_USAGE, "the answers file has no %s: %s" % (where, question_en),
                              "应答文件缺少 %s：%s" % (where, question_zh))


class State:
    """The resumable state file: each finished stage's result, written after every change."""

    def __init__(self, work: Path):
        self.path = work / STATE_FILE
        try:
            self.doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.doc = {"done": [], "results": {}, "refused": []}

    def done(self, stage: str) -> bool:
        return stage in self.doc["done"]

    def result(self, stage: str, default=None):
        return self.doc["results"].get(stage, default)

    def put(self, stage: str, value, finished: bool = True) -> None:
        self.doc["results"][stage] = value
        if finished and stage not in self.doc["done"]:
            self.doc["done"].append(stage)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, ensure_ascii=False, default=str))
        tmp.replace(self.path)

    def refuse(self, stage: str, what: str, why_en: str, why_zh: str) -> None:
        entry = {"stage": stage, "what": what, "why": why_en, "why_zh": why_zh}
        if entry not in self.doc["refused"]:
            self.doc["refused"].append(entry)


# ---- stages
def stage_find(ctx: Context, st: State) -> dict:
    g = ctx.answers.get("gateway") or {}
    board = ctx.need("find", "gateway.board", "网关板型（sim、esp32s3_4g、esp32_eth）", "the gateway's board", "sim")
    serial = ctx.need("find", "gateway.usb_serial", "网关的 USB 序列号（标签上）", "the gateway's USB serial number")
    mac = ctx.need("find", "gateway.mac", "网关的 MAC 地址（模块上）", "the gateway's MAC address")
    if g.get("port"):
        raise CommissionError("find", EXIT_USAGE, "name the gateway by its USB serial number or MAC, not by a "
                              "port name (%s): a tty number changes when a cable is plugged elsewhere" % g["port"],
                              "请用 USB 序列号或 MAC 指明网关，不要用串口名（%s）：换个 USB 口编号就变" % g["port"])
    from nengjian_host.install import provision

    try:
        mac = provision.normalize_mac(mac)
    except provision.ProvisionError as e:
        raise CommissionError("find", EXIT_USAGE, str(e), "MAC 地址写法有误：写成 24:0a:c4:12:34:56") from None
    out = {"board": board, "usb_serial": serial, "mac": mac}
    if board == "sim":
        sim_dir = ctx.base / ctx.need("find", "gateway.sim_dir", "模拟网关目录", "the sim gateway's folder")
        sim_dir.mkdir(parents=True, exist_ok=True)
        out["sim_dir"] = str(sim_dir.resolve())
        out["port"] = None
    else:
        from nengjian_host.common import device

        try:
            out["port"] = device.resolve_port("sn:" + serial)
        except device.PortNotFound:
            try:
                out["port"] = device.resolve_port("mac:" + mac)
            except device.PortNotFound as e:
                raise CommissionError("find", EXIT_UNREACHABLE, str(e),
                                      "找不到序列号为 %s、MAC 为 %s 的网关：检查 USB 线，然后重新运行" % (serial, mac)) from None
    return out


def _transport(ctx: Context, found: dict, bus: dict):
    from nengjian_host.install import scan

    if found["board"] == "sim":
        port_no = int(bus["port"].rsplit("_", 1)[1])
        wires = (ctx.answers.get("sim") or {}).get("buses") or {}
        pty = wires.get(str(port_no))
        if not pty:
            raise CommissionError("scan", EXIT_USAGE, "sim.buses has no pty for %s" % bus["port"],
                                  "应答文件 sim.buses 中没有 %s 的串口" % bus["port"])
        return scan.SimTransport({port_no: pty}, heap=(ctx.answers.get("sim") or {}).get("heap", "288k"))
    from nengjian_host.common.device import ConsoleScanTransport

    return ConsoleScanTransport(found["port"])


def stage_scan(ctx: Context, st: State, found: dict) -> dict:
    """Each bus in turn; a bus that finished keeps its finds in the state, so a rerun scans only the rest."""
    from nengjian_host.install import scan

    buses = ctx.need("scan", "buses", "总线（名称与端口）", "the buses", [{"name": "bus0", "port": "rs485_0"}])
    done = st.result("scan", {}) or {}
    for bus in buses:
        name = bus["name"]
        if name in done:
            ctx.say("scan", "%s: scanned before, %d meter(s) (kept)" % (name, len(done[name])))
            continue
        opts = {"port": bus["port"], "cjt188": True}
        opts.update(bus.get("scan") or {})

        def live(kind, payload, name=name):
            if kind == "progress":
                ctx.say("scan", "%s %s %d %s ... (%d found)" % (name, payload["scan"], payload["baud"],
                                                               payload["parity"], payload["found"]))
            elif kind == "find":
                ctx.say("scan", "%s found %s %s" % (name, payload["protocol"], payload["address"]))

        try:
            res = scan.run_on(_transport(ctx, found, bus), opts, live)
        except OSError as e:
            raise CommissionError("scan", EXIT_UNREACHABLE, "cannot reach the gateway to scan %s: %s" % (name, e),
                                  "连不上网关，%s 未扫描：检查 USB 线，然后重新运行" % name) from None
        if res.errors:
            raise CommissionError("scan", EXIT_FAILED, "the scan of %s did not finish: %s (buses scanned "
                                  "before are kept; run again)" % (name, "; ".join(map(str, res.errors))),
                                  "%s 扫描没有完成（之前扫完的总线已保存，重新运行即可继续）" % name)
        good = [f for f in res.finds if f["ok"] and f["address"] is not None]
        for f in res.finds:
            if not f["ok"]:
                st.refuse("scan", "%s %s %s" % (name, f["protocol"], f["address"]), f["reply"],
                          "应答不完整或校验错（线路参数不对，或干扰）")
        want = bus.get("expect")
        if want is not None and len(good) < int(want):
            got = ", ".join("%s %s" % (f["protocol"], f["address"]) for f in good) or "nothing"
            raise CommissionError("scan", EXIT_FAILED, "%s: %d meter(s) answered, %d expected (%s): a meter "
                                  "stopped answering? Check its wiring and power, then run again: the buses "
                                  "scanned before are kept" % (name, len(good), int(want), got),
                                  "%s：应答的仪表 %d 台，应有 %d 台。检查没有应答的仪表接线和供电，然后重新运行"
                                  "（已扫完的总线保留）" % (name, len(good), int(want)))
        done[name] = good
        st.put("scan", done, finished=False)
    st.put("scan", done)
    return done


def _profile_names() -> list[str]:
    return sorted(p.stem for p in paths.PROFILES.glob("*.json"))


def stage_identify(ctx: Context, st: State, finds: dict) -> list[dict]:
    from nengjian_host.install import scan

    given = {(m["bus"], str(m["address"])): m for m in ctx.answers.get("meters") or []}
    profiles = set(_profile_names())
    meters, used = [], set()
    for bus_name, bus_finds in finds.items():
        for f in bus_finds:
            key = (bus_name, str(f["address"]))
            ans = given.get(key, {})
            hint = scan._profile_for(f)
            if f["protocol"] == "modbus-rtu":
                # A Modbus meter has no standard identity register: the profile is the installer's word.
                profile = ans.get("profile") or ctx.need(
                    "identify", "meters[%s %s].profile" % key,
                    "%s 地址 %s 的 Modbus 仪表是哪个型号？（%s）" % (bus_name, f["address"], ", ".join(sorted(profiles))),
                    "the profile of the Modbus meter at %s address %s" % key)
            else:
                profile = ans.get("profile") or hint  # DL/T 645 and CJ/T 188 say their kind themselves
            if profile not in profiles:
                raise CommissionError("identify", EXIT_USAGE, "%s address %s: no profile %r in the library "
                                      "(profiles/meters/): choose one of %s" % (bus_name, f["address"], profile,
                                                                                ", ".join(sorted(profiles))),
                                      "%s 地址 %s：型号库中没有 %r，请从 profiles/meters/ 中选择" % (
                                          bus_name, f["address"], profile))
            mid = ans.get("id") or "%s%s" % (ID_PREFIX.get(f["protocol"], "m"), str(f["address"])[-4:])
            while mid in used:
                mid += "x"
            used.add(mid)
            meters.append({"id": mid, "bus": bus_name, "profile": profile, "address": f["address"],
                           "protocol": f["protocol"], "identified_by": "answer" if ans.get("profile") or
                           f["protocol"] == "modbus-rtu" else "scan reply (%s)" % f["reply"],
                           "line": {"baud": f["baud"], "bits": f["bits"], "parity": f["parity"], "stop": f["stop"]}})
            ctx.say("identify", "%s %s -> %s (%s)" % (bus_name, f["address"], profile, mid))
    return meters


def stage_codes(ctx: Context, st: State, meters: list[dict]) -> list[dict]:
    from nengjian_host.common import siteconfig

    csv_name = ctx.need("codes", "codes_csv", "平台下发的数据采集项编码表（CSV 文件）", "the platform's codes CSV")
    rows = read_codes(ctx.base / csv_name)
    mapping = ctx.answers.get("map") or {}
    by_id = {m["id"]: m for m in meters}
    items = []
    for r in rows:
        meter, point = r["meter"], r["point"]
        if not (meter and point):
            target = mapping.get(r["code"]) or ctx.need(
                "codes", "map.%s" % r["code"], "数据采集项 %s（%s）由哪台仪表的哪个测点采集？写 仪表.测点，或 skip"
                % (r["code"], r["name"]), "which meter.point gives %s (%s), or skip" % (r["code"], r["name"]))
            if target == "skip":
                st.refuse("codes", r["code"], "not collected by this gateway (the answers say skip)",
                          "不由本网关采集（应答为 skip）")
                continue
            meter, _, point = target.partition(".")
        scope = r["scope"] or scope_of(r["code"])
        why = siteconfig.fw_identity.data_code_problem(r["code"], scope)
        if why:
            raise CommissionError("codes", EXIT_USAGE, "codes CSV row %d: %s with scope %d: %s. Correct the row "
                                  "(or ask the platform for the right code) and run again: the scan and the "
                                  "meters found are kept" % (r["row"], r["code"], scope, why),
                                  "编码表第 %d 行：%s（统计范围 %d）不符合编码规则：%s。改正该行（或向平台核实编码）"
                                  "后重新运行，已完成的扫描和识别不会丢失" % (r["row"], r["code"], scope, why))
        m = by_id.get(meter)
        if m is None:
            raise CommissionError("codes", EXIT_USAGE, "codes CSV row %d: %s names meter %r, which the scan did "
                                  "not find (found: %s)" % (r["row"], r["code"], meter, ", ".join(by_id)),
                                  "编码表第 %d 行：仪表 %r 没有扫描到（扫描到：%s）" % (r["row"], meter, ", ".join(by_id)))
        prof = siteconfig.fw_profile.load(str(paths.PROFILES), m["profile"])
        if point not in prof["points"]:
            raise CommissionError("codes", EXIT_USAGE, "codes CSV row %d: meter %s (%s) has no point %r; it has %s"
                                  % (r["row"], meter, m["profile"], point, ", ".join(sorted(prof["points"]))),
                                  "编码表第 %d 行：仪表 %s（%s）没有测点 %r" % (r["row"], meter, m["profile"], point))
        items.append({"code": r["code"], "name": r["name"], "meter": meter, "point": point, "scope": scope,
                      "unit": prof["points"][point].get("unit", "")})
        ctx.say("codes", "%s <- %s.%s (scope %d)" % (r["code"], meter, point, scope))
    return items


def site_config(ctx: Context, found: dict, meters: list[dict], items: list[dict]) -> dict:
    a = ctx.answers
    site = dict(a.get("site") or {})
    site.setdefault("gateway", found["usb_serial"])
    site.setdefault("name", site["gateway"])
    buses = a.get("buses") or [{"name": "bus0", "port": "rs485_0"}]
    interval = int(a.get("interval_s", 5))
    return {
        "version": 1,
        "site": site,
        "enterprise": ctx.need("config", "enterprise", "重点用能单位的统一社会信用代码和行政区划", "the enterprise"),
        "realtime_period_s": int(a.get("realtime_period_s", 900)),
        "buses": [{"name": b["name"], "port": b["port"]} for b in buses],
        "meters": [{"id": m["id"], "bus": m["bus"], "profile": m["profile"], "address": m["address"],
                    "interval_s": interval, "timeout_ms": 600, "line": m["line"]} for m in meters],
        "items": [{"code": i["code"], "meter": i["meter"], "point": i["point"], "scope": i["scope"]} for i in items],
        "destinations": ctx.need("config", "destinations", "上传平台", "the destinations"),
    }


def stage_config(ctx: Context, found: dict, meters: list[dict], items: list[dict]) -> dict:
    from nengjian_host.common import siteconfig

    cfg = site_config(ctx, found, meters, items)
    path = ctx.work / "site.json"
    path.write_text(json.dumps(cfg, indent=1, ensure_ascii=False))
    problems = siteconfig.check(cfg)
    if problems:
        raise CommissionError("config", EXIT_FAILED, "the site config %s has problems: %s" % (path, "; ".join(problems)),
                              "站点配置 %s 未通过检查：%s" % (path, "；".join(problems)))
    return {"path": str(path)}


def stage_flash(ctx: Context, found: dict) -> dict:
    from nengjian_host.common import bundle
    from nengjian_host.install import flash

    board = bundle.load_board(found["board"])
    try:
        if board.is_sim:
            r = flash.sync_to(board, found["sim_dir"], step=lambda t: None)
            return {"device": r["device"], "copied": len(r["copied"]), "checked": r["checked"]}
        made = bundle.make(board.name, ctx.work / "bundle", None)
        conn = flash.Connection(found["port"], board.chip)
        fw = flash.resolve_firmware(ctx.answers.get("firmware"), board)
        rec = flash.flash(board, fw, conn, expect_mac=found["mac"], step=lambda t, **_k: ctx.say("flash", t))
        return {"device": found["port"], "bundle": made.get("tree"), "record": str(rec.get("record"))}
    except bundle.BundleError as e:
        raise CommissionError("flash", EXIT_USAGE, str(e), "无法生成应用包（原因见上一行）") from None
    except flash.FlashError as e:
        raise CommissionError("flash", e.exit_code, str(e), "烧录或校验失败（原因见上一行），重新运行即可从此步继续") from None


def stage_provision(ctx: Context, found: dict, cfg_path: str) -> dict:
    from nengjian_host.common.devicefiles import DeviceUnreachable
    from nengjian_host.install import provision

    gw = provision.Gateway(serial=found["usb_serial"], mac=found["mac"], board=found["board"],
                           config=json.loads(Path(cfg_path).read_text()))
    inv = provision.Inventory(provision.default_inventory())
    try:
        device, nvs_writer = provision.target_for(gw, port=found.get("port"), sim_dir=found.get("sim_dir"))
        r = provision.provision(gw, device, inv, provision.KeyStore(provision.default_keystore()),
                                nvs_writer=nvs_writer)
    except provision.ProvisionError as e:
        raise CommissionError("provision", EXIT_USAGE, str(e), "写入前检查未通过，什么都没写入（原因见上一行）") from None
    except DeviceUnreachable as e:
        raise CommissionError("provision", EXIT_UNREACHABLE, str(e), "网关没有应答：检查 USB 线，然后重新运行") from None
    finally:
        inv.close()
    return r.as_dict()


class SimRunner:
    """The sim gateway of a commissioning run: booted from its folder for the wait, stopped after."""

    def __init__(self, ctx: Context, found: dict):
        from nengjian_host.sim.gateway import SimGateway

        sim = ctx.answers.get("sim") or {}
        buses = {int(k): v for k, v in (sim.get("buses") or {}).items()}
        self.gw = SimGateway(found["sim_dir"], buses, heap=sim.get("heap", "320k"), env=sim.get("env") or {})

    def start(self) -> str:
        self.gw.start()
        return str(self.gw.usb_link)

    def close(self) -> None:
        self.gw.close()
        # What the sim gateway printed: for a failed wait, the first place to look
        (Path(self.gw.dir) / "console.log").write_text(self.gw.output())


def stage_first_values(ctx: Context, port: str, items: list[dict], runner=None) -> dict:
    """Until every destination accepted a value (its last_ok), reading the console's status."""
    from nengjian_host.common import device

    timeout = float(ctx.answers.get("first_value_timeout_s", 1200))
    deadline = time.monotonic() + timeout
    last_err = "no answer"
    st = {}
    while time.monotonic() < deadline:
        if runner is not None and runner.gw.down():
            tail = " | ".join(runner.gw.lines[-4:])
            raise CommissionError("first_values", EXIT_FAILED, "the sim gateway stopped: %s (its console is in "
                                  "%s/console.log)" % (tail, runner.gw.dir),
                                  "模拟网关停止运行（控制台输出见 %s/console.log）" % runner.gw.dir)
        try:
            with device.Console(port, timeout=15) as con:
                st = con.status()
        except (device.DeviceUnreachable, device.DeviceError, OSError, ValueError) as e:
            last_err = str(e)
            time.sleep(1)  # the console comes up after boot; asking again is all there is to do
            continue
        dests = st.get("destinations") or []
        waiting = [d["name"] for d in dests if not d.get("last_ok")]
        ctx.say("first_values", "accepted by %d of %d destination(s)%s" % (
            len(dests) - len(waiting), len(dests), (" (waiting: %s)" % ", ".join(waiting)) if waiting else ""))
        if dests and not waiting:
            break
        last_err = "; ".join("%s: %s" % (d["name"], d.get("last_error") or "nothing sent yet") for d in dests
                             if not d.get("last_ok")) or "no destination"
        time.sleep(2)  # a poll of the gateway's own state, not a wait standing in for an event
    else:
        raise CommissionError("first_values", EXIT_FAILED, "no value accepted by every destination within %d s "
                              "(%s): check the link and the platform's address, then run again" % (timeout, last_err),
                              "%d 秒内平台没有全部接收数据（%s）：检查网络和平台地址，然后重新运行" % (timeout, last_err))
    records = []
    if ctx.platform_records:
        codes = {i["code"] for i in items}
        want_deadline = time.monotonic() + 60
        while time.monotonic() < want_deadline:
            records = [r for r in ctx.platform_records() if r.get("dataCode") in codes]
            if {r["dataCode"] for r in records} >= codes:
                break
            time.sleep(1)
    first = {}
    for r in sorted(records, key=lambda r: (r.get("statDate") or "", r.get("dataCode"))):
        first.setdefault(r["dataCode"], {"value": r.get("dataValue"), "stat_date": r.get("statDate"),
                                         "stat_type": r.get("statType"), "valid": r.get("valid")})
    meters = {m["id"]: m.get("values") for m in st.get("meters") or []}
    with device.Console(port, timeout=15) as con:
        try:
            events = con.events(10)
        except device.DeviceError:
            events = []
    return {"status": {k: st.get(k) for k in ("firmware", "board", "gateway_id", "links", "destinations",
                                              "alarms", "network")},
            "meter_values": meters, "platform_first": first, "events": events[-3:]}


def records_reader(spec: dict):
    """() -> the platform's accepted records, read from a records query (the reference platform's
    /admin/records; a platform that offers one to installers). Answers key "platform_records":
    {"url", "token"}."""
    import urllib.request

    def read() -> list[dict]:
        req = urllib.request.Request(spec["url"], headers={"Authorization": "Bearer %s" % spec.get("token", "")})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return []  # asked again on the next round; the wait's own deadline bounds it

    return read


def ledger_text(found: dict, meters: list[dict], items: list[dict]) -> str:
    text = "commission %s: %d meters (%s), %d items" % (
        found["usb_serial"], len(meters), ", ".join("%s@%s" % (m["id"], m["address"]) for m in meters), len(items))
    return text[:200]


def record_commission(port: str, text: str) -> dict:
    """The first ledger entry: a `commission` event through the console (a `visit` on a firmware that has
    no `commission` command yet, so the entry is never lost)."""
    from nengjian_host.common import device

    with device.Console(port, timeout=15) as con:
        try:
            ans = con.request("commission " + text)[-1]
            return {"kind": "commission", "seq": ans.get("seq")}
        except device.DeviceError:
            ans = con.request("visit " + text)[-1]
            return {"kind": "visit", "seq": ans.get("seq")}


def run(ctx: Context, start_sim: bool = True, until: str | None = None) -> dict:
    """The whole flow from the last finished stage (to `until`, included, if given); returns the state."""
    ctx.work.mkdir(parents=True, exist_ok=True)
    st = State(ctx.work)
    if ctx.platform_records is None and ctx.answers.get("platform_records"):
        ctx.platform_records = records_reader(ctx.answers["platform_records"])
    runner = None
    try:
        for stage in STAGES:
            if st.done(stage):
                ctx.say(stage, "done before (kept)")
                continue
            ctx.say(stage, STAGE_ZH[stage] + " / " + stage)
            r = st.doc["results"]
            if stage == "find":
                st.put(stage, stage_find(ctx, st))
            elif stage == "scan":
                stage_scan(ctx, st, r["find"])
            elif stage == "identify":
                st.put(stage, stage_identify(ctx, st, r["scan"]))
            elif stage == "codes":
                st.put(stage, stage_codes(ctx, st, r["identify"]))
            elif stage == "config":
                st.put(stage, stage_config(ctx, r["find"], r["identify"], r["codes"]))
            elif stage == "flash":
                st.put(stage, stage_flash(ctx, r["find"]))
            elif stage == "provision":
                st.put(stage, stage_provision(ctx, r["find"], r["config"]["path"]))
            elif stage in ("first_values", "report"):
                port = r["find"].get("port")
                if r["find"]["board"] == "sim" and start_sim and runner is None:
                    runner = SimRunner(ctx, r["find"])
                    port = runner.start()
                elif r["find"]["board"] == "sim":
                    port = str(Path(r["find"]["sim_dir"]) / "usb")
                if stage == "first_values":
                    st.put(stage, stage_first_values(ctx, port, r["codes"], runner))
                else:
                    from nengjian_host.install import commission_report

                    entry = record_commission(port, ledger_text(r["find"], r["identify"], r["codes"]))
                    st.put(stage, commission_report.write(ctx.work, st.doc, entry))
            if stage == until:
                break
    except CommissionError as e:
        # Kept for the report's "what was refused and why", also once the installer has put it right.
        st.refuse(e.stage, "run stopped at %s" % e.stage, str(e), e.zh)
        st.put("_failed", e.stage, finished=False)
        raise
    finally:
        if runner:
            runner.close()
    return st.doc
