"""Gateway (router) listeners and route configs, as Pilot's gateway.go builds them.

A server listens on the target port of the gateway's Service port of that number (Pilot's resolvePorts: the
standard `istio-ingressgateway` Service maps 80 to 8080), or on its own number when no Service of the proxy has
that port. Servers are grouped by that port and their bind address into one listener `BIND_PORT` that binds for
real, after Pilot's mergeGateways has dropped the servers that conflict with an earlier one. Plain HTTP servers of a port share
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
    listen_port: int  # the port the proxy binds for it (`_listen_port`)

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

    @property
    def number(self) -> int:
        return self.spec.port.number

    @property
    def bind(self) -> str:
        return self.spec.bind or ""

    @property
    def passthrough(self) -> bool:
        return self.spec.tls is not None and self.spec.tls.mode in _PASSTHROUGH

    @property
    def is_http(self) -> bool:
        """Pilot's IsHTTPServer (pkg/config/gateway/gateway.go): HTTP, or HTTPS that terminates TLS."""
        return self.protocol.is_http or (self.protocol is model.Protocol.HTTPS and not self.passthrough)

    @property
    def is_tls(self) -> bool:
        """Pilot's IsTLSServer: TLS settings on a non-HTTP server (an HTTP server's are only httpsRedirect)."""
        return self.spec.tls is not None and not self.protocol.is_http

    @property
    def route_name(self) -> str:
        """Pilot's gatewayRDSRouteName: `http.<listen port>`, `https.<server port>.<port name>.<gw>.<ns>`, each
        with `.<bind>` when the server binds an address, or "" for servers that route no HTTP."""
        if self.protocol.is_http:
            return naming.gateway_route_config(self.listen_port, tls_terminated=False, port_name="", gateway="",
                                               namespace="", bind=self.bind)
        if self.protocol is model.Protocol.HTTPS and not self.passthrough:
            gw = self.gateway.res
            return naming.gateway_route_config(self.number, tls_terminated=True, port_name=self.spec.port.name,
                                               gateway=gw.name, namespace=gw.namespace, bind=self.bind)
        return ""

    def hosts(self) -> list[str]:
        return [_split(h, self.gateway.res.namespace)[1] for h in self.spec.hosts]

    def describe(self) -> str:
        return f"Gateway {self.gateway.key} server {self.index} ({self.protocol} {self.number})"

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
    """Pilot's buildGatewayHTTPRouteConfig (pilot/pkg/networking/core/gateway.go): the virtual hosts of the
    servers that share a route config, each VirtualService's routes appended to its hosts' in order, catch-all
    routes moved last (SortVHostRoutes), and with httpsRedirect every host of the server redirects, bound to a
    VirtualService or not."""
    by_host: dict[str, list[model.Route]] = {}
    port_of: dict[str, int] = {}  # the virtual host is named after the port of the server that made it
    redirect: set[str] = set()
    done: set[tuple[int, str]] = set()
    for server in servers:
        ctx.gateway, ctx.port = server.gateway.key, server.number  # match.gateways and match.port read them
        for vs, host in _bound(ctx.mesh, server):
            port_of.setdefault(host, server.number)
            if (id(vs), host) not in done:
                done.add((id(vs), host))
                by_host.setdefault(host, []).extend(routes.http_routes(ctx, vs))
        if server.spec.tls is not None and server.spec.tls.https_redirect:
            # Pilot uses the server's hosts as written once `.`/`*` namespaces are stripped, so an `ns/host`
            # gives a domain nobody sends; the host part is meant, and used here
            for host in server.hosts():
                by_host.setdefault(host, [])
                port_of.setdefault(host, server.number)
                redirect.add(host)
    vhosts = [model.VirtualHost(naming.virtual_host(h, port_of[h]), h, port_of[h],
                                (h,) if h == "*" else (h, f"{h}:*"), _catch_alls_last(rs), require_tls=h in redirect)
              for h, rs in sorted(by_host.items())]
    if not vhosts:
        blackhole, port = naming.BLACKHOLE_VHOST, servers[0].number
        vhosts = [model.VirtualHost(naming.virtual_host(blackhole, port), blackhole, port, ("*",), ())]
    # Pilot's buildGatewayHTTPRouteConfig sets IgnorePortInHostMatching for every proxy but proxyless gRPC:
    # `Host: example.com:8443` reaches the example.com virtual host
    return model.RouteConfig(name, ignore_port=True, virtual_hosts=tuple(vhosts))


def _catch_alls_last(rs: list[model.Route]) -> tuple[model.Route, ...]:
    """Pilot's SortVHostRoutes (pilot/pkg/networking/core/route/route.go): when several VirtualServices share a
    gateway host, a catch-all route of an earlier one must not hide the later ones' routes."""
    return (*(r for r in rs if not routes.is_catch_all(r.match)), *(r for r in rs if routes.is_catch_all(r.match)))


def downstream_tls(tls: ServerTLSSettings, *, http: bool, out: Built) -> model.DownstreamTls:
    mode = tls.mode or "SIMPLE"
    mutual = mode in ("MUTUAL", "OPTIONAL_MUTUAL")
    source = model.SecretSource.AGENT if mode == "ISTIO_MUTUAL" else model.SecretSource.CONTROL_PLANE
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
                               min_version=tls.min_protocol_version or "", max_version=tls.max_protocol_version or "",
                               secrets_from=source)


def _server_names(server: _Server) -> tuple[str, ...]:
    hosts = server.hosts()
    return () if "*" in hosts else tuple(dict.fromkeys(hosts))


def _http_chain(name: str, rc: model.RouteConfig, source: model.Source | None, *, stat_prefix: str = "",
                tls: model.DownstreamTls | None = None, server_names: tuple[str, ...] = ()) -> model.FilterChain:
    faults = any(r.fault is not None for vh in rc.virtual_hosts for r in vh.routes)
    cors = any(r.cors is not None for vh in rc.virtual_hosts for r in vh.routes)
    return model.FilterChain(name=name, filter=model.HttpFilterChain(
        stat_prefix=stat_prefix or rc.name, route_config_name=rc.name, faults=faults, cors=cors, use_remote_address=True),
        source=source, tls=tls, server_names=server_names, transport_protocol="tls" if tls is not None else "")


def _port_chains(ctx: Context, name: str, servers: Sequence[_Server], out: Built) -> list[model.FilterChain]:
    chains: list[model.FilterChain] = []
    plain = [s for s in servers if s.protocol.is_http or (s.protocol is model.Protocol.HTTPS and s.spec.tls is None)]
    if plain:
        rc = _route_config(ctx, naming.gateway_route_config(plain[0].listen_port, tls_terminated=False,
                                                            port_name="", gateway="", namespace="",
                                                            bind=plain[0].bind), plain)
        out.route_configs.append(rc)
        chains.append(_http_chain(name, rc, plain[0].source()))
    for s in servers:
        if s in plain:
            continue
        terminated = s.terminated_tls
        if terminated is not None and s.protocol is model.Protocol.HTTPS:
            rc = _route_config(ctx, s.route_name, [s])
            out.route_configs.append(rc)
            # Pilot's HTTPS server chain takes the server's name as its stat prefix (gateway.go)
            chains.append(_http_chain(f"{name}|{rc.name}", rc, s.source(), stat_prefix=s.spec.name or "",
                                      server_names=_server_names(s),
                                      tls=downstream_tls(terminated, http=True, out=out)))
        else:
            chains.extend(_l4_chains(ctx, name, s, out))
    return chains


def _l4_chains(ctx: Context, name: str, server: _Server, out: Built) -> list[model.FilterChain]:
    ctx.gateway, ctx.port = server.gateway.key, server.number
    bound = _bound(ctx.mesh, server)
    vss = list(dict.fromkeys(vs for vs, _ in bound))
    if server.passthrough:
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


def _listen_port(mesh: Mesh, proxy: model.Proxy, number: int) -> int:
    """Pilot's resolvePorts with a Gateway's label selector (pilot/pkg/model/gateway.go): the target port of the
    first Service port of that number among the proxy's services (Services that opt out with the
    `experimental.istio.io/disable-gateway-port-translation` label skipped), else the number itself."""
    for service, instance in mesh.instances_of(proxy):
        if service.gateway_port_translation and service.port(number) is not None:
            target = instance.port_for(number)
            if target:
                return target
    return number


def _merged(servers: Sequence[_Server]) -> tuple[list[_Server], list[tuple[_Server, str]]]:
    """The servers of one listening port and bind address that Pilot's mergeGateways keeps (pilot/pkg/model/
    gateway.go), in gateway order, and those it drops with the reason: a server with TLS settings that repeats a
    host of an earlier one (CheckDuplicates); once the port has a plaintext server, any server unless both are
    HTTP (canMergeProtocols), so a second TCP server or an HTTPS server after an HTTP one; an HTTPS server whose
    route name is taken."""
    kept: list[_Server] = []
    dropped: list[tuple[_Server, str]] = []
    tls_hosts: dict[str, _Server] = {}  # host -> the server with TLS settings that claimed it first
    plain: _Server | None = None  # the port's plaintext server
    https_routes: set[str] = set()
    for s in servers:
        if s.spec.tls is not None:
            hosts = s.hosts()
            taken = next((tls_hosts[h] for h in hosts if h in tls_hosts), None)
            if taken is not None:
                dropped.append((s, f"a host is already served with TLS by {taken.describe()}"))
                continue
            tls_hosts.update(dict.fromkeys(hosts, s))  # kept even if the server is dropped below
        if plain is not None and not (plain.protocol.is_http and s.protocol.is_http):
            dropped.append((s, f"the port is already a plaintext {plain.protocol} port of {plain.describe()}"))
            continue
        if plain is None and s.is_tls and s.is_http:
            if s.route_name in https_routes:
                dropped.append((s, f"route config {s.route_name} is already built for another server"))
                continue
            https_routes.add(s.route_name)
        if plain is None and not s.is_tls:
            plain = s
        kept.append(s)
    return kept, dropped


def servers_by_port(mesh: Mesh, proxy: model.Proxy) -> dict[tuple[int, str], list[_Server]]:
    """The servers of the Gateways that select the proxy, by the port it listens on for them and the address
    they bind (Pilot builds a listener per address), in Pilot's order."""
    by_port: dict[tuple[int, str], list[_Server]] = defaultdict(list)
    # Pilot merges Gateways oldest first, then by name, then namespace (pilot/pkg/model/push_context.go
    # initGateways: sortConfigByCreationTime)
    for gw in sorted(proxies.gateways_for(mesh, proxy), key=lambda g: g.res.pilot_order):
        for i, server in enumerate(specs.gateway(gw.res).servers or ()):
            port = _listen_port(mesh, proxy, server.port.number)
            by_port[(port, server.bind or "")].append(_Server(gw, i, server, port))
    return dict(sorted(by_port.items()))


def dropped_servers(mesh: Mesh, proxy: model.Proxy) -> list[tuple[GatewayEntry, int, str]]:
    """(gateway, server index, why) of each server the proxy does not serve because an earlier one conflicts."""
    return [(s.gateway, s.index, f"{why} on port {port} of {proxy.name}.{proxy.namespace}")
            for (port, _), servers in servers_by_port(mesh, proxy).items() for s, why in _merged(servers)[1]]


def build(mesh: Mesh, proxy: model.Proxy) -> Built:
    out = Built()
    for (port, address), found in servers_by_port(mesh, proxy).items():
        servers = _merged(found)[0]
        bind = address or naming.WILDCARD
        name = naming.listener(bind, port)
        ctx = Context(mesh, proxy, servers[0].number, gateway="", reuse=mesh.carry)
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
