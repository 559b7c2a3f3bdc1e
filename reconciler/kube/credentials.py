"""TLS credentials for Gateway `credentialName`: read, checked, and turned into SDS secrets.

Why it exists: the policy in Git names a credential (`credentialName: shop-cert`), never its key material; the key
lives in a Kubernetes Secret or a mounted directory, and meshward serves it to the gateway over SDS as Istio does.
This module turns raw bytes into `compiler.model.Secret`s and refuses what Envoy would choke on (not PEM, a key that
does not belong to its certificate) with a message naming the secret, so a bad credential is reported here rather
than NACKed by a proxy. Key material never reaches a log line or a message.

Naming follows Istio (pilot/pkg/credentials/kube): a secret's certificate and key are read from `tls.crt`/`tls.key`
(kubernetes.io/tls) or `cert`/`key` (generic); its CA bundle from `ca.crt` or `cacert`, served as the validation
secret `<name>-cacert` (compiler.naming.credential_ca_secret). A secret that is itself named `<x>-cacert` gives
that validation secret and wins over the CA bundle inside `<x>`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from compiler.build import Secret, credential_ca_secret

log = logging.getLogger(__name__)

CA_SUFFIX = credential_ca_secret("")  # "-cacert"
CERT_KEYS = (("cert", "key"), ("tls.crt", "tls.key"))  # in Istio's order: the generic pair first
CA_KEYS = ("ca.crt", "cacert")
FILE_NAMES = ("tls.crt", "tls.key", "ca.crt")  # the layout of a kubernetes.io/tls Secret mounted as a volume
MAX_FILE_BYTES = 1024 * 1024


class CredentialError(ValueError):
    """A credential that must not be served; the message names the secret and never quotes key material."""


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    """SDS secrets by name, and the credentials that were refused (one message each)."""

    secrets: Mapping[str, Secret] = dataclasses.field(default_factory=dict)
    problems: tuple[str, ...] = ()


def certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise CredentialError(f"{what} holds no PEM certificate")
    return certs


def check_pair(chain: bytes, key: bytes, where: str) -> None:
    """Raise CredentialError unless `chain` is PEM certificates and `key` the private key of the first one."""
    leaf = certificates(chain, f"{where}: the certificate chain")[0]
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The library's message is not quoted: it could echo part of the key.
        raise CredentialError(f"{where}: the private key is not an unencrypted PEM private key") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise CredentialError(f"{where}: the private key does not belong to the first certificate of the chain")


def _text(pem: bytes, where: str) -> str:
    try:
        return pem.decode("ascii")
    except UnicodeDecodeError:
        raise CredentialError(f"{where}: not ASCII PEM") from None


def key_pair(name: str, chain: bytes, key: bytes, *, where: str) -> Secret:
    check_pair(chain, key, where)
    return Secret(name, certificate_chain=_text(chain, where), private_key=_text(key, where), inline=True)


def ca_bundle(name: str, ca: bytes, *, where: str) -> Secret:
    certificates(ca, f"{where}: the CA bundle")
    return Secret(name, trusted_ca=_text(ca, where), inline=True)


def from_entries(entries: Iterable[tuple[str, str, Mapping[str, bytes]]]) -> Credentials:
    """Secrets from (name, where, data) entries: `data` maps key names (`tls.crt`, `cert`, `ca.crt`, ...) to bytes,
    `where` is what a problem message calls the entry (`secret shop/cert`, `/etc/creds/cert`)."""
    found: dict[str, Secret] = {}
    explicit_ca: set[str] = set()  # validation secrets that came from a `<x>-cacert` entry of their own
    problems: list[str] = []
    for name, where, data in sorted(entries, key=lambda e: e[0]):
        try:
            for secret in _secrets_of(name, where, data):
                if secret.name in explicit_ca and not name.endswith(CA_SUFFIX):
                    continue
                found[secret.name] = secret
                if name.endswith(CA_SUFFIX):
                    explicit_ca.add(secret.name)
        except CredentialError as err:
            problems.append(str(err))
    for problem in problems:
        log.warning("credential refused: %s", problem)
    return Credentials(dict(sorted(found.items())), tuple(problems))


def _secrets_of(name: str, where: str, data: Mapping[str, bytes]) -> list[Secret]:
    ca = next((data[k] for k in CA_KEYS if data.get(k)), None)
    if name.endswith(CA_SUFFIX):  # Istio reads only the CA bundle from a `-cacert` secret
        return [ca_bundle(name, ca, where=where)] if ca else []
    out = []
    pair = next(((data[c], data[k]) for c, k in CERT_KEYS if data.get(c) and data.get(k)), None)
    if pair is not None:
        out.append(key_pair(name, *pair, where=where))
    elif any(cert in data for cert, _ in CERT_KEYS):  # a lone `key` entry is some other kind of secret
        raise CredentialError(f"{where}: needs both tls.crt and tls.key (or cert and key), non-empty")
    if ca:
        out.append(ca_bundle(credential_ca_secret(name), ca, where=where))
    return out


def from_kube(secrets: Iterable[Mapping[str, Any]]) -> dict[str, Credentials]:
    """Credentials per namespace from Secret manifests (base64 `data`, as the API returns them): Istio resolves a
    gateway's credentialName in the gateway's own namespace."""
    by_namespace: dict[str, list[tuple[str, str, Mapping[str, bytes]]]] = {}
    bad: dict[str, list[str]] = {}
    for doc in secrets:
        meta = doc.get("metadata") or {}
        namespace, name = meta.get("namespace", "default"), meta.get("name", "")
        where = f"secret {namespace}/{name}"
        try:
            data = {k: base64.b64decode(v, validate=True) for k, v in (doc.get("data") or {}).items()}
        except (binascii.Error, TypeError):
            bad.setdefault(namespace, []).append(f"{where}: data is not base64")
            continue
        by_namespace.setdefault(namespace, []).append((name, where, data))
    out = {ns: from_entries(entries) for ns, entries in by_namespace.items()}
    for ns, problems in bad.items():
        creds = out.get(ns, Credentials())
        out[ns] = dataclasses.replace(creds, problems=(*problems, *creds.problems))
    return dict(sorted(out.items()))


def load_dir(root: Path) -> Credentials:
    """`root/<secret name>/{tls.crt,tls.key,ca.crt}`, as a kubernetes.io/tls Secret mounted as a volume (dot
    entries such as the volume's `..data` link are skipped)."""
    entries = []
    problems = []
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as err:
        return Credentials(problems=(f"credentials directory {root}: {err.strerror or err}",))
    for child in children:
        try:
            entries.append((child.name, str(child), _read_files(child)))
        except OSError as err:
            problems.append(f"{child}: cannot read: {err.strerror or err}")
    creds = from_entries(entries)
    return dataclasses.replace(creds, problems=(*problems, *creds.problems))


def _read_files(directory: Path) -> dict[str, bytes]:
    data = {}
    for file_name in FILE_NAMES:
        path = directory / file_name
        if path.is_file():
            if path.stat().st_size > MAX_FILE_BYTES:
                raise OSError(f"{file_name} is larger than {MAX_FILE_BYTES} bytes")
            data[file_name] = path.read_bytes()
    return data


def fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a credential file is rewritten: (path, size, mtime) of every file we read. A mounted
    Secret volume swaps a `..data` symlink, which changes the targets' mtimes as seen through the links."""
    out = []
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return ()
    for child in children:
        for file_name in FILE_NAMES:
            try:
                st = os.stat(child / file_name)
            except OSError:
                continue
            out.append((f"{child.name}/{file_name}", st.st_size, st.st_mtime_ns))
    return tuple(out)
