"""Site config: read /config/site.json, check it against the schema and across fields.

A config error names the field and what is wrong so an installer can fix it from the console;
the app then starts in safe mode instead of crash-looping. Loading a config never touches stored
data (see nengjian.store). The checks themselves are nengjian.config.validate, loaded for a check and
dropped after it with the schemas (release_validators): some 15 KB a running gateway does not need.
"""

import json

from nengjian.config.errors import ConfigError  # noqa: F401  (callers catch config.ConfigError)


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


def release_validators():
    """Drop the schema and check modules once a config is checked: some 25 KB on the sim that a
    running gateway no longer needs (they load again on the next check)."""
    import sys

    from nengjian.core.compat import unload

    for name in ("schemas", "schema", "validate"):
        unload("nengjian.config." + name)
    # The checks loaded the identity codes' rules; the gateway keeps them only where tce or a manual
    # entry (which load them themselves) already has them.
    if "nengjian.values.tce" not in sys.modules and "nengjian.values.manual" not in sys.modules:
        unload("nengjian.core.identity")


def check(cfg, profile_loader):
    """The config with defaults filled in, checked against the schema and across fields."""
    from nengjian.config import validate

    return validate.check(cfg, profile_loader)
