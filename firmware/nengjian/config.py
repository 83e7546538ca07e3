"""Site config: read /config/site.json, check it against the schema and across fields.

A config error names the field and what is wrong so an installer can fix it from the console;
the app then starts in safe mode instead of crash-looping. Loading a config never touches stored
data (see nengjian.store).
"""

import json

from nengjian import identity, schema, schemas

DEFAULTS_METER = {"interval_s": 60, "timeout_ms": 500, "retries": 1, "gap_ms": 0, "fail_limit": 3,
                  "backoff_s": 300}
DEFAULTS_DEST = {"batch": 50, "valid": "json", "timeout_ms": 15000}
DEFAULTS_STORE = {"flush_records": 16, "flush_s": 5, "segment_kb": 64, "segments": 48}


class ConfigError(ValueError):
    pass


def load(path, profile_loader):
    """Parsed, checked config with defaults filled in. Raises ConfigError naming the bad field."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("%s: cannot read (%s)" % (path, e))
    try:
        cfg = json.loads(text)
    except ValueError as e:
        raise ConfigError("%s: not valid JSON (%s)" % (path, e))
    return check(cfg, profile_loader)


def check(cfg, profile_loader):
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

    names = {}
    for i, d in enumerate(cfg["destinations"]):
        if d["name"] in names:
            raise ConfigError("destinations[%d].name: %r used twice" % (i, d["name"]))
        if not (d["url"].startswith("http://") or d["url"].startswith("https://")):
            raise ConfigError("destinations[%d].url: must start with http:// or https://" % i)
        for k, v in DEFAULTS_DEST.items():
            d.setdefault(k, v)
        names[d["name"]] = d
    cfg["_profiles"] = profiles
    return cfg
