"""What meshward does with every field of every kind it models: the one table that says it, so that no field is
validated and then dropped without a word.

Each field (a path in the kind's schema, `[]` for list items, `{}` for map values) is
- compiled: it reaches the Envoy config; `case` names the golden case (tests/golden/cases) whose input sets it;
- warned: MW0403 at the field's line whenever a document sets it (`unsupported.field_notes` reads this table);
- inert: it changes no proxy config meshward can build, for the reason given (where Istio would use it, the
  feature that would is itself warned about).
A field's entry covers the fields below it that have none. DestinationRule traffic policies are written once as
`TrafficPolicy.`: the same table applies at `spec.trafficPolicy`, in `portLevelSettings[]` and in each subset's.

tests/translate/test_field_coverage.py walks Istio's CRD schemas (and meshward's own schemas of the Kubernetes
kinds) and requires an entry for every field and a golden case that sets every compiled one; README's lists of
warned and inert fields are generated from here (`meshward fields --write`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Compiled:
    case: str


@dataclasses.dataclass(frozen=True, slots=True)
class Warned:
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Inert:
    reason: str


Entry = Compiled | Warned | Inert
TRAFFIC_POLICY = "TrafficPolicy"
# where a DestinationRule's traffic policy sits (the table's `TrafficPolicy.` paths apply at each)
_POLICY_AT = ("spec.trafficPolicy", "spec.trafficPolicy.portLevelSettings[]", "spec.subsets[].trafficPolicy",
              "spec.subsets[].trafficPolicy.portLevelSettings[]")
_POLICY_RE = re.compile(r"^spec(?:\.subsets\[\])?\.trafficPolicy(?:\.portLevelSettings\[\])?")

_SUBNETS = ("the route applies to traffic of every address: meshward matches no addresses without traffic capture, "
            "so narrow the route by port or sourceLabels instead")
_TARGET_REFS = ("it binds Kubernetes Gateways and ambient waypoints, which meshward does not build: MW0227 at each "
                "target, and no proxy enforces the policy")
_MESH_NETWORKS = "multi-network meshes (network gateways) are not built"
_ZONE_AWARE = "zone-aware load balancing is not built: localityLbSetting (the rule's, else MeshConfig's) applies"
_SE_IDENTITY = ("ServiceEntry identities are not among the SANs auto mTLS and ISTIO_MUTUAL verify toward the "
                "service: set subjectAltNames in a DestinationRule's tls instead")
_CERTS = "not emitted: the server certificate and client validation come from one certificate or credentialName"

_DR = "DestinationRule"

TABLE: dict[str, dict[str, Entry]] = {
    "VirtualService": {
        "spec.hosts": Compiled("vs-match-uri"),
        "spec.gateways": Compiled("gw-http-ports-hosts"),
        "spec.exportTo": Compiled("vs-delegate"),
        "spec.http": Compiled("vs-match-uri"),
        "spec.http[].name": Compiled("vs-match-request"),
        "spec.http[].match[].name": Compiled("vs-source-retry-options"),
        "spec.http[].match[].uri": Compiled("vs-match-uri"),
        "spec.http[].match[].ignoreUriCase": Compiled("vs-match-uri"),
        "spec.http[].match[].headers": Compiled("vs-match-request"),
        "spec.http[].match[].withoutHeaders": Compiled("vs-match-request"),
        "spec.http[].match[].method": Compiled("vs-match-request"),
        "spec.http[].match[].authority": Compiled("vs-match-request"),
        "spec.http[].match[].scheme": Compiled("vs-match-request"),
        "spec.http[].match[].queryParams": Compiled("vs-match-request"),
        "spec.http[].match[].port": Compiled("vs-source-retry-options"),
        "spec.http[].match[].gateways": Compiled("vs-source-retry-options"),
        "spec.http[].match[].sourceLabels": Compiled("vs-source-retry-options"),
        "spec.http[].match[].sourceNamespace": Compiled("vs-source-retry-options"),
        "spec.http[].match[].statPrefix": Compiled("vs-source-retry-options"),
        "spec.http[].route": Compiled("vs-weighted-destinations"),
        "spec.http[].route[].headers": Compiled("vs-weighted-destinations"),
        "spec.http[].redirect": Compiled("vs-redirect-direct-response"),
        "spec.http[].directResponse": Compiled("vs-redirect-direct-response"),
        "spec.http[].delegate": Compiled("vs-delegate"),
        "spec.http[].rewrite.uri": Compiled("vs-rewrite"),
        "spec.http[].rewrite.authority": Compiled("vs-rewrite"),
        "spec.http[].rewrite.uriRegexRewrite": Compiled("vs-rewrite"),
        "spec.http[].timeout": Compiled("vs-timeout-retries"),
        "spec.http[].retries.attempts": Compiled("vs-timeout-retries"),
        "spec.http[].retries.perTryTimeout": Compiled("vs-timeout-retries"),
        "spec.http[].retries.retryOn": Compiled("vs-timeout-retries"),
        "spec.http[].retries.retryRemoteLocalities": Compiled("vs-source-retry-options"),
        "spec.http[].retries.backoff": Compiled("vs-source-retry-options"),
        "spec.http[].retries.retryIgnorePreviousHosts": Compiled("vs-source-retry-options"),
        "spec.http[].fault.delay.fixedDelay": Compiled("vs-fault-injection"),
        "spec.http[].fault.delay.percentage": Compiled("vs-fault-injection"),
        "spec.http[].fault.delay.percent": Compiled("vs-source-retry-options"),
        "spec.http[].fault.delay.exponentialDelay": Warned("exponential delays are not injected (Istio does not "
                                                           "implement them either); use fixedDelay"),
        "spec.http[].fault.abort.httpStatus": Compiled("vs-fault-injection"),
        "spec.http[].fault.abort.grpcStatus": Compiled("vs-fault-injection"),
        "spec.http[].fault.abort.percentage": Compiled("vs-fault-injection"),
        "spec.http[].fault.abort.http2Error": Warned("HTTP/2 error aborts are not injected (Istio does not implement "
                                                     "them either); use httpStatus or grpcStatus"),
        "spec.http[].mirror": Compiled("vs-mirror"),
        "spec.http[].mirrorPercentage": Compiled("vs-mirror"),
        "spec.http[].mirrorPercent": Compiled("vs-source-retry-options"),
        "spec.http[].mirror_percent": Compiled("vs-source-retry-options"),
        "spec.http[].mirrors": Compiled("vs-mirror"),
        "spec.http[].corsPolicy.allowOrigins": Compiled("vs-cors"),
        "spec.http[].corsPolicy.allowOrigin": Compiled("vs-source-retry-options"),
        "spec.http[].corsPolicy.allowMethods": Compiled("vs-cors"),
        "spec.http[].corsPolicy.allowHeaders": Compiled("vs-cors"),
        "spec.http[].corsPolicy.exposeHeaders": Compiled("vs-cors"),
        "spec.http[].corsPolicy.maxAge": Compiled("vs-cors"),
        "spec.http[].corsPolicy.allowCredentials": Compiled("vs-cors"),
        "spec.http[].corsPolicy.unmatchedPreflights": Compiled("vs-source-retry-options"),
        "spec.http[].headers": Compiled("vs-header-operations"),
        "spec.tcp": Compiled("vs-tcp-routes"),
        "spec.tcp[].match[].port": Compiled("vs-tcp-routes"),
        "spec.tcp[].match[].gateways": Compiled("vs-source-retry-options"),
        "spec.tcp[].match[].sourceLabels": Compiled("vs-source-retry-options"),
        "spec.tcp[].match[].sourceNamespace": Compiled("vs-source-retry-options"),
        "spec.tcp[].match[].destinationSubnets": Warned(_SUBNETS),
        "spec.tcp[].match[].sourceSubnet": Warned(_SUBNETS),
        "spec.tcp[].route": Compiled("vs-tcp-routes"),
        "spec.tls": Compiled("vs-tls-routes"),
        "spec.tls[].match[].sniHosts": Compiled("vs-tls-routes"),
        "spec.tls[].match[].port": Compiled("vs-tls-routes"),
        "spec.tls[].match[].gateways": Compiled("vs-source-retry-options"),
        "spec.tls[].match[].sourceLabels": Compiled("vs-source-retry-options"),
        "spec.tls[].match[].sourceNamespace": Compiled("vs-source-retry-options"),
        "spec.tls[].match[].destinationSubnets": Warned(_SUBNETS),
        "spec.tls[].route": Compiled("vs-tls-routes"),
    },
    "DestinationRule": {
        "spec.host": Compiled("dr-load-balancer-simple"),
        "spec.exportTo": Compiled("dr-connection-options"),
        "spec.subsets": Compiled("dr-subset-overrides"),
        "spec.workloadSelector": Compiled("dr-connection-options"),
        "TrafficPolicy": Compiled("dr-load-balancer-simple"),
        "TrafficPolicy.port": Compiled("dr-port-level-settings"),
        "TrafficPolicy.portLevelSettings": Compiled("dr-port-level-settings"),
        "TrafficPolicy.loadBalancer.simple": Compiled("dr-load-balancer-simple"),
        "TrafficPolicy.loadBalancer.consistentHash.httpHeaderName": Compiled("dr-consistent-hash"),
        "TrafficPolicy.loadBalancer.consistentHash.httpCookie.name": Compiled("dr-consistent-hash"),
        "TrafficPolicy.loadBalancer.consistentHash.httpCookie.path": Compiled("dr-consistent-hash"),
        "TrafficPolicy.loadBalancer.consistentHash.httpCookie.ttl": Compiled("dr-consistent-hash"),
        "TrafficPolicy.loadBalancer.consistentHash.httpCookie.attributes": Warned(
            "cookie attributes are not set on the generated cookie"),
        "TrafficPolicy.loadBalancer.consistentHash.useSourceIp": Compiled("dr-consistent-hash"),
        "TrafficPolicy.loadBalancer.consistentHash.httpQueryParameterName": Compiled("dr-consistent-hash"),
        "TrafficPolicy.loadBalancer.consistentHash.ringHash": Compiled("dr-consistent-hash"),
        "TrafficPolicy.loadBalancer.consistentHash.maglev": Compiled("dr-consistent-hash"),
        "TrafficPolicy.loadBalancer.consistentHash.minimumRingSize": Compiled("dr-connection-options"),
        "TrafficPolicy.loadBalancer.localityLbSetting": Compiled("dr-locality-lb"),
        "TrafficPolicy.loadBalancer.localityLbSetting.failoverPriority": Compiled("dr-locality-failover-priority"),
        "TrafficPolicy.loadBalancer.zoneAwareLbSetting": Warned(_ZONE_AWARE),
        "TrafficPolicy.loadBalancer.warmup": Warned("slow start (warmup) is not configured"),
        "TrafficPolicy.loadBalancer.warmupDurationSecs": Warned("slow start (warmup) is not configured"),
        "TrafficPolicy.loadBalancer.backendUtilization": Warned("utilization-based load balancing is not built"),
        "TrafficPolicy.connectionPool.tcp.maxConnections": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.tcp.connectTimeout": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.tcp.tcpKeepalive": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.tcp.maxConnectionDuration": Compiled("dr-connection-options"),
        "TrafficPolicy.connectionPool.tcp.idleTimeout": Compiled("dr-connection-options"),
        "TrafficPolicy.connectionPool.http.http1MaxPendingRequests": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.http.http2MaxRequests": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.http.maxRequestsPerConnection": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.http.maxRetries": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.http.idleTimeout": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.http.h2UpgradePolicy": Compiled("dr-connection-pool"),
        "TrafficPolicy.connectionPool.http.maxConcurrentStreams": Compiled("dr-connection-options"),
        "TrafficPolicy.connectionPool.http.http2KeepAlive": Compiled("dr-connection-options"),
        "TrafficPolicy.connectionPool.http.useClientProtocol": Compiled("dr-connection-options"),
        "TrafficPolicy.outlierDetection.consecutive5xxErrors": Compiled("dr-outlier-detection"),
        "TrafficPolicy.outlierDetection.consecutiveErrors": Compiled("dr-connection-options"),
        "TrafficPolicy.outlierDetection.consecutiveGatewayErrors": Compiled("dr-outlier-detection"),
        "TrafficPolicy.outlierDetection.interval": Compiled("dr-outlier-detection"),
        "TrafficPolicy.outlierDetection.baseEjectionTime": Compiled("dr-outlier-detection"),
        "TrafficPolicy.outlierDetection.maxEjectionPercent": Compiled("dr-outlier-detection"),
        "TrafficPolicy.outlierDetection.minHealthPercent": Compiled("dr-outlier-detection"),
        "TrafficPolicy.outlierDetection.splitExternalLocalOriginErrors": Warned(
            "local-origin errors are not counted apart"),
        "TrafficPolicy.outlierDetection.consecutiveLocalOriginFailures": Warned(
            "local-origin errors are not counted apart"),
        "TrafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes": Warned(
            "every 5xx counts toward consecutive5xxErrors, not only the codes listed"),
        "TrafficPolicy.tls.mode": Compiled("dr-tls-origination"),
        "TrafficPolicy.tls.caCertificates": Compiled("dr-tls-origination"),
        "TrafficPolicy.tls.clientCertificate": Compiled("dr-tls-origination"),
        "TrafficPolicy.tls.privateKey": Compiled("dr-tls-origination"),
        "TrafficPolicy.tls.credentialName": Compiled("dr-connection-options"),
        "TrafficPolicy.tls.sni": Compiled("dr-tls-origination"),
        "TrafficPolicy.tls.subjectAltNames": Compiled("dr-tls-origination"),
        "TrafficPolicy.tls.insecureSkipVerify": Compiled("dr-tls-origination"),
        "TrafficPolicy.tls.caCrl": Warned("certificate revocation lists are not checked"),
        "TrafficPolicy.tunnel": Warned("HTTP CONNECT tunneling to the upstream is not built"),
        "TrafficPolicy.proxyProtocol": Warned("the PROXY protocol header is not sent upstream"),
        "TrafficPolicy.retryBudget": Warned("retry budgets are not set: maxRetries alone limits retries"),
    },
    "Gateway": {
        "spec.selector": Compiled("gw-http-ports-hosts"),
        "spec.servers": Compiled("gw-http-ports-hosts"),
        "spec.servers[].port.number": Compiled("gw-http-ports-hosts"),
        "spec.servers[].port.name": Compiled("gw-https-termination"),
        "spec.servers[].port.protocol": Compiled("gw-http-ports-hosts"),
        "spec.servers[].port.targetPort": Inert("Pilot reads a Gateway port's target from the gateway's Service"),
        "spec.servers[].bind": Compiled("policies-example"),
        "spec.servers[].hosts": Compiled("gw-http-ports-hosts"),
        "spec.servers[].name": Compiled("gw-pilot-ports-merge"),
        "spec.servers[].defaultEndpoint": Warned("gateway servers do not forward to a default endpoint"),
        "spec.servers[].tls.httpsRedirect": Compiled("gw-https-termination"),
        "spec.servers[].tls.mode": Compiled("gw-https-termination"),
        "spec.servers[].tls.serverCertificate": Compiled("gw-https-termination"),
        "spec.servers[].tls.privateKey": Compiled("gw-https-termination"),
        "spec.servers[].tls.caCertificates": Compiled("gw-https-termination"),
        "spec.servers[].tls.credentialName": Compiled("gw-pilot-ports-merge"),
        "spec.servers[].tls.subjectAltNames": Compiled("gw-https-termination"),
        "spec.servers[].tls.minProtocolVersion": Compiled("gw-https-termination"),
        "spec.servers[].tls.maxProtocolVersion": Compiled("gw-pilot-ports-merge"),
        "spec.servers[].tls.credentialNames": Warned(_CERTS),
        "spec.servers[].tls.tlsCertificates": Warned(_CERTS),
        "spec.servers[].tls.caCertCredentialName": Warned(_CERTS),
        "spec.servers[].tls.caCrl": Warned("certificate revocation lists are not checked"),
        "spec.servers[].tls.cipherSuites": Warned("Envoy's default cipher suites are used"),
        "spec.servers[].tls.ecdhCurves": Warned("Envoy's default ECDH curves are used"),
        "spec.servers[].tls.verifyCertificateHash": Warned("client certificates are not pinned by hash"),
        "spec.servers[].tls.verifyCertificateSpki": Warned("client certificates are not pinned by SPKI"),
        "spec.servers[].tls.insecureSkipVerify": Warned("client certificates are verified whenever a CA is given"),
    },
    "ServiceEntry": {
        "spec.hosts": Compiled("se-mesh-external-dns"),
        "spec.addresses": Compiled("se-mesh-internal-static"),
        "spec.ports": Compiled("se-mesh-external-dns"),
        "spec.location": Compiled("se-mesh-external-dns"),
        "spec.resolution": Compiled("se-mesh-external-dns"),
        "spec.exportTo": Compiled("se-mesh-internal-static"),
        "spec.workloadSelector": Compiled("se-mesh-internal-static"),
        "spec.endpoints": Compiled("se-mesh-internal-static"),
        "spec.endpoints[].network": Warned(_MESH_NETWORKS),
        "spec.endpoints[].serviceAccount": Warned(_SE_IDENTITY),
        "spec.subjectAltNames": Warned(_SE_IDENTITY),
    },
    "WorkloadEntry": {
        "spec.address": Compiled("se-mesh-internal-static"),
        "spec.labels": Compiled("se-mesh-internal-static"),
        "spec.ports": Compiled("se-mesh-internal-static"),
        "spec.locality": Compiled("se-mesh-internal-static"),
        "spec.weight": Compiled("se-mesh-internal-static"),
        "spec.network": Warned(_MESH_NETWORKS),
        "spec.serviceAccount": Compiled("auto-mtls"),
    },
    "Sidecar": {
        "spec.workloadSelector": Compiled("sidecar-egress-scope"),
        "spec.egress": Compiled("sidecar-egress-scope"),
        "spec.egress[].port.targetPort": Inert("Istio reads targetPort on ServiceEntry ports only"),
        "spec.ingress": Compiled("sidecar-ingress"),
        "spec.ingress[].port.targetPort": Inert("Istio reads targetPort on ServiceEntry ports only"),
        "spec.ingress[].tls": Warned("inbound TLS termination is not built"),
        "spec.ingress[].connectionPool": Warned("inbound connection pools are not set"),
        "spec.inboundConnectionPool": Warned("inbound connection pools are not set"),
        "spec.outboundTrafficPolicy": Compiled("sidecar-egress-scope"),
        "spec.outboundTrafficPolicy.mode": Compiled("sidecar-egress-scope"),
        "spec.outboundTrafficPolicy.egressProxy": Warned("unknown destinations are not sent to an egress proxy"),
    },
    "PeerAuthentication": {
        "spec.selector": Compiled("peer-authn-modes"),
        "spec.mtls": Compiled("peer-authn-modes"),
        "spec.portLevelMtls": Compiled("peer-authn-modes"),
    },
    "AuthorizationPolicy": {
        "spec.selector": Compiled("authz-policies"),
        "spec.targetRef": Inert(_TARGET_REFS),
        "spec.targetRefs": Inert(_TARGET_REFS),
        "spec.action": Compiled("authz-policies"),
        "spec.provider": Compiled("authz-custom"),
        "spec.rules": Compiled("authz-policies"),
    },
    "RequestAuthentication": {
        "spec.selector": Compiled("request-authn-jwt"),
        "spec.targetRef": Inert(_TARGET_REFS),
        "spec.targetRefs": Inert(_TARGET_REFS),
        "spec.jwtRules": Compiled("request-authn-jwt"),
        "spec.jwtRules[].jwksUri": Compiled("request-authn-jwks-uri"),
        "spec.jwtRules[].jwks_uri": Compiled("request-authn-jwks-uri"),
        "spec.jwtRules[].timeout": Inert("it bounds fetching jwksUri (or discovering it from the issuer), "
                                         "which the reconciler does before the build"),
    },
    "Telemetry": {
        "spec.selector": Compiled("telemetry-access-log"),
        "spec.targetRef": Inert(_TARGET_REFS),
        "spec.targetRefs": Inert(_TARGET_REFS),
        "spec.accessLogging": Compiled("telemetry-access-log"),
        "spec.accessLogging[].filter": Compiled("telemetry-log-filter"),
        "spec.tracing": Compiled("telemetry-tracing"),
        "spec.tracing[].disableContextPropagation": Warned("the Envoy meshward emits for has no switch for it: "
                                                           "trace context headers are propagated"),
        "spec.metrics": Compiled("telemetry-metrics"),
    },
    "Service": {
        "spec.ports": Compiled("shop"),
        "spec.ports[].protocol": Inert("Istio reads a port's protocol from its name or appProtocol"),
        "spec.ports[].nodePort": Inert("Pilot reads node ports only for gateways exposed through node selectors"),
        "spec.selector": Compiled("shop"),
        "spec.type": Compiled("svc-externalname-alias"),
        "spec.clusterIP": Compiled("svc-externalname-alias"),
        "spec.clusterIPs": Compiled("svc-externalname-alias"),
        "spec.externalName": Compiled("svc-externalname-alias"),
        "spec.externalIPs": Warned(_MESH_NETWORKS),
        "spec.loadBalancerIP": Inert("the load balancer's address is outside the mesh's routing"),
        "spec.ipFamilies": Inert("addresses are used as listed"),
        "spec.ipFamilyPolicy": Inert("addresses are used as listed"),
        "spec.externalTrafficPolicy": Inert("it applies to the node's load balancer, outside the mesh"),
        "spec.sessionAffinity": Warned("session affinity is not kept: use a DestinationRule consistentHash "
                                       "(useSourceIp) instead"),
        "spec.publishNotReadyAddresses": Warned("endpoints that are not ready are left out anyway"),
        "spec.internalTrafficPolicy": Warned("Local is not honoured: endpoints of every node are used"),
    },
}


def table_path(kind: str, path: str) -> str:
    """The table's name for a schema path: a DestinationRule traffic-policy field as `TrafficPolicy.<field>`."""
    if kind == _DR:
        return _POLICY_RE.sub(TRAFFIC_POLICY, path, count=1)
    return path


def entry_for(kind: str, path: str) -> tuple[str, Entry] | None:
    """The entry that decides `path` (a schema path): its own, else its nearest ancestor's."""
    entries = TABLE.get(kind, {})
    key = table_path(kind, path)
    while key:
        if key in entries:
            return key, entries[key]
        key = re.sub(r"(\[\]|\{\})?\.?[^.\[{]*$", "", key) if "." in key else ""
    return None


def schema_paths(kind: str, key: str) -> tuple[str, ...]:
    """The schema paths a table key stands for (a `TrafficPolicy.` key stands for four)."""
    if kind == _DR and key.startswith(TRAFFIC_POLICY):
        return tuple(at + key[len(TRAFFIC_POLICY):] for at in _POLICY_AT)
    return (key,)


class Finder:
    """Finds the fields of a document that some table keys of one kind name: a trie of their schema paths, built
    once, so that a document is walked only along those paths (its other fields are not visited)."""

    def __init__(self, kind: str, keys: Iterable[str]) -> None:
        self._trie: dict[str, Any] = {}
        for key in keys:
            for path in schema_paths(kind, key):
                node = self._trie
                for seg in re.findall(r"\[\]|\{\}|[^.\[{]+", path):
                    node = node.setdefault(seg, {})
                node[""] = key

    def find(self, data: Mapping[str, Any]) -> Iterator[tuple[str, tuple[str | int, ...]]]:
        """(table key, document path) of each field of `data` (a whole document) that is set."""
        yield from _walk(self._trie, data, ())


def _walk(trie: Mapping[str, Any], value: Any, at: tuple[str | int, ...]) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    if "" in trie and value is not None:
        yield trie[""], at
    if isinstance(value, list) and "[]" in trie:
        for i, item in enumerate(value):
            yield from _walk(trie["[]"], item, (*at, i))
    elif isinstance(value, dict):
        if "{}" in trie:
            for k, item in value.items():
                yield from _walk(trie["{}"], item, (*at, k))
        for k, sub in trie.items():  # the few names the trie holds, not every key of the document
            if k in value:
                yield from _walk(sub, value[k], (*at, k))


def render_markdown() -> str:
    """README's lists of the fields that are not compiled, generated from TABLE."""
    lines = ["Fields meshward validates but does not compile (warning MW0403 at the field when a policy sets it;",
             "`TrafficPolicy.` is a DestinationRule's traffic policy, its portLevelSettings and its subsets'):", ""]
    lines += [f"- `{kind}` `{key}`: {e.reason}" for kind, entries in TABLE.items() for key, e in entries.items()
              if isinstance(e, Warned)]
    lines += ["", "Fields that change no proxy config meshward can build (accepted without a warning):", ""]
    lines += [f"- `{kind}` `{key}`: {e.reason}" for kind, entries in TABLE.items() for key, e in entries.items()
              if isinstance(e, Inert)]
    return "\n".join(lines) + "\n"
