"""Site config checks: the schema, then what a schema cannot say (USCC check character, scope rule
of data codes, profile points, counters, destination security, tce coefficients), and defaults.

Every problem is named, not only the first: the checks add "path: what" to a Problems collector
(at most LIMIT texts, the rest only counted, so a config of hundreds of faults costs a few KB), and
check() raises one ConfigError carrying them all. Each problem also has a short stable code and the
arguments of its English text (ConfigError.codes: code, args, code, args ... beside the items), from
which the laptop says it in the installer's language (`cfg.CODE` in nengjian_host.common.messages):
the gateway keeps no catalogue, and a test finds every code used here in that one. The cross-field
checks read the fields the schema guarantees, so a part of the config the schema refused (meters[2],
enterprise) is left to its schema problem rather than named twice.

Loaded by nengjian.config.check() and dropped after it (config.release_validators).
"""

from nengjian.config.errors import ConfigError
from nengjian.core import identity

LIMIT = 50  # problems kept in full; an installer fixes these first, and the gateway's heap stays small
SHOWN = 3  # problems the error's message names: the safe-mode reason, the log line

DEFAULTS_METER = {"interval_s": 60, "timeout_ms": 500, "retries": 1, "gap_ms": 0, "fail_limit": 3,
                  "backoff_s": 300}
DEFAULTS_DEST = {"batch": 50, "valid": "json", "timeout_ms": 15000, "security": "plain", "success_code": "0",
                 "insecure_self_signed": False}
DEFAULTS_STORE = {"flush_records": 64, "flush_s": 5, "segment_kb": 64, "segments": 56}


class Problems:
    """The problems of one config, in the order found: `items` ("path: what", at most `limit`), `codes`
    (for each item its code and the arguments of its English, flat: two slots and no tuple of their own
    per problem, the path is the item's), `more` (how many past those), `refused` (the parts the schema
    refused: "meters[2]", "enterprise")."""

    def __init__(self, limit=LIMIT):
        self.items = []
        self.codes = []
        self.more = 0
        self.limit = limit
        self.refused = {}
        self.schema = False  # while the schema is checked, a problem also refuses its part

    def add(self, path, code, message, args=()):
        """A problem at `path` whose English is `message % args`; while the schema is checked it also
        refuses the part `path` is in."""
        if self.schema:
            part = _part(path)
            if part not in self.refused and len(self.refused) < self.limit:
                self.refused[part] = True
        self.put(path, code, message, args)

    def put(self, path, code, message, args=()):
        """A problem that leaves its part to the other checks (a cross-field one)."""
        if len(self.items) < self.limit:
            self.items.append("%s: %s" % (path, message % args if args else message))
            self.codes.append(code)
            self.codes.append(args)
        else:
            self.more += 1

    def issue(self, path, issue):
        """An identity.*_problem result (code, English, args)."""
        self.put(path, issue[0], issue[1], issue[2])

    def ok(self, part):
        """True when the schema passed `part` (so its cross-field checks can read its fields)."""
        return part not in self.refused and "(top)" not in self.refused


def _part(path):
    """The top-level field or the list element a path is in: "meters[2].address" -> "meters[2]"."""
    dot = path.find(".")
    return path if dot < 0 else path[:dot]


def check(cfg, profile_loader, limit=LIMIT):
    """The config with defaults filled in; raises one ConfigError naming every problem (up to `limit`)."""
    from nengjian.config import schema, schemas

    found = Problems(limit)
    found.schema = True
    schema.validate(cfg, schemas.SITE, problems=found)
    found.schema = False
    schema_problems = len(found.items)
    if found.ok("(top)"):
        try:
            _check_fields(cfg, profile_loader, found)
        except (KeyError, TypeError, AttributeError, IndexError):
            # a field the schema refused was read after all: its schema problem already names it
            if not schema_problems:
                raise
    if found.items:
        raise from_problems(found.items, found.more, schema_problems, found.codes)
    return cfg


def from_problems(problems, more=0, schema_problems=0, codes=None):
    """The ConfigError for a list of problems: its message names the first SHOWN and counts the rest;
    it carries `problems` (all of them), `codes` (Problems.codes, or None), `more` (how many past
    those) and `schema_problems` (how many of `problems`, the first ones, the schema found). Here, not
    in config.errors, which every gateway keeps loaded."""
    rest = len(problems) - SHOWN + more
    text = "; ".join(problems[:SHOWN])
    if rest > 0:
        text = "%s (and %d more)" % (text, rest)
    e = ConfigError(text)
    # on the instance, not in ConfigError's __init__: config.errors stays loaded on every gateway
    e.problems = problems  # type: ignore[attr-defined]
    e.codes = codes  # type: ignore[attr-defined]
    e.more = more  # type: ignore[attr-defined]
    e.schema_problems = schema_problems  # type: ignore[attr-defined]
    return e


def _check_fields(cfg, profile_loader, found):
    ent = cfg["enterprise"]
    if found.ok("enterprise"):
        issue = identity.uscc_problem(ent["code"])
        if issue:
            found.issue("enterprise.code", issue)
        if not ent["region"].isdigit():
            found.put("enterprise.region", "region", "must be the 6-digit administrative code")
    cfg.setdefault("realtime_period_s", 900)
    store = cfg.setdefault("store", {})
    for k, v in DEFAULTS_STORE.items():
        store.setdefault(k, v)

    buses = {}
    for i, b in enumerate(cfg["buses"]):
        if not found.ok("buses[%d]" % i):
            continue
        if b["name"] in buses:
            found.put("buses[%d].name" % i, "twice", "%r used twice", (b["name"],))
        buses[b["name"]] = b

    meters = {}
    profiles = {}
    for i, m in enumerate(cfg["meters"]):
        where = "meters[%d]" % i
        if not found.ok(where):
            if isinstance(m, dict) and isinstance(m.get("id"), str):
                meters[m["id"]] = None  # known, so its items are not told it is missing
            continue
        if m["id"] in meters:
            found.put(where + ".id", "twice", "%r used twice", (m["id"],))
        meters[m["id"]] = m
        if m["bus"] not in buses and found.ok("buses"):
            found.put(where + ".bus", "no_bus", "no bus named %r", (m["bus"],))
        for k, v in DEFAULTS_METER.items():
            m.setdefault(k, v)
        if m["profile"] not in profiles:
            try:
                profiles[m["profile"]] = profile_loader(m["profile"])
            except (OSError, ValueError) as e:
                profiles[m["profile"]] = None
                found.put(where + ".profile", "profile", "%s", (str(e),))
        prof = profiles[m["profile"]]
        if prof is None:
            meters[m["id"]] = None
            continue
        if prof["protocol"] == "modbus-rtu":
            if not isinstance(m["address"], int) or not 1 <= m["address"] <= 247:
                found.put(where + ".address", "modbus_address", "Modbus unit id must be 1..247")
        elif not isinstance(m["address"], str) or not m["address"].isdigit():
            found.put(where + ".address", "digits_address", "%s address must be a string of digits",
                      (prof["protocol"],))

    codes = {}
    for i, it in enumerate(cfg["items"]):
        where = "items[%d]" % i
        if not found.ok(where):
            continue
        issue = identity.data_code_problem(it["code"], it["scope"])
        if issue:
            found.issue(where + ".code", issue)
        if it["code"] in codes:
            found.put(where + ".code", "code_twice", "%s mapped twice", (it["code"],))
        codes[it["code"]] = it
        if it["meter"] not in meters:
            if found.ok("meters"):
                found.put(where + ".meter", "no_meter", "no meter named %r", (it["meter"],))
            continue
        m = meters[it["meter"]]
        if m is None:  # the meter's own problem is named
            continue
        points = profiles[m["profile"]]["points"]
        if it["point"] not in points:
            found.put(where + ".point", "no_point", "profile %s has no point %r", (m["profile"], it["point"]))
            continue
        if "min" in it and "max" in it and it["min"] > it["max"]:
            found.put(where, "min_max", "min is above max")
        _check_item_counter(it, points[it["point"]], where, found)

    names = {}
    for i, d in enumerate(cfg["destinations"]):
        where = "destinations[%d]" % i
        if not found.ok(where):
            continue
        if d["name"] in names:
            found.put(where + ".name", "twice", "%r used twice", (d["name"],))
        names[d["name"]] = d
        if not (d["url"].startswith("http://") or d["url"].startswith("https://")):
            found.put(where + ".url", "url", "must start with http:// or https://")
            continue
        for k, v in DEFAULTS_DEST.items():
            d.setdefault(k, v)
        _check_destination_security(d, where, found)
        if d.get("coefficients") and not cfg.get("tce"):
            found.put(where + ".coefficients", "no_tce", "the site has no tce section to use them in")
    _check_operations(cfg, codes, profiles, meters, found)
    if found.ok("ota"):
        url = cfg["ota"].get("url")
        if url is not None:
            if not (url.startswith("http://") or url.startswith("https://")):
                found.put("ota.url", "url", "must start with http:// or https://")
            elif url.startswith("https://") and not cfg["ota"].get("ca"):
                found.put("ota.ca", "ota_ca", "an https update server needs its CA certificate pinned")
    cfg["_profiles"] = profiles


def _check_destination_security(d, where, found):
    """TLS and security-variant options that only make sense together (SPEC 3.2)."""
    https = d["url"].startswith("https://")
    sec = d["security"]
    if not https:
        for k in ("ca", "client_cert", "client_key"):
            if k in d:
                found.put(where + "." + k, "https_only", "only for https:// URLs")
                return
        if d["insecure_self_signed"]:
            found.put(where + ".insecure_self_signed", "https_only", "only for https:// URLs")
            return
        if sec == "mtls":
            found.put(where + ".security", "mtls_https", "mtls needs an https:// URL")
            return
    elif d["insecure_self_signed"]:
        if "ca" in d:
            found.put(where + ".insecure_self_signed", "pinned_ca",
                      "a pinned ca is verified; drop insecure_self_signed")
            return
    elif "ca" not in d:
        found.put(where + ".ca", "https_ca", "an https:// destination needs the platform's CA certificate (or its "
                  "self-signed certificate), a PEM or DER file in the config directory")
        return
    if sec == "mtls":
        for k in ("client_cert", "client_key"):
            if k not in d:
                found.put(where + "." + k, "mtls_needs", "required by security mtls")
                return
    else:
        for k in ("client_cert", "client_key"):
            if k in d:
                found.put(where + "." + k, "mtls_only", "only used with security mtls")
                return
    if sec == "sm4-cbc-token":
        if "pin" not in d:
            found.put(where + ".pin", "sm4_needs", "required by security sm4-cbc-token")
            return
        for ch in d["pin"]:
            if not 32 < ord(ch) < 127:
                found.put(where + ".pin", "pin_ascii", "printable ASCII only")
                return
    else:
        for k in ("pin", "password_upper", "token_url"):
            if k in d:
                found.put(where + "." + k, "sm4_only", "only used with security sm4-cbc-token")
                return
    if "token_url" in d and not (d["token_url"].startswith("http://") or d["token_url"].startswith("https://")):
        found.put(where + ".token_url", "url", "must start with http:// or https://")


DEFAULTS_INTERVALS = {"daily": True, "monthly": True, "estimate_max_gap_s": 7200, "estimated_valid": False}
DEFAULTS_ALARMS = {"warn_s": 86400, "alarm_s": 259200}
DEFAULTS_HEALTH = {"heartbeat_s": 900, "healthy_s": 600, "crash_limit": 5, "safe_hold_s": 21600}
DEFAULTS_OTA = {"window_s": 1800, "max_boots": 2, "check_s": 86400}
DEFAULTS_NETWORK = {"dial": "atd", "keepalive_s": 300, "failback_s": 900}
DEFAULTS_CLOCK = {"max_step_s": 300, "agree_s": 10}


def _check_item_counter(it, point, where, found):
    """The counter modulus an item's values wrap at (item override, else the profile point's)."""
    if it.get("estimate") and point.get("kind") == "instant":
        found.put(where + ".estimate", "estimate_instant", "point %s is an instant value, not a cumulative counter",
                  (it["point"],))
        return
    roll = it.get("rollover", point.get("rollover"))
    if roll is None:
        return
    if isinstance(roll, str):
        from nengjian.values import manual

        try:
            ok = manual.parse_decimal(roll).mantissa > 0
        except ValueError:
            ok = False
    else:
        ok = roll > 0
    if not ok:
        found.put(where + ".rollover", "rollover", "must be the largest value the counter shows, above 0 (%r)", (roll,))
        return
    it["_rollover"] = roll


def _check_operations(cfg, codes, profiles, meters, found):
    """Defaults and cross-field checks of intervals, tce, alarms, health and ota (all optional)."""
    for name, defaults in (("intervals", DEFAULTS_INTERVALS), ("alarms", DEFAULTS_ALARMS),
                           ("health", DEFAULTS_HEALTH), ("ota", DEFAULTS_OTA),
                           ("network", DEFAULTS_NETWORK), ("clock", DEFAULTS_CLOCK)):
        sec = cfg.setdefault(name, {})
        for k, v in defaults.items():
            sec.setdefault(k, v)
    if found.ok("alarms") and cfg["alarms"]["warn_s"] >= cfg["alarms"]["alarm_s"]:
        found.put("alarms.warn_s", "warn_first", "the warning must come before the alarm (alarm_s)")
    t = cfg.get("tce")
    if not t or not found.ok("tce"):
        return
    from nengjian.values import tce  # only for sites that configure it: 256 KB heaps are tight in safe mode

    for energy, v in (t.get("coefficients") or {}).items():
        if len(energy) != 4 or not energy.isdigit():
            found.put("tce.coefficients." + energy, "energy_key", "keys are 4-digit energy codes (3300 electricity ...)")
            continue
        try:
            ok = tce.dec(v).mantissa > 0
        except ValueError:
            ok = False
        if not ok:
            found.put("tce.coefficients." + energy, "coefficient", "kgce per unit, a number above 0 (%r)", (v,))
    for energy, unit in (t.get("units") or {}).items():
        if len(energy) != 4 or not energy.isdigit():
            found.put("tce.units." + energy, "unit_key", "keys are 4-digit energy codes")
            continue
        base = tce.DEFAULTS.get(energy, (None, None))[1]
        conv = tce.UNITS.get(unit)
        if base and (conv is None or conv[0] != base):
            found.put("tce.units." + energy, "unit_base", "%r does not convert to %s", (unit, base))
    item = t.get("item")
    if item is not None:
        issue = identity.data_code_problem(item, 1)
        if issue:
            found.issue("tce.item", issue)
        elif item in codes:
            found.put("tce.item", "tce_metered", "%s is also a metered item", (item,))
        elif identity.energy_code(item) != "0000":
            found.put("tce.item", "tce_energy", "the comprehensive-energy item has energy code 0000, not %s",
                      (identity.energy_code(item),))
    counted = tce.Tce({"tce": {"outputs": t.get("outputs", "subtract"), "item": item}})
    for i, it in enumerate(cfg["items"]):
        m = meters.get(it["meter"]) if found.ok("items[%d]" % i) else None
        if m is None or it["point"] not in profiles[m["profile"]]["points"]:
            continue  # its own problem is named
        energy = identity.energy_code(it["code"])
        base = tce.DEFAULTS.get(energy, (None, None))[1]
        if base is None or not counted.sign(it["code"], it["scope"]):
            continue
        unit = profiles[m["profile"]]["points"][it["point"]].get("unit")
        if unit and (tce.UNITS.get(unit) or (None,))[0] != base:
            found.put("items[%d]" % i, "tce_unit", "unit %r of point %s does not convert to %s for the tce of energy %s",
                      (unit, it["point"], base, energy))
