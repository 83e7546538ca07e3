"""Site configs and meter profiles on the laptop: the gateway's own checks, run before provisioning.

The firmware's config module is plain Python, so the host runs the very same checks (one
implementation); the schemas are additionally checked with the full `jsonschema` package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nengjian_host.common import paths

if str(paths.FIRMWARE) not in sys.path:
    sys.path.insert(0, str(paths.FIRMWARE))

from nengjian import config as fw_config  # noqa: E402
from nengjian.config import schemas as fw_schemas  # noqa: E402
from nengjian.core import identity as fw_identity  # noqa: E402, F401 - provision's USCC check
from nengjian.meters import profile as fw_profile  # noqa: E402


def schema(which: str) -> dict:
    return fw_schemas.SITE if which == "site" else fw_schemas.PROFILE


def check(cfg: dict, profile_dir: Path = paths.PROFILES) -> list[str]:
    import jsonschema

    problems = []
    try:
        jsonschema.validate(cfg, fw_schemas.SITE)
    except jsonschema.ValidationError as e:
        where = ".".join(str(x) for x in e.absolute_path) or "(top)"
        # jsonschema quotes the value; a secret's (writeOnly: a PIN) must not reach a terminal or a report
        secret = isinstance(e.schema, dict) and e.schema.get("writeOnly")
        problems.append(f"{where}: " + (f"the value (secret, not shown) fails its {e.validator} rule"
                                          if secret else e.message))
        return problems
    try:
        fw_config.check(json.loads(json.dumps(cfg)), lambda name: fw_profile.load(str(profile_dir), name))
    except fw_config.ConfigError as e:
        problems.append(str(e))
    return problems


def check_file(path: Path, profile_dir: Path = paths.PROFILES) -> list[str]:
    try:
        cfg = json.loads(path.read_text())
    except OSError as e:
        return [f"cannot read: {e.strerror}"]
    except ValueError as e:
        return [f"not valid JSON: {e}"]
    return check(cfg, profile_dir)
