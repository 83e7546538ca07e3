"""Site config checks: the schema, then what a schema cannot say (USCC check character, scope rule
of data codes, profile points, counters, destination security, tce coefficients), and defaults.

Loaded by nengjian.config.check() and dropped after it (config.release_validators).
"""

from nengjian.config.errors import ConfigError
from nengjian.core import identity

DEFAULTS_METER = {"interval_s": 60, "timeout_ms": 500, "retries": 1, "gap_ms": 0, "fail_limit": 3,
                  "backoff_s": 300}
DEFAULTS_DEST = {"batch": 50, "valid": "json", "timeout_ms": 15000, "security": "plain", "success_code": "0",
                 "insecure_self_signed": False}
DEFAULTS_STORE = {"flush_records": 64, "flush_s": 5, "segment_kb": 64, "segments": 56}


def check(cfg, profile_loader):
    from nengjian.config import schema, schemas

    try:
        schema.validate(cfg, schemas.SITE)
    except schema.SchemaError as e:
        raise ConfigError(str(e))
    problem = identity.uscc_problem(cfg["enterprise"]["code"])
    if problem:
        raise ConfigError("enterprise.code: " + problem)
    if not cfg["enterprise"]["region"].isdigit():
        raise ConfigError("enterprise.region: must be the 6-digit administrative code")
    cfg.setdefault("realtime_period_s", 900)
    store = cfg.setdefault("store", {})
    for k, v in DEFAULTS_STORE.items():
        store.setdefault(k, v)

    buses = {}
    for i, b in enumerate(cfg["buses"]):
        if b["name"] in buses:
            raise ConfigError("buses[%d].name: %r used twice" % (i, b["name"]))
        buses[b["name"]] = b

    meters = {}
    profiles = {}
    for i, m in enumerate(cfg["meters"]):
        where = "meters[%d]" % i
        if m["id"] in meters:
            raise ConfigError("%s.id: %r used twice" % (where, m["id"]))
        if m["bus"] not in buses:
            raise ConfigError("%s.bus: no bus named %r" % (where, m["bus"]))
        for k, v in DEFAULTS_METER.items():
            m.setdefault(k, v)
        if m["profile"] not in profiles:
            try:
                profiles[m["profile"]] = profile_loader(m["profile"])
            except (OSError, ValueError) as e:
                raise ConfigError("%s.profile: %s" % (where, e))
        prof = profiles[m["profile"]]
        if prof["protocol"] == "modbus-rtu":
            if not isinstance(m["address"], int) or not 1 <= m["address"] <= 247:
                raise ConfigError("%s.address: Modbus unit id must be 1..247" % where)
        elif not isinstance(m["address"], str) or not m["address"].isdigit():
            raise ConfigError("%s.address: %s address must be a string of digits" % (where, prof["protocol"]))
        meters[m["id"]] = m

    codes = {}
    for i, it in enumerate(cfg["items"]):
        where = "items[%d]" % i
        problem = identity.data_code_problem(it["code"], it["scope"])
        if problem:
            raise ConfigError("%s.code: %s" % (where, problem))
        if it["code"] in codes:
            raise ConfigError("%s.code: %s mapped twice" % (where, it["code"]))
        codes[it["code"]] = it
        m = meters.get(it["meter"])
        if m is None:
            raise ConfigError("%s.meter: no meter named %r" % (where, it["meter"]))
        if it["point"] not in profiles[m["profile"]]["points"]:
            raise ConfigError("%s.point: profile %s has no point %r" % (where, m["profile"], it["point"]))
        if "min" in it and "max" in it and it["min"] > it["max"]:
            raise ConfigError("%s: min is above max" % where)
        _check_item_counter(it, profiles[m["profile"]]["points"][it["point"]], where)

    names = {}
    for i, d in enumerate(cfg["destinations"]):
        if d["name"] in names:
            raise ConfigError("destinations[%d].name: %r used twice" % (i, d["name"]))
        if not (d["url"].startswith("http://") or d["url"].startswith("https://")):
            raise ConfigError("destinations[%d].url: must start with http:// or https://" % i)
        for k, v in DEFAULTS_DEST.items():
            d.setdefault(k, v)
        _check_destination_security(d, "destinations[%d]" % i)
        if d.get("coefficients") and not cfg.get("tce"):
            raise ConfigError("destinations[%d].coefficients: the site has no tce section to use them in" % i)
        names[d["name"]] = d
    _check_operations(cfg, codes, profiles)
    url = cfg["ota"].get("url")
    if url is not None:
        if not (url.startswith("http://") or url.startswith("https://")):
            raise ConfigError("ota.url: must start with http:// or https://")
        if url.startswith("https://") and not cfg["ota"].get("ca"):
            raise ConfigError("ota.ca: an https update server needs its CA certificate pinned")
    cfg["_profiles"] = profiles
    return cfg


def _check_destination_security(d, where):
    """TLS and security-variant options that only make sense together (SPEC 3.2)."""
    https = d["url"].startswith("https://")
    sec = d["security"]
    if not https:
        for k in ("ca", "client_cert", "client_key"):
            if k in d:
                raise ConfigError("%s.%s: only for https:// URLs" % (where, k))
        if d["insecure_self_signed"]:
            raise ConfigError("%s.insecure_self_signed: only for https:// URLs" % where)
        if sec == "mtls":
            raise ConfigError("%s.security: mtls needs an https:// URL" % where)
    elif d["insecure_self_signed"]:
        if "ca" in d:
            raise ConfigError("%s.insecure_self_signed: a pinned ca is verified; drop insecure_self_signed" % where)
    elif "ca" not in d:
        raise ConfigError("%s.ca: an https:// destination needs the platform's CA certificate (or its self-signed "
                          "certificate), a PEM or DER file in the config directory" % where)
    if sec == "mtls":
        for k in ("client_cert", "client_key"):
            if k not in d:
                raise ConfigError("%s.%s: required by security mtls" % (where, k))
    else:
        for k in ("client_cert", "client_key"):
            if k in d:
                raise ConfigError("%s.%s: only used with security mtls" % (where, k))
    if sec == "sm4-cbc-token":
        if "pin" not in d:
            raise ConfigError("%s.pin: required by security sm4-cbc-token" % where)
        for ch in d["pin"]:
            if not 32 < ord(ch) < 127:
                raise ConfigError("%s.pin: printable ASCII only" % where)
    else:
        for k in ("pin", "password_upper", "token_url"):
            if k in d:
                raise ConfigError("%s.%s: only used with security sm4-cbc-token" % (where, k))
    if "token_url" in d and not (d["token_url"].startswith("http://") or d["token_url"].startswith("https://")):
        raise ConfigError("%s.token_url: must start with http:// or https://" % where)


DEFAULTS_INTERVALS = {"daily": True, "monthly": True, "estimate_max_gap_s": 7200, "estimated_valid": False}
DEFAULTS_ALARMS = {"warn_s": 86400, "alarm_s": 259200}
DEFAULTS_HEALTH = {"heartbeat_s": 900, "healthy_s": 600, "crash_limit": 5, "safe_hold_s": 21600}
DEFAULTS_OTA = {"window_s": 1800, "max_boots": 2, "check_s": 86400}
DEFAULTS_NETWORK = {"dial": "atd", "keepalive_s": 300, "failback_s": 900}
DEFAULTS_CLOCK = {"max_step_s": 300, "agree_s": 10}


def _check_item_counter(it, point, where):
    """The counter modulus an item's values wrap at (item override, else the profile point's)."""
    if it.get("estimate") and point.get("kind") == "instant":
        raise ConfigError("%s.estimate: point %s is an instant value, not a cumulative counter" % (where, it["point"]))
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
        raise ConfigError("%s.rollover: must be the largest value the counter shows, above 0 (%r)" % (where, roll))
    it["_rollover"] = roll


def _check_operations(cfg, codes, profiles):
    """Defaults and cross-field checks of intervals, tce, alarms, health and ota (all optional)."""
    for name, defaults in (("intervals", DEFAULTS_INTERVALS), ("alarms", DEFAULTS_ALARMS),
                           ("health", DEFAULTS_HEALTH), ("ota", DEFAULTS_OTA),
                           ("network", DEFAULTS_NETWORK), ("clock", DEFAULTS_CLOCK)):
        sec = cfg.setdefault(name, {})
        for k, v in defaults.items():
            sec.setdefault(k, v)
    if cfg["alarms"]["warn_s"] >= cfg["alarms"]["alarm_s"]:
        raise ConfigError("alarms.warn_s: the warning must come before the alarm (alarm_s)")
    t = cfg.get("tce")
    if not t:
        return
    from nengjian.values import tce  # only for sites that configure it: 256 KB heaps are tight in safe mode

    for energy, v in (t.get("coefficients") or {}).items():
        if len(energy) != 4 or not energy.isdigit():
            raise ConfigError("tce.coefficients.%s: keys are 4-digit energy codes (3300 electricity ...)" % energy)
        try:
            ok = tce.dec(v).mantissa > 0
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError("tce.coefficients.%s: kgce per unit, a number above 0 (%r)" % (energy, v))
    for energy, unit in (t.get("units") or {}).items():
        if len(energy) != 4 or not energy.isdigit():
            raise ConfigError("tce.units.%s: keys are 4-digit energy codes" % energy)
        base = tce.DEFAULTS.get(energy, (None, None))[1]
        conv = tce.UNITS.get(unit)
        if base and (conv is None or conv[0] != base):
            raise ConfigError("tce.units.%s: %r does not convert to %s" % (energy, unit, base))
    item = t.get("item")
    if item is not None:
        problem = identity.data_code_problem(item, 1)
        if problem:
            raise ConfigError("tce.item: %s" % problem)
        if item in codes:
            raise ConfigError("tce.item: %s is also a metered item" % item)
        if identity.energy_code(item) != "0000":
            raise ConfigError("tce.item: the comprehensive-energy item has energy code 0000, not %s"
                              % identity.energy_code(item))
    meters = dict((m["id"], m) for m in cfg["meters"])
    counted = tce.Tce({"tce": {"outputs": t.get("outputs", "subtract"), "item": item}})
    for i, it in enumerate(cfg["items"]):
        energy = identity.energy_code(it["code"])
        base = tce.DEFAULTS.get(energy, (None, None))[1]
        if base is None or not counted.sign(it["code"], it["scope"]):
            continue
        unit = profiles[meters[it["meter"]]["profile"]]["points"][it["point"]].get("unit")
        if unit and (tce.UNITS.get(unit) or (None,))[0] != base:
            raise ConfigError("items[%d]: unit %r of point %s does not convert to %s for the tce of energy %s"
                              % (i, unit, it["point"], base, energy))
