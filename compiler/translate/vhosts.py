"""Sidecar outbound route configurations: one per HTTP port (`9080`), a virtual host per service on that port.

As Pilot's BuildSidecarOutboundVirtualHosts: a VirtualService host that names a service takes over that service's
virtual host (exact hosts before wildcards, earlier VirtualServices first); a host without a service gets its own
virtual host; a service without a VirtualService gets the default route to its cluster. A VirtualService is only
considered for a port where one of its hosts is a service (except port 80, Pilot's historical exception). Domains
are the host, its absolute form, its short forms for the proxy's namespace and its addresses, without `:PORT`:
the route config ignores the port in host matching (`RouteConfig.ignore_port`), and Pilot leaves the port forms out
then (generateVirtualHostDomains for every proxy but proxyless gRPC, for which translate.proxyless adds them back).
A domain is never repeated within a route config (Envoy rejects that).
"""

from __future__ import annotations

import array
import dataclasses
import functools
import itertools
from collections.abc import Sequence

from compiler import model, naming
from compiler.diagnostics import Diagnostic
from compiler.reuse import tables
from compiler.reuse.patch import patch_sorted
from compiler.reuse.recorded import Recorded
from compiler.translate import routes
from compiler.translate.mesh import VirtualServiceEntry, rule_lookups
from compiler.translate.routes import Context
from compiler.translate.services import Service
from compiler.validate.hosts import is_ip

# Pilot's catch-all for REGISTRY_ONLY: hosts outside the registry get 502 (ALLOW_ANY's passthrough is not built:
# without traffic capture the original destination is this listener itself)
_BLOCK_ALL_ROUTE = model.Route("block_all", model.RouteMatch(), model.DirectResponse(502))


def _block_all(port: int) -> model.VirtualHost:
    return model.VirtualHost("block_all", "*", port, ("*",), (_BLOCK_ALL_ROUTE,))


def _domains(service: Service, proxy_namespace: str, aliases: Sequence[str] = ()) -> list[str]:
    """Pilot's generateVirtualHostDomains with the port ignored: the host and each of its aliases (ExternalName
    Services resolved to it), each with its absolute form (`host.`, which a client resolving the FQDN literally
    sends; PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN, on by default) and its short forms, then its addresses."""
    names = []
    for host in (service.host, *aliases):
        absolute = [] if is_ip(host) else [f"{host}."]
        names += [host, *absolute, *naming.alt_hosts(host, proxy_namespace)]
    return [*names, *service.addresses]


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


_Use = tuple[VirtualServiceEntry, Recorded[routes.Computed]]  # a VirtualService's routes with their lookups


def _use(ctx: Context, vs: VirtualServiceEntry, before: Recorded[routes.Computed] | None,
         before_in: tuple[object, ...] | None) -> Recorded[routes.Computed]:
    """`vs`'s routes in this context: `before` (made in the tables `before_in`) while the reuse layer finds it
    still valid, else computed."""
    return ctx.reuse.route_use(vs, routes.route_scope(ctx), before, before_in, routes.tables(ctx.mesh),
                               functools.partial(routes.look, ctx), functools.partial(routes.computed, ctx, vs))


@dataclasses.dataclass(frozen=True, slots=True)
class RouteTable:
    """One route config, whether its routes need the fault and CORS filters, and what it was built from, so that
    the next revision can patch it (`_patched`): a commit that changed one VirtualService replaces the virtual
    hosts that VirtualService's routes fill, instead of rebuilding 10,000."""

    services: Sequence[Service]
    vss: Sequence[VirtualServiceEntry]
    services_table: dict[str, list[Service]]  # the mesh's service table: the known hosts, and what `uses` looked up
    rules: tables.Keyed  # the rule tables of the revision `uses` are valid in
    uses: tuple[_Use, ...]  # each VirtualService's routes, in first-use order
    owners: array.array[int]  # per virtual host, the index in `uses` of the routes it has (-1: a default route)
    parts: tuple[tuple[model.Route, ...], ...]  # per use, the routes its virtual hosts hold (what a patch diffs)
    config: model.RouteConfig
    hosts_used: frozenset[str]
    notes: tuple[Diagnostic, ...]
    faults: bool
    cors: bool

    @property
    def valid_in(self) -> tuple[object, ...]:
        return self.services_table, self.rules.whole

    @property
    def inputs(self) -> Sequence[VirtualServiceEntry]:
        return self.vss


def route_config(ctx: Context, services: Sequence[Service], vss: Sequence[VirtualServiceEntry], *,
                 block_unknown: bool = False) -> RouteTable:
    """The route config of `ctx.port`; a VirtualService host that is none of `services` on the port gets a
    virtual host of its own."""
    extra = (ctx.port, ctx.gateway, ctx.mesh.outbound_key(ctx.proxy), block_unknown)
    table = ctx.reuse.route_table(extra, _Recipe(ctx, services, vss, block_unknown))
    ctx.hosts_used.update(table.hosts_used)
    ctx.notes.extend(table.notes)
    return table


@dataclasses.dataclass(frozen=True, slots=True)
class _Recipe:
    """How a route table is built and refilled (compiler.reuse.refill.Recipe). After a change, the reuse layer
    asks again for the routes of changed VirtualServices and of those that looked up a service whose definition
    changed (its endpoints, say) or a host whose rules changed, then `refill` puts them (and the default routes of
    those hosts) in place. Its shape holds unless there are other hosts, ports or addresses (the virtual hosts and
    their domains), a wildcard-host rule, a VirtualService with other hosts, or routes that now exist where there
    were none (or the reverse), since those decide which virtual hosts exist and who owns them."""

    ctx: Context
    services: Sequence[Service]
    vss: Sequence[VirtualServiceEntry]
    block_unknown: bool

    @property
    def kind(self) -> type[RouteTable]:
        return RouteTable

    def build(self, before: RouteTable | None) -> RouteTable:
        return _built(self.ctx, self.services, self.vss, self.block_unknown, before)

    @property
    def inputs(self) -> Sequence[VirtualServiceEntry]:
        return self.vss

    @property
    def tables(self) -> tuple[object, ...]:
        return routes.tables(self.ctx.mesh)

    def changes(self, before: RouteTable) -> tuple[set[str], set[str]] | None:
        """The hosts whose services changed, and those whose rules changed."""
        changed_hosts = _changed_hosts(before, self.ctx.mesh.services, self.services)
        ruled_hosts = tables.changed_keys(before.rules, rule_lookups(self.ctx.mesh))
        return None if changed_hosts is None or ruled_hosts is None else (changed_hosts, ruled_hosts)

    def same_shape(self, old: VirtualServiceEntry, new: VirtualServiceEntry) -> bool:
        return old.hosts == new.hosts

    def use(self, vs: VirtualServiceEntry, before: Recorded[routes.Computed] | None,
            before_in: tuple[object, ...] | None) -> Recorded[routes.Computed]:
        return _use(self.ctx, vs, before, before_in)

    def touched(self, kind: str, arg: object, changes: tuple[set[str], ...]) -> bool:
        """A service of a changed host, or the rule of a service whose host's rules changed."""
        return arg in changes[0] if kind == routes.SERVICE else isinstance(arg, Service) and arg.host in changes[1]

    def content(self, use: routes.Computed) -> tuple[model.Route, ...]:
        return use.routes

    def refill(self, before: RouteTable, uses: Sequence[_Use], refilled: dict[int, routes.Computed],
               changes: tuple[set[str], ...]) -> RouteTable | None:
        mesh = self.ctx.mesh
        parts = list(before.parts)
        for i, now in refilled.items():
            parts[i] = now.routes
        vhosts = _refilled(self.ctx, before, self.services, changes[1], parts)
        if vhosts is None:
            return None
        return RouteTable(self.services, self.vss, mesh.services, rule_lookups(mesh), tuple(uses), before.owners,
                          tuple(parts), dataclasses.replace(before.config, virtual_hosts=tuple(vhosts)),
                          *_effects(uses, before.owners))


def _refilled(ctx: Context, before: RouteTable, services: Sequence[Service], ruled_hosts: set[str],
              now: list[tuple[model.Route, ...]]) -> Sequence[model.VirtualHost] | None:
    """`before`'s virtual hosts with the routes `now` has for each use (compiler.reuse.patch), and the default
    routes of the hosts whose rules changed again (their hash policy comes from the rule). Patched however many
    changed: a rebuild costs more than the patch, and the virtual hosts stay where they were."""
    vhosts, owners, was = before.config.virtual_hosts, before.owners, before.parts
    on_port = {naming.virtual_host(s.host, ctx.port): s for s in services if s.host in ruled_hosts} \
        if ruled_hosts else {}
    defaults = [(vh, dataclasses.replace(vh, routes=(routes.default_route(ctx, on_port[vh.name]),)))
                for vh, owner in zip(vhosts, owners, strict=True) if owner == -1 and vh.name in on_port
                ] if on_port else []
    old, new = [*was, *(vh for vh, _ in defaults)], [*now, *(vh for _, vh in defaults)]

    def swaps(changed: list[int]) -> list[tuple[model.VirtualHost, model.VirtualHost]]:
        refill = {i: now[i] for i in changed if i < len(now)}
        return [*((vh, dataclasses.replace(vh, routes=refill[owner]))
                  for vh, owner in zip(vhosts, owners, strict=True) if owner in refill),
                *(defaults[i - len(now)] for i in changed if i >= len(now))]

    return patch_sorted(vhosts, _vhost_name, old, new, swaps, rebuild_past=None)


def _vhost_name(vh: model.VirtualHost) -> str:
    return vh.name


def _changed_hosts(before: RouteTable, table: dict[str, list[Service]], services: Sequence[Service]
                   ) -> set[str] | None:
    """The hosts whose definitions are other objects than when `before` was built, or None when one of them (or
    the set of hosts) changed more than a route table can follow by patching."""
    if len(before.services) != len(services):
        return None
    if before.services_table is table:
        return set() if all(a is b for a, b in zip(before.services, services, strict=True)) else None
    old = before.services_table
    if old.keys() != table.keys():
        return None
    changed = {host for host, defined in table.items()
               if len(defined) != len(old[host]) or any(a is not b for a, b in zip(defined, old[host], strict=True))}
    for a, b in zip(before.services, services, strict=True):
        if a is not b and (a.host, a.namespace, a.ports, a.addresses, a.exports, a.alias_of, a.aliases) != (
                b.host, b.namespace, b.ports, b.addresses, b.exports, b.alias_of, b.aliases):
            return None
    return changed


def _effects(uses: Sequence[_Use], owners: array.array[int]
             ) -> tuple[frozenset[str], tuple[Diagnostic, ...], bool, bool]:
    """What building the routes added to the context (destination hosts, notes), and whether the routes in the
    table (a VirtualService's routes may fill no virtual host) inject faults or set CORS policies; default
    routes do neither."""
    shown = [uses[i][1].value for i in sorted(set(owners)) if i >= 0]
    return (frozenset().union(*(c.value.hosts_used for _, c in uses)),
            tuple(itertools.chain.from_iterable(c.value.notes for _, c in uses)),
            any(c.faults for c in shown), any(c.cors for c in shown))


def _built(ctx: Context, services: Sequence[Service], vss: Sequence[VirtualServiceEntry], block_unknown: bool,
           before: RouteTable | None) -> RouteTable:
    port = ctx.port
    on_port = [s for s in services if (p := s.port(port)) is not None and p.protocol.is_http]
    hosts = naming.HostSet(s.host for s in on_port)
    relevant = [vs for vs in vss if _relevant(vs, hosts, port)]
    owner = _claims(on_port, hosts, relevant)
    earlier = {id(vs): (vs, c) for vs, c in before.uses} if before is not None else {}
    earlier_in = before.valid_in if before is not None else None
    uses: dict[int, _Use] = {}

    def vs_routes(vs: VirtualServiceEntry) -> tuple[model.Route, ...]:
        if id(vs) not in uses:
            seen_before = earlier.get(id(vs))
            uses[id(vs)] = (vs, _use(ctx, vs, seen_before[1] if seen_before and seen_before[0] is vs else None,
                                     earlier_in))
        return uses[id(vs)][1].value.routes

    seen: set[str] = set()
    vhosts: dict[str, tuple[model.VirtualHost, VirtualServiceEntry | None]] = {}
    visible: set[str] = set()  # the hosts this proxy sees, once a service has aliases
    for service in on_port:
        vs = owner.get(service.host)
        if vs is None and service.alias_of:
            continue  # Pilot's BuildSidecarVirtualHostWrapper: the concrete service's virtual host answers for it
        rs = vs_routes(vs) if vs is not None else (routes.default_route(ctx, service),)
        # the aliases this proxy sees that no VirtualService of theirs takes (Pilot's matchingAliasService)
        if service.aliases and not visible:
            visible.update(s.host for s in services)
        aliases = [a for a in service.aliases if a in visible and a not in owner]
        _add(vhosts, seen, service.host, port, _domains(service, ctx.proxy.namespace, aliases), rs, vs)
    # a VirtualService host that is no service of this listener on this port (unknown, not imported, or without
    # the port) is a "non-service registry host" with a virtual host of its own (pilot/pkg/networking/core/route/
    # route.go separateVSHostsAndServices, which looks in the listener's services on the port alone)
    for vs in relevant:
        for h in vs.hosts:
            if hosts.matched_by(h):
                continue
            _add(vhosts, seen, h, port, [h], vs_routes(vs), vs)
    if block_unknown and "*" not in seen:
        block_all = _block_all(port)
        vhosts[block_all.name] = (block_all, None)
    ordered = [vhosts[n] for n in sorted(vhosts)]
    at = {key: i for i, key in enumerate(uses)}
    owners = array.array("l", (at[id(vs)] if vs is not None else -1 for _, vs in ordered))
    # Pilot's buildSidecarOutboundHTTPRouteConfig (pilot/pkg/networking/core/httproute.go) sets
    # IgnorePortInHostMatching: `Host: reviews:1` still reaches the reviews virtual host
    config = model.RouteConfig(naming.outbound_route_config(port), ignore_port=True,
                               virtual_hosts=tuple(vh for vh, _ in ordered))
    used = tuple(uses.values())
    return RouteTable(services, vss, ctx.mesh.services, rule_lookups(ctx.mesh), used, owners,
                      tuple(c.value.routes for _, c in used), config, *_effects(used, owners))


def _add(vhosts: dict[str, tuple[model.VirtualHost, VirtualServiceEntry | None]], seen: set[str], host: str,
         port: int, domains: list[str], rs: Sequence[model.Route], vs: VirtualServiceEntry | None) -> None:
    name = naming.virtual_host(host, port)
    if not rs or name in vhosts:
        return
    fresh = [d for d in dict.fromkeys(domains) if d.lower() not in seen]
    seen.update(d.lower() for d in fresh)
    if fresh:
        vhosts[name] = (model.VirtualHost(name, host, port, tuple(fresh), tuple(rs)), vs)
