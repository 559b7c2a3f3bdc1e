"""VirtualService destinations: the host, port and subset each route and mirror points at must exist.

Istio: virtualservice.DestinationHostAnalyzer (IST0101 host / host:port, IST0112 port required, IST0140 subset
routing that ingress traffic bypasses) and virtualservice.DestinationRuleAnalyzer (IST0101 subset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from compiler.analyze import hosts, registry, routes
from compiler.analyze.context import Context
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource


def check_hosts(ctx: Context) -> Iterator[Diagnostic]:
    services = ctx.of_kind("VirtualService")
    if not services:  # the registry is built on first use: often not at all in an incremental run
        return
    lookup = ctx.registry.lookup
    default = ctx.mesh_config.virtual_service_exports
    fine: set[tuple[str, str, frozenset[str], int | None, bool]] = set()  # destinations found to have no problem
    for vs in services:
        consumers = hosts.consumer_namespaces(vs.spec.export_to or default, vs.namespace)
        for dest in ctx.destinations(vs):
            port = dest.destination.port
            key = (dest.destination.host, vs.namespace, consumers, port.number if port else None, dest.mirror)
            if key in fine:  # the same host, port and viewers as a route before (routes repeat them): fine too
                continue
            found = _check_host(lookup, vs, dest, consumers)
            if found is None:
                fine.add(key)
            else:
                yield found


def _check_host(lookup: Callable[[str, frozenset[str]], list[registry.HostEntry]], vs: Resource,
                dest: routes.RouteDestination, consumers: frozenset[str]) -> Diagnostic | None:
    """The one problem of a destination's host or port, if any (a plain call: most destinations have none)."""
    host = dest.destination.host
    fqdn = hosts.to_fqdn(host, vs.namespace)
    found = lookup(fqdn, consumers)
    if not found:
        where = ", ".join(sorted(consumers))
        return vs.diag("MW0302", f"{dest.what} \"{host}\" ({fqdn}) is not defined by any Service or ServiceEntry "
                                 f"visible from namespace {where}", (*dest.path, "host"))
    ports = registry.port_numbers(found)
    selected = dest.destination.port.number if dest.destination.port else None
    if selected is None and len(ports) > 1:
        return vs.diag("MW0307", f"{dest.what} {fqdn} has several ports {ports}: the destination must select one "
                                 "with port.number", (*dest.path, "host"))
    if selected is not None and selected not in ports:
        return vs.diag("MW0325", f"port {selected} is not a port of {fqdn} (ports: {ports or 'none'})",
                       (*dest.path, "port", "number"))
    return None


def subsets_by_host(ctx: Context) -> dict[str, set[str]]:
    """Subset names per DestinationRule host (FQDN or wildcard), merged over all DestinationRules."""
    return ctx.subsets_by_host


def subsets_for(index: dict[str, set[str]], fqdn: str) -> set[str] | None:
    """The subsets defined for a host: exact DestinationRules, else the wildcard ones that cover it."""
    if fqdn in index:
        return index[fqdn]
    covering = [names for host, names in index.items() if hosts.is_wildcard(host) and hosts.subset_of(fqdn, host)]
    return set().union(*covering) if covering else None


def check_subsets(ctx: Context) -> Iterator[Diagnostic]:
    index = subsets_by_host(ctx)
    services = ctx.of_kind("VirtualService")
    refs_of = ctx.memoized("destinations.subsets", lambda vs: _subset_refs(vs, ctx.destinations(vs)), services)
    covered: dict[str, set[str] | None] = {}  # subsets_for of hosts without an exact DestinationRule (a scan)
    for vs, refs in zip(services, refs_of, strict=True):
        for subset, fqdn, path in refs:
            names = index.get(fqdn)
            if names is None:
                if fqdn not in covered:
                    covered[fqdn] = subsets_for(index, fqdn)
                names = covered[fqdn]
            if subset not in (names or ()):
                yield vs.diag("MW0303", f"subset \"{subset}\" is not defined by any DestinationRule for host {fqdn}",
                              (*path, "subset"))


def _subset_refs(vs: Resource, dests: Sequence[routes.RouteDestination],
                 ) -> tuple[tuple[str, str, tuple[str | int, ...]], ...]:
    """(subset, host FQDN, destination path) of each of `vs`'s destinations that names a subset."""
    return tuple((dest.destination.subset, hosts.to_fqdn(dest.destination.host, vs.namespace), dest.path)
                 for dest in dests if dest.destination.subset)


def check_ingress_subsets(ctx: Context) -> Iterator[Diagnostic]:
    """A gateway route without a subset bypasses the subset routing a mesh VirtualService does for that host."""
    subset_routed: dict[str, list[Resource]] | None = None  # built on the first gateway route: often never
    services = ctx.of_kind("VirtualService")
    for vs, gateways in zip(services, ctx.memoized("destinations.gateways", _gateways, services), strict=True):
        if not gateways:
            continue
        if subset_routed is None:
            subset_routed = _mesh_subset_routing(ctx.of_kind("VirtualService"))
        for i, rule in enumerate(vs.spec.http or ()):
            for j, route in enumerate(rule.route or ()):
                if route.destination.subset:
                    continue
                fqdn = hosts.to_fqdn(route.destination.host, vs.namespace)
                for mesh_vs in subset_routed.get(fqdn, []):
                    yield vs.diag("MW0315", f"route to {fqdn} has no subset: the subset routing of "
                                            f"{mesh_vs.origin} for that host does not apply to requests through "
                                            f"gateway {', '.join(gateways)}",
                                  ("spec", "http", i, "route", j, "destination", "host"))


def _gateways(vs: Resource) -> tuple[str, ...]:
    return tuple(g for g in routes.gateway_names(vs.spec) if g != hosts.MESH_GATEWAY)


def _mesh_subset_routing(services: Sequence[Resource]) -> dict[str, list[Resource]]:
    """Host -> mesh VirtualServices for that host that route it to subsets of itself."""
    out: dict[str, list[Resource]] = {}
    for vs in services:
        if not routes.binds_mesh(vs.spec):
            continue
        own = {hosts.to_fqdn(h, vs.namespace) for h in vs.spec.hosts or ()}
        targets = {hosts.to_fqdn(d.destination.host, vs.namespace)
                   for d in routes.destinations(vs.spec) if not d.mirror and d.destination.subset}
        for host in sorted(own & targets):
            out.setdefault(host, []).append(vs)
    return out
