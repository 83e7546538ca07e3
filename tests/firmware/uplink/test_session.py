"""The session steps (nengjian.uplink.session: the session file at start, registration, the token,
the version check) are loaded by nengjian.uplink.ndrc for them and dropped after, on MicroPython; the
exchanges themselves are tested through ndrc (tests/firmware/uplink/test_ndrc.py)."""

import pytest
from mpyrun import run_mpy

pytestmark = pytest.mark.mpy


SESSION = r"""
import sys
from nengjian.uplink import ndrc
dest = {"name": "city", "profile": "ndrc-json", "url": "http://p/api/register", "batch": 50}
p = ndrc.NdrcJson(dest, {"code": "91330000573973053F", "region": "441900"}, ".")
print('session', p.session, 'nengjian.uplink.session' in sys.modules, 'session' in sys.modules['nengjian.uplink'].__dict__)
print('in class', [n for n in ('_register', '_version_check', '_load', '_allowed_urls') if hasattr(ndrc.NdrcJson, n)])
"""


def test_the_session_steps_are_dropped_after_the_session_file_is_read(tmp_path):
    """Registration, token and version check (nengjian.uplink.session) run at a start and when the
    platform forgets the gateway: their code does not stay while the gateway uploads."""
    out = run_mpy(SESSION, cwd=str(tmp_path)).stdout.split("\n")
    assert out[:2] == ["session None False False", "in class []"]
