"""reconciler/xds/ads_auth.py alone: which certificates name a mesh identity, and which node ids an identity may ask
for (Pilot's `checkConnectionIdentity`: the namespace, and the service account when the node names one)."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reconciler.identity.spiffe import Identity
from reconciler.xds import ads_auth
from reconciler.xds.xds_node import NodeInfo

SHOP = Identity("cluster.local", "shop", "web")
NODE = "sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local"


def peer(*uris: str) -> dict[str, list[bytes]]:
    """gRPC's auth context for a client that presented a certificate with these URI SANs."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1)))
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    return {"x509_pem_cert": [cert.public_bytes(serialization.Encoding.PEM)]}


def test_the_one_spiffe_id_of_our_trust_domain_is_the_identity() -> None:
    assert ads_auth.peer_identity(peer(SHOP.uri), "cluster.local") == SHOP


@pytest.mark.parametrize(("context", "reason"), [
    ({}, "no client certificate"),
    (peer(), "0 URI SANs"),
    (peer(SHOP.uri, "spiffe://cluster.local/ns/other/sa/web"), "2 URI SANs"),
    (peer("https://shop.example.com/"), "not a SPIFFE identity"),
    (peer("spiffe://example.org/ns/shop/sa/web"), "not of trust domain 'cluster.local'"),
])
def test_anything_else_is_unauthenticated(context: dict[str, list[bytes]], reason: str) -> None:
    with pytest.raises(ads_auth.Unauthenticated, match=reason):
        ads_auth.peer_identity(context, "cluster.local")


def test_a_proxy_of_the_identitys_namespace_is_allowed() -> None:
    ads_auth.authorize(SHOP, NodeInfo(NODE))
    ads_auth.authorize(SHOP, NodeInfo(NODE, metadata={"SERVICE_ACCOUNT": "web"}))


@pytest.mark.parametrize(("node", "reason"), [
    (NodeInfo("router~10.0.0.2~gw-1.edge~edge.svc.cluster.local"), "namespace 'shop' only"),
    (NodeInfo(NODE, metadata={"SERVICE_ACCOUNT": "admin"}), "as service account 'admin'"),
    (NodeInfo("web-1"), "names no namespace"),
])
def test_another_namespace_or_service_account_is_denied(node: NodeInfo, reason: str) -> None:
    with pytest.raises(ads_auth.Denied, match=reason):
        ads_auth.authorize(SHOP, node)
