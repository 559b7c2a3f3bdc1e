"""Which addresses count as loopback for the bind warnings of `meshward serve` and the `/debug/*` peer check."""

from __future__ import annotations

import pytest

from meshward import cli
from reconciler import serve
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


@pytest.mark.parametrize(("header", "host"), [("localhost:8080", "localhost"), ("127.0.0.1", "127.0.0.1"),
                                              ("[::1]:15014", "::1"), ("Evil.Example:80", "evil.example"),
                                              ("", ""), ("[::1", "")])
def test_host_name_drops_port_and_brackets(header: str, host: str) -> None:
    assert exposure.host_name(header) == host


# What `kubectl port-forward` forwards (the client's localhost:PORT), what kubelet probes and Prometheus send (the
# pod's IP), a browser on the machine; none is a name a web page can re-point by DNS.
@pytest.mark.parametrize("header", ["localhost:15014", "127.0.0.1:15014", "[::1]:15014", "10.244.1.7:15014",
                                    "[fd00::7]:15014", "LOCALHOST"])
def test_hosts_no_rebinding_can_send_are_allowed(header: str) -> None:
    assert exposure.host_allowed(header)


@pytest.mark.parametrize("header", ["evil.example", "evil.example:15014", "127.0.0.1.evil.example", "localhost.",
                                    "meshward.meshward-system.svc:15014", "", "[::1"])
def test_names_are_refused_unless_listed(header: str) -> None:
    assert not exposure.host_allowed(header)


def test_listed_names_are_allowed_with_any_port() -> None:
    allowed = frozenset({"meshward.meshward-system.svc"})
    assert exposure.host_allowed("meshward.meshward-system.svc:15014", allowed)
    assert not exposure.host_allowed("evil.example", allowed)


def test_serve_takes_allowed_host_names(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli._parser().parse_args(["serve", "--repo", "r", "--admin-allowed-host", "Meshward.meshward-system.svc",
                                     "--admin-allowed-host", "mesh.example.com"])
    assert serve.config_from_args(args).admin_allowed_hosts == ("meshward.meshward-system.svc", "mesh.example.com")
    assert serve.config_from_args(cli._parser().parse_args(["serve", "--repo", "r"])).admin_allowed_hosts == ()
    for bad in ("mesh.example.com:15014", "", "http://mesh.example.com", "-x"):
        with pytest.raises(SystemExit) as exit_:
            cli._parser().parse_args(["serve", "--repo", "r", f"--admin-allowed-host={bad}"])
        assert exit_.value.code == 2 and "expected a host name without port" in capsys.readouterr().err
