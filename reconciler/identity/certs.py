"""X.509 pieces of workload identity: checking a CSR before anything is signed, building the leaf a CSR asks for,
and the agent's side (a key kept in memory, the CSR that carries its public half).

Leaves follow Istio's (security/pkg/pki/util/generate_cert.go): no subject, so the SPIFFE URI SAN is critical
(RFC 5280 4.2.1.6), key usage digitalSignature + keyEncipherment, extended key usage serverAuth + clientAuth
(a sidecar is both), not a CA, a random serial.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from reconciler.identity.spiffe import Identity

MAX_CSR_BYTES = 64 * 1024


class CsrError(ValueError):
    """A CSR the CA will not sign; the message is the reason the caller is told."""


def parse_csr(pem: str) -> tuple[x509.CertificateSigningRequest, Identity]:
    """The CSR and the one SPIFFE identity it asks for, or CsrError naming what is wrong with it."""
    data = pem.encode()
    if len(data) > MAX_CSR_BYTES:
        raise CsrError(f"the CSR is {len(data)} bytes, over the {MAX_CSR_BYTES // 1024} KiB limit")
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as err:
        raise CsrError(f"the CSR is not a PEM certificate request: {err}") from err
    if not _signature_valid(csr):
        raise CsrError("the CSR's signature does not verify with its own public key")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise CsrError("the CSR's key is neither ECDSA nor RSA")
    return csr, _identity(_uris(csr))


def _signature_valid(csr: x509.CertificateSigningRequest) -> bool:
    try:
        return bool(csr.is_signature_valid)
    except (InvalidSignature, ValueError):
        return False


def _uris(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except ValueError as err:
        raise CsrError(f"the CSR's extensions do not parse: {err}") from err
    if san.get_values_for_type(x509.DNSName) or san.get_values_for_type(x509.IPAddress):
        raise CsrError("a workload CSR asks for a SPIFFE URI SAN only, not DNS names or IP addresses")
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def _identity(uris: list[str]) -> Identity:
    if not uris:
        raise CsrError("the CSR has no URI SAN: it must ask for spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT")
    if len(uris) != 1:
        raise CsrError(f"the CSR asks for {len(uris)} URI SANs; a workload has exactly one SPIFFE identity")
    try:
        return Identity.parse(uris[0])
    except ValueError as err:
        raise CsrError(str(err)) from err


def build_leaf(csr: x509.CertificateSigningRequest, identity: Identity, *, issuer: x509.Certificate,
               not_before: datetime.datetime, lifetime: datetime.timedelta) -> x509.CertificateBuilder:
    """The workload certificate for `csr`'s public key, unsigned; the CA signs it."""
    public_key = csr.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)  # parse_csr checked it
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(_issuer_key(issuer)), critical=False)
    )


def _issuer_key(issuer: x509.Certificate) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    key = issuer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)  # the CA loader checked it
    return key


_LEAF_USAGE = x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                            encipher_only=False, decipher_only=False)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A workload key (ECDSA P-256, Istio's ECC_SIGNATURE_ALGORITHM choice): small and quick to sign with."""
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: ec.EllipticCurvePrivateKey, identity: Identity) -> str:
    """The CSR an agent sends: the public key and the identity, signed by the key it proves to hold."""
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)])
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(san, critical=True).sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, for handing to Envoy over SDS only (never to a file or a log)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_pems(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order; ValueError if there is none or one does not parse."""
    certs = x509.load_pem_x509_certificates(data)
    if not certs:
        raise ValueError("no PEM certificate found")
    return certs
