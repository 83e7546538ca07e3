"""Site configs and meter profiles on the laptop: the gateway's own checks, run before provisioning.

The firmware's config module is plain Python, so the host runs the very same checks (one
implementation); the schemas are additionally checked with the full `jsonschema` package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nengjian_host.common import messages, paths

if str(paths.FIRMWARE) not in sys.path:
    sys.path.insert(0, str(paths.FIRMWARE))

from nengjian import config as fw_config  # noqa: E402
from nengjian.config import schemas as fw_schemas  # noqa: E402
from nengjian.core import identity as fw_identity  # noqa: E402, F401 - provision's USCC check
from nengjian.meters import profile as fw_profile  # noqa: E402

LIMIT = 50  # problems listed by one check; the gateway keeps as many (nengjian.config.validate.LIMIT)
MORE = "(and %d more problems not listed: fix these and check again)"


def schema(which: str) -> dict:
    return fw_schemas.SITE if which == "site" else fw_schemas.PROFILE


def check(cfg: dict, profile_dir: Path = paths.PROFILES, limit: int = LIMIT) -> list[str]:
    """Every problem of a site config ("path: what"), at most `limit` and a last line counting the rest:
    the full jsonschema's (each field that breaks the schema), then the gateway's own cross-field checks
    (which leave the parts the schema refused to its problem)."""
    import jsonschema

    problems = []
    validator = jsonschema.validators.validator_for(fw_schemas.SITE)(fw_schemas.SITE)
    for e in sorted(validator.iter_errors(cfg), key=lambda e: [str(x) for x in e.absolute_path]):
        where = _path(e.absolute_path)
        # jsonschema quotes the value; a secret's (writeOnly: a PIN) must not reach a terminal or a report
        secret = isinstance(e.schema, dict) and e.schema.get("writeOnly")
        problems.append(f"{where}: " + (f"the value (secret, not shown) fails its {e.validator} rule"
                                          if secret else e.message))
    try:
        fw_config.check(json.loads(json.dumps(cfg)), lambda name: fw_profile.load(str(profile_dir), name))
    except fw_config.ConfigError as e:
        found = list(getattr(e, "problems", None) or [str(e)])
        # the gateway's schema problems are the jsonschema's, said again: keep its cross-field ones
        problems += found[getattr(e, "schema_problems", 0):] if problems else found
    if len(problems) > limit:
        problems = problems[:limit] + [MORE % (len(problems) - limit)]
    return problems


def _path(parts) -> str:
    """jsonschema's path as the gateway's checks write it: meters[1].address."""
    out = ""
    for x in parts:
        out += "[%d]" % x if isinstance(x, int) else ("." if out else "") + str(x)
    return out or "(top)"


def check_file(path: Path, profile_dir: Path = paths.PROFILES) -> list[str]:
    try:
        cfg = json.loads(path.read_text())
    except OSError as e:
        return [messages.t_in("en", "check.cannot_read", reason=e.strerror)]
    except ValueError as e:
        return [messages.t_in("en", "check.not_json", reason=e)]
    return check(cfg, profile_dir)
