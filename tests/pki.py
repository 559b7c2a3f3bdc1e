"""Test certificates made at run time with `cryptography` (never checked in): a self-signed CA certificate and key
that Envoy parses wherever a policy names certificate files or an SDS secret must be real."""

from __future__ import annotations

import datetime
import functools
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@functools.cache
def pem_pair() -> tuple[str, str]:
    """A self-signed certificate and key (Envoy parses secrets, so they must be real)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshward-test")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def write_pem_files(directory: Path) -> tuple[str, str]:
    cert, key = pem_pair()
    (directory / "cert.pem").write_text(cert)
    (directory / "key.pem").write_text(key)
    return str(directory / "cert.pem"), str(directory / "key.pem")


_FILE_ROLES = {"private_key": "key.pem"}  # every other file a config names is read as a certificate (or CA)


def _file_refs(node: Any, parent: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    """Every DataSource `filename` in a bootstrap dict, with the name of the field holding it."""
    if isinstance(node, dict):
        if isinstance(node.get("filename"), str):
            yield node, parent
        for key, value in node.items():
            yield from _file_refs(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _file_refs(item, parent)


def point_files_at(bootstrap: dict[str, Any], pem_dir: Path) -> None:
    """Certificate files the policy names (serverCertificate, caCertificates, ...) live on the proxy's host, not
    here: point each absolute path at a generated certificate and key so that Envoy's validation reads real PEM.
    A relative path is left alone: the proxy would resolve it against a working directory nobody controls, and
    Envoy finds nothing there either."""
    for source, field in _file_refs(bootstrap):
        if source["filename"].startswith("/"):
            source["filename"] = str(pem_dir / _FILE_ROLES.get(field, "cert.pem"))


def tls_server_files(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """A CA (ca.pem) and a server certificate for `address` (an IP SAN) it signed, with its key (cert.pem,
    key.pem): what an https server on 127.0.0.x needs for a client that trusts only that CA."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshward-test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths
