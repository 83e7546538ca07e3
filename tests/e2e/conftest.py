import pytest
from simrig import SimRig


@pytest.fixture
def rig(tmp_path):
    r = SimRig(tmp_path)
    yield r
    r.close()
