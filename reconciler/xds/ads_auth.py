"""Who asks over mTLS ADS (`serve --xds-tls`), and what they may ask for.

The TLS handshake already proved that the client holds a key whose certificate chains to the mesh's trust bundle
(gRPC requires and verifies it). What the certificate says is read here: its one SPIFFE URI SAN,
`spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT`, as the agent's `default` certificate carries it. A
stream is then allowed only the node ids of that namespace, as Pilot authorizes a connection
(pilot/pkg/xds/auth.go, `checkConnectionIdentity`: the SPIFFE namespace must be the proxy's config namespace and,
when the node names one in its metadata, the service account must be the proxy's). Everything a node id is sent
belongs to its namespace, including the gateway `credentialName` secrets resolved there (`compose.secrets_for`),
so this one check is also Pilot's rule for SDS (pilot/pkg/xds/sds.go: a proxy reads secrets of its own
namespace only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cryptography import x509

from reconciler.identity.spiffe import Identity
from reconciler.xds.xds_node import NodeInfo, parse_istio_node_id

SERVICE_ACCOUNT_KEY = "SERVICE_ACCOUNT"  # Istio's node metadata key (pilot/pkg/model: NodeMetadata.ServiceAccount)


class Unauthenticated(Exception):
    """The peer presented no certificate naming one SPIFFE identity of our trust domain."""


class Denied(Exception):
    """An authenticated peer asked for a node id its identity does not cover."""


def peer_identity(auth_context: Mapping[str, Sequence[bytes]], trust_domain: str) -> Identity:
    """The SPIFFE identity of the verified peer certificate of a gRPC call (`context.auth_context()`)."""
    pems = auth_context.get("x509_pem_cert") or ()
    if not pems:
        raise Unauthenticated("the connection carries no client certificate (is it TLS?)")
    cert = x509.load_pem_x509_certificate(pems[0])
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if len(uris) != 1:
        raise Unauthenticated(f"the client certificate has {len(uris)} URI SANs; a workload certificate has exactly "
                              "one SPIFFE identity")
    try:
        identity = Identity.parse(uris[0])
    except ValueError as err:
        raise Unauthenticated(f"the client certificate's URI SAN is not a SPIFFE identity: {err}") from None
    if identity.trust_domain != trust_domain:
        raise Unauthenticated(f"the client certificate is for {identity.uri}, not of trust domain {trust_domain!r}")
    return identity


def authorize(identity: Identity, node: NodeInfo) -> None:
    """Denied unless `node` is a proxy of the identity's namespace (and of its service account, if it names one)."""
    parsed = parse_istio_node_id(node.id)
    if parsed is None:
        raise Denied(f"{identity.uri} asked for node id {node.id!r}, which names no namespace")
    if parsed.namespace != identity.namespace:
        raise Denied(f"{identity.uri} may ask for proxies of namespace {identity.namespace!r} only, not for "
                     f"{node.id} (namespace {parsed.namespace!r})")
    account = node.metadata.get(SERVICE_ACCOUNT_KEY)
    if account and account != identity.service_account:
        raise Denied(f"{identity.uri} asked for {node.id} as service account {account!r}")
