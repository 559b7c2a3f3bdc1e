"""Sidecar listeners: outbound per egress listener and port, inbound per ingress listener or own service port.

Outbound (Pilot's buildSidecarOutboundListeners): egress listeners with a port come first and lock their port; a
catch-all egress listener then makes `BIND_PORT` for every other port of the services it imports. HTTP ports share
one listener per port with RDS route config `PORT`; TLS/HTTPS ports get SNI chains per host; TCP ports a tcp_proxy
to the port's service (VirtualService `tcp` routes applied). Listeners of `captureMode: NONE` egress listeners
bind for real; the others are Istio's capture-only listeners (`bind_to_port=False`).

Inbound (listener_inbound.go): a Sidecar's ingress listeners replace the service-derived ones; each is a listener
`BIND_PORT` to cluster `inbound|PORT||` whose endpoint is `defaultEndpoint` (default 127.0.0.1:PORT).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from compiler import model, naming
from compiler.translate import clusters, l4, scope, specs, vhosts
from compiler.translate.mesh import Mesh, VirtualServiceEntry
from compiler.translate.routes import Context
from compiler.translate.services import Port, Service, parse_protocol


@dataclasses.dataclass
class Built:
    listeners: list[model.Listener] = dataclasses.field(default_factory=list)
    route_configs: list[model.RouteConfig] = dataclasses.field(default_factory=list)
    services: dict[str, Service] = dataclasses.field(default_factory=dict)  # host -> service in scope
    clusters: list[model.Cluster] = dataclasses.field(default_factory=list)  # inbound clusters
    contexts: list[Context] = dataclasses.field(default_factory=list)


def _port_protocol(protocols: Sequence[model.Protocol]) -> model.Protocol:
    for wanted in (lambda p: p.is_http, lambda p: p in (model.Protocol.TLS, model.Protocol.HTTPS)):
        found = next((p for p in protocols if wanted(p)), None)
        if found is not None:
            return found
    return model.Protocol.TCP


def _vs_for(host: str, vss: Sequence[VirtualServiceEntry]) -> VirtualServiceEntry | None:
    exact = next((vs for vs in vss if host in vs.hosts), None)
    return exact or next((vs for vs in vss if any(naming.host_matches(h, host) for h in vs.hosts)), None)


def _http_chain(name: str, protocol: model.Protocol, table: vhosts.RouteTable) -> model.FilterChain:
    return model.FilterChain(name=name, filter=model.HttpFilterChain(
        stat_prefix=f"outbound_{name}", route_config_name=table.config.name, faults=table.faults, cors=table.cors,
        http2_only=protocol.is_http2))


def _tcp_chains(ctx: Context, name: str, port: int, services: Sequence[Service],
                vss: Sequence[VirtualServiceEntry]) -> list[model.FilterChain]:
    service = services[0]  # without capture only one TCP service per port can be told apart
    vs = _vs_for(service.host, vss)
    picked = l4.tcp_clusters(ctx, vs) or l4.default_tcp(port, service.host)
    return [model.FilterChain(name=name, filter=model.TcpFilterChain(
        stat_prefix=picked[0].cluster if len(picked) == 1 else name, clusters=picked), source=service.source)]


def _tls_chains(ctx: Context, name: str, port: int, services: Sequence[Service],
                vss: Sequence[VirtualServiceEntry]) -> list[model.FilterChain]:
    chains: list[model.FilterChain] = []
    taken: set[str] = set()
    for vs in vss:
        for chain in l4.tls_chains(ctx, vs, name):
            fresh = tuple(s for s in chain.server_names if s not in taken)
            if fresh:
                taken.update(fresh)
                chains.append(dataclasses.replace(chain, server_names=fresh))
    for service in services:
        if service.host not in taken:
            taken.add(service.host)
            cluster = naming.outbound_cluster(port, "", service.host)
            chains.append(model.FilterChain(
                name=f"{name}|{service.host}", server_names=(service.host,), transport_protocol="tls",
                filter=model.TcpFilterChain(stat_prefix=cluster, clusters=(model.WeightedCluster(cluster, 100),)),
                source=service.source))
    return chains


def _outbound_port(mesh: Mesh, proxy: model.Proxy, egress: scope.Egress, port: int, services: Sequence[Service],
                   vss: Sequence[VirtualServiceEntry], on_port: Sequence[tuple[Service, Port]], out: Built) -> None:
    protocol = egress.protocol or _port_protocol([p.protocol for _, p in on_port])
    bind = egress.bind or naming.WILDCARD
    name = naming.listener(bind, port)
    ctx = Context(mesh, proxy, port, reuse=mesh.carry)
    out.contexts.append(ctx)
    if protocol.is_http:
        table = vhosts.route_config(ctx, services, vss, block_unknown=egress.registry_only)
        out.route_configs.append(table.config)
        chains = [_http_chain(name, protocol, table)]
    elif not on_port:
        return
    elif protocol in (model.Protocol.TLS, model.Protocol.HTTPS):
        chains = _tls_chains(ctx, name, port, [s for s, _ in on_port], vss)
    else:
        chains = _tcp_chains(ctx, name, port, [s for s, _ in on_port], vss)
    out.listeners.append(model.Listener(name, bind, port, model.TrafficDirection.OUTBOUND, tuple(chains),
                                        bind_to_port=egress.capture_none))


def outbound(mesh: Mesh, proxy: model.Proxy, sc: scope.Scope, out: Built) -> None:
    locked: set[int] = set()
    for egress in sc.egress:
        services = scope.egress_services(mesh, proxy, egress)
        vss = scope.egress_virtual_services(mesh, proxy, egress)
        for s in services:
            out.services.setdefault(s.host, s)
        by_port = mesh.carry.services_by_port(services, functools.partial(_by_port, services))
        if egress.port is not None:
            if egress.port not in locked:
                _outbound_port(mesh, proxy, egress, egress.port, services, vss, by_port.get(egress.port, ()), out)
            locked.add(egress.port)
            continue
        ports = sorted(by_port.keys() - locked)
        for port in ports:
            _outbound_port(mesh, proxy, egress, port, services, vss, by_port[port], out)
        locked.update(ports)


def _by_port(services: Sequence[Service]) -> dict[int, tuple[tuple[Service, Port], ...]]:
    """Port number -> the services with that port (in `services` order) and their first port of that number;
    aliases have none (their concrete service's ports serve them)."""
    out: dict[int, list[tuple[Service, Port]]] = {}
    for s in services:
        if s.alias_of:  # Pilot's buildSidecarOutboundListener: an alias gets no listener of its own
            continue
        for p in s.ports:
            on_port = out.setdefault(p.number, [])
            if not on_port or on_port[-1][0] is not s:
                on_port.append((s, p))
    return {number: tuple(found) for number, found in out.items()}


# -- inbound -------------------------------------------------------------------------------------------------------


def _inbound(out: Built, *, bind: str, port: int, protocol: model.Protocol, endpoint: tuple[str, int],
             bind_to_port: bool, source: model.Source | None, connect_timeout_ms: int) -> None:
    cluster = clusters.inbound_cluster(port, endpoint[0], endpoint[1], protocol, source,
                                       connect_timeout_ms=connect_timeout_ms)
    out.clusters.append(cluster)
    name = naming.listener(bind, port)
    if protocol.is_http:
        rc_name = naming.inbound_cluster(port)
        route = model.Route(naming.DEFAULT_ROUTE, model.RouteMatch(), model.Forward(
            clusters=(model.WeightedCluster(cluster.name, 100),), timeout_ms=0))
        # Pilot's buildSidecarInboundHTTPRouteConfig (pilot/pkg/networking/core/httproute.go): one `*` virtual
        # host, and the port is not ignored in host matching (there is nothing to tell apart by it)
        vhost = model.VirtualHost(f"inbound|http|{port}", host="*", port=port, domains=("*",), routes=(route,))
        out.route_configs.append(model.RouteConfig(rc_name, ignore_port=False, virtual_hosts=(vhost,)))
        chain = model.FilterChain(name=name, filter=model.HttpFilterChain(
            stat_prefix=f"inbound_{name}", route_config_name=rc_name, http2_only=protocol.is_http2), source=source)
    else:
        chain = model.FilterChain(name=name, filter=model.TcpFilterChain(
            stat_prefix=cluster.name, clusters=(model.WeightedCluster(cluster.name, 100),)), source=source)
    out.listeners.append(model.Listener(name, bind, port, model.TrafficDirection.INBOUND, (chain,),
                                        bind_to_port=bind_to_port))


def inbound(mesh: Mesh, proxy: model.Proxy, sc: scope.Scope, out: Built) -> None:
    ingress = specs.sidecar(sc.sidecar).ingress if sc.sidecar is not None else None
    timeout = clusters.mesh_defaults(mesh).connect_timeout_ms
    if ingress:
        src = clusters_source(sc)
        for il in ingress:
            port = il.port.number or 0
            protocol = parse_protocol(il.port.protocol) or model.Protocol.TCP
            endpoint = clusters.parse_endpoint(il.default_endpoint or "") or (naming.LOCALHOST, port)
            if endpoint[0] == naming.WILDCARD:
                endpoint = (proxy.ip, endpoint[1])
            binds = il.capture_mode == "NONE" or bool(il.bind)
            # a capture-only ingress (Istio: a virtualInbound filter chain) is keyed by the workload's IP, as the
            # service-derived inbound listeners are; on 0.0.0.0 it would take the outbound listener's name
            _inbound(out, bind=il.bind or (naming.WILDCARD if binds else proxy.ip), port=port, protocol=protocol,
                     endpoint=endpoint, bind_to_port=binds, source=src, connect_timeout_ms=timeout)
        return
    seen: set[int] = set()
    for service, inst in mesh.instances_of(proxy):
        for service_port in service.ports:
            target = inst.port_for(service_port.number)
            if target is None or target in seen:
                continue
            seen.add(target)
            _inbound(out, bind=inst.address, port=target, protocol=service_port.protocol,
                     endpoint=(naming.LOCALHOST, target), bind_to_port=False, source=service.source,
                     connect_timeout_ms=timeout)


def clusters_source(sc: scope.Scope) -> model.Source | None:
    r = sc.sidecar
    return model.Source(r.kind, r.namespace, r.name, r.doc.file, r.doc.line) if r is not None else None
