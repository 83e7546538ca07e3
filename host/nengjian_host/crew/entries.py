"""`nengjian visit` and `nengjian manual`: what a crew writes into a gateway's own ledger and store.

A visit records who came, what was checked and what was done; its site photos are kept with the
pulled data on the laptop (OUT/photos/<gateway>/<visit>/, beside the pulls of `nengjian pull --out
OUT`) and their SHA-256 hashes go into the gateway's ledger with the visit, so the ledger report can
prove which photos belong to which visit. A performance check (--check) records the meter's display
as the crew reads it; the gateway compares it with its own reading of that moment and the meter's
accuracy class (nengjian.values.metrology). A calibration (--calibration) is a meter's new 检定
certificate: the gateway records it in its ledger and in its site config (meters[].calibration),
which the calibration alarms read, so a due or expired alarm clears.

Both go through the running gateway's USB console (the application keeps polling): a visit is a
ledger event the 30-day inspection rule asks for; a manual entry is a day/month/year value no
meter measures (a coal or oil delivery), checked here with the firmware's own rules first, then
stored by the gateway with input type 5 and uploaded like any other value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

from nengjian_host.common import paths
from nengjian_host.common.messages import msg

if str(paths.FIRMWARE) not in sys.path:
    sys.path.insert(0, str(paths.FIRMWARE))

STAT_TYPES = {"day": 1, "month": 2, "year": 3}
CST = dt.timezone(dt.timedelta(hours=8), "CST")


class EntryError(ValueError):
    """An entry the gateway would refuse: nothing was sent. The text names the fix; `text` is it with
    its Chinese where the catalogue has it (common.messages.Text), for output.fail."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


class CalibrationError(EntryError):
    """A --calibration record that cannot be right (dates, certificate, a meter the gateway lacks)."""


def visit_command(who: str, note: str) -> str:
    """The console command that records a visit by `who` (what was checked: `note`)."""
    text = note.strip()
    if not who or not text:
        raise EntryError(msg("err.visit.who_note"))
    return "visit %s: %s" % (who, text.replace("\n", " "))


VISIT_MANIFEST = "visit.json"
COMMAND_MAX = 1000  # the console reads lines of up to 1024 bytes (nengjian.console.protocol.LINE_MAX)
PHOTOS = "photos"


def safe_part(text: str) -> str:
    """A visit id or gateway id as one folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text or "gateway")[:64] or "gateway"


def visit_id(now: dt.datetime | None = None) -> str:
    """A visit's id: its CST date and time, e.g. V20261202-131500 (one crew, one visit at a time)."""
    now = now or dt.datetime.now(CST)
    return now.astimezone(CST).strftime("V%Y%m%d-%H%M%S")


def hash_photos(files: list[str]) -> list[dict]:
    """[{"path", "name", "sha256"}] of the photos given; EntryError for one that is not a readable file
    or a name given twice."""
    out, names = [], set()
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise EntryError(msg("err.visit.photo_missing", file=f))
        name = re.sub(r"[^\w.-]", "_", p.name)[:60]
        if name in names:
            raise EntryError(msg("err.visit.photo_twice", file=f, name=name))
        names.add(name)
        out.append({"path": str(p), "name": name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    return out


def visit_request(vid: str, who: str, checked: str, done: str, photos: list[dict]) -> str:
    """The console command of a visit with photos (nengjian.console.commands._visit)."""
    checked, done = checked.strip().replace("\n", " "), (done or "").strip().replace("\n", " ")
    if not who or not checked:
        raise EntryError(msg("err.visit.who_note"))
    req = {"id": vid, "who": who, "checked": checked, "done": done,
           "photos": [[p["sha256"], p["name"]] for p in photos]}
    command = "visit " + json.dumps(req, ensure_ascii=False, separators=(",", ":"))
    if len(command.encode()) > COMMAND_MAX:
        raise EntryError(msg("err.visit.too_long", size=len(command.encode()), limit=COMMAND_MAX))
    return command


def check_request(meter: str, point: str, displayed: str, who: str = "") -> str:
    """The console command of a performance check: the meter's display as the crew reads it."""
    from nengjian.values.metercheck import parse_decimal

    try:
        parse_decimal(displayed)
    except ValueError as e:
        raise EntryError(msg("err.visit.check", meter=meter, point=point, displayed=displayed, reason=e)) from None
    return "check " + json.dumps({"meter": meter, "point": point, "displayed": displayed, "who": who},
                                 ensure_ascii=False, separators=(",", ":"))


def _cal_date(meter: str, text: str, key: str) -> dt.date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CalibrationError(msg(key, meter=meter, value=text)) from None


def calibration_request(meter: str, certificate: str, date: str, due: str, who: str = "", vid: str = "",
                        today: dt.date | None = None) -> str:
    """The console command of a meter's new calibration (nengjian.console.commands._calibrate), checked
    as the gateway checks it (nengjian.values.metrology.new_record) and against the laptop's CST date
    `today`: a certificate number, two dates, the calibration not in the future, due after it.
    CalibrationError naming the fix."""
    certificate = (certificate or "").strip()
    if not 1 <= len(certificate) <= 40:
        raise CalibrationError(msg("err.visit.cal_certificate", meter=meter))
    d = _cal_date(meter, date, "err.visit.cal_bad_date")
    u = _cal_date(meter, due, "err.visit.cal_bad_due")
    today = today or dt.datetime.now(CST).date()
    if d > today:
        raise CalibrationError(msg("err.visit.cal_future", meter=meter, date=date, today=today.isoformat()))
    if u <= d:
        raise CalibrationError(msg("err.visit.cal_order", meter=meter, date=date, due=due))
    return "calibrate " + json.dumps({"meter": meter, "certificate": certificate, "date": date, "due": due,
                                      "who": who, "visit": vid}, ensure_ascii=False, separators=(",", ":"))


def check_calibrations(calibrations, today: dt.date | None = None) -> None:
    """Every --calibration (meter, certificate, date, due) checked before anything is sent; one per meter."""
    seen = set()
    for meter, cert, date, due in calibrations:
        if meter in seen:
            raise CalibrationError(msg("err.visit.cal_twice", meter=meter))
        seen.add(meter)
        calibration_request(meter, cert, date, due, today=today)


def keep_photos(out: Path, gateway: str, vid: str, who: str, photos: list[dict]) -> Path:
    """Copy the photos to OUT/photos/<gateway>/<visit>/ beside the pulls `nengjian pull --out OUT` makes,
    with visit.json (their hashes); the folder is readable by the crew only, as a pull is."""
    d = out / PHOTOS / safe_part(gateway) / safe_part(vid)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    for p in photos:
        shutil.copyfile(p["path"], d / p["name"])
        os.chmod(d / p["name"], 0o600)
    (d / VISIT_MANIFEST).write_text(json.dumps({"visit": vid, "gateway": gateway, "who": who, "photos": [
        {"name": p["name"], "sha256": p["sha256"]} for p in photos]}, ensure_ascii=False, indent=2), encoding="utf-8")
    return d


def record_visit(con, who: str, checked: str, done: str = "", photo_files: list[str] = (), checks=(),
                 out: Path | None = None, now: dt.datetime | None = None, calibrations=()) -> dict:
    """`nengjian visit`'s work on an open console `con`: hash and keep the photos, record the visit
    (photo hashes included) in the gateway's ledger, then each performance check ((meter, point,
    displayed) as the crew read it) against the gateway's reading of that moment, then each new
    calibration ((meter, certificate, date, due)) into the gateway's ledger and site config, and then
    into the newest pull of this gateway under `out` (pull.refresh_config). Returns {"visit", "seq",
    "photos_dir", "photos", "checks", "calibrations", "pull" (that pull, or None: pull again)}. EntryError (CalibrationError
    for a meter the gateway does not have) before anything is sent; DeviceError if the gateway refuses."""
    photos = hash_photos(list(photo_files))
    if photos and out is None:
        raise EntryError(msg("err.visit.photos_need_out"))
    vid = visit_id(now)
    today = (now or dt.datetime.now(CST)).astimezone(CST).date()
    command = visit_request(vid, who, checked, done, photos)
    check_commands = [check_request(m, p, v, who) for m, p, v in checks]
    check_calibrations(calibrations, today)
    cal_commands = [calibration_request(m, c, d, u, who, vid, today) for m, c, d, u in calibrations]
    kept = gid = None
    if photos or calibrations:
        st = send(con, "status")
        known = [str(m.get("id")) for m in st.get("meters") or () if isinstance(m, dict)]
        for m, *_rest in calibrations:
            if m not in known:
                raise CalibrationError(msg("err.visit.cal_no_meter", meter=m, meters=", ".join(known) or "-"))
        gid = str(st.get("gateway_id") or "gateway")
        if photos:
            kept = keep_photos(out, gid, vid, who, photos)
    ans = send(con, command)
    results = [send(con, c) for c in check_commands]
    cals = [send(con, c) for c in cal_commands]
    pulled = None
    if cals and out is not None and gid:  # the gateway rewrote its site.json: so does the laptop's pull of it
        from nengjian_host.crew import pull

        pulled = pull.refresh_config(con, out, gid)
    return {"visit": vid, "seq": ans.get("seq"), "photos_dir": str(kept) if kept else None,
            "photos": [{"name": p["name"], "sha256": p["sha256"]} for p in photos], "checks": results,
            "calibrations": cals, "pull": str(pulled) if pulled else None}


def manual_entry(code: str, period: str, start: str, value: str, scope: int = 1, who: str = "") -> tuple[str, str]:
    """(what the entry is, for a person; the console command that stores it), checked with the
    firmware's own rules (nengjian.values.manual). EntryError if they refuse it."""
    from nengjian.core import timeutil
    from nengjian.values import manual

    stat = STAT_TYPES[period]
    try:
        stat_start, checked = manual.check(code, stat, start, value, scope)
    except manual.ManualError as e:
        raise EntryError(str(e)) from None
    what = f"{code} {period} {timeutil.cst_text(stat_start)} = {checked.text()} (scope {scope})"
    req = {"code": code, "stat_type": stat, "stat_start": stat_start, "value": value, "scope": scope, "who": who}
    return what, "manual " + json.dumps(req, separators=(",", ":"))


def send(con, command: str) -> dict:
    """Run one entry's console command on the gateway (a device.Console); its answer (with "seq", the
    record it became). DeviceError if the gateway refuses it."""
    return con.request(command)[-1]
