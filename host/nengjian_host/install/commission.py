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
from nengjian_host.common.messages import Text, msg, t
from nengjian_host.common.output import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE

STAGES = ("find", "scan", "identify", "codes", "config", "flash", "provision", "first_values", "report")
STATE_FILE = "commission-state.json"
MODBUS_PREFIX = "m"
ID_PREFIX = {"modbus-rtu": "m", "dlt645-2007": "e", "dlt645-1997": "e", "cjt188": "w"}


class CommissionError(Exception):
    """A stage could not finish: nothing after it was done, nothing before it is lost. Its text is the
    catalogue's `key` (common.messages) in English, `zh` the same in Chinese."""

    def __init__(self, stage: str, exit_code: int, key: str, **params):
        text = msg(key, **params)
        super().__init__(str(text))
        self.stage = stage
        self.exit_code = exit_code
        self.key = key
        self.zh = text.zh

    def text(self) -> Text:
        return Text(str(self), self.zh, self.key)


def stage_name(stage: str) -> Text:
    """A stage as the installer reads it: its id in English (what --until takes), its name in Chinese."""
    return Text(stage, msg("stage.commission." + stage).zh)


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
        raise CommissionError("codes", EXIT_USAGE, "err.commission.codes_unreadable", path=path,
                              reason=e.strerror) from None
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
        raise CommissionError("codes", EXIT_USAGE, "err.commission.codes_empty", path=path)
    return rows


@dataclass
class Context:
    """What a run works with: the answers, the work folder, how to ask and how to say progress."""

    answers: dict
    work: Path
    base: Path  # paths in the answers file are relative to it
    ask: object = None  # ask(question_zh, question_en, default) -> str, or None: never ask
    step: object = None  # step(stage, text) for the progress line (in the chosen language)
    platform_records: object = None  # () -> the platform's accepted records (the sim's refplatform)

    def say(self, stage: str, text: str) -> None:
        if self.step:
            self.step(stage, text)

    def answer(self, where: str):
        """The answers file's value at the dotted key `where`, or None."""
        node = self.answers
        for part in where.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return None if node == "" else node

    def optional(self, where: str, question: str, **params):
        """An answer that may stay empty: from the answers file, else the installer (Enter skips), else None."""
        node = self.answer(where)
        if node is not None or not self.ask:
            return node
        asked = msg(question, **params)
        return self.ask(asked.zh, str(asked), None) or None

    def checked(self, stage: str, where: str, question: str, problem, default=None, **params):
        """An answer `problem(value)` accepts (it returns None, or why not as a Text). A wrong answer in the
        file is an error naming the fix; the installer is told why and asked again, three times at most."""
        if self.answer(where) is not None or not self.ask:
            value = self.need(stage, where, question, default, **params)
            why = problem(value)
            if why:
                raise CommissionError(stage, EXIT_USAGE, "err.commission.answer", where=where, value=value, why=why)
            return value
        q = msg(question, **params)
        asked, got, why = q, None, None
        for _ in range(3):
            got = self.ask(asked.zh, str(asked), default)
            got = default if got in (None, "") else got
            if got is None:
                raise CommissionError(stage, EXIT_USAGE, "err.commission.no_answer", where=where, question=q)
            why = problem(got)
            if not why:
                return got
            asked = msg("ask.commission.again", why=why, question=q)
        raise CommissionError(stage, EXIT_USAGE, "err.commission.answer", where=where, value=got, why=why)

    def need(self, stage: str, where: str, question: str, default=None, **params):
        """An answer: from the answers file (dotted key `where`), else the installer (the catalogue's
        `question`, asked in both languages), else an error."""
        node = self.answer(where)
        if node is not None:
            return node
        asked = msg(question, **params)
        if self.ask:
            got = self.ask(asked.zh, str(asked), default)
            if got not in (None, ""):
                return got
        if default is not None:
            return default
        raise CommissionError(stage, EXIT_USAGE, "err.commission.no_answer", where=where, question=asked)


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

    def refuse(self, stage: str, what: str, why: Text) -> None:
        entry = {"stage": stage, "what": str(what), "what_zh": getattr(what, "zh", str(what)), "why": str(why),
                 "why_zh": why.zh}
        if entry not in self.doc["refused"]:
            self.doc["refused"].append(entry)


# ---- stages
def _find_port(serial: str, mac: str) -> str | None:
    """The gateway's port by its USB serial number, else its MAC; None if neither is plugged in."""
    from nengjian_host.common import device

    for spec in ("sn:" + serial, "mac:" + mac):
        try:
            return device.resolve_port(spec)
        except device.PortNotFound:
            continue
    return None


def reported_board(port: str) -> str | None:
    """The board a gateway's console names in its status, or None (a blank chip, a firmware that does
    not answer): the installer is then asked without a default."""
    from nengjian_host.common import device

    try:
        with device.Console(port, timeout=10) as con:
            return con.status().get("board") or None
    except (device.DeviceUnreachable, device.DeviceError, OSError, ValueError):
        return None


def stage_find(ctx: Context, st: State) -> dict:
    from nengjian_host.common import bundle
    from nengjian_host.install import provision

    g = ctx.answers.get("gateway") or {}
    if g.get("port"):
        raise CommissionError("find", EXIT_USAGE, "err.commission.tty", port=g["port"])
    serial = ctx.need("find", "gateway.usb_serial", "ask.commission.usb_serial")
    mac = ctx.need("find", "gateway.mac", "ask.commission.mac")
    try:
        mac = provision.normalize_mac(mac)
    except provision.ProvisionError as e:
        raise CommissionError("find", EXIT_USAGE, "err.commission.mac", reason=e) from None
    boards = bundle.board_names()
    port = None
    if ctx.answer("gateway.board") is None:
        port = _find_port(serial, mac)  # a plugged-in gateway says its board: the default to confirm
    board = ctx.checked("find", "gateway.board", "ask.commission.board",
                        lambda b: None if b in boards else msg("err.commission.board", board=b, boards=", ".join(boards)),
                        reported_board(port) if port else None, boards=", ".join(boards))
    out = {"board": board, "usb_serial": serial, "mac": mac}
    if board == "sim":
        sim_dir = ctx.base / ctx.need("find", "gateway.sim_dir", "ask.commission.sim_dir")
        sim_dir.mkdir(parents=True, exist_ok=True)
        out["sim_dir"] = str(sim_dir.resolve())
        out["port"] = None
        return out
    from nengjian_host.common import device

    try:
        out["port"] = port or device.resolve_port("sn:" + serial)
    except device.PortNotFound:
        try:
            out["port"] = device.resolve_port("mac:" + mac)
        except device.PortNotFound as e:
            raise CommissionError("find", EXIT_UNREACHABLE, "err.commission.not_found", serial=serial, mac=mac,
                                  reason=e) from None
    return out


def _transport(ctx: Context, found: dict, bus: dict):
    from nengjian_host.install import scan

    if found["board"] == "sim":
        port_no = int(bus["port"].rsplit("_", 1)[1])
        wires = (ctx.answers.get("sim") or {}).get("buses") or {}
        pty = wires.get(str(port_no))
        if not pty:
            raise CommissionError("scan", EXIT_USAGE, "err.commission.no_pty", port=bus["port"])
        return scan.SimTransport({port_no: pty}, heap=(ctx.answers.get("sim") or {}).get("heap", "288k"))
    from nengjian_host.common.device import ConsoleScanTransport

    return ConsoleScanTransport(found["port"])


def stage_scan(ctx: Context, st: State, found: dict) -> dict:
    """Each bus in turn; a bus that finished keeps its finds in the state, so a rerun scans only the rest."""
    from nengjian_host.install import scan

    buses = ctx.need("scan", "buses", "ask.commission.buses", [{"name": "bus0", "port": "rs485_0"}])
    done = st.result("scan", {}) or {}
    for bus in buses:
        name = bus["name"]
        if name in done:
            ctx.say("scan", t("out.commission.scan_kept", bus=name, count=len(done[name])))
            continue
        opts = {"port": bus["port"], "cjt188": True}
        opts.update(bus.get("scan") or {})

        def live(kind, payload, name=name):
            if kind == "progress":
                ctx.say("scan", t("out.commission.scan_progress", bus=name, scan=payload["scan"],
                                  baud=payload["baud"], parity=payload["parity"], found=payload["found"]))
            elif kind == "find":
                ctx.say("scan", t("out.commission.scan_found", bus=name, protocol=payload["protocol"],
                                  address=payload["address"]))

        try:
            res = scan.run_on(_transport(ctx, found, bus), opts, live)
        except OSError as e:
            raise CommissionError("scan", EXIT_UNREACHABLE, "err.commission.scan_unreachable", bus=name,
                                  reason=e) from None
        if res.errors:
            raise CommissionError("scan", EXIT_FAILED, "err.commission.scan_incomplete", bus=name,
                                  reason="; ".join(map(str, res.errors)))
        good = [f for f in res.finds if f["ok"] and f["address"] is not None]
        for f in res.finds:
            if not f["ok"]:
                st.refuse("scan", "%s %s %s" % (name, f["protocol"], f["address"]),
                          msg("refused.commission.bad_reply", reply=f["reply"]))
        want = bus.get("expect")
        if want is not None and len(good) < int(want):
            got = ", ".join("%s %s" % (f["protocol"], f["address"]) for f in good) or msg("out.commission.nothing")
            raise CommissionError("scan", EXIT_FAILED, "err.commission.scan_short", bus=name, got=len(good),
                                  want=int(want), found=got)
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
                    "identify", "meters[%s].profile" % " ".join(key), "ask.commission.profile", bus=bus_name,
                    address=f["address"], profiles=", ".join(sorted(profiles)))
            else:
                profile = ans.get("profile") or hint  # DL/T 645 and CJ/T 188 say their kind themselves
            if profile not in profiles:
                raise CommissionError("identify", EXIT_USAGE, "err.commission.no_profile", bus=bus_name,
                                      address=f["address"], profile=profile, profiles=", ".join(sorted(profiles)))
            mid = ans.get("id") or "%s%s" % (ID_PREFIX.get(f["protocol"], "m"), str(f["address"])[-4:])
            while mid in used:
                mid += "x"
            used.add(mid)
            meters.append({"id": mid, "bus": bus_name, "profile": profile, "address": f["address"],
                           "protocol": f["protocol"], "identified_by": "answer" if ans.get("profile") or
                           f["protocol"] == "modbus-rtu" else "scan reply (%s)" % f["reply"],
                           "line": {"baud": f["baud"], "bits": f["bits"], "parity": f["parity"], "stop": f["stop"]}})
            ctx.say("identify", t("out.commission.identified", bus=bus_name, address=f["address"], profile=profile,
                                  id=mid))
    return meters


def stage_codes(ctx: Context, st: State, meters: list[dict]) -> list[dict]:
    from nengjian_host.common import siteconfig

    csv_name = ctx.need("codes", "codes_csv", "ask.commission.codes_csv")
    rows = read_codes(ctx.base / csv_name)
    mapping = ctx.answers.get("map") or {}
    by_id = {m["id"]: m for m in meters}
    items = []
    for r in rows:
        meter, point = r["meter"], r["point"]
        if not (meter and point):
            target = mapping.get(r["code"]) or ctx.need("codes", "map.%s" % r["code"], "ask.commission.map",
                                                        code=r["code"], name=r["name"])
            if target == "skip":
                st.refuse("codes", r["code"], msg("refused.commission.skip"))
                continue
            meter, _, point = target.partition(".")
        scope = r["scope"] or scope_of(r["code"])
        issue = siteconfig.fw_identity.data_code_problem(r["code"], scope)
        if issue:
            raise CommissionError("codes", EXIT_USAGE, "err.commission.code_rule", row=r["row"], code=r["code"],
                                  scope=scope, why=siteconfig.issue_text(issue))
        m = by_id.get(meter)
        if m is None:
            raise CommissionError("codes", EXIT_USAGE, "err.commission.code_meter", row=r["row"], code=r["code"],
                                  meter=meter, found=", ".join(by_id))
        prof = siteconfig.fw_profile.load(str(paths.PROFILES), m["profile"])
        if point not in prof["points"]:
            raise CommissionError("codes", EXIT_USAGE, "err.commission.code_point", row=r["row"], meter=meter,
                                  profile=m["profile"], point=point, points=", ".join(sorted(prof["points"])))
        items.append({"code": r["code"], "name": r["name"], "meter": meter, "point": point, "scope": scope,
                      "unit": prof["points"][point].get("unit", "")})
        ctx.say("codes", t("out.commission.code_mapped", code=r["code"], meter=meter, point=point, scope=scope))
    return items


# Stand-ins for the fields not asked yet, so the validator speaks of the one field being asked only.
_SOME_ENTERPRISE = {"code": "91330000573973053F", "region": "441900"}
_SOME_DESTINATION = {"name": "city", "profile": "ndrc-json", "url": "http://platform.invalid/api"}
DESTINATIONS_MAX = 4  # the site schema's maxItems


def field_problem(path: str, enterprise: dict | None = None, destination: dict | None = None):
    """What the site config's validator says of the field at `path` (enterprise.code,
    destinations[0].url ...) in an otherwise complete config, or None: the installer's answer gets
    the same check, in both languages, as check-config gives the whole file."""
    from nengjian_host.common import siteconfig

    cfg = {"version": 1, "enterprise": enterprise or dict(_SOME_ENTERPRISE), "buses": [], "meters": [],
           "items": [], "destinations": [destination or dict(_SOME_DESTINATION)]}
    for p in siteconfig.check(cfg):
        if p.startswith((path + ":", path + ".", path + "[")):
            return p
    return None


def ask_enterprise(ctx: Context) -> dict:
    """The key energy-consuming unit field by field: its credit code, then its region."""
    ent: dict = {}
    for key in ("code", "region"):
        ent[key] = str(ctx.checked("config", "enterprise." + key, "ask.commission.enterprise_" + key,
                                   lambda v, key=key: field_problem("enterprise." + key,
                                                                    enterprise={**_SOME_ENTERPRISE, **ent, key: str(v)})))
    return ent


def ask_destination(ctx: Context, n: int) -> dict:
    """Destination `n` field by field (name, profile, URL, security, and what the security needs), each
    checked as the gateway will; an https URL pins the platform CA the provision stage writes (ca.pem),
    mutual TLS the gateway's own certificate and key."""
    from nengjian_host.common import siteconfig

    props = siteconfig.schema("site")["properties"]["destinations"]["items"]["properties"]
    d: dict = {}
    where = "destinations[%d]" % n
    asks = [("name", "city" if n == 0 else None), ("profile", props["profile"]["enum"][0]), ("url", None),
            ("security", "plain")]
    for key, default in asks:
        choices = ", ".join(props[key]["enum"]) if "enum" in props[key] else ""
        d[key] = ctx.checked("config", "%s.%s" % (where, key), "ask.commission.destination_" + key,
                             lambda v, key=key: field_problem("destinations[0].%s" % key,
                                                              destination={**_SOME_DESTINATION, **d, key: v}),
                             default, n=n + 1, choices=choices)
        if key == "url" and d["url"].startswith("https://"):
            d["ca"] = "ca.pem"
    if d["security"] == "mtls":
        d.update(client_cert="client.pem", client_key="client.key")
    if d["security"] == "sm4-cbc-token":
        d["pin"] = ctx.checked("config", where + ".pin", "ask.commission.destination_pin",
                               lambda v: field_problem("destinations[0].pin", destination={**d, "pin": v}), n=n + 1)
    if d["security"] == "plain":
        d.pop("security")
    return d


def ask_destinations(ctx: Context) -> list[dict]:
    dests = [ask_destination(ctx, 0)]
    while len(dests) < DESTINATIONS_MAX and ctx.optional("destinations_more", "ask.commission.destination_more") \
            in ("y", "yes", "是", "Y"):
        dests.append(ask_destination(ctx, len(dests)))
    return dests


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
        "enterprise": ctx.answer("enterprise") or ask_enterprise(ctx),
        "realtime_period_s": int(a.get("realtime_period_s", 900)),
        "buses": [{"name": b["name"], "port": b["port"]} for b in buses],
        "meters": [{"id": m["id"], "bus": m["bus"], "profile": m["profile"], "address": m["address"],
                    "interval_s": interval, "timeout_ms": 600, "line": m["line"]} for m in meters],
        "items": [{"code": i["code"], "meter": i["meter"], "point": i["point"], "scope": i["scope"]} for i in items],
        "destinations": ctx.answer("destinations") or ask_destinations(ctx),
    }


def stage_config(ctx: Context, found: dict, meters: list[dict], items: list[dict]) -> dict:
    from nengjian_host.common import siteconfig

    cfg = site_config(ctx, found, meters, items)
    path = ctx.work / "site.json"
    path.write_text(json.dumps(cfg, indent=1, ensure_ascii=False))
    problems = siteconfig.check(cfg)
    if problems:
        raise CommissionError("config", EXIT_FAILED, "err.commission.config", path=path,
                              problems=Text("; ".join(problems), "；".join(p.zh for p in problems)))
    return {"path": str(path)}


def _firmware_version(path: Path) -> str | None:
    """The MicroPython version an image says it is (its app descriptor), or None if it cannot be read."""
    from nengjian_host.install import flash

    try:
        return flash.inspect_firmware(path).version
    except flash.FlashError:
        return None


def firmware_file(ctx: Context, board) -> str | None:
    """The answers' "firmware": a MicroPython image, relative to the answers file, or a version (v1.29.0,
    1.29) of one `nengjian flash --firmware` cached for the board's chip; None: the one cached."""
    from nengjian_host.install import flash

    given = ctx.answer("firmware")
    if given is None:
        return None
    path = ctx.base / str(given)
    if path.is_file():
        return str(path)
    cached = flash.cached_firmware(board.chip)
    want = str(given).lstrip("vV")
    hits = [p for p in cached if _firmware_version(p) in (want, "v" + want)]
    if len(hits) == 1:
        return str(hits[0])
    where = flash.cache_dir() / "firmware" / board.chip
    raise CommissionError("flash", EXIT_USAGE, "err.commission.firmware", given=given, path=path, where=where,
                          chip=board.chip, cached=", ".join(p.name for p in cached) or msg("out.commission.nothing"),
                          count=len(hits))


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
        fw = flash.resolve_firmware(firmware_file(ctx, board), board)
        rec = flash.flash(board, fw, conn, expect_mac=found["mac"], step=lambda t, **_k: ctx.say("flash", t))
        return {"device": found["port"], "bundle": made.get("tree"), "record": str(rec.get("record"))}
    except bundle.BundleError as e:
        raise CommissionError("flash", EXIT_USAGE, "err.commission.bundle", reason=e) from None
    except flash.FlashError as e:
        raise CommissionError("flash", e.exit_code, "err.commission.flash", reason=e) from None


# provision's --ca, --cert and --ota-key as the answers file's "credentials" keys
CREDENTIALS = (("ca", "ca_pem"), ("cert", "cert_pem"), ("ota_key", "ota_key"))


def stage_provision(ctx: Context, found: dict, cfg_path: str) -> dict:
    """provision.provision with the answers' credentials: the platform CA, the certificate the platform
    issued for the gateway's key (mutual TLS), the vendor's update key; each file relative to the
    answers file, each optional (asked; Enter skips), each checked as `nengjian provision` checks it."""
    from nengjian_host.common.devicefiles import DeviceUnreachable
    from nengjian_host.install import provision

    given, files = {}, {}
    try:
        for key, field in CREDENTIALS:
            name = ctx.optional("credentials." + key, "ask.commission.credentials_" + key)
            if name:
                files[key] = str(ctx.base / name)
                given[field] = provision.read_file(ctx.base, name, "credentials." + key)
        gw = provision.Gateway(serial=found["usb_serial"], mac=found["mac"], board=found["board"],
                               config=json.loads(Path(cfg_path).read_text()), **given)
    except provision.ProvisionError as e:
        raise CommissionError("provision", EXIT_USAGE, "err.commission.provision",
                              reason=Text(str(e), getattr(e, "zh", None) or str(e))) from None
    inv = provision.Inventory(provision.default_inventory())
    try:
        device, nvs_writer = provision.target_for(gw, port=found.get("port"), sim_dir=found.get("sim_dir"))
        r = provision.provision(gw, device, inv, provision.KeyStore(provision.default_keystore()),
                                nvs_writer=nvs_writer)
    except provision.ProvisionError as e:
        raise CommissionError("provision", EXIT_USAGE, "err.commission.provision",
                              reason=Text(str(e), getattr(e, "zh", None) or str(e))) from None
    except DeviceUnreachable as e:
        raise CommissionError("provision", EXIT_UNREACHABLE, "err.commission.provision_unreachable", reason=e) from None
    finally:
        inv.close()
    return {**r.as_dict(), "credentials": files}


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
    last_err = msg("out.commission.no_answer")
    st = {}
    while time.monotonic() < deadline:
        if runner is not None and runner.gw.down():
            tail = " | ".join(runner.gw.lines[-4:])
            raise CommissionError("first_values", EXIT_FAILED, "err.commission.sim_stopped", tail=tail,
                                  dir=runner.gw.dir)
        try:
            with device.Console(port, timeout=15) as con:
                st = con.status()
        except (device.DeviceUnreachable, device.DeviceError, OSError, ValueError) as e:
            last_err = str(e)
            time.sleep(1)  # the console comes up after boot; asking again is all there is to do
            continue
        dests = st.get("destinations") or []
        waiting = [d["name"] for d in dests if not d.get("last_ok")]
        ctx.say("first_values", t("out.commission.accepted", ok=len(dests) - len(waiting), total=len(dests),
                                  waiting=t("out.commission.waiting", names=", ".join(waiting)) if waiting else ""))
        if dests and not waiting:
            break
        last_err = "; ".join("%s: %s" % (d["name"], d.get("last_error") or t("out.commission.nothing_sent"))
                             for d in dests if not d.get("last_ok")) or msg("out.commission.no_destination")
        time.sleep(2)  # a poll of the gateway's own state, not a wait standing in for an event
    else:
        raise CommissionError("first_values", EXIT_FAILED, "err.commission.first_values", timeout=int(timeout),
                              reason=last_err)
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
                ctx.say(stage, t("out.commission.kept"))
                continue
            ctx.say(stage, t("stage.commission." + stage))
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
        st.refuse(e.stage, msg("refused.commission.stopped", stage=e.stage), e.text())
        st.put("_failed", e.stage, finished=False)
        raise
    finally:
        if runner:
            runner.close()
    return st.doc
