"""A small JSON-Schema (draft 2020-12 subset) validator for configs and meter profiles on the gateway.

Supports: type, enum, const, required, properties, additionalProperties (bool or schema),
items, minItems, maxItems, minimum, maximum, minLength, maxLength, pattern, $ref to #/$defs/NAME.
The host checks the same schema files with the full `jsonschema` package; tests keep the two in
agreement. Errors name the field path, e.g. `meters[1].address: 300 is more than 247`; the value of a
field marked `writeOnly` (a PIN) is never quoted, since the error goes to the log, the console status
and the ledger. Given a `problems` collector (validate.Problems: `add(path, message)`), it names every
field that breaks the schema instead of raising at the first; below a value of the wrong type nothing
more is checked (what is inside it means nothing then). Each problem has a short stable code (the
third argument of `_bad`: "type", "max" ...) and the parameters of its English text, so the laptop can
say it in another language (`cfg.CODE` in nengjian_host.common.messages) without a catalogue here.
"""

try:
    import re
except ImportError:  # pragma: no cover
    re = None


class SchemaError(ValueError):
    def __init__(self, path, msg):
        super().__init__("%s: %s" % (path or "(top)", msg))
        self.path = path


_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
}


def _type_ok(value, t):
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "null":
        return value is None
    return isinstance(value, _TYPES[t])


SECRET = "the value (secret, not shown)"  # the laptop says it in the reader's language


def _shown(value, schema):
    return SECRET if schema.get("writeOnly") else repr(value)


def _bad(problems, path, code, msg, args=()):
    """`msg % args` is the English; `code` and `args` what the laptop says it from in another language."""
    if problems is None:
        raise SchemaError(path, msg % args if args else msg)
    problems.add(path or "(top)", code, msg, args)


def validate(value, schema, root=None, path="", problems=None):
    """Raise SchemaError naming the first field that breaks the schema; with `problems`, add each
    field that does to it and return."""
    if root is None:
        root = schema
    ref = schema.get("$ref")
    if ref:
        name = ref.split("/")[-1]
        schema = root["$defs"][name]
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_type_ok(value, x) for x in types):
            _bad(problems, path, "type", "expected %s, got %s", (" or ".join(types), _shown(value, schema)))
            return
    if "enum" in schema and value not in schema["enum"]:
        _bad(problems, path, "enum", "%s is not one of %s", (_shown(value, schema),
                                                                 ", ".join(repr(x) for x in schema["enum"])))
    if "const" in schema and value != schema["const"]:
        _bad(problems, path, "const", "must be %r", (schema["const"],))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            _bad(problems, path, "min", "%s is less than %r", (_shown(value, schema), schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            _bad(problems, path, "max", "%s is more than %r", (_shown(value, schema), schema["maximum"]))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            _bad(problems, path, "minlen", "%s is shorter than %d", (_shown(value, schema), schema["minLength"]))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            _bad(problems, path, "maxlen", "%s is longer than %d", (_shown(value, schema), schema["maxLength"]))
        pat = schema.get("pattern")
        if pat and re is not None and not re.match(pat, value):
            _bad(problems, path, "pattern", "%s does not match %s", (_shown(value, schema), pat))
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                _bad(problems, _join(path, key), "required", "required field missing")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key in value:
            sub = props.get(key)
            if sub is not None:
                validate(value[key], sub, root, _join(path, key), problems)
            elif extra is False:
                _bad(problems, _join(path, key), "unknown", "unknown field")
            elif isinstance(extra, dict):
                validate(value[key], extra, root, _join(path, key), problems)
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            _bad(problems, path, "minitems", "needs at least %d item(s)", (schema["minItems"],))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            _bad(problems, path, "maxitems", "allows at most %d item(s)", (schema["maxItems"],))
        items = schema.get("items")
        if items:
            for i, v in enumerate(value):
                validate(v, items, root, "%s[%d]" % (path, i), problems)


def _join(path, key):
    return key if not path else path + "." + key
