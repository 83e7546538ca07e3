"""Wire-format rules the reference platform enforces (SPEC 3.1, 3.3, 3.4).

Owns: the GB 32100-2015 credit-code check, region and deviceId formats, the data-item code and its
scope rule, the time formats and period alignment, and the per-record field checks. Every check returns
human-readable problem strings (empty list / None = fine) so the HTTP layer can hand them back verbatim.
Nothing here touches storage or the network.
"""

import math
import re
from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")
WIRE_TIME = "%Y-%m-%d %H:%M:%S"

CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

RECORD_FIELDS = ("dataCode", "dataValue", "inputType", "statType", "statDate", "uploadDate", "scope", "valid")
VALID_ENCODINGS = ("json", "shandong", "yunnan")
STAT_TYPE_NAMES = {0: "real-time", 1: "day", 2: "month", 3: "year"}

# [0-9] rather than \d: \d also matches non-ASCII digits, which no platform accepts.
_REGION_RE = re.compile(r"[0-9]{6}")
_DEVICE_ID_RE = re.compile(r"[0-9a-f]{32}")
_DATA_CODE_RE = re.compile(r"([0-9]{2})-([0-9]{2})-([0-9]{4})-([0-9]{6})-([0-9]{2})")
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def credit_check_char(first17):
    """The GB 32100-2015 check character for the first 17 characters of a credit code."""
    if len(first17) != 17:
        raise ValueError("need 17 characters")
    total = 0
    for ch, weight in zip(first17, CREDIT_WEIGHTS):
        value = CREDIT_CHARSET.find(ch)
        if value < 0:
            raise ValueError("character %r is not allowed in a credit code" % ch)
        total += value * weight
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def check_enterprise_code(code):
    """None if `code` is a well-formed 18-character unified social credit code, else the problem."""
    if not isinstance(code, str):
        return "enterpriseCode must be a string"
    if len(code) != 18:
        return "enterpriseCode must be 18 characters, got %d" % len(code)
    try:
        expected = credit_check_char(code[:17])
    except ValueError as exc:
        return "enterpriseCode: %s" % exc
    if code[17] != expected:
        return "enterpriseCode check character is %r, expected %r" % (code[17], expected)
    return None


def check_region(region):
    if not isinstance(region, str) or not _REGION_RE.fullmatch(region):
        return "region must be a 6-digit administrative code string"
    return None


def check_device_id(device_id):
    if not isinstance(device_id, str) or not _DEVICE_ID_RE.fullmatch(device_id):
        return "deviceId must be 32 lower-case hex characters"
    return None


def check_data_code(code, scope=None):
    """Problems with a data-item code; the scope rule is checked only when `scope` is a valid scope."""
    if not isinstance(code, str):
        return ["dataCode must be a string"]
    m = _DATA_CODE_RE.fullmatch(code)
    if not m:
        return ["dataCode %r does not match NN-NN-NNNN-NNNNNN-NN" % code]
    process, unit, equipment = m.group(1), m.group(2), m.group(3)
    problems = []
    if scope == 1 and process != "00":
        problems.append("dataCode %s: scope 1 (whole plant) requires process 00" % code)
    if scope in (1, 2) and unit != "00":
        problems.append("dataCode %s: scope %d requires process unit 00" % (code, scope))
    if scope in (1, 2, 3) and equipment != "0000":
        problems.append("dataCode %s: scope %d requires equipment 0000" % (code, scope))
    return problems


def parse_wire_time(text):
    """'yyyy-MM-dd HH:mm:ss' (CST, naive) -> datetime; ValueError if malformed or not a real date."""
    if not isinstance(text, str) or not _TIME_RE.fullmatch(text):
        raise ValueError("not in the form yyyy-MM-dd HH:mm:ss")
    try:
        return datetime.strptime(text, WIRE_TIME)
    except ValueError:
        raise ValueError("not a real date and time") from None


def format_wire_time(dt):
    return dt.strftime(WIRE_TIME)


def cst_now(epoch_seconds):
    """Naive China Standard Time for a POSIX timestamp (the wire carries CST without a zone)."""
    return datetime.fromtimestamp(epoch_seconds, CST).replace(tzinfo=None)


def check_stat_alignment(stat_date, stat_type, period_s):
    """None if `stat_date` is the start of a `stat_type` period, else the problem."""
    if stat_type == 0:
        of_day = stat_date.hour * 3600 + stat_date.minute * 60 + stat_date.second
        if of_day % period_s:
            return "statDate %s is not the start of a %d s real-time period" % (
                format_wire_time(stat_date), period_s)
        return None
    ok = stat_date.time() == datetime.min.time()
    if stat_type >= 2:
        ok = ok and stat_date.day == 1
    if stat_type == 3:
        ok = ok and stat_date.month == 1
    if not ok:
        start = {1: "00:00:00", 2: "the 1st of a month 00:00:00", 3: "1 January 00:00:00"}[stat_type]
        return "statDate %s for a %s value must be %s" % (
            format_wire_time(stat_date), STAT_TYPE_NAMES[stat_type], start)
    return None


def decode_valid(value, encoding):
    """The record's validity flag as a bool; ValueError if `value` is not allowed by `encoding`."""
    if encoding == "json":
        if value is True or value is False:
            return value
        raise ValueError("valid must be JSON true or false")
    if encoding == "shandong":
        if value in ("0", "1") and isinstance(value, str):
            return value == "0"
        raise ValueError('valid must be the string "0" (valid) or "1" (invalid)')
    if encoding == "yunnan":
        if value in ("0", "1") and isinstance(value, str):
            return value == "1"
        raise ValueError('valid must be the string "1" (valid) or "0" (invalid)')
    raise ValueError("unknown valid encoding %r" % encoding)


def _is_int(value):
    return type(value) is int  # bool is an int subclass and must not pass


def _is_number(value):
    return (type(value) is int) or (type(value) is float and math.isfinite(value))


def check_record(rec, period_s=900, valid_encoding="json", now=None, future_tolerance_s=300):
    """All problems with one `data[]` record (empty list = valid).

    `now` is the server's naive CST time; None skips the "not in the future" checks.
    """
    if not isinstance(rec, dict):
        return ["record must be a JSON object"]
    problems = []
    for name in RECORD_FIELDS:
        if name not in rec:
            problems.append("missing field %s" % name)
    for name in sorted(set(rec) - set(RECORD_FIELDS)):
        problems.append("unexpected field %s" % name)

    scope = rec.get("scope")
    if "scope" in rec and not (_is_int(scope) and 1 <= scope <= 4):
        problems.append("scope must be an integer 1..4, got %s" % _show(scope))
        scope = None
    if "dataCode" in rec:
        problems.extend(check_data_code(rec["dataCode"], scope))
    if "dataValue" in rec and not _is_number(rec["dataValue"]):
        problems.append("dataValue must be a finite number, got %s" % _show(rec["dataValue"]))
    if "inputType" in rec and not (_is_int(rec["inputType"]) and 1 <= rec["inputType"] <= 5):
        problems.append("inputType must be an integer 1..5, got %s" % _show(rec["inputType"]))
    stat_type = rec.get("statType")
    if "statType" in rec and not (_is_int(stat_type) and 0 <= stat_type <= 3):
        problems.append("statType must be an integer 0..3, got %s" % _show(stat_type))
        stat_type = None
    if "valid" in rec:
        try:
            decode_valid(rec["valid"], valid_encoding)
        except ValueError as exc:
            problems.append("%s, got %s" % (exc, _show(rec["valid"])))

    limit = None if now is None else now + timedelta(seconds=future_tolerance_s)
    times = {}
    for name in ("statDate", "uploadDate"):
        if name not in rec:
            continue
        try:
            times[name] = parse_wire_time(rec[name])
        except ValueError as exc:
            problems.append("%s %s: %s" % (name, _show(rec[name]), exc))
            continue
        if limit is not None and times[name] > limit:
            problems.append("%s %s is in the future (server time %s CST)" % (
                name, rec[name], format_wire_time(now)))
    stat_date = times.get("statDate")
    if stat_date is not None and stat_type is not None:
        problem = check_stat_alignment(stat_date, stat_type, period_s)
        if problem:
            problems.append(problem)
    upload_date = times.get("uploadDate")
    if stat_date is not None and upload_date is not None and upload_date < stat_date:
        problems.append("uploadDate %s is before statDate %s" % (rec["uploadDate"], rec["statDate"]))
    return problems


def _show(value):
    text = repr(value) if isinstance(value, str) else _json_like(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_like(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return repr(value)
