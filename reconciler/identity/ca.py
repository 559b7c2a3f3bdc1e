"""The certificate authority inside `meshward serve` (Istio's Citadel part): its signing key and certificate, the
chain up to the root, and the certificates it issues.

Its directory uses Istio's `cacerts` layout (security/pkg/pki/ca/ca.go, "plugged-in certificates"):
`ca-cert.pem` (the signing certificate), `ca-key.pem`, `root-cert.pem`, `cert-chain.pem` (from the signing
certificate up to the root). An operator's intermediate CA dropped there is used as it is; an empty or missing
directory gets a self-signed root on first start (Istio's self-signed CA), written in the same layout, so a restart
keeps every issued certificate valid. Files are 0600 in a 0700 directory. In cluster mode the same layout lives in a
Secret instead (`reconciler.kube.ca_secret`); `from_files` reads it from either.

`root-cert.pem` is the mesh's trust bundle and may hold several roots: during a root rotation, the old root and the
new one, whichever signs (Istio's plugged-in CA rotation with a combined root). The signing chain must end at one of
them; every workload is handed the whole bundle, so leaves of either root verify everywhere until the old root is
removed.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reconciler.identity import certs, private_files
from reconciler.identity.spiffe import DEFAULT_TRUST_DOMAIN, Identity

log = logging.getLogger(__name__)

CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN = "ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"
LAYOUT = (CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN)
ROOT_LIFETIME = datetime.timedelta(days=3650)  # Istio's self-signed root: 10 years
SERVING_LIFETIME = datetime.timedelta(days=365)  # the CA's own TLS certificate, made anew at each start

CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CaError(Exception):
    """The CA directory cannot be used (unreadable, incomplete, or keys and certificates that do not fit)."""


class TtlError(ValueError):
    """A requested certificate lifetime the CA does not grant."""


@dataclasses.dataclass(frozen=True)
class CaOptions:
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    default_ttl: datetime.timedelta = datetime.timedelta(hours=24)  # Istio's DEFAULT_WORKLOAD_CERT_TTL
    max_ttl: datetime.timedelta = datetime.timedelta(days=90)  # Istio's MAX_WORKLOAD_CERT_TTL


class CertificateAuthority:
    """Signs workload and serving certificates with one key; `chain` runs from the signing certificate to the root."""

    def __init__(self, key: CaKey, chain: Sequence[x509.Certificate], options: CaOptions = CaOptions(), *,
                 also_trusted: Sequence[x509.Certificate] = ()) -> None:
        self.key = key
        self.chain = tuple(chain)
        self.options = options
        _check_chain(key, self.chain)
        # the chain's root first, then the other roots of the bundle (a rotation's old or next root)
        self.trust_bundle = tuple(dict.fromkeys([self.chain[-1], *also_trusted]))

    @property
    def signing_cert(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def root(self) -> x509.Certificate:
        return self.chain[-1]

    def lifetime(self, requested_seconds: int) -> datetime.timedelta:
        """The lifetime of a leaf: the default when none is asked for; more than the maximum is refused, as Istio's
        CA does (ca.go: "requested TTL ... is greater than the max allowed TTL")."""
        if requested_seconds < 0:
            raise TtlError(f"requested validity {requested_seconds}s is negative")
        if requested_seconds == 0:
            return self.options.default_ttl
        wanted = datetime.timedelta(seconds=requested_seconds)
        if wanted > self.options.max_ttl:
            raise TtlError(f"requested validity {wanted} is more than the maximum {self.options.max_ttl}")
        return wanted

    def sign_workload(self, csr: x509.CertificateSigningRequest, identity: Identity,
                      lifetime: datetime.timedelta) -> list[str]:
        """The PEM chain for a checked CSR, leaf first and ending with the trust bundle (IstioCertificateResponse):
        as Istio's CA answers (security/pkg/server/ca/server.go), the last element is all of `root-cert.pem`."""
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        # Never outlive the signing certificate (a leaf past its issuer's expiry would not verify anyway).
        lifetime = min(lifetime, self.signing_cert.not_valid_after_utc - now)
        leaf = certs.build_leaf(csr, identity, issuer=self.signing_cert, not_before=now, lifetime=lifetime)
        return [certs.pem(leaf.sign(self.key, hashes.SHA256())), *map(certs.pem, self.chain[:-1]),
                "".join(map(certs.pem, self.trust_bundle))]

    def serving_certificate(self, hosts: Sequence[str], *, name: str = "meshward-ca") -> tuple[bytes, bytes]:
        """(key PEM, chain PEM) for one of the reconciler's own TLS endpoints (the CA's, mTLS ADS's), naming every
        host (IP or DNS name) it serves on, so a client verifies it with the root alone. Made at each start, kept
        in memory."""
        key = certs.new_key()
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [_general_name(h) for h in dict.fromkeys(hosts)]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.signing_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(now + SERVING_LIFETIME, self.signing_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        chain = "".join([certs.pem(cert), *map(certs.pem, self.chain[:-1])])
        return certs.key_pem(key), chain.encode()


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _check_chain(key: CaKey, chain: Sequence[x509.Certificate]) -> None:
    """The key is the signing certificate's, every certificate is a CA issued by the next, the last is self-signed."""
    if not chain:
        raise CaError("the CA has no certificate")
    if key.public_key() != chain[0].public_key():
        raise CaError(f"{CA_KEY} is not the key of {CA_CERT}")
    for cert in chain:
        if not _is_ca(cert):
            raise CaError(f"certificate {cert.subject.rfc4514_string()!r} is not a CA (basicConstraints CA:TRUE)")
    for child, parent in zip(chain, [*chain[1:], chain[-1]], strict=True):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError) as err:
            raise CaError(f"{child.subject.rfc4514_string()!r} is not issued by "
                          f"{parent.subject.rfc4514_string()!r}: {err}") from err
        except InvalidSignature as err:
            raise CaError(f"{child.subject.rfc4514_string()!r}: signature does not verify with "
                          f"{parent.subject.rfc4514_string()!r}'s key") from err


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def load_or_create(directory: Path, options: CaOptions = CaOptions()) -> CertificateAuthority:
    """The CA of `directory`: the `cacerts` files there, or a new self-signed root when there are none."""
    present = [name for name in LAYOUT if (directory / name).exists()]
    if not present:
        private_files.ensure_dir(directory)
        for name, data in new_root_files(options).items():
            private_files.create(directory / name, data)
        log.info("made a self-signed root CA in %s", directory)
    elif len(present) != len(LAYOUT):
        missing = ", ".join(name for name in LAYOUT if name not in present)
        raise CaError(f"{directory} has an incomplete cacerts layout: {missing} missing")
    return load(directory, options)


def load(directory: Path, options: CaOptions = CaOptions()) -> CertificateAuthority:
    try:
        files = {name: (directory / name).read_bytes() for name in LAYOUT}
    except OSError as err:
        raise CaError(f"cannot read the CA in {directory}: {err}") from err
    return from_files(files, str(directory), options)


def from_files(files: Mapping[str, bytes], where: str, options: CaOptions = CaOptions()) -> CertificateAuthority:
    """The CA of the `cacerts` layout's contents by file name (a directory's, or a Secret's data), `where` naming
    their origin in errors."""
    missing = [name for name in LAYOUT if name not in files]
    if missing:
        raise CaError(f"{where} has an incomplete cacerts layout: {', '.join(missing)} missing")
    try:
        key = serialization.load_pem_private_key(files[CA_KEY], password=None)
        signing = certs.load_pems(files[CA_CERT])[0]
        chain = certs.load_pems(files[CERT_CHAIN])
        roots = certs.load_pems(files[ROOT_CERT])
    except (ValueError, TypeError) as err:
        raise CaError(f"cannot read the CA in {where}: {err}") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CaError(f"{where}: the CA key ({CA_KEY}) must be ECDSA or RSA")
    # cert-chain.pem starts at ca-cert.pem in Istio's tools and may end at the root: accept it with or without.
    full = [signing, *(c for c in chain if c != signing and c not in roots)]
    if full[-1] not in roots:
        full.append(_issuer_among(full[-1], roots, where))
    return CertificateAuthority(key, full, options, also_trusted=roots)


def _issuer_among(cert: x509.Certificate, roots: Sequence[x509.Certificate], where: str) -> x509.Certificate:
    """The root of the bundle that signed `cert`; CaError when none did."""
    for root in roots:
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return root
    raise CaError(f"no root in {where}/{ROOT_CERT} issued {cert.subject.rfc4514_string()!r}: "
                  f"{CERT_CHAIN} must lead from {CA_CERT} to one of its roots")


def new_root_files(options: CaOptions = CaOptions()) -> dict[str, bytes]:
    """A new self-signed root (Istio's self-signed CA) in the `cacerts` layout, by file name."""
    key = certs.new_key()
    # A name of its own (the key's identifier in it): during a rotation two roots are trusted at once, and TLS
    # stacks pick an issuer by name before they check a signature.
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest.hex()[:12]
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, options.trust_domain),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"meshward root CA {key_id}")])
    now = datetime.datetime.now(datetime.UTC)
    root = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certs.pem(root).encode()
    return {CA_KEY: certs.key_pem(key), CA_CERT: cert_pem, ROOT_CERT: cert_pem, CERT_CHAIN: cert_pem}
