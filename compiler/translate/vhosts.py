"""Sidecar outbound route configurations: one per HTTP port (`9080`), a virtual host per service on that port.

As Pilot's BuildSidecarOutboundVirtualHosts: a VirtualService host that names a service takes over that service's
virtual host (exact hosts before wildcards, earlier VirtualServices first); a host without a service gets its own
virtual host; a service without a VirtualService gets the default route to its cluster. A VirtualService is only
considered for a port where one of its hosts is a service (except port 80, Pilot's historical exception). Domains
are the host, its short forms for the proxy's namespace and its addresses, each also with `:PORT`; a domain is
never repeated within a route config (Envoy rejects that).
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from compiler import model, naming
from compiler.translate import routes
from compiler.translate.mesh import VirtualServiceEntry
from compiler.translate.routes import Context
from compiler.translate.services import Service

# Pilot's catch-all for REGISTRY_ONLY: hosts outside the registry get 502 (ALLOW_ANY's passthrough is not built:
# without traffic capture the original destination is this listener itself)
BLOCK_ALL = model.VirtualHost("block_all", ("*",), (model.Route(
    "block_all", model.RouteMatch(), model.DirectResponse(502)),))


def _domains(service: Service, port: int, proxy_namespace: str) -> list[str]:
    names = [service.host, *naming.alt_hosts(service.host, proxy_namespace), *service.addresses]
    return [d for n in names for d in (n, f"{n}:{port}")]


def _claims(services: Sequence[Service], hosts: naming.HostSet,
            vss: Sequence[VirtualServiceEntry]) -> dict[str, VirtualServiceEntry]:
    """Which VirtualService owns each service host: exact host matches first, then wildcards, first come first."""
    owner: dict[str, VirtualServiceEntry] = {}
    for vs in vss:
        for h in vs.hosts:
            if h in hosts.exact:
                owner.setdefault(h, vs)
    for vs in vss:
        for h in vs.hosts:
            if h.startswith("*"):
                for s in services:
                    if naming.host_matches(h, s.host):
                        owner.setdefault(s.host, vs)
    return owner


def _relevant(vs: VirtualServiceEntry, hosts: naming.HostSet, port: int) -> bool:
    return port == 80 or any(hosts.intersects(h) for h in vs.hosts)


def route_config(ctx: Context, services: Sequence[Service], vss: Sequence[VirtualServiceEntry],
                 known_hosts: Container[str], *, block_unknown: bool = False) -> model.RouteConfig:
    port = ctx.port
    on_port = [s for s in services if (p := s.port(port)) is not None and p.protocol.is_http]
    hosts = naming.HostSet(s.host for s in on_port)
    vss = [vs for vs in vss if _relevant(vs, hosts, port)]
    owner = _claims(on_port, hosts, vss)
    cache: dict[int, list[model.Route]] = {}

    def vs_routes(vs: VirtualServiceEntry) -> list[model.Route]:
        if id(vs) not in cache:
            cache[id(vs)] = routes.http_routes(ctx, vs)
        return cache[id(vs)]

    seen: set[str] = set()
    vhosts: dict[str, model.VirtualHost] = {}
    for service in on_port:
        vs = owner.get(service.host)
        rs = vs_routes(vs) if vs is not None else [routes.default_route(ctx, service)]
        _add(vhosts, seen, naming.virtual_host(service.host, port), _domains(service, port, ctx.proxy.namespace), rs)
    for vs in vss:
        for h in vs.hosts:
            if h in known_hosts or hosts.matched_by(h):
                continue
            _add(vhosts, seen, naming.virtual_host(h, port), [h, f"{h}:{port}"], vs_routes(vs))
    if block_unknown and "*" not in seen:
        vhosts[BLOCK_ALL.name] = BLOCK_ALL
    return model.RouteConfig(naming.outbound_route_config(port), tuple(vhosts[n] for n in sorted(vhosts)))


def _add(vhosts: dict[str, model.VirtualHost], seen: set[str], name: str, domains: list[str],
         rs: list[model.Route]) -> None:
    if not rs or name in vhosts:
        return
    fresh = [d for d in dict.fromkeys(domains) if d.lower() not in seen]
    seen.update(d.lower() for d in fresh)
    if fresh:
        vhosts[name] = model.VirtualHost(name, tuple(fresh), tuple(rs))
