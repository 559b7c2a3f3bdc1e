"""Stage 2: typed resources -> the intermediate model, per proxy, with Istio's (Pilot's) semantics.

`index` resolves the revision once (service registry, workloads, VirtualServices, merged DestinationRules,
Gateways, Sidecars); `proxy_config` then builds one proxy's listeners, route configs, clusters, load assignments and
secrets from that index. Modules by concern: services/mesh (the index), proxies (node ids), scope (Sidecar and
exportTo visibility, DestinationRule lookup), routes/l4/vhosts (VirtualService routing), policy/clusters
(DestinationRule traffic policies), listeners (sidecars), gateways (routers). Names come from `compiler.naming`;
specs reads a resource's spec as its kind's compiler.api model.

Deliberate differences from Istio, all because these hosts run without traffic capture:
- ServiceEntry resolution NONE with endpoints balances over them (EDS) instead of passing through; STATIC is EDS.
- Headless Services are EDS, not ORIGINAL_DST.
- A TCP port shared by several services goes to the first one (no destination IP to tell them apart).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import TypeVar

from compiler import model
from compiler.diagnostics import Diagnostic
from compiler.reuse.carry import Carry
from compiler.translate import (
    authz,
    clusters,
    ext_authz,
    gateways,
    hooks,
    jwt,
    listeners,
    peer,
    scope,
    telemetry,
    telemetry_metrics,
    tracing,
)
from compiler.translate.mesh import Mesh, index
from compiler.translate.named import first_by_name
from compiler.translate.proxies import find_proxy, proxies
from compiler.translate.routes import Context
from compiler.translate.services import Service
from compiler.translate.unsupported import unsupported

_Named = TypeVar("_Named", model.Listener, model.RouteConfig, model.Cluster)

__all__ = ["Carry", "Mesh", "compile_proxy", "find_proxy", "index", "proxies", "proxy_config", "routing_configs",
           "unsupported"]


def proxy_config(mesh: Mesh, proxy: model.Proxy) -> model.ProxyConfig:
    return compile_proxy(mesh, proxy)[0]


def compile_proxy(mesh: Mesh, proxy: model.Proxy) -> tuple[model.ProxyConfig, list[Diagnostic]]:
    """The proxy's config and the warnings (MW0403: features not compiled) found while building it; what an
    earlier revision (or proxy) computed is asked of the mesh's reuse layer (`mesh.carry`, compiler.reuse)."""
    cfg, notes = _router(mesh, proxy) if proxy.kind is model.ProxyKind.ROUTER else _sidecar(mesh, proxy, mesh.carry)
    return _with_metrics(cfg, telemetry_metrics.metrics(mesh, proxy)), notes


def routing_configs(mesh: Mesh, of: Iterable[model.Proxy]) -> Iterator[model.ProxyConfig]:
    """What the routing graph (compiler.routing_graph) reads of the proxies `of`, without compiling each: a
    router's config, and a sidecar's outbound half once for all sidecars sharing it (`Mesh.outbound_key`). A
    sidecar's inbound side adds only `*` virtual hosts and `inbound|` clusters, which the graph does not draw; what
    the half leaves out is what made the graph cost a whole mesh's compile (every proxy's policies, listeners and
    merged tables). Halves already made for this revision (a served proxy's) come from `mesh.carry`."""
    seen: set[Hashable] = set()
    for proxy in of:
        if proxy.kind is model.ProxyKind.ROUTER:
            yield proxy_config(mesh, proxy)
            continue
        key = mesh.outbound_key(proxy)
        if key in seen:
            continue
        seen.add(key)
        yield _outbound_only(mesh, proxy, key)


def _outbound_only(mesh: Mesh, proxy: model.Proxy, key: Hashable) -> model.ProxyConfig:
    out = mesh.carry.outbound_half(key, lambda: _outbound(mesh, proxy, scope.scope_for(mesh, proxy)))
    return model.ProxyConfig(proxy=proxy, listeners=out.listeners, route_configs=out.route_configs,
                             clusters=out.clusters, load_assignments=out.assignments)


def _with_metrics(cfg: model.ProxyConfig, metrics: model.Metrics) -> model.ProxyConfig:
    """The bootstrap's metrics settings on the config, keeping the (reused) config object when they are Envoy's
    defaults, as for most proxies."""
    return cfg if cfg.metrics == metrics else dataclasses.replace(cfg, metrics=metrics)


def _sidecar(mesh: Mesh, proxy: model.Proxy, reuse: hooks.SidecarReuse) -> tuple[model.ProxyConfig, list[Diagnostic]]:
    sc = scope.scope_for(mesh, proxy)
    out = reuse.outbound_half(mesh.outbound_key(proxy), lambda: _outbound(mesh, proxy, sc))
    # Everything the config is made of, as objects that stay the same while unchanged (carried index objects, the
    # outbound half's parts, the Sidecar resource): the reuse layer may give a proxy none of them changed for
    # last revision's config object back, hence its tables and snapshot by identity.
    instances = mesh.instances_of(proxy)
    # each policy and Telemetry as an element of its own: a tuple built here would be a new object every time,
    # and no sidecar with a policy would ever be reused. The Telemetries count as the inbound side's access logs
    # and tracing are the proxy's own (SERVER mode).
    inputs = (out.listeners, out.route_configs, out.clusters, out.assignments, sc.sidecar,
              *authz.policies_for(mesh, proxy), *authz.policies_for(mesh, proxy, jwt.KIND),
              *peer.policies_for(mesh, proxy), *telemetry.applicable_specs(mesh, proxy),
              *(service for service, _ in instances))
    cfg = reuse.sidecar_config(proxy, inputs, lambda: _sidecar_config(mesh, proxy, sc, out, reuse))
    return cfg, list(out.notes)


def _sidecar_config(mesh: Mesh, proxy: model.Proxy, sc: scope.Scope, out: _Outbound,
                    reuse: hooks.SidecarReuse) -> model.ProxyConfig:
    built = listeners.Built()
    listeners.inbound(mesh, proxy, sc, built)
    # authorization guards what reaches the workload: its inbound chains only (Pilot's inbound listener builder);
    # PeerAuthentication then splits each chain by transport (mTLS, plaintext)
    guarded = _guarded(mesh, proxy, built.listeners)
    mtls = peer.compose(peer.policies_for(mesh, proxy), mesh_identity=mesh.inputs.mesh_identity)
    inbound_listeners = tracing.with_tracing(
        telemetry.with_access_logs(peer.with_mtls(guarded, mtls, mesh.inputs.trust),
                                   telemetry.access_logs(mesh, proxy, "SERVER")), tracing.tracing(mesh, proxy, "SERVER"))
    inbound = reuse.inbound_half(proxy, (tuple(inbound_listeners), tuple(built.route_configs), tuple(built.clusters)))

    def merged(mine: tuple[_Named, ...], shared: tuple[_Named, ...]) -> tuple[_Named, ...]:
        return reuse.merged(mine, shared, lambda: _merge(mine, shared))

    # the inbound side first: on a name both sides use, the inbound resource wins (as before the split)
    return model.ProxyConfig(
        proxy=proxy, listeners=merged(inbound[0], out.listeners), route_configs=merged(inbound[1], out.route_configs),
        clusters=merged(inbound[2], out.clusters), load_assignments=out.assignments)


@dataclasses.dataclass(frozen=True, slots=True)
class _Outbound:
    """A sidecar's outbound half. It depends only on the proxy's namespace and the labels some selector reads
    (`Mesh.outbound_key`), so the sidecars sharing those share one computation (and, through the emit memo, the
    same emitted resources)."""

    listeners: tuple[model.Listener, ...]
    route_configs: tuple[model.RouteConfig, ...]
    clusters: tuple[model.Cluster, ...]
    assignments: tuple[model.LoadAssignment, ...]
    notes: tuple[Diagnostic, ...]


def _outbound(mesh: Mesh, proxy: model.Proxy, sc: scope.Scope) -> _Outbound:
    built = listeners.Built()
    listeners.outbound(mesh, proxy, sc, built)
    services = dict(built.services)
    _add_destinations(mesh, proxy, built.contexts, services)
    _add_providers(mesh, services)
    outbound, assignments = clusters.outbound_tables(mesh, proxy, [services[h] for h in sorted(services)],
                                                     mesh.carry)
    logged = tracing.with_tracing(telemetry.with_access_logs(built.listeners, telemetry.access_logs(mesh, proxy, "CLIENT")),
                                  tracing.tracing(mesh, proxy, "CLIENT"))
    return _Outbound(first_by_name(logged), first_by_name(built.route_configs), outbound, assignments,
                     tuple(_notes(built.contexts)))


def _router(mesh: Mesh, proxy: model.Proxy) -> tuple[model.ProxyConfig, list[Diagnostic]]:
    built = gateways.build(mesh, proxy)
    everything = scope.Egress(hosts=(("*", "*"),))
    services = {s.host: s for s in scope.egress_services(mesh, proxy, everything)}
    _add_destinations(mesh, proxy, built.contexts, services)
    _add_providers(mesh, services)
    outbound, assignments = clusters.outbound_clusters(mesh, proxy, [services[h] for h in sorted(services)],
                                                       mesh.carry)
    # a gateway enforces the policies selecting its workload on all its chains (Pilot's gateway listener builder)
    guarded = tracing.with_tracing(telemetry.with_access_logs(_guarded(mesh, proxy, built.listeners),
                                                              telemetry.access_logs(mesh, proxy, "CLIENT")),
                                   tracing.tracing(mesh, proxy, "CLIENT"))
    cfg = _assemble(proxy, guarded, built.route_configs, outbound, assignments, list(built.secrets.values()))
    return cfg, _notes(built.contexts)


def _guarded(mesh: Mesh, proxy: model.Proxy, ls: list[model.Listener]) -> list[model.Listener]:
    """The workload's RequestAuthentications and AuthorizationPolicies on its chains."""
    return authz.with_rbac(mesh, jwt.with_jwt(ls, authz.policies_for(mesh, proxy, jwt.KIND), mesh.inputs.jwks),
                           authz.policies_for(mesh, proxy), mesh.inputs.trust)


def _add_providers(mesh: Mesh, services: dict[str, Service]) -> None:
    """The services of MeshConfig providers: the ext_authz ones of CUSTOM policies, the tracing collectors and the
    OpenTelemetry access-log collectors. A proxy's filter, tracer or logger names their cluster, even outside its
    scope."""
    for service in (*ext_authz.services(mesh), *tracing.collector_services(mesh),
                    *telemetry.collector_services(mesh)):
        services.setdefault(service.host, service)


def _add_destinations(mesh: Mesh, proxy: model.Proxy, contexts: list[Context], services: dict[str, Service]) -> None:
    """Istio adds the services that in-scope VirtualServices route to, even when the Sidecar does not import them."""
    for ctx in contexts:
        for host in sorted(ctx.hosts_used - services.keys()):
            service = mesh.service_for(host, proxy.namespace)
            if service is not None:
                services.setdefault(host, service)


def _notes(contexts: list[Context]) -> list[Diagnostic]:
    seen: dict[tuple[str, str, str], Diagnostic] = {}
    for ctx in contexts:
        for d in ctx.notes:
            seen.setdefault((d.code, str(d.position), d.message), d)
    return list(seen.values())


def _merge(first: Sequence[_Named], rest: tuple[_Named, ...]) -> tuple[_Named, ...]:
    """`first` (a few, any order) merged into `rest` (unique, sorted by name), first-by-name winning, sorted: the
    same as `first_by_name([*first, *rest])` without re-sorting the many shared outbound resources per proxy."""
    if not first:
        return rest
    head = first_by_name(first)
    taken = {x.name for x in head}
    merged = [x for x in rest if x.name not in taken]
    names = [x.name for x in merged]
    for item in head:
        at = bisect.bisect_left(names, item.name)
        names.insert(at, item.name)
        merged.insert(at, item)
    return tuple(merged)


def _assemble(proxy: model.Proxy, ls: list[model.Listener], rcs: list[model.RouteConfig],
              cs: list[model.Cluster], las: list[model.LoadAssignment],
              secrets: list[model.Secret]) -> model.ProxyConfig:
    return model.ProxyConfig(
        proxy=proxy, listeners=first_by_name(ls), route_configs=first_by_name(rcs), clusters=first_by_name(cs),
        load_assignments=first_by_name(las, "cluster_name"), secrets=first_by_name(secrets),
    )
