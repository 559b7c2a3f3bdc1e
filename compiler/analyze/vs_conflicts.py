"""Two mesh VirtualServices for the same host: istioctl analyze calls it an error, Pilot serves the first in its
order (oldest first), and so does meshward: the error is flagged, not rejected (compiler.codes).

Istio: virtualservice.ConflictingMeshGatewayHostsAnalyzer (IST0109). Hosts are compared per visibility scope: two
VirtualServices exported to the same namespace conflict when they name the same host (FQDN), and one exported to
a namespace conflicts with any exported everywhere whose host overlaps it (wildcards included), as Istio does.
Each VirtualService is reported once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from compiler.analyze import hosts, routes
from compiler.analyze.context import Context
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource

Key = tuple[str, str]  # (scope, host FQDN)


def check(ctx: Context) -> Iterator[Diagnostic]:
    services = ctx.of_kind("VirtualService")
    default = ctx.mesh_config.virtual_service_exports
    index = _index(services, [tuple((scope, host) for scope in _scopes(vs, default) for host in claimed)
                              for vs, claimed in zip(services, ctx.memoized("vs_conflicts.hosts", _hosts, services),
                                                     strict=True)])
    exported: list[tuple[str, list[Resource]]] | None = None  # the hosts exported everywhere, built when needed
    reported: set[int] = set()
    for (scope, host), owners in index.items():
        if scope == hosts.EXPORT_ALL and len(owners) < 2:  # the usual case: one VirtualService, nothing to say
            continue
        group = list(owners)
        if scope != hosts.EXPORT_ALL:
            if exported is None:
                exported = [(h, rs) for (s, h), rs in index.items() if s == hosts.EXPORT_ALL]
            group += [r for h, rs in exported if hosts.matches(host, h) for r in rs]
        unique = list({id(r): r for r in group}.values())
        if len(unique) < 2:
            continue
        names = ", ".join(r.origin.split(" ", 1)[1] for r in unique)
        for vs in unique:
            if id(vs) in reported:
                continue
            reported.add(id(vs))
            yield vs.diag("MW0305", f"host {host} is routed by several mesh VirtualServices ({names}) visible in "
                                    f"{_scope_text(scope)}{_served(scope, unique)}", _host_path(vs, host))


def _hosts(vs: Resource) -> tuple[str, ...]:
    """The host FQDNs a mesh VirtualService claims; a function of the one resource (memoized)."""
    if not routes.binds_mesh(vs.spec):
        return ()
    return tuple(hosts.to_fqdn(host, vs.namespace) for host in vs.spec.hosts or ())


def _scopes(vs: Resource, default: Sequence[str]) -> list[str]:
    """Where it is visible: its exportTo, else MeshConfig's defaultVirtualServiceExportTo (as Pilot sees it)."""
    return sorted(hosts.export_scopes(vs.spec.export_to or default, vs.namespace))


def _index(services: Sequence[Resource], keys: Sequence[tuple[Key, ...]]) -> dict[Key, list[Resource]]:
    index: dict[Key, list[Resource]] = {}
    for vs, claimed in zip(services, keys, strict=True):
        for key in claimed:
            index.setdefault(key, []).append(vs)
    return index


def _served(scope: str, group: Sequence[Resource]) -> str:
    """Which one Pilot (and meshward) serves, when it is plain: among public VirtualServices naming one host, the
    oldest (Resource.pilot_order)."""
    if scope != hosts.EXPORT_ALL:
        return ""
    first = min(group, key=lambda r: r.pilot_order)
    return f"; as Pilot, meshward serves the first by creationTimestamp (none first): {first.origin.split(' ', 1)[1]}"


def _scope_text(scope: str) -> str:
    return "every namespace" if scope == hosts.EXPORT_ALL else f"namespace {scope}"


def _host_path(vs: Resource, host: str) -> tuple[str | int, ...]:
    for i, h in enumerate(vs.spec.hosts or ()):
        if hosts.matches(hosts.to_fqdn(h, vs.namespace), host):
            return ("spec", "hosts", i)
    return ("metadata", "name")
