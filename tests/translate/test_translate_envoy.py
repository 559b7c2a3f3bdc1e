"""The proof for translate: whole proxy configs built from policy (sidecars and a gateway) go through the emitter
as static bootstraps and the real Envoy accepts them (`envoy --mode validate`)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_translate_gateway import GATEWAY, TCP_GATEWAY
from test_translate_policy import RULES
from test_translate_sidecar import CAPTURE_NONE, HTTP_FEATURES, SUBSETS
from translate_harness import SHOP, build_mesh

from compiler import model, translate
from compiler.emit import bootstrap_static

pytestmark = pytest.mark.envoy

CASES = {
    "sidecar-http-features": SHOP + SUBSETS + HTTP_FEATURES,
    "sidecar-capture-none": SHOP + CAPTURE_NONE,
    "sidecar-policies": SHOP + RULES,
    "gateway": SHOP + GATEWAY + "\n---" + TCP_GATEWAY.split("---", 2)[2],
}


def _pem_files(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshward-translate-test")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return str(directory / "cert.pem"), str(directory / "key.pem")


def _with_secrets(cfg: model.ProxyConfig, cert: str, key: str) -> model.ProxyConfig:
    """Static bootstraps carry every secret; the compiler leaves credentialName / Istio CA ones to the server."""
    wanted: dict[str, bool] = {}  # name -> is a validation context
    for c in cfg.clusters:
        if c.tls is not None:
            wanted.update({c.tls.credential_secret: False, c.tls.ca_secret: True})
    for li in cfg.listeners:
        for ch in li.filter_chains:
            if ch.tls is not None:
                wanted.update({ch.tls.credential_secret: False, ch.tls.ca_secret: True})
    wanted.pop("", None)
    secrets = [model.Secret(n, trusted_ca=cert, inline=False) if ca else
               model.Secret(n, certificate_chain=cert, private_key=key, inline=False) for n, ca in wanted.items()]
    return dataclasses.replace(cfg, secrets=tuple(sorted(secrets, key=lambda x: x.name)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_envoy_accepts_every_proxy(case: str, envoy_bin: str, tmp_path: Path) -> None:
    mesh = build_mesh(CASES[case])
    cert, key = _pem_files(tmp_path)
    for proxy in translate.proxies(mesh):
        cfg = _with_secrets(translate.proxy_config(mesh, proxy), cert, key)
        path = tmp_path / f"{proxy.name}.json"
        path.write_text(json.dumps(bootstrap_static.static_bootstrap(cfg, admin_port=0)))
        result = subprocess.run([envoy_bin, "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"{proxy.node_id}: {result.stderr[-3000:]}"
