"""Proxyless gRPC: a sidecar's outbound model cut to the shape gRPC's own xDS client reads (gRFC A27).

A gRPC channel to `xds:///reviews.shop.svc.cluster.local:9080` subscribes the Listener named exactly
`reviews.shop.svc.cluster.local:9080` and expects an `api_listener` whose routes come over RDS; then the clusters
those routes name (CDS, type EDS over ADS) and their ClusterLoadAssignments. This is what Istio's
`pilot/pkg/networking/grpcgen` serves to nodes with `GENERATOR: grpc` metadata, and what this module makes from the
same `model.ProxyConfig` a sidecar gets (so VirtualService routing, subsets and load balancing apply the same way):

- one listener per outbound HTTP `host:port`, under every name the sidecar's virtual host answers to with a port
  (`reviews:9080`, `reviews.shop:9080`, ... as Istio expands short names in the proxy's namespace), routing to the
  route config `outbound|9080||reviews.shop.svc.cluster.local` (Istio's name) that holds that host's virtual host
  only;
- the clusters those routes reach, and their endpoints; no inbound listeners, no TCP chains.

gRPC NACKs what it cannot honour, so the sidecar's config is cut down to what gRPC accepts (grpc-core
xds_cluster_parser / xds_endpoint_parser / xds_route_config_parser), each cut commented where it is made.
`compiler.emit.proxyless` writes the result as protos.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from compiler import model, naming

# gRPC takes ROUND_ROBIN and RING_HASH from the `lb_policy` enum and NACKs the rest. Istio's grpcgen keeps round
# robin for simple policies it cannot apply; MAGLEV is a consistent hash, so ring hash keeps its meaning.
_LB = {model.LbPolicy.RING_HASH: model.LbPolicy.RING_HASH, model.LbPolicy.MAGLEV: model.LbPolicy.RING_HASH}


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    """One outbound service port a gRPC channel can name: the route config of its virtual host, and the names
    (host:port) it answers to."""

    route_config: model.RouteConfig
    names: tuple[str, ...]


def _http_route_names(listeners: Iterable[model.Listener]) -> set[str]:
    names: set[str] = set()
    for li in listeners:
        if li.direction is not model.TrafficDirection.OUTBOUND:
            continue
        chains = [*li.filter_chains, *([li.default_chain] if li.default_chain else [])]
        names |= {c.filter.route_config_name for c in chains if isinstance(c.filter, model.HttpFilterChain)}
    return names


def _grpc_route(r: model.Route) -> model.Route:
    """gRPC NACKs per-route config of filters it does not have (CORS) and a retry policy with 0 retries."""
    action = r.action
    if isinstance(action, model.Forward) and action.retry is not None and action.retry.attempts < 1:
        action = dataclasses.replace(action, retry=None)
    return dataclasses.replace(r, action=action, cors=None)


def _target(vh: model.VirtualHost) -> _Target:
    """gRPC matches a channel's whole `host:port` against the domains (it does not drop the port as Envoy is told
    to), so the port forms the sidecar's tables leave out are put back, as Pilot keeps them for proxyless clients
    (generateVirtualHostDomains without SidecarIgnorePort, pilot/pkg/networking/core/httproute.go), and the route
    config does not ignore the port (IgnorePortInHostMatching is off for proxyless gRPC there too)."""
    suffix = f":{vh.port}"
    domains = tuple(dict.fromkeys(p for d in vh.domains
                                  for p in ((d,) if d.endswith(suffix) or "*" in d else (d, d + suffix))))
    names = {d for d in domains if d.endswith(suffix) and "*" not in d} | {naming.virtual_host(vh.host, vh.port)}
    grpc_vh = dataclasses.replace(vh, domains=domains, routes=tuple(_grpc_route(r) for r in vh.routes))
    route_config = model.RouteConfig(naming.proxyless_route_config(vh.port, vh.host), ignore_port=False,
                                     virtual_hosts=(grpc_vh,))
    return _Target(route_config, tuple(sorted(names)))


def _targets(cfg: model.ProxyConfig) -> list[_Target]:
    """Every outbound HTTP service port of the proxy, sorted by host and port, once each; not the virtual hosts
    no gRPC target can name (block_all, wildcard hosts)."""
    wanted = _http_route_names(cfg.listeners)
    found = [vh for rc in cfg.route_configs if rc.name in wanted for vh in rc.virtual_hosts if "*" not in vh.host]
    found.sort(key=lambda vh: (vh.host, vh.port))
    out: dict[str, _Target] = {}
    for vh in found:
        name = naming.proxyless_route_config(vh.port, vh.host)
        if name not in out:
            out[name] = _target(vh)
    return list(out.values())


def _listeners(targets: Iterable[_Target]) -> tuple[model.GrpcListener, ...]:
    named: dict[str, str] = {}
    for t in targets:  # a name two targets answer to goes to the first, deterministically
        for name in t.names:
            named.setdefault(name, t.route_config.name)
    return tuple(model.GrpcListener(name, rc_name) for name, rc_name in sorted(named.items()))


# -- clusters and endpoints ------------------------------------------------------------------------------------


def _one_dns_host(c: model.Cluster) -> bool:
    return len(c.endpoints) == 1 or (not c.endpoints and bool(c.dns_host))


def _grpc_cluster(c: model.Cluster) -> model.Cluster | None:
    """None for a cluster gRPC cannot reach as the model says: one that originates TLS (gRPC takes TLS only
    from certificate providers in its own bootstrap, never over SDS; sending it plaintext would downgrade it),
    ORIGINAL_DST (no such thing without a proxy) and DNS names with several hosts (gRPC's LOGICAL_DNS resolves one).
    A route to such a cluster fails its RPCs with UNAVAILABLE instead."""
    if c.tls is not None or c.direction is not model.TrafficDirection.OUTBOUND:
        return None
    lb_policy = _LB.get(c.lb_policy, model.LbPolicy.ROUND_ROBIN)
    # a STATIC cluster's inline IP endpoints are served over EDS, the one way gRPC takes them
    if c.discovery in (model.Discovery.EDS, model.Discovery.STATIC):
        return dataclasses.replace(c, discovery=model.Discovery.EDS, endpoints=(), lb_policy=lb_policy)
    if c.discovery in (model.Discovery.STRICT_DNS, model.Discovery.LOGICAL_DNS) and _one_dns_host(c):
        return dataclasses.replace(c, discovery=model.Discovery.LOGICAL_DNS, lb_policy=lb_policy)
    return None


def _unique(endpoints: Iterable[model.Endpoint]) -> tuple[model.Endpoint, ...]:
    """gRPC NACKs a load assignment that lists one address twice."""
    seen: dict[tuple[str, int], model.Endpoint] = {}
    for ep in endpoints:
        seen.setdefault((ep.address, ep.port), ep)
    return tuple(seen.values())


def _load_assignment(c: model.Cluster, assignments: Mapping[str, model.LoadAssignment]) -> model.LoadAssignment:
    """The endpoints of an EDS cluster, or the inline endpoints of a STATIC one."""
    la = assignments.get(c.name)
    endpoints = c.endpoints if c.discovery is model.Discovery.STATIC else la.endpoints if la else ()
    return model.LoadAssignment(c.name, _unique(endpoints))


def grpc_config(cfg: model.ProxyConfig) -> model.GrpcConfig:
    """What a proxyless gRPC client of the proxy's workload gets: listeners named `host:port`, one route config
    per listener target, the clusters its routes reach (EDS or LOGICAL_DNS) and the EDS clusters' endpoints."""
    targets = _targets(cfg)
    used = {wc.cluster for t in targets for vh in t.route_config.virtual_hosts for r in vh.routes
            if isinstance(r.action, model.Forward) for wc in r.action.clusters}
    assignments = {la.cluster_name: la for la in cfg.load_assignments}
    clusters: list[model.Cluster] = []
    load_assignments: list[model.LoadAssignment] = []
    for c in cfg.clusters:
        grpc_cluster = _grpc_cluster(c) if c.name in used else None
        if grpc_cluster is not None:
            clusters.append(grpc_cluster)
            if grpc_cluster.discovery is model.Discovery.EDS:
                load_assignments.append(_load_assignment(c, assignments))
    return model.GrpcConfig(cfg.proxy, _listeners(targets), tuple(t.route_config for t in targets),
                            tuple(clusters), tuple(load_assignments))
