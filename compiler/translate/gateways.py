"""Gateway (router) listeners and route configs, as Pilot's gateway.go builds them.

Servers are grouped by port into one listener `BIND_PORT` that binds for real. Plain HTTP servers of a port share
route config `http.PORT`; each TLS-terminating HTTPS server gets its own SNI-matched chain and route config
`https.PORT.PORTNAME.GATEWAY.NAMESPACE`. Virtual hosts come from the VirtualServices bound to the gateway whose hosts
meet the server's hosts (`ns/host` limits the VirtualService namespace); routes of several VirtualServices for one
host are appended in order. TLS PASSTHROUGH servers route by SNI with `tls` routes, TCP servers with `tcp` routes.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

from compiler import model, naming
from compiler.api.common import ServerTLSSettings
from compiler.api.gateway import Server
from compiler.translate import l4, proxies, routes, specs
from compiler.translate.mesh import GatewayEntry, Mesh, VirtualServiceEntry
from compiler.translate.routes import Context
from compiler.translate.services import parse_protocol

_PASSTHROUGH = ("PASSTHROUGH", "AUTO_PASSTHROUGH")


@dataclasses.dataclass
class Built:
    listeners: list[model.Listener] = dataclasses.field(default_factory=list)
    route_configs: list[model.RouteConfig] = dataclasses.field(default_factory=list)
    secrets: dict[str, model.Secret] = dataclasses.field(default_factory=dict)
    contexts: list[Context] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class _Server:
    gateway: GatewayEntry
    index: int
    spec: Server

    @property
    def protocol(self) -> model.Protocol:
        return parse_protocol(self.spec.port.protocol) or model.Protocol.TCP

    @property
    def terminated_tls(self) -> ServerTLSSettings | None:
        """The server's TLS settings when it terminates TLS (an HTTPS or TLS server, not passing it through)."""
        tls = self.spec.tls
        terminates = tls is not None and tls.mode not in _PASSTHROUGH and self.protocol in (
            model.Protocol.HTTPS, model.Protocol.TLS)
        return tls if terminates else None

    def source(self) -> model.Source:
        r = self.gateway.res
        return model.Source(r.kind, r.namespace, r.name, r.doc.file, r.doc.line)


def _split(host: str, gateway_ns: str) -> tuple[str, str]:
    ns, slash, h = host.partition("/")
    if not slash:
        return "*", host.lower()
    return (gateway_ns if ns == "." else ns), h.lower()


def _bound(mesh: Mesh, server: _Server) -> list[tuple[VirtualServiceEntry, str]]:
    """(VirtualService, host) pairs served by this server: the more specific of the two hosts names the vhost."""
    gw_ns = server.gateway.res.namespace
    out = []
    for vs in mesh.virtual_services:
        if server.gateway.key not in vs.gateways or not vs.visible_in(gw_ns):
            continue
        for spec_host in server.spec.hosts:
            ns, pattern = _split(spec_host, gw_ns)
            if ns not in ("*", vs.res.namespace):
                continue
            for h in vs.hosts:
                if naming.hosts_intersect(pattern, h):
                    out.append((vs, h if naming.host_matches(pattern, h) else pattern))
    return list(dict.fromkeys(out))


def _route_config(ctx: Context, name: str, servers: Sequence[_Server]) -> model.RouteConfig:
    by_host: dict[str, list[model.Route]] = {}
    redirect: dict[str, bool] = {}
    done: set[tuple[int, str]] = set()
    for server in servers:
        tls = server.spec.tls
        ctx.gateway = server.gateway.key  # match.gateways filters routes per gateway
        for vs, host in _bound(ctx.mesh, server):
            if (id(vs), host) in done:
                continue
            done.add((id(vs), host))
            by_host.setdefault(host, []).extend(routes.http_routes(ctx, vs))
            redirect[host] = redirect.get(host, False) or bool(tls is not None and tls.https_redirect)
    port = ctx.port
    vhosts = [model.VirtualHost(naming.virtual_host(h, port), h, port, (h,) if h == "*" else (h, f"{h}:*"),
                                tuple(rs), require_tls=redirect[h]) for h, rs in sorted(by_host.items())]
    if not vhosts:
        blackhole = naming.BLACKHOLE_VHOST
        vhosts = [model.VirtualHost(naming.virtual_host(blackhole, port), blackhole, port, ("*",), ())]
    # Pilot's buildGatewayHTTPRouteConfig (pilot/pkg/networking/core/gateway.go) sets IgnorePortInHostMatching for
    # every proxy but proxyless gRPC: `Host: example.com:8443` reaches the example.com virtual host
    return model.RouteConfig(name, ignore_port=True, virtual_hosts=tuple(vhosts))


def downstream_tls(tls: ServerTLSSettings, *, http: bool, out: Built) -> model.DownstreamTls:
    mode = tls.mode or "SIMPLE"
    mutual = mode in ("MUTUAL", "OPTIONAL_MUTUAL")
    if mode == "ISTIO_MUTUAL":
        cert, ca = naming.ISTIO_DEFAULT_SECRET, naming.ISTIO_ROOT_SECRET
    elif tls.credential_name:
        cert, ca = tls.credential_name, naming.credential_ca_secret(tls.credential_name) if mutual else ""
    else:
        cert = naming.file_cert_secret(tls.server_certificate or "", tls.private_key or "")
        out.secrets[cert] = model.Secret(cert, certificate_chain=tls.server_certificate or "",
                                         private_key=tls.private_key or "", inline=False)
        ca_file = tls.ca_certificates if mutual else None
        ca = naming.file_root_secret(ca_file) if ca_file else ""
        if ca_file:
            out.secrets[ca] = model.Secret(ca, trusted_ca=ca_file, inline=False)
    return model.DownstreamTls(mode=mode, credential_secret=cert, ca_secret=ca,
                               alpn=("h2", "http/1.1") if http else (),
                               subject_alt_names=tuple(tls.subject_alt_names or ()),
                               min_version=tls.min_protocol_version or "", max_version=tls.max_protocol_version or "")


def _server_names(server: _Server) -> tuple[str, ...]:
    hosts = [_split(h, server.gateway.res.namespace)[1] for h in server.spec.hosts]
    return () if "*" in hosts else tuple(dict.fromkeys(hosts))


def _http_chain(name: str, rc: model.RouteConfig, source: model.Source | None, *,
                tls: model.DownstreamTls | None = None, server_names: tuple[str, ...] = ()) -> model.FilterChain:
    faults = any(r.fault is not None for vh in rc.virtual_hosts for r in vh.routes)
    cors = any(r.cors is not None for vh in rc.virtual_hosts for r in vh.routes)
    return model.FilterChain(name=name, filter=model.HttpFilterChain(
        stat_prefix=rc.name, route_config_name=rc.name, faults=faults, cors=cors, use_remote_address=True),
        source=source, tls=tls, server_names=server_names, transport_protocol="tls" if tls is not None else "")


def _port_chains(ctx: Context, name: str, servers: Sequence[_Server], out: Built) -> list[model.FilterChain]:
    chains: list[model.FilterChain] = []
    plain = [s for s in servers if s.protocol.is_http or (s.protocol is model.Protocol.HTTPS and s.spec.tls is None)]
    if plain:
        rc = _route_config(ctx, naming.gateway_route_config(ctx.port, tls_terminated=False, port_name="",
                                                            gateway="", namespace=""), plain)
        out.route_configs.append(rc)
        chains.append(_http_chain(name, rc, plain[0].source()))
    for s in servers:
        if s in plain:
            continue
        gw = s.gateway.res
        terminated = s.terminated_tls
        if terminated is not None and s.protocol is model.Protocol.HTTPS:
            rc = _route_config(ctx, naming.gateway_route_config(
                ctx.port, tls_terminated=True, port_name=s.spec.port.name, gateway=gw.name, namespace=gw.namespace),
                [s])
            out.route_configs.append(rc)
            chains.append(_http_chain(f"{name}|{rc.name}", rc, s.source(), server_names=_server_names(s),
                                      tls=downstream_tls(terminated, http=True, out=out)))
        else:
            chains.extend(_l4_chains(ctx, name, s, out))
    return chains


def _l4_chains(ctx: Context, name: str, server: _Server, out: Built) -> list[model.FilterChain]:
    ctx.gateway = server.gateway.key
    bound = _bound(ctx.mesh, server)
    vss = list(dict.fromkeys(vs for vs, _ in bound))
    if server.spec.tls is not None and server.spec.tls.mode in _PASSTHROUGH:
        return [c for vs in vss for c in l4.tls_chains(ctx, vs, name)]
    picked = next((c for vs in vss if (c := l4.tcp_clusters(ctx, vs))), None)
    if not picked:
        return []
    terminated = server.terminated_tls
    tls = downstream_tls(terminated, http=False, out=out) if terminated is not None else None
    return [model.FilterChain(
        name=f"{name}|{server.gateway.key}|{server.index}", source=server.source(), tls=tls,
        server_names=_server_names(server) if tls else (), transport_protocol="tls" if tls else "",
        filter=model.TcpFilterChain(stat_prefix=picked[0].cluster if len(picked) == 1 else name, clusters=picked))]


def build(mesh: Mesh, proxy: model.Proxy) -> Built:
    out = Built()
    by_port: dict[int, list[_Server]] = defaultdict(list)
    for gw in proxies.gateways_for(mesh, proxy):
        for i, server in enumerate(specs.gateway(gw.res).servers or ()):
            by_port[server.port.number].append(_Server(gw, i, server))
    for port, servers in sorted(by_port.items()):
        bind = servers[0].spec.bind or naming.WILDCARD
        name = naming.listener(bind, port)
        ctx = Context(mesh, proxy, port, gateway="")
        out.contexts.append(ctx)
        chains = _dedupe(_port_chains(ctx, name, servers, out))
        if chains:
            out.listeners.append(model.Listener(name, bind, port, model.TrafficDirection.OUTBOUND, tuple(chains)))
    return out


def _dedupe(chains: list[model.FilterChain]) -> list[model.FilterChain]:
    """Envoy rejects two chains with the same match; the first one (gateway order) wins, as in Pilot."""
    seen: set[tuple[tuple[str, ...], str]] = set()
    out = []
    for c in chains:
        key = (c.server_names, c.transport_protocol)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
