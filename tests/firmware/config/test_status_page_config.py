"""The site's `status_page` section (nengjian.config.schemas.SITE; served by nengjian.console.page): its
two keys are taken by the gateway's check and by the laptop's full jsonschema, a typo or a port out of
range is refused by both."""

import pytest
from nengjian.config import schema, schemas
from nengjian_host.sim.gateway import demo_site

jsonschema = pytest.importorskip("jsonschema")


def _site(section):
    cfg = demo_site("http://127.0.0.1:1/api/register")
    cfg["status_page"] = section
    return cfg


@pytest.mark.parametrize("section", [{}, {"enabled": False}, {"enabled": True, "port": 8080}, {"port": 80}])
def test_the_status_page_section_is_taken(section):
    schema.validate(_site(section), schemas.SITE)
    jsonschema.validate(_site(section), schemas.SITE)


@pytest.mark.parametrize("section", [{"enable": True}, {"port": 0}, {"port": 70000}, {"enabled": "yes"}])
def test_a_wrong_status_page_section_is_refused(section):
    with pytest.raises(schema.SchemaError, match="status_page"):
        schema.validate(_site(section), schemas.SITE)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_site(section), schemas.SITE)
