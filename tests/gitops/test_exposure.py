"""Which addresses count as loopback for the bind warnings of `meshward serve` and the `/debug/*` peer check."""

from __future__ import annotations

import pytest

from reconciler.ops import exposure


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "[::1]", "::ffff:127.0.0.1",
                                  "localhost", "LOCALHOST"])
def test_loopback(host: str) -> None:
    assert exposure.is_loopback(host)


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "[::]", "10.0.0.5", "203.0.113.7", "::ffff:10.0.0.5",
                                  "fe80::1%eth0", "istiod.example.com", "128.0.0.1"])
def test_exposed(host: str) -> None:
    assert not exposure.is_loopback(host)


def test_bind_warnings_name_each_exposed_port() -> None:
    assert exposure.bind_warnings(xds_host="127.0.0.1", admin_host="localhost") == []
    xds, admin = exposure.bind_warnings(xds_host="", admin_host="0.0.0.0")
    assert xds.startswith("the ADS port is bound to *, not loopback") and "no authentication" in xds
    assert admin.startswith("the admin port is bound to 0.0.0.0, not loopback") and "/debug/*" in admin
    # mTLS ADS authenticates every client: binding it anywhere is no exposure
    assert exposure.bind_warnings(xds_host="0.0.0.0", admin_host="127.0.0.1", xds_tls=True) == []
