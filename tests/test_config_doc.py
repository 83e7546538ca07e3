"""docs/CONFIG.md names every key the gateway's schemas know: each site-config key by its full path
(`meters[].calibration.due`) and each meter-profile key by its path in the profile (`memory.hourly.depth`;
the keys of a point, whose name is the profile's own, bare: `di`). A key added to
nengjian.config.schemas without a line in the reference fails here."""

from pathlib import Path

from nengjian.config import schemas

DOC = Path(__file__).resolve().parent.parent / "docs" / "CONFIG.md"


def _resolve(node, defs):
    ref = node.get("$ref")
    return defs[ref.rsplit("/", 1)[1]] if ref else node


def key_paths(schema, defs=None, prefix="", top=True):
    """The documented form of every key under `schema`: "a.b" for an object's member, "a[].b" inside
    an array, the bare key inside a map of named objects (a profile's points). A top-level section
    (`meters`, `store`) is documented by its keys; a key deeper down is named itself as well."""
    defs = schema.get("$defs", {}) if defs is None else defs
    out = []
    for key, sub in schema.get("properties", {}).items():
        path = prefix + key
        sub = _resolve(sub, defs)
        inner = []
        if "properties" in sub:
            inner += key_paths(sub, defs, path + ".", False)
        items = sub.get("items")
        if isinstance(items, dict) and "properties" in _resolve(items, defs):
            inner += key_paths(_resolve(items, defs), defs, path + "[].", False)
        named = sub.get("additionalProperties")
        if isinstance(named, dict) and "properties" in _resolve(named, defs):
            inner += key_paths(_resolve(named, defs), defs, "", False)
        if not top or not inner:
            out.append(path)
        out += inner
    return out


def undocumented(text, schema):
    return sorted({p for p in key_paths(schema) if "`%s`" % p not in text})


def test_every_site_config_key_is_in_the_reference():
    assert undocumented(DOC.read_text(encoding="utf-8"), schemas.SITE) == []


def test_every_meter_profile_key_is_in_the_reference():
    assert undocumented(DOC.read_text(encoding="utf-8"), schemas.PROFILE) == []


def test_a_key_left_out_of_the_reference_is_named():
    text = DOC.read_text(encoding="utf-8")
    assert "`meters[].class`" in text and "`memory.hourly.depth`" in text
    cut = text.replace("`meters[].class`", "").replace("`memory.hourly.depth`", "")
    assert undocumented(cut, schemas.SITE) == ["meters[].class"]
    assert undocumented(cut, schemas.PROFILE) == ["memory.hourly.depth"]


def test_the_paths_reach_arrays_refs_and_named_maps():
    site = key_paths(schemas.SITE)
    profile = key_paths(schemas.PROFILE)
    assert {"meters[].line.baud", "meters[].pulse.persist_s", "destinations[].upload_slot", "clock.ntp",
            "status_page.port", "quality.settle_s"} <= set(site)
    assert {"memory.settlement.depth", "clock.writable", "di", "plus", "line.parity"} <= set(profile)


def named_in_tables(text):
    """The keys the reference's tables name in their first column."""
    import re

    out = []
    for line in text.splitlines():
        if line.startswith("| `"):
            out += re.findall(r"`([^`]+)`", line.split("|")[1])
    return out


def test_the_reference_names_no_key_the_schemas_refuse():
    """The other way round: a key documented but not in the schemas would be refused by the gateway (and a
    key the schemas take but nothing reads must not be documented as if it did: `memory.daily.interval_s`
    was such a key; the daily freeze is at 00:00, so the profile schema now refuses it)."""
    known = set(key_paths(schemas.SITE)) | set(key_paths(schemas.PROFILE)) | set(schemas.SITE["properties"]) | set(
        schemas.PROFILE["properties"])
    assert [k for k in named_in_tables(DOC.read_text(encoding="utf-8")) if k not in known] == []
    assert "memory.hourly.interval_s" in known and "memory.daily.interval_s" not in known


def test_a_profile_with_a_daily_freeze_interval_is_refused():
    import copy
    import json

    import pytest
    from nengjian.meters import profile
    from nengjian_host.common.paths import PROFILES

    prof = json.loads((PROFILES / "dlt645-2007-generic.json").read_text())
    profile.check(copy.deepcopy(prof))
    prof["memory"]["daily"]["interval_s"] = 3600
    with pytest.raises(ValueError, match=r"memory\.daily\.interval_s: unknown field"):
        profile.check(prof)
