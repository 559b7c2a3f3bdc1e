"""deploy/'s `serve` with its real (not loopback) addresses: it serves cluster Secrets, so it must run `--xds-tls`
or refuse to start; the pods its webhook injects then reach it over mTLS, and the server's certificate names the
Service host their bootstrap verifies."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import manifests
from cryptography import x509

from meshward import cli
from reconciler import serve
from reconciler.identity import ca
from reconciler.inject import sidecar


def _deployed() -> serve.ServeConfig:
    return serve.config_from_args(cli._parser().parse_args(["serve", *manifests.serve_args()]))


def test_the_deployment_starts_with_keys_on_its_exposed_ads_port() -> None:
    config = _deployed()
    assert config.xds_tls and not config.xds_address.startswith("127.")
    serve._check_exposure(config)  # ServeError (exit 2) if Gateway keys went over plain ADS
    try:
        serve._check_exposure(dataclasses.replace(config, xds_tls=False))
    except serve.ServeError as err:
        assert "--xds-tls" in str(err)
    else:
        raise AssertionError("plain ADS on 0.0.0.0 with cluster Secrets must be refused")


def test_injected_proxies_verify_the_certificate_the_deployment_serves(tmp_path: Path) -> None:
    config = _deployed()
    assert config.inject.xds_tls
    [proxy] = [c for c in sidecar.containers(config.inject, "reviews-v1") if c["name"] == sidecar.PROXY]
    bootstrap = json.loads(proxy["args"][proxy["args"].index("--config-yaml") + 1])
    [xds] = [c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "xds-grpc"]
    context = xds["transport_socket"]["typed_config"]
    [san] = context["common_tls_context"]["combined_validation_context"]["default_validation_context"][
        "match_typed_subject_alt_names"]
    host = config.inject.xds_address.rpartition(":")[0]
    assert san == {"san_type": "DNS", "matcher": {"exact": host}} and context["sni"] == host
    tls = serve._xds_tls(config, ca.load_or_create(tmp_path / "ca"))
    assert tls is not None
    names = x509.load_pem_x509_certificate(tls.chain_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert host in names.get_values_for_type(x509.DNSName)
