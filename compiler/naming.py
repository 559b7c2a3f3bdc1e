"""Pilot-compatible names for the Envoy resources meshward makes, and the parsing of Istio node ids.

Operators read these names in `istioctl proxy-config`, Envoy's admin page and stats, so they match what Istio's
Pilot generates (pilot/pkg/model and pilot/pkg/networking/util): `outbound|9080|v1|reviews.shop.svc.cluster.local`,
`inbound|9080||`, listener `0.0.0.0_9080`, route config `9080`, virtual host `reviews.shop.svc.cluster.local:9080`,
gateway route configs `http.8080` and `https.443.<port name>.<gateway>.<namespace>`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from compiler import model

DOMAIN_SUFFIX = "cluster.local"
WILDCARD = "0.0.0.0"
LOCALHOST = "127.0.0.1"
DEFAULT_ROUTE = "default"  # Pilot's name for the catch-all route of a host without VirtualService
BLACKHOLE_VHOST = "blackhole"  # Pilot's virtual host for a gateway route config without any routes
MESH_GATEWAY = "mesh"  # the gateway name that means the mesh's sidecars


def service_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.{DOMAIN_SUFFIX}"


def outbound_cluster(port: int, subset: str, host: str) -> str:
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster(port: int) -> str:
    return f"inbound|{port}||"


def outbound_sni(port: int, subset: str, host: str) -> str:
    """The SNI Istio sets for ISTIO_MUTUAL upstreams (model.BuildDNSSrvSubsetKey)."""
    return f"outbound_.{port}_.{subset}_.{host}"


def listener(bind: str, port: int) -> str:
    return f"{bind}_{port}"


def outbound_route_config(port: int) -> str:
    return str(port)


def virtual_host(host: str, port: int) -> str:
    return f"{host}:{port}"


def proxyless_route_config(port: int, host: str) -> str:
    """A proxyless gRPC client's route config of one service port: Istio's grpcgen names it after the service's
    cluster (clusterKey, pilot/pkg/networking/grpcgen/lds.go)."""
    return outbound_cluster(port, "", host)


def gateway_route_config(port: int, *, tls_terminated: bool, port_name: str, gateway: str, namespace: str,
                         bind: str = "") -> str:
    """Plain HTTP servers share `http.PORT`; each TLS-terminating server gets its own route config; a server's
    `bind` address is appended (pilot/pkg/model/gateway.go gatewayRDSRouteName)."""
    suffix = f".{bind}" if bind else ""
    if tls_terminated:
        return f"https.{port}.{port_name}.{gateway}.{namespace}{suffix}"
    return f"http.{port}{suffix}"


# The SDS secrets of the workload's mesh identity (ISTIO_MUTUAL), as istio-agent serves them
# (pkg/security/security.go: WorkloadKeyCertResourceName, RootCertReqResourceName).
ISTIO_DEFAULT_SECRET = "default"
ISTIO_ROOT_SECRET = "ROOTCA"
TLS_MODE_LABEL = "security.istio.io/tlsMode"  # set by injection on workloads whose sidecar takes mTLS
# the labels of a locality's region, zone and subzone (pilot/pkg/serviceregistry/util/label AugmentLabels)
TOPOLOGY_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone")
ISTIO_TLS_MODE = "istio"
CANONICAL_NAME_LABEL = "service.istio.io/canonical-name"
CANONICAL_REVISION_LABEL = "service.istio.io/canonical-revision"
# a workload's app name (pkg/kube/labels/labels.go nameLabelsBackwardCompatible, in Istio's order)
APP_LABELS = ("app", "app.kubernetes.io/name", CANONICAL_NAME_LABEL)
# the labels a proxy's tracing reads (its Istio span tags, its OpenTelemetry service name)
TRACING_LABELS = (*APP_LABELS, CANONICAL_REVISION_LABEL)


def file_cert_secret(cert: str, key: str) -> str:
    return f"file-cert:{cert}~{key}"


def file_root_secret(ca: str) -> str:
    return f"file-root:{ca}"


def credential_ca_secret(credential: str) -> str:
    """Istio reads the CA bundle of a credentialName from `<name>-cacert`."""
    return f"{credential}-cacert"


# -- node ids ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class NodeId:
    kind: model.ProxyKind
    ip: str
    name: str
    namespace: str
    domain: str

    def __str__(self) -> str:
        return f"{self.kind}~{self.ip}~{self.name}.{self.namespace}~{self.domain}"


def node_id(kind: model.ProxyKind, ip: str, name: str, namespace: str) -> str:
    return str(NodeId(kind, ip, name, namespace, f"{namespace}.svc.{DOMAIN_SUFFIX}"))


class InvalidNodeId(LookupError):
    """A node id that is not `TYPE~IP~NAME.NAMESPACE~DOMAIN` (MW0402): no tree can have a proxy for it, which is a
    different mistake from a well-formed id that the tree has no workload for (MW0401)."""


def parse_node_id(text: str) -> NodeId:
    """`TYPE~IP~NAME.NAMESPACE~DOMAIN` as the Istio agent sends it; ValueError when malformed."""
    parts = text.split("~")
    if len(parts) != 4:
        raise ValueError(f"node id {text!r} does not have 4 '~'-separated parts (TYPE~IP~NAME.NAMESPACE~DOMAIN)")
    kind_text, ip, ident, domain = parts
    try:
        kind = model.ProxyKind(kind_text)
    except ValueError:
        raise ValueError(f"node id {text!r}: type {kind_text!r} is not sidecar or router") from None
    name, dot, namespace = ident.rpartition(".")
    if not dot:
        # Pilot falls back to the domain's first label for the namespace
        name, namespace = ident, domain.split(".", 1)[0]
    if not name or not namespace:
        raise ValueError(f"node id {text!r}: {ident!r} is not NAME.NAMESPACE")
    return NodeId(kind, ip, name, namespace, domain)


# -- hosts -------------------------------------------------------------------------------------------------------


def resolve_host(host: str, namespace: str) -> str:
    """A short name in a policy means a Kubernetes service of the policy's namespace (Istio's ResolveShortnameToFQDN)."""
    host = host.lower()
    if "." in host or host == "*":
        return host
    return service_host(host, namespace)


def resolve_gateway(ref: str, namespace: str) -> str:
    """`mesh`, `ns/name`, or a bare name meaning a Gateway in the referring namespace."""
    if ref == MESH_GATEWAY or "/" in ref:
        return ref
    if "." in ref:  # legacy FQDN form name.namespace.svc.cluster.local
        name, _, rest = ref.partition(".")
        return f"{rest.split('.', 1)[0]}/{name}"
    return f"{namespace}/{ref}"


def host_matches(pattern: str, host: str) -> bool:
    """Istio host matching: exact, `*`, or a `*.suffix` wildcard that matches any host ending in `.suffix`."""
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*"):
        suffix = pattern[1:]
        if host.startswith("*"):
            return host[1:].endswith(suffix)
        return host.endswith(suffix)
    return False


def hosts_intersect(a: str, b: str) -> bool:
    return host_matches(a, b) or host_matches(b, a)


class HostSet:
    """A set of hosts answering Istio's host-matching questions without a scan per question: exact hosts are a
    hash lookup, only wildcard hosts (rare: `*.example.com` ServiceEntries and VirtualServices) are scanned."""

    __slots__ = ("exact", "wild")

    def __init__(self, hosts: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.wild: list[str] = []
        for h in hosts:
            (self.wild.append(h) if h.startswith("*") else self.exact.add(h))

    def intersects(self, pattern: str) -> bool:
        """Some host here intersects `pattern` (hosts_intersect)."""
        if pattern.startswith("*"):
            return any(hosts_intersect(pattern, h) for h in (*self.exact, *self.wild))
        return pattern in self.exact or any(host_matches(w, pattern) for w in self.wild)

    def matched_by(self, pattern: str) -> bool:
        """Some host here is matched by `pattern` (host_matches(pattern, host))."""
        if pattern == "*":
            return bool(self.exact or self.wild)
        if pattern.startswith("*"):
            return any(host_matches(pattern, h) for h in (*self.exact, *self.wild))
        return pattern in self.exact


def alt_hosts(host: str, proxy_namespace: str) -> list[str]:
    """The short forms a client in `proxy_namespace` may use for a cluster-local host (GenerateAltVirtualHosts)."""
    suffix = f".svc.{DOMAIN_SUFFIX}"
    if not host.endswith(suffix):
        return []
    name, _, namespace = host[: -len(suffix)].partition(".")
    if not name or not namespace or "." in namespace:
        return []
    out = [f"{name}.{namespace}", f"{name}.{namespace}.svc"]
    return [name, *out] if namespace == proxy_namespace else out
