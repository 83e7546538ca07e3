"""A vendor key pair and small signed bundles for the update tests (built once per session: RSA-3072
key generation and signing cost a few hundred milliseconds)."""

import pytest
from nengjian_host.vendor import updates as host_ota


class Vendor:
    """The vendor's key pair and a bundle per version; each bundle's nengjian/ota_marker.py names its
    version, so a test can tell what a slot really holds whatever the pointer says."""

    def __init__(self, d, bits=host_ota.KEY_BITS):
        self.dir = d
        self.pem = d / "vendor.pem"
        self.pub = d / "vendor.pub.json"
        host_ota.keygen(self.pem, self.pub, "test-vendor-1", bits)
        self._built = {}

    def files(self, version, pad=0):
        marker = ('VERSION = "%s"\n' % version).encode() + b"#" * pad + b"\n"
        return [("nengjian/__init__.py", b""), ("nengjian/ota_marker.py", marker),
                ("nengjian/core/__init__.py", b"# " + version.encode() + b"\n")]

    def bundle(self, version, replaces_down_to=None, pad=0):
        key = (version, replaces_down_to, pad)
        if key not in self._built:
            out = self.dir / ("%s-%s-%d.njota" % (version, replaces_down_to, pad))
            down = {"replaces_down_to": replaces_down_to} if replaces_down_to else {}
            host_ota.build(out, self.pem, version, ["sim"], files=self.files(version, pad), **down)
            self._built[key] = out
        return self._built[key]


@pytest.fixture(scope="session")
def vendor(tmp_path_factory):
    return Vendor(tmp_path_factory.mktemp("vendor"))


@pytest.fixture(scope="session")
def make_vendor():
    """Vendor itself, for a test that needs a key of its own (Vendor(dir, bits))."""
    return Vendor
