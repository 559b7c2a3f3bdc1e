"""`meshward serve --ca-dir`: the CA is served beside ADS with the flags' trust domain and address, and a CA
directory that cannot be used is a usage error (exit 2, one line) before any port is bound."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from meshward import cli
from reconciler import serve
from reconciler.identity import ca, ca_client, certs, tokens
from reconciler.identity.spiffe import Identity


def config(tmp_path: Path, *extra: str) -> serve.ServeConfig:
    return serve.config_from_args(cli._parser().parse_args([
        "serve", "--repo", str(tmp_path / "repo"), "--xds-address", "127.0.0.1:0", "--admin-address",
        "127.0.0.1:0", *extra]))


def test_without_a_ca_dir_no_ca_is_served(tmp_path: Path) -> None:
    assert serve.Server(config(tmp_path), tmp_path).ca is None


def test_serve_signs_for_its_trust_domain(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    conf = config(tmp_path, "--ca-dir", str(ca_dir), "--ca-address", "127.0.0.1:0", "--trust-domain", "corp.example")
    bearer = tokens.mint(tokens.load_or_create_key(ca_dir), tokens.Caller("shop", "web"), ttl=datetime.timedelta(minutes=5))

    async def main() -> list[str]:
        server = serve.Server(conf, tmp_path)
        await server.start()
        try:
            root = certs.pem(ca.load(ca_dir).root).encode()
            async with ca_client.channel(f"127.0.0.1:{server.ca_port}", root) as channel:
                csr = certs.make_csr(certs.new_key(), Identity("corp.example", "shop", "web"))
                return await ca_client.create_certificate(channel, csr=csr, token=bearer, validity_seconds=0)
        finally:
            await server.stop()
    leaf = x509.load_pem_x509_certificate(asyncio.run(main())[0].encode())
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://corp.example/ns/shop/sa/web"]


def test_the_cas_certificate_names_its_address_and_the_extra_names(tmp_path: Path) -> None:
    conf = config(tmp_path, "--ca-dir", str(tmp_path / "ca"), "--ca-address", "127.0.0.1:0",
                  "--ca-dns-name", "meshward.mesh-system.svc", "--ca-dns-name", "ca.example.com")

    async def main() -> str:
        server = serve.Server(conf, tmp_path)
        await server.start()
        try:
            return await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", server.ca_port), timeout=5)
        finally:
            await server.stop()
    san = x509.load_pem_x509_certificate(asyncio.run(main()).encode()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["meshward.mesh-system.svc", "ca.example.com"]


def test_an_unusable_ca_dir_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / ca.CA_CERT).write_text("not a certificate")
    done = subprocess.run([sys.executable, "-m", "meshward", "serve", "--repo", str(tmp_path), "--ca-dir",
                           str(tmp_path / "ca"), "--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
                           "--ca-address", "127.0.0.1:0"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith("meshward serve: cannot use the CA directory") and "incomplete" in done.stdout
