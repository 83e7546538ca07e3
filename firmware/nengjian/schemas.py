"""JSON schemas of the site config and of meter profiles, as data.

The gateway checks configs against these with nengjian.schema; the host exports them
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

SITE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "nengjian/site.schema.json",
    "title": "Nengjian site config",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "enterprise", "buses", "meters", "items", "destinations"],
    "$defs": {"line": _LINE},
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
                    "line": {"$ref": "#/$defs/line"},
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
                },
            },
        },
        "store": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "flush_records": {"type": "integer", "minimum": 1, "maximum": 256},
                "flush_s": {"type": "integer", "minimum": 0, "maximum": 600},
                "segment_kb": {"type": "integer", "minimum": 4, "maximum": 1024},
                "segments": {"type": "integer", "minimum": 4, "maximum": 256},
            },
        },
    },
}

_POINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fc": {"enum": [1, 2, 3, 4]},
        "address": {"type": "integer", "minimum": 0, "maximum": 65535},
        "type": {"enum": ["u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64"]},
        "order": {"enum": ["ABCD", "CDAB", "BADC", "DCBA"]},
        "di": {"type": "string", "minLength": 4, "maxLength": 8},
        "decimals": {"type": "integer", "minimum": 0, "maximum": 6},
        "multiplier": {"type": "integer", "minimum": 1, "maximum": 100000},
        "unit": {"type": "string", "maxLength": 12},
        "kind": {"enum": ["cumulative", "instant"]},
        "rollover": {"type": "number"},
        "note": {"type": "string"},
    },
}

PROFILE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "nengjian/meter-profile.schema.json",
    "title": "Nengjian meter profile",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "protocol", "points"],
    "$defs": {"line": _LINE, "point": _POINT},
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 40},
        "title": {"type": "string"},
        "source": {"type": "string"},
        "protocol": {"enum": ["modbus-rtu", "dlt645-2007", "dlt645-1997", "cjt188"]},
        "line": {"$ref": "#/$defs/line"},
        "max_registers": {"type": "integer", "minimum": 1, "maximum": 125},
        "max_gap": {"type": "integer", "minimum": 0, "maximum": 125},
        "points": {"type": "object", "additionalProperties": {"$ref": "#/$defs/point"}},
    },
}
