"""The gateway's schema check (nengjian.config.schema) never quotes a secret: a site config whose
platform PIN or SIM PIN breaks its rule is refused with the field named and the value left out, since
the refusal becomes the safe-mode reason the log, the console status and the ledger carry. The laptop's
check (`nengjian check-config`, with the full jsonschema package) does the same."""

import copy
import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
from mpyrun import run_mpy
from nengjian.config import schema, schemas
from nengjian_host import cli
from nengjian_host.common import siteconfig
from nengjian_host.sim.gateway import demo_site

SIM_PIN = "73a7"  # not digits only: the SIM PIN's pattern refuses it
PIN = "Qz7kW-p9Lx-too-long"  # 19 characters: longer than a platform PIN may be


def _site(**network):
    cfg = demo_site("http://127.0.0.1:1/api/register")
    cfg["network"] = dict({"apn": "cmnet"}, **network)
    return cfg


def _token_site(pin):
    cfg = _site()
    cfg["destinations"][0].update(security="sm4-cbc-token", valid="yunnan", success_code=200, pin=pin)
    return cfg


@pytest.mark.parametrize("cfg, secret, field", [
    (_site(pin=SIM_PIN), SIM_PIN, "network.pin"),
    (_token_site(PIN), PIN, "destinations[0].pin"),
    (_token_site(""), None, "destinations[0].pin"),
])
def test_a_secret_that_breaks_its_rule_is_named_not_quoted(cfg, secret, field):
    with pytest.raises(schema.SchemaError) as e:
        schema.validate(copy.deepcopy(cfg), schemas.SITE)
    text = str(e.value)
    assert text.startswith(field + ":") and "secret, not shown" in text
    if secret:
        assert secret not in text


def test_other_fields_are_still_quoted():
    cfg = _site(apn="")
    with pytest.raises(schema.SchemaError, match=r"network\.apn: '' is shorter than 1"):
        schema.validate(cfg, schemas.SITE)


@pytest.mark.mpy
def test_on_micropython():
    code = r"""
import json
from nengjian.config import schema, schemas
cfg = json.loads(%r)
try:
    schema.validate(cfg, schemas.SITE)
    print("ACCEPTED")
except schema.SchemaError as e:
    print("REFUSED " + str(e))
""" % json.dumps(_site(pin=SIM_PIN))
    out = run_mpy(code, heap="256k").stdout.strip()
    assert out.startswith("REFUSED network.pin:") and SIM_PIN not in out, out


@pytest.mark.parametrize("cfg, secret", [(_site(pin=SIM_PIN), SIM_PIN), (_token_site(PIN), PIN)])
def test_check_config_on_the_laptop_does_not_print_it(tmp_path, cfg, secret):
    problems = siteconfig.check(cfg)
    assert problems and all(secret not in p for p in problems), problems
    f = tmp_path / "site.json"
    f.write_text(json.dumps(cfg))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["check-config", str(f), "--json"])
    assert code == 1 and secret not in out.getvalue() + err.getvalue()
    assert "pin" in out.getvalue()
