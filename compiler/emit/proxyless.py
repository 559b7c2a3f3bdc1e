"""Proxyless gRPC: a sidecar's outbound model, emitted in the shape gRPC's own xDS client reads (gRFC A27).

A gRPC channel to `xds:///reviews.shop.svc.cluster.local:9080` subscribes the Listener named exactly
`reviews.shop.svc.cluster.local:9080` and expects an `api_listener` holding an HttpConnectionManager whose routes
come over RDS; then the clusters those routes name (CDS, type EDS over ADS) and their ClusterLoadAssignments. This is
what Istio's `pilot/pkg/networking/grpcgen` serves to nodes with `GENERATOR: grpc` metadata, and what this module
builds from the same `model.ProxyConfig` a sidecar gets (so VirtualService routing, subsets and load balancing apply
the same way):

- one api_listener per outbound HTTP `host:port`, under every name the sidecar's virtual host answers to with a
  port (`reviews:9080`, `reviews.shop:9080`, ... as Istio expands short names in the proxy's namespace), routing
  over RDS to the route config `outbound|9080||reviews.shop.svc.cluster.local` (Istio's name) that holds that host's
  virtual host only;
- the clusters those routes reach, and their endpoints; no inbound listeners, no TCP chains.

gRPC NACKs what it cannot honour, so the sidecar's config is cut down to what gRPC accepts (grpc-core
xds_cluster_parser / xds_endpoint_parser / xds_route_config_parser), each cut commented where it is made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping

from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from compiler import model
from compiler.emit import cluster, common, endpoint, route, type_urls
from compiler.emit.filters import fault, router
from compiler.emit.snapshot import Snapshot, XdsResource

# gRPC's client-side HTTP filters, in Istio's order: fault injection (gRFC A33), then the terminal router.
_FILTERS = (
    hcm_pb2.HttpFilter(name=fault.NAME, typed_config=common.pack(fault.filter_config())),
    hcm_pb2.HttpFilter(name=router.NAME, typed_config=common.pack(router.filter_config())),
)
# gRPC takes ROUND_ROBIN and RING_HASH from the `lb_policy` enum and NACKs the rest. Istio's grpcgen keeps round
# robin for simple policies it cannot apply; MAGLEV is a consistent hash, so ring hash keeps its meaning.
_LB = {model.LbPolicy.RING_HASH: model.LbPolicy.RING_HASH, model.LbPolicy.MAGLEV: model.LbPolicy.RING_HASH}


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One outbound service port a gRPC channel can name: its virtual host and the names it answers to."""

    host: str
    port: int
    virtual_host: model.VirtualHost
    names: tuple[str, ...]  # listener names: host:port for every name of the virtual host

    @property
    def route_config_name(self) -> str:
        return f"outbound|{self.port}||{self.host}"


def _http_route_names(listeners: Iterable[model.Listener]) -> set[str]:
    names: set[str] = set()
    for li in listeners:
        if li.direction is not model.TrafficDirection.OUTBOUND:
            continue
        chains = [*li.filter_chains, *([li.default_chain] if li.default_chain else [])]
        names |= {c.filter.route_config_name for c in chains if isinstance(c.filter, model.HttpFilterChain)}
    return names


def _target(vh: model.VirtualHost) -> Target | None:
    """None for virtual hosts no gRPC target can name: block_all / wildcard hosts, names without a port. gRPC
    matches a channel's whole `host:port` against the domains (it does not drop the port as Envoy is told to), so
    the port forms the sidecar's tables leave out are put back, as Pilot keeps them for proxyless clients."""
    host, _, port = vh.name.rpartition(":")
    if not host or not port.isdigit() or "*" in host:
        return None
    suffix = f":{port}"
    domains = tuple(dict.fromkeys(p for d in vh.domains
                                  for p in ((d,) if d.endswith(suffix) or "*" in d else (d, d + suffix))))
    names = {d for d in domains if d.endswith(suffix) and "*" not in d} | {vh.name}
    return Target(host, int(port), dataclasses.replace(vh, domains=domains), tuple(sorted(names)))


def targets(cfg: model.ProxyConfig) -> list[Target]:
    """Every outbound HTTP service port of the proxy, sorted by host and port, once each."""
    wanted = _http_route_names(cfg.listeners)
    found = [t for rc in cfg.route_configs if rc.name in wanted for vh in rc.virtual_hosts if (t := _target(vh))]
    found.sort(key=lambda t: (t.host, t.port))
    out: dict[str, Target] = {}
    for t in found:
        out.setdefault(t.route_config_name, t)
    return list(out.values())


# -- routes ----------------------------------------------------------------------------------------------------


def _grpc_route(r: model.Route) -> model.Route:
    """gRPC NACKs per-route config of filters it does not have (CORS) and a retry policy with 0 retries."""
    action = r.action
    if isinstance(action, model.Forward) and action.retry is not None and action.retry.attempts < 1:
        action = dataclasses.replace(action, retry=None)
    return dataclasses.replace(r, action=action, cors=None)


def _route_config(t: Target) -> route_pb2.RouteConfiguration:
    vh = dataclasses.replace(t.virtual_host, routes=tuple(_grpc_route(r) for r in t.virtual_host.routes))
    return route_pb2.RouteConfiguration(name=t.route_config_name, virtual_hosts=[route.virtual_host(vh)])


def _listener(name: str, t: Target) -> listener_pb2.Listener:
    hcm = hcm_pb2.HttpConnectionManager(
        http_filters=_FILTERS,
        rds=hcm_pb2.Rds(config_source=common.ads_source(), route_config_name=t.route_config_name),
    )
    return listener_pb2.Listener(name=name, api_listener=api_listener_pb2.ApiListener(api_listener=common.pack(hcm)))


def _clusters_of(routes: Iterable[model.Route]) -> set[str]:
    return {wc.cluster for r in routes if isinstance(r.action, model.Forward) for wc in r.action.clusters}


# -- clusters and endpoints ------------------------------------------------------------------------------------


def _unique(endpoints: Iterable[model.Endpoint]) -> list[model.Endpoint]:
    """gRPC NACKs a load assignment that lists one address twice."""
    seen: dict[tuple[str, int], model.Endpoint] = {}
    for ep in endpoints:
        seen.setdefault((ep.address, ep.port), ep)
    return list(seen.values())


def _load_assignment(name: str, endpoints: Iterable[model.Endpoint]) -> endpoint_pb2.ClusterLoadAssignment:
    """gRPC ignores a locality without a load_balancing_weight and NACKs one without a `locality`: each gets
    the sum of its endpoints' weights (as Istio does) and an empty locality when it has none."""
    out = endpoint.load_assignment(name, _unique(endpoints))
    for group in out.endpoints:
        group.locality.SetInParent()
        group.load_balancing_weight.value = sum(e.load_balancing_weight.value or 1 for e in group.lb_endpoints)
    return out


def _eds(c: model.Cluster, endpoints: Iterable[model.Endpoint]) -> Iterator[XdsResource]:
    grpc_cluster = dataclasses.replace(c, discovery=model.Discovery.EDS, endpoints=(), tls=None,
                                       lb_policy=_LB.get(c.lb_policy, model.LbPolicy.ROUND_ROBIN))
    yield XdsResource.of(c.name, type_urls.CLUSTER, cluster.of(grpc_cluster))
    yield XdsResource.of(c.name, type_urls.ENDPOINT, _load_assignment(c.name, endpoints))


def _logical_dns(c: model.Cluster) -> Iterator[XdsResource]:
    grpc_cluster = dataclasses.replace(c, discovery=model.Discovery.LOGICAL_DNS, tls=None,
                                       lb_policy=_LB.get(c.lb_policy, model.LbPolicy.ROUND_ROBIN))
    yield XdsResource.of(c.name, type_urls.CLUSTER, cluster.of(grpc_cluster))


def _one_dns_host(c: model.Cluster) -> bool:
    return len(c.endpoints) == 1 or (not c.endpoints and bool(c.dns_host))


def _cluster_resources(c: model.Cluster, assignments: Mapping[str, model.LoadAssignment]) -> Iterator[XdsResource]:
    """Nothing for a cluster gRPC cannot reach as the model says: one that originates TLS (gRPC takes TLS only
    from certificate providers in its own bootstrap, never over SDS; sending it plaintext would downgrade it),
    ORIGINAL_DST (no such thing without a proxy) and DNS names with several hosts (gRPC's LOGICAL_DNS resolves one).
    A route to such a cluster fails its RPCs with UNAVAILABLE instead."""
    if c.tls is not None or c.direction is not model.TrafficDirection.OUTBOUND:
        return
    if c.discovery is model.Discovery.EDS:
        la = assignments.get(c.name)
        yield from _eds(c, la.endpoints if la else ())
    elif c.discovery is model.Discovery.STATIC:  # inline IP endpoints: served over EDS, the one way gRPC takes them
        yield from _eds(c, c.endpoints)
    elif c.discovery in (model.Discovery.STRICT_DNS, model.Discovery.LOGICAL_DNS) and _one_dns_host(c):
        yield from _logical_dns(c)


# -- the snapshot ----------------------------------------------------------------------------------------------


def resources(cfg: model.ProxyConfig) -> list[XdsResource]:
    found = targets(cfg)
    named: dict[str, Target] = {}
    for t in found:  # a name two targets answer to goes to the first, deterministically
        for name in t.names:
            named.setdefault(name, t)
    out = [XdsResource.of(name, type_urls.LISTENER, _listener(name, t)) for name, t in sorted(named.items())]
    out += [XdsResource.of(t.route_config_name, type_urls.ROUTE, _route_config(t)) for t in found]
    used: set[str] = set()
    for t in found:
        used |= _clusters_of(t.virtual_host.routes)
    assignments = {la.cluster_name: la for la in cfg.load_assignments}
    for c in cfg.clusters:
        if c.name in used:
            out += _cluster_resources(c, assignments)
    return out


def snapshot(cfg: model.ProxyConfig) -> Snapshot:
    """What a proxyless gRPC client of the proxy's workload gets: listeners named `host:port`, one route config
    per listener target, the clusters its routes reach (EDS or LOGICAL_DNS) and their endpoints."""
    return Snapshot.of(resources(cfg))
