"""The CA: a self-signed root made once and kept (0600 files in a 0700 directory), a plugged-in `cacerts`
intermediate used as it is, workload leaves with the SPIFFE URI SAN and the chain leaf-first to the root, lifetimes
as Istio grants them, and CSRs refused with a reason."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reconciler.identity import ca, certs
from reconciler.identity.spiffe import Identity

WEB = Identity("cluster.local", "shop", "web")


def _signed(authority: ca.CertificateAuthority, identity: Identity = WEB, seconds: int = 0) -> list[x509.Certificate]:
    csr, asked = certs.parse_csr(certs.make_csr(certs.new_key(), identity))
    return [x509.load_pem_x509_certificate(p.encode())
            for p in authority.sign_workload(csr, asked, authority.lifetime(seconds))]


def test_first_start_makes_a_private_root_and_the_next_start_keeps_it(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    first = ca.load_or_create(directory)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == dict.fromkeys(ca.LAYOUT, 0o600)
    again = ca.load_or_create(directory)
    assert again.root == first.root and again.root.subject == again.root.issuer


def test_a_leaf_names_the_workload_and_chains_to_the_root(tmp_path: Path) -> None:
    authority = ca.load_or_create(tmp_path / "ca")
    leaf, root = _signed(authority)
    assert root == authority.root
    leaf.verify_directly_issued_by(root)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/shop/sa/web"]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(hours=24)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_requested_lifetimes_are_honoured_up_to_the_maximum(tmp_path: Path) -> None:
    authority = ca.load_or_create(tmp_path / "ca", ca.CaOptions(max_ttl=datetime.timedelta(hours=2)))
    leaf = _signed(authority, seconds=600)[0]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(seconds=600)
    with pytest.raises(ca.TtlError, match="more than the maximum 2:00:00"):
        authority.lifetime(3 * 3600)
    with pytest.raises(ca.TtlError, match="negative"):
        authority.lifetime(-1)


def _issue_intermediate(tmp_path: Path) -> tuple[Path, x509.Certificate]:
    """An operator's root and an intermediate it signed, written in Istio's cacerts layout."""
    root_dir = tmp_path / "root"
    root = ca.load_or_create(root_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-1 intermediate")]))
        .issuer_name(root.root.subject).public_key(key.public_key()).serial_number(7)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root.key, hashes.SHA256()))
    plugged = tmp_path / "cacerts"
    plugged.mkdir()
    (plugged / ca.CA_CERT).write_text(certs.pem(intermediate))
    (plugged / ca.CA_KEY).write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    (plugged / ca.ROOT_CERT).write_text(certs.pem(root.root))
    (plugged / ca.CERT_CHAIN).write_text(certs.pem(intermediate) + certs.pem(root.root))
    return plugged, root.root


def test_a_plugged_in_intermediate_signs_and_the_chain_ends_at_the_operators_root(tmp_path: Path) -> None:
    plugged, root = _issue_intermediate(tmp_path)
    authority = ca.load_or_create(plugged)
    leaf, intermediate, top = _signed(authority)
    assert top == root and intermediate == authority.signing_cert
    leaf.verify_directly_issued_by(intermediate)
    assert sorted(p.name for p in plugged.iterdir()) == sorted(ca.LAYOUT)  # nothing made beside it


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path: Path) -> None:
    plugged, _ = _issue_intermediate(tmp_path)
    (plugged / ca.CA_KEY).write_bytes((tmp_path / "root" / ca.CA_KEY).read_bytes())
    with pytest.raises(ca.CaError, match="ca-key.pem is not the key of ca-cert.pem"):
        ca.load_or_create(plugged)


def test_a_chain_that_does_not_reach_the_root_is_refused(tmp_path: Path) -> None:
    plugged, _ = _issue_intermediate(tmp_path)
    (plugged / ca.ROOT_CERT).write_text(certs.pem(ca.load_or_create(tmp_path / "other").root))
    with pytest.raises(ca.CaError, match="no root in .*root-cert.pem issued"):
        ca.load_or_create(plugged)


def test_an_incomplete_layout_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    plugged, _ = _issue_intermediate(tmp_path)
    (plugged / ca.CERT_CHAIN).unlink()
    with pytest.raises(ca.CaError, match="cert-chain.pem missing"):
        ca.load_or_create(plugged)


def test_the_serving_certificate_names_every_address(tmp_path: Path) -> None:
    authority = ca.load_or_create(tmp_path / "ca")
    _, chain = authority.serving_certificate(["127.0.0.1", "meshward.istio-system.svc", "127.0.0.1"])
    cert = x509.load_pem_x509_certificates(chain)[0]
    cert.verify_directly_issued_by(authority.root)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["meshward.istio-system.svc"]


@pytest.mark.parametrize(("csr", "reason"), [
    ("not a csr", "not a PEM certificate request"),
    ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "not a PEM"),
    ("x" * (64 * 1024 + 1), "over the 64 KiB limit"),
])
def test_malformed_or_oversized_csrs_are_refused(csr: str, reason: str) -> None:
    with pytest.raises(certs.CsrError, match=reason):
        certs.parse_csr(csr)


def _csr_with(names: list[x509.GeneralName]) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
    csr = builder.sign(certs.new_key(), hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(("names", "reason"), [
    ([], "no URI SAN"),
    ([x509.UniformResourceIdentifier(WEB.uri), x509.UniformResourceIdentifier(WEB.uri + "x")], "2 URI SANs"),
    ([x509.UniformResourceIdentifier("https://shop.example.com")], "is not spiffe://"),
    ([x509.UniformResourceIdentifier(WEB.uri), x509.DNSName("web.shop")], "SPIFFE URI SAN only"),
])
def test_csrs_asking_for_anything_but_one_spiffe_identity_are_refused(names: list[x509.GeneralName],
                                                                      reason: str) -> None:
    with pytest.raises(certs.CsrError, match=reason):
        certs.parse_csr(_csr_with(names))


def test_a_csr_whose_signature_does_not_verify_is_refused() -> None:
    good = x509.load_pem_x509_csr(certs.make_csr(certs.new_key(), WEB).encode())
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0xFF  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(certs.CsrError, match="signature does not verify"):
        certs.parse_csr(tampered)


def test_a_bundle_of_two_roots_is_handed_out_whole(tmp_path: Path) -> None:
    """A root rotation's overlap: root-cert.pem holds the signing root and the next one; every leaf comes with both."""
    current, following = ca.load_or_create(tmp_path / "current"), ca.load_or_create(tmp_path / "next")
    (tmp_path / "current" / ca.ROOT_CERT).write_text(certs.pem(current.root) + certs.pem(following.root))
    authority = ca.load(tmp_path / "current")
    assert authority.trust_bundle == (current.root, following.root)
    csr, asked = certs.parse_csr(certs.make_csr(certs.new_key(), WEB))
    leaf, bundle = authority.sign_workload(csr, asked, authority.lifetime(0))
    assert x509.load_pem_x509_certificates(bundle.encode()) == [current.root, following.root]
    x509.load_pem_x509_certificate(leaf.encode()).verify_directly_issued_by(current.root)
