"""Listener resources: address, filter chains (SNI / transport protocol / destination port matches),
downstream TLS, the default chain, and the TLS inspector when some chain matches on what it reads."""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from compiler import model
from compiler.emit import common, metadata, tls
from compiler.emit.filters import ext_authz, http_connection_manager, rbac, tcp_proxy, tls_inspector

_DIRECTION = {
    model.TrafficDirection.OUTBOUND: base_pb2.OUTBOUND,
    model.TrafficDirection.INBOUND: base_pb2.INBOUND,
}


def _network_custom(custom: model.CustomAuthz | None) -> list[lc.Filter]:
    """CUSTOM policies first, as Pilot orders them: the marking RBAC filter, then ext_authz (gRPC providers)."""
    if custom is None:
        return []
    return [lc.Filter(name=rbac.NETWORK_NAME, typed_config=common.pack(
                rbac.network_marks(custom, ext_authz.SHADOW_PREFIX))),
            lc.Filter(name=ext_authz.NETWORK_NAME, typed_config=common.pack(ext_authz.network_config(custom.provider)))]


def _network_filters(
    chain: model.FilterChain, inline_routes: Mapping[str, route_pb2.RouteConfiguration] | None
) -> list[lc.Filter]:
    f = chain.filter
    if isinstance(f, model.TcpFilterChain):  # network RBAC first: a denied connection is closed before proxying
        return [*_network_custom(f.custom),
                *(lc.Filter(name=rbac.NETWORK_NAME, typed_config=common.pack(rbac.network_config(r)))
                  for r in f.rbac),
                lc.Filter(name=tcp_proxy.NAME, typed_config=common.pack(tcp_proxy.of(f)))]
    inline = None
    if inline_routes is not None:
        inline = inline_routes.get(f.route_config_name) or route_pb2.RouteConfiguration(
            name=f.route_config_name
        )
    return [lc.Filter(
        name=http_connection_manager.NAME,
        typed_config=common.pack(http_connection_manager.of(f, inline_routes=inline)),
    )]


def _chain_match(chain: model.FilterChain) -> lc.FilterChainMatch | None:
    if not (chain.server_names or chain.transport_protocol or chain.destination_port is not None):
        return None
    out = lc.FilterChainMatch(server_names=chain.server_names, transport_protocol=chain.transport_protocol)
    if chain.destination_port is not None:
        out.destination_port.value = chain.destination_port
    return out


def filter_chain(
    chain: model.FilterChain,
    *,
    mode: common.Mode = common.ADS_MODE,
    inline_routes: Mapping[str, route_pb2.RouteConfiguration] | None = None,
) -> lc.FilterChain:
    out = lc.FilterChain(
        name=chain.name,
        filter_chain_match=_chain_match(chain),
        filters=_network_filters(chain, inline_routes),
    )
    if chain.tls is not None:
        out.transport_socket.CopyFrom(tls.transport_socket(tls.downstream(chain.tls, mode)))
    meta = metadata.one(chain.source)
    if meta is not None:
        out.metadata.CopyFrom(meta)
    return out


def _needs_tls_inspector(listener: model.Listener) -> bool:
    """The inspector reads SNI and detects TLS; without it such matches would never see a value."""
    return any(c.server_names or c.transport_protocol for c in listener.filter_chains)


def of(
    listener: model.Listener,
    *,
    mode: common.Mode = common.ADS_MODE,
    inline_routes: Mapping[str, route_pb2.RouteConfiguration] | None = None,
) -> listener_pb2.Listener:
    """`inline_routes` (static bootstraps) puts each route table into its connection manager, not RDS."""
    address = address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=listener.address, port_value=listener.port)
    )
    out = listener_pb2.Listener(
        name=listener.name,
        address=address,
        traffic_direction=_DIRECTION[listener.direction],
        filter_chains=[
            filter_chain(c, mode=mode, inline_routes=inline_routes) for c in listener.filter_chains
        ],
    )
    if listener.default_chain is not None:
        out.default_filter_chain.CopyFrom(
            filter_chain(listener.default_chain, mode=mode, inline_routes=inline_routes)
        )
    if _needs_tls_inspector(listener):
        out.listener_filters.append(tls_inspector.listener_filter())
    if not listener.bind_to_port:  # a "virtual" listener: only reached through capture, never bound itself
        out.bind_to_port.value = False
    return out
