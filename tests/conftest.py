import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Firmware modules are plain Python that also runs on CPython: codec property tests import them directly.
for p in (ROOT / "tests", ROOT / "tests" / "e2e", ROOT / "firmware", ROOT / "host"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# The hardware-in-the-loop rig fixtures (rig, dut, bus, platform) and options (--rig, --rig-file ...).
pytest_plugins = ["plugin", "pytester"]

# Property tests count examples, never time: hypothesis's default 200 ms deadline per example and its
# too-slow health check would fail a correct codec on a loaded machine.
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("nengjian", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("nengjian")
except ImportError:  # hypothesis is a dev dependency; the rig plugin runs without it
    pass
