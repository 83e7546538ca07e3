"""JSON schemas of the site config and of meter profiles, as data.

The gateway checks configs against these with nengjian.config.schema; the host exports them
(`nengjian schema`) and checks the same files with the full jsonschema package before provisioning.
"""

_LINE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "baud": {"enum": [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]},
        "bits": {"enum": [7, 8]},
        "parity": {"enum": ["N", "E", "O"]},
        "stop": {"enum": [1, 2]},
    },
}

_NAME = {"type": "string", "minLength": 1, "maxLength": 24}
# A file in the gateway's config directory (certificates, keys): a plain name, no path.
_FILE = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]*$"}

# Pulse input settings of one meter (profile defaults, site overrides). A pulse meter's `address`
# is the board input number as a digit string ("0" is input pulse_0).
_PULSE = {
    "per_unit": {"type": "integer", "minimum": 1, "maximum": 1000000},
    "decimals": {"type": "integer", "minimum": 0, "maximum": 9},
    "edge": {"enum": ["falling", "rising"]},
    "debounce_ms": {"type": "integer", "minimum": 0, "maximum": 2000},
}
_PULSE_SITE = {
    "type": "object",
    "additionalProperties": False,
    "properties": dict(_PULSE, **{
        "start": {"type": ["integer", "string"]},
        "persist_s": {"type": "integer", "minimum": 1, "maximum": 86400},
        "persist_pulses": {"type": "integer", "minimum": 1, "maximum": 1000000},
    }),
}

_DATE = {"type": "string", "pattern": "^[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]$"}  # CST calendar date


def _obj(properties):
    """A closed object: no keys but these (a typo in a site config is an error, not ignored)."""
    return {"type": "object", "additionalProperties": False, "properties": properties}


SITE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "nengjian/site.schema.json",
    "title": "Nengjian site config",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "enterprise", "buses", "meters", "items", "destinations"],
    "$defs": {"line": _LINE, "pulse_site": _PULSE_SITE},
    "properties": {
        "version": {"const": 1},
        "site": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "maxLength": 64}, "gateway": _NAME},
        },
        "enterprise": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code", "region"],
            "properties": {
                "code": {"type": "string", "minLength": 18, "maxLength": 18},
                "region": {"type": "string", "minLength": 6, "maxLength": 6},
                "name": {"type": "string", "maxLength": 64},
            },
        },
        "realtime_period_s": {"enum": [60, 300, 900, 1800, 3600]},
        "buses": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "port"],
                "properties": {"name": _NAME, "port": _NAME},
            },
        },
        "meters": {
            "type": "array",
            "minItems": 1,
            "maxItems": 64,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "bus", "profile", "address"],
                "properties": {
                    "id": _NAME,
                    "bus": _NAME,
                    "profile": {"type": "string", "minLength": 1, "maxLength": 40},
                    "address": {"type": ["integer", "string"]},
                    "interval_s": {"type": "integer", "minimum": 1, "maximum": 3600},
                    "timeout_ms": {"type": "integer", "minimum": 20, "maximum": 10000},
                    "retries": {"type": "integer", "minimum": 0, "maximum": 5},
                    "gap_ms": {"type": "integer", "minimum": 0, "maximum": 5000},
                    "fail_limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "backoff_s": {"type": "integer", "minimum": 1, "maximum": 86400},
                    # a point the meter refuses is asked again this often (nengjian.meters.poller)
                    "unsupported_retry_s": {"type": "integer", "minimum": 60, "maximum": 604800},
                    "line": {"$ref": "#/$defs/line"},
                    "preamble": {"type": "integer", "minimum": 0, "maximum": 4},
                    "ratio": {"type": "integer", "minimum": 1, "maximum": 1000000},
                    "pulse": {"$ref": "#/$defs/pulse_site"},
                    # a DL/T 645 meter whose profile has `memory`: refill gaps from its frozen data
                    # (default true), and set its clock by broadcast when it is off by more than
                    # this (nengjian.meters.refill, nengjian.meters.meterclock; 0: never set it);
                    # a Modbus meter whose profile has `clock` is set by FC 16 (nengjian.meters.modbusclock)
                    "refill": {"type": "boolean"},
                    "clock_max_drift_s": {"type": "integer", "minimum": 0, "maximum": 300},
                    # accuracy class as on the meter's plate (a crew's performance check allows class %
                    # of the reading plus one display digit) and its calibration (检定) record: an alarm
                    # from 30 days before `due` (nengjian.values.metrology)
                    "class": {"enum": ["0.2S", "0.5S", "0.2", "0.5", "1", "2", "3"]},
                    "calibration": {
                        "type": "object", "additionalProperties": False, "required": ["due"],
                        "properties": {"certificate": {"type": "string", "minLength": 1, "maxLength": 40},
                                       "date": _DATE, "due": _DATE},
                    },
                },
            },
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 256,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "meter", "point", "scope"],
                "properties": {
                    "code": {"type": "string", "minLength": 20, "maxLength": 20},
                    "meter": _NAME,
                    "point": {"type": "string", "minLength": 1, "maxLength": 32},
                    "scope": {"enum": [1, 2, 3, 4]},
                    "min": {"type": "number"},
                    "max": {"type": "number"},
                    # estimate missing boundary readings by interpolation (sent as invalid by default)
                    "estimate": {"type": "boolean"},
                    # largest value the counter shows before it wraps (overrides the profile point's)
                    "rollover": {"type": ["number", "string"]},
                },
            },
        },
        "destinations": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "profile", "url"],
                "properties": {
                    "name": _NAME,
                    "profile": {"enum": ["ndrc-json"]},
                    "url": {"type": "string", "minLength": 8, "maxLength": 200},
                    "batch": {"type": "integer", "minimum": 1, "maximum": 500},
                    "valid": {"enum": ["json", "shandong", "yunnan"]},
                    "timeout_ms": {"type": "integer", "minimum": 1000, "maximum": 120000},
                    # SPEC 3.2 security variant of the profile (nengjian.uplink.ndrc)
                    "security": {"enum": ["plain", "mtls", "sm4-ecb", "sm4-cbc-token"]},
                    # responseCode of a success: "0" (Shandong, Anhui) or 200 (Yunnan)
                    "success_code": {"type": ["string", "integer"], "maxLength": 8},
                    # TLS (https URLs): files in the config directory, PEM or DER (nengjian.net.tls)
                    "ca": _FILE,
                    "client_cert": _FILE,
                    "client_key": _FILE,
                    "insecure_self_signed": {"type": "boolean"},
                    # sm4-cbc-token: the PIN in the password block, the password's hex case, and
                    # where to get tokens when the register answer names no tokenURL
                    # writeOnly: a secret, never quoted in an error (nengjian.config.schema)
                    "pin": {"type": "string", "minLength": 1, "maxLength": 14, "writeOnly": True},
                    "password_upper": {"type": "boolean"},
                    "token_url": {"type": "string", "minLength": 8, "maxLength": 200},
                    # other hosts of this platform its register answer may name for the service URLs
                    # (centerDataURL ...); the destination's own host is always allowed (nengjian.uplink.ndrc)
                    "hosts": {"type": "array", "maxItems": 4,
                              "items": {"type": "string", "minLength": 1, "maxLength": 100,
                                        "pattern": "^[A-Za-z0-9][A-Za-z0-9.-]*$"}},
                    # the info channel (nengjian.uplink.centerinfo): our notices to centerInfoURL, the
                    # platform's tce coefficients from centerInfoDownloadURL; off unless the platform
                    # is known to take them (SPEC 3.1 does not define these bodies)
                    "notices": {"type": "array", "maxItems": 2, "items": {"enum": ["alarm", "heartbeat"]}},
                    "coefficients": {"type": "boolean"},
                    # day and month values wait for the daily uploadTime slot of the register answer
                    # (SPEC 3.1, Anhui); real-time values go as they fall due (nengjian.uplink.delivery)
                    "upload_slot": {"type": "boolean"},
                },
            },
        },
        "intervals": _obj({
            "daily": {"type": "boolean"},
            "monthly": {"type": "boolean"},
            "estimate_max_gap_s": {"type": "integer", "minimum": 60, "maximum": 86400},
            "estimated_valid": {"type": "boolean"},
        }),
        "tce": _obj({
            # energy code (4 digits) -> kgce per base unit (nengjian.values.tce)
            "coefficients": {"type": "object", "additionalProperties": {"type": ["number", "string"]}},
            # energy code -> unit of values no meter profile names (manual entries)
            "units": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 12}},
            # comprehensive-energy item (energy code 0000, whole plant) that carries the site total
            "item": {"type": "string", "minLength": 20, "maxLength": 20},
            "decimals": {"type": "integer", "minimum": 0, "maximum": 6},
            "outputs": {"enum": ["subtract", "ignore"]},
        }),
        # the platform's score kept on the gateway (nengjian.uplink.quality): on unless enabled is
        # false; a day or month is judged settle_s after its end
        "quality": _obj({
            "enabled": {"type": "boolean"},
            "settle_s": {"type": "integer", "minimum": 0, "maximum": 86400},
        }),
        "alarms": _obj({
            "warn_s": {"type": "integer", "minimum": 600, "maximum": 2592000},
            "alarm_s": {"type": "integer", "minimum": 600, "maximum": 7776000},
        }),
        "health": _obj({
            "heartbeat_s": {"type": "integer", "minimum": 60, "maximum": 86400},
            "healthy_s": {"type": "integer", "minimum": 30, "maximum": 86400},
            "crash_limit": {"type": "integer", "minimum": 1, "maximum": 50},
            # crash-loop safe mode still polls and stores (nengjian.app): a short hold costs no data
            "safe_hold_s": {"type": "integer", "minimum": 30, "maximum": 604800},
        }),
        # signed updates (nengjian.ota); `url`: the vendor's signed update channel file (channel.njch,
        # `nengjian ota publish`), read every `check_s` (nengjian.ota.fetch), with `ca` pinned for https; without it updates come over USB only;
        # `insecure`: offers and downloads over plain http are allowed (a warning at every start)
        "ota": _obj({
            "window_s": {"type": "integer", "minimum": 300, "maximum": 86400},
            "max_boots": {"type": "integer", "minimum": 1, "maximum": 10},
            "url": {"type": "string", "minLength": 8, "maxLength": 200},
            "check_s": {"type": "integer", "minimum": 60, "maximum": 604800},
            "ca": _FILE,
            "insecure": {"type": "boolean"},
        }),
        # the uplink's links (nengjian.net): 4G APN and SIM PIN, dial command, keepalive probe gap,
        # how often a less preferred link tries the better one again; on a board whose modem is
        # optional (esp32_eth) an APN here says the modem is fitted
        "network": _obj({
            "apn": {"type": "string", "minLength": 1, "maxLength": 63},
            "pin": {"type": "string", "pattern": "^[0-9][0-9][0-9][0-9][0-9]?[0-9]?[0-9]?[0-9]?$",
                    "writeOnly": True},
            "dial": {"enum": ["atd", "cgdata"]},
            "keepalive_s": {"type": "integer", "minimum": 60, "maximum": 3600},
            "failback_s": {"type": "integer", "minimum": 60, "maximum": 86400},
        }),
        # trusted time (nengjian.system.clock): a step larger than max_step_s needs two sources (NTP
        # servers, a platform's Date header over verified TLS) that agree within agree_s
        "clock": _obj({
            "max_step_s": {"type": "integer", "minimum": 10, "maximum": 86400},
            "agree_s": {"type": "integer", "minimum": 1, "maximum": 300},
            # NTP servers, "host" or "host:port", asked in turn (default: nengjian.system.clock.SERVERS);
            # a site network without internet names its own
            "ntp": {"type": "array", "minItems": 1, "maxItems": 4,
                    "items": {"type": "string", "minLength": 1, "maxLength": 64}},
            "sync_s": {"type": "integer", "minimum": 10, "maximum": 86400},  # between syncs (default 3600)
        }),
        # the read-only status page on the LAN link (nengjian.console.page): on by default where the
        # board has an Ethernet link, off on a 4G-only one; port: the board's (80 on the ESP32 boards)
        "status_page": _obj({
            "enabled": {"type": "boolean"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        }),
        "store": _obj({
            "flush_records": {"type": "integer", "minimum": 1, "maximum": 256},
            "flush_s": {"type": "integer", "minimum": 0, "maximum": 600},
            "segment_kb": {"type": "integer", "minimum": 4, "maximum": 1024},
            "segments": {"type": "integer", "minimum": 4, "maximum": 256},
        }),
    },
}

_PART = {
    "type": "object",
    "additionalProperties": False,
    "required": ["address", "type"],
    "properties": {
        "address": {"type": "integer", "minimum": 0, "maximum": 65535},
        "type": {"enum": ["u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64"]},
        "order": {"enum": ["ABCD", "CDAB", "BADC", "DCBA"]},
        "scale": {"type": "integer", "minimum": -9, "maximum": 9},
    },
}

# One quantity of a meter. Which keys apply depends on the profile's protocol:
#   modbus-rtu   fc, address, type (bit for FC 01/02), order, scale, plus
#   dlt645-*     di (8 hex digits for 2007, 4 for 1997); bytes/signed/byte_offset for DIs that
#                are not in the codec's table (blocks), decimals overrides the table's
#   cjt188       field (a CJ/T 188 901F reply field), unit converts within a unit family
#   pulse        field: total (start + pulses / per_unit) or pulses
# and for all: decimals, multiplier, ratio (times the site meter's CT x PT ratio), offset, unit.
# Value = (raw x 10**scale x multiplier [x ratio]) + offset, as an exact decimal with `decimals`
# places (integers: scale defaults to -decimals, so raw counts of the last digit stay exact).
_POINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fc": {"enum": [1, 2, 3, 4]},
        "address": {"type": "integer", "minimum": 0, "maximum": 65535},
        "type": {"enum": ["u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64", "bit"]},
        "order": {"enum": ["ABCD", "CDAB", "BADC", "DCBA"]},
        "scale": {"type": "integer", "minimum": -9, "maximum": 9},
        "plus": {"$ref": "#/$defs/part"},
        "di": {"type": "string", "minLength": 4, "maxLength": 8, "pattern": "^[0-9A-Fa-f]+$"},
        "bytes": {"type": "integer", "minimum": 1, "maximum": 16},
        "signed": {"type": "boolean"},
        "byte_offset": {"type": "integer", "minimum": 0, "maximum": 200},
        "field": {"enum": ["flow", "settle_flow", "heat", "settle_heat", "power", "flow_rate",
                           "supply_temp", "return_temp", "work_hours", "total", "pulses"]},
        "decimals": {"type": "integer", "minimum": 0, "maximum": 9},
        "multiplier": {"type": "integer", "minimum": 1, "maximum": 100000},
        "ratio": {"type": "boolean"},
        "offset": {"type": ["integer", "string"]},
        "unit": {"type": "string", "maxLength": 12},
        "kind": {"enum": ["cumulative", "instant"]},
        "rollover": {"type": "number"},
        "note": {"type": "string"},
    },
}

# A DL/T 645-2007 meter's own memory (nengjian.meters.refill): each DI is that of the most recent
# freeze; older ones count back in DI0.
_DI = {"type": "string", "minLength": 8, "maxLength": 8, "pattern": "^[0-9A-Fa-f]+$"}
# The daily freeze is taken at 00:00 by the meter's clock, whatever else it is set to: only the hourly
# one has an interval (a meter set to freeze every 15 or 30 minutes), so `daily.interval_s` is refused
# as an unknown field rather than taken and never used.
_DEPTH = {"type": "integer", "minimum": 1, "maximum": 255}
_DAILY = _obj({"time_di": _DI, "energy_di": _DI, "depth": _DEPTH})
_HOURLY = _obj({"time_di": _DI, "energy_di": _DI, "depth": _DEPTH, "interval_s": {"enum": [900, 1800, 3600]}})
_MEMORY = _obj({
    "source": {"type": "string"}, "note": {"type": "string"},
    "point": {"type": "string", "minLength": 1, "maxLength": 32},
    "hourly": _HOURLY, "daily": _DAILY,
    "settlement": _obj({"energy_di": _DI, "depth": {"type": "integer", "minimum": 1, "maximum": 12}}),
    "clock": _obj({"date_di": _DI, "time_di": _DI}),
})
# A Modbus meter's clock registers (nengjian.meters.modbusclock): its local time, taken as CST, at
# `register` (FC `fc`, default 3) in `format`; set with FC 16 only where `writable`.
_CLOCK = _obj({
    "source": {"type": "string"}, "note": {"type": "string"},
    "fc": {"enum": [3, 4]},
    "register": {"type": "integer", "minimum": 0, "maximum": 65529},
    "format": {"enum": ["u16x6", "bcd-yymmddhhmmss"]},
    "writable": {"type": "boolean"},
})

PROFILE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "nengjian/meter-profile.schema.json",
    "title": "Nengjian meter profile",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "protocol", "points"],
    "$defs": {"line": _LINE, "point": _POINT, "part": _PART, "memory": _MEMORY, "clock": _CLOCK},
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 40},
        "title": {"type": "string"},
        "source": {"type": "string"},
        "note": {"type": "string"},
        "protocol": {"enum": ["modbus-rtu", "dlt645-2007", "dlt645-1997", "cjt188", "pulse"]},
        "line": {"$ref": "#/$defs/line"},
        "max_registers": {"type": "integer", "minimum": 1, "maximum": 125},
        "max_gap": {"type": "integer", "minimum": 0, "maximum": 125},
        "preamble": {"type": "integer", "minimum": 0, "maximum": 4},
        "meter_type": {"enum": ["cold_water", "hot_water", "drinking_water", "reclaimed_water",
                                "heat", "cooling", "gas"]},
        "di_order": {"enum": ["low_first", "high_first"]},
        "pulse": {"type": "object", "additionalProperties": False, "properties": _PULSE},
        "points": {"type": "object", "additionalProperties": {"$ref": "#/$defs/point"}},
        "memory": {"$ref": "#/$defs/memory"},
        "clock": {"$ref": "#/$defs/clock"},
    },
}
