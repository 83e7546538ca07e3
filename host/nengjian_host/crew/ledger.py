"""The electronic maintenance ledger (运维台账) a crew hands over, built from data pulled off a gateway.

Owns: turning stored records (storedump.iter_records over a pulled directory or flash image, or a
JSON/JSON-lines export) into the ledger the local rules ask for — faults and how long they lasted
(fault and recovery events paired per subject), link outages, data gaps per data item from the
VALUE records (>= 24 h: a fault to answer; >= 3 days: a major fault to report with cause and fix),
inspection visits and whether one is overdue (30 days), data-loss and store-repair events, restarts,
points a meter refuses (表计不支持的数据点: from when to when, and why), and completeness per item
(valid values present / values due, the platforms want >= 90 %; a value stored as invalid is not
counted, as on the gateway), beside the gateway's own score where the pull saved it
(quality.json) — and writing it as JSON, as PNG plots (matplotlib, Agg), as one self-contained HTML file (plots and photo thumbnails
embedded) and as its PDF (common.pdf), the document a crew hands to the DRC.

Times are kept in UTC seconds and shown in China Standard Time (UTC+8), as the platforms use.
Pairing rules are data (FAULT_RULES): a new firmware message needs one line here.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from nengjian_host.common import cjkfont, gatewaytext
from nengjian_host.common.messages import MESSAGES, both, t_in

DAY = 86400
GAP_FAULT_S = DAY          # a fault must be answered within 24 h
GAP_REPORT_S = 3 * DAY     # missing data for 3 days or more is reported with cause and fix
INSPECTION_DAYS = 30
COMPLETENESS_MIN = 0.90
CST = dt.timezone(dt.timedelta(hours=8), "CST")
# The report's language: "zh" or "en" says one (`nengjian ledger --lang`), None both, Chinese beside the
# English (the hand-over document as it always was).
BOTH = None
_CJK = re.compile(r"[\u4e00-\u9fff]")
_DUR = re.compile(r"^(?P<least>at least )?(?:(?P<d>\d+)d )?(?P<h>\d+)h (?P<m>\d+)m(?P<open> \(still open\))?$")


# (event kind, category, start pattern, end pattern, whether an end with no start in the data is a
# fault that began before it); group "s" is the subject (meter id, destination, link). The patterns
# are the texts nengjian.meters.poller, nengjian.uplink.delivery and nengjian.net.failover write
# (tests/firmware/net/test_failover.py pairs the supervisor's real events). A link's "using X" is
# also written when X is first chosen at boot, so it ends a fault but never implies one. The modem
# driver's own notes (stage failures, power cycles) are detail: the link's "will not come up: why"
# carries the fault.
FAULT_RULES = [
    ("meter", "meter offline", r"^meter (?P<s>\S+) offline", r"^meter (?P<s>\S+) answers again", True),
    ("uplink", "delivery failing", r"^(?P<s>[^:\s]+): delivery failing", r"^(?P<s>[^:\s]+): delivering again",
     True),
    ("link", "link down", r"^(?P<s>\S+) (?:lost|will not come up)\b", r"^(?:using|back on) (?P<s>\S+) \(", False),
]
LINK_CATEGORIES = ("delivery failing", "link down")
# nengjian.values.intervals' event when a cumulative reading drops for good (tests/firmware/values/test_intervals.py
# puts its real event through the ledger).
METER_CHANGE = "(meter replaced or reset)"
GLITCH = "was a glitch, not a new meter"
# nengjian.system.clock's events (tests/firmware/system/test_clock.py shows the real texts): every step
# with its size and source(s), the first sync after boot, and a large step one source alone asked for.
CLOCK_STEP = re.compile(r"^clock stepped by (?P<step>[+-]?\d+) s from (?P<src>.+?)(?: \([^()]*\))?$")
CLOCK_FIRST = re.compile(r"^clock trusted from (?P<src>.+) \([^,()]*, step (?P<step>[+-]?\d+) s\)$")
CLOCK_HELD = re.compile(r"^clock not stepped: (?P<src>.+?) puts the clock (?P<step>[+-]?\d+) s off")
CLOCK_STEP_FLAG_S = 300  # the firmware's default clock.max_step_s: beyond it, check the values around the step

# nengjian.app's boot event names the board's reset cause (nengjian.system.health.RESET_CAUSES):
# "started firmware V (reset cause: C, quick crashes: N of L)" (older firmware wrote no cause).
BOOT_CAUSE = re.compile(r"reset cause: (?P<cause>[a-z-]+)(?:, quick crashes: (?P<quick>\d+) of (?P<limit>\d+))?")
BOOT_TEXT = re.compile(r"^started firmware (?P<version>\S+)(?: \(reset cause: (?P<cause>[a-z-]+), quick crashes: "
                       r"(?P<quick>\d+) of (?P<limit>\d+)\))?$")
# cause -> English, Chinese. The boot guard counts reset, watchdog, crash and unknown toward a crash loop
# ("reset" is also an update or safe mode left: the events just before it say so), never a power cut.
RESET_CAUSES = {
    "power-on": ("power cut or power-on", "断电或上电"),
    "brown-out": ("brown-out (the supply sagged)", "电源电压跌落"),
    "soft-reboot": ("soft reboot from the console", "控制台软重启"),
    "reset": ("software reset or panic", "软件复位或程序异常"),
    "watchdog": ("watchdog reset", "看门狗复位"),
    "crash": ("crash", "程序崩溃"),
    "unknown": ("unknown cause", "原因不明"),
}
FAULT_CAUSES = ("watchdog", "crash")
# Crash-loop safe mode (nengjian.app), entered at a boot and left by a normal start after its hold.
# Older firmware wrote "SAFE MODE: N quick restarts in a row; meters not polled": level 2's behaviour.
SAFE_ENTER = re.compile(r"^SAFE MODE(?: \(crash loop, level (?P<level>\d)\)|: \d+ quick restarts in a row)")
SAFE_LEAVE = "leaving crash-loop safe mode"
SAFE_LEVELS = {1: "meters polled and stored; notices, coefficients, update server off / 仍采集存储；平台通知、系数下载、"
                  "升级服务器暂停",
               2: "meters not polled, stored data uploaded / 暂停采集，仍上传已存数据"}

# nengjian.meters.poller's `point` events: a meter refuses one point (no such data, exception 02, a
# field its reply lacks) while its other points are read, and perhaps later answers it again
# (tests/firmware/meters/test_refused_points.py shows the real texts).
POINT_EVENT = re.compile(r"^meter (?P<m>\S+) point (?P<p>\S+) (?:unsupported: (?P<why>.*?)"
                         r"(?:; (?:asked again every \d+ s|checked in every reply))?|(?P<again>answers again))$")

KIND_NAMES = {1: "reading", 2: "value", 3: "event"}


class LedgerError(ValueError):
    """Input the ledger cannot be made from; the text names the fix, `zh` the same in Chinese (catalogue)."""

    def __init__(self, key: str, **kw):
        en, zh = both(key, **kw)
        super().__init__(en)
        self.zh = zh


# ---- records in
def _ts(v) -> int | None:
    if v is None:
        return None
    if isinstance(v, (int, float, Decimal)):
        return int(v)
    s = str(v).strip()
    if s.isdigit():
        return int(s)
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp())


def _num(v) -> float | None:
    if v is None:
        return None
    if isinstance(v, (int, float, Decimal)):
        return float(v)
    if isinstance(v, dict) and "mantissa" in v:
        return v["mantissa"] * 10.0 ** v.get("exponent", 0)
    if isinstance(v, (list, tuple)) and len(v) == 2:  # CBOR decimal fraction [exponent, mantissa]
        return v[1] * 10.0 ** v[0]
    try:
        return float(str(v))
    except ValueError:
        return None


_POSITIONAL = {
    "reading": ("ts", "meter", "point", "value", "quality"),
    "value": ("ts", "code", "stat_type", "stat_start", "value", "valid", "input_type", "scope", "quality"),
    "event": ("ts", "event", "text", "event_code"),
}
_ALIASES = {"dataCode": "code", "data_code": "code", "statType": "stat_type", "statStart": "stat_start",
            "stat_date": "stat_start", "statDate": "stat_start", "dataValue": "value", "inputType": "input_type",
            "event_kind": "event", "ekind": "event", "what": "event", "message": "text", "time": "ts"}


def normalize(rec) -> dict | None:
    """One stored record as {"seq", "kind": reading|value|event, named fields}; None if not one of ours.

    Accepts what storedump yields (dicts with seq, kind and fields, positional or named) and plain
    record arrays ([kind, ts, ...] as in nengjian.core.records)."""
    seq = None
    if isinstance(rec, (list, tuple)):
        kind, fields = rec[0], list(rec[1:])
    elif isinstance(rec, dict):
        seq = rec.get("seq")
        kind = rec.get("kind", rec.get("type", rec.get("record")))
        fields = rec.get("fields")
        if fields is None:
            fields = {k: v for k, v in rec.items() if k not in ("seq", "kind", "type", "record")}
    else:
        return None
    if isinstance(kind, int):
        kind = KIND_NAMES.get(kind)
    kind = str(kind or "").lower()
    if kind not in _POSITIONAL:
        return None
    out: dict = {"seq": seq, "kind": kind}
    if isinstance(fields, (list, tuple)):
        out.update(zip(_POSITIONAL[kind], fields))
    else:
        for k, v in fields.items():
            out[_ALIASES.get(k, k)] = v
        if kind == "event" and "event" not in out and "kind_name" in out:
            out["event"] = out.pop("kind_name")
    out["ts"] = _ts(out.get("ts"))
    if kind == "value":
        out["stat_start"] = _ts(out.get("stat_start"))
        if out["ts"] is None:  # values folded into the store's history keep only their period start
            out["ts"] = out["stat_start"]
        out["value"] = _num(out.get("value"))
        out["stat_type"] = int(out.get("stat_type") or 0)
        v = out.get("valid", True)
        out["valid"] = v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
    elif kind == "reading":
        out["value"] = _num(out.get("value"))
    else:
        out["event"] = str(out.get("event") or "")
        out["text"] = str(out.get("text") or "")
        # the gateway writes English; its code lets the ledger say it in Chinese beside it
        out["text_zh"] = gatewaytext.event(out["event"], out.get("event_code") or out.get("code"), out["text"]).zh
    return out if out["ts"] is not None else None


def load(source: str | Path):
    """Records of a pulled gateway: a directory or flash image (through storedump), or a JSON export."""
    p = Path(source)
    if p.is_file() and p.suffix in (".json", ".jsonl", ".ndjson"):
        text = p.read_text()
        if p.suffix == ".json":
            data = json.loads(text)
            return data.get("records", data) if isinstance(data, dict) else data
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if not p.exists():
        raise LedgerError("err.ledger.no_source", path=p)
    try:
        from nengjian_host.common import storedump
    except ImportError:
        raise LedgerError("err.ledger.no_decoder") from None
    return storedump.iter_records(str(p))


# ---- the ledger
def _iso(ts: int | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M")


def _dur(s: float) -> str:
    s = int(s)
    d, r = divmod(s, DAY)
    h, r = divmod(r, 3600)
    m = r // 60
    return ("%dd %dh %02dm" % (d, h, m)) if d else ("%dh %02dm" % (h, m))


def _infer_period(starts: list[int]) -> int | None:
    diffs = sorted(b - a for a, b in zip(starts, starts[1:]) if b > a)
    if not diffs:
        return None
    counts: dict[int, int] = defaultdict(int)
    for d in diffs:
        counts[d] += 1
    return max(counts.items(), key=lambda kv: (kv[1], -kv[0]))[0]


def build(records, start: int | None = None, end: int | None = None, period_s: int | None = None,
          gateway: dict | None = None) -> dict:
    """The ledger as a dict (the --json output, and what the HTML shows)."""
    recs = [r for r in (normalize(x) for x in records) if r]
    if start is not None:
        recs = [r for r in recs if r["ts"] >= start or (r["kind"] == "value" and (r["stat_start"] or 0) >= start)]
    if end is not None:
        recs = [r for r in recs if r["ts"] <= end]
    recs.sort(key=lambda r: (r["ts"], r["seq"] or 0))
    if not recs and (start is None or end is None):
        raise LedgerError("err.ledger.no_records")
    w_start = start if start is not None else recs[0]["ts"]
    w_end = end if end is not None else recs[-1]["ts"]

    events = [r for r in recs if r["kind"] == "event"]
    values = [r for r in recs if r["kind"] == "value"]
    readings = [r for r in recs if r["kind"] == "reading"]

    faults = _pair_faults(events, w_start, w_end)
    gaps, items = _value_gaps(values, w_start, w_end, start is not None, period_s)
    visits = [_visit(e) for e in events if e["event"] == "visit"]
    photos = _photos(events)
    checks = _checks(events)
    metrology = _metrology_alarms(events)
    cal_records = _calibration_records(events)
    commissions = [{"at": _iso(e["ts"]), "ts": e["ts"], "text": e["text"], "text_zh": e.get("text_zh")}
                   for e in events if e["event"] == "commission"]
    last_visit = max((v["ts"] for v in visits), default=None)
    since = (w_end - last_visit) if last_visit is not None else (w_end - w_start)
    overdue = since > INSPECTION_DAYS * DAY
    losses = [{"at": _iso(e["ts"]), "ts": e["ts"], "kind": e["event"], "text": e["text"], "text_zh": e.get("text_zh")}
              for e in events if e["event"] in ("loss", "store")]
    restarts = _restarts(events)
    safe_modes = _safe_modes(events, w_end)
    meter_changes = _meter_changes(events)
    refused = _refused_points(events)
    clock = _clock_steps(events)
    security = [{"at": _iso(e["ts"]), "ts": e["ts"], "text": e["text"], "text_zh": e.get("text_zh")}
                for e in events if e["event"] == "security"]
    quality = _quality_alarms(events)
    reportable = [g for g in gaps if g["duration_s"] >= GAP_REPORT_S]
    outages = [f for f in faults if f["category"] in LINK_CATEGORIES]
    meter_faults = [f for f in faults if f["category"] not in LINK_CATEGORIES]
    points: dict[str, list] = defaultdict(list)
    for r in readings:
        if r["value"] is not None:
            points["%s.%s" % (r.get("meter"), r.get("point"))].append((r["ts"], r["value"]))
    return {
        "gateway": gateway or {},
        "period": {"from": _iso(w_start), "to": _iso(w_end), "from_ts": w_start, "to_ts": w_end},
        "summary": {
            "records": len(recs), "readings": len(readings), "values": len(values), "events": len(events),
            "faults": len(meter_faults), "faults_open": sum(1 for f in meter_faults if f["open"]),
            "faults_over_24h": sum(1 for f in faults if f["duration_s"] >= GAP_FAULT_S),
            "link_outages": len(outages), "gaps": len(gaps), "gaps_over_24h": sum(1 for g in gaps if g["flag"]),
            "gaps_to_report": len(reportable), "visits": len(visits), "inspection_overdue": overdue,
            "data_loss_events": sum(1 for x in losses if x["kind"] == "loss"), "restarts": len(restarts),
            "restarts_by_cause": _by_cause(restarts), "safe_mode_entries": len(safe_modes),
            "clock_steps": sum(1 for c in clock if c["taken"]), "clock_refused": sum(1 for c in clock if not c["taken"]),
            "security_events": len(security), "points_unsupported": sum(1 for x in refused if x["open"]),
            "quality_alarms": len(quality), "photos": len(photos),
            "checks": len(checks), "checks_beyond_class": sum(1 for c in checks if c["flag"]),
            "metrology_alarms": len(metrology), "commissioning": len(commissions),
            "calibrations_recorded": len(cal_records),
        },
        "faults": meter_faults,
        "link_outages": outages,
        "gaps": gaps,
        "reportable": reportable,
        "items": items,
        "visits": visits,
        "photos": photos,
        "checks": checks,
        "metrology_alarms": metrology,
        "calibrations": [],
        "calibration_records": cal_records,
        "commissioning": commissions,
        "inspection": {"last_visit": _iso(last_visit), "days_since": round(since / DAY, 1), "overdue": overdue,
                       "rule_days": INSPECTION_DAYS},
        "losses": losses,
        "restarts": restarts,
        "safe_modes": safe_modes,
        "meter_changes": meter_changes,
        "unsupported_points": refused,
        "clock_steps": clock,
        "security": security,
        "quality": quality,
        "events": [{"at": _iso(e["ts"]), "ts": e["ts"], "seq": e["seq"], "kind": e["event"], "text": e["text"],
                    "text_zh": (r["text_zh"] if r else e.get("text_zh"))}
                   for e in events for r in [next((x for x in restarts if x["ts"] == e["ts"] and x["text"] == e["text"]),
                                                  None) if e["event"] == "boot" else None]],
        "gateway_score": None,
        "_stored": _stored(values),
        "_series": {"values": {c: [(v["stat_start"], v["value"], v["valid"]) for v in values if v["code"] == c
                                   and v["stat_type"] == 0] for c in items},
                    "readings": dict(points)},
    }


# nengjian.console.commands' visit with photos: "WHO: CHECKED[; done: DONE] [visit ID, N photo(s)]", then one
# "visit ID photo SHA256 NAME" event per photo (tests/host/crew/test_visit.py and the e2e run show them).
VISIT_ID = re.compile(r" \[visit (?P<id>\S+), (?P<n>\d+) photo\(s\)\]$")
PHOTO = re.compile(r"^visit (?P<id>\S+) photo (?P<sha>[0-9a-f]{64}) (?P<name>.+)$")
# nengjian.values.metrology's check event (tests/firmware/values/test_metrology.py shows the real text)
CHECK = re.compile(r"^(?P<meter>\S+) (?P<point>\S+): displayed (?P<displayed>\S+), gateway (?P<gateway>\S+) "
                   r"\((?P<gateway_at>[^()]*), (?P<age_s>\d+) s before\), difference (?P<difference>\S+), "
                   r"allowed (?P<allowed>\S+) \(class (?P<cls>\S+): [^()]*\): (?P<verdict>BEYOND CLASS|within class)"
                   r"(?:; by (?P<who>.*))?$")
# nengjian.console.commands' calibrate: a crew's new calibration certificate for a meter, at a visit
# (tests/e2e/test_crew_visit.py shows the real text)
CALIBRATION = re.compile(r"^meter (?P<meter>\S+) calibrated (?P<date>\S+), due (?P<due>\S+) \(certificate "
                         r"(?P<certificate>.*)\) \[visit (?P<visit_id>\S*)\] by (?P<who>.*)$")
METROLOGY_ALARM = re.compile(r"^(?:CLEARED )?(?:CALIBRATION|CHECK) ")
CALIBRATION_DUE_DAYS = 30  # nengjian.values.metrology.DUE_SOON_DAYS


def _visit(e: dict) -> dict:
    m = VISIT_ID.search(e["text"])
    return {"at": _iso(e["ts"]), "ts": e["ts"], "text": e["text"][:m.start()] if m else e["text"],
            "visit_id": m["id"] if m else None, "photos_recorded": int(m["n"]) if m else 0}


def _photos(events: list[dict]) -> list[dict]:
    """The photos each visit recorded by hash; report() adds whether the file on the laptop matches."""
    return [{"at": _iso(e["ts"]), "ts": e["ts"], "visit_id": m["id"], "sha256": m["sha"], "name": m["name"],
             "status": "not looked for", "flag": False}
            for e in events if e["event"] == "photo" for m in [PHOTO.match(e["text"])] if m]


def _checks(events: list[dict]) -> list[dict]:
    out = []
    for e in events:
        m = CHECK.match(e["text"]) if e["event"] == "check" else None
        if m:
            d = m.groupdict()
            d["class"] = d.pop("cls")
            d.update(at=_iso(e["ts"]), ts=e["ts"], flag=d["verdict"] == "BEYOND CLASS",
                     result="beyond class / 超出准确度等级" if d["verdict"] == "BEYOND CLASS" else "within class / 合格")
            out.append(d)
    return out


def _calibration_records(events: list[dict]) -> list[dict]:
    return [dict(m.groupdict(), at=_iso(e["ts"]), ts=e["ts"])
            for e in events if e["event"] == "calibration" for m in [CALIBRATION.match(e["text"])] if m]


def _metrology_alarms(events: list[dict]) -> list[dict]:
    return [{"at": _iso(e["ts"]), "ts": e["ts"], "text": e["text"], "text_zh": e.get("text_zh"),
             "flag": not e["text"].startswith("CLEARED")}
            for e in events if e["event"] == "alarm" and METROLOGY_ALARM.match(e["text"] or "")]


def calibrations(meters: list[dict], at_ts: int) -> list[dict]:
    """Each configured meter's calibration (检定) record and where it stands at `at_ts` (the end of the
    ledger's period): valid, due within 30 days, expired, or none recorded."""
    today = dt.datetime.fromtimestamp(at_ts, CST).date()
    out = []
    for m in meters:
        c = m.get("calibration") or {}
        row = {"meter": m.get("id"), "class": m.get("class"), "certificate": c.get("certificate"),
               "date": c.get("date"), "due": c.get("due"), "days_left": None}
        try:
            left = (dt.date.fromisoformat(c["due"]) - today).days
        except (KeyError, TypeError, ValueError):
            row.update(status="no calibration record / 无检定记录", flag=True)
        else:
            row["days_left"] = left
            row.update(status="expired / 已过期" if left < 0 else
                       "due within %d days / %d天内到期" % (CALIBRATION_DUE_DAYS, CALIBRATION_DUE_DAYS)
                       if left <= CALIBRATION_DUE_DAYS else "valid / 有效期内", flag=left <= CALIBRATION_DUE_DAYS)
        out.append(row)
    return out


def site_meters(source: str | Path) -> list[dict]:
    """The meters of the site config a pull copied (DIR/config/*.json), or []."""
    d = _pull_dir(source) / "config"
    if not d.is_dir():
        return []
    for f in sorted(d.glob("*.json")):
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("meters"), list):
            return [m for m in doc["meters"] if isinstance(m, dict)]
    return []


def photo_roots(source: str | Path) -> list[Path]:
    """Where `nengjian visit --out DIR` keeps photos for a pull made with `nengjian pull --out DIR`:
    DIR/photos beside the pull directories (and a photos folder inside one)."""
    p = _pull_dir(source)
    return [r for r in (p / "photos", p.parent / "photos") if r.is_dir()]


def _pull_dir(source: str | Path) -> Path:
    """The pull directory of a source: itself, or the one holding its records.json export."""
    p = Path(source)
    return p if p.is_dir() else p.parent


def verify_photos(ledger: dict, roots: list[Path], thumbs: bool = True) -> None:
    """Each photo the gateway's ledger names, checked against the files kept on the laptop: verified
    (same SHA-256), altered, or missing; with a thumbnail (JPEG bytes) where it is an image."""
    import hashlib

    from nengjian_host.crew import entries

    files: dict[tuple[str, str], Path] = {}
    for root in roots:
        for f in root.glob("*/*/*"):
            if f.is_file() and f.name != entries.VISIT_MANIFEST:
                files.setdefault((f.parent.name, f.name), f)
    for ph in ledger["photos"]:
        f = files.get((entries.safe_part(ph["visit_id"]), ph["name"]))
        if f is None:
            ph.update(status="MISSING: not found with the pulled data / 照片缺失", flag=True)
            continue
        data = f.read_bytes()
        if hashlib.sha256(data).hexdigest() != ph["sha256"]:
            ph.update(status="ALTERED: SHA-256 differs from the ledger / 照片已被改动", flag=True, file=str(f))
            continue
        ph.update(status="verified / 已核验", flag=False, file=str(f))
        if thumbs:
            ph["_thumb"] = _thumbnail(data)
    ledger["summary"]["photos_flagged"] = sum(1 for p in ledger["photos"] if p["flag"])


def _thumbnail(data: bytes) -> bytes | None:
    try:
        from PIL import Image

        im = Image.open(io.BytesIO(data))
        im.thumbnail((240, 240))
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=80)
        return buf.getvalue()
    except Exception:  # not an image Pillow reads: listed without a thumbnail
        return None


def _meter_changes(events: list[dict]) -> list[dict]:
    """Drops of a cumulative reading taken as a new meter, less those the gateway took back when the
    next reading showed the low one was a glitch (same data code)."""
    out: list[dict] = []
    for e in events:
        if e["event"] != "meter":
            continue
        code = e["text"].split(":", 1)[0]
        if METER_CHANGE in e["text"]:
            out.append({"at": _iso(e["ts"]), "ts": e["ts"], "text": e["text"], "text_zh": e.get("text_zh"), "code": code})
        elif GLITCH in e["text"]:
            for i in range(len(out) - 1, -1, -1):
                if out[i]["code"] == code:
                    del out[i]
                    break
    return out


def _refused_points(events: list[dict]) -> list[dict]:
    """Each stretch in which a meter refused one of its points: since, until (None: still refused)
    and the meter's reply. No fault of the gateway: the meter model lacks that register or data
    identifier, and a data item mapped to it has no values (its gaps say how many)."""
    open_: dict[tuple[str, str], dict] = {}
    out: list[dict] = []
    for e in events:
        m = POINT_EVENT.match(e["text"]) if e["event"] == "point" else None
        if not m:
            continue
        key = (m.group("m"), m.group("p"))
        if m.group("again"):
            p = open_.pop(key, None)
            if p is not None:
                p.update(until=_iso(e["ts"]), until_ts=e["ts"], open=False)
        elif key not in open_:
            open_[key] = {"meter": key[0], "point": key[1], "since": _iso(e["ts"]), "since_ts": e["ts"],
                          "until": None, "until_ts": None, "open": True, "why": m.group("why")}
            out.append(open_[key])
    return out


def _clock_steps(events: list[dict]) -> list[dict]:
    """Each time the gateway set its clock (size, source) and each large step it refused to make on
    one source's word."""
    out = []
    for e in events:
        if e["event"] != "clock":
            continue
        for pattern, what, taken in ((CLOCK_STEP, "stepped / 已校正", True),
                                     (CLOCK_FIRST, "first sync after boot / 开机首次校时", True),
                                     (CLOCK_HELD, "refused: one source only / 单一时间源，未校正", False)):
            m = pattern.search(e["text"])
            if m:
                step = int(m.group("step"))
                out.append({"at": _iso(e["ts"]), "ts": e["ts"], "step_s": step, "step": _signed_dur(step),
                            "source": m.group("src"), "what": what, "taken": taken, "text": e["text"],
                            "flag": taken and what.startswith("stepped") and abs(step) > CLOCK_STEP_FLAG_S})
                break
    return out


# The gateway's own score (nengjian.uplink.quality): "QUALITY <destination> <item> day|month <when>: <why>"
_QUALITY = re.compile(r"QUALITY (?P<dest>\S+) (?P<code>\S+) (?P<what>day|month) (?P<when>[0-9-]+): (?P<why>.*)")


def _quality_alarms(events: list[dict]) -> list[dict]:
    """The score alarms the gateway raised: an item below 90 % of its values, or a day (month) figure more
    than 5 % from the sum of its real-time (day) values, per destination and day (month)."""
    out = []
    for e in events:
        if e["event"] != "alarm":
            continue
        m = _QUALITY.match(e["text"] or "")
        if m:
            out.append({"at": _iso(e["ts"]), "ts": e["ts"], "destination": m["dest"], "code": m["code"],
                        "what": m["what"], "when": m["when"], "why": m["why"], "flag": True,
                        "why_zh": e.get("text_zh") if e.get("text_zh") != e["text"] else None})
    return out


QUALITY_FILE = "quality.json"  # crew.pull.QUALITY_FILE: the console status's quality section, saved by a pull


def _stored(values: list[dict]) -> dict[tuple[str, int], list[int]]:
    """(data item, statistics type) -> the sorted statistics starts of the values stored valid: the
    values a platform counts (nengjian.uplink.quality), each period once."""
    out: dict[tuple[str, int], set[int]] = defaultdict(set)
    for v in values:
        if v["valid"] and v.get("code") and v["stat_start"] is not None:
            out[(v["code"], v["stat_type"])].add(v["stat_start"])
    return {k: sorted(x) for k, x in out.items()}


def _count(starts: list[int], lo: int, hi: int) -> int:
    import bisect

    return bisect.bisect_left(starts, hi) - bisect.bisect_left(starts, lo)


def _stored_in(stored: dict, code: str, lo: int, hi: int, month: bool) -> int:
    """Valid values of `code` stored for the day or month [lo, hi), counted as the gateway's score counts
    them: its real-time values, its day values (a statistics time up to a minute before midnight is the
    next day's) and, for a month, its month value (up to a day before the 1st)."""
    n = _count(stored.get((code, 0), []), lo, hi) + _count(stored.get((code, 1), []), lo - 60, hi - 60)
    if month:
        n += _count(stored.get((code, 2), []), lo - DAY, hi - DAY)
    return n


def _slot_end(slot: dict) -> int:
    start = int(slot["start"])
    if len(str(slot.get("period"))) > 7:  # "YYYY-MM-DD": a day
        return start + DAY
    t = dt.datetime.fromtimestamp(start, CST)
    return int(t.replace(year=t.year + t.month // 12, month=t.month % 12 + 1).timestamp())


def _pct_text(x) -> str:
    return "-" if x is None else "%.1f %%" % x


def read_gateway_score(source: str | Path) -> dict | None:
    """The gateway's own score as `nengjian pull` saved it (DIR/quality.json), or None when the pull has
    none (a flash dump, older firmware, a JSON export without it beside)."""
    f = _pull_dir(source) / QUALITY_FILE
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("destinations"), list) else None


def gateway_score(doc: dict | None, ledger: dict) -> dict | None:
    """The gateway's figures per destination, each day and month it keeps, beside what the pulled records
    hold for the same period: the valid values stored, their share of the gateway's values due, and
    how many of them the platform has not accepted (still to go, or to re-send: 补传). Item by item
    where the gateway gives its items (its newest days and month). The records counted are those of
    the ledger's period (--from/--to): a period cut short counts fewer."""
    if not doc:
        return None
    stored = ledger.get("_stored") or {}
    out = []
    for d in doc["destinations"]:
        if not isinstance(d, dict) or not isinstance(d.get("quality"), dict):
            continue
        q = d["quality"]
        name = str(d.get("name"))
        periods, items = [], []
        for kind, slots in (("day", q.get("days") or ()), ("month", q.get("months") or ())):
            for slot in slots:
                try:
                    lo, hi = int(slot["start"]), _slot_end(slot)
                except (KeyError, TypeError, ValueError):
                    continue
                month = kind == "month"
                here = 0
                for code, (acc, due, apart) in sorted((slot.get("items") or {}).items()):
                    n = _stored_in(stored, code, lo, hi, month)
                    here += n
                    items.append({"destination": name, "period": slot.get("period"), "what": kind, "code": code,
                                  "accepted": acc, "due": due, "gateway": "%s/%s" % (acc, due),
                                  "completeness": _pct_text(round(acc * 1000 / due) / 10 if due else None),
                                  "apart": _pct_text(apart), "stored": n,
                                  "stored_completeness": _pct_text(round(n * 1000 / due) / 10 if due else None),
                                  "not_accepted": n - acc,
                                  "flag": bool(due and acc * 10 < due * 9) or (apart or 0) > 5})
                detail = bool(slot.get("items"))
                acc, due = slot.get("accepted"), slot.get("due")
                periods.append({
                    "destination": name, "period": slot.get("period"), "what": kind,
                    "accepted": acc, "due": due, "gateway": "%s/%s" % (acc, due),
                    "completeness_pct": slot.get("completeness"), "completeness": _pct_text(slot.get("completeness")),
                    "timeliness": _pct_text(slot.get("timeliness")), "apart": _pct_text(slot.get("apart_max")),
                    "misaligned": slot.get("misaligned", 0),
                    "stored": here if detail else None,
                    "stored_completeness": _pct_text(round(here * 1000 / due) / 10) if detail and due else None,
                    "not_accepted": here - acc if detail and isinstance(acc, int) else None,
                    "flag": (slot.get("completeness") is not None and slot["completeness"] < 90)
                    or (slot.get("apart_max") or 0) > 5})
        out.append({"destination": name, "since": _iso(q.get("since")) if q.get("since") else None,
                    "invalid": q.get("invalid"), "too_old": q.get("too_old"), "alarms": list(q.get("alarms") or ()),
                    "periods": periods, "items": items})
    return {"file": QUALITY_FILE, "gateway_time": _iso(doc.get("gateway_time")) if doc.get("gateway_time") else None,
            "gateway_time_ts": doc.get("gateway_time"), "destinations": out}


STATUS_FILE = "status.json"  # crew.pull.STATUS_FILE: each meter's and destination's state, saved by a pull


def read_pull_status(source: str | Path) -> dict | None:
    """The meters' and destinations' state as `nengjian pull` saved it (DIR/status.json), or None when
    the pull has none (a flash dump, a pull by an older version, a JSON export without it beside)."""
    try:
        doc = json.loads((_pull_dir(source) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def at_pull(doc: dict | None) -> dict | None:
    """The table of the meters and destinations as the gateway's status gave them at the pull: when each
    last succeeded (a reading, an acceptance by the platform) and its last error, said in Chinese by its
    code (common.gatewaytext); flagged where the meter is offline or the delivery failing."""
    if not doc:
        return None
    rows = []
    for what, units, bad, name in (("meter", doc.get("meters"), "offline", "id"),
                                   ("destination", doc.get("destinations"), "failing", "name")):
        for u in units if isinstance(units, list) else ():
            if not isinstance(u, dict):
                continue
            failing = bool(u.get(bad))
            state = "ledger.at_pull.%s" % (bad if failing else "ok")
            last_ok = u.get("last_ok")
            error = gatewaytext.last_error_text(u)
            rows.append({"what": t_in("en", "ledger.at_pull." + what), "what_zh": t_in("zh", "ledger.at_pull." + what),
                         "name": str(u.get(name)), "state": t_in("en", state), "state_zh": t_in("zh", state),
                         "last_ok": _iso(last_ok) if isinstance(last_ok, int) and last_ok > 0 else "-",
                         "last_error": str(error), "last_error_zh": error.zh, "flag": failing})
    at = doc.get("gateway_time")
    return {"file": STATUS_FILE, "gateway_time": _iso(at) if isinstance(at, int) else None, "units": rows}


def _at_pull_html(units: dict | None, lang: str | None = None) -> str:
    if not units:
        return "<p class=none>%s</p>" % html.escape(_say("ledger.none.at_pull", lang, " "))
    note = _say("ledger.note.at_pull", lang, " ", zh_first=True, at=units["gateway_time"] or "-")
    return "<p class=meta>%s</p>%s" % (html.escape(note), _table(units["units"], [
        ("what", _h("ledger.col.unit_kind", lang)), ("name", _h("ledger.col.unit", lang)),
        ("state", _h("ledger.col.status", lang)), ("last_ok", _h("ledger.col.last_ok", lang)),
        ("last_error", _h("ledger.col.last_error", lang))], _say("ledger.none.at_pull", lang, " "), lang))


def _score_low(score: dict | None) -> int:
    """Destinations whose newest month, by the gateway's own figures, is below 90 % (listed in score["low"])."""
    if not score:
        return 0
    score["low"] = [p for d in score["destinations"] for p in [next((x for x in d["periods"] if x["what"] == "month"),
                                                                     None)]
                    if p and p["completeness_pct"] is not None and p["completeness_pct"] < 100 * COMPLETENESS_MIN]
    return len(score["low"])


def _gateway_html(score: dict | None, lang: str | None = None) -> str:
    if not score:
        return "<p class=none>%s</p>" % html.escape(_h("report.ledger.gw.none", lang))
    cols = [("period", _h("report.ledger.gw.col.period", lang)), ("gateway", _h("report.ledger.gw.col.gateway", lang)),
            ("completeness", _h("report.ledger.gw.col.completeness", lang)),
            ("stored", _h("report.ledger.gw.col.stored", lang)), ("stored_completeness", _h("report.ledger.gw.col.stored_pct", lang)),
            ("not_accepted", _h("report.ledger.gw.col.not_accepted", lang))]
    parts = []
    for d in score["destinations"]:
        en, zh = both("report.ledger.gw.meta", since=d["since"] or "-", invalid="-" if d["invalid"] is None
                      else d["invalid"], at=score["gateway_time"] or "-")
        said = zh if lang == "zh" else en if lang == "en" else "%s<br>%s" % (html.escape(zh), html.escape(en))
        parts.append("<h3>%s</h3><p>%s</p>" % (html.escape(d["destination"]), said if lang is None else html.escape(said)))
        parts.append(_table(d["periods"], cols[:3] + [("timeliness", _h("report.ledger.gw.col.timeliness", lang)),
                                                      ("apart", _h("report.ledger.gw.col.apart", lang)),
                                                      ("misaligned", _h("report.ledger.gw.col.misaligned", lang))] + cols[3:],
                            _h("report.ledger.gw.empty", lang), lang))
        if d["items"]:
            parts.append(_table(d["items"], [("code", _h("report.ledger.gw.col.item", lang))] + cols[:3]
                                + [("apart", _h("report.ledger.gw.col.apart", lang))] + cols[3:], _h("report.ledger.gw.empty", lang), lang))
    return "".join(parts)


def _signed_dur(s: int) -> str:
    return ("-" if s < 0 else "+") + ("%d s" % abs(s) if abs(s) < 60 else _dur(abs(s)))


def _restarts(events: list[dict]) -> list[dict]:
    """Each boot, with why the board restarted (English / Chinese) and the quick crashes counted."""
    out = []
    for e in events:
        if e["event"] != "boot":
            continue
        m = BOOT_CAUSE.search(e["text"])
        cause = m.group("cause") if m else None
        en, zh = RESET_CAUSES.get(cause, (cause, cause)) if cause else ("not recorded", "未记录")
        said = e.get("text_zh")
        out.append({"at": _iso(e["ts"]), "ts": e["ts"], "text": e["text"], "cause": cause, "why": "%s / %s" % (en, zh),
                    "text_zh": said if said and said != e["text"] else _restart_zh(e["text"], zh if cause else None),
                    "quick_crashes": int(m.group("quick")) if m and m.group("quick") else None,
                    "flag": cause in FAULT_CAUSES})
    return out


def _by_cause(restarts: list[dict]) -> dict:
    out: dict[str, int] = defaultdict(int)
    for r in restarts:
        out[r["cause"] or "not recorded"] += 1
    return dict(out)


def _safe_modes(events: list[dict], w_end: int) -> list[dict]:
    """Crash-loop safe mode, from the boot that entered it to the one that left it (a power cut in
    between boots into it again: the same stretch)."""
    out: list[dict] = []
    cur = None
    for e in events:
        if e["event"] != "health":
            continue
        m = SAFE_ENTER.search(e["text"])
        if m:
            level = int(m.group("level") or 2)
            if cur is None:
                cur = {"start_ts": e["ts"], "end_ts": None, "level": level, "start_text": e["text"]}
                out.append(cur)
            cur["level"] = max(cur["level"], level)
        elif cur is not None and e["text"].startswith(SAFE_LEAVE):
            cur["end_ts"] = e["ts"]
            cur = None
    for f in out:
        stop = f["end_ts"] if f["end_ts"] is not None else w_end
        f.update(started=_iso(f["start_ts"]), ended=_iso(f["end_ts"]), open=f["end_ts"] is None,
                 duration_s=max(0, stop - f["start_ts"]), what=SAFE_LEVELS.get(f["level"], ""))
        f["duration"] = _dur(f["duration_s"]) + (" (still open)" if f["open"] else "")
    return out


def _pair_faults(events: list[dict], w_start: int, w_end: int) -> list[dict]:
    open_: dict[tuple[str, str], dict] = {}
    out = []
    rules = [(k, cat, re.compile(a), re.compile(b), orphan) for k, cat, a, b, orphan in FAULT_RULES]
    for e in events:
        for kind, cat, start_re, end_re, orphan_end in rules:
            if e["event"] != kind:
                continue
            m = start_re.search(e["text"])
            if m:
                key = (cat, m.group("s"))
                if key not in open_:  # a repeated "failing" while already failing is the same fault
                    open_[key] = {"category": cat, "subject": m.group("s"), "start_ts": e["ts"], "start_text": e["text"],
                                  "start_text_zh": e.get("text_zh")}
                break
            m = end_re.search(e["text"])
            if m:
                f = open_.pop((cat, m.group("s")), None)
                if f is None:
                    if not orphan_end:
                        break
                    # recovery of a fault that started before the data: it ran from the start
                    f = {"category": cat, "subject": m.group("s"), "start_ts": None, "start_text": None}
                f.update(end_ts=e["ts"], end_text=e["text"])
                out.append(f)
                break
    for f in open_.values():
        f.update(end_ts=None, end_text=None)
        out.append(f)
    for f in out:
        # A recovery whose fault began before the data counts from the start of the data (at least).
        begin = f["start_ts"] if f["start_ts"] is not None else w_start
        stop = f["end_ts"] if f["end_ts"] is not None else w_end
        f["open"] = f["end_ts"] is None
        f["started_before_data"] = f["start_ts"] is None
        f["duration_s"] = max(0, stop - begin)
        f["duration"] = (("at least " if f["started_before_data"] else "") + _dur(f["duration_s"])
                         + (" (still open)" if f["open"] else ""))
        f["started"] = _iso(f["start_ts"])
        f["ended"] = _iso(f["end_ts"])
        f["over_24h"] = f["duration_s"] >= GAP_FAULT_S
    out.sort(key=lambda f: (f["start_ts"] or f["end_ts"] or 0))
    return out


def _value_gaps(values: list[dict], w_start: int, w_end: int, lead: bool, period_s: int | None):
    by_code: dict[str, list[dict]] = defaultdict(list)
    for v in values:
        if v["stat_type"] == 0 and v.get("code"):
            by_code[v["code"]].append(v)
    gaps, items = [], {}
    for code, vs in sorted(by_code.items()):
        starts = sorted({v["stat_start"] for v in vs})
        period = period_s or _infer_period(starts) or 900
        item_gaps = []

        def add(a, b, why, code=code, item_gaps=item_gaps, period=period):
            if b - a <= 0:
                return
            g = {"code": code, "from": _iso(a), "to": _iso(b), "from_ts": a, "to_ts": b, "duration_s": b - a,
                 "duration": _dur(b - a), "missing_values": (b - a) // period, "why": why,
                 "flag": "report (>= 3 days)" if b - a >= GAP_REPORT_S else ("fault (>= 24 h)" if b - a >= GAP_FAULT_S
                                                                             else "")}
            item_gaps.append(g)

        if lead and starts[0] - w_start >= period:
            add(w_start, starts[0], "no value since the start of the period")
        for a, b in zip(starts, starts[1:]):
            if b - a > period:
                add(a + period, b, "values missing")
        # A period's value is due once the period has ended, plus one period of grace for the gateway.
        tail_from = starts[-1] + period
        last_due = w_end - 2 * period
        if last_due >= tail_from:
            add(tail_from, tail_from + ((last_due - tail_from) // period + 1) * period, "no value since")
        first, last = starts[0], starts[-1]
        due = (max(last, last_due) - (w_start if lead else first)) // period + 1
        # The gateway's rule (nengjian.uplink.quality): a value stored as invalid (an estimate, a value out
        # of range) is not one the platform counts, so its period stays due until a valid one comes.
        counted = {v["stat_start"] for v in vs if v["valid"]}
        present = len([s for s in counted if s >= (w_start if lead else first)])
        invalid = sum(1 for v in vs if not v["valid"])
        items[code] = {"values": len(starts), "due": max(due, present), "completeness": round(present / max(due, present), 4),
                       "below_90pct": present / max(due, present) < COMPLETENESS_MIN, "invalid": invalid,
                       "first": _iso(first), "last": _iso(last), "period_s": period, "gaps": len(item_gaps),
                       "total": round(sum(v["value"] or 0 for v in vs if v["valid"]), 6)}
        gaps += item_gaps
    gaps.sort(key=lambda g: (g["from_ts"], g["code"]))
    return gaps, items


# ---- plots
def plots(ledger: dict, max_items: int = 24, lang: str | None = BOTH) -> dict[str, bytes]:
    """PNG images: one per data item (values, gaps shaded), one per meter point (readings), one timeline.
    In a Chinese report ("zh") the timeline's rows and the dates say no English, where a CJK font
    draws them; otherwise they are English beside the titles' Chinese."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def t(ts):
        return dt.datetime.fromtimestamp(ts, CST)

    out: dict[str, bytes] = {}
    in_zh = lang == "zh" and cjkfont.find() is not None
    rows = []  # the timeline's: (label, from, to, colour)
    for f in ledger["faults"] + ledger["link_outages"]:
        a = f["start_ts"] or ledger["period"]["from_ts"]
        b = f["end_ts"] or ledger["period"]["to_ts"]
        category = (in_zh and _word(f["category"], "zh")) or f["category"]
        rows.append(("%s %s" % (category, f["subject"]), a, b, "#9467bd" if f in ledger["link_outages"] else "#8c564b"))
    for g in ledger["gaps"]:
        rows.append((t_in("zh" if in_zh else "en", "ledger.plot.gap", code=g["code"]), g["from_ts"], g["to_ts"],
                     "#d62728" if g["duration_s"] >= GAP_REPORT_S else "#ff7f0e" if g["duration_s"] >= GAP_FAULT_S
                     else "#999999"))
    labels = sorted({r[0] for r in rows})
    # Chinese titles need a CJK font: matplotlib's own (DejaVu) draws them as boxes. The font is a subset
    # of the characters drawn, the timeline's Chinese labels among them.
    font = cjkfont.plot_font("— " + "".join(PLOT_ZH.values()) + "".join(labels))

    def title(ax, en, zh):
        ax.set_title("%s — %s" % (zh, en) if font is not None else en, fontsize=9, fontproperties=font)

    def save(fig, name):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()

    gaps_by_code = defaultdict(list)
    for g in ledger["gaps"]:
        gaps_by_code[g["code"]].append(g)
    for i, (code, series) in enumerate(sorted(ledger["_series"]["values"].items())):
        if i >= max_items:
            break
        fig, ax = plt.subplots(figsize=(9, 2.6))
        period = ledger["items"].get(code, {}).get("period_s", 900)
        xs, ys = [], []
        prev = None
        for s, v, _ok in sorted(series, key=lambda x: x[0]):
            if prev is not None and s - prev > period:
                xs.append(t(prev + period))
                ys.append(float("nan"))  # break the line across a gap
            xs.append(t(s))
            ys.append(v if v is not None else float("nan"))
            prev = s
        bad = [(t(s), v) for s, v, ok in series if not ok]
        ax.plot(xs, ys, ".-", lw=0.8, ms=2, color="#1f5fa0", label="value per period")
        if bad:
            ax.plot([b[0] for b in bad], [b[1] for b in bad], "x", color="#c00", label="invalid")
        for g in gaps_by_code.get(code, ()):
            color = "#d62728" if g["duration_s"] >= GAP_REPORT_S else ("#ff7f0e" if g["duration_s"] >= GAP_FAULT_S
                                                                       else "#bbbbbb")
            ax.axvspan(t(g["from_ts"]), t(g["to_ts"]), color=color, alpha=0.3, lw=0)
        title(ax, "%s: values (gaps shaded: grey < 24 h, orange >= 24 h, red >= 3 days)" % code, PLOT_ZH["item"])
        _axis(ax, mdates, [s for s, _v, _ok in series] + [x for g in gaps_by_code.get(code, ())
                                                           for x in (g["from_ts"], g["to_ts"])], in_zh)
        save(fig, "item-%s.png" % code)
    for i, (point, series) in enumerate(sorted(ledger["_series"]["readings"].items())):
        if i >= max_items:
            break
        fig, ax = plt.subplots(figsize=(9, 2.2))
        ax.plot([t(s) for s, _ in series], [v for _, v in series], "-", lw=0.8, color="#2a7a2a")
        title(ax, "%s: meter readings" % point, PLOT_ZH["readings"])
        _axis(ax, mdates, [s for s, _ in series], in_zh)
        save(fig, "readings-%s.png" % point.replace("/", "_"))
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.35 * max(1, len(labels))))
    for label, a, b, color in rows:
        y = labels.index(label)
        ax.barh(y, mdates.date2num(t(max(b, a + 60))) - mdates.date2num(t(a)), left=mdates.date2num(t(a)),
                height=0.6, color=color)
    for v in ledger["visits"]:
        ax.axvline(mdates.date2num(t(v["ts"])), color="#2ca02c", lw=1.5)
    ax.set_yticks(range(len(labels)), labels, fontsize=7, fontproperties=font if in_zh else None)
    ax.set_xlim(mdates.date2num(t(ledger["period"]["from_ts"])), mdates.date2num(t(ledger["period"]["to_ts"])))
    ax.xaxis_date(tz=CST)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=CST))
    title(ax, "Faults, link outages and data gaps (green lines: inspection visits)", PLOT_ZH["timeline"])
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    save(fig, "timeline.png")
    return out


PLOT_ZH = {"item": "数据采集项", "readings": "表计读数", "timeline": "运维台账：故障、链路中断、数据缺失（绿线：巡检）"}
PLOT_SINGLE_S = 86400  # one point alone: a day either side
PLOT_MARGIN = 0.03  # of the span, either side


# ConciseDateFormatter's formats with the month as a number: its default names it in English ("May").
NUMERIC_DATES = {"formats": ["%Y", "%m", "%d", "%H:%M", "%H:%M", "%S.%f"],
                 "offset_formats": ["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"]}


def _axis(ax, mdates, times: list[int], numeric_dates: bool = False) -> None:
    """A series plot's axes: dates over the data's own span (`times`, UTC seconds) with a small margin,
    and values as plain numbers. matplotlib's defaults read wrongly at a glance: an energy register
    near 12 345 kWh got a "+1.234e4" offset and ticks of 0.2, and one value alone was drawn on an axis
    of some four years (its default date range)."""
    from matplotlib.ticker import ScalarFormatter

    if times:
        lo, hi = min(times), max(times)
        pad = (hi - lo) * PLOT_MARGIN if hi > lo else PLOT_SINGLE_S
        ax.set_xlim(dt.datetime.fromtimestamp(lo - pad, CST), dt.datetime.fromtimestamp(hi + pad, CST))
    # A unit is chosen once the span holds `minticks` of it. At matplotlib's 5, a span just short of five
    # days (or hours, minutes) falls to the next finer unit, whose largest step (12 h, 30 min, 30 s) still
    # makes more than 8 ticks: the locator warned and crowded the axis. From 3, the chosen unit's
    # largest step always fits 8 ticks.
    loc = mdates.AutoDateLocator(tz=CST, minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=CST, **(NUMERIC_DATES if numeric_dates else {})))
    plain = ScalarFormatter(useOffset=False)
    plain.set_scientific(False)
    ax.yaxis.set_major_formatter(plain)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


# ---- outputs
def public(ledger: dict) -> dict:
    """The ledger without internal series and thumbnails (the --json output)."""
    out = {k: v for k, v in ledger.items() if not k.startswith("_")}
    if out.get("photos"):
        out["photos"] = [{k: v for k, v in p.items() if not k.startswith("_")} for p in out["photos"]]
    return out


def _say(key: str, lang: str | None, sep: str = " / ", zh_first: bool = False, **kw) -> str:
    """A catalogue text in the report's language; both (English, `sep`, Chinese) when it has none."""
    en, zh = both(key, **kw)
    if lang == "zh":
        return zh
    if lang == "en":
        return en
    return sep.join((zh, en) if zh_first else (en, zh))


def _h(key: str, lang: str | None = BOTH) -> str:
    """A column heading, as the ledger's tables give them."""
    return _say(key, lang)


def _word(value: str, lang: str) -> str | None:
    """A cell's word the ledger writes itself (a fault's category, a gap's flag, a duration, an event's
    kind, "English / 中文" of a status), in `lang`; None when it is none of those."""
    for prefix in ("ledger.word.", "ledger.kind."):
        if prefix + value in MESSAGES:
            return t_in(lang, prefix + value)
    m = _DUR.match(value)
    if m:
        dur = t_in(lang, "ledger.dur" if m["d"] else "ledger.dur.h", d=int(m["d"] or 0), h=int(m["h"]), m=int(m["m"]))
        dur = t_in(lang, "ledger.dur.at_least", dur=dur) if m["least"] else dur
        return t_in(lang, "ledger.dur.open", dur=dur) if m["open"] else dur
    en, sep, zh = value.rpartition(" / ")
    if sep and _CJK.search(zh) and not _CJK.search(en):
        return zh if lang == "zh" else en
    return None


def _table(rows: list[dict], cols: list[tuple[str, str]], empty: str, lang: str | None = BOTH) -> str:
    if not rows:
        return "<p class=none>%s</p>" % html.escape(empty)
    head = "".join("<th>%s</th>" % html.escape(t) for _k, t in cols)
    body = []
    for r in rows:
        cls = ' class="flag"' if r.get("flag") or r.get("over_24h") or r.get("open") else ""
        body.append("<tr%s>%s</tr>" % (cls, "".join("<td>%s</td>" % _cell(r, k, lang) for k, _t in cols)))
    return "<table><tr>%s</tr>%s</table>" % (head, "".join(body))


def _cell(r: dict, k: str, lang: str | None = BOTH) -> str:
    """A cell in the report's language: a gateway text by its Chinese (k_zh, where the catalogue says
    it), a word of the ledger's own by the catalogue; with both, the Chinese under the English."""
    value = "" if r.get(k) is None else str(r.get(k))
    zh = r.get(k + "_zh")
    zh = str(zh) if zh and zh != value else _word(value, "zh")
    if lang == "zh":
        return html.escape(zh or value)
    if lang == "en":
        return html.escape(_word(value, "en") or value)
    text = html.escape(value)
    if zh and zh != value and not value.endswith(" / " + zh):
        text += '<br><span lang="zh-CN">%s</span>' % html.escape(zh)
    return text


def _restart_zh(text: str, cause_zh: str | None) -> str | None:
    """A boot event's Chinese, from its parts (nengjian.appboot's text: version, cause, quick crashes)."""
    m = BOOT_TEXT.match(text)
    if not m:
        return None
    if m["cause"]:
        return both("ledger.boot.cause", version=m["version"], cause=cause_zh or m["cause"], quick=m["quick"],
                    limit=m["limit"])[1]
    return both("ledger.boot", version=m["version"])[1]


def to_html(ledger: dict, images: dict[str, bytes], title: str | None = None, lang: str | None = BOTH) -> str:
    """The report: in `lang` ("zh", "en"), or with both (None) as the hand-over document always was;
    `title` (--title) is the report's own name in place of the catalogue's."""
    def h(key: str, **kw) -> str:  # a heading: the English first, its Chinese after a dash
        return html.escape(_say(key, lang, " — ", **kw))

    def para(key: str, zh_first: bool = False, **kw) -> str:  # a sentence or two, in both: one after the other
        return html.escape(_say(key, lang, " ", zh_first=zh_first, **kw))

    def col(key: str) -> str:
        return _h(key, lang)

    s = ledger["summary"]
    gw = ledger.get("gateway") or {}
    gw_line = " · ".join(html.escape("%s: %s" % (_say("ledger.gw." + k, lang) if "ledger.gw." + k in MESSAGES else k, v))
                         for k, v in gw.items() if v)
    items = [dict(code=c, **v) for c, v in ledger["items"].items()]
    score = ledger.get("gateway_score")
    newest = {}  # data item -> the gateway's figure of its newest month, per destination
    for d in (score or {}).get("destinations", ()):
        for x in d["items"]:
            if x["what"] == "month" and (x["code"], d["destination"]) not in newest:
                newest[(x["code"], d["destination"])] = "%s %s: %s (%s)" % (d["destination"], x["period"], x["gateway"],
                                                                            x["completeness"])
    for it in items:
        it["completeness_pct"] = "%.1f %%" % (100 * it["completeness"])
        it["gateway"] = "; ".join(v for (code, _dest), v in sorted(newest.items()) if code == it["code"])
        it["flag"] = "below 90 % / 低于 90 %" if it["below_90pct"] else ""
    img_html = "".join('<figure><img alt="%s" src="data:image/png;base64,%s"></figure>'
                       % (html.escape(name), base64.b64encode(png).decode()) for name, png in images.items())
    insp = ledger["inspection"]
    findings = []

    def find(key: str, **kw) -> None:  # a finding: Chinese, then the English, where the report has both
        en, zh = both(key, **kw)
        findings.append(zh if lang == "zh" else en if lang == "en" else "%s（%s）" % (zh, en))

    if s["gaps_to_report"]:
        find("report.ledger.find.gaps", n=s["gaps_to_report"])
    if s["faults_open"]:
        find("report.ledger.find.open", n=s["faults_open"])
    if s["faults_over_24h"]:
        find("report.ledger.find.long", n=s["faults_over_24h"])
    if insp["overdue"]:
        find("report.ledger.find.overdue", days=insp["days_since"], rule=insp["rule_days"])
    if s["data_loss_events"]:
        find("report.ledger.find.loss", n=s["data_loss_events"])
    faulted = sum(n for c, n in s.get("restarts_by_cause", {}).items() if c in FAULT_CAUSES)
    if faulted:
        find("report.ledger.find.crashes", n=faulted)
    if s.get("safe_mode_entries"):
        find("report.ledger.find.safe", n=s["safe_mode_entries"])
    big = [c for c in ledger.get("clock_steps", ()) if c["flag"]]
    if big:
        find("report.ledger.find.clock_steps", n=len(big), limit=CLOCK_STEP_FLAG_S)
    if s.get("clock_refused"):
        find("report.ledger.find.clock_refused", n=s["clock_refused"])
    if s.get("security_events"):
        find("report.ledger.find.security", n=s["security_events"])
    if s.get("points_unsupported"):
        find("report.ledger.find.unsupported", n=s["points_unsupported"])
    if s.get("quality_alarms"):
        find("report.ledger.find.quality", n=s["quality_alarms"])
    cal_bad = [c for c in ledger.get("calibrations", ()) if c["flag"]]
    if cal_bad:
        find("report.ledger.find.calibration", n=len(cal_bad), days=CALIBRATION_DUE_DAYS,
             meters=", ".join("%s %s" % (c["meter"], (lang and _word(c["status"], lang)) or c["status"]) for c in cal_bad))
    if s.get("checks_beyond_class"):
        find("report.ledger.find.checks", n=s["checks_beyond_class"])
    if s.get("photos_flagged"):
        find("report.ledger.find.photos", n=s["photos_flagged"])
    low = [c for c, v in ledger["items"].items() if v["below_90pct"]]
    if low:
        find("report.ledger.find.low", items=", ".join(low))
    if s.get("gateway_score_low"):
        find("report.ledger.find.gateway_low", figures=", ".join(
            "%s %s %s" % (p["destination"], p["period"], p["completeness"]) for p in score["low"]))
    if not findings:
        find("report.ledger.find.none")
        find_html = "<p>%s</p>" % html.escape(findings[0])
    else:
        find_html = "<ul class=findings>%s</ul>" % "".join("<li>%s</li>" % html.escape(f) for f in findings)
    name = title or t_in("zh" if lang == "zh" else "en", "ledger.title")
    h1 = (title or t_in(lang, "ledger.h1")) if lang else "%s — %s" % (name, both("ledger.h1")[1])
    none = para("ledger.none")
    sections = [
        ("ledger.h.findings", find_html),
        ("ledger.h.summary", "<table><tr>%s</tr><tr>%s</tr></table>" % (
            "".join("<th>%s</th>" % html.escape(col("ledger.sum." + k)) for k in (
                "faults", "outages", "gaps", "visits", "loss", "restarts", "values", "readings")),
            "".join("<td>%s</td>" % html.escape(str(v)) for v in (
                "%s (%s)" % (s["faults"], _say("ledger.sum.open", lang, n=s["faults_open"])), s["link_outages"],
                "%s (%s / %s)" % (s["gaps"], s["gaps_over_24h"], s["gaps_to_report"]),
                "%s (%s)" % (s["visits"], _say("ledger.sum.last", lang, at=insp["last_visit"] or "-")),
                s["data_loss_events"], s["restarts"], s["values"], s["readings"])))),
        ("ledger.h.faults", _table(ledger["faults"], [
            ("category", col("ledger.col.fault")), ("subject", col("ledger.col.subject")),
            ("started", col("ledger.col.started")), ("ended", col("ledger.col.ended")),
            ("duration", col("ledger.col.duration")), ("start_text", col("ledger.col.event"))],
            para("ledger.none.faults"), lang)),
        ("ledger.h.outages", _table(ledger["link_outages"], [
            ("category", col("ledger.col.outage")), ("subject", col("ledger.col.dest_link")),
            ("started", col("ledger.col.started")), ("ended", col("ledger.col.ended")),
            ("duration", col("ledger.col.duration")), ("start_text", col("ledger.col.reason"))],
            para("ledger.none.outages"), lang)),
        ("ledger.h.gaps", _table(ledger["gaps"], [
            ("code", col("ledger.col.item")), ("from", col("ledger.col.from")), ("to", col("ledger.col.to")),
            ("duration", col("ledger.col.duration")), ("missing_values", col("ledger.col.missing")),
            ("flag", col("ledger.col.flag")), ("why", col("ledger.col.note"))], para("ledger.none.gaps"), lang)),
        ("ledger.h.items", _table(items, [
            ("code", col("ledger.col.item")), ("values", col("ledger.col.values")), ("due", col("ledger.col.due")),
            ("completeness_pct", col("ledger.col.completeness")), ("invalid", col("ledger.col.invalid")),
            ("gaps", col("ledger.col.gaps")), ("first", col("ledger.col.first")), ("last", col("ledger.col.last")),
            ("gateway", col("report.ledger.gw.col.month")), ("flag", col("ledger.col.flag"))],
            para("ledger.none.items"), lang)),
        ("report.ledger.gw.title", "<p>%s</p>%s" % (para("report.ledger.gw.intro", zh_first=True), _gateway_html(score, lang))),
        ("ledger.h.at_pull", _at_pull_html(ledger.get("at_pull"), lang)),
        ("ledger.h.quality", _table(ledger.get("quality", []), [
            ("at", col("ledger.col.at")), ("destination", col("ledger.col.platform")),
            ("code", col("ledger.col.item")), ("what", col("ledger.col.day_or_month")),
            ("when", col("ledger.col.which")), ("why", col("ledger.col.finding"))], none, lang)),
        ("ledger.h.visits", _table(ledger["visits"], [
            ("at", col("ledger.col.at")), ("text", col("ledger.col.visit_text")),
            ("visit_id", col("ledger.col.visit")), ("photos_recorded", col("ledger.col.photos"))],
            para("ledger.none.visits"), lang)),
        ("ledger.h.photos", "<p class=meta>%s</p>%s" % (para("ledger.note.photos"),
                                                       _photo_table(ledger.get("photos", []), lang))),
        ("ledger.h.calibrations", _table(ledger.get("calibrations", []), [
            ("meter", col("ledger.col.meter")), ("class", col("ledger.col.class")),
            ("certificate", col("ledger.col.certificate")), ("date", col("ledger.col.calibrated")),
            ("due", col("ledger.col.cal_due")), ("days_left", col("ledger.col.days_left")),
            ("status", col("ledger.col.status"))], para("ledger.none.calibrations"), lang)),
        ("ledger.h.cal_records", _table(ledger.get("calibration_records", []), [
            ("at", col("ledger.col.at")), ("meter", col("ledger.col.meter")),
            ("certificate", col("ledger.col.certificate")), ("date", col("ledger.col.calibrated")),
            ("due", col("ledger.col.cal_due")), ("visit_id", col("ledger.col.visit_id")), ("who", col("ledger.col.by"))],
            para("ledger.none.cal_records"), lang)),
        ("ledger.h.checks", "<p class=meta>%s</p>%s" % (para("ledger.note.checks"), _table(ledger.get("checks", []), [
            ("at", col("ledger.col.at")), ("meter", col("ledger.col.meter")), ("point", col("ledger.col.point")),
            ("displayed", col("ledger.col.display")), ("gateway", col("ledger.col.gateway_reading")),
            ("gateway_at", col("ledger.col.read_at")), ("difference", col("ledger.col.difference")),
            ("allowed", col("ledger.col.allowed")), ("class", col("ledger.col.check_class")),
            ("result", col("ledger.col.result")), ("who", col("ledger.col.by"))], para("ledger.none.checks"), lang))),
        ("ledger.h.metrology", _table(ledger.get("metrology_alarms", []), [
            ("at", col("ledger.col.at")), ("text", col("ledger.col.alarm"))], none, lang)),
        ("ledger.h.commissioning", _table(ledger.get("commissioning", []), [
            ("at", col("ledger.col.at")), ("text", col("ledger.col.record"))], para("ledger.none.commissioning"), lang)),
        ("ledger.h.losses", _table(ledger["losses"], [
            ("at", col("ledger.col.at")), ("kind", col("ledger.col.kind")), ("text", col("ledger.col.event"))],
            none, lang)),
        ("ledger.h.changes", _table(ledger["meter_changes"], [
            ("at", col("ledger.col.at")), ("text", col("ledger.col.event"))], none, lang)),
        ("ledger.h.refused", _table(ledger.get("unsupported_points", []), [
            ("meter", col("ledger.col.meter")), ("point", col("ledger.col.point")),
            ("since", col("ledger.col.refused_since")), ("until", col("ledger.col.answers_again")),
            ("why", col("ledger.col.meter_reply"))], none, lang)),
        ("ledger.h.clock", _table(ledger.get("clock_steps", []), [
            ("at", col("ledger.col.at")), ("step", col("ledger.col.step")),
            ("source", col("ledger.col.time_source")), ("what", col("ledger.col.outcome"))],
            para("ledger.none.clock"), lang)),
        ("ledger.h.security", _table(ledger.get("security", []), [
            ("at", col("ledger.col.at")), ("text", col("ledger.col.event"))], none, lang)),
        ("ledger.h.restarts", _table(ledger["restarts"], [
            ("at", col("ledger.col.at")), ("why", col("ledger.col.cause")), ("text", col("ledger.col.event"))],
            none, lang)),
        ("ledger.h.safe", _table(ledger.get("safe_modes", []), [
            ("started", col("ledger.col.entered")), ("ended", col("ledger.col.left")),
            ("duration", col("ledger.col.duration")), ("what", col("ledger.col.level"))], none, lang)),
        ("ledger.h.plots", img_html or "<p class=none>%s</p>" % para("ledger.none.plots")),
        ("ledger.h.events", _table(ledger["events"], [
            ("at", col("ledger.col.at")), ("seq", col("ledger.col.record")), ("kind", col("ledger.col.kind")),
            ("text", col("ledger.col.event"))], para("ledger.none.events"), lang)),
        ("ledger.h.signoff", "<table><tr>%s</tr><tr><td>&nbsp;</td><td></td><td></td><td>%s</td></tr></table>" % (
            "".join("<th>%s</th>" % html.escape(col("ledger.col." + k))
                    for k in ("crew", "signature", "date", "photos_verified")),
            html.escape(_say("ledger.signoff.photos", lang, ok=sum(
                1 for ph in ledger.get("photos", ()) if ph["status"].startswith("verified")),
                n=len(ledger.get("photos", ())))))),
    ]
    page = """<!DOCTYPE html>
<html lang="{html_lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>
/*CJK-FONT*/
body{{font-family:{cjk},sans-serif;max-width:1000px;margin:1em auto;color:#222}} h1{{font-size:1.4em}}
h2{{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:1.6em}} table{{border-collapse:collapse;width:100%;font-size:.85em}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}} th{{background:#f0f0f0}}
tr.flag td{{background:#fde8e8}} .none{{color:#666}} figure{{margin:.5em 0}} img{{max-width:100%}} img.thumb{{max-width:240px}}
.findings li{{color:#a00}} .meta{{color:#555;font-size:.9em}}
@page{{size:A4;margin:12mm}} @media print{{figure,tr{{page-break-inside:avoid}}}}
</style></head><body>
<h1>{h1}</h1>
<p class=meta>{gw}<br>{period}</p>
{sections}
</body></html>
""".format(
        html_lang="en" if lang == "en" else "zh-CN", title=html.escape(name), h1=html.escape(h1), gw=gw_line,
        period=para("ledger.period", zh_first=True, frm=ledger["period"]["from"], to=ledger["period"]["to"],
                 gen=dt.datetime.now(CST).strftime("%Y-%m-%d %H:%M CST")),
        cjk=cjkfont.FAMILY, sections="\n".join("<h2>%s</h2>%s" % (h(key), body) for key, body in sections))
    # The font last: a subset of exactly the characters the page shows.
    return page.replace("/*CJK-FONT*/", cjkfont.css(page), 1)


def _photo_table(photos: list[dict], lang: str | None = BOTH) -> str:
    if not photos:
        return "<p class=none>%s</p>" % html.escape(_say("ledger.none.photos", lang, " ", zh_first=False))
    rows = []
    for p in photos:
        thumb = p.get("_thumb")
        img = ('<img class=thumb alt="%s" src="data:image/jpeg;base64,%s">' % (
            html.escape(p["name"]), base64.b64encode(thumb).decode())) if thumb else ""
        flagged = ' class="flag"' if p["flag"] else ""  # markup: a row the crew must look at
        rows.append("<tr%s><td>%s</td><td>%s</td><td>%s</td><td><code>%s</code></td><td>%s</td><td>%s</td></tr>" % (
            flagged, html.escape(p["at"] or ""), html.escape(p["visit_id"]),
            html.escape(p["name"]), p["sha256"], _cell(p, "status", lang), img))
    head = "".join("<th>%s</th>" % html.escape(c) for c in (
        _h("ledger.col.at", lang), _h("ledger.col.visit", lang), _h("ledger.col.photo", lang), "SHA-256",
        _h("ledger.col.photo_check", lang), _h("ledger.col.thumbnail", lang)))
    return "<table><tr>%s</tr>%s</table>" % (head, "".join(rows))


def parse_when(text: str | None) -> int | None:
    """--from/--to: a date or date-time in CST ('2026-05-01', '2026-05-01 08:00') or UTC seconds."""
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise LedgerError("err.ledger.bad_date", text=repr(text)) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=CST)
    return int(t.timestamp())


def report(source: str | Path, since: str | None = None, until: str | None = None, period_s: int | None = None,
           gateway: str | None = None, html_path: str | Path | None = None, png_dir: str | Path | None = None,
           title: str | None = None, progress=None, pdf_path: str | Path | None = None, lang: str | None = BOTH) -> dict:
    """`nengjian ledger`'s work: load the records of `source`, build the ledger for --from/--to
    (`since`/`until` as parse_when reads them), write the HTML report, its PDF (printed from the HTML
    by common.pdf: the document a crew hands to the DRC; needs `html_path`) and the PNG plots where
    asked; the report in `lang` ("zh", "en"), or both (None). Returns the ledger (public() of it is the --json output). LedgerError for bad input,
    OSError when a file cannot be read or written, common.pdf.PdfError (NoChromium: Chromium is
    missing) when the PDF cannot be printed, after the HTML is written. `progress`: a rich Progress
    (output.progress) or None."""
    if pdf_path and not html_path:
        raise LedgerError("err.ledger.pdf_needs_html")
    led = build(load(source), parse_when(since), parse_when(until), period_s,
                gateway={"source": str(source), "gateway": gateway})
    led["gateway_score"] = gateway_score(read_gateway_score(source), led)
    led["summary"]["gateway_score_low"] = _score_low(led["gateway_score"])
    led["at_pull"] = at_pull(read_pull_status(source))
    led["calibrations"] = calibrations(site_meters(source), led["period"]["to_ts"])
    led["summary"]["calibrations_flagged"] = sum(1 for c in led["calibrations"] if c["flag"])
    verify_photos(led, photo_roots(source), thumbs=bool(html_path))
    images = {}
    if html_path or png_dir:
        task = progress.add_task("plots", total=None) if progress else None
        images = plots(led, lang=lang)
        if progress:
            progress.update(task, completed=1, total=1)
    if png_dir:
        d = Path(png_dir)
        d.mkdir(parents=True, exist_ok=True)
        for name, png in images.items():
            (d / name).write_bytes(png)
    if html_path:
        Path(html_path).write_text(to_html(led, images, title, lang), encoding="utf-8")
    if pdf_path:
        from nengjian_host.common import pdf

        task = progress.add_task("pdf", total=None) if progress else None
        led["pdf"] = str(pdf.print_pdf(Path(html_path), Path(pdf_path)))
        if progress:
            progress.update(task, completed=1, total=1)
    return led


def summary_line(led: dict) -> str:
    """The ledger in one line, for a person."""
    s = led["summary"]
    from nengjian_host.common.messages import t

    return t("out.ledger.summary", frm=led["period"]["from"], to=led["period"]["to"], faults=s["faults"],
             open=s["faults_open"], outages=s["link_outages"], gaps=s["gaps"], gaps24=s["gaps_over_24h"],
             gaps3=s["gaps_to_report"], visits=s["visits"], loss=s["data_loss_events"],
             overdue=t("out.ledger.overdue") if s["inspection_overdue"] else "")
