"""VirtualService TCP and TLS routes -> weighted tcp_proxy clusters and SNI filter chains.

Pilot's rules: the first `tcp` route whose matches apply (port, gateway, source labels/namespace) decides; `tls`
routes become one filter chain per route matched by its `sniHosts`; a destination without a port takes the host's
only port, else the listener's.
"""

from __future__ import annotations

from collections.abc import Sequence

from compiler import model, naming
from compiler.api.virtual_service import RouteDestination
from compiler.translate import routes
from compiler.translate.mesh import VirtualServiceEntry
from compiler.translate.routes import Context


def weighted(ctx: Context, namespace: str, dests: Sequence[RouteDestination]) -> tuple[model.WeightedCluster, ...]:
    single = len(dests) == 1
    out = []
    for d in dests:
        weight = 100 if single else d.weight
        if not weight:
            continue
        cluster, _ = routes.destination(ctx, namespace, d.destination)
        out.append(model.WeightedCluster(cluster, weight))
    return tuple(out)


def tcp_clusters(ctx: Context, vs: VirtualServiceEntry | None) -> tuple[model.WeightedCluster, ...] | None:
    """The clusters of the first applicable `tcp` route, or None when the VirtualService has none."""
    if vs is None:
        return None
    ns = vs.res.namespace
    for route in vs.spec.tcp or ():
        if route.match and not any(routes.applies(ctx, ns, m) for m in route.match):
            continue
        return weighted(ctx, ns, route.route or ())
    return None


def tls_chains(ctx: Context, vs: VirtualServiceEntry, prefix: str) -> list[model.FilterChain]:
    """One SNI-matched chain per applicable `tls` route; `prefix` names them (listener name)."""
    ns = vs.res.namespace
    out = []
    for i, route in enumerate(vs.spec.tls or ()):
        snis = [s.lower() for m in route.match if routes.applies(ctx, ns, m) for s in m.sni_hosts]
        if not snis:
            continue
        clusters = weighted(ctx, ns, route.route or ())
        out.append(model.FilterChain(
            name=f"{prefix}|{vs.res.namespace}/{vs.res.name}|tls[{i}]",
            filter=model.TcpFilterChain(stat_prefix=clusters[0].cluster if len(clusters) == 1 else prefix,
                                        clusters=clusters),
            server_names=tuple(dict.fromkeys(snis)), transport_protocol="tls", source=_source(vs)))
    return out


def default_tcp(port: int, host: str) -> tuple[model.WeightedCluster, ...]:
    return (model.WeightedCluster(naming.outbound_cluster(port, "", host), 100),)


def _source(vs: VirtualServiceEntry) -> model.Source:
    r = vs.res
    return model.Source(r.kind, r.namespace, r.name, r.doc.file, r.doc.line)
