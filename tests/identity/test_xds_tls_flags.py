"""Who may be sent private keys: plain ADS serves Gateway credentials (`--credentials-dir`, cluster Secrets) only on
loopback; anywhere else `serve` refuses to start (exit 2, one line saying what to do) unless `--xds-tls`
authenticates every proxy. And the flag combinations `--xds-tls` needs, in `serve` and `bootstrap`."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from meshward import cli
from reconciler import serve
from reconciler.identity import ca


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("keys", [["--credentials-dir", "creds"], ["--kubeconfig", "kubeconfig"]])
def test_plain_ads_off_loopback_never_serves_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  keys: list[str]) -> None:
    keys = [keys[0], str(tmp_path / keys[1])]
    code, out = run(capsys, "serve", "--repo", str(tmp_path), "--xds-address", "0.0.0.0:0", *keys)
    assert code == 2
    assert "private keys" in out and "--xds-tls" in out and "loopback" in out, out


def test_keys_on_loopback_or_over_mtls_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    for extra in ([], ["--xds-tls", "--ca-dir", str(tmp_path / "ca")]):
        address = "0.0.0.0:0" if extra else "127.0.0.1:0"
        config = serve.config_from_args(cli._parser().parse_args(
            ["serve", "--repo", str(tmp_path), "--xds-address", address, "--credentials-dir",
             str(tmp_path / "creds"), *extra]))
        server = serve.Server(config, tmp_path / "work")  # refused here if it were not allowed
        assert (server.ads.options.tls is not None) == bool(extra)
        server.source.close()


def test_the_xds_certificate_names_the_address_and_chains_to_the_root(tmp_path: Path) -> None:
    config = serve.ServeConfig(repo=str(tmp_path), xds_address="127.0.0.2:0", ca_dir=tmp_path / "ca",
                               xds_tls=True, ca_dns_names=("meshward.istio-system.svc",))
    server = serve.Server(config, tmp_path / "work")
    server.source.close()
    tls = server.ads.options.tls
    assert tls is not None
    leaf = x509.load_pem_x509_certificate(tls.chain_pem)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.2"]
    assert names.get_values_for_type(x509.DNSName) == ["meshward.istio-system.svc"]
    root = ca.load(tmp_path / "ca").root
    leaf.verify_directly_issued_by(root)
    assert x509.load_pem_x509_certificates(tls.roots_pem) == [root]


def test_xds_tls_needs_the_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "serve", "--repo", str(tmp_path), "--xds-tls")
    assert code == 2 and "--xds-tls" in out and "--ca-dir" in out, out


def test_one_place_for_the_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "serve", "--repo", str(tmp_path), "--ca-dir", str(tmp_path / "ca"), "--ca-secret", "x")
    assert code == 2 and "give one" in out, out
    code, out = run(capsys, "serve", "--repo", str(tmp_path), "--ca-secret", "x")
    assert code == 2 and "--kubeconfig" in out, out


def test_bootstrap_xds_tls_needs_the_agent_and_an_envoy(capsys: pytest.CaptureFixture[str]) -> None:
    node = "sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local"
    code, out = run(capsys, "bootstrap", "--node", node, "--xds-tls")
    assert code == 2 and "--sds-socket" in out, out
    code, out = run(capsys, "bootstrap", "--node", node, "--xds-tls", "--grpc", "--sds-socket", "s")
    assert code == 2 and "proxyless" in out, out
